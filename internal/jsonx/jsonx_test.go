package jsonx

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// AppendStringMap writes what json.Marshal writes for a map[string]string:
// null for nil, {} for empty, members sorted by the keys' bytes (not their
// escaped form), keys and values escaped as strings are.
func TestAppendStringMapMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		m    map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"one", map[string]string{"front": "https://upload.example/front?a=1&b=2"}},
		{"sorted by bytes", map[string]string{"b": "2", "a": "1", "B": "0", "aa": "", "": "empty key", "\u00e9": "e"}},
		{"escapes", map[string]string{"<k>": "<v>", "a&b": "\u2028\u2029", "\xff": "\xfe", "q\"": "\\", "\x01": "\n\t"}},
		{"more than the stack buffer", map[string]string{"k": "1", "j": "2", "i": "3", "h": "4", "g": "5", "f": "6", "e": "7", "d": "8", "c": "9", "b": "10", "a": "11"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, html := range []bool{true, false} {
				got := string(AppendStringMap([]byte("x"), tc.m, html))
				want := "x" + marshal(t, tc.m, html)
				if got != want {
					t.Fatalf("escapeHTML %v: AppendStringMap wrote %s, encoding/json %s", html, got, want)
				}
			}
		})
	}
}

// marshal is encoding/json's encoding of v, with or without HTML escaping.
func marshal(t *testing.T, v any, escapeHTML bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestSortedKeys(t *testing.T) {
	t.Parallel()
	m := map[string]int{"b": 1, "a": 2, "c": 3, "\u00e9": 4, "A": 5}
	var buf [2]string
	got := SortedKeys(buf[:0], m)
	if want := []string{"A", "a", "b", "c", "\u00e9"}; !slices.Equal(got, want) {
		t.Fatalf("SortedKeys = %q, want %q", got, want)
	}
	if got := SortedKeys([]string{"kept"}, map[string]int{"z": 0}); !slices.Equal(got, []string{"kept", "z"}) {
		t.Fatalf("SortedKeys appends to buf: %q", got)
	}
	if got := SortedKeys[int](nil, nil); len(got) != 0 {
		t.Fatalf("SortedKeys of a nil map = %q", got)
	}
}

// Object's Float and StringMapOmit members are encoding/json's encodings
// of the values (and StringMapOmit drops nil and empty maps, as omitempty).
func TestObjectFloatAndStringMapOmit(t *testing.T) {
	t.Parallel()
	type doc struct {
		F float64           `json:"f"`
		M map[string]string `json:"m,omitempty"`
	}
	for _, d := range []doc{
		{F: 0}, {F: math.Copysign(0, -1)}, {F: 12.5}, {F: 1e21}, {F: 1e20}, {F: 1e-6}, {F: 1e-7}, {F: -3.25e-9},
		{F: math.MaxFloat64}, {F: math.SmallestNonzeroFloat64}, {F: 1, M: map[string]string{}},
		{F: 2, M: map[string]string{"z": "<", "a": "&"}},
	} {
		o := Open(nil, true)
		if !o.Float("f", d.F) {
			t.Fatalf("Float(%v) refused", d.F)
		}
		o.StringMapOmit("m", d.M)
		if got, want := string(o.Close()), marshal(t, d, true); got != want {
			t.Fatalf("Object wrote %s, encoding/json %s", got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		o := Open(nil, true)
		if o.Float("f", f) {
			t.Fatalf("Float(%v) accepted a value encoding/json refuses", f)
		}
		if _, err := json.Marshal(f); err == nil {
			t.Fatalf("json.Marshal(%v) succeeded", f)
		}
	}
}

// MapKey writes a member name as encoding/json writes a map key: escaped
// as a string is.
func TestObjectMapKey(t *testing.T) {
	t.Parallel()
	m := map[string]int{"<a>": 1, "b&c": 2, "\u2028": 3, "\xff": 4, "\"q\"": 5, "\x01": 6, "plain": 7}
	for _, html := range []bool{true, false} {
		o := Open(nil, html)
		var buf [8]string
		for _, k := range SortedKeys(buf[:0], m) {
			o.MapKey(k)
			o.B = append(o.B, byte('0'+m[k]))
		}
		if got, want := string(o.Close()), marshal(t, m, html); got != want {
			t.Fatalf("escapeHTML %v: MapKey wrote %s, encoding/json %s", html, got, want)
		}
	}
}
