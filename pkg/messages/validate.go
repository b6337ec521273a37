package messages

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the request rules Jumio documents (lengths, forbidden
// characters, formats), shared by kycpipe's request validation and by
// pkg/jumio's client-side checks.

// FieldError is one rule violation. Field is the JSON path of the offending
// field (for example "workflowDefinition.key"). Message never repeats the
// field's value, so it is safe to log and to return to clients.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Validation error codes.
const (
	CodeRequired            = "required"
	CodeTooLong             = "too_long"
	CodeForbiddenCharacters = "forbidden_characters"
	CodeInvalidFormat       = "invalid_format"
	CodeOutOfRange          = "out_of_range"
	CodeInvalidValue        = "invalid_value"
)

// ValidationError lists every rule a request violates. It matches
// [ErrValidation].
type ValidationError struct {
	Fields []FieldError
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		parts = append(parts, f.Field+": "+f.Message)
	}
	return "jumio: request violates Jumio's rules: " + strings.Join(parts, "; ")
}

// ErrValidation is matched by every [ValidationError] and wrapped by the
// errors of [ParseTokenLifetime].
var ErrValidation = errors.New("jumio: request violates Jumio's rules")

// Is matches ErrValidation.
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Validator collects field errors. The zero value is ready to use.
type Validator struct {
	fields []FieldError
}

// Add records a violation.
func (v *Validator) Add(field, code, msg string) {
	v.fields = append(v.fields, FieldError{Field: field, Code: code, Message: msg})
}

// Err returns a *ValidationError if anything was recorded, else nil.
func (v *Validator) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	fields := append([]FieldError(nil), v.fields...)
	sort.SliceStable(fields, func(i, j int) bool {
		if fields[i].Field != fields[j].Field {
			return fields[i].Field < fields[j].Field
		}
		return fields[i].Code < fields[j].Code
	})
	// One entry per field and rule, even when two checks find the same fault.
	out := fields[:0]
	for i, f := range fields {
		if i > 0 && f.Field == fields[i-1].Field && f.Code == fields[i-1].Code {
			continue
		}
		out = append(out, f)
	}
	return &ValidationError{Fields: out}
}

// Fields returns the recorded violations.
func (v *Validator) Fields() []FieldError { return v.fields }

// Length checks an optional string's length (in characters): at most max.
func (v *Validator) Length(field, s string, max int) {
	if n := utf8.RuneCountInString(s); n > max {
		v.Add(field, CodeTooLong, fmt.Sprintf("must be at most %d characters (got %d)", max, n))
	}
}

// Required checks a required string: present, at most max characters.
func (v *Validator) Required(field, s string, max int) {
	if strings.TrimSpace(s) == "" {
		v.Add(field, CodeRequired, "is required")
		return
	}
	v.Length(field, s, max)
}

// NoControl rejects ASCII control characters (NUL, newlines, DEL, …) in s:
// kycpipe's own rule for references, never Jumio's.
func (v *Validator) NoControl(field, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			v.Add(field, CodeForbiddenCharacters, "must not contain control characters")
			return
		}
	}
}

// Chars rejects any character of forbidden in s.
func (v *Validator) Chars(field, s, forbidden string) {
	if i := strings.IndexAny(s, forbidden); i >= 0 {
		v.Add(field, CodeForbiddenCharacters, "must not contain any of "+quoteSet(forbidden))
	}
}

func quoteSet(set string) string {
	var b strings.Builder
	for i, r := range set {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Forbidden character sets from Jumio's documentation.
const (
	// ForbiddenReferenceChars may not appear in customerInternalReference
	// (docs.jumio.com lists the superset used here). They do not apply to
	// userReference (jumio-api.md §10.7).
	ForbiddenReferenceChars = "<>\"/;`%{}|"
	// ForbiddenPreparedDataChars may not appear in the prepared-data name,
	// email and phone fields ("to prevent SQL/XML injection threats").
	ForbiddenPreparedDataChars = "<>\"/;%|"
)

// Limits from Jumio's documentation.
const (
	MaxReferenceLength   = 100 // customerInternalReference, userReference
	MaxReportingLength   = 255 // reportingCriteria
	MaxURLLength         = 255 // callbackUrl, web.successUrl, web.errorUrl
	MaxLocaleLength      = 5   // web.locale
	MinTokenLifetime     = 5 * time.Minute
	MaxTokenLifetime     = 60 * 24 * time.Hour
	DefaultTokenLifetime = 30 * time.Minute
)

var tokenLifetimeRE = regexp.MustCompile(`^([+-]?\d+)([smhd])$`)

// ParseTokenLifetime parses Jumio's tokenLifetime format (an integer and one
// unit of s, m, h or d, e.g. "30m", "1d") and checks the 5m..60d range. Its
// errors wrap [ErrValidation].
func ParseTokenLifetime(s string) (time.Duration, error) {
	d, _, msg := tokenLifetime(s)
	if msg != "" {
		return 0, fmt.Errorf("%w: %s", ErrValidation, msg)
	}
	return d, nil
}

// tokenLifetime parses s; when it breaks a rule it returns the rule's code
// and a message naming the field, never echoing the value.
func tokenLifetime(s string) (d time.Duration, code, msg string) {
	m := tokenLifetimeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, CodeInvalidFormat, "tokenLifetime must be an integer followed by s, m, h or d (e.g. 30m)"
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n > 1<<31 || n < -(1<<31) {
		return 0, CodeOutOfRange, "tokenLifetime is out of range"
	}
	unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	d = time.Duration(n) * unit
	if d < MinTokenLifetime || d > MaxTokenLifetime {
		return 0, CodeOutOfRange, "tokenLifetime must be between 5m and 60d"
	}
	return d, "", ""
}

// CheckCallbackURL applies Jumio's rules for callback URLs: an absolute
// https URL of at most 255 characters in ASCII (IDNA punycode for
// international names), whose host is a domain name (no IP address), with no
// explicit port and no fragment. It returns a message describing the first
// rule broken, or "" if the URL is acceptable.
func CheckCallbackURL(raw string) string {
	if len(raw) > MaxURLLength {
		return fmt.Sprintf("must be at most %d characters", MaxURLLength)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] >= 0x80 || raw[i] <= 0x20 {
			return "must be ASCII without spaces (use punycode for international domain names)"
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "must be an absolute URL"
	}
	if u.Scheme != "https" {
		return "must use https"
	}
	if u.User != nil {
		return "must not contain credentials"
	}
	if u.Port() != "" {
		return "must not specify a port"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not contain a fragment"
	}
	host := u.Hostname()
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return "must use a domain name, not an IP address"
	}
	if !strings.Contains(host, ".") {
		return "must use a fully qualified domain name"
	}
	return ""
}

// ValidateAccountFields records the violations of req into v, with field
// paths prefixed by prefix (e.g. "" or "request.").
func ValidateAccountFields(v *Validator, prefix string, req *AccountRequest) {
	if req == nil {
		v.Add(prefix, CodeRequired, "is required")
		return
	}
	v.Required(prefix+"customerInternalReference", req.CustomerInternalReference, MaxReferenceLength)
	v.Chars(prefix+"customerInternalReference", req.CustomerInternalReference, ForbiddenReferenceChars)
	if req.UserReference != "" {
		// Jumio documents only the length for userReference (and that it
		// must hold no PII); the forbidden-character set is
		// customerInternalReference's (jumio-api.md §10.7), so base64
		// signatures with / + = pass. Control characters are kycpipe's own
		// rule: they only serve to break logs and downstream parsers.
		v.Length(prefix+"userReference", req.UserReference, MaxReferenceLength)
		v.NoControl(prefix+"userReference", req.UserReference)
	}
	v.Length(prefix+"reportingCriteria", req.ReportingCriteria, MaxReportingLength)
	if req.CallbackURL != "" {
		if msg := CheckCallbackURL(req.CallbackURL); msg != "" {
			v.Add(prefix+"callbackUrl", CodeInvalidFormat, msg)
		}
	}
	if req.TokenLifetime != "" {
		if _, code, msg := tokenLifetime(req.TokenLifetime); msg != "" {
			v.Add(prefix+"tokenLifetime", code, msg)
		}
	}
	validateWorkflowDefinition(v, prefix+"workflowDefinition", &req.WorkflowDefinition)
	if req.WorkflowDefinition.Key == WorkflowWatchlistScreening && req.UserReference == "" {
		v.Add(prefix+"userReference", CodeRequired, "is required for workflow 10010")
	}
	if w := req.Web; w != nil {
		v.Length(prefix+"web.successUrl", w.SuccessURL, MaxURLLength)
		v.Length(prefix+"web.errorUrl", w.ErrorURL, MaxURLLength)
		v.Length(prefix+"web.locale", w.Locale, MaxLocaleLength)
		for field, u := range map[string]string{"web.successUrl": w.SuccessURL, "web.errorUrl": w.ErrorURL} {
			if u != "" && !isAbsoluteHTTPURL(u) {
				v.Add(prefix+field, CodeInvalidFormat, "must be an absolute http(s) URL")
			}
		}
		if w.Locale != "" && !localeRE.MatchString(w.Locale) {
			v.Add(prefix+"web.locale", CodeInvalidFormat, "must be a language code such as en, en-GB or zh-CN")
		}
	}
	if c := req.UserConsent; c != nil {
		validateConsent(v, prefix+"userConsent", c)
	}
}

var (
	localeRE  = regexp.MustCompile(`^[a-z]{2}([-_][A-Za-z]{2})?$`)
	alpha3RE  = regexp.MustCompile(`^[A-Z]{3}$`)
	keyRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	uuidishRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
	uuidRE    = regexp.MustCompile(AccountIDPattern)
)

func isAbsoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

var documentTypes = map[string][]string{
	CategoryID:      {"ID_CARD", "DRIVING_LICENSE", "PASSPORT", "VISA"},
	CategoryFacemap: {"IPROOV_STANDARD", "IPROOV_PREMIUM", "JUMIO_STANDARD"},
}

func validateWorkflowDefinition(v *Validator, path string, wd *WorkflowDefinition) {
	if wd.Key == "" {
		v.Add(path+".key", CodeRequired, "is required")
	} else if !keyRE.MatchString(string(wd.Key)) {
		v.Add(path+".key", CodeInvalidFormat, "must be a workflow definition key such as 10164")
	}
	for i, c := range wd.Credentials {
		cp := fmt.Sprintf("%s.credentials[%d]", path, i)
		if c.ID != "" && !uuidishRE.MatchString(c.ID) {
			v.Add(cp+".id", CodeInvalidFormat, "must be a credential ID")
		}
		switch c.Category {
		case "", CategoryID, CategorySelfie, CategoryFacemap, CategoryDocument, CategoryData:
		default:
			v.Add(cp+".category", CodeInvalidValue, "must be one of ID, SELFIE, FACEMAP, DOCUMENT, DATA")
		}
		if c.Country != nil {
			checkPredefined(v, cp+".country", c.Country)
			for j, val := range c.Country.Values {
				if !alpha3RE.MatchString(val) {
					v.Add(fmt.Sprintf("%s.country.values[%d]", cp, j), CodeInvalidFormat, "must be an ISO 3166-1 alpha-3 country code")
				}
			}
		}
		if c.Type != nil {
			checkPredefined(v, cp+".type", c.Type)
			if allowed, ok := documentTypes[c.Category]; ok {
				for j, val := range c.Type.Values {
					if !contains(allowed, val) {
						v.Add(fmt.Sprintf("%s.type.values[%d]", cp, j), CodeInvalidValue, "must be one of "+strings.Join(allowed, ", "))
					}
				}
			}
		}
	}
	for name := range wd.Capabilities {
		if !keyRE.MatchString(name) {
			v.Add(path+".capabilities", CodeInvalidFormat, "capability names must be identifiers")
			break
		}
	}
}

func checkPredefined(v *Validator, path string, p *PredefinedValue) {
	switch p.PredefinedType {
	case "", "DEFINED", "RECOMMENDED":
	default:
		v.Add(path+".predefinedType", CodeInvalidValue, "must be DEFINED or RECOMMENDED")
	}
	if len(p.Values) == 0 {
		v.Add(path+".values", CodeRequired, "must list at least one value")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func validateConsent(v *Validator, path string, c *UserConsent) {
	if c.UserIP != "" && net.ParseIP(c.UserIP) == nil {
		v.Add(path+".userIp", CodeInvalidFormat, "must be an IPv4 or IPv6 address")
	}
	if l := c.UserLocation; l != nil {
		if !alpha3RE.MatchString(l.Country) {
			v.Add(path+".userLocation.country", CodeInvalidFormat, "must be an ISO 3166-1 alpha-3 country code")
		}
		v.Length(path+".userLocation.state", l.State, 10)
	}
	if cs := c.Consent; cs != nil {
		switch cs.Obtained {
		case "yes", "no", "na":
		default:
			v.Add(path+".consent.obtained", CodeInvalidValue, "must be yes, no or na")
		}
		if cs.ObtainedAt != "" {
			if _, ok := ParseTimestamp(cs.ObtainedAt); !ok {
				v.Add(path+".consent.obtainedAt", CodeInvalidFormat, "must be an RFC 3339 timestamp")
			}
		}
	}
}

// ValidatePreparedDataFields records the violations of p into v, with field
// paths prefixed by prefix.
func ValidatePreparedDataFields(v *Validator, prefix string, p *PreparedData) {
	if p == nil {
		return
	}
	for field, val := range map[string]string{
		"firstName": p.FirstName, "lastName": p.LastName, "middleName": p.MiddleName,
		"paternalSurname": p.PaternalSurname, "maternalSurname": p.MaternalSurname,
		"email": p.Email, "phoneNumber": p.PhoneNumber,
	} {
		v.Chars(prefix+field, val, ForbiddenPreparedDataChars)
		v.Length(prefix+field, val, 255)
	}
	if p.Email != "" && (!strings.Contains(p.Email, "@") || strings.ContainsAny(p.Email, " \t\r\n")) {
		v.Add(prefix+"email", CodeInvalidFormat, "must be an email address")
	}
	for field, val := range map[string]string{"phoneNumber": p.PhoneNumber, "phoneNumber2": p.PhoneNumber2} {
		if val != "" && !phoneRE.MatchString(val) {
			v.Add(prefix+field, CodeInvalidFormat, "must be a phone number in E.164 format (+ and up to 15 digits)")
		}
	}
	for field, val := range map[string]string{"dateOfBirth": p.DateOfBirth} {
		if val != "" && !isDate(val) {
			v.Add(prefix+field, CodeInvalidFormat, "must be a date in YYYY-MM-DD format")
		}
	}
	for field, val := range map[string]string{"ipAddress": p.IPAddress} {
		if val != "" && net.ParseIP(val) == nil {
			v.Add(prefix+field, CodeInvalidFormat, "must be an IPv4 or IPv6 address")
		}
	}
	for field, val := range map[string]string{
		"suffix": p.Suffix, "phoneNumber2": p.PhoneNumber2, "socialSecurityNumber": p.SocialSecurityNumber,
		"sex": p.Sex, "nationality": p.Nationality, "personalNumber": p.PersonalNumber,
	} {
		v.Length(prefix+field, val, 255)
	}
	if a := p.Address; a != nil {
		for field, val := range map[string]string{
			"line1": a.Line1, "line2": a.Line2, "line3": a.Line3, "line4": a.Line4, "line5": a.Line5,
			"postalCode": a.PostalCode, "city": a.City, "subdivision": a.Subdivision, "country": a.Country,
		} {
			v.Length(prefix+"address."+field, val, 255)
		}
		if a.Country != "" && !countryRE.MatchString(a.Country) {
			v.Add(prefix+"address.country", CodeInvalidFormat, "must be an ISO 3166-1 alpha-2 or alpha-3 country code")
		}
	}
	if d := p.ID; d != nil {
		v.Length(prefix+"id.idNumber", d.IDNumber, 255)
		switch d.Type {
		case "", "PASSPORT", "DRIVING_LICENSE", "DRIVER_LICENSE", "ID_CARD", "VISA":
		default:
			v.Add(prefix+"id.type", CodeInvalidValue, "must be PASSPORT, DRIVING_LICENSE, ID_CARD or VISA")
		}
		for field, val := range map[string]string{"id.issuingDate": d.IssuingDate, "id.expiryDate": d.ExpiryDate} {
			if val != "" && !isDate(val) {
				v.Add(prefix+field, CodeInvalidFormat, "must be a date in YYYY-MM-DD format")
			}
		}
	}
	if k := p.KYC; k != nil {
		if k.RegistrationDate != "" && !isDate(k.RegistrationDate) {
			v.Add(prefix+"kyc.registrationDate", CodeInvalidFormat, "must be a date in YYYY-MM-DD format")
		}
		if k.RegistrationIPAddress != "" && net.ParseIP(k.RegistrationIPAddress) == nil {
			v.Add(prefix+"kyc.registrationIpAddress", CodeInvalidFormat, "must be an IPv4 or IPv6 address")
		}
	}
}

var (
	phoneRE   = regexp.MustCompile(`^\+?[0-9]{4,15}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2,3}$`)
)

func isDate(s string) bool {
	_, err := time.Parse("2006-01-02", s)
	return err == nil
}

// ValidJumioID reports whether s looks like an ID Jumio hands out (UUIDs): 1
// to 64 letters, digits and dashes. IDs that pass are safe in URLs, NATS
// subjects and KV keys.
func ValidJumioID(s string) bool { return uuidishRE.MatchString(s) }

// AccountIDPattern is the form of a Jumio account ID: a UUID
// (jumio-api.md §5: the callback's account.id is a UUID), such as f22a7518-ad22-444b-839f-b5656f2aaa04,
// in either letter case.
const AccountIDPattern = `^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`

// ValidAccountID reports whether s is a Jumio account ID: a UUID, as in
// the accountId of a job whose account exists. A request naming anything
// else (a placeholder, a job ID) is refused before it reaches Jumio, where
// it could only end in a 404 and a dead letter.
func ValidAccountID(s string) bool { return uuidRE.MatchString(s) }
