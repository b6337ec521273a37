package jumio

import (
	"encoding/json"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/kycpipe/kycpipe/internal/jsonx"
)

// Workflow details are decoded once for every workflow execution the
// retriever finishes, and with encoding/json (reflection, then the
// capabilities once more as a map of raw messages, then one json.Unmarshal
// per capability) that was a tenth of the retriever's CPU. decodeDetailsFast
// reads the documents Jumio sends (jumio-api.md §6.2, the simulator's) in
// one pass over the bytes, in the style of the job record's decoder
// (pkg/pipeline/jobrecord_json.go), and gives up whenever it is not sure
// encoding/json would decode the same way; decodeDetailsSlow (the
// encoding/json decoder) then reads the same bytes. FuzzWorkflowDetailsDecode
// checks that the two give the same result for any input.
//
// Like encoding/json, the fast path:
//   - ignores keys the model does not have inside the typed objects, and
//     keeps them verbatim in WorkflowDetails.Other (top-level fields) and
//     Capabilities.Other (capabilities) where the model keeps them;
//   - reads null as leaving a string, number or struct alone and setting a
//     pointer, slice or capability to nil; a json.RawMessage field keeps the
//     bytes null, as json.RawMessage.UnmarshalJSON does;
//   - reads [] as an empty, non-nil slice.
//
// It gives up on: a key that encoding/json would match to a field only
// case-insensitively, a repeated key, a key with an escape or a non-ASCII
// character, a value of another type than the field's, a number the field
// cannot hold, a string with invalid UTF-8 or an escaped surrogate, nesting
// deeper than encoding/json allows, and a known capability whose payload
// does not fit its model (the slow path keeps it raw and records it in
// DecodeErrors).

// The JSON names of each decoded struct's fields, from their tags, so that
// a field added to a struct but not to its decoder below makes the fast
// path give up on that key (and the slow path decode it) instead of
// ignoring it.
var (
	detailsNames             = jsonNames(reflect.TypeFor[workflowDetailsFields]())
	workflowInfoNames        = jsonNames(reflect.TypeFor[WorkflowInfo]())
	refNames                 = jsonNames(reflect.TypeFor[Ref]())
	linkNames                = jsonNames(reflect.TypeFor[Link]())
	consentNames             = jsonNames(reflect.TypeFor[Consent]())
	retrievedCredentialNames = jsonNames(reflect.TypeFor[RetrievedCredential]())
	retrievedPartNames       = jsonNames(reflect.TypeFor[RetrievedPart]())
	credentialConsentNames   = jsonNames(reflect.TypeFor[CredentialConsent]())
	decisionNames            = jsonNames(reflect.TypeFor[Decision]())
	decisionDetailsNames     = jsonNames(reflect.TypeFor[DecisionDetails]())
	riskNames                = jsonNames(reflect.TypeFor[Risk]())
	credentialRefNames       = jsonNames(reflect.TypeFor[CredentialRef]())
	resultNames              = jsonNames(reflect.TypeFor[RawResult]())
	extractionNames          = jsonNames(reflect.TypeFor[ExtractionData]())
	extractionAddressNames   = jsonNames(reflect.TypeFor[ExtractionAddress]())
	datePartsNames           = jsonNames(reflect.TypeFor[DateParts]())
	similarityNames          = jsonNames(reflect.TypeFor[SimilarityData]())
	livenessNames            = jsonNames(reflect.TypeFor[LivenessData]())
	imageChecksNames         = jsonNames(reflect.TypeFor[ImageChecksData]())
	faceSearchNames          = jsonNames(reflect.TypeFor[FaceSearchFindings]())
	watchlistNames           = jsonNames(reflect.TypeFor[WatchlistData]())
	emailNames               = jsonNames(reflect.TypeFor[EmailVerificationData]())
	phoneNames               = jsonNames(reflect.TypeFor[PhoneVerificationData]())
	phoneRiskNames           = jsonNames(reflect.TypeFor[PhoneRiskInsights]())
)

// enumValues are the values of the enumerations in details (decision
// types and labels, statuses, categories, classifiers; jumio-api.md §6.2),
// which a document repeats: the fast path hands them out without a copy
// each time.
var enumValues = jsonx.NewInterned(
	// Decision types, labels of overall decisions.
	DecisionPassed, DecisionRejected, DecisionWarning, DecisionNotExecuted, "TECHNICAL_ERROR", "TXN_PASSED", "TXN_REJECTED",
	"TXN_WARNING",
	// Capability labels.
	"OK", "NOT_UPLOADED", "PRECONDITION_NOT_FULFILLED", "NOT_ENOUGH_DATA", "MATCH", "NO_MATCH", "NOT_MATCH",
	"NOT_POSSIBLE", "REPEATED_FACE", "DIFFERENT_PERSON", "ALERT", "DENY", "FAILED", "LOW_RISK", "MEDIUM_RISK",
	"HIGH_RISK", "VALIDATION_FAILED", "UNSUPPORTED_COUNTRY", "UNSUPPORTED_STATE", "UNSUPPORTED_DOCUMENT_TYPE",
	"INVALID_MERCHANT_SETTINGS", "EXTRACTION_NOT_DONE", "NO_VALID_ID_CREDENTIAL", "PERMISSION_DENIED", "BAD_REQUEST",
	"BLACK_WHITE", "MISSING_SIGNATURE", "MISSING_PAGE", "NOT_A_DOCUMENT", "PHOTOCOPY", "BAD_QUALITY", "BAD_QUALITY_IMAGE",
	"BLURRED", "GLARE", "PART_OF_DOCUMENT_MISSING", "PART_OF_DOCUMENT_HIDDEN", "DAMAGED_DOCUMENT",
	"MISSING_MANDATORY_DATAPOINTS", "LIVENESS_UNDETERMINED", "ID_USED_AS_SELFIE", "MULTIPLE_PEOPLE", "DIGITAL_COPY",
	"MANIPULATED", "NO_FACE_PRESENT", "FACE_NOT_FULLY_VISIBLE", "AGE_DIFFERENCE", "WATERMARK", "MANIPULATED_DOCUMENT",
	"OTHER_REJECTION", "GHOST_IMAGE_DIFFERENT", "PUNCHED", "SAMPLE", "FAKE", "CHIP_MISSING", "DIGITAL_MANIPULATION",
	"MISMATCH_FRONT_BACK", "DOCUMENT_EXPIRY_WITHIN_CONFIGURED_LIMIT", "HIGH_FRAUD_RISK", "NFC_CERTIFICATE",
	"MISMATCHING_DATAPOINTS", "MRZ_CHECKSUM", "MISMATCHING_DATA_REPEATED_FACE", "SUPERIMPOSED_TEXT",
	"MISMATCH_HRZ_MRZ_DATA",
	// Statuses.
	StatusInitiated, StatusAcquired, StatusProcessed, StatusSessionExpired, StatusTokenExpired, "DONE", "PENDING",
	"ERROR", "NOT_DONE", "SUCCESS",
	// Workflow keys, categories, classifiers, consent.
	string(WorkflowIDIV), string(WorkflowIDIVScreening), string(WorkflowIDIVSupporting), string(WorkflowIDSelfie),
	string(WorkflowWatchlistScreening), string(WorkflowPhoneVerification), string(WorkflowEmailVerification),
	string(WorkflowPreparedData),
	CategoryID, CategorySelfie, CategoryFacemap, CategoryDocument, CategoryData, "FRONT", "FRONT_WITH_FLASH", "BACK",
	"FACE", "FACEMAP", "LIVENESS_1", "LIVENESS_2", "LIVENESS_3", "LIVENESS_4", "LIVENESS_5", "LIVENESS_6",
	"PREPARED_DATA", ChannelWeb, ChannelAPI, ChannelSDK, "CUSTOMER", "yes",
	// Data: liveness types, document types, risk levels.
	"JUMIO_STANDARD", "IPROOV_STANDARD", "IPROOV_PREMIUM", "PASSPORT", "DRIVING_LICENSE", "ID_CARD", "VISA",
	"UNSUPPORTED", "REGULAR_DRIVING_LICENSE", "M", "F", "X", "LOW", "MEDIUM", "HIGH",
)

// enum reads a string field whose value is usually one of enumValues.
func enum(r *jsonx.Reader, dst *string) bool { return r.InternedStringOrNull(dst, enumValues) }

// jsonNames returns the names encoding/json matches keys against for the
// fields of struct type t. An embedded struct contributes its own fields
// as well as its name: more names only make the fast path give up more.
func jsonNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonNames(ft)...)
			}
		} else if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

// matchesFold reports whether encoding/json could match key to one of
// names (it tries the exact name, then a case-insensitive match), or
// whether it cannot tell: a key with a non-ASCII byte (jsonx hands out
// none) may fold to an ASCII name ("ſ" folds to "s").
func matchesFold(key []byte, names []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, n := range names {
		if len(n) != len(key) {
			continue
		}
		same := true
		for i := range len(key) {
			a, b := key[i], n[i]
			if 'A' <= a && a <= 'Z' {
				a += 'a' - 'A'
			}
			if 'A' <= b && b <= 'Z' {
				b += 'a' - 'A'
			}
			if a != b {
				same = false
				break
			}
		}
		if same {
			return true
		}
	}
	return false
}

// ignore skips the value of a key that is no field's exact name, as
// encoding/json ignores it; it gives up when encoding/json would match the
// key to one of the struct's fields case-insensitively.
func ignore(r *jsonx.Reader, key []byte, names []string) bool {
	return !matchesFold(key, names) && r.Skip()
}

// keep stores the value of key verbatim in *other, as the slow path keeps
// the fields and capabilities the model does not know.
func keep(r *jsonx.Reader, key []byte, other *map[string]json.RawMessage) bool {
	raw, ok := r.Raw()
	if !ok {
		return false
	}
	if *other == nil {
		*other = map[string]json.RawMessage{}
	}
	(*other)[string(key)] = raw
	return true
}

// decodeDetailsFast decodes workflow details into the zero value d; false:
// give up (d is then partly filled and must be dropped).
func decodeDetailsFast(b []byte, d *WorkflowDetails) bool {
	r := jsonx.NewReader(b)
	if r.Peek() != '{' {
		return false
	}
	ok := r.Object(func(k []byte) bool {
		switch string(k) {
		case "workflow":
			return decodeWorkflowInfo(r, &d.Workflow)
		case "account":
			return decodeRef(r, &d.Account)
		case "createdAt":
			return r.StringOrNull(&d.CreatedAt)
		case "startedAt":
			return r.StringOrNull(&d.StartedAt)
		case "completedAt":
			return r.StringOrNull(&d.CompletedAt)
		case "wipedOutAt":
			return r.StringOrNull(&d.WipedOutAt)
		case "credentials":
			return decodeSlice(r, &d.Credentials, decodeRetrievedCredential)
		case "decision":
			return decodeDecision(r, &d.Decision)
		case "consent":
			return decodePtr(r, &d.Consent, decodeConsent)
		case "steps":
			return decodePtr(r, &d.Steps, decodeLink)
		case "capabilities":
			return decodeCapabilities(r, &d.Capabilities)
		}
		// A top-level field the model does not know, unless encoding/json
		// would decode it into a field too (a key spelled in another case).
		return !matchesFold(k, detailsNames) && keep(r, k, &d.Other)
	})
	return ok && r.End()
}

// decodePtr decodes a pointer field: null sets it to nil, anything else to
// a new value decoded by dec.
func decodePtr[T any](r *jsonx.Reader, dst **T, dec func(*jsonx.Reader, *T) bool) bool {
	if r.Null() {
		*dst = nil
		return true
	}
	*dst = new(T)
	return dec(r, *dst)
}

// decodeSlice decodes a slice field: null sets it to nil, an array to a
// new slice (empty but not nil for []) of elements decoded by dec.
func decodeSlice[T any](r *jsonx.Reader, dst *[]T, dec func(*jsonx.Reader, *T) bool) bool {
	if r.Null() {
		*dst = nil
		return true
	}
	out := []T{}
	ok := r.Array(func() bool {
		// Decoded in place: a local passed to dec would be on the heap.
		var zero T
		out = append(out, zero)
		return dec(r, &out[len(out)-1])
	})
	*dst = out
	return ok
}

func decodeRawMessage(r *jsonx.Reader, v *json.RawMessage) bool {
	raw, ok := r.Raw()
	*v = raw
	return ok
}

func decodeWorkflowInfo(r *jsonx.Reader, v *WorkflowInfo) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&v.ID)
		case "status":
			return enum(r, &v.Status)
		case "definitionKey":
			return enum(r, &v.DefinitionKey)
		case "userReference":
			return r.StringOrNull(&v.UserReference)
		case "customerInternalReference":
			return r.StringOrNull(&v.CustomerInternalReference)
		}
		return ignore(r, k, workflowInfoNames)
	})
}

func decodeRef(r *jsonx.Reader, v *Ref) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&v.ID)
		case "href":
			return r.StringOrNull(&v.Href)
		}
		return ignore(r, k, refNames)
	})
}

func decodeLink(r *jsonx.Reader, v *Link) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		if string(k) == "href" {
			return r.StringOrNull(&v.Href)
		}
		return ignore(r, k, linkNames)
	})
}

func decodeConsent(r *jsonx.Reader, v *Consent) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "obtained":
			return enum(r, &v.Obtained)
		case "obtainedAt":
			return r.StringOrNull(&v.ObtainedAt)
		}
		return ignore(r, k, consentNames)
	})
}

func decodeRetrievedCredential(r *jsonx.Reader, v *RetrievedCredential) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&v.ID)
		case "category":
			return enum(r, &v.Category)
		case "parts":
			return decodeSlice(r, &v.Parts, decodeRetrievedPart)
		case "consent":
			return decodePtr(r, &v.Consent, decodeCredentialConsent)
		case "clientIp":
			return r.StringOrNull(&v.ClientIP)
		}
		return ignore(r, k, retrievedCredentialNames)
	})
}

func decodeRetrievedPart(r *jsonx.Reader, v *RetrievedPart) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "classifier":
			return enum(r, &v.Classifier)
		case "href":
			return r.StringOrNull(&v.Href)
		case "captureType":
			return enum(r, &v.CaptureType)
		}
		return ignore(r, k, retrievedPartNames)
	})
}

func decodeCredentialConsent(r *jsonx.Reader, v *CredentialConsent) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "decisionAccepted":
			return decodePtr(r, &v.DecisionAccepted, (*jsonx.Reader).Bool)
		case "collectedBy":
			return enum(r, &v.CollectedBy)
		}
		return ignore(r, k, credentialConsentNames)
	})
}

func decodeDecision(r *jsonx.Reader, v *Decision) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "type":
			return enum(r, &v.Type)
		case "details":
			return decodeDecisionDetails(r, &v.Details)
		case "risk":
			return decodePtr(r, &v.Risk, decodeRisk)
		}
		return ignore(r, k, decisionNames)
	})
}

func decodeDecisionDetails(r *jsonx.Reader, v *DecisionDetails) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		if string(k) == "label" {
			return enum(r, &v.Label)
		}
		return ignore(r, k, decisionDetailsNames)
	})
}

func decodeRisk(r *jsonx.Reader, v *Risk) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		if string(k) == "score" {
			return r.Float64(&v.Score)
		}
		return ignore(r, k, riskNames)
	})
}

func decodeCredentialRef(r *jsonx.Reader, v *CredentialRef) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&v.ID)
		case "category":
			return enum(r, &v.Category)
		}
		return ignore(r, k, credentialRefNames)
	})
}

// decodeCapabilities decodes the capabilities as Capabilities.UnmarshalJSON
// does, except that it gives up where that would record a DecodeError.
func decodeCapabilities(r *jsonx.Reader, c *Capabilities) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "extraction":
			return decodeResults(r, &c.Extraction, decodeExtractionData)
		case "similarity":
			return decodeResults(r, &c.Similarity, decodeSimilarityData)
		case "liveness":
			return decodeResults(r, &c.Liveness, decodeLivenessData)
		case "authentication":
			return decodeResults(r, &c.Authentication, decodeRawMessage)
		case "dataChecks":
			return decodeResults(r, &c.DataChecks, decodeRawMessage)
		case "imageChecks":
			return decodeResults(r, &c.ImageChecks, decodeImageChecksData)
		case "usability":
			return decodeResults(r, &c.Usability, decodeRawMessage)
		case "watchlistScreening":
			return decodeResults(r, &c.WatchlistScreening, decodeWatchlistData)
		case "emailVerification":
			return decodeResults(r, &c.EmailVerification, decodeEmailVerificationData)
		case "phoneVerification":
			return decodeResults(r, &c.PhoneVerification, decodePhoneVerificationData)
		case "addressValidation":
			return decodeResults(r, &c.AddressValidation, decodeRawMessage)
		case "proofOfResidency":
			return decodeResults(r, &c.ProofOfResidency, decodeRawMessage)
		case "drivingLicenseVerification":
			return decodeResults(r, &c.DrivingLicenseVerification, decodeRawMessage)
		case "braCpfValidation":
			return decodeResults(r, &c.BraCpfValidation, decodeRawMessage)
		case "biometricVerification":
			return decodeResults(r, &c.BiometricVerification, decodeRawMessage)
		}
		// A capability the model does not know (the slow path matches
		// names exactly). One in knownCapabilities without a case above
		// would be typed by the slow path: give up on it.
		for _, known := range knownCapabilities {
			if known.name == string(k) {
				return false
			}
		}
		return keep(r, k, &c.Other)
	})
}

// decodeResults decodes one capability's results, their data with data.
func decodeResults[D any](r *jsonx.Reader, dst *[]Result[D], data func(*jsonx.Reader, *D) bool) bool {
	return decodeSlice(r, dst, func(r *jsonx.Reader, v *Result[D]) bool {
		if r.Null() {
			return true
		}
		return r.Object(func(k []byte) bool {
			switch string(k) {
			case "id":
				return r.StringOrNull(&v.ID)
			case "credentials":
				return decodeSlice(r, &v.Credentials, decodeCredentialRef)
			case "decision":
				return decodeDecision(r, &v.Decision)
			case "data":
				return decodePtr(r, &v.Data, data)
			case "validFaceMapForAuthentication":
				return r.StringOrNull(&v.ValidFaceMapForAuthentication)
			}
			return ignore(r, k, resultNames)
		})
	})
}

func decodeExtractionData(r *jsonx.Reader, v *ExtractionData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "type":
			return enum(r, &v.Type)
		case "subType":
			return enum(r, &v.SubType)
		case "issuingCountry":
			return r.StringOrNull(&v.IssuingCountry)
		case "firstName":
			return r.StringOrNull(&v.FirstName)
		case "lastName":
			return r.StringOrNull(&v.LastName)
		case "middleName":
			return r.StringOrNull(&v.MiddleName)
		case "dateOfBirth":
			return r.StringOrNull(&v.DateOfBirth)
		case "expiryDate":
			return r.StringOrNull(&v.ExpiryDate)
		case "issuingDate":
			return r.StringOrNull(&v.IssuingDate)
		case "documentNumber":
			return r.StringOrNull(&v.DocumentNumber)
		case "personalNumber":
			return r.StringOrNull(&v.PersonalNumber)
		case "state":
			return r.StringOrNull(&v.State)
		case "gender":
			return enum(r, &v.Gender)
		case "currentAge":
			return r.StringOrNull(&v.CurrentAge)
		case "nationality":
			return r.StringOrNull(&v.Nationality)
		case "placeOfBirth":
			return r.StringOrNull(&v.PlaceOfBirth)
		case "issuingAuthority":
			return r.StringOrNull(&v.IssuingAuthority)
		case "issuingPlace":
			return r.StringOrNull(&v.IssuingPlace)
		case "optionalMrzField1":
			return r.StringOrNull(&v.OptionalMrzField1)
		case "optionalMrzField2":
			return r.StringOrNull(&v.OptionalMrzField2)
		case "address":
			return decodePtr(r, &v.Address, decodeExtractionAddress)
		case "dateOfBirthParts":
			return decodePtr(r, &v.DateOfBirthParts, decodeDateParts)
		case "expiryDateParts":
			return decodePtr(r, &v.ExpiryDateParts, decodeDateParts)
		case "issuingDateParts":
			return decodePtr(r, &v.IssuingDateParts, decodeDateParts)
		case "mrz":
			return decodeRawMessage(r, &v.MRZ)
		}
		return ignore(r, k, extractionNames)
	})
}

func decodeExtractionAddress(r *jsonx.Reader, v *ExtractionAddress) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "line1":
			return r.StringOrNull(&v.Line1)
		case "line2":
			return r.StringOrNull(&v.Line2)
		case "line3":
			return r.StringOrNull(&v.Line3)
		case "line4":
			return r.StringOrNull(&v.Line4)
		case "line5":
			return r.StringOrNull(&v.Line5)
		case "country":
			return r.StringOrNull(&v.Country)
		case "postalCode":
			return r.StringOrNull(&v.PostalCode)
		case "subdivision":
			return r.StringOrNull(&v.Subdivision)
		case "city":
			return r.StringOrNull(&v.City)
		case "formattedAddress":
			return r.StringOrNull(&v.FormattedAddress)
		}
		return ignore(r, k, extractionAddressNames)
	})
}

func decodeDateParts(r *jsonx.Reader, v *DateParts) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "year":
			return r.StringOrNull(&v.Year)
		case "month":
			return r.StringOrNull(&v.Month)
		case "day":
			return r.StringOrNull(&v.Day)
		}
		return ignore(r, k, datePartsNames)
	})
}

func decodeSimilarityData(r *jsonx.Reader, v *SimilarityData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		if string(k) == "similarity" {
			return enum(r, &v.Similarity)
		}
		return ignore(r, k, similarityNames)
	})
}

func decodeLivenessData(r *jsonx.Reader, v *LivenessData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "type":
			return enum(r, &v.Type)
		case "predictedAge":
			return decodePtr(r, &v.PredictedAge, (*jsonx.Reader).Float64)
		case "ageConfidenceRange":
			return r.StringOrNull(&v.AgeConfidenceRange)
		}
		return ignore(r, k, livenessNames)
	})
}

func decodeImageChecksData(r *jsonx.Reader, v *ImageChecksData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		if string(k) == "faceSearchFindings" {
			return decodePtr(r, &v.FaceSearchFindings, decodeFaceSearchFindings)
		}
		return ignore(r, k, imageChecksNames)
	})
}

func decodeFaceSearchFindings(r *jsonx.Reader, v *FaceSearchFindings) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "status":
			return enum(r, &v.Status)
		case "findings":
			return r.Strings(&v.Findings)
		}
		return ignore(r, k, faceSearchNames)
	})
}

func decodeWatchlistData(r *jsonx.Reader, v *WatchlistData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "searchDate":
			return r.StringOrNull(&v.SearchDate)
		case "searchStatus":
			return enum(r, &v.SearchStatus)
		case "searchId":
			return r.StringOrNull(&v.SearchID)
		case "searchReference":
			return r.StringOrNull(&v.SearchReference)
		case "searchResultUrl":
			return r.StringOrNull(&v.SearchResultURL)
		case "searchResults":
			return decodePtr(r, &v.SearchResults, (*jsonx.Reader).Int)
		}
		return ignore(r, k, watchlistNames)
	})
}

func decodeEmailVerificationData(r *jsonx.Reader, v *EmailVerificationData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "emailVerificationStatus":
			return r.StringOrNull(&v.EmailVerificationStatus)
		case "firstVerifiedAt":
			return r.StringOrNull(&v.FirstVerifiedAt)
		case "totalHits":
			return r.StringOrNull(&v.TotalHits)
		case "emailExists":
			return decodePtr(r, &v.EmailExists, (*jsonx.Reader).Bool)
		case "domainExists":
			return decodePtr(r, &v.DomainExists, (*jsonx.Reader).Bool)
		case "domainName":
			return r.StringOrNull(&v.DomainName)
		case "domainCompany":
			return r.StringOrNull(&v.DomainCompany)
		case "domainRiskLevel":
			return enum(r, &v.DomainRiskLevel)
		case "domainCreationDate":
			return r.StringOrNull(&v.DomainCreationDate)
		case "advice":
			return r.StringOrNull(&v.Advice)
		case "domainCountry":
			return r.StringOrNull(&v.DomainCountry)
		case "domainCategory":
			return r.StringOrNull(&v.DomainCategory)
		case "domainCorporate":
			return decodePtr(r, &v.DomainCorporate, (*jsonx.Reader).Bool)
		}
		return ignore(r, k, emailNames)
	})
}

func decodePhoneVerificationData(r *jsonx.Reader, v *PhoneVerificationData) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "phoneType":
			return enum(r, &v.PhoneType)
		case "carrier":
			return r.StringOrNull(&v.Carrier)
		case "blocked":
			return decodePtr(r, &v.Blocked, (*jsonx.Reader).Bool)
		case "riskInsights":
			return decodePtr(r, &v.RiskInsights, decodePhoneRiskInsights)
		}
		return ignore(r, k, phoneNames)
	})
}

func decodePhoneRiskInsights(r *jsonx.Reader, v *PhoneRiskInsights) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "relativeRisk":
			return r.Strings(&v.RelativeRisk)
		case "applicationToPersonTraffic":
			return r.Strings(&v.ApplicationToPersonTraffic)
		case "personToPersonTraffic":
			return r.Strings(&v.PersonToPersonTraffic)
		}
		return ignore(r, k, phoneRiskNames)
	})
}
