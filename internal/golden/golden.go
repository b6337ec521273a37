// Package golden reads the golden message corpus (testdata/golden at the
// module root): one directory per release, each with the messages and
// records that release wrote, captured from its own binaries (make golden),
// and a manifest.json naming each file with the key fields its writer put
// in it. Every later release must decode all of them; the golden tests of
// pkg/messages and pkg/pipeline read the corpus through this package, and
// internal/upgrade writes it.
package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"
)

// Manifest describes a version's corpus (manifest.json).
type Manifest struct {
	Version    string    `json:"version"`
	CapturedAt time.Time `json:"capturedAt"`
	Files      []Entry   `json:"files"`
}

// Entry is one captured message or record: its file (the payload exactly
// as written), what it is, where it was published, its headers, and key
// fields read from the raw JSON at capture time, which decoders must still
// see.
type Entry struct {
	File    string            `json:"file"`
	Kind    string            `json:"kind"`    // request, callback, retrieval_task, event, decision, dead_letter, …
	Variant string            `json:"variant"` // e.g. event-launched, job_record-DECIDED
	Subject string            `json:"subject"`
	Headers map[string]string `json:"headers,omitempty"`
	Fields  map[string]any    `json:"fields,omitempty"`
}

// ReadManifest reads a corpus directory's manifest.json.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// Read reads the manifest of every version under root, and names the files
// of each version's directory that its manifest does not list
// ("<version>/<file>").
func Read(root string) (versions map[string]Manifest, unlisted []string, err error) {
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, err
	}
	versions = map[string]Manifest{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(root, d.Name())
		m, err := ReadManifest(dir)
		if err != nil {
			return nil, nil, err
		}
		listed := map[string]bool{"manifest.json": true}
		for _, e := range m.Files {
			listed[e.File] = true
		}
		files, err := os.ReadDir(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, f := range files {
			if !listed[f.Name()] {
				unlisted = append(unlisted, d.Name()+"/"+f.Name())
			}
		}
		versions[d.Name()] = m
	}
	return versions, unlisted, nil
}

// Same reports whether got, encoded as JSON, is want, a value as the
// writer put it: times compare as instants, numbers and numeric strings by
// their text (a workflow key may be written as a number and held as a
// string).
func Same(want, got any) bool {
	switch g := got.(type) {
	case time.Time:
		w, err := time.Parse(time.RFC3339Nano, fmt.Sprint(want))
		return err == nil && w.Equal(g)
	case *time.Time:
		return g != nil && Same(want, *g)
	case *float64:
		return g != nil && Same(want, *g)
	}
	b, err := json.Marshal(got)
	if err != nil {
		return false
	}
	var norm any
	if err := json.Unmarshal(b, &norm); err != nil {
		return false
	}
	return reflect.DeepEqual(want, norm) || fmt.Sprint(want) == fmt.Sprint(norm)
}
