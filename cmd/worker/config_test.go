package main

import (
	"context"
	"flag"
	"maps"
	"strings"
	"testing"
	"time"

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
	configtest.RefusesBadValues(t, run, baseEnv(), append(cases, badCases...))
}

// baseEnv is configtest.BaseEnv with a User-Agent naming a business, which
// Jumio's real hosts require.
func baseEnv() map[string]string {
	env := maps.Clone(configtest.BaseEnv)
	env["JUMIO_USER_AGENT"] = "ExampleBank-Onboarding/1.0"
	return env
}

// With Jumio's real hosts, a missing or generic User-Agent stops the
// binary at start with an error saying why (jumio-api.md §10.5: Jumio
// requires the User-Agent to name the business, and answers 403 to
// missing or suspicious ones); with a simulator or proxy it is not needed.
// Per-region settings come in pairs.
func TestJumioSettingsCheckedAtStart(t *testing.T) {
	refused := func(env map[string]string, want ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err := run(ctx, nil, func(k string) string { return env[k] })
		if err == nil {
			t.Fatalf("%v accepted", env)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not say %q", err, w)
			}
		}
	}
	// accepted: the binary goes on to connect to NATS (nothing listens there).
	accepted := func(env map[string]string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := run(ctx, nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "KYCPIPE_NATS_URL") {
			t.Fatalf("%v: want the settings accepted (then no NATS), got %v", env, err)
		}
	}
	with := func(kv ...string) map[string]string {
		env := maps.Clone(configtest.BaseEnv)
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	refused(with(), "JUMIO_USER_AGENT", "real hosts", "business", "403")
	refused(with("JUMIO_USER_AGENT", "kycpipe/dev"), "JUMIO_USER_AGENT", "403")
	refused(with("JUMIO_USER_AGENT", "Go-http-client/1.1"), "JUMIO_USER_AGENT")
	refused(with("JUMIO_BASE_URL_AMER_1", "http://127.0.0.1:9"), "JUMIO_USER_AGENT") // emea-1 and apac-1 still go to Jumio
	accepted(with("JUMIO_USER_AGENT", "ExampleBank-Onboarding/1.0"))
	accepted(with("JUMIO_BASE_URL", "http://127.0.0.1:9"))
	accepted(with("JUMIO_BASE_URL_AMER_1", "http://127.0.0.1:9", "JUMIO_BASE_URL_EMEA_1", "http://127.0.0.1:9", "JUMIO_BASE_URL_APAC_1", "http://127.0.0.1:9"))

	ua := "ExampleBank-Onboarding/1.0"
	refused(with("JUMIO_USER_AGENT", ua, "JUMIO_CLIENT_ID_EMEA_1", "eu-client"), "JUMIO_CLIENT_SECRET_EMEA_1")
	refused(with("JUMIO_USER_AGENT", ua, "JUMIO_CLIENT_SECRET_APAC_1", "sg-secret"), "JUMIO_CLIENT_ID_APAC_1")
	refused(with("JUMIO_USER_AGENT", ua, "JUMIO_BASE_URL_EMEA_1", "ftp://sim.example"), "JUMIO_BASE_URL_EMEA_1")
	// Without the default pair, the default region needs its own.
	refused(with("JUMIO_USER_AGENT", ua, "JUMIO_CLIENT_ID", "", "JUMIO_CLIENT_SECRET", "", "JUMIO_CLIENT_ID_EMEA_1", "eu", "JUMIO_CLIENT_SECRET_EMEA_1", "s"), "JUMIO_CLIENT_ID")
	accepted(with("JUMIO_USER_AGENT", ua, "JUMIO_CLIENT_ID", "", "JUMIO_CLIENT_SECRET", "", "JUMIO_CLIENT_ID_AMER_1", "us", "JUMIO_CLIENT_SECRET_AMER_1", "s"))
	refused(with("JUMIO_USER_AGENT", ua, "JUMIO_CLIENT_ID", "", "JUMIO_CLIENT_SECRET", "", "JUMIO_CLIENT_ID_AMER_1", "us", "JUMIO_CLIENT_SECRET_AMER_1", "s",
		"JUMIO_BASE_URL_EMEA_1", "http://127.0.0.1:9"), "JUMIO_CLIENT_ID_EMEA_1")
}

var badCases = []configtest.Case{
	{Env: "KYCPIPE_RATE_CALLBACK_SHARE", Value: "1"}, {Env: "KYCPIPE_RATE_CALLBACK_SHARE", Value: "-0.1"}, {Env: "KYCPIPE_FAULT_PROBE_EVERY", Value: "soon"},
	{Env: "KYCPIPE_METRICS_ADDR", Value: "not-an-address"}, {Env: "JUMIO_BASE_URL", Value: "ftp://sim.example"},
	{Env: "JUMIO_AUTH_URL", Value: "not a url"}, {Env: "KYCPIPE_RATE_ACCOUNT", Value: "-1"},
	{Env: "KYCPIPE_RATE_RETRIEVAL", Value: "fast"}, {Env: "KYCPIPE_RETRY_BACKOFF", Value: "1 second"},
	{Env: "KYCPIPE_CALLBACK_URL", Value: "::bad"}, {Env: "KYCPIPE_CALLBACK_URL", Value: "kyc.example.com/v1/callbacks/jumio"},
	{Env: "KYCPIPE_METRICS_ADDR", Value: "127.0.0.1"}, {Env: "JUMIO_BASE_URL", Value: "127.0.0.1:8090"},
	{Env: "KYCPIPE_RETRY_BUDGET", Value: "many"},
}
