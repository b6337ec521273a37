package docs_test

// Static checks of docs/openapi.yaml, docs/schemas and examples/*.json:
// the document is structurally a valid OpenAPI 3.1 document, every example
// is valid against its schema (and accepted by the server's own decoding
// and validation where it is a request), every route of ingest is
// documented and every problem type is described.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/docs"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The fields each OpenAPI 3.1 object may have (besides x- extensions).
var (
	rootFields        = []string{"openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks", "components", "security", "tags", "externalDocs"}
	infoFields        = []string{"title", "summary", "description", "termsOfService", "contact", "license", "version"}
	serverFields      = []string{"url", "description", "variables"}
	tagFields         = []string{"name", "description", "externalDocs"}
	pathItemFields    = []string{"$ref", "summary", "description", "get", "put", "post", "delete", "options", "head", "patch", "trace", "servers", "parameters"}
	operationFields   = []string{"tags", "summary", "description", "externalDocs", "operationId", "parameters", "requestBody", "responses", "callbacks", "deprecated", "security", "servers"}
	parameterFields   = []string{"name", "in", "description", "required", "deprecated", "allowEmptyValue", "style", "explode", "allowReserved", "schema", "example", "examples", "content"}
	headerFields      = []string{"description", "required", "deprecated", "style", "explode", "schema", "example", "examples", "content"}
	requestBodyFields = []string{"description", "content", "required"}
	mediaTypeFields   = []string{"schema", "example", "examples", "encoding"}
	encodingFields    = []string{"contentType", "headers", "style", "explode", "allowReserved"}
	responseFields    = []string{"description", "headers", "content", "links"}
	exampleFields     = []string{"summary", "description", "value", "externalValue"}
	componentsFields  = []string{"schemas", "responses", "parameters", "examples", "requestBodies", "headers", "securitySchemes", "links", "callbacks", "pathItems"}
	securityFields    = []string{"type", "description", "name", "in", "scheme", "bearerFormat", "flows", "openIdConnectUrl"}
	referenceFields   = []string{"$ref", "summary", "description"}
	methods           = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
)

// oaChecker walks the document and collects problems.
type oaChecker struct {
	problems []string
	usedRefs map[string]bool
	usedTags map[string]bool
	opIDs    map[string]string
}

func (c *oaChecker) errorf(tokens []string, format string, args ...any) {
	c.problems = append(c.problems, pointer(tokens...)+": "+fmt.Sprintf(format, args...))
}

// object checks that v is a mapping with only the allowed fields (and
// x- extensions) and the required ones.
func (c *oaChecker) object(tokens []string, v any, allowed []string, required ...string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		c.errorf(tokens, "want an object")
		return nil
	}
	for k := range m {
		if !slices.Contains(allowed, k) && !strings.HasPrefix(k, "x-") {
			c.errorf(tokens, "unknown field %q", k)
		}
	}
	for _, r := range required {
		if _, ok := m[r]; !ok {
			c.errorf(tokens, "missing field %q", r)
		}
	}
	return m
}

// ref checks a Reference Object and returns the object it resolves to
// (checked as kind by check) with its location.
func (c *oaChecker) ref(tokens []string, v any, componentKind string) ([]string, map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		return tokens, nil
	}
	r, ok := m["$ref"].(string)
	if !ok {
		return tokens, m
	}
	c.object(tokens, m, referenceFields, "$ref")
	c.usedRefs[r] = true
	target, tv, ok := resolve(r)
	if !ok {
		c.errorf(tokens, "$ref %q does not resolve", r)
		return tokens, nil
	}
	if len(target) != 3 || target[0] != "components" || target[1] != componentKind {
		c.errorf(tokens, "$ref %q should point into #/components/%s", r, componentKind)
	}
	return c.ref(target, tv, componentKind)
}

// schemaRefs checks every $ref inside a schema resolves.
func (c *oaChecker) schemaRefs(tokens []string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if r, ok := x["$ref"].(string); ok {
			c.usedRefs[r] = true
			if _, _, ok := resolve(r); !ok {
				c.errorf(tokens, "$ref %q does not resolve", r)
			}
		}
		for _, k := range sortedKeys(x) {
			if k == "examples" || k == "const" || k == "enum" || k == "default" {
				continue
			}
			c.schemaRefs(append(slices.Clone(tokens), k), x[k])
		}
	case []any:
		for i, e := range x {
			c.schemaRefs(append(slices.Clone(tokens), fmt.Sprint(i)), e)
		}
	}
}

func (c *oaChecker) schema(tokens []string, v any) {
	switch v.(type) {
	case map[string]any, bool:
	default:
		c.errorf(tokens, "a schema must be an object or a boolean")
		return
	}
	c.schemaRefs(tokens, v)
}

func (c *oaChecker) examples(tokens []string, m map[string]any) {
	_, one := m["example"]
	ex, many := m["examples"]
	if one && many {
		c.errorf(tokens, "example and examples are mutually exclusive")
	}
	if many {
		exs, ok := ex.(map[string]any)
		if !ok {
			c.errorf(tokens, "examples must map names to Example Objects")
			return
		}
		for _, name := range sortedKeys(exs) {
			et := append(slices.Clone(tokens), "examples", name)
			_, e := c.ref(et, exs[name], "examples")
			e = c.object(et, e, exampleFields)
			_, hasValue := e["value"]
			_, hasExternal := e["externalValue"]
			if hasValue == hasExternal {
				c.errorf(et, "an Example Object needs exactly one of value and externalValue")
			}
		}
	}
}

func (c *oaChecker) parameter(tokens []string, v any) map[string]any {
	tokens, v2 := c.ref(tokens, v, "parameters")
	p := c.object(tokens, v2, parameterFields, "name", "in")
	if p == nil {
		return nil
	}
	in, _ := p["in"].(string)
	if !slices.Contains([]string{"query", "header", "path", "cookie"}, in) {
		c.errorf(tokens, "in must be query, header, path or cookie")
	}
	if in == "path" && p["required"] != true {
		c.errorf(tokens, "path parameters must be required")
	}
	_, hasSchema := p["schema"]
	_, hasContent := p["content"]
	if hasSchema == hasContent {
		c.errorf(tokens, "a parameter needs exactly one of schema and content")
	}
	if hasSchema {
		c.schema(append(slices.Clone(tokens), "schema"), p["schema"])
	}
	c.examples(tokens, p)
	return p
}

func (c *oaChecker) header(tokens []string, v any) {
	tokens, v2 := c.ref(tokens, v, "headers")
	h := c.object(tokens, v2, headerFields)
	if h == nil {
		return
	}
	_, hasSchema := h["schema"]
	_, hasContent := h["content"]
	if hasSchema == hasContent {
		c.errorf(tokens, "a header needs exactly one of schema and content")
	}
	if hasSchema {
		c.schema(append(slices.Clone(tokens), "schema"), h["schema"])
	}
	c.examples(tokens, h)
}

func (c *oaChecker) content(tokens []string, v any) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		c.errorf(tokens, "content must map media types to Media Type Objects")
		return
	}
	for _, mt := range sortedKeys(m) {
		mtTokens := append(slices.Clone(tokens), mt)
		if _, _, err := mime.ParseMediaType(mt); err != nil {
			c.errorf(mtTokens, "not a media type: %v", err)
		}
		o := c.object(mtTokens, m[mt], mediaTypeFields, "schema")
		if o == nil {
			continue
		}
		c.schema(append(slices.Clone(mtTokens), "schema"), o["schema"])
		c.examples(mtTokens, o)
		if enc, ok := o["encoding"].(map[string]any); ok {
			_, schema := deref(nil, o["schema"])
			props, _ := schema["properties"].(map[string]any)
			for _, name := range sortedKeys(enc) {
				et := append(slices.Clone(mtTokens), "encoding", name)
				c.object(et, enc[name], encodingFields)
				if _, ok := props[name]; !ok {
					c.errorf(et, "encoding of %q, which is not a property of the schema", name)
				}
			}
		}
	}
}

func (c *oaChecker) response(tokens []string, status string, v any) {
	tokens, v2 := c.ref(tokens, v, "responses")
	r := c.object(tokens, v2, responseFields, "description")
	if r == nil {
		return
	}
	if hs, ok := r["headers"].(map[string]any); ok {
		for _, name := range sortedKeys(hs) {
			if strings.EqualFold(name, "Content-Type") {
				c.errorf(tokens, "a Content-Type response header is ignored by OpenAPI")
			}
			c.header(append(slices.Clone(tokens), "headers", name), hs[name])
		}
	}
	if _, ok := r["content"]; ok {
		c.content(append(slices.Clone(tokens), "content"), r["content"])
	} else if status != "204" && status != "304" {
		c.errorf(tokens, "a %s response has a body: document its content and schema", status)
	}
}

var (
	statusKeyRE     = regexp.MustCompile(`^([1-5][0-9]{2}|[1-5]XX|default)$`)
	componentNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	templateRE      = regexp.MustCompile(`\{([^{}]+)\}`)
)

func (c *oaChecker) operation(tokens []string, path string, v any, pathParams []any) {
	op := c.object(tokens, v, operationFields, "responses", "operationId")
	if op == nil {
		return
	}
	id, _ := op["operationId"].(string)
	if prev, dup := c.opIDs[id]; dup {
		c.errorf(tokens, "operationId %q is also used by %s", id, prev)
	}
	c.opIDs[id] = pointer(tokens...)
	if tags, ok := op["tags"].([]any); ok {
		for _, t := range tags {
			c.usedTags[fmt.Sprint(t)] = true
		}
	}
	seen := map[string]bool{}
	declared := map[string]bool{}
	params, _ := op["parameters"].([]any)
	for i, p := range append(slices.Clone(pathParams), params...) {
		pt := append(slices.Clone(tokens), "parameters", fmt.Sprint(i))
		pm := c.parameter(pt, p)
		if pm == nil {
			continue
		}
		key := fmt.Sprint(pm["in"], ":", pm["name"])
		if seen[key] && i >= len(pathParams) {
			c.errorf(pt, "parameter %s is declared twice", key)
		}
		seen[key] = true
		if pm["in"] == "path" {
			declared[fmt.Sprint(pm["name"])] = true
		}
	}
	inTemplate := map[string]bool{}
	for _, m := range templateRE.FindAllStringSubmatch(path, -1) {
		inTemplate[m[1]] = true
		if !declared[m[1]] {
			c.errorf(tokens, "path parameter {%s} is not declared", m[1])
		}
	}
	for name := range declared {
		if !inTemplate[name] {
			c.errorf(tokens, "path parameter %q is not in the path", name)
		}
	}
	if rb, ok := op["requestBody"]; ok {
		rt, rbm := c.ref(append(slices.Clone(tokens), "requestBody"), rb, "requestBodies")
		if rbm = c.object(rt, rbm, requestBodyFields, "content"); rbm != nil {
			c.content(append(slices.Clone(rt), "content"), rbm["content"])
		}
	}
	responses, ok := op["responses"].(map[string]any)
	if !ok || len(responses) == 0 {
		c.errorf(tokens, "an operation needs responses")
	}
	for _, status := range sortedKeys(responses) {
		rt := append(slices.Clone(tokens), "responses", status)
		if !statusKeyRE.MatchString(status) {
			c.errorf(rt, "not a status code")
		}
		c.response(rt, status, responses[status])
	}
	if sec, ok := op["security"]; ok {
		c.security(append(slices.Clone(tokens), "security"), sec)
	}
}

func (c *oaChecker) security(tokens []string, v any) {
	reqs, ok := v.([]any)
	if !ok {
		c.errorf(tokens, "security must be a list of requirements")
		return
	}
	schemes, _ := at(specDoc, "components", "securitySchemes")
	for i, r := range reqs {
		rm, ok := r.(map[string]any)
		if !ok {
			c.errorf(append(slices.Clone(tokens), fmt.Sprint(i)), "want a Security Requirement Object")
			continue
		}
		for name, scopes := range rm {
			if _, ok := at(schemes, name); !ok {
				c.errorf(tokens, "unknown security scheme %q", name)
			}
			if s, ok := scopes.([]any); !ok || len(s) != 0 {
				c.errorf(tokens, "scheme %q: scopes must be an empty list for HTTP schemes", name)
			}
		}
	}
}

// checkOpenAPI checks the structure of the document.
func checkOpenAPI(doc map[string]any) []string {
	c := &oaChecker{usedRefs: map[string]bool{}, usedTags: map[string]bool{}, opIDs: map[string]string{}}
	c.object(nil, doc, rootFields, "openapi", "info", "paths")
	if doc["openapi"] != "3.1.0" {
		c.errorf([]string{"openapi"}, "want 3.1.0")
	}
	c.object([]string{"info"}, doc["info"], infoFields, "title", "version")
	if servers, ok := doc["servers"].([]any); ok {
		for i, s := range servers {
			c.object([]string{"servers", fmt.Sprint(i)}, s, serverFields, "url")
		}
	}
	declaredTags := map[string]bool{}
	if tags, ok := doc["tags"].([]any); ok {
		for i, tg := range tags {
			tm := c.object([]string{"tags", fmt.Sprint(i)}, tg, tagFields, "name")
			name := fmt.Sprint(tm["name"])
			if declaredTags[name] {
				c.errorf([]string{"tags", fmt.Sprint(i)}, "tag %q declared twice", name)
			}
			declaredTags[name] = true
		}
	}
	if sec, ok := doc["security"]; ok {
		c.security([]string{"security"}, sec)
	}
	comps := c.object([]string{"components"}, doc["components"], componentsFields)
	for _, kind := range sortedKeys(comps) {
		entries, ok := comps[kind].(map[string]any)
		if !ok {
			c.errorf([]string{"components", kind}, "want a map")
			continue
		}
		for _, name := range sortedKeys(entries) {
			tokens := []string{"components", kind, name}
			if !componentNameRE.MatchString(name) {
				c.errorf(tokens, "invalid component name")
			}
			switch kind {
			case "schemas":
				c.schema(tokens, entries[name])
			case "securitySchemes":
				s := c.object(tokens, entries[name], securityFields, "type")
				if s["type"] == "http" && s["scheme"] == nil {
					c.errorf(tokens, "an http security scheme needs scheme")
				}
			case "parameters":
				c.parameter(tokens, entries[name])
			case "headers":
				c.header(tokens, entries[name])
			case "responses":
				c.response(tokens, "", entries[name])
			case "requestBodies":
				if rb := c.object(tokens, entries[name], requestBodyFields, "content"); rb != nil {
					c.content(append(slices.Clone(tokens), "content"), rb["content"])
				}
			}
		}
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		c.errorf([]string{"paths"}, "want an object")
	}
	for _, path := range sortedKeys(paths) {
		tokens := []string{"paths", path}
		if !strings.HasPrefix(path, "/") {
			c.errorf(tokens, "paths start with /")
		}
		item := c.object(tokens, paths[path], pathItemFields)
		pathParams, _ := item["parameters"].([]any)
		for _, m := range methods {
			if op, ok := item[m]; ok {
				c.operation(append(slices.Clone(tokens), m), path, op, pathParams)
			}
		}
	}
	for tag := range c.usedTags {
		if !declaredTags[tag] {
			c.problems = append(c.problems, fmt.Sprintf("tag %q is used but not declared", tag))
		}
	}
	// Unused reusable objects are dead documentation (schemas excepted:
	// the message schemas are there for readers of the streams).
	for _, kind := range []string{"responses", "parameters", "headers", "requestBodies", "examples"} {
		entries, _ := comps[kind].(map[string]any)
		for _, name := range sortedKeys(entries) {
			if !c.usedRefs["#/components/"+kind+"/"+name] {
				c.errorf([]string{"components", kind, name}, "never referenced")
			}
		}
	}
	sort.Strings(c.problems)
	return c.problems
}

func TestOpenAPIStructure(t *testing.T) {
	t.Parallel()
	validators(t)
	for _, p := range checkOpenAPI(specDoc) {
		t.Error(p)
	}
	// The file on disk is the one embedded (and served).
	onDisk, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, docs.OpenAPI) {
		t.Error("docs.OpenAPI differs from docs/openapi.yaml")
	}
}

// TestSchemasCompile compiles every schema of the OpenAPI document and every
// message schema file (against the 2020-12 metaschema).
func TestSchemasCompile(t *testing.T) {
	t.Parallel()
	loose, strictV := validators(t)
	schemas, _ := at(specDoc, "components", "schemas")
	for _, name := range sortedKeys(schemas.(map[string]any)) {
		for _, v := range []*validator{loose, strictV} {
			if _, err := v.schema(specLoc("components", "schemas", name)); err != nil {
				t.Errorf("components/schemas/%s: %v", name, err)
			}
		}
	}
	for _, m := range messageSchemas {
		for _, v := range []*validator{loose, strictV} {
			if _, err := v.schema(messageLoc(m.file)); err != nil {
				t.Errorf("%s: %v", m.file, err)
			}
		}
	}
}

// exampleSite is one example in the OpenAPI document with the schema it
// must satisfy.
type exampleSite struct {
	where  string // JSON pointer of the example value
	schema string // location of the schema
	value  any
	media  string // media type, for request and response bodies
	isReq  bool   // a request body example
}

// collectExamples finds every example of media types, parameters and
// headers in the document.
func collectExamples(t *testing.T) []exampleSite {
	var out []exampleSite
	var walk func(tokens []string, v any)
	addFrom := func(tokens []string, m map[string]any, media string, isReq bool) {
		schemaTokens := append(slices.Clone(tokens), "schema")
		if ex, ok := m["example"]; ok {
			out = append(out, exampleSite{pointer(append(slices.Clone(tokens), "example")...), specLoc(schemaTokens...), ex, media, isReq})
		}
		exs, _ := m["examples"].(map[string]any)
		for _, name := range sortedKeys(exs) {
			et, e := deref(append(slices.Clone(tokens), "examples", name), exs[name])
			if v, ok := e["value"]; ok {
				out = append(out, exampleSite{pointer(append(et, "value")...), specLoc(schemaTokens...), v, media, isReq})
			}
		}
	}
	walk = func(tokens []string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			if l, ok := v.([]any); ok {
				for i, e := range l {
					walk(append(slices.Clone(tokens), fmt.Sprint(i)), e)
				}
			}
			return
		}
		n := len(tokens)
		switch {
		case n >= 2 && tokens[n-2] == "content" && m["schema"] != nil:
			isReq := slices.Contains(tokens, "requestBody") || slices.Contains(tokens, "requestBodies")
			addFrom(tokens, m, tokens[n-1], isReq)
			return
		case m["schema"] != nil && (m["in"] != nil || (n >= 2 && tokens[n-2] == "headers")):
			addFrom(tokens, m, "", false)
			return
		case n >= 1 && tokens[0] == "components" && len(tokens) >= 2 && tokens[1] == "schemas":
			return // schema examples are checked by TestSchemaExamples
		}
		for _, k := range sortedKeys(m) {
			walk(append(slices.Clone(tokens), k), m[k])
		}
	}
	validators(t)
	walk(nil, specDoc)
	return out
}

// TestOpenAPIExamples validates every example of the OpenAPI document
// against its schema (strictly: no undocumented property), and checks that
// request examples are requests the server accepts.
func TestOpenAPIExamples(t *testing.T) {
	t.Parallel()
	_, strictV := validators(t)
	sites := collectExamples(t)
	if len(sites) < 40 {
		t.Fatalf("found only %d examples; is the walk broken?", len(sites))
	}
	for _, s := range sites {
		if err := strictV.validate(s.schema, s.value); err != nil {
			t.Errorf("example %s does not match its schema:\n%v", s.where, err)
		}
		if !s.isReq {
			continue
		}
		raw, _ := json.Marshal(s.value)
		switch {
		case strings.Contains(s.where, "/~1v1~1verifications/post/requestBody/content/application~1json/"):
			checkServerAccepts(t, s.where, raw)
		case s.media == "multipart/form-data":
			var m map[string]json.RawMessage
			_ = json.Unmarshal(raw, &m)
			var files []string
			for _, f := range []string{jumio.PartFront, jumio.PartBack, jumio.PartFace} {
				if _, ok := m[f]; ok {
					files = append(files, f)
				}
			}
			checkServerAccepts(t, s.where+"/request", m["request"], files...)
		case strings.Contains(s.where, "/~1v1~1webhook-endpoints"):
			checkWebhookRequest(t, s.where, raw)
		case strings.Contains(s.where, "JumioCallback"):
			if _, err := jumio.ParseCallback(bytes.NewReader(raw)); err != nil {
				t.Errorf("callback example %s is refused by jumio.ParseCallback: %v", s.where, err)
			}
		default:
			t.Errorf("request example %s: no server-side check for it", s.where)
		}
	}
}

// checkServerAccepts decodes and validates a request the way ingest does;
// files are the image parts of a multipart submission, if any.
func checkServerAccepts(t *testing.T, where string, raw []byte, files ...string) {
	t.Helper()
	req, err := messages.DecodeRequest(raw)
	if err != nil {
		t.Errorf("%s: ingest would answer 400: %v", where, err)
		return
	}
	if len(files) > 0 && len(req.Parts) > 0 {
		t.Errorf("%s: a multipart request part must not have parts", where)
	}
	for _, f := range files {
		req.Parts = append(req.Parts, messages.Part{Classifier: f, ContentType: "image/png", Object: messages.ObjectName("job_1", "0123456789abcdef", f)})
	}
	if err := req.Validate(); err != nil {
		t.Errorf("%s: ingest would answer 422: %v", where, err)
	}
}

// TestSchemaExamples validates the examples inside the schemas (whole
// messages and single properties) against the schema they sit in.
func TestSchemaExamples(t *testing.T) {
	t.Parallel()
	_, strictV := validators(t)
	n := 0
	var walk func(base string, tokens []string, v any)
	walk = func(base string, tokens []string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if exs, ok := x["examples"].([]any); ok {
				for i, e := range exs {
					n++
					if err := strictV.validate(base+"#"+pointer(tokens...), e); err != nil {
						t.Errorf("%s#%s/examples/%d:\n%v", base, pointer(tokens...), i, err)
					}
				}
			}
			for _, k := range sortedKeys(x) {
				if k != "examples" && k != "const" && k != "enum" && k != "default" {
					walk(base, append(slices.Clone(tokens), k), x[k])
				}
			}
		case []any:
			for i, e := range x {
				walk(base, append(slices.Clone(tokens), fmt.Sprint(i)), e)
			}
		}
	}
	schemas, _ := at(specDoc, "components", "schemas")
	walk(specURL, []string{"components", "schemas"}, schemas)
	for _, m := range messageSchemas {
		b, err := os.ReadFile(filepath.Join(schemaDir, m.file))
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		walk(messageLoc(m.file), nil, doc)
	}
	if n < 50 {
		t.Errorf("found only %d schema examples; is the walk broken?", n)
	}
	// The whole-message examples are messages the pipeline reads.
	decoders := map[string]func([]byte) error{
		messages.SchemaVerification: func(b []byte) error {
			r, err := messages.DecodeRequest(b)
			if err == nil {
				err = r.Validate()
			}
			return err
		},
		messages.SchemaEvent:    func(b []byte) error { _, err := messages.DecodeEvent(b); return err },
		messages.SchemaCallback: func(b []byte) error { _, err := messages.DecodeCallback(b); return err },
		messages.SchemaDecision: func(b []byte) error { _, err := messages.DecodeDecision(b); return err },
	}
	for _, m := range messageSchemas {
		b, _ := os.ReadFile(filepath.Join(schemaDir, m.file))
		var doc struct{ Examples []json.RawMessage }
		if err := json.Unmarshal(b, &doc); err != nil || len(doc.Examples) == 0 {
			t.Errorf("%s: want a whole-message example (%v)", m.file, err)
		}
		for i, e := range doc.Examples {
			if err := decoders[m.id](e); err != nil {
				t.Errorf("%s: example %d is refused by the pipeline's decoder: %v", m.file, i, err)
			}
		}
	}
}

// TestExampleFiles validates examples/*.json against the VerificationRequest
// schema and checks ingest accepts them.
func TestExampleFiles(t *testing.T) {
	t.Parallel()
	loose, _ := validators(t)
	files, err := filepath.Glob("../examples/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples/*.json (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := loose.validateJSON(messageLoc(messageSchemas[0].file), b); err != nil {
			t.Errorf("%s does not match the VerificationRequest schema:\n%v", f, err)
		}
		if strings.HasSuffix(f, ".request.json") {
			// The request part of a multipart submission (api-images.sh):
			// ingest validates it with the image parts in place.
			checkServerAccepts(t, f, b, jumio.PartFront, jumio.PartBack, jumio.PartFace)
			continue
		}
		checkServerAccepts(t, f, b)
	}
}

var muxPatternRE = regexp.MustCompile(`mux\.Handle(?:Func)?\("([A-Z]+) (/[^"]*)"`)

// TestRoutesDocumented compares the routes ingest registers (read from the
// source of package pipeline) with the operations of the document.
func TestRoutesDocumented(t *testing.T) {
	t.Parallel()
	validators(t)
	files, _ := filepath.Glob("../pkg/pipeline/*.go")
	code := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range muxPatternRE.FindAllStringSubmatch(string(b), -1) {
			code[strings.ToLower(m[1])+" "+m[2]] = true
		}
	}
	if len(code) == 0 {
		t.Fatal("found no routes in pkg/pipeline")
	}
	documented := map[string]bool{}
	paths, _ := specDoc["paths"].(map[string]any)
	for path, item := range paths {
		for _, m := range methods {
			if _, ok := item.(map[string]any)[m]; ok {
				documented[m+" "+path] = true
			}
		}
	}
	for r := range code {
		if !documented[r] {
			t.Errorf("ingest serves %s, which docs/openapi.yaml does not document", r)
		}
	}
	for r := range documented {
		if !code[r] {
			t.Errorf("docs/openapi.yaml documents %s, which ingest does not serve", r)
		}
	}
}

// TestProblemTypesDocumented: every problem type of package pipeline has a
// schema variant in the document (type, title and status fixed), and is
// described in info.description and in docs/API.md.
func TestProblemTypesDocumented(t *testing.T) {
	t.Parallel()
	validators(t)
	types, err := sourceStrings("../pkg/pipeline", func(_, val string) bool { return strings.HasPrefix(val, "urn:kycpipe:problem:") })
	if err != nil {
		t.Fatal(err)
	}
	apiMD, err := os.ReadFile("API.md")
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := at(specDoc, "info", "description")
	schemas, _ := at(specDoc, "components", "schemas")
	variants := map[string]map[string]any{}
	for name, s := range schemas.(map[string]any) {
		if c, ok := at(s, "properties", "type", "const"); ok && s.(map[string]any)["$ref"] == "#/components/schemas/Problem" {
			variants[fmt.Sprint(c)] = s.(map[string]any)
			if !strings.HasSuffix(name, "Problem") {
				t.Errorf("problem variant %s: name it …Problem", name)
			}
		}
	}
	for _, typ := range types {
		v, ok := variants[typ]
		if !ok {
			t.Errorf("problem type %s has no schema variant in components/schemas", typ)
			continue
		}
		status, _ := at(v, "properties", "status", "const")
		title, _ := at(v, "properties", "title", "const")
		code := 0
		_, _ = fmt.Sscan(fmt.Sprint(status), &code)
		if http.StatusText(code) != title {
			t.Errorf("problem variant of %s: title %v is not the status text of %v", typ, title, status)
		}
		row := fmt.Sprintf("| `%s` | %d |", typ, code)
		if !strings.Contains(fmt.Sprint(desc), row) {
			t.Errorf("info.description lacks the row %q", row)
		}
		if !strings.Contains(string(apiMD), row) {
			t.Errorf("docs/API.md lacks the row %q", row)
		}
	}
	if len(variants) != len(types) {
		t.Errorf("%d problem variants for %d problem types", len(variants), len(types))
	}
}
