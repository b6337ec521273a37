package jumiotest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Capability names.
const (
	capUsability         = "usability"
	capExtraction        = "extraction"
	capSimilarity        = "similarity"
	capLiveness          = "liveness"
	capDataChecks        = "dataChecks"
	capImageChecks       = "imageChecks"
	capAuthentication    = "authentication"
	capWatchlist         = "watchlistScreening"
	capAddressValidation = "addressValidation"
	capProofOfResidency  = "proofOfResidency"
	capDLVerification    = "drivingLicenseVerification"
	capEmail             = "emailVerification"
	capPhone             = "phoneVerification"
)

// Labels.
const (
	labelOK                 = "OK"
	labelNotUploaded        = "NOT_UPLOADED"
	labelTechnicalError     = "TECHNICAL_ERROR"
	labelPrecondition       = "PRECONDITION_NOT_FULFILLED"
	labelNotEnoughData      = "NOT_ENOUGH_DATA"
	labelMatch              = "MATCH"
	labelNoMatch            = "NO_MATCH"
	labelRepeatedFace       = "REPEATED_FACE"
	labelAlert              = "ALERT"
	labelLowRisk            = "LOW_RISK"
	labelMediumRisk         = "MEDIUM_RISK"
	labelHighRisk           = "HIGH_RISK"
	collectedByCustomer     = "CUSTOMER"
	livenessJumioStandard   = "JUMIO_STANDARD"
	faceSearchDone          = "DONE"
	similarityMatch         = "MATCH"
	similarityNotMatch      = "NOT_MATCH"
	similarityNotPossible   = "NOT_POSSIBLE"
	watchlistSearchDone     = "DONE"
	emailExists             = "EmailExists"
	emailInexistent         = "EmailInexistent"
	subtypeRegularDLicense  = "REGULAR_DRIVING_LICENSE"
	documentDrivingLicense  = "DRIVING_LICENSE"
	stepIDIV                = "ID_IV"
	stepScreening           = "SCREENING"
	stepAddressVerification = "ADDRESS_VERIFICATION"
	stepDLVerification      = "DL_VERIFICATION"
)

// result is what processing (or expiry) decided. It is computed once, so
// repeated retrievals answer the same IDs and data.
type result struct {
	decision     jumio.Decision
	capabilities jumio.Capabilities
	steps        []jumio.Step
	scope        []string // IDs of the credentials the details list
}

// capRes is one capability result under construction.
type capRes struct {
	name  string
	id    string
	creds []*credential
	typ   string
	label string
	risk  *jumio.Risk
	data  any // *jumio.ExtractionData, *jumio.SimilarityData, … or nil
}

type builder struct {
	s       *Server
	e       *execution
	now     time.Time
	scope   []*credential
	results []*capRes
}

func isImageCategory(cat string) bool {
	return cat == jumio.CategoryID || cat == jumio.CategorySelfie || cat == jumio.CategoryFacemap || cat == jumio.CategoryDocument
}

// scopeFor returns the credentials a result covers: those of the channel
// the execution was acquired through, plus any with parts.
func scopeFor(e *execution) []*credential {
	var out []*credential
	for _, c := range e.creds {
		web := c.spec.allows(jumio.ChannelWeb) || c.spec.allows(jumio.ChannelSDK)
		switch {
		case len(c.parts) > 0,
			e.channel == jumio.ChannelWeb && web,
			e.channel != jumio.ChannelWeb && c.spec.allows(jumio.ChannelAPI):
			out = append(out, c)
		}
	}
	return out
}

func requiredParts(c *credential) []string {
	if c.spec.Category == jumio.CategoryFacemap {
		return []string{"FACEMAP"}
	}
	return c.spec.Parts
}

func hasAllParts(c *credential) bool {
	req := requiredParts(c)
	if len(req) == 0 {
		return len(c.parts) > 0
	}
	for _, p := range req {
		if c.parts[p] == nil {
			return false
		}
	}
	return true
}

func newBuilder(s *Server, e *execution, now time.Time) *builder {
	b := &builder{s: s, e: e, now: now, scope: scopeFor(e)}
	for _, name := range e.spec.Capabilities {
		if name == capUsability {
			for _, c := range b.scope {
				if isImageCategory(c.spec.Category) {
					b.add(name, []*credential{c})
				}
			}
			continue
		}
		b.add(name, b.credsFor(name))
	}
	return b
}

func (b *builder) add(name string, creds []*credential) *capRes {
	r := &capRes{name: name, id: newUUID(), creds: creds}
	b.results = append(b.results, r)
	return r
}

func (b *builder) pick(cats ...string) []*credential {
	var out []*credential
	for _, cat := range cats {
		for _, c := range b.scope {
			if c.spec.Category == cat {
				out = append(out, c)
			}
		}
	}
	return out
}

func (b *builder) credsFor(name string) []*credential {
	switch name {
	case capSimilarity, capImageChecks:
		return b.pick(jumio.CategorySelfie, jumio.CategoryID)
	case capLiveness, capAuthentication:
		return b.pick(jumio.CategorySelfie, jumio.CategoryFacemap)
	case capExtraction, capDataChecks, capAddressValidation, capProofOfResidency, capDLVerification:
		return b.pick(jumio.CategoryID, jumio.CategoryDocument)
	case capWatchlist:
		if c := b.pick(jumio.CategoryID, jumio.CategoryDocument); len(c) > 0 {
			return c
		}
		return b.pick(jumio.CategoryData)
	case capEmail, capPhone:
		return b.pick(jumio.CategoryData)
	}
	return slices.Clone(b.scope)
}

func (b *builder) has(name string) bool { return slices.Contains(b.e.spec.Capabilities, name) }

// dataBased reports whether r reads prepared data instead of images.
func dataBased(r *capRes) bool {
	for _, c := range r.creds {
		if c.spec.Category != jumio.CategoryData {
			return false
		}
	}
	return len(r.creds) > 0
}

// missingData reports whether a data-based capability lacks its input.
func (b *builder) missingData(r *capRes) bool {
	if !dataBased(r) {
		return false
	}
	pd := b.e.preparedData
	switch r.name {
	case capEmail:
		return pd == nil || pd.Email == ""
	case capPhone:
		return pd == nil || pd.PhoneNumber == ""
	case capWatchlist:
		return pd == nil || pd.FirstName == "" || pd.LastName == ""
	}
	return pd == nil
}

// lacksCountryAndType reports whether c is an ID uploaded over the API
// although the account request named no country and ID type: "If the
// images are uploaded via the REST APIs the information must be provided
// as a credential object of the account creation or update body"
// (jumio-api.md §10.2). Jumio does not say which label usability then
// gets; the simulator answers NOT_EXECUTED / TECHNICAL_ERROR.
func (b *builder) lacksCountryAndType(c *credential) bool {
	return c.spec.Category == jumio.CategoryID && b.e.channel == jumio.ChannelAPI &&
		b.e.idSelection == nil && !b.s.sw.AllowMissingCountryAndType
}

// base sets each result's decision from the outcome and the facts.
func (b *builder) base(out Outcome) {
	var rejectCaps, warnCaps []string
	switch {
	case b.has(capSimilarity):
		rejectCaps = []string{capSimilarity}
	case b.has(capEmail) || b.has(capPhone):
		rejectCaps = []string{capEmail, capPhone}
	default:
		rejectCaps = []string{capWatchlist}
	}
	switch {
	case b.has(capImageChecks):
		warnCaps = []string{capImageChecks}
	case b.has(capEmail) || b.has(capPhone):
		warnCaps = []string{capEmail, capPhone}
	default:
		warnCaps = []string{capWatchlist}
	}
	for _, r := range b.results {
		switch {
		case r.name == capUsability && !hasAllParts(r.creds[0]):
			r.typ, r.label = jumio.DecisionNotExecuted, labelNotUploaded
		case r.name == capUsability && b.lacksCountryAndType(r.creds[0]):
			r.typ, r.label = jumio.DecisionNotExecuted, labelTechnicalError
		case r.name == capUsability:
			r.typ, r.label = jumio.DecisionPassed, labelOK
		case b.missingData(r):
			r.typ, r.label = jumio.DecisionNotExecuted, labelNotEnoughData
		case out.WatchlistAlert && r.name == capWatchlist:
			r.typ, r.label = jumio.DecisionWarning, labelAlert
		case out.Decision == jumio.DecisionRejected && slices.Contains(rejectCaps, r.name):
			r.typ, r.label = rejectedDecision(r.name)
		case out.Decision == jumio.DecisionWarning && slices.Contains(warnCaps, r.name):
			r.typ, r.label = jumio.DecisionWarning, defaultLabel(r.name, jumio.DecisionWarning)
		default:
			r.typ, r.label = jumio.DecisionPassed, defaultLabel(r.name, jumio.DecisionPassed)
		}
	}
}

// rejectedDecision is how a capability expresses a rejection. Watchlist
// screening has no REJECTED type: a hit is a WARNING / ALERT.
func rejectedDecision(name string) (string, string) {
	if name == capWatchlist {
		return jumio.DecisionWarning, labelAlert
	}
	return jumio.DecisionRejected, defaultLabel(name, jumio.DecisionRejected)
}

// defaultLabel is a typical label for a capability's decision type.
func defaultLabel(name, typ string) string {
	switch typ {
	case jumio.DecisionPassed:
		switch name {
		case capSimilarity:
			return labelMatch
		case capEmail, capPhone:
			return labelLowRisk
		}
		return labelOK
	case jumio.DecisionWarning:
		switch name {
		case capImageChecks:
			return labelRepeatedFace
		case capSimilarity:
			return "NOT_POSSIBLE"
		case capEmail, capPhone:
			return labelMediumRisk
		case capUsability:
			return "UNSUPPORTED_DOCUMENT_TYPE"
		case capLiveness:
			return "AGE_DIFFERENCE"
		case capDataChecks:
			return "DOCUMENT_EXPIRY_WITHIN_CONFIGURED_LIMIT"
		}
		return labelAlert
	case jumio.DecisionRejected:
		switch name {
		case capSimilarity:
			return labelNoMatch
		case capEmail, capPhone:
			return labelHighRisk
		case capUsability:
			return "BAD_QUALITY"
		case capLiveness:
			return "LIVENESS_UNDETERMINED"
		case capImageChecks:
			return "MANIPULATED_DOCUMENT"
		case capDataChecks:
			return "MISMATCHING_DATAPOINTS"
		case capAuthentication:
			return "FAILED"
		}
		return "DENY"
	}
	return labelTechnicalError
}

// notExecuted marks every result NOT_EXECUTED: those without prerequisites
// with rootLabel, the others PRECONDITION_NOT_FULFILLED.
func (b *builder) notExecuted(rootLabel string) {
	for _, r := range b.results {
		r.typ = jumio.DecisionNotExecuted
		if r.name == capUsability || dataBased(r) {
			r.label = rootLabel
		} else {
			r.label = labelPrecondition
		}
	}
}

func (b *builder) override(caps map[string]jumio.Decision) {
	for name, d := range caps {
		switch d.Type {
		case jumio.DecisionPassed, jumio.DecisionWarning, jumio.DecisionRejected, jumio.DecisionNotExecuted:
		default:
			continue
		}
		for _, r := range b.results {
			if r.name != name {
				continue
			}
			r.typ, r.label = d.Type, d.Details.Label
			if r.label == "" {
				r.label = defaultLabel(name, d.Type)
			}
			if d.Risk != nil {
				risk := *d.Risk
				r.risk = &risk
			}
		}
	}
}

func capRank(name string) int {
	switch name {
	case capUsability:
		return 0
	case capSimilarity, capLiveness, capImageChecks, capAuthentication:
		return 1
	case capExtraction:
		return 2
	}
	return 3
}

func capDeps(name string) []string {
	switch name {
	case capExtraction:
		return []string{capImageChecks}
	case capDataChecks, capWatchlist, capAddressValidation, capProofOfResidency, capDLVerification:
		return []string{capImageChecks, capExtraction}
	}
	return nil
}

func failed(typ string) bool {
	return typ == jumio.DecisionRejected || typ == jumio.DecisionNotExecuted
}

// propagate makes dependants of failed prerequisites NOT_EXECUTED /
// PRECONDITION_NOT_FULFILLED, in dependency order.
func (b *builder) propagate() {
	usability := map[string]*capRes{}
	for _, r := range b.results {
		if r.name == capUsability {
			usability[r.creds[0].id] = r
		}
	}
	for rank := 1; rank <= 3; rank++ {
		for _, r := range b.results {
			if capRank(r.name) != rank || r.typ == jumio.DecisionNotExecuted {
				continue
			}
			bad := false
			for _, c := range r.creds {
				if u := usability[c.id]; u != nil && failed(u.typ) {
					bad = true
				}
			}
			for _, dep := range capDeps(r.name) {
				for _, x := range b.results {
					if x.name == dep && failed(x.typ) {
						bad = true
					}
				}
			}
			if bad {
				r.typ, r.label = jumio.DecisionNotExecuted, labelPrecondition
			}
		}
	}
}

// overall makes the outcome's decision consistent with the results.
func (b *builder) overall(out Outcome) jumio.Decision {
	typ, label, score := out.Decision, out.Label, out.Score
	if len(b.results) > 0 {
		allNotExecuted, anyRejected, anyWarning := true, false, false
		for _, r := range b.results {
			if r.typ != jumio.DecisionNotExecuted {
				allNotExecuted = false
			}
			if r.typ == jumio.DecisionRejected || (r.name == capUsability && r.typ == jumio.DecisionNotExecuted) {
				anyRejected = true
			}
			if r.typ == jumio.DecisionWarning && !(out.WatchlistAlert && r.name == capWatchlist) {
				anyWarning = true
			}
		}
		switch {
		case allNotExecuted:
			if typ != jumio.DecisionNotExecuted {
				typ, label, score = jumio.DecisionNotExecuted, jumio.DecisionNotExecuted, -1
			}
		case anyRejected && (typ == jumio.DecisionPassed || typ == jumio.DecisionWarning):
			typ, label, score = jumio.DecisionRejected, jumio.DecisionRejected, ScoreRejected
		case anyWarning && typ == jumio.DecisionPassed:
			typ, label, score = jumio.DecisionWarning, jumio.DecisionWarning, ScoreWarning
		}
	}
	return jumio.Decision{Type: typ, Details: jumio.DecisionDetails{Label: label}, Risk: &jumio.Risk{Score: score}}
}

// processedResultLocked decides a processed execution. s.mu must be held
// (it uses the server's random source).
func (s *Server) processedResultLocked(e *execution, out Outcome, now time.Time) *result {
	out = out.normalized()
	b := newBuilder(s, e, now)
	b.base(out)
	if out.Decision == jumio.DecisionNotExecuted {
		b.notExecuted(labelTechnicalError)
	}
	b.override(out.Capabilities)
	b.propagate()
	return b.finish(b.overall(out))
}

// expiredResultLocked is the result of an execution that expired: nothing
// executed, decision NOT_EXECUTED with the status as label and score -1
// (or REJECTED / 100 with Switches.ExpiredAsRejected). s.mu must be held.
func (s *Server) expiredResultLocked(e *execution) *result {
	b := newBuilder(s, e, e.completedAt)
	b.notExecuted(labelNotUploaded)
	if s.sw.ExpiredAsRejected {
		return b.finish(jumio.Decision{Type: jumio.DecisionRejected,
			Details: jumio.DecisionDetails{Label: jumio.DecisionRejected}, Risk: &jumio.Risk{Score: 100}})
	}
	return b.finish(jumio.Decision{Type: jumio.DecisionNotExecuted,
		Details: jumio.DecisionDetails{Label: e.status}, Risk: &jumio.Risk{Score: -1}})
}

func (b *builder) finish(d jumio.Decision) *result {
	b.fillData()
	res := &result{decision: d, capabilities: b.capabilities(), steps: b.steps()}
	for _, c := range b.scope {
		res.scope = append(res.scope, c.id)
	}
	return res
}

func (b *builder) capabilities() jumio.Capabilities {
	var caps jumio.Capabilities
	other := map[string][]jumio.RawResult{}
	for _, r := range b.results {
		switch r.name {
		case capExtraction:
			caps.Extraction = append(caps.Extraction, typedResult[jumio.ExtractionData](r))
		case capSimilarity:
			caps.Similarity = append(caps.Similarity, typedResult[jumio.SimilarityData](r))
		case capLiveness:
			caps.Liveness = append(caps.Liveness, typedResult[jumio.LivenessData](r))
		case capImageChecks:
			caps.ImageChecks = append(caps.ImageChecks, typedResult[jumio.ImageChecksData](r))
		case capWatchlist:
			caps.WatchlistScreening = append(caps.WatchlistScreening, typedResult[jumio.WatchlistData](r))
		case capEmail:
			caps.EmailVerification = append(caps.EmailVerification, typedResult[jumio.EmailVerificationData](r))
		case capPhone:
			caps.PhoneVerification = append(caps.PhoneVerification, typedResult[jumio.PhoneVerificationData](r))
		case capUsability:
			caps.Usability = append(caps.Usability, typedResult[json.RawMessage](r))
		case capDataChecks:
			caps.DataChecks = append(caps.DataChecks, typedResult[json.RawMessage](r))
		case capAuthentication:
			caps.Authentication = append(caps.Authentication, typedResult[json.RawMessage](r))
		case capAddressValidation:
			caps.AddressValidation = append(caps.AddressValidation, typedResult[json.RawMessage](r))
		case capProofOfResidency:
			caps.ProofOfResidency = append(caps.ProofOfResidency, typedResult[json.RawMessage](r))
		case capDLVerification:
			caps.DrivingLicenseVerification = append(caps.DrivingLicenseVerification, typedResult[json.RawMessage](r))
		case "braCpfValidation":
			caps.BraCpfValidation = append(caps.BraCpfValidation, typedResult[json.RawMessage](r))
		case "biometricVerification":
			caps.BiometricVerification = append(caps.BiometricVerification, typedResult[json.RawMessage](r))
		default:
			other[r.name] = append(other[r.name], typedResult[json.RawMessage](r))
		}
	}
	for name, rs := range other {
		raw, err := json.Marshal(rs)
		if err != nil {
			continue
		}
		if caps.Other == nil {
			caps.Other = map[string]json.RawMessage{}
		}
		caps.Other[name] = raw
	}
	return caps
}

func typedResult[D any](r *capRes) jumio.Result[D] {
	out := jumio.Result[D]{
		ID:       r.id,
		Decision: jumio.Decision{Type: r.typ, Details: jumio.DecisionDetails{Label: r.label}, Risk: r.risk},
	}
	for _, c := range r.creds {
		out.Credentials = append(out.Credentials, jumio.CredentialRef{ID: c.id, Category: c.spec.Category})
	}
	if d, ok := r.data.(*D); ok {
		out.Data = d
	}
	return out
}

// stepName is the step a capability's result belongs to. Jumio documents
// four step names (ADDRESS_VERIFICATION, DL_VERIFICATION, ID_IV,
// SCREENING; jumio-api.md §6.3) and the simulator uses no other. Which
// step risk signals (email, phone) and custom capabilities fall under is
// undocumented; the simulator's choice: SCREENING for those that read
// prepared data only, ID_IV for those that judge images.
func stepName(r *capRes) string {
	switch r.name {
	case capUsability, capExtraction, capSimilarity, capLiveness, capDataChecks, capImageChecks, capAuthentication:
		return stepIDIV
	case capWatchlist, capEmail, capPhone:
		return stepScreening
	case capAddressValidation, capProofOfResidency:
		return stepAddressVerification
	case capDLVerification:
		return stepDLVerification
	}
	for _, c := range r.creds {
		if isImageCategory(c.spec.Category) {
			return stepIDIV
		}
	}
	return stepScreening
}

// stepNames are the step names Jumio documents.
var stepNames = []string{stepAddressVerification, stepDLVerification, stepIDIV, stepScreening}

// steps groups the results into Jumio's steps; a step's decision is the
// worst of its capabilities'.
func (b *builder) steps() []jumio.Step {
	var steps []jumio.Step
	index := map[string]int{}
	for _, r := range b.results {
		name := stepName(r)
		i, ok := index[name]
		if !ok {
			i = len(steps)
			index[name] = i
			steps = append(steps, jumio.Step{ID: newUUID(), Name: name})
		}
		st := &steps[i]
		st.CapabilityIDs = append(st.CapabilityIDs, r.id)
		if worse(r.typ, st.Decision.Type) {
			st.Decision = jumio.Decision{Type: r.typ, Details: jumio.DecisionDetails{Label: r.typ}}
		}
	}
	return steps
}

func worse(a, b string) bool {
	rank := map[string]int{"": 0, jumio.DecisionNotExecuted: 1, jumio.DecisionPassed: 2, jumio.DecisionWarning: 3, jumio.DecisionRejected: 4}
	return rank[a] > rank[b]
}

// fillData generates each executed result's data from its final decision.
func (b *builder) fillData() {
	var ext *jumio.ExtractionData
	extraction := func() *jumio.ExtractionData {
		if ext == nil {
			ext = b.extractionData()
		}
		return ext
	}
	for _, r := range b.results {
		executed := r.typ != jumio.DecisionNotExecuted
		switch r.name {
		case capExtraction:
			if executed {
				r.data = extraction()
			} else {
				r.data = &jumio.ExtractionData{}
			}
		case capSimilarity:
			if executed {
				sim := similarityMatch
				switch r.typ {
				case jumio.DecisionRejected:
					sim = similarityNotMatch
				case jumio.DecisionWarning:
					sim = similarityNotPossible
				}
				r.data = &jumio.SimilarityData{Similarity: sim}
			}
		case capLiveness:
			if executed {
				age := ageOn(extraction().DateOfBirth, b.now)
				pa := float64(age)
				r.data = &jumio.LivenessData{Type: livenessJumioStandard, PredictedAge: &pa,
					AgeConfidenceRange: fmt.Sprintf("%d-%d", max(age-15, 14), age+15)}
			}
		case capImageChecks:
			if executed {
				fs := &jumio.FaceSearchFindings{Status: faceSearchDone}
				if r.label == labelRepeatedFace {
					n := 2 + b.s.rng.IntN(3)
					for range n {
						fs.Findings = append(fs.Findings, newUUID())
					}
				}
				r.data = &jumio.ImageChecksData{FaceSearchFindings: fs}
			}
		case capWatchlist:
			if executed {
				r.data = b.watchlistData(r)
			}
		case capEmail:
			if executed {
				r.data = b.emailData(r)
			}
		case capPhone:
			if executed {
				r.data = b.phoneData(r)
			}
		}
	}
}

func date(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func ageOn(dob string, now time.Time) int {
	t, err := time.Parse(time.DateOnly, dob)
	if err != nil {
		return 35
	}
	age := now.Year() - t.Year()
	if now.YearDay() < t.YearDay() {
		age--
	}
	return max(age, 0)
}

// extractionData is the document data: the prepared data's when present,
// else a synthetic US driving licence (JOHN JACOB SMITH).
func (b *builder) extractionData() *jumio.ExtractionData {
	now := b.now.UTC()
	d := &jumio.ExtractionData{
		Type: documentDrivingLicense, SubType: subtypeRegularDLicense, IssuingCountry: "USA",
		FirstName: "JOHN JACOB", LastName: "SMITH", DateOfBirth: "1969-01-18",
		ExpiryDate: date(now.AddDate(4, 0, 0)), IssuingDate: date(now.AddDate(-1, 0, 0)),
		DocumentNumber: "N1234567", State: "CA", Gender: "M",
		Address: &jumio.ExtractionAddress{Line1: "1 MARKET ST", City: "SAN FRANCISCO", Subdivision: "CA",
			PostalCode: "94105", Country: "USA", FormattedAddress: "1 MARKET ST, SAN FRANCISCO, CA 94105, USA"},
	}
	if sel := b.e.idSelection; sel != nil {
		// The document is of the country and type the request named.
		d.IssuingCountry = sel.countries[0]
		if t := sel.types[0]; t != d.Type {
			d.Type, d.SubType = t, ""
		}
	}
	if pd := b.e.preparedData; pd != nil {
		if pd.FirstName != "" {
			d.FirstName = strings.ToUpper(strings.TrimSpace(pd.FirstName + " " + pd.MiddleName))
		}
		if pd.LastName != "" {
			d.LastName = strings.ToUpper(pd.LastName)
		}
		if pd.DateOfBirth != "" {
			d.DateOfBirth = pd.DateOfBirth
		}
		if pd.Nationality != "" {
			d.Nationality = pd.Nationality
		}
		if id := pd.ID; id != nil {
			if id.IDNumber != "" {
				d.DocumentNumber = id.IDNumber
			}
			switch id.Type {
			case "PASSPORT", "ID_CARD", "VISA", documentDrivingLicense:
				d.Type, d.SubType = id.Type, ""
			}
			if id.ExpiryDate != "" {
				d.ExpiryDate = id.ExpiryDate
			}
			if id.IssuingDate != "" {
				d.IssuingDate = id.IssuingDate
			}
		}
		if a := pd.Address; a != nil && a.Line1 != "" {
			d.Address = &jumio.ExtractionAddress{Line1: strings.ToUpper(a.Line1), City: strings.ToUpper(a.City),
				Subdivision: a.Subdivision, PostalCode: a.PostalCode, Country: a.Country}
			d.Address.FormattedAddress = strings.Join(slices.DeleteFunc([]string{d.Address.Line1, d.Address.City,
				strings.TrimSpace(a.Subdivision + " " + a.PostalCode), a.Country}, func(s string) bool { return s == "" }), ", ")
			if a.Subdivision != "" {
				d.State = a.Subdivision
			}
			if a.Country != "" {
				d.IssuingCountry = a.Country
			}
		}
	}
	d.CurrentAge = fmt.Sprint(ageOn(d.DateOfBirth, now))
	if t, err := time.Parse(time.DateOnly, d.DateOfBirth); err == nil {
		d.DateOfBirthParts = &jumio.DateParts{Year: t.Format("2006"), Month: t.Format("01"), Day: t.Format("02")}
	}
	return d
}

func (b *builder) watchlistData(r *capRes) *jumio.WatchlistData {
	hits := 0
	if r.label == labelAlert {
		hits = 1 + b.s.rng.IntN(3)
	}
	ref := fmt.Sprintf("%d-%s", b.now.Unix(), newUUID()[:8])
	return &jumio.WatchlistData{
		SearchDate: jumio.FormatTimestamp(b.now), SearchStatus: watchlistSearchDone,
		SearchID: fmt.Sprint(100000000 + b.s.rng.IntN(900000000)), SearchReference: ref,
		SearchResultURL: "https://app.complyadvantage.com/public/search/" + ref + "/" + newUUID()[24:],
		SearchResults:   &hits,
	}
}

func (b *builder) emailData(r *capRes) *jumio.EmailVerificationData {
	domain := "example.com"
	if pd := b.e.preparedData; pd != nil {
		if i := strings.LastIndexByte(pd.Email, '@'); i >= 0 && i < len(pd.Email)-1 {
			domain = strings.ToLower(pd.Email[i+1:])
		}
	}
	company := strings.SplitN(domain, ".", 2)[0]
	if company != "" {
		company = strings.ToUpper(company[:1]) + company[1:]
	}
	t, f := true, false
	d := &jumio.EmailVerificationData{
		EmailVerificationStatus: emailExists, FirstVerifiedAt: "2015-10-27T00:00:00.000Z", TotalHits: "12",
		EmailExists: &t, DomainExists: &t, DomainName: domain, DomainCompany: company, DomainRiskLevel: "LOW",
		DomainCreationDate: "2004-03-30T07:07:55.000Z", Advice: "ACCEPT", DomainCountry: "USA",
		DomainCategory: "Technology", DomainCorporate: &t,
	}
	switch r.typ {
	case jumio.DecisionWarning:
		d.TotalHits, d.DomainRiskLevel, d.Advice, d.DomainCorporate = "1", "MEDIUM", "DATA_REVIEW", &f
	case jumio.DecisionRejected:
		d.EmailVerificationStatus, d.TotalHits, d.EmailExists, d.Advice = emailInexistent, "1", &f, "DATA_REVIEW"
	}
	return d
}

func (b *builder) phoneData(r *capRes) *jumio.PhoneVerificationData {
	f := false
	level, traffic := "low", "normal"
	switch r.typ {
	case jumio.DecisionWarning:
		level, traffic = "medium", "unusual"
	case jumio.DecisionRejected:
		level, traffic = "high", "suspicious"
	}
	return &jumio.PhoneVerificationData{
		PhoneType: "MOBILE", Carrier: "Simulated Mobile", Blocked: &f,
		RiskInsights: &jumio.PhoneRiskInsights{
			RelativeRisk:               []string{level},
			ApplicationToPersonTraffic: []string{traffic},
			PersonToPersonTraffic:      []string{traffic},
		},
	}
}
