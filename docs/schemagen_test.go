package docs_test

// The JSON Schemas in docs/schemas and the generated part of
// docs/openapi.yaml's components are produced here, from the Go types, by
// reflection (github.com/invopop/jsonschema), then annotated with
// descriptions, enums, patterns and formats (schemanotes_test.go).
// TestSchemasUpToDate compares what is generated with what is committed:
//
//	go test ./docs -run TestSchemasUpToDate -update-schemas
//
// rewrites both.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

var updateSchemas = flag.Bool("update-schemas", false,
	"rewrite docs/schemas/*.schema.json and the generated schemas in docs/openapi.yaml from the Go types")

const (
	schemaDir   = "schemas"
	openAPIFile = "openapi.yaml"
	// The generated component schemas of openapi.yaml sit between these
	// comment lines; the indentation of the begin line is theirs.
	beginGenerated = "# BEGIN GENERATED SCHEMAS"
	endGenerated   = "# END GENERATED SCHEMAS"
)

// messageSchema is one message of package messages and its schema file.
type messageSchema struct {
	file   string // in docs/schemas
	id     string // the message's schema field
	value  any    // a value of its Go type
	strict bool   // decoded strictly: unknown properties are errors
}

// messageSchemas lists every message of package messages.
var messageSchemas = []messageSchema{
	{"kycpipe.verification.v1.schema.json", messages.SchemaVerification, messages.VerificationRequest{}, true},
	{"kycpipe.event.v1.schema.json", messages.SchemaEvent, messages.Event{}, false},
	{"kycpipe.callback.v1.schema.json", messages.SchemaCallback, messages.CallbackReceived{}, false},
	{"kycpipe.decision.v1.schema.json", messages.SchemaDecision, messages.DecisionEvent{}, false},
}

// apiBodies are ingest API bodies that are not messages: their schemas are
// only in openapi.yaml's components.
var apiBodies = []any{pipeline.JobView{}, pipeline.Problem{}}

// schemaURN is a message schema's $id.
func schemaURN(id string) string { return "urn:kycpipe:schema:" + id }

// generatedDocs is everything the generator produces.
type generatedDocs struct {
	files      map[string][]byte // docs/schemas file name → content
	components []byte            // YAML of the generated component schemas, unindented
	problems   []string          // undocumented types or properties, stale notes, conflicts
}

// generate reflects every message and API body, annotates the schemas and
// renders the schema files and the OpenAPI component schemas.
func generate() (*generatedDocs, error) {
	g := &generatedDocs{files: map[string][]byte{}}
	a, err := newAnnotator()
	if err != nil {
		return nil, err
	}
	components := map[string]*jnode{}
	addComponent := func(name string, n *jnode) {
		n = rewriteRefs(n.clone(), "#/$defs/", "#/components/schemas/")
		if old, ok := components[name]; ok {
			if !bytes.Equal(old.json(), n.json()) {
				g.problems = append(g.problems, fmt.Sprintf("two different schemas are both named %s", name))
			}
			return
		}
		components[name] = n
	}
	collect := func(s *jsonschema.Schema) (*jnode, error) {
		b, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		n, err := parseJSON(b)
		if err != nil {
			return nil, err
		}
		return orderSchema(n), nil
	}
	for _, m := range messageSchemas {
		s, name := reflectType(m.value, m.strict)
		g.problems = append(g.problems, a.annotate(name, s)...)
		for defName, def := range s.Definitions {
			g.problems = append(g.problems, a.annotate(defName, def)...)
		}
		s.ID = jsonschema.ID(schemaURN(m.id))
		s.Title = name + " (" + m.id + ")"
		n, err := collect(s)
		if err != nil {
			return nil, err
		}
		g.files[m.file] = n.json()
		addComponent(name, n.without("$schema", "$id", "$defs"))
		if defs := n.get("$defs"); defs != nil {
			for i, k := range defs.keys {
				addComponent(k, defs.vals[i])
			}
		}
	}
	for _, v := range apiBodies {
		s, name := reflectType(v, false)
		g.problems = append(g.problems, a.annotate(name, s)...)
		for defName, def := range s.Definitions {
			g.problems = append(g.problems, a.annotate(defName, def)...)
		}
		n, err := collect(s)
		if err != nil {
			return nil, err
		}
		addComponent(name, n.without("$schema", "$id", "$defs"))
		if defs := n.get("$defs"); defs != nil {
			for i, k := range defs.keys {
				addComponent(k, defs.vals[i])
			}
		}
	}
	g.problems = append(g.problems, a.unused()...)
	names := make([]string, 0, len(components))
	for k := range components {
		names = append(names, k)
	}
	sort.Strings(names)
	all := &jnode{kind: kindObject}
	for _, k := range names {
		all.set(k, components[k])
	}
	y, err := all.yaml()
	if err != nil {
		return nil, err
	}
	g.components = y
	return g, nil
}

// reflectType reflects v's type. Strict schemas forbid unknown properties
// on every object; tolerant ones allow them.
func reflectType(v any, strict bool) (*jsonschema.Schema, string) {
	r := &jsonschema.Reflector{
		Anonymous:                 true,
		ExpandedStruct:            true,
		AllowAdditionalProperties: !strict,
		Mapper:                    mapType,
	}
	return r.Reflect(v), reflect.TypeOf(v).Name()
}

// mapType gives the schemas of types with their own JSON encoding.
func mapType(t reflect.Type) *jsonschema.Schema {
	if t == reflect.TypeOf(jumio.WorkflowKey("")) {
		// WorkflowKey.UnmarshalJSON takes a JSON number or a string.
		return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
			{Type: "integer", Minimum: "0"},
			{Type: "string", Pattern: `^[A-Za-z0-9_-]{1,64}$`},
		}}
	}
	return nil
}

// renderOpenAPI returns openapi.yaml with its generated part replaced.
func renderOpenAPI(doc []byte, components []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(doc), "\n")
	begin, end := -1, -1
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case beginGenerated:
			begin = i
		case endGenerated:
			end = i
		}
	}
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("%s: want the lines %q and %q around the generated schemas", openAPIFile, beginGenerated, endGenerated)
	}
	indent := lines[begin][:len(lines[begin])-len(strings.TrimLeft(lines[begin], " "))]
	var b strings.Builder
	for _, l := range lines[:begin+1] {
		b.WriteString(l)
	}
	b.WriteString(indent + "# Generated from the Go types by docs/schemagen_test.go; do not edit. Regenerate with\n")
	b.WriteString(indent + "#   go test ./docs -run TestSchemasUpToDate -update-schemas\n")
	for _, l := range strings.SplitAfter(string(components), "\n") {
		if l != "" {
			b.WriteString(indent + l)
		}
	}
	for _, l := range lines[end:] {
		b.WriteString(l)
	}
	return []byte(b.String()), nil
}

// TestSchemasUpToDate fails when a committed schema differs from what the Go
// types generate: after a hand edit of a schema, or a change of a message
// type without regenerating. -update-schemas rewrites the files.
func TestSchemasUpToDate(t *testing.T) {
	g, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range g.problems {
		t.Errorf("schema generation: %s", p)
	}
	doc, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	wantDoc, err := renderOpenAPI(doc, g.components)
	if err != nil {
		t.Fatal(err)
	}
	existing, _ := filepath.Glob(filepath.Join(schemaDir, "*"))
	if *updateSchemas {
		for _, f := range existing {
			if _, ok := g.files[filepath.Base(f)]; !ok {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
				t.Logf("removed %s", f)
			}
		}
		for name, b := range g.files {
			if err := os.WriteFile(filepath.Join(schemaDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(doc, wantDoc) {
			if err := os.WriteFile(openAPIFile, wantDoc, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the generated schemas of %s", openAPIFile)
		}
		return
	}
	const hint = "regenerate with: go test ./docs -run TestSchemasUpToDate -update-schemas"
	for _, f := range existing {
		if _, ok := g.files[filepath.Base(f)]; !ok {
			t.Errorf("%s is not generated from a message type; %s", f, hint)
		}
	}
	names := make([]string, 0, len(g.files))
	for name := range g.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(schemaDir, name)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v; %s", path, err, hint)
			continue
		}
		if !bytes.Equal(got, g.files[name]) {
			t.Errorf("%s differs from the schema generated from the Go types (%s); %s", path, firstDiff(got, g.files[name]), hint)
		}
	}
	if !bytes.Equal(doc, wantDoc) {
		t.Errorf("%s: the generated component schemas differ from the Go types (%s); %s", openAPIFile, firstDiff(doc, wantDoc), hint)
	}
}

// firstDiff describes the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d: have %q, want %q", i+1, gl, wl)
		}
	}
	return "identical lines"
}

// ---- an ordered JSON tree, rendered as JSON and as YAML ----

const (
	kindScalar = iota
	kindObject
	kindArray
)

// jnode is a JSON value that keeps the order of object keys.
type jnode struct {
	kind   int
	keys   []string // objects
	vals   []*jnode // object values, or array items
	scalar any      // string, json.Number, bool or nil
}

func parseJSON(b []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return n, nil
}

func parseValue(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		n := &jnode{kind: kindObject}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			n.keys, n.vals = append(n.keys, k.(string)), append(n.vals, v)
		}
		_, err := dec.Token()
		return n, err
	case json.Delim('['):
		n := &jnode{kind: kindArray}
		for dec.More() {
			v, err := parseValue(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		_, err := dec.Token()
		return n, err
	}
	return &jnode{kind: kindScalar, scalar: tok}, nil
}

func (n *jnode) get(key string) *jnode {
	if n == nil || n.kind != kindObject {
		return nil
	}
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

func (n *jnode) set(key string, v *jnode) {
	for i, k := range n.keys {
		if k == key {
			n.vals[i] = v
			return
		}
	}
	n.keys, n.vals = append(n.keys, key), append(n.vals, v)
}

func (n *jnode) clone() *jnode {
	c := &jnode{kind: n.kind, scalar: n.scalar, keys: slices.Clone(n.keys)}
	for _, v := range n.vals {
		c.vals = append(c.vals, v.clone())
	}
	return c
}

// without returns a copy of an object without the given keys.
func (n *jnode) without(keys ...string) *jnode {
	c := &jnode{kind: kindObject}
	for i, k := range n.keys {
		if !slices.Contains(keys, k) {
			c.keys, c.vals = append(c.keys, k), append(c.vals, n.vals[i].clone())
		}
	}
	return c
}

// rewriteRefs replaces the prefix from of every $ref with to.
func rewriteRefs(n *jnode, from, to string) *jnode {
	for i, k := range n.keys {
		if s, ok := n.vals[i].scalar.(string); ok && k == "$ref" && strings.HasPrefix(s, from) {
			n.vals[i] = &jnode{kind: kindScalar, scalar: to + strings.TrimPrefix(s, from)}
		}
	}
	for _, v := range n.vals {
		rewriteRefs(v, from, to)
	}
	return n
}

// schemaKeyOrder orders the keywords of a schema object for reading.
var schemaKeyOrder = []string{
	"$schema", "$id", "$ref", "title", "description", "type", "const", "enum", "default", "format",
	"pattern", "minLength", "maxLength", "contentEncoding", "contentMediaType", "minimum", "maximum",
	"items", "minItems", "maxItems", "uniqueItems", "properties", "patternProperties", "propertyNames",
	"additionalProperties", "required", "anyOf", "oneOf", "allOf", "not", "if", "then", "else",
	"examples", "$defs",
}

// Keywords whose value is a schema, a list of schemas or a map of schemas.
var (
	schemaValued     = []string{"items", "additionalProperties", "propertyNames", "not", "if", "then", "else", "contains", "contentSchema"}
	schemaListValued = []string{"anyOf", "oneOf", "allOf", "prefixItems"}
	schemaMapValued  = []string{"properties", "patternProperties", "dependentSchemas", "$defs"}
)

// orderSchema sorts the keywords of every schema object in n (property
// names keep their order: that of the Go struct fields).
func orderSchema(n *jnode) *jnode {
	if n.kind != kindObject {
		return n
	}
	rank := func(k string) int {
		if i := slices.Index(schemaKeyOrder, k); i >= 0 {
			return i
		}
		return len(schemaKeyOrder)
	}
	idx := make([]int, len(n.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return rank(n.keys[idx[a]]) < rank(n.keys[idx[b]]) })
	keys, vals := make([]string, len(idx)), make([]*jnode, len(idx))
	for i, j := range idx {
		keys[i], vals[i] = n.keys[j], n.vals[j]
	}
	n.keys, n.vals = keys, vals
	for i, k := range n.keys {
		v := n.vals[i]
		switch {
		case slices.Contains(schemaValued, k):
			orderSchema(v)
		case slices.Contains(schemaListValued, k) && v.kind == kindArray:
			for _, s := range v.vals {
				orderSchema(s)
			}
		case slices.Contains(schemaMapValued, k) && v.kind == kindObject:
			for _, s := range v.vals {
				orderSchema(s)
			}
		}
	}
	return n
}

// json renders n as indented JSON (two spaces, arrays of scalars on one
// line, no HTML escaping), with a final newline.
func (n *jnode) json() []byte {
	var b bytes.Buffer
	n.writeJSON(&b, "")
	b.WriteByte('\n')
	return b.Bytes()
}

func (n *jnode) writeJSON(b *bytes.Buffer, indent string) {
	switch n.kind {
	case kindScalar:
		writeScalar(b, n.scalar)
	case kindObject:
		if len(n.keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, k := range n.keys {
			b.WriteString(indent + "  ")
			writeScalar(b, k)
			b.WriteString(": ")
			n.vals[i].writeJSON(b, indent+"  ")
			if i < len(n.keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case kindArray:
		flat := true
		for _, v := range n.vals {
			flat = flat && v.kind == kindScalar
		}
		if flat {
			b.WriteByte('[')
			for i, v := range n.vals {
				if i > 0 {
					b.WriteString(", ")
				}
				v.writeJSON(b, indent)
			}
			b.WriteByte(']')
			return
		}
		b.WriteString("[\n")
		for i, v := range n.vals {
			b.WriteString(indent + "  ")
			v.writeJSON(b, indent+"  ")
			if i < len(n.vals)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	}
}

func writeScalar(b *bytes.Buffer, v any) {
	if num, ok := v.(json.Number); ok {
		b.WriteString(num.String())
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	b.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// yaml renders n as block YAML (indent 2; sequences of scalars in flow
// style).
func (n *jnode) yaml() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n.yamlNode()); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (n *jnode) yamlNode() *yaml.Node {
	switch n.kind {
	case kindObject:
		y := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i, k := range n.keys {
			y.Content = append(y.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, n.vals[i].yamlNode())
		}
		return y
	case kindArray:
		y := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		flat := true
		for _, v := range n.vals {
			flat = flat && v.kind == kindScalar
			y.Content = append(y.Content, v.yamlNode())
		}
		if flat {
			y.Style = yaml.FlowStyle
		}
		return y
	}
	switch v := n.scalar.(type) {
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(v.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(v)}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
}
