package main

import (
	"flag"
	"testing"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/config/configtest"
)

var updateConfigDoc = flag.Bool("update-config-doc", false, "rewrite this binary's section of docs/CONFIGURATION.md")

// TestConfigurationReference keeps docs/CONFIGURATION.md in sync with the flags.
func TestConfigurationReference(t *testing.T) {
	_, set := newSettings(func(string) string { return "" })
	if err := config.SyncDoc("../../docs/CONFIGURATION.md", "worker", set.Markdown(), *updateConfigDoc); err != nil {
		t.Fatal(err)
	}
}

// Every bad setting stops the binary at start, before it connects to NATS,
// with an error naming the variable.
func TestBadSettingsRefusedByName(t *testing.T) {
	_, set := newSettings(func(string) string { return "" })
	cases := append(configtest.NumericCases(set.Settings()), configtest.CommonBadCases...)
	configtest.RefusesBadValues(t, run, configtest.BaseEnv, append(cases, badCases...))
}

var badCases = []configtest.Case{
	{Env: "KYCPIPE_METRICS_ADDR", Value: "not-an-address"}, {Env: "JUMIO_BASE_URL", Value: "ftp://sim.example"},
	{Env: "JUMIO_AUTH_URL", Value: "not a url"}, {Env: "KYCPIPE_RATE_ACCOUNT", Value: "-1"},
	{Env: "KYCPIPE_RATE_RETRIEVAL", Value: "fast"}, {Env: "KYCPIPE_RETRY_BACKOFF", Value: "1 second"},
}
