// Package configtest checks that a kycpipe binary refuses every bad setting
// at start, before it connects anywhere, with an error naming the variable.
package configtest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
)

// Case is one bad value of one environment variable.
type Case struct {
	Env, Value string
}

// Run is a binary's run function.
type Run func(ctx context.Context, args []string, getenv func(string) string) error

// NumericCases returns, for every integer and duration setting, the cases
// "-1" and "0", except "0" for settings whose default is zero (zero means
// "off" there) or that are in allowZero.
func NumericCases(settings []config.Setting, allowZero ...string) []Case {
	var out []Case
	for _, st := range settings {
		if !st.Numeric() || st.Env == "" {
			continue
		}
		out = append(out, Case{st.Env, "-1"})
		if !slices.Contains(allowZero, st.Env) && st.Default != "0" && st.Default != "0s" {
			out = append(out, Case{st.Env, "0"})
		}
	}
	return out
}

// RefusesBadValues runs the binary once per case with base plus the bad
// value, and fails unless run returns an error naming the variable. base
// points NATS at an address where nothing listens, so an unchecked setting
// shows as a connection error instead. Each run is bounded: a program that
// waits for NATS instead of refusing the setting fails the test.
func RefusesBadValues(t *testing.T, run Run, base map[string]string, cases []Case) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Env+"="+c.Value, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[c.Env] = c.Value
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := run(ctx, nil, func(k string) string { return env[k] })
			switch {
			case err == nil:
				t.Fatalf("%s=%q accepted", c.Env, c.Value)
			case !strings.Contains(err.Error(), c.Env):
				t.Fatalf("%s=%q refused without naming it: %v", c.Env, c.Value, err)
			}
		})
	}
}

// BaseEnv is a configuration every kycpipe binary would start with if NATS
// were reachable: NATS points where nothing listens, listeners pick free
// loopback ports.
var BaseEnv = map[string]string{
	"KYCPIPE_NATS_URL": "nats://127.0.0.1:1", "KYCPIPE_METRICS_ADDR": "127.0.0.1:0", "KYCPIPE_HTTP_ADDR": "127.0.0.1:0",
	"JUMIO_CLIENT_ID": "client", "JUMIO_CLIENT_SECRET": "secret", "KYCPIPE_API_KEYS": "a-key-of-sixteen-characters",
	"KYCPIPE_LOG_LEVEL": "error",
}

// CommonBadCases are malformed values of the settings every binary shares.
var CommonBadCases = []Case{
	{Env: "KYCPIPE_STREAM_REPLICAS", Value: "7"}, {Env: "KYCPIPE_STREAM_REPLICAS", Value: "x"},
	{Env: "KYCPIPE_ACK_WAIT", Value: "500ms"}, {Env: "KYCPIPE_ACK_WAIT", Value: "soon"},
	{Env: "KYCPIPE_LOG_FORMAT", Value: "xml"}, {Env: "KYCPIPE_LOG_LEVEL", Value: "loud"},
	{Env: "JUMIO_REGION", Value: "mars-1"}, {Env: "KYCPIPE_SUBJECT_PREFIX", Value: "a..b"},
	{Env: "KYCPIPE_TRACE_SAMPLE_RATIO", Value: "2"}, {Env: "KYCPIPE_OTLP_ENDPOINT", Value: "::bad"},
	{Env: "KYCPIPE_OTLP_ENDPOINT", Value: "otel-collector:4318"},
	{Env: "KYCPIPE_NATS_CREDS", Value: "/nonexistent/kycpipe.creds"}, {Env: "KYCPIPE_NATS_TLS_CA", Value: "/nonexistent/ca.pem"},
	{Env: "KYCPIPE_CPU_PROFILE", Value: "/nonexistent/dir/cpu.pprof"}, {Env: "KYCPIPE_PROVISION", Value: "maybe"},
	{Env: "KYCPIPE_RETENTION", Value: "5m"},
}
