package jsonx

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// nested is n arrays (or objects with key "a") open around 1.
func nested(n int, object bool) []byte {
	if object {
		return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
	}
	return []byte(strings.Repeat("[", n) + "1" + strings.Repeat("]", n))
}

// The Reader gives up where encoding/json stops: at more than 10000
// objects and arrays open at once. Below that, nesting is read as before.
func TestReaderDepthLimit(t *testing.T) {
	t.Parallel()
	for _, object := range []bool{false, true} {
		for _, n := range []int{1, 100, maxDepth, maxDepth + 1, maxDepth + 50} {
			b := nested(n, object)
			valid := json.Valid(b)
			if want := n <= maxDepth; valid != want {
				t.Fatalf("json.Valid(depth %d, object %v) = %v: encoding/json's limit is no longer %d", n, object, valid, maxDepth)
			}
			r := NewReader(b)
			raw, ok := r.Raw()
			if ok != valid || (ok && !r.End()) {
				t.Errorf("Raw(depth %d, object %v) = %v, json.Valid says %v", n, object, ok, valid)
			}
			if ok && !bytes.Equal(raw, b) {
				t.Errorf("Raw(depth %d) returned other bytes", n)
			}
		}
	}
	// The depth counts across Object, Map and Array: a map inside an
	// object inside an array, at the limit and one level past it.
	for _, extra := range []int{0, 1} {
		reps := maxDepth - 2 + extra
		b := []byte(`[{"m":` + strings.Repeat(`{"k":`, reps) + `1` + strings.Repeat("}", reps) + `}]`)
		r := NewReader(b)
		ok := r.Array(func() bool {
			return r.Object(func([]byte) bool {
				return r.Map(func(string) bool { return r.Skip() })
			})
		})
		if valid := json.Valid(b); ok != valid || valid != (extra == 0) {
			t.Errorf("%d levels past the limit: read %v, json.Valid %v", extra, ok, valid)
		}
	}
	// Depth is released when a value closes: many shallow values in a row
	// are fine.
	many := []byte("[" + strings.Repeat("[[1]],", 3*maxDepth) + "[]]")
	if _, ok := NewReader(many).Raw(); !ok {
		t.Error("siblings counted as nesting")
	}
}

// FuzzRaw checks Raw against encoding/json: a value Raw accepts (with only
// space after it) is valid JSON, and its bytes are those json.RawMessage
// keeps.
func FuzzRaw(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `null`, `true`, `false`, `-0.5e+3`, `"a\u00e9\n"`, ` {"a":[1,{"b":null}],"c":"d"} `,
		`{"a":1,"a":2}`, `[1,]`, `{"\u0061":1}`, `"\ud83d\ude00"`, "\"\xff\"", `01`, `[[[[[[[[1]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		raw, ok := r.Raw()
		if !ok || !r.End() {
			return
		}
		var want json.RawMessage
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("Raw accepted %q, encoding/json refuses it: %v", b, err)
		}
		if !bytes.Equal(raw, want) {
			t.Fatalf("Raw(%q) = %q, json.RawMessage %q", b, raw, want)
		}
	})
}

// InternedStringOrNull reads strings as StringOrNull does, and a string of
// its set without allocating.
func TestInternedStringOrNull(t *testing.T) { // not parallel: AllocsPerRun
	set := NewInterned("PASSED", "OK", "é")
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{`"PASSED"`, "PASSED", true},
		{` "OK"`, "OK", true},
		{`"é"`, "é", true},
		{`"P\u0041SSED"`, "PASSED", true}, // escaped: a copy, the same string
		{`"REJECTED"`, "REJECTED", true},
		{`""`, "", true},
		{`null`, "prior", true},
		{"\"\xff\"", "prior", false},
		{`1`, "prior", false},
	} {
		var plain, interned string = "prior", "prior"
		okPlain := NewReader([]byte(tt.in)).StringOrNull(&plain)
		okInterned := NewReader([]byte(tt.in)).InternedStringOrNull(&interned, set)
		if okInterned != tt.ok || okPlain != tt.ok || (tt.ok && (interned != tt.want || plain != tt.want)) {
			t.Errorf("%s: InternedStringOrNull %q %v, StringOrNull %q %v, want %q %v", tt.in, interned, okInterned, plain, okPlain, tt.want, tt.ok)
		}
	}
	b := []byte(`"PASSED"`)
	var s string
	if n := testing.AllocsPerRun(100, func() {
		if !NewReader(b).InternedStringOrNull(&s, set) || s != "PASSED" {
			t.Fatal("PASSED not read")
		}
	}); n != 0 {
		t.Errorf("reading an interned string allocates %v times", n)
	}
}
