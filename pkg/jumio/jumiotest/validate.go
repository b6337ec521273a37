package jumiotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// The simulator validates requests with its own code, written from Jumio's
// documentation (see docs/JUMIO.md for the table of rules and sources). It
// deliberately does not call the client's validators in package jumio: a
// bug there must be caught here, not copied. Messages name the field and
// the rule, never a request value.

// Limits from Jumio's documentation (jumio-api.md §2.1).
const (
	maxReferenceChars    = 100 // customerInternalReference, userReference: 1..100
	maxReportingChars    = 255 // reportingCriteria: 1..255
	maxURLChars          = 255 // callbackUrl, web.successUrl, web.errorUrl
	maxLocaleChars       = 5   // web.locale
	minTokenLifetime     = 5 * time.Minute
	maxTokenLifetime     = 60 * 24 * time.Hour
	defaultTokenLifetime = 30 * time.Minute
)

// Forbidden character sets, as Jumio lists them.
const (
	// forbiddenReferenceChars: customerInternalReference must not contain
	// any of these (docs.jumio.com "Creating or Updating Accounts" and the
	// Accounts API reference; the shorter documentation.jumio.ai list is a
	// subset). userReference has no such rule (jumio-api.md §10.7).
	forbiddenReferenceChars = "<>\"/;`%{}|"
	// forbiddenPreparedDataChars: "the character set [^<>"/;%|] is not
	// allowed in the prepared data body values for the following keys:
	// firstName, lastName, middleName, paternalSurname, maternalSurname,
	// email, and phoneNumber" (Standalone Risk Signal quickstart).
	forbiddenPreparedDataChars = "<>\"/;%|"
)

var (
	// tokenLifetimeRE is the Accounts API's pattern for tokenLifetime.
	tokenLifetimeRE = regexp.MustCompile(`^([+-]?\d+)([smhd]{1})$`)
	alpha3RE        = regexp.MustCompile(`^[A-Z]{3}$`)
	alpha2or3RE     = regexp.MustCompile(`^[A-Z]{2,3}$`)
	e164RE          = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	workflowKeyRE   = regexp.MustCompile(`^[0-9]{1,18}$`)
)

// Credential categories and document types the Accounts API accepts in
// workflowDefinition.credentials (KYX guide).
var (
	credentialCategories = []string{jumio.CategoryID, jumio.CategoryFacemap, jumio.CategoryDocument, jumio.CategorySelfie, jumio.CategoryData}
	credentialTypes      = map[string][]string{
		jumio.CategoryID:      {"ID_CARD", "DRIVING_LICENSE", "PASSPORT", "VISA"},
		jumio.CategoryFacemap: {"IPROOV_STANDARD", "IPROOV_PREMIUM", "JUMIO_STANDARD"},
	}
	preparedDocumentTypes = []string{"PASSPORT", "DRIVING_LICENSE", "DRIVER_LICENSE", "ID_CARD", "VISA"}
)

// accountWire is an account request as it arrives. Pointers tell an absent
// field from an empty one, and the key is kept raw: the simulator checks
// what was sent, not what the client's model would make of it.
type accountWire struct {
	CustomerInternalReference *string       `json:"customerInternalReference"`
	WorkflowDefinition        *workflowWire `json:"workflowDefinition"`
	UserReference             *string       `json:"userReference"`
	ReportingCriteria         *string       `json:"reportingCriteria"`
	CallbackURL               *string       `json:"callbackUrl"`
	TokenLifetime             *string       `json:"tokenLifetime"`
	Web                       *webWire      `json:"web"`
	UserConsent               *consentWire  `json:"userConsent"`
}

type workflowWire struct {
	Key          json.RawMessage            `json:"key"`
	Credentials  []credentialWire           `json:"credentials"`
	Capabilities map[string]json.RawMessage `json:"capabilities"`
}

type credentialWire struct {
	ID       *string         `json:"id"`
	Category *string         `json:"category"`
	Country  *predefinedWire `json:"country"`
	Type     *predefinedWire `json:"type"`
}

type predefinedWire struct {
	PredefinedType *string  `json:"predefinedType"`
	Values         []string `json:"values"`
}

type webWire struct {
	SuccessURL *string `json:"successUrl"`
	ErrorURL   *string `json:"errorUrl"`
	Locale     *string `json:"locale"`
}

type consentWire struct {
	UserIP       *string `json:"userIp"`
	UserLocation *struct {
		Country *string `json:"country"`
		State   *string `json:"state"`
	} `json:"userLocation"`
	Consent *struct {
		Obtained   *string `json:"obtained"`
		ObtainedAt *string `json:"obtainedAt"`
	} `json:"consent"`
}

// accountInput is a validated account request, as the simulator keeps it.
type accountInput struct {
	customerRef string
	userRef     string
	callbackURL string
	key         jumio.WorkflowKey
	lifetime    time.Duration
	web         webSettings
	consent     *userConsent
	// idSelection is the country and ID type of the first ID credential
	// object with both, nil without one (§10.2).
	idSelection *idSelection
}

type webSettings struct {
	successURL, errorURL, locale string
}

// userConsent is the userConsent object of the request, as given.
type userConsent struct {
	userIP, country, state, obtained, obtainedAt string
}

// valid reports whether the consent is what Jumio requires before ID or
// biometric data is uploaded over the API (jumio-api.md §10.1): userIp,
// userLocation.country and consent {obtained: "yes", obtainedAt}.
func (c *userConsent) valid() bool {
	return c != nil && c.userIP != "" && c.country != "" && c.obtained == "yes" && c.obtainedAt != ""
}

type idSelection struct {
	countries, types []string
}

// fieldErrors collects rule violations as "field message".
type fieldErrors []string

func (f *fieldErrors) add(field, format string, args ...any) {
	*f = append(*f, field+" "+fmt.Sprintf(format, args...))
}

func (f fieldErrors) detail() string {
	if len(f) == 0 {
		return ""
	}
	return "Validation failed: " + strings.Join(f, "; ")
}

func chars(s string) int { return utf8.RuneCountInString(s) }

// checkLength applies a documented [1..max] length to a present field.
func (f *fieldErrors) checkLength(field string, s *string, maxChars int) {
	switch {
	case s == nil:
	case *s == "":
		f.add(field, "must not be empty (1 to %d characters)", maxChars)
	case chars(*s) > maxChars:
		f.add(field, "must be at most %d characters", maxChars)
	}
}

// validateAccount checks an account request against Jumio's documented
// rules. It returns the request as the simulator keeps it, or the
// violations. strictCallback applies Jumio's callbackUrl rules in full.
// Whether the workflow key is known is for the caller to check.
func validateAccount(w *accountWire, strictCallback bool) (*accountInput, fieldErrors) {
	var errs fieldErrors
	in := &accountInput{lifetime: defaultTokenLifetime}

	switch ref := w.CustomerInternalReference; {
	case ref == nil || strings.TrimSpace(*ref) == "":
		errs.add("customerInternalReference", "is required")
	default:
		errs.checkLength("customerInternalReference", ref, maxReferenceChars)
		if strings.ContainsAny(*ref, forbiddenReferenceChars) {
			errs.add("customerInternalReference", "must not contain any of < > \" / ; ` %% { } |")
		}
		in.customerRef = *ref
	}

	// userReference: length only ([1..100]); base64 signatures with / + =
	// are fine.
	errs.checkLength("userReference", w.UserReference, maxReferenceChars)
	if w.UserReference != nil {
		in.userRef = *w.UserReference
	}
	errs.checkLength("reportingCriteria", w.ReportingCriteria, maxReportingChars)

	if u := w.CallbackURL; u != nil {
		if msg := checkCallbackURL(*u, strictCallback); msg != "" {
			errs.add("callbackUrl", "%s", msg)
		}
		in.callbackURL = *u
	}

	if tl := w.TokenLifetime; tl != nil {
		d, msg := parseTokenLifetime(*tl)
		if msg != "" {
			errs.add("tokenLifetime", "%s", msg)
		}
		in.lifetime = d
	}

	if wd := w.WorkflowDefinition; wd == nil {
		errs.add("workflowDefinition", "is required")
	} else {
		in.key = validateWorkflowDefinition(&errs, wd)
		in.idSelection = idSelectionOf(wd.Credentials)
	}
	if in.key == jumio.WorkflowWatchlistScreening && w.UserReference == nil {
		errs.add("userReference", "is required for workflow 10010")
	}

	if web := w.Web; web != nil {
		for _, u := range []struct {
			field string
			v     *string
			dst   *string
		}{{"web.successUrl", web.SuccessURL, &in.web.successURL}, {"web.errorUrl", web.ErrorURL, &in.web.errorURL}} {
			if u.v == nil {
				continue
			}
			errs.checkLength(u.field, u.v, maxURLChars)
			if *u.v != "" && !isAbsoluteHTTPURL(*u.v) {
				errs.add(u.field, "must be an absolute http(s) URL")
			}
			*u.dst = *u.v
		}
		errs.checkLength("web.locale", web.Locale, maxLocaleChars)
		if web.Locale != nil {
			in.web.locale = *web.Locale
		}
	}

	if c := w.UserConsent; c != nil {
		in.consent = validateConsent(&errs, c)
	}
	return in, errs
}

// validateWorkflowDefinition checks workflowDefinition and returns its key
// ("" when invalid).
func validateWorkflowDefinition(errs *fieldErrors, wd *workflowWire) jumio.WorkflowKey {
	key, msg := parseWorkflowKey(wd.Key)
	if msg != "" {
		errs.add("workflowDefinition.key", "%s", msg)
	}
	for i, c := range wd.Credentials {
		p := fmt.Sprintf("workflowDefinition.credentials[%d]", i)
		if c.ID != nil && *c.ID == "" {
			errs.add(p+".id", "must not be empty")
		}
		cat := ""
		switch {
		case c.Category != nil:
			cat = *c.Category
			if !slices.Contains(credentialCategories, cat) {
				errs.add(p+".category", "must be one of ID, FACEMAP, DOCUMENT, SELFIE, DATA")
			}
		case c.ID == nil:
			errs.add(p+".category", "is required unless the credential links an existing one by id")
		}
		if c.Country != nil {
			checkPredefined(errs, p+".country", c.Country)
			for j, v := range c.Country.Values {
				if !alpha3RE.MatchString(v) {
					errs.add(fmt.Sprintf("%s.country.values[%d]", p, j), "must be an ISO 3166-1 alpha-3 country code")
				}
			}
		}
		if c.Type != nil {
			checkPredefined(errs, p+".type", c.Type)
			if allowed, ok := credentialTypes[cat]; ok {
				for j, v := range c.Type.Values {
					if !slices.Contains(allowed, v) {
						errs.add(fmt.Sprintf("%s.type.values[%d]", p, j), "must be one of %s", strings.Join(allowed, ", "))
					}
				}
			}
		}
	}
	return key
}

func checkPredefined(errs *fieldErrors, path string, p *predefinedWire) {
	if t := p.PredefinedType; t != nil && *t != "DEFINED" && *t != "RECOMMENDED" {
		errs.add(path+".predefinedType", "must be DEFINED or RECOMMENDED")
	}
	if len(p.Values) == 0 {
		errs.add(path+".values", "must list at least one value")
	}
}

// idSelectionOf returns the country and type of the first ID credential
// object that gives both.
func idSelectionOf(creds []credentialWire) *idSelection {
	for _, c := range creds {
		if c.Category == nil || *c.Category != jumio.CategoryID || c.Country == nil || c.Type == nil ||
			len(c.Country.Values) == 0 || len(c.Type.Values) == 0 {
			continue
		}
		return &idSelection{countries: slices.Clone(c.Country.Values), types: slices.Clone(c.Type.Values)}
	}
	return nil
}

// parseWorkflowKey accepts a JSON integer or string, as Jumio's examples
// send both.
func parseWorkflowKey(raw json.RawMessage) (jumio.WorkflowKey, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", "is required"
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "must be a number or a string"
		}
		if s == "" {
			return "", "is required"
		}
	} else {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", "must be a number or a string"
		}
		if _, err := strconv.ParseUint(n.String(), 10, 64); err != nil {
			return "", "must be an integer workflow definition key"
		}
		s = n.String()
	}
	if !workflowKeyRE.MatchString(s) {
		return "", "invalid"
	}
	return jumio.WorkflowKey(s), ""
}

// parseTokenLifetime applies the Accounts API's pattern
// ^([+-]?\d+)([smhd]{1})$ and the documented range, 5m to 60d.
func parseTokenLifetime(s string) (time.Duration, string) {
	m := tokenLifetimeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, "must be an integer followed by one of s, m, h, d (e.g. 30m)"
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	if err != nil || n < 0 || n > int64(maxTokenLifetime/unit) {
		return 0, "must be between 5m and 60d"
	}
	d := time.Duration(n) * unit
	if d < minTokenLifetime || d > maxTokenLifetime {
		return 0, "must be between 5m and 60d"
	}
	return d, ""
}

// checkCallbackURL applies Jumio's callback URL rules: at most 255
// characters, an absolute URL without a fragment; with strict, also HTTPS,
// ASCII only (IDNA punycode for international names), no IP address as
// host and no explicit port (portal-settings guide). It returns the first
// rule broken, or "".
func checkCallbackURL(raw string, strict bool) string {
	if raw == "" {
		return "must not be empty (1 to 255 characters)"
	}
	if chars(raw) > maxURLChars {
		return "must be at most 255 characters"
	}
	if strings.Contains(raw, "#") {
		return "must not contain a fragment"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "must be an absolute http(s) URL"
	}
	if !strict {
		return ""
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 || raw[i] <= 0x20 {
			return "must be ASCII without spaces (punycode for international domain names)"
		}
	}
	if u.Scheme != "https" {
		return "must use https"
	}
	if net.ParseIP(strings.Trim(u.Hostname(), "[]")) != nil {
		return "must not use an IP address as host"
	}
	if u.Port() != "" {
		return "must not specify a port"
	}
	return ""
}

func isAbsoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// validateConsent checks the form of a userConsent object. Whether the
// consent suffices for an upload is checked at the upload.
func validateConsent(errs *fieldErrors, c *consentWire) *userConsent {
	out := &userConsent{}
	if ip := c.UserIP; ip != nil {
		if net.ParseIP(*ip) == nil {
			errs.add("userConsent.userIp", "must be an IPv4 or IPv6 address")
		}
		out.userIP = *ip
	}
	if l := c.UserLocation; l != nil {
		if l.Country != nil {
			if !alpha3RE.MatchString(*l.Country) {
				errs.add("userConsent.userLocation.country", "must be an ISO 3166-1 alpha-3 country code")
			}
			out.country = *l.Country
		}
		if l.State != nil {
			out.state = *l.State
		}
	}
	if cs := c.Consent; cs != nil {
		if cs.Obtained != nil {
			out.obtained = *cs.Obtained
		}
		if at := cs.ObtainedAt; at != nil {
			if _, err := time.Parse(time.RFC3339Nano, *at); err != nil {
				errs.add("userConsent.consent.obtainedAt", "must be a timestamp such as 2022-07-20T17:20:35.000Z")
			}
			out.obtainedAt = *at
		}
	}
	return out
}

// validatePreparedData applies Jumio's documented prepared-data rules: the
// forbidden characters in name, email and phone keys, E.164 phone numbers,
// YYYY-MM-DD dates, ISO country codes and the document types.
func validatePreparedData(p *jumio.PreparedData) fieldErrors {
	var errs fieldErrors
	for _, f := range []struct{ name, v string }{
		{"firstName", p.FirstName}, {"lastName", p.LastName}, {"middleName", p.MiddleName},
		{"paternalSurname", p.PaternalSurname}, {"maternalSurname", p.MaternalSurname},
		{"email", p.Email}, {"phoneNumber", p.PhoneNumber},
	} {
		if strings.ContainsAny(f.v, forbiddenPreparedDataChars) {
			errs.add(f.name, "must not contain any of < > \" / ; %% |")
		}
	}
	for _, f := range []struct{ name, v string }{{"phoneNumber", p.PhoneNumber}, {"phoneNumber2", p.PhoneNumber2}} {
		if f.v != "" && !strings.ContainsAny(f.v, forbiddenPreparedDataChars) && !e164RE.MatchString(f.v) {
			errs.add(f.name, "must be in E.164 format (+ and up to 15 digits)")
		}
	}
	dates := []struct{ name, v string }{{"dateOfBirth", p.DateOfBirth}}
	if d := p.ID; d != nil {
		dates = append(dates, struct{ name, v string }{"id.issuingDate", d.IssuingDate}, struct{ name, v string }{"id.expiryDate", d.ExpiryDate})
		if d.Type != "" && !slices.Contains(preparedDocumentTypes, d.Type) {
			errs.add("id.type", "must be one of PASSPORT, DRIVING_LICENSE, ID_CARD, VISA")
		}
	}
	if k := p.KYC; k != nil {
		dates = append(dates, struct{ name, v string }{"kyc.registrationDate", k.RegistrationDate})
	}
	for _, f := range dates {
		if f.v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, f.v); err != nil {
			errs.add(f.name, "must be a date in YYYY-MM-DD format")
		}
	}
	if a := p.Address; a != nil && a.Country != "" && !alpha2or3RE.MatchString(a.Country) {
		errs.add("address.country", "must be an ISO 3166-1 alpha-2 or alpha-3 country code")
	}
	return errs
}
