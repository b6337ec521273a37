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
	if err := config.SyncDoc("../../docs/CONFIGURATION.md", "notifier", set.Markdown(), *updateConfigDoc); err != nil {
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
	{Env: "KYCPIPE_METRICS_ADDR", Value: "not-an-address"},
	{Env: "KYCPIPE_WEBHOOK_TIMEOUT", Value: "soon"},
	{Env: "KYCPIPE_WEBHOOK_SCHEDULE", Value: "5s,never"}, {Env: "KYCPIPE_WEBHOOK_SCHEDULE", Value: "5s,-1m"},
	{Env: "KYCPIPE_WEBHOOK_SECRET_KEY", Value: "too-short"}, {Env: "KYCPIPE_WEBHOOK_SECRET_KEY", Value: "c2hvcnQ="},
	{Env: "KYCPIPE_WEBHOOK_ALLOW_PRIVATE", Value: "maybe"}, {Env: "KYCPIPE_WEBHOOK_ALLOW_INSECURE", Value: "2"},
	{Env: "KYCPIPE_NOTIFIER_CONCURRENCY", Value: "many"},
}
