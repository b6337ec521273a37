package main

import (
	"flag"
	"testing"

	"github.com/kycpipe/kycpipe/internal/config"
)

var updateConfigDoc = flag.Bool("update-config-doc", false, "rewrite this binary's section of docs/CONFIGURATION.md")

// TestConfigurationReference keeps docs/CONFIGURATION.md in sync with the flags.
func TestConfigurationReference(t *testing.T) {
	_, set := newSettings(func(string) string { return "" })
	if err := config.SyncDoc("../../docs/CONFIGURATION.md", "ingest", set.Markdown(), *updateConfigDoc); err != nil {
		t.Fatal(err)
	}
}
