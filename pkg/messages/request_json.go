package messages

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/kycpipe/kycpipe/internal/jsonx"
)

// Hand-written JSON for VerificationRequest, the payload every submission is
// decoded from and encoded into (ingest, worker, the request hash). They
// are fast paths over encoding/json (see internal/jsonx): the decoder
// handles well-formed requests whose keys are spelled exactly as the
// fields and gives up on anything else, which encoding/json then decodes
// (strictly, with its errors); the encoder writes what encoding/json
// writes, byte for byte, and defers to it for the rare values it does not
// handle (workflow capabilities, a time outside years 0-9999).
// FuzzRequestCodec checks both against encoding/json.

// decodeRequestFast decodes a request on the fast path; false: give up.
func decodeRequestFast(b []byte, req *VerificationRequest) bool {
	r := jsonx.NewReader(b)
	if r.Peek() != '{' {
		return false
	}
	ok := r.Object(func(k []byte) bool {
		switch string(k) {
		case "schema":
			return r.StringOrNull(&req.Schema)
		case "jobId":
			return r.StringOrNull(&req.JobID)
		case "region":
			return r.StringOrNull(&req.Region)
		case "accountId":
			return r.StringOrNull(&req.AccountID)
		case "customerInternalReference":
			return r.StringOrNull(&req.CustomerInternalReference)
		case "userReference":
			return r.StringOrNull(&req.UserReference)
		case "reportingCriteria":
			return r.StringOrNull(&req.ReportingCriteria)
		case "workflowDefinition":
			if r.Null() {
				return true
			}
			return decodeWorkflowDefinition(r, &req.WorkflowDefinition)
		case "channel":
			return r.StringOrNull(&req.Channel)
		case "callbackUrl":
			return r.StringOrNull(&req.CallbackURL)
		case "tokenLifetime":
			return r.StringOrNull(&req.TokenLifetime)
		case "web":
			if r.Null() {
				return true
			}
			req.Web = new(WebSettings)
			return decodeWebSettings(r, req.Web)
		case "userConsent":
			if r.Null() {
				return true
			}
			req.UserConsent = new(UserConsent)
			return decodeUserConsent(r, req.UserConsent)
		case "preparedData":
			if r.Null() {
				return true
			}
			req.PreparedData = new(PreparedData)
			return decodePreparedData(r, req.PreparedData)
		case "parts":
			if r.Null() {
				return true
			}
			req.Parts = []Part{}
			return r.Array(func() bool {
				var p Part
				if !decodePart(r, &p) {
					return false
				}
				req.Parts = append(req.Parts, p)
				return true
			})
		case "submittedAt":
			if r.Null() {
				return true
			}
			req.SubmittedAt = new(time.Time)
			return r.Time(req.SubmittedAt)
		}
		return false
	})
	return ok && r.End()
}

func decodeWorkflowDefinition(r *jsonx.Reader, w *WorkflowDefinition) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "key":
			return decodeWorkflowKey(r, &w.Key)
		case "credentials":
			if r.Null() {
				w.Credentials = nil
				return true
			}
			w.Credentials = []CredentialDefinition{}
			return r.Array(func() bool {
				var c CredentialDefinition
				if !decodeCredentialDefinition(r, &c) {
					return false
				}
				w.Credentials = append(w.Credentials, c)
				return true
			})
		case "capabilities":
			if r.Null() {
				w.Capabilities = nil
				return true
			}
			w.Capabilities = map[string]json.RawMessage{}
			return r.Map(func(name string) bool {
				raw, ok := r.Raw()
				w.Capabilities[name] = raw
				return ok
			})
		}
		return false
	})
}

// decodeWorkflowKey reads a key as WorkflowKey.UnmarshalJSON does: a
// string, or a non-negative integer (its text).
func decodeWorkflowKey(r *jsonx.Reader, k *WorkflowKey) bool {
	if r.Peek() == '"' {
		s, ok := r.String()
		*k = WorkflowKey(s)
		return ok
	}
	n, ok := r.Number()
	if !ok {
		return false
	}
	if _, err := strconv.ParseUint(n, 10, 64); err != nil {
		return false
	}
	*k = WorkflowKey(n)
	return true
}

func decodeCredentialDefinition(r *jsonx.Reader, c *CredentialDefinition) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&c.ID)
		case "category":
			return r.StringOrNull(&c.Category)
		case "country":
			if r.Null() {
				return true
			}
			c.Country = new(PredefinedValue)
			return decodePredefinedValue(r, c.Country)
		case "type":
			if r.Null() {
				return true
			}
			c.Type = new(PredefinedValue)
			return decodePredefinedValue(r, c.Type)
		}
		return false
	})
}

func decodePredefinedValue(r *jsonx.Reader, p *PredefinedValue) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "predefinedType":
			return r.StringOrNull(&p.PredefinedType)
		case "values":
			return r.Strings(&p.Values)
		}
		return false
	})
}

func decodeWebSettings(r *jsonx.Reader, w *WebSettings) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "successUrl":
			return r.StringOrNull(&w.SuccessURL)
		case "errorUrl":
			return r.StringOrNull(&w.ErrorURL)
		case "locale":
			return r.StringOrNull(&w.Locale)
		}
		return false
	})
}

func decodeUserConsent(r *jsonx.Reader, u *UserConsent) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "userIp":
			return r.StringOrNull(&u.UserIP)
		case "userLocation":
			if r.Null() {
				return true
			}
			u.UserLocation = new(UserLocation)
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "country":
					return r.StringOrNull(&u.UserLocation.Country)
				case "state":
					return r.StringOrNull(&u.UserLocation.State)
				}
				return false
			})
		case "consent":
			if r.Null() {
				return true
			}
			u.Consent = new(Consent)
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "obtained":
					return r.StringOrNull(&u.Consent.Obtained)
				case "obtainedAt":
					return r.StringOrNull(&u.Consent.ObtainedAt)
				}
				return false
			})
		}
		return false
	})
}

func decodePreparedData(r *jsonx.Reader, p *PreparedData) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "firstName":
			return r.StringOrNull(&p.FirstName)
		case "lastName":
			return r.StringOrNull(&p.LastName)
		case "middleName":
			return r.StringOrNull(&p.MiddleName)
		case "paternalSurname":
			return r.StringOrNull(&p.PaternalSurname)
		case "maternalSurname":
			return r.StringOrNull(&p.MaternalSurname)
		case "suffix":
			return r.StringOrNull(&p.Suffix)
		case "email":
			return r.StringOrNull(&p.Email)
		case "phoneNumber":
			return r.StringOrNull(&p.PhoneNumber)
		case "phoneNumber2":
			return r.StringOrNull(&p.PhoneNumber2)
		case "dateOfBirth":
			return r.StringOrNull(&p.DateOfBirth)
		case "socialSecurityNumber":
			return r.StringOrNull(&p.SocialSecurityNumber)
		case "sex":
			return r.StringOrNull(&p.Sex)
		case "nationality":
			return r.StringOrNull(&p.Nationality)
		case "personalNumber":
			return r.StringOrNull(&p.PersonalNumber)
		case "ipAddress":
			return r.StringOrNull(&p.IPAddress)
		case "address":
			if r.Null() {
				return true
			}
			a := new(PreparedAddress)
			p.Address = a
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "line1":
					return r.StringOrNull(&a.Line1)
				case "line2":
					return r.StringOrNull(&a.Line2)
				case "line3":
					return r.StringOrNull(&a.Line3)
				case "line4":
					return r.StringOrNull(&a.Line4)
				case "line5":
					return r.StringOrNull(&a.Line5)
				case "postalCode":
					return r.StringOrNull(&a.PostalCode)
				case "city":
					return r.StringOrNull(&a.City)
				case "subdivision":
					return r.StringOrNull(&a.Subdivision)
				case "country":
					return r.StringOrNull(&a.Country)
				}
				return false
			})
		case "id":
			if r.Null() {
				return true
			}
			d := new(PreparedDocument)
			p.ID = d
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "idNumber":
					return r.StringOrNull(&d.IDNumber)
				case "type":
					return r.StringOrNull(&d.Type)
				case "issuingDate":
					return r.StringOrNull(&d.IssuingDate)
				case "expiryDate":
					return r.StringOrNull(&d.ExpiryDate)
				}
				return false
			})
		case "kyc":
			if r.Null() {
				return true
			}
			g := new(PreparedRegistration)
			p.KYC = g
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "registrationDate":
					return r.StringOrNull(&g.RegistrationDate)
				case "registrationIpAddress":
					return r.StringOrNull(&g.RegistrationIPAddress)
				}
				return false
			})
		}
		return false
	})
}

func decodePart(r *jsonx.Reader, p *Part) bool {
	if r.Null() {
		return true
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "classifier":
			return r.StringOrNull(&p.Classifier)
		case "contentType":
			return r.StringOrNull(&p.ContentType)
		case "object":
			return r.StringOrNull(&p.Object)
		case "data":
			return r.Base64(&p.Data)
		case "size":
			return r.Int64(&p.Size)
		case "sha256":
			return r.StringOrNull(&p.SHA256)
		}
		return false
	})
}

// AppendRequestJSON appends req's JSON to dst exactly as encoding/json
// writes it: json.Marshal's bytes with escapeHTML, [Marshal]'s (an encoder
// without HTML escaping, schema as set) without. It does not stamp the
// schema.
func AppendRequestJSON(dst []byte, req *VerificationRequest, escapeHTML bool) ([]byte, error) {
	if out, ok := appendRequest(dst, req, escapeHTML); ok {
		return out, nil
	}
	b, err := encodeJSON(req, escapeHTML)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// encodeJSON is encoding/json's encoding of v, without the newline.
func encodeJSON(v any, escapeHTML bool) ([]byte, error) {
	if escapeHTML {
		return json.Marshal(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// appendRequest appends req's JSON as encoding/json writes it (escapeHTML:
// as json.Marshal; without: as Marshal's encoder). false: a value the fast
// path does not write (the caller uses encoding/json).
func appendRequest(b []byte, req *VerificationRequest, escapeHTML bool) ([]byte, bool) {
	if len(req.WorkflowDefinition.Capabilities) > 0 {
		return b, false
	}
	o := jsonx.Open(b, escapeHTML)
	o.StrOmit("schema", req.Schema)
	o.StrOmit("jobId", req.JobID)
	o.StrOmit("region", req.Region)
	o.StrOmit("accountId", req.AccountID)
	o.Str("customerInternalReference", req.CustomerInternalReference)
	o.StrOmit("userReference", req.UserReference)
	o.StrOmit("reportingCriteria", req.ReportingCriteria)
	o.Key("workflowDefinition")
	o.B = appendWorkflowDefinition(o.B, &req.WorkflowDefinition, escapeHTML)
	o.StrOmit("channel", req.Channel)
	o.StrOmit("callbackUrl", req.CallbackURL)
	o.StrOmit("tokenLifetime", req.TokenLifetime)
	if w := req.Web; w != nil {
		o.Key("web")
		o.B = appendWebSettings(o.B, w, escapeHTML)
	}
	if u := req.UserConsent; u != nil {
		o.Key("userConsent")
		o.B = appendUserConsent(o.B, u, escapeHTML)
	}
	if p := req.PreparedData; p != nil {
		o.Key("preparedData")
		o.B = appendPreparedData(o.B, p, escapeHTML)
	}
	if len(req.Parts) > 0 {
		o.Key("parts")
		o.B = append(o.B, '[')
		for i := range req.Parts {
			if i > 0 {
				o.B = append(o.B, ',')
			}
			o.B = appendPart(o.B, &req.Parts[i], escapeHTML)
		}
		o.B = append(o.B, ']')
	}
	if t := req.SubmittedAt; t != nil {
		if !o.Time("submittedAt", *t) {
			return b, false
		}
	}
	return o.Close(), true
}

func appendWorkflowDefinition(b []byte, w *WorkflowDefinition, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.Key("key")
	o.B = appendWorkflowKey(o.B, w.Key)
	if len(w.Credentials) > 0 {
		o.Key("credentials")
		o.B = append(o.B, '[')
		for i := range w.Credentials {
			if i > 0 {
				o.B = append(o.B, ',')
			}
			c := jsonx.Open(o.B, escapeHTML)
			cd := &w.Credentials[i]
			c.StrOmit("id", cd.ID)
			c.StrOmit("category", cd.Category)
			if cd.Country != nil {
				c.Key("country")
				c.B = appendPredefinedValue(c.B, cd.Country, escapeHTML)
			}
			if cd.Type != nil {
				c.Key("type")
				c.B = appendPredefinedValue(c.B, cd.Type, escapeHTML)
			}
			o.B = c.Close()
		}
		o.B = append(o.B, ']')
	}
	return o.Close()
}

// appendWorkflowKey writes a key as WorkflowKey.MarshalJSON does: numeric
// keys as numbers, others as strings (escaped as json.Marshal escapes, the
// method's own encoding, whatever the encoder's setting).
func appendWorkflowKey(b []byte, k WorkflowKey) []byte {
	if k != "" && isDigits(string(k)) && (k == "0" || k[0] != '0') {
		return append(b, k...)
	}
	return jsonx.AppendString(b, string(k), true)
}

func appendPredefinedValue(b []byte, p *PredefinedValue, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.StrOmit("predefinedType", p.PredefinedType)
	o.StringsOmit("values", p.Values)
	return o.Close()
}

func appendWebSettings(b []byte, w *WebSettings, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.StrOmit("successUrl", w.SuccessURL)
	o.StrOmit("errorUrl", w.ErrorURL)
	o.StrOmit("locale", w.Locale)
	return o.Close()
}

func appendUserConsent(b []byte, u *UserConsent, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.StrOmit("userIp", u.UserIP)
	if l := u.UserLocation; l != nil {
		o.Key("userLocation")
		lo := jsonx.Open(o.B, escapeHTML)
		lo.StrOmit("country", l.Country)
		lo.StrOmit("state", l.State)
		o.B = lo.Close()
	}
	if c := u.Consent; c != nil {
		o.Key("consent")
		co := jsonx.Open(o.B, escapeHTML)
		co.StrOmit("obtained", c.Obtained)
		co.StrOmit("obtainedAt", c.ObtainedAt)
		o.B = co.Close()
	}
	return o.Close()
}

func appendPreparedData(b []byte, p *PreparedData, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.StrOmit("firstName", p.FirstName)
	o.StrOmit("lastName", p.LastName)
	o.StrOmit("middleName", p.MiddleName)
	o.StrOmit("paternalSurname", p.PaternalSurname)
	o.StrOmit("maternalSurname", p.MaternalSurname)
	o.StrOmit("suffix", p.Suffix)
	o.StrOmit("email", p.Email)
	o.StrOmit("phoneNumber", p.PhoneNumber)
	o.StrOmit("phoneNumber2", p.PhoneNumber2)
	o.StrOmit("dateOfBirth", p.DateOfBirth)
	o.StrOmit("socialSecurityNumber", p.SocialSecurityNumber)
	o.StrOmit("sex", p.Sex)
	o.StrOmit("nationality", p.Nationality)
	o.StrOmit("personalNumber", p.PersonalNumber)
	o.StrOmit("ipAddress", p.IPAddress)
	if a := p.Address; a != nil {
		o.Key("address")
		ao := jsonx.Open(o.B, escapeHTML)
		ao.StrOmit("line1", a.Line1)
		ao.StrOmit("line2", a.Line2)
		ao.StrOmit("line3", a.Line3)
		ao.StrOmit("line4", a.Line4)
		ao.StrOmit("line5", a.Line5)
		ao.StrOmit("postalCode", a.PostalCode)
		ao.StrOmit("city", a.City)
		ao.StrOmit("subdivision", a.Subdivision)
		ao.StrOmit("country", a.Country)
		o.B = ao.Close()
	}
	if d := p.ID; d != nil {
		o.Key("id")
		do := jsonx.Open(o.B, escapeHTML)
		do.StrOmit("idNumber", d.IDNumber)
		do.StrOmit("type", d.Type)
		do.StrOmit("issuingDate", d.IssuingDate)
		do.StrOmit("expiryDate", d.ExpiryDate)
		o.B = do.Close()
	}
	if g := p.KYC; g != nil {
		o.Key("kyc")
		go2 := jsonx.Open(o.B, escapeHTML)
		go2.StrOmit("registrationDate", g.RegistrationDate)
		go2.StrOmit("registrationIpAddress", g.RegistrationIPAddress)
		o.B = go2.Close()
	}
	return o.Close()
}

func appendPart(b []byte, p *Part, escapeHTML bool) []byte {
	o := jsonx.Open(b, escapeHTML)
	o.Str("classifier", p.Classifier)
	o.StrOmit("contentType", p.ContentType)
	o.StrOmit("object", p.Object)
	if len(p.Data) > 0 {
		o.Key("data")
		o.B = jsonx.AppendBase64(o.B, p.Data)
	}
	o.IntOmit("size", p.Size)
	o.StrOmit("sha256", p.SHA256)
	return o.Close()
}
