package docs_test

// Annotations of the generated schemas: what reflection cannot know from the
// Go types (descriptions, enums, patterns, formats, cross-field rules).
// Every type and every property of a generated schema must have a note, and
// every note must name an existing type and property: adding a field to a
// message type without describing it, or renaming one, fails
// TestSchemasUpToDate.
//
// Patterns mirror the rules of messages.VerificationRequest.Validate and
// package jumio's validators; TestRequestSchemaAgreesWithValidate checks
// that they agree on a corpus of requests.

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// opt adjusts one schema.
type opt func(*jsonschema.Schema)

func desc(s string) opt { return func(x *jsonschema.Schema) { x.Description = s } }
func pattern(p string) opt {
	return func(x *jsonschema.Schema) { x.Pattern = p }
}
func format(f string) opt   { return func(x *jsonschema.Schema) { x.Format = f } }
func constant(v any) opt    { return func(x *jsonschema.Schema) { x.Const = v } }
func dflt(v any) opt        { return func(x *jsonschema.Schema) { x.Default = v } }
func examples(v ...any) opt { return func(x *jsonschema.Schema) { x.Examples = v } }
func maxLen(n int) opt {
	return func(x *jsonschema.Schema) { u := uint64(n); x.MaxLength = &u }
}
func minLen(n int) opt {
	return func(x *jsonschema.Schema) { u := uint64(n); x.MinLength = &u }
}
func minItems(n int) opt {
	return func(x *jsonschema.Schema) { u := uint64(n); x.MinItems = &u }
}
func maxItems(n int) opt {
	return func(x *jsonschema.Schema) { u := uint64(n); x.MaxItems = &u }
}
func minimum(n int) opt {
	return func(x *jsonschema.Schema) { x.Minimum = json.Number(strconv.Itoa(n)) }
}
func maximum(n int) opt {
	return func(x *jsonschema.Schema) { x.Maximum = json.Number(strconv.Itoa(n)) }
}

func enum[T any](vals ...T) opt {
	return func(x *jsonschema.Schema) {
		x.Enum = nil
		for _, v := range vals {
			x.Enum = append(x.Enum, v)
		}
	}
}

// ipAddress: an IPv4 or IPv6 address (net.ParseIP).
func ipAddress() opt {
	return func(x *jsonschema.Schema) {
		x.AnyOf = []*jsonschema.Schema{{Format: "ipv4"}, {Format: "ipv6"}}
	}
}

// items adjusts the item schema of an array.
func items(opts ...opt) opt {
	return func(x *jsonschema.Schema) {
		if x.Items == nil {
			x.Items = &jsonschema.Schema{}
		}
		for _, o := range opts {
			o(x.Items)
		}
	}
}

// refined adds property rules next to a $ref (e.g. country codes on a
// shared PredefinedValue).
func refined(prop string, opts ...opt) opt {
	return func(x *jsonschema.Schema) {
		if x.Properties == nil {
			x.Properties = jsonschema.NewProperties()
		}
		s := &jsonschema.Schema{}
		for _, o := range opts {
			o(s)
		}
		x.Properties.Set(prop, s)
	}
}

// Character classes of Jumio's and the pipeline's rules.
const (
	// no ASCII control characters (VerificationRequest.Validate: noControl)
	noControlClass = `\x00-\x1f\x7f`
	// jumio.ForbiddenReferenceChars
	referenceForbidden = "<>\"/;`%{}|"
	// jumio.ForbiddenPreparedDataChars
	preparedForbidden = `<>"/;%|`
)

func charsPattern(forbidden string) string { return "^[^" + forbidden + "]*$" }

var (
	jumioIDPattern   = `^[A-Za-z0-9-]{1,64}$`                                        // jumio.ValidID
	jobIDPattern     = `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`                            // messages.ValidJobID
	alpha3Pattern    = `^[A-Z]{3}$`                                                  // ISO 3166-1 alpha-3
	datePattern      = `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`                                // time.Parse("2006-01-02")
	phonePattern     = `^\+?[0-9]{4,15}$`                                            // E.164
	httpURLPattern   = `^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+`                            // absolute http(s) URL with a host
	objectPattern    = `^[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64}/(FRONT|BACK|FACE)$` // messages.ObjectName
	callbackURLRule  = `^https://[A-Za-z0-9.-]+\.[A-Za-z0-9-]+([/?][\x21\x22\x24-\x7e]*)?$`
	referencePattern = "^[^" + referenceForbidden + noControlClass + "]*[^" + referenceForbidden + noControlClass + ` ][^` + referenceForbidden + noControlClass + "]*$"
)

// typeNote annotates one named type (a root schema or a $defs entry).
type typeNote struct {
	desc     string
	props    []propNote
	required []string                 // properties required beyond the Go type's non-omitempty ones
	extra    func(*jsonschema.Schema) // cross-field rules
	example  string                   // a whole-value example (JSON)
}

type propNote struct {
	name string
	opts []opt
}

func p(name string, opts ...opt) propNote { return propNote{name, opts} }

// annotator applies the notes and reports what is missing.
type annotator struct {
	notes map[string]typeNote
	used  map[string]bool
}

func newAnnotator() (*annotator, error) {
	problemTypes, err := sourceStrings("../pkg/pipeline", func(name, val string) bool {
		return strings.HasPrefix(val, "urn:kycpipe:problem:")
	})
	if err != nil {
		return nil, err
	}
	fieldCodes, err := sourceStrings("../pkg/messages", func(name, val string) bool {
		return strings.HasPrefix(name, "Code")
	})
	if err != nil {
		return nil, err
	}
	// The webhook endpoint routes answer the codes of pkg/webhooks too.
	hookCodes, err := sourceStrings("../pkg/webhooks", func(name, val string) bool {
		return strings.HasPrefix(name, "Code")
	})
	if err != nil {
		return nil, err
	}
	for _, c := range hookCodes {
		if !slices.Contains(fieldCodes, c) {
			fieldCodes = append(fieldCodes, c)
		}
	}
	return &annotator{notes: notes(problemTypes, fieldCodes), used: map[string]bool{}}, nil
}

func (a *annotator) annotate(name string, s *jsonschema.Schema) []string {
	note, ok := a.notes[name]
	if !ok {
		return []string{fmt.Sprintf("type %s has no note: describe it in docs/schemanotes_test.go", name)}
	}
	a.used[name] = true
	var problems []string
	s.Description = note.desc
	for _, pn := range note.props {
		ps, ok := s.Properties.Get(pn.name)
		if !ok {
			problems = append(problems, fmt.Sprintf("note for %s.%s: %s has no such property", name, pn.name, name))
			continue
		}
		for _, o := range pn.opts {
			o(ps)
		}
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		if pair.Value.Description == "" {
			problems = append(problems, fmt.Sprintf("%s.%s has no description: add it to docs/schemanotes_test.go", name, pair.Key))
		}
	}
	for _, r := range note.required {
		if !contains(s.Required, r) {
			s.Required = append(s.Required, r)
		}
	}
	if note.extra != nil {
		note.extra(s)
	}
	if note.example != "" {
		// RawMessage keeps the example's key order.
		if !json.Valid([]byte(note.example)) {
			problems = append(problems, fmt.Sprintf("example of %s is not valid JSON", name))
		}
		s.Examples = []any{json.RawMessage(note.example)}
	}
	return problems
}

func (a *annotator) unused() []string {
	var out []string
	for name := range a.notes {
		if !a.used[name] {
			out = append(out, fmt.Sprintf("note for type %s: no generated schema has this type", name))
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sourceStrings returns the string constants of the Go package in dir
// (test files excluded) that keep accepts, in file and source order.
func sourceStrings(dir string, keep func(name, val string) bool) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		af, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					val, err := strconv.Unquote(lit.Value)
					if err == nil && keep(n.Name, val) {
						out = append(out, val)
					}
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no matching constants in %s", dir)
	}
	return out, nil
}

// ifThen is one conditional rule, for allOf.
func ifThen(ifs, then *jsonschema.Schema) *jsonschema.Schema {
	return &jsonschema.Schema{If: ifs, Then: then}
}

// withProps is a schema with the given properties (name, schema, ...)
// and required properties.
func withProps(required []string, kv ...any) *jsonschema.Schema {
	s := &jsonschema.Schema{Properties: jsonschema.NewProperties(), Required: required}
	for i := 0; i < len(kv); i += 2 {
		s.Properties.Set(kv[i].(string), kv[i+1].(*jsonschema.Schema))
	}
	return s
}

// notes describes every generated type. problemTypes and fieldCodes are the
// problem type URIs of package pipeline and the validation codes of package
// jumio, read from their source.
func notes(problemTypes, fieldCodes []string) map[string]typeNote {
	decisionTypes := messages.DecisionTypes
	regions := []string{string(jumio.RegionAMER), string(jumio.RegionEMEA), string(jumio.RegionAPAC)}
	return map[string]typeNote{
		// ---- kycpipe.verification.v1 ----
		"VerificationRequest": {
			desc: "A job: one identity verification to run through Jumio. It is the body of POST /v1/verifications " +
				"(application/json, or the `request` part of multipart/form-data) and the payload of kyc.jobs.submit " +
				"(header Nats-Msg-Id = the job ID). Decoding is strict: unknown properties are refused (400 over HTTP, a dead " +
				"letter on NATS), so every object of this schema forbids additional properties. The rules of this schema " +
				"mirror the pipeline's and Jumio's documented rules where JSON Schema can express them; the server applies " +
				"them all and answers 422 with a field-level list of violations. preparedData and parts hold personal data (PII).",
			props: []propNote{
				p("schema", desc("Schema identifier. Optional: an absent schema is read as kycpipe.verification.v1; any other value is refused (400)."),
					constant(messages.SchemaVerification)),
				p("jobId", desc("The job's ID: 1 to 64 letters, digits, '-' and '_', starting with a letter or digit. Optional: when absent, "+
					"ingest derives it from the Idempotency-Key header (idem_…) or assigns a new one (job_…). A repeated jobId with the same "+
					"request is a repeat (200, nothing new is created); with a different request, a conflict (409)."),
					pattern(jobIDPattern), examples("order-2026-0001")),
				p("region", desc("Jumio data center of the job (Jumio's spelling, or the portal's short names US, EU, SG; the server also "+
					"accepts them in any letter case and stores the Jumio spelling). Default: the pipeline's JUMIO_REGION (amer-1)."),
					enum(append(regions, "US", "EU", "SG")...)),
				p("accountId", desc("An existing Jumio account, by its ID (a UUID: the accountId of a job that reached Jumio): the job starts a new "+
					"workflow execution on it (PUT /accounts/{id}) instead of creating an account. Anything but a UUID is refused (422)."),
					pattern(messages.AccountIDPattern), examples("f22a7518-ad22-444b-839f-b5656f2aaa04")),
				p("customerInternalReference", desc("Your reference for the transaction (Jumio's customerInternalReference): required, at most 100 "+
					"characters, not blank, without control characters or any of < > \" / ; ` % { } |."),
					minLen(1), maxLen(jumio.MaxReferenceLength), pattern(referencePattern), examples("order-2026-0001")),
				p("userReference", desc("Your reference for the end user (Jumio's userReference): at most 100 characters, without control "+
					"characters (kycpipe's own rule). Jumio's forbidden characters of customerInternalReference do not apply: a base64 "+
					"signature with / + = passes (jumio-api.md §10.7). Must hold no personal data. Required by workflow 10010 (standalone screening)."),
					maxLen(jumio.MaxReferenceLength), pattern(charsPattern(noControlClass)), examples("customer-8812")),
				p("reportingCriteria", desc("Jumio's reportingCriteria: at most 255 characters, without control characters."),
					maxLen(jumio.MaxReportingLength), pattern(charsPattern(noControlClass))),
				p("workflowDefinition", desc("The Jumio workflow to run, with optional credential and capability settings.")),
				p("channel", desc("How the end user (or the data) reaches Jumio: WEB (hosted web flow; the job yields web.href), SDK (mobile "+
					"SDK; the job yields sdk.token) or API (prepared data and images go straight through the API, then the pipeline "+
					"finalizes; an API job needs preparedData or images). Default WEB. The server also accepts other letter cases."),
					enum(messages.ChannelWeb, messages.ChannelSDK, messages.ChannelAPI), dflt(messages.ChannelWeb)),
				p("callbackUrl", desc("Overrides the callback URL the pipeline gives Jumio (normally its own callback route). Jumio's rules: "+
					"an absolute https URL of at most 255 ASCII characters whose host is a fully qualified domain name (not an IP "+
					"address), without credentials, port or fragment."),
					maxLen(jumio.MaxURLLength), pattern(callbackURLRule), examples("https://kyc.example.com/v1/callbacks/jumio")),
				p("tokenLifetime", desc("Lifetime of the end user's web link or SDK token: an integer and one unit of s, m, h or d, between "+
					"5m and 60d. Default (Jumio's): 30m."),
					pattern(`^[+-]?[0-9]+[smhd]$`), examples("30m", "1h", "1d")),
				p("web", desc("Settings of the hosted web flow (channel WEB).")),
				p("userConsent", desc("The end user's consent. Required (userIp, userLocation.country, consent.obtained \"yes\", "+
					"consent.obtainedAt) for an API job with FRONT, BACK or FACE images: Jumio refuses ID and biometric uploads without it "+
					"(422 at the door otherwise).")),
				p("preparedData", desc("The applicant's data for DATA credentials or supporting data (Jumio's prepared data). PII.")),
				p("parts", desc("Images for the API channel, at most one per classifier. Over HTTP send each image as base64 `data` "+
					"(the whole JSON body stays within 1 MiB) or, for larger images, as a multipart file part. With FRONT or BACK, "+
					"workflowDefinition.credentials must name the ID's country and type ({category: ID, country: {values}, type: "+
					"{values}}), as Jumio requires for API uploads (422 otherwise). On kyc.jobs.submit, "+
					"ingest replaces them with references to its image store (`object`, `size`, `sha256`). PII."),
					maxItems(3)),
				p("submittedAt", desc("When ingest stored the job (set by ingest; a value sent by the client is replaced)."),
					examples("2026-11-22T05:04:44.690454695Z")),
			},
			extra: func(s *jsonschema.Schema) {
				api := withProps([]string{"channel"}, "channel", &jsonschema.Schema{Const: messages.ChannelAPI})
				hasParts := withProps([]string{"parts"}, "parts", &jsonschema.Schema{MinItems: ptr(uint64(1))})
				s.AllOf = []*jsonschema.Schema{
					// jumio.ValidateAccountFields: userReference is required for workflow 10010.
					ifThen(withProps([]string{"workflowDefinition"}, "workflowDefinition",
						withProps([]string{"key"}, "key", &jsonschema.Schema{Enum: []any{10010, "10010"}})),
						withProps([]string{"userReference"}, "userReference", &jsonschema.Schema{MinLength: ptr(uint64(1))})),
					// Images only with channel API.
					ifThen(hasParts, api),
				}
			},
			example: `{"customerInternalReference":"order-2026-0003","userReference":"customer-8814","region":"amer-1",` +
				`"workflowDefinition":{"key":10164,"credentials":[{"category":"ID","country":{"predefinedType":"DEFINED","values":["USA","CAN","GBR"]},` +
				`"type":{"predefinedType":"DEFINED","values":["DRIVING_LICENSE","ID_CARD","PASSPORT"]}}]},"channel":"WEB","tokenLifetime":"1h",` +
				`"web":{"successUrl":"https://shop.example.com/kyc/done","errorUrl":"https://shop.example.com/kyc/error","locale":"en-GB"}}`,
		},
		"Part": {
			desc: "An image for the API channel. Exactly one of `data` (the image, base64) and `object` (a reference into the pipeline's " +
				"image store, set by ingest) is present.",
			props: []propNote{
				p("classifier", desc("Which image this is."), enum(jumio.PartFront, jumio.PartBack, jumio.PartFace)),
				p("contentType", desc("The image's type. Optional over HTTP: ingest sniffs JPEG or PNG from the data and refuses a contentType that does not match (422)."),
					enum("image/jpeg", "image/png")),
				p("object", desc("Name of the image in the pipeline's image store (<jobId>/<submission nonce>/<classifier>). Set by ingest; "+
					"refused in HTTP bodies (422)."), pattern(objectPattern)),
				p("data", desc("The image, JPEG or PNG, base64-encoded: longest side above 300 px, no side above 8000 px, at most "+
					"15,000,000 bytes decoded, as Jumio accepts (over HTTP the whole JSON body is limited to 1 MiB)."),
					minLen(1)),
				p("size", desc("Size of the stored image in bytes (set by ingest)."), minimum(0)),
				p("sha256", desc("Hex SHA-256 digest of the image (set by ingest)."), pattern(`^[0-9a-f]{64}$`)),
			},
			extra: func(s *jsonschema.Schema) {
				s.OneOf = []*jsonschema.Schema{{Required: []string{"data"}}, {Required: []string{"object"}}}
			},
		},
		"WorkflowDefinition": {
			desc: "The Jumio workflow to run (Jumio's workflowDefinition).",
			props: []propNote{
				p("key", desc("Workflow definition key, such as 10164 (ID + selfie) or 10066 (email risk); a JSON number or a string of "+
					"at most 64 letters, digits, '-' and '_'. Jumio documents 10010, 10011, 10013, 10065, 10066, 10148, 10163 and 10164; "+
					"tenants often have custom keys."), examples(10164, "10066")),
				p("credentials", desc("Restrictions on the credentials the end user may provide.")),
				p("capabilities", desc("Capability settings, passed to Jumio as they are (capability name → Jumio's settings object)."),
					func(x *jsonschema.Schema) { x.PropertyNames = &jsonschema.Schema{Pattern: `^[A-Za-z0-9_-]{1,64}$`} }),
			},
		},
		"CredentialDefinition": {
			desc: "Restrictions on one credential to acquire.",
			props: []propNote{
				p("id", desc("Credential ID."), pattern(jumioIDPattern)),
				p("category", desc("Credential category."), enum(jumio.CategoryID, jumio.CategorySelfie, jumio.CategoryFacemap, jumio.CategoryDocument, jumio.CategoryData)),
				p("country", desc("Issuing countries offered to the end user (ISO 3166-1 alpha-3 codes)."),
					refined("values", items(pattern(alpha3Pattern)))),
				p("type", desc("Document types offered to the end user: for category ID one of ID_CARD, DRIVING_LICENSE, PASSPORT, VISA; "+
					"for FACEMAP one of IPROOV_STANDARD, IPROOV_PREMIUM, JUMIO_STANDARD.")),
			},
			extra: func(s *jsonschema.Schema) {
				docTypes := func(category string, types ...any) *jsonschema.Schema {
					return ifThen(withProps([]string{"category"}, "category", &jsonschema.Schema{Const: category}),
						withProps(nil, "type", withProps(nil, "values", &jsonschema.Schema{Items: &jsonschema.Schema{Enum: types}})))
				}
				s.AllOf = []*jsonschema.Schema{
					docTypes(jumio.CategoryID, "ID_CARD", "DRIVING_LICENSE", "PASSPORT", "VISA"),
					docTypes(jumio.CategoryFacemap, "IPROOV_STANDARD", "IPROOV_PREMIUM", "JUMIO_STANDARD"),
				}
			},
		},
		"PredefinedValue": {
			desc: "A choice offered to the end user: fixed (DEFINED) or suggested (RECOMMENDED).",
			props: []propNote{
				p("predefinedType", desc("DEFINED: only these values; RECOMMENDED: these values first."), enum("DEFINED", "RECOMMENDED")),
				p("values", desc("The values offered (at least one)."), minItems(1)),
			},
			required: []string{"values"},
		},
		"WebSettings": {
			desc: "Settings of the hosted web flow.",
			props: []propNote{
				p("successUrl", desc("Where the web flow sends the end user after success: an absolute http(s) URL of at most 255 characters."),
					maxLen(jumio.MaxURLLength), pattern(httpURLPattern), format("uri"), examples("https://shop.example.com/kyc/done")),
				p("errorUrl", desc("Where the web flow sends the end user after an error: an absolute http(s) URL of at most 255 characters."),
					maxLen(jumio.MaxURLLength), pattern(httpURLPattern), format("uri"), examples("https://shop.example.com/kyc/error")),
				p("locale", desc("Language of the web flow: a language code such as en, en-GB or zh-CN."),
					maxLen(jumio.MaxLocaleLength), pattern(`^[a-z]{2}([-_][A-Za-z]{2})?$`), examples("en-GB")),
			},
		},
		"UserConsent": {
			desc: "The end user's consent to the processing of their data.",
			props: []propNote{
				p("userIp", desc("The end user's IP address (IPv4 or IPv6)."), ipAddress(), examples("203.0.113.7")),
				p("userLocation", desc("Where the end user is.")),
				p("consent", desc("Whether and when consent was obtained.")),
			},
		},
		"UserLocation": {
			desc:     "The end user's location.",
			props:    []propNote{p("country", desc("ISO 3166-1 alpha-3 country code."), pattern(alpha3Pattern), examples("USA")), p("state", desc("State or region code (at most 10 characters)."), maxLen(10), examples("CA"))},
			required: []string{"country"},
		},
		"Consent": {
			desc: "Whether and when consent was obtained.",
			props: []propNote{
				p("obtained", desc("yes, no or na (not applicable)."), enum("yes", "no", "na")),
				p("obtainedAt", desc("When consent was obtained (RFC 3339)."), format("date-time"), examples("2026-11-22T10:00:00Z")),
			},
			required: []string{"obtained"},
		},
		"PreparedData": {
			desc: "The applicant's data (Jumio's prepared data). Every field is PII. Names, email and phone numbers must not contain any of < > \" / ; % |.",
			props: []propNote{
				p("firstName", desc("First name."), maxLen(255), pattern(charsPattern(preparedForbidden+noControlClass))),
				p("lastName", desc("Last name."), maxLen(255), pattern(charsPattern(preparedForbidden+noControlClass))),
				p("middleName", desc("Middle name."), maxLen(255), pattern(charsPattern(preparedForbidden+noControlClass))),
				p("paternalSurname", desc("Paternal surname."), maxLen(255), pattern(charsPattern(preparedForbidden))),
				p("maternalSurname", desc("Maternal surname."), maxLen(255), pattern(charsPattern(preparedForbidden))),
				p("suffix", desc("Name suffix."), maxLen(255)),
				p("email", desc("Email address."), maxLen(255), format("email"),
					pattern("^[^"+preparedForbidden+`\x00-\x20\x7f]*@[^`+preparedForbidden+`\x00-\x20\x7f]*$`), examples("jane.doe@example.com")),
				p("phoneNumber", desc("Phone number in E.164 format (+ and up to 15 digits)."), pattern(phonePattern), examples("+18009376310")),
				p("phoneNumber2", desc("Second phone number in E.164 format."), pattern(phonePattern)),
				p("dateOfBirth", desc("Date of birth (YYYY-MM-DD)."), pattern(datePattern), format("date"), examples("1990-08-10")),
				p("socialSecurityNumber", desc("Social security number."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("sex", desc("Sex."), maxLen(255)),
				p("nationality", desc("Nationality."), maxLen(255)),
				p("personalNumber", desc("Personal (national identification) number."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("ipAddress", desc("The applicant's IP address (IPv4 or IPv6)."), ipAddress()),
				p("address", desc("Postal address.")),
				p("id", desc("Identity document.")),
				p("kyc", desc("When and from where the applicant registered with you.")),
			},
		},
		"PreparedAddress": {
			desc: "A postal address. PII.",
			props: []propNote{
				p("line1", desc("Address line 1."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("line2", desc("Address line 2."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("line3", desc("Address line 3."), maxLen(255)),
				p("line4", desc("Address line 4."), maxLen(255)),
				p("line5", desc("Address line 5."), maxLen(255)),
				p("postalCode", desc("Postal code."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("city", desc("City."), maxLen(255), pattern(charsPattern(noControlClass))),
				p("subdivision", desc("State, province or other subdivision."), maxLen(255)),
				p("country", desc("ISO 3166-1 alpha-2 or alpha-3 country code."), pattern(`^[A-Z]{2,3}$`), examples("USA")),
			},
		},
		"PreparedDocument": {
			desc: "An identity document. PII.",
			props: []propNote{
				p("idNumber", desc("Document number."), maxLen(255)),
				p("type", desc("Document type."), enum("PASSPORT", "DRIVING_LICENSE", "DRIVER_LICENSE", "ID_CARD", "VISA")),
				p("issuingDate", desc("Issuing date (YYYY-MM-DD)."), pattern(datePattern), format("date")),
				p("expiryDate", desc("Expiry date (YYYY-MM-DD)."), pattern(datePattern), format("date")),
			},
		},
		"PreparedRegistration": {
			desc: "When and from where the applicant registered with you.",
			props: []propNote{
				p("registrationDate", desc("Registration date (YYYY-MM-DD)."), pattern(datePattern), format("date")),
				p("registrationIpAddress", desc("IP address used to register (IPv4 or IPv6)."), ipAddress()),
			},
		},

		// ---- kycpipe.event.v1 ----
		"Event": {
			desc: "A lifecycle event of a job, published on kyc.events.<kind> (stream KYC_EVENTS) with header Kyc-Job-Id. " +
				"Readers must tolerate properties they do not know: within a version, properties are only ever added, so this " +
				"schema allows additional properties.",
			props: []propNote{
				p("schema", desc("Schema identifier (readers treat an absent one as kycpipe.event.v1)."), constant(messages.SchemaEvent)),
				p("kind", desc("accepted: a worker took the job; launched: web.href or sdk.token is ready for the end user (WEB and SDK "+
					"channels); finalized: the API channel's data was handed to Jumio; failed: the job failed for good (see error)."),
					enum(messages.KindAccepted, messages.KindLaunched, messages.KindFinalized, messages.KindFailed)),
				p("jobId", desc("The job's ID."), examples("job_06h0393mkpmnbw46096kr1ks3g")),
				p("region", desc("Jumio data center of the job."), examples(regions[0])),
				p("accountId", desc("Jumio account ID (once the account exists; not in accepted events)."), examples("e2c69b44-74b8-4b14-8b9a-403ed56d30de")),
				p("workflowExecutionId", desc("Jumio workflow execution ID (once the account exists; not in accepted events)."), examples("ce61ba26-591a-4606-a8db-c0fdc8121619")),
				p("customerInternalReference", desc("The job's customerInternalReference.")),
				p("web", desc("launched, channel WEB: the hosted web flow's URL for the end user.")),
				p("sdk", desc("launched, channel SDK: the token that initializes Jumio's mobile SDK.")),
				p("error", desc("failed: why.")),
				p("at", desc("When the event happened.")),
			},
			extra: func(s *jsonschema.Schema) {
				kind := func(k ...any) *jsonschema.Schema {
					return withProps([]string{"kind"}, "kind", &jsonschema.Schema{Enum: k})
				}
				s.AllOf = []*jsonschema.Schema{
					ifThen(kind(messages.KindFailed), &jsonschema.Schema{Required: []string{"error"}}),
					ifThen(kind(messages.KindLaunched), &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Required: []string{"web"}}, {Required: []string{"sdk"}}}}),
					ifThen(kind(messages.KindLaunched, messages.KindFinalized), &jsonschema.Schema{Required: []string{"accountId", "workflowExecutionId"}}),
				}
			},
			example: `{"schema":"kycpipe.event.v1","kind":"launched","jobId":"job_06h0393mkpmnbw46096kr1ks3g","region":"amer-1",` +
				`"accountId":"e2c69b44-74b8-4b14-8b9a-403ed56d30de","workflowExecutionId":"ce61ba26-591a-4606-a8db-c0fdc8121619",` +
				`"customerInternalReference":"order-2026-0003","web":{"href":"https://emea-1.web.jumio.link/web/v4/app?authorizationToken=eyJhbGciOiJIUzUxMiJ9.eyJleHAiOjE3OTU2NzkwODR9.c2ln&locale=en-GB"},` +
				`"at":"2026-11-22T05:04:44.704013774Z"}`,
		},
		"WebLink": {
			desc:  "The hosted web flow's URL for the end user.",
			props: []propNote{p("href", desc("Open it in the end user's browser."), format("uri"))},
		},
		"SDKToken": {
			desc:  "Initializes Jumio's mobile SDK for the end user.",
			props: []propNote{p("token", desc("The SDK token (a credential of the end user's session: hand it only to that user's app)."))},
		},
		"ErrorInfo": {
			desc: "Why a job failed. The message never contains PII or secrets.",
			props: []propNote{
				p("code", desc("jumio_rejected (Jumio answered a terminal 4xx), invalid_job, retry_budget (too many retryable failures), "+
					"max_deliveries (JetStream stopped redelivering), deadline (no terminal status in time), image_missing, internal; "+
					"further codes may be added."), examples(messages.ErrCodeJumioRejected)),
				p("message", desc("What happened, for people."), examples("jumio: create account: 400 Bad Request")),
				p("status", desc("Jumio's HTTP status, when the failure came from Jumio."), minimum(100), maximum(599), examples(400)),
			},
		},

		// ---- kycpipe.callback.v1 ----
		"CallbackReceived": {
			desc: "A Jumio callback as ingest received it, published on kyc.callbacks.<region> (stream KYC_CALLBACKS, work queue) " +
				"with Nats-Msg-Id = cb:<execution>:<status>. It only triggers a retrieval: the decision always comes " +
				"from Jumio's authenticated retrieval API. Readers must tolerate properties they do not know (additional properties are allowed).",
			props: []propNote{
				p("schema", desc("Schema identifier (readers treat an absent one as kycpipe.callback.v1)."), constant(messages.SchemaCallback)),
				p("region", desc("Jumio data center: the callback URL's region query parameter, else the region of Jumio's host in the "+
					"callback's hrefs, else the pipeline's default region."), examples(regions[0])),
				p("jobId", desc("The job's ID, from the callback URL's job query parameter when the pipeline set one."), pattern(jobIDPattern)),
				p("receivedAt", desc("When ingest received the callback.")),
				p("sourceIp", desc("The address the callback came from: the peer, or the rightmost X-Forwarded-For hop that is not a "+
					"trusted proxy. The text `invalid IP` when it could not be determined."), examples("34.202.241.227")),
				p("callback", desc("Jumio's callback body (re-encoded: properties Jumio may add are not kept).")),
			},
			example: `{"schema":"kycpipe.callback.v1","region":"amer-1","receivedAt":"2026-11-22T05:04:44.699Z","sourceIp":"34.202.241.227",` +
				`"callback":{"callbackSentAt":"2026-11-22T05:04:44.698Z","userReference":"customer-8812","workflowExecution":{` +
				`"id":"6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1","href":"https://retrieval.amer-1.jumio.ai/api/v1/accounts/f22a7518-ad22-444b-839f-b5656f2aaa04/workflow-executions/6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1",` +
				`"definitionKey":"10066","status":"PROCESSED"},"account":{"id":"f22a7518-ad22-444b-839f-b5656f2aaa04",` +
				`"href":"https://retrieval.amer-1.jumio.ai/api/v1/accounts/f22a7518-ad22-444b-839f-b5656f2aaa04"}}}`,
		},
		"Callback": {
			desc: "The notification Jumio POSTs when a workflow execution changes status. It carries no decision and no PII. " +
				"Properties not listed here are accepted and ignored. Bodies are limited to 8 KiB.",
			props: []propNote{
				p("callbackSentAt", desc("When Jumio sent the callback (Jumio's timestamp, as sent)."), examples("2026-11-22T05:04:44.698Z")),
				p("userReference", desc("The execution's userReference (at most 400 bytes)."), maxLen(4*jumio.MaxReferenceLength)),
				p("workflowExecution", desc("The workflow execution and its new status.")),
				p("account", desc("The account of the execution.")),
			},
		},
		"WorkflowStatus": {
			desc: "A workflow execution and its status.",
			props: []propNote{
				p("id", desc("Workflow execution ID."), pattern(jumioIDPattern), examples("6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1")),
				p("href", desc("Jumio's URL of the execution; its host names the region (retrieval.<region>.jumio.ai).")),
				p("definitionKey", desc("Workflow definition key (at most 64 bytes)."), maxLen(64), examples("10066")),
				p("status", desc("Workflow status: INITIATED, ACQUIRED, PROCESSED, SESSION_EXPIRED, TOKEN_EXPIRED, …"),
					pattern(`^[A-Z][A-Z_]{1,39}$`), examples(jumio.StatusProcessed)),
			},
		},
		"Ref": {
			desc: "A Jumio object by ID.",
			props: []propNote{
				p("id", desc("Jumio ID."), pattern(jumioIDPattern), examples("f22a7518-ad22-444b-839f-b5656f2aaa04")),
				p("href", desc("Jumio's URL of the object.")),
			},
		},

		// ---- kycpipe.decision.v1 ----
		"DecisionEvent": {
			desc: "The one normalized decision of a workflow execution, published on kyc.decisions.<decision.type> (stream " +
				"KYC_DECISIONS) with Nats-Msg-Id = workflowExecutionId, header Kyc-Job-Id and, when it has alerts, header Kyc-Alerts " +
				"(capability:LABEL, comma-separated, e.g. watchlistScreening:ALERT). Readers must tolerate properties they " +
				"do not know (additional properties are allowed).",
			props: []propNote{
				p("schema", desc("Schema identifier (readers treat an absent one as kycpipe.decision.v1)."), constant(messages.SchemaDecision)),
				p("jobId", desc("The job's ID."), examples("job_06h0393mj8kfndysknek4w3np4")),
				p("region", desc("Jumio data center of the job."), examples(regions[0])),
				p("accountId", desc("Jumio account ID."), examples("f22a7518-ad22-444b-839f-b5656f2aaa04")),
				p("workflowExecutionId", desc("Jumio workflow execution ID: exactly one decision is published per execution."), examples("6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1")),
				p("customerInternalReference", desc("The job's customerInternalReference.")),
				p("userReference", desc("The execution's userReference, as Jumio reports it.")),
				p("workflowDefinitionKey", desc("Workflow definition key."), examples("10066")),
				p("status", desc("Jumio's terminal workflow status."), enum(jumio.StatusProcessed, jumio.StatusSessionExpired, jumio.StatusTokenExpired)),
				p("decision", desc("The overall decision.")),
				p("capabilities", desc("Capability name (similarity, liveness, imageChecks, usability, dataChecks, extraction, "+
					"emailVerification, phoneVerification, watchlistScreening, …; capabilities Jumio adds appear under their own "+
					"name) → its results, without PII.")),
				p("alerts", desc("Every capability result whose decision is worse than the overall one (PASSED < WARNING < REJECTED; "+
					"NOT_EXECUTED results are not alerts; an overall NOT_EXECUTED or EXPIRED counts as PASSED), e.g. a watchlistScreening "+
					"WARNING/ALERT under an overall PASSED. The Kyc-Alerts header names the same results.")),
				p("extraction", desc("The data extracted from the identity documents. PII: present only when the retriever runs with --include-extraction.")),
				p("createdAt", desc("When the execution was created (Jumio's timestamp)."), examples("2026-11-22T05:04:44.697Z")),
				p("startedAt", desc("When acquisition started (Jumio's timestamp)."), examples("2026-11-22T05:04:44.697Z")),
				p("completedAt", desc("When processing completed (Jumio's timestamp)."), examples("2026-11-22T05:04:44.698Z")),
				p("decidedAt", desc("When the pipeline published the decision.")),
			},
			extra: func(s *jsonschema.Schema) {
				expired := withProps([]string{"status"}, "status", &jsonschema.Schema{Enum: []any{jumio.StatusSessionExpired, jumio.StatusTokenExpired}})
				typ := func(t *jsonschema.Schema) *jsonschema.Schema {
					return withProps(nil, "decision", withProps(nil, "type", t))
				}
				// EXPIRED is kycpipe's type for an expired execution Jumio
				// reports no decision for; an expired execution with Jumio's
				// own decision carries that one (jumio-api.md §10.9).
				s.If, s.Then = typ(&jsonschema.Schema{Const: messages.DecisionExpired}), expired
			},
			example: `{"schema":"kycpipe.decision.v1","jobId":"job_06h0393mj8kfndysknek4w3np4","region":"amer-1",` +
				`"accountId":"f22a7518-ad22-444b-839f-b5656f2aaa04","workflowExecutionId":"6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1",` +
				`"customerInternalReference":"order-2026-0001","userReference":"customer-8812","workflowDefinitionKey":"10066","status":"PROCESSED",` +
				`"decision":{"type":"PASSED","label":"PASSED","riskScore":10},"capabilities":{"emailVerification":[{"decision":"PASSED",` +
				`"label":"LOW_RISK","data":{"emailStatus":"EmailExists","emailExists":true,"domainRiskLevel":"LOW","advice":"ACCEPT"}}]},` +
				`"createdAt":"2026-11-22T05:04:44.697Z","startedAt":"2026-11-22T05:04:44.697Z","completedAt":"2026-11-22T05:04:44.698Z",` +
				`"decidedAt":"2026-11-22T05:04:44.700729622Z"}`,
		},
		"DecisionSummary": {
			desc: "An overall decision.",
			props: []propNote{
				p("type", desc("Jumio's own decision type, for expired workflows too (e.g. NOT_EXECUTED with label TOKEN_EXPIRED and "+
					"score -1). EXPIRED only for a workflow that ended in TOKEN_EXPIRED or SESSION_EXPIRED when Jumio reports no decision; "+
					"NOT_EXECUTED when Jumio gave none for a processed workflow."), enum(decisionTypes...)),
				p("label", desc("Jumio's decision label (PASSED, TXN_REJECTED, TOKEN_EXPIRED, …); for EXPIRED the expiry status."), examples("PASSED")),
				p("riskScore", desc("Jumio's risk score, when it gave one: -1 (not executed) to 100 (highest risk)."), examples(10)),
			},
		},
		"CapabilitySummary": {
			desc: "One capability result, without PII.",
			props: []propNote{
				p("decision", desc("The capability's decision: PASSED, REJECTED, WARNING or NOT_EXECUTED."), examples(jumio.DecisionPassed)),
				p("label", desc("The capability's decision label (OK, MATCH, LOW_RISK, REPEATED_FACE, …)."), examples("OK")),
				p("credential", desc("The category of the credential the result judged (ID, SELFIE, …), for usability results: one per credential."), examples("ID")),
				p("data", desc("Data worth acting on (similarity, liveness, imageChecks, emailVerification, phoneVerification, watchlistScreening only).")),
			},
		},
		"Alert": {
			desc: "A capability result worse than the overall decision.",
			props: []propNote{
				p("capability", desc("The capability's name."), examples("watchlistScreening")),
				p("decision", desc("The result's decision: WARNING or REJECTED."), enum(jumio.DecisionWarning, jumio.DecisionRejected)),
				p("label", desc("The result's label."), examples("ALERT")),
			},
		},
		"CapabilityData": {
			desc: "The non-PII data of a capability result.",
			props: []propNote{
				p("similarity", desc("similarity: MATCH, NOT_MATCH or NOT_POSSIBLE."), examples("MATCH")),
				p("livenessType", desc("liveness: the liveness check performed (JUMIO_STANDARD, IPROOV_…)."), examples("JUMIO_STANDARD")),
				p("faceSearchStatus", desc("imageChecks: DONE, PENDING or ERROR."), examples("DONE")),
				p("faceSearchFindings", desc("imageChecks: other workflow execution IDs in which the same face appeared.")),
				p("emailStatus", desc("emailVerification: Jumio's emailVerificationStatus."), examples("EmailExists")),
				p("emailExists", desc("emailVerification: whether the mailbox exists.")),
				p("domainRiskLevel", desc("emailVerification: risk level of the email domain."), examples("LOW")),
				p("advice", desc("emailVerification: Jumio's advice."), examples("ACCEPT")),
				p("phoneType", desc("phoneVerification: the phone line type."), examples("MOBILE")),
				p("phoneBlocked", desc("phoneVerification: whether the number is blocked.")),
				p("phoneRisk", desc("phoneVerification: relative risk indicators.")),
				p("watchlistStatus", desc("watchlistScreening: the search status."), examples("DONE")),
				p("watchlistResults", desc("watchlistScreening: the number of hits."), minimum(0)),
			},
		},
		"ExtractionData": {
			desc: "Data extracted from an identity document, as Jumio reports it. PII.",
			props: []propNote{
				p("type", desc("Document type."), examples("DRIVING_LICENSE")),
				p("subType", desc("Document subtype.")),
				p("issuingCountry", desc("Issuing country (ISO 3166-1 alpha-3)."), examples("USA")),
				p("firstName", desc("First name.")),
				p("lastName", desc("Last name.")),
				p("middleName", desc("Middle name.")),
				p("dateOfBirth", desc("Date of birth (YYYY-MM-DD).")),
				p("expiryDate", desc("Expiry date (YYYY-MM-DD).")),
				p("issuingDate", desc("Issuing date (YYYY-MM-DD).")),
				p("documentNumber", desc("Document number.")),
				p("personalNumber", desc("Personal number.")),
				p("state", desc("State or subdivision.")),
				p("gender", desc("Gender.")),
				p("currentAge", desc("Current age.")),
				p("nationality", desc("Nationality.")),
				p("placeOfBirth", desc("Place of birth.")),
				p("issuingAuthority", desc("Issuing authority.")),
				p("issuingPlace", desc("Issuing place.")),
				p("optionalMrzField1", desc("Optional MRZ field 1.")),
				p("optionalMrzField2", desc("Optional MRZ field 2.")),
				p("address", desc("Address on the document.")),
				p("dateOfBirthParts", desc("Date of birth as printed.")),
				p("expiryDateParts", desc("Expiry date as printed.")),
				p("issuingDateParts", desc("Issuing date as printed.")),
				p("mrz", desc("The machine-readable zone, as Jumio reports it (any JSON).")),
			},
		},
		"ExtractionAddress": {
			desc: "An address read from a document. PII.",
			props: []propNote{
				p("line1", desc("Address line 1.")), p("line2", desc("Address line 2.")), p("line3", desc("Address line 3.")),
				p("line4", desc("Address line 4.")), p("line5", desc("Address line 5.")), p("country", desc("Country.")),
				p("postalCode", desc("Postal code.")), p("subdivision", desc("Subdivision.")), p("city", desc("City.")),
				p("formattedAddress", desc("The whole address, formatted.")),
			},
		},
		"DateParts": {
			desc:  "A date split into its parts as printed on a document.",
			props: []propNote{p("year", desc("Year.")), p("month", desc("Month.")), p("day", desc("Day."))},
		},

		// ---- ingest API bodies (openapi.yaml only) ----
		"JobView": {
			desc: "A job's current state (GET /v1/verifications/{jobId}). Absent properties are omitted; clients must tolerate properties they do not know.",
			props: []propNote{
				p("jobId", desc("The job's ID."), examples("job_06h0393mj8kfndysknek4w3np4")),
				p("status", desc("ACCEPTED: stored, not started; ACCOUNT_CREATED: the Jumio account exists; LAUNCHED: web.href or "+
					"sdk.token is ready; FINALIZED: the API channel's data is with Jumio; DECIDED: see decision; FAILED: see error; "+
					"ERASING: an erasure was accepted and runs; ERASED: the tombstone of an erased job (see erasure; nothing else is kept)."),
					enum(pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusLaunched, pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed,
						pipeline.StatusErasing, pipeline.StatusErased)),
				p("accountId", desc("Jumio account ID, once created."), examples("f22a7518-ad22-444b-839f-b5656f2aaa04")),
				p("workflowExecutionId", desc("Jumio workflow execution ID, once created."), examples("6f7ba4d6-c84c-4e2c-bf25-056e6c602eb1")),
				p("web", desc("Channel WEB, once launched: the web flow's URL for the end user.")),
				p("sdk", desc("Channel SDK, once launched: the SDK token for the end user.")),
				p("decision", desc("Once DECIDED: the decision summary (the full decision is on kyc.decisions.<TYPE>).")),
				p("error", desc("Once FAILED: why.")),
				p("erasure", desc("Once an erasure was requested: when, why and, once done, what happened at Jumio. An ERASING or ERASED job shows only jobId, status and erasure.")),
				p("createdAt", desc("When the job was stored.")),
				p("updatedAt", desc("When the job last changed.")),
			},
		},
		"ErasureView": {
			desc: "A job's erasure (DESIGN 3.7).",
			props: []propNote{
				p("requestedAt", desc("When the erasure was accepted.")),
				p("completedAt", desc("When every copy was removed (once ERASED).")),
				p("source", desc("REQUEST: DELETE /v1/verifications/{jobId} or kycctl erase; RETENTION: the job ended longer ago than KYCPIPE_RETENTION."),
					enum(messages.ErasureRequest, messages.ErasureRetention)),
				p("jumio", desc("What happened at Jumio: DELETED (the account the job created, or its execution), NOT_FOUND (Jumio had it no more), "+
					"NOT_CREATED (the job never reached Jumio), KEPT (retention with KYCPIPE_RETENTION_JUMIO=false)."),
					enum(messages.JumioDeleted, messages.JumioNotFound, messages.JumioNotCreated, messages.JumioKept)),
			},
		},
		"JobViewError": {
			desc: "Why a job failed.",
			props: []propNote{
				p("code", desc("Error code: jumio_rejected, invalid_job, retry_budget, max_deliveries, deadline, image_missing, internal, …"), examples(messages.ErrCodeJumioRejected)),
				p("message", desc("What happened, for people (never PII or secrets)."), examples("jumio: create account: 400 Bad Request: simulated failure")),
			},
		},
		"Problem": {
			desc: "An RFC 9457 problem detail: the body of every error answer (Content-Type application/problem+json).",
			props: []propNote{
				p("type", desc("The problem type: a URN naming the kind of problem; see the API description for each."), enum(problemTypes...)),
				p("title", desc("The HTTP status text of status."), examples("Unprocessable Entity")),
				p("status", desc("The HTTP status code."), minimum(400), maximum(599), examples(422)),
				p("detail", desc("What went wrong in this request, for people (never echoes submitted values)."), examples("the request violates the rules of kycpipe or Jumio")),
				p("errors", desc("Field-level violations (urn:kycpipe:problem:validation only), sorted by field and code, one per field and rule.")),
			},
		},
		"FieldError": {
			desc: "One rule violation.",
			props: []propNote{
				p("field", desc("JSON path of the offending field in the request (for multipart image parts, the part name; for webhook endpoints url, eventTypes[i], description or status)."),
					examples("customerInternalReference", "workflowDefinition.credentials[0].country.values[1]", "parts[0].data")),
				p("code", desc("The rule broken."), enum(fieldCodes...)),
				p("message", desc("The rule, for people; never repeats the field's value."), examples("must be at most 100 characters (got 130)")),
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }
