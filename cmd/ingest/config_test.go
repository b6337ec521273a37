package main

import (
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
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
	{Env: "KYCPIPE_API_KEYS_FILE", Value: "/nonexistent/keys"}, {Env: "KYCPIPE_TLS_CERT", Value: "/nonexistent/cert.pem"},
	{Env: "KYCPIPE_TLS_KEY", Value: "/nonexistent/key.pem"}, {Env: "KYCPIPE_MAX_BODY_BYTES", Value: "a lot"},
	{Env: "KYCPIPE_CALLBACK_RATE", Value: "fast"},
	{Env: "KYCPIPE_CONSOLE", Value: "maybe"}, {Env: "KYCPIPE_CONSOLE_READONLY", Value: "2"},
	{Env: "KYCPIPE_CONSOLE_METRICS_URLS", Value: "http://worker:9090/metrics,ftp://retriever/metrics"},
}

// Files that exist but hold nothing usable are refused by name too: an
// API keys file with a short key, a certificate and key that are not PEM.
func TestBadFilesRefusedByName(t *testing.T) {
	dir := t.TempDir()
	keys, junk := filepath.Join(dir, "keys"), filepath.Join(dir, "junk.pem")
	for path, content := range map[string]string{keys: "# keys\nshort\n", junk: "not a certificate"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KYCPIPE_API_KEYS": "", "KYCPIPE_API_KEYS_FILE": keys}, "invalid KYCPIPE_API_KEYS_FILE"},
		{map[string]string{"KYCPIPE_API_KEYS_FILE": keys}, "KYCPIPE_API_KEYS or KYCPIPE_API_KEYS_FILE"},
		{map[string]string{"KYCPIPE_TLS_CERT": junk, "KYCPIPE_TLS_KEY": junk}, "invalid KYCPIPE_TLS_CERT / KYCPIPE_TLS_KEY"},
		{map[string]string{"KYCPIPE_TLS_CERT": junk}, "set both KYCPIPE_TLS_CERT and KYCPIPE_TLS_KEY"},
	} {
		env := maps.Clone(configtest.BaseEnv)
		maps.Copy(env, c.env)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		err := run(ctx, nil, func(k string) string { return env[k] })
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.env, err, c.want)
		}
	}
}
