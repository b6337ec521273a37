package messages

// This file holds the JSON shapes kycpipe's messages share with Jumio's
// API: the account request fields a VerificationRequest carries, prepared
// data, the callback Jumio sends and the extracted document data a decision
// event may carry. They are part of kycpipe's wire contract, so they live
// here, in the leaf package every consumer imports; pkg/jumio refers to them
// by type aliases (jumio.PreparedData is messages.PreparedData).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"time"
)

// WorkflowKey identifies a workflow definition (for example 10164, "ID +
// Selfie + Supporting Data"). Jumio's examples send it both as a JSON number
// and as a string; WorkflowKey accepts both and sends numeric keys as numbers.
type WorkflowKey string

// MarshalJSON encodes numeric keys as JSON numbers and others as strings.
func (k WorkflowKey) MarshalJSON() ([]byte, error) {
	// Only a canonical JSON number goes out as one: "007" as a number would
	// be invalid JSON.
	if k != "" && isDigits(string(k)) && (k == "0" || k[0] != '0') {
		return []byte(k), nil
	}
	return json.Marshal(string(k))
}

// UnmarshalJSON accepts a JSON number or string.
func (k *WorkflowKey) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*k = WorkflowKey(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("workflow key must be a number or a string: %w", err)
	}
	if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
		return fmt.Errorf("workflow key must be a non-negative integer, got %s", n)
	}
	*k = WorkflowKey(n.String())
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 18
}

// Workflow definition keys Jumio documents. Tenants often have custom ones.
const (
	WorkflowWatchlistScreening WorkflowKey = "10010" // standalone screening; DATA credential; userReference required
	WorkflowIDIV               WorkflowKey = "10011" // ID + identity verification (ID, SELFIE, FACEMAP)
	WorkflowIDIVScreening      WorkflowKey = "10013" // ID+IV + screening + proof of residency + address + DL checks
	WorkflowPhoneVerification  WorkflowKey = "10065" // standalone phone risk (prepared data)
	WorkflowEmailVerification  WorkflowKey = "10066" // standalone email risk (prepared data)
	WorkflowPreparedData       WorkflowKey = "10148" // prepared-data risk signals (Standalone Risk Signal quickstart)
	WorkflowIDIVSupporting     WorkflowKey = "10163" // ID & identity verification + supporting data
	WorkflowIDSelfie           WorkflowKey = "10164" // ID + Selfie + supporting data
)

// Credential categories.
const (
	CategoryID       = "ID"
	CategorySelfie   = "SELFIE"
	CategoryFacemap  = "FACEMAP"
	CategoryDocument = "DOCUMENT"
	CategoryData     = "DATA"
)

// Part classifiers for credential uploads.
const (
	PartFront        = "FRONT"
	PartBack         = "BACK"
	PartFace         = "FACE"
	PartPreparedData = "PREPARED_DATA"
)

// AccountRequest is the body of account create (POST) and update (PUT).
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/API/CreateUpdateAccounts/creating-and-updating-accounts
type AccountRequest struct {
	CustomerInternalReference string             `json:"customerInternalReference"`
	WorkflowDefinition        WorkflowDefinition `json:"workflowDefinition"`
	UserReference             string             `json:"userReference,omitempty"`
	ReportingCriteria         string             `json:"reportingCriteria,omitempty"`
	CallbackURL               string             `json:"callbackUrl,omitempty"`
	TokenLifetime             string             `json:"tokenLifetime,omitempty"`
	Web                       *WebSettings       `json:"web,omitempty"`
	UserConsent               *UserConsent       `json:"userConsent,omitempty"`
}

// WorkflowDefinition selects the workflow and optionally customizes its
// credentials and capabilities.
type WorkflowDefinition struct {
	Key          WorkflowKey                `json:"key"`
	Credentials  []CredentialDefinition     `json:"credentials,omitempty"`
	Capabilities map[string]json.RawMessage `json:"capabilities,omitempty"`
}

// CredentialDefinition customizes the acquisition of one credential.
type CredentialDefinition struct {
	ID       string           `json:"id,omitempty"`
	Category string           `json:"category,omitempty"`
	Country  *PredefinedValue `json:"country,omitempty"`
	Type     *PredefinedValue `json:"type,omitempty"`
}

// PredefinedValue restricts a choice (country, document type) offered to the
// end user. PredefinedType is DEFINED (fixed) or RECOMMENDED.
type PredefinedValue struct {
	PredefinedType string   `json:"predefinedType,omitempty"`
	Values         []string `json:"values,omitempty"`
}

// WebSettings configures the hosted web flow.
type WebSettings struct {
	SuccessURL string `json:"successUrl,omitempty"`
	ErrorURL   string `json:"errorUrl,omitempty"`
	Locale     string `json:"locale,omitempty"`
}

// UserConsent records the end user's consent, required by Jumio for API and
// custom-UI acquisition of IDs and biometrics in some jurisdictions.
type UserConsent struct {
	UserIP       string        `json:"userIp,omitempty"`
	UserLocation *UserLocation `json:"userLocation,omitempty"`
	Consent      *Consent      `json:"consent,omitempty"`
}

// UserLocation is where the end user gave consent.
type UserLocation struct {
	Country string `json:"country,omitempty"`
	State   string `json:"state,omitempty"`
}

// Consent says whether and when consent was obtained.
type Consent struct {
	Obtained   string `json:"obtained,omitempty"`
	ObtainedAt string `json:"obtainedAt,omitempty"`
}

// PreparedData is the data a DATA credential (or supporting data for ID
// workflows) carries: the applicant's personal data. Every field is PII:
// never log a PreparedData value.
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/API/uploadingSupportData
type PreparedData struct {
	FirstName            string                `json:"firstName,omitempty"`
	LastName             string                `json:"lastName,omitempty"`
	MiddleName           string                `json:"middleName,omitempty"`
	PaternalSurname      string                `json:"paternalSurname,omitempty"`
	MaternalSurname      string                `json:"maternalSurname,omitempty"`
	Suffix               string                `json:"suffix,omitempty"`
	Email                string                `json:"email,omitempty"`
	PhoneNumber          string                `json:"phoneNumber,omitempty"`
	PhoneNumber2         string                `json:"phoneNumber2,omitempty"`
	DateOfBirth          string                `json:"dateOfBirth,omitempty"`
	SocialSecurityNumber string                `json:"socialSecurityNumber,omitempty"`
	Sex                  string                `json:"sex,omitempty"`
	Nationality          string                `json:"nationality,omitempty"`
	PersonalNumber       string                `json:"personalNumber,omitempty"`
	IPAddress            string                `json:"ipAddress,omitempty"`
	Address              *PreparedAddress      `json:"address,omitempty"`
	ID                   *PreparedDocument     `json:"id,omitempty"`
	KYC                  *PreparedRegistration `json:"kyc,omitempty"`
}

// PreparedAddress is a postal address in prepared data.
type PreparedAddress struct {
	Line1       string `json:"line1,omitempty"`
	Line2       string `json:"line2,omitempty"`
	Line3       string `json:"line3,omitempty"`
	Line4       string `json:"line4,omitempty"`
	Line5       string `json:"line5,omitempty"`
	PostalCode  string `json:"postalCode,omitempty"`
	City        string `json:"city,omitempty"`
	Subdivision string `json:"subdivision,omitempty"`
	Country     string `json:"country,omitempty"`
}

// PreparedDocument describes an identity document in prepared data.
type PreparedDocument struct {
	IDNumber    string `json:"idNumber,omitempty"`
	Type        string `json:"type,omitempty"`
	IssuingDate string `json:"issuingDate,omitempty"`
	ExpiryDate  string `json:"expiryDate,omitempty"`
}

// PreparedRegistration is the kyc block of prepared data: when and from where
// the end user registered with the customer.
type PreparedRegistration struct {
	RegistrationDate      string `json:"registrationDate,omitempty"`
	RegistrationIPAddress string `json:"registrationIpAddress,omitempty"`
}

// MaxCallbackSize bounds the size of a callback body [ParseCallback] reads.
// Real callbacks are well under 1 KiB; the bound keeps what an
// unauthenticated sender can make the pipeline store small.
const MaxCallbackSize = 8 << 10

// MaxCallbackHrefLength bounds each href of a callback (Jumio's are under
// 200 bytes).
const MaxCallbackHrefLength = 2 << 10

// Callback is the notification Jumio POSTs to the callback URL when a
// workflow execution changes status. It carries no decision and no PII: it
// only says which execution to retrieve.
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/callback
type Callback struct {
	CallbackSentAt    string         `json:"callbackSentAt,omitempty"`
	UserReference     string         `json:"userReference,omitempty"`
	WorkflowExecution WorkflowStatus `json:"workflowExecution"`
	Account           Ref            `json:"account"`
}

var statusRE = regexp.MustCompile(`^[A-Z][A-Z_]{1,39}$`)

// Ref is a reference to a Jumio object by ID (and sometimes URL).
type Ref struct {
	ID   string `json:"id"`
	Href string `json:"href,omitempty"`
}

// WorkflowStatus is a workflow execution's identity and status.
type WorkflowStatus struct {
	ID            string `json:"id"`
	Href          string `json:"href,omitempty"`
	DefinitionKey string `json:"definitionKey,omitempty"`
	Status        string `json:"status"`
}

// ExtractionData is the data extracted from an identity document. It is PII.
type ExtractionData struct {
	Type              string             `json:"type,omitempty"`
	SubType           string             `json:"subType,omitempty"`
	IssuingCountry    string             `json:"issuingCountry,omitempty"`
	FirstName         string             `json:"firstName,omitempty"`
	LastName          string             `json:"lastName,omitempty"`
	MiddleName        string             `json:"middleName,omitempty"`
	DateOfBirth       string             `json:"dateOfBirth,omitempty"`
	ExpiryDate        string             `json:"expiryDate,omitempty"`
	IssuingDate       string             `json:"issuingDate,omitempty"`
	DocumentNumber    string             `json:"documentNumber,omitempty"`
	PersonalNumber    string             `json:"personalNumber,omitempty"`
	State             string             `json:"state,omitempty"`
	Gender            string             `json:"gender,omitempty"`
	CurrentAge        string             `json:"currentAge,omitempty"`
	Nationality       string             `json:"nationality,omitempty"`
	PlaceOfBirth      string             `json:"placeOfBirth,omitempty"`
	IssuingAuthority  string             `json:"issuingAuthority,omitempty"`
	IssuingPlace      string             `json:"issuingPlace,omitempty"`
	OptionalMrzField1 string             `json:"optionalMrzField1,omitempty"`
	OptionalMrzField2 string             `json:"optionalMrzField2,omitempty"`
	Address           *ExtractionAddress `json:"address,omitempty"`
	DateOfBirthParts  *DateParts         `json:"dateOfBirthParts,omitempty"`
	ExpiryDateParts   *DateParts         `json:"expiryDateParts,omitempty"`
	IssuingDateParts  *DateParts         `json:"issuingDateParts,omitempty"`
	MRZ               json.RawMessage    `json:"mrz,omitempty"`
}

// ExtractionAddress is the address read from a document. It is PII.
type ExtractionAddress struct {
	Line1            string `json:"line1,omitempty"`
	Line2            string `json:"line2,omitempty"`
	Line3            string `json:"line3,omitempty"`
	Line4            string `json:"line4,omitempty"`
	Line5            string `json:"line5,omitempty"`
	Country          string `json:"country,omitempty"`
	PostalCode       string `json:"postalCode,omitempty"`
	Subdivision      string `json:"subdivision,omitempty"`
	City             string `json:"city,omitempty"`
	FormattedAddress string `json:"formattedAddress,omitempty"`
}

// DateParts is a date split into its parts as printed on a document.
type DateParts struct {
	Year  string `json:"year,omitempty"`
	Month string `json:"month,omitempty"`
	Day   string `json:"day,omitempty"`
}

// ParseTimestamp parses Jumio's timestamps (YYYY-MM-DDThh:mm:ss.SSSZ, or any
// RFC 3339 time). The zero time and false are returned for an empty string or
// an unparseable one.
func ParseTimestamp(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// FormatTimestamp formats t the way Jumio does (UTC, millisecond precision).
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// Check verifies that the callback names a workflow execution and an
// account with well-formed IDs and has a plausible status, that its hrefs
// are at most [MaxCallbackHrefLength] bytes and that callbackSentAt, when
// present, is an RFC 3339 time.
func (cb *Callback) Check() error {
	switch {
	case !ValidJumioID(cb.WorkflowExecution.ID):
		return inputError(ErrInvalidCallback, "missing or malformed workflowExecution.id")
	case !ValidJumioID(cb.Account.ID):
		return inputError(ErrInvalidCallback, "missing or malformed account.id")
	case !statusRE.MatchString(cb.WorkflowExecution.Status):
		return inputError(ErrInvalidCallback, "missing or malformed workflowExecution.status")
	case len(cb.UserReference) > 4*MaxReferenceLength:
		return inputError(ErrInvalidCallback, "userReference too long")
	case len(cb.WorkflowExecution.DefinitionKey) > 64:
		return inputError(ErrInvalidCallback, "definitionKey too long")
	case len(cb.Account.Href) > MaxCallbackHrefLength || len(cb.WorkflowExecution.Href) > MaxCallbackHrefLength:
		return inputError(ErrInvalidCallback, fmt.Sprintf("href longer than %d bytes", MaxCallbackHrefLength))
	case cb.CallbackSentAt != "" && !validSentAt(cb.CallbackSentAt):
		return inputError(ErrInvalidCallback, "callbackSentAt must be an RFC 3339 time")
	}
	return nil
}

// validSentAt reports whether s is an RFC 3339 time of a plausible length
// (Jumio sends YYYY-MM-DDThh:mm:ss.SSSZ).
func validSentAt(s string) bool {
	if len(s) > 40 {
		return false
	}
	_, ok := ParseTimestamp(s)
	return ok
}

// ParseCallback reads and checks a callback body. It tolerates unknown
// fields (Jumio may add some) but requires workflowExecution.id and
// account.id to be Jumio IDs and the status to be an upper-case word. It
// reads at most [MaxCallbackSize] bytes. Errors other than the reader's are
// [*InputError]s matching [ErrInvalidCallback], and never echo the body.
func ParseCallback(r io.Reader) (*Callback, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxCallbackSize+1))
	if err != nil {
		return nil, fmt.Errorf("messages: read callback body: %w", err)
	}
	if len(b) > MaxCallbackSize {
		return nil, inputError(ErrInvalidCallback, fmt.Sprintf("body larger than %d bytes", MaxCallbackSize))
	}
	var cb Callback
	if err := json.Unmarshal(b, &cb); err != nil {
		return nil, inputError(ErrInvalidCallback, "not a JSON callback object")
	}
	if err := cb.Check(); err != nil {
		return nil, err
	}
	return &cb, nil
}
