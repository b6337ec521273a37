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

// baseEnv is a configuration that would start if NATS were reachable.
var baseEnv = map[string]string{
	"KYCPIPE_NATS_URL": "nats://127.0.0.1:1", "KYCPIPE_METRICS_ADDR": "127.0.0.1:0", "KYCPIPE_HTTP_ADDR": "127.0.0.1:0",
	"JUMIO_CLIENT_ID": "client", "JUMIO_CLIENT_SECRET": "secret", "KYCPIPE_API_KEYS": "a-key-of-sixteen-characters",
	"KYCPIPE_LOG_LEVEL": "error",
}

// Every bad setting stops the binary at start, before it connects to NATS,
// with an error naming the variable.
func TestBadSettingsRefusedByName(t *testing.T) {
	_, set := newSettings(func(string) string { return "" })
	cases := append(configtest.NumericCases(set.Settings()), commonBadCases...)
	configtest.RefusesBadValues(t, run, baseEnv, append(cases, badCases...))
}

// commonBadCases are malformed values of the settings every binary shares.
var commonBadCases = []configtest.Case{
	{Env: "KYCPIPE_STREAM_REPLICAS", Value: "7"}, {Env: "KYCPIPE_STREAM_REPLICAS", Value: "x"},
	{Env: "KYCPIPE_ACK_WAIT", Value: "500ms"}, {Env: "KYCPIPE_ACK_WAIT", Value: "soon"},
	{Env: "KYCPIPE_LOG_FORMAT", Value: "xml"}, {Env: "KYCPIPE_LOG_LEVEL", Value: "loud"},
	{Env: "JUMIO_REGION", Value: "mars-1"}, {Env: "KYCPIPE_SUBJECT_PREFIX", Value: "a..b"},
	{Env: "KYCPIPE_TRACE_SAMPLE_RATIO", Value: "2"},
}

var badCases = []configtest.Case{
	{Env: "KYCPIPE_METRICS_ADDR", Value: "not-an-address"}, {Env: "JUMIO_BASE_URL", Value: "ftp://sim.example"},
	{Env: "JUMIO_AUTH_URL", Value: "not a url"}, {Env: "KYCPIPE_RATE_ACCOUNT", Value: "-1"},
	{Env: "KYCPIPE_RATE_RETRIEVAL", Value: "fast"}, {Env: "KYCPIPE_RETRY_BACKOFF", Value: "1 second"},
}
