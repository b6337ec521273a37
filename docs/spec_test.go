package docs_test

// Loading docs/openapi.yaml and docs/schemas, compiling their schemas with
// github.com/santhosh-tekuri/jsonschema/v6, validating values.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	sj "github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/kycpipe/kycpipe/docs"
)

const (
	specURL   = "file:///kycpipe/docs/openapi.yaml"
	schemaURL = "file:///kycpipe/docs/schemas/" // + file name
)

// validator compiles and caches schemas of the OpenAPI document and of the
// message schema files. Strict validators add additionalProperties: false
// to every object schema that lists its properties and says nothing about
// others: a real payload must not carry undocumented properties, even where
// the published schema lets readers tolerate them.
type validator struct {
	mu       sync.Mutex
	compiler *sj.Compiler
	cache    map[string]*sj.Schema
}

var (
	validatorsOnce sync.Once
	validatorsErr  error
	looseV, strict *validator
	specDoc        map[string]any // openapi.yaml as JSON values
)

// validators returns the loose and strict validators of the committed
// documents (the embedded OpenAPI document: the one ingest serves).
func validators(t testing.TB) (loose, strictV *validator) {
	t.Helper()
	validatorsOnce.Do(func() {
		doc, err := yamlToJSON(docs.OpenAPI)
		if err != nil {
			validatorsErr = fmt.Errorf("openapi.yaml: %w", err)
			return
		}
		m, ok := doc.(map[string]any)
		if !ok {
			validatorsErr = fmt.Errorf("openapi.yaml is not a mapping")
			return
		}
		specDoc = m
		schemas := map[string]any{}
		files, _ := filepath.Glob(filepath.Join(schemaDir, "*.schema.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				validatorsErr = err
				return
			}
			v, err := sj.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				validatorsErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			schemas[filepath.Base(f)] = v
		}
		if looseV, validatorsErr = newValidator(m, schemas, false); validatorsErr != nil {
			return
		}
		strict, validatorsErr = newValidator(m, schemas, true)
	})
	if validatorsErr != nil {
		t.Fatal(validatorsErr)
	}
	return looseV, strict
}

func newValidator(spec map[string]any, schemas map[string]any, strictify bool) (*validator, error) {
	c := sj.NewCompiler()
	c.DefaultDraft(sj.Draft2020)
	c.AssertFormat()
	c.AssertContent()
	add := func(url string, doc any) error {
		doc = deepCopy(doc)
		if strictify {
			strictifySchemas(doc)
		}
		return c.AddResource(url, doc)
	}
	if err := add(specURL, spec); err != nil {
		return nil, err
	}
	for name, s := range schemas {
		if err := add(schemaURL+name, s); err != nil {
			return nil, err
		}
	}
	return &validator{compiler: c, cache: map[string]*sj.Schema{}}, nil
}

// schema compiles the schema at loc (a URL with a JSON pointer fragment).
func (v *validator) schema(loc string) (*sj.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.cache[loc]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(loc)
	if err != nil {
		return nil, err
	}
	v.cache[loc] = s
	return s, nil
}

// validate checks a JSON value (decoded with json.Number) against the
// schema at loc.
func (v *validator) validate(loc string, value any) error {
	s, err := v.schema(loc)
	if err != nil {
		return fmt.Errorf("compile %s: %w", loc, err)
	}
	if err := s.Validate(value); err != nil {
		if ve, ok := err.(*sj.ValidationError); ok {
			return fmt.Errorf("%s", ve.GoString())
		}
		return err
	}
	return nil
}

// validateJSON checks raw JSON against the schema at loc.
func (v *validator) validateJSON(loc string, raw []byte) error {
	value, err := sj.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return v.validate(loc, value)
}

// specLoc is the location of a JSON pointer (tokens unescaped) in the
// OpenAPI document.
func specLoc(tokens ...string) string { return specURL + "#" + pointer(tokens...) }

// messageLoc is the root of a message schema file.
func messageLoc(file string) string { return schemaURL + file }

func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// strictifySchemas adds additionalProperties: false to every schema object
// of type object that lists properties and has no additionalProperties.
func strictifySchemas(v any) {
	switch x := v.(type) {
	case map[string]any:
		_, hasProps := x["properties"]
		_, hasAdd := x["additionalProperties"]
		if x["type"] == "object" && hasProps && !hasAdd {
			x["additionalProperties"] = false
		}
		for k, e := range x {
			if k == "examples" || k == "example" || k == "value" || k == "const" || k == "enum" || k == "default" {
				continue // values, not schemas
			}
			strictifySchemas(e)
		}
	case []any:
		for _, e := range x {
			strictifySchemas(e)
		}
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

// yamlToJSON decodes YAML into JSON values (map[string]any, []any, string,
// json.Number, bool, nil), refusing what JSON cannot hold (non-string keys,
// duplicate keys).
func yamlToJSON(b []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	return nodeToJSON(&n)
}

func nodeToJSON(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return nil, fmt.Errorf("want one document")
		}
		return nodeToJSON(n.Content[0])
	case yaml.AliasNode:
		return nodeToJSON(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return nil, fmt.Errorf("line %d: key %q is not a string (quote it)", k.Line, k.Value)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := nodeToJSON(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			v, err := nodeToJSON(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str", "!!timestamp", "!!binary":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			err := n.Decode(&b)
			return b, err
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				return nil, err
			}
			return json.Number(strconv.FormatInt(i, 10)), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, err
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		}
		return nil, fmt.Errorf("line %d: unsupported YAML tag %s", n.Line, n.ShortTag())
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// at returns the value at a JSON pointer (tokens unescaped) of doc.
func at(doc any, tokens ...string) (any, bool) {
	v := doc
	for _, t := range tokens {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[t]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// resolve follows a local $ref ("#/…") of the OpenAPI document.
func resolve(ref string) ([]string, any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, nil, false
	}
	var tokens []string
	for _, t := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tokens = append(tokens, strings.NewReplacer("~1", "/", "~0", "~").Replace(t))
	}
	v, ok := at(specDoc, tokens...)
	return tokens, v, ok
}

// deref follows $ref chains of Reference Objects (not schemas) and returns
// the final object with its location.
func deref(tokens []string, v any) ([]string, map[string]any) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return tokens, nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return tokens, m
		}
		if tokens, v, ok = resolve(ref); !ok {
			return tokens, nil
		}
	}
	return tokens, nil
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toJSONValue converts a Go value to JSON values as santhosh expects.
func toJSONValue(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sj.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}
