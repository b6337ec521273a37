package jumio

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// allKnownByDecoding is the reference allKnown must agree with (when it
// says true).
func allKnownByDecoding(t *testing.T, b []byte, known map[string]bool) bool {
	t.Helper()
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return false
	}
	for k := range all {
		if !known[k] {
			return false
		}
	}
	return true
}

func TestAllKnown(t *testing.T) {
	known := map[string]bool{"workflow": true, "capabilities": true, "decision": true}
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{`{}`, true},
		{` { } `, true},
		{`{"workflow":{"id":"w"}}`, true},
		{`{"workflow":{"id":"w}\"{"},"capabilities":{"x":[{"a":"]"},1,true,null]},"decision":-1.5e3}`, true},
		{"{\n\t\"workflow\" : [ ] ,\r\n \"decision\":null}", true},
		{`{"workflow":{},"extra":1}`, false},
		{`{"extra":{"workflow":1}}`, false},
		{`{"work\u0066low":{}}`, false}, // escaped: unsure, so false (the full decode decides)
		{`[]`, false},
		{`{"workflow":`, false},
		{`{"workflow":{"a":1}`, false},
		{``, false},
	} {
		if got := allKnown([]byte(tt.in), known); got != tt.want {
			t.Errorf("allKnown(%s) = %v, want %v", tt.in, got, tt.want)
		}
		if tt.want && !allKnownByDecoding(t, []byte(tt.in), known) {
			t.Errorf("allKnown(%s) = true, but decoding finds unknown keys", tt.in)
		}
	}
	files, _ := filepath.Glob("testdata/details_*.json")
	if len(files) == 0 {
		t.Fatal("no details fixtures")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := allKnown(b, detailsKnownFields), allKnownByDecoding(t, b, detailsKnownFields); got != want {
			t.Errorf("%s: allKnown = %v, decoding says %v", f, got, want)
		}
	}
}

func FuzzAllKnown(f *testing.F) {
	f.Add([]byte(`{"workflow":{"id":"w"},"x":[1,"}"]}`))
	f.Add([]byte(`{"capabilities":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		// allKnown only ever sees bodies that decoded already.
		if !json.Valid(b) {
			return
		}
		// Never true when the object has a key outside the set (false is
		// always safe: it only costs the full decode).
		if allKnown(b, detailsKnownFields) && !allKnownByDecoding(t, b, detailsKnownFields) {
			t.Fatalf("allKnown(%q) = true, but decoding disagrees", b)
		}
	})
}
