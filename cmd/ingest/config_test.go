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
	if err := config.SyncDoc("../../docs/CONFIGURATION.md", "ingest", set.Markdown(), *updateConfigDoc); err != nil {
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
	{Env: "KYCPIPE_HTTP_ADDR", Value: "not-an-address"}, {Env: "KYCPIPE_CALLBACK_ALLOWLIST", Value: "300.1.2.3"},
	{Env: "KYCPIPE_TRUSTED_PROXIES", Value: "10.0.0.0/99"}, {Env: "KYCPIPE_API_KEYS", Value: "short"},
	{Env: "KYCPIPE_CONSOLE", Value: "maybe"}, {Env: "KYCPIPE_CONSOLE_READONLY", Value: "2"},
	{Env: "KYCPIPE_CONSOLE_METRICS_URLS", Value: "http://worker:9090/metrics,ftp://retriever/metrics"},
}
