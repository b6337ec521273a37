package main

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/kycpipe/kycpipe/internal/config/configtest"
)

// Every bad setting stops devstack at start, before it starts NATS or
// listens anywhere, with an error naming the variable.
func TestBadSettingsRefusedByName(t *testing.T) {
	_, set := newSettings(func(string) string { return "" })
	dir := t.TempDir()
	// Were a bad value accepted, devstack would start on free ports.
	base := map[string]string{"KYCPIPE_DATA_DIR": filepath.Join(dir, "data"), "KYCPIPE_HTTP_ADDR": "127.0.0.1:0", "JUMIOSIM_ADDR": "127.0.0.1:0",
		"KYCPIPE_NATS_PORT": strconv.Itoa(freePort(t))}
	cases := append(configtest.NumericCases(set.Settings(), "JUMIOSIM_AUTO_COMPLETE_WEB"),
		configtest.Case{Env: "KYCPIPE_NATS_PORT", Value: "70000"}, configtest.Case{Env: "KYCPIPE_NATS_PORT", Value: "x"},
		configtest.Case{Env: "KYCPIPE_HTTP_ADDR", Value: "not-an-address"}, configtest.Case{Env: "JUMIOSIM_ADDR", Value: "127.0.0.1"},
		configtest.Case{Env: "KYCPIPE_API_KEYS", Value: "short"}, configtest.Case{Env: "KYCPIPE_LOG_LEVEL", Value: "loud"},
		configtest.Case{Env: "KYCPIPE_POLL_SCHEDULE", Value: "10s,5s"}, configtest.Case{Env: "JUMIOSIM_AUTO_COMPLETE_WEB", Value: "soon"},
		configtest.Case{Env: "KYCPIPE_DATA_DIR", Value: filepath.Join(dir, "a-file", "data")},
	)
	if err := os.WriteFile(filepath.Join(dir, "a-file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	configtest.RefusesBadValues(t, run, base, cases)
}

// freePort returns a loopback port nothing listens on (just now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
