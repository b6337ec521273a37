package service

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWiringStaysShort keeps issue 12's rules on the code around the stage
// core: a binary's run.go only wires settings into service.Program (at most
// 60 lines), and the soak harness stays in files of at most 400 lines.
func TestWiringStaysShort(t *testing.T) {
	for pattern, limit := range map[string]int{"../../cmd/*/run.go": 60, "../soak/*.go": 400} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("no files match %s (%v)", pattern, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if n := bytes.Count(b, []byte("\n")); n > limit {
				t.Errorf("%s has %d lines, at most %d", f, n, limit)
			}
		}
	}
}
