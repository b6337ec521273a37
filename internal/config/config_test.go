package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	t.Parallel()
	var (
		url     string
		n       int
		d       time.Duration
		on      bool
		secret  string
		untouch string
	)
	s := New("test", env(map[string]string{"T_URL": "nats://env:4222", "T_N": "7", "T_D": "3s", "T_ON": "true", "T_SECRET": "s3cr3t"}))
	s.String(&url, "url", "T_URL", "nats://default", "url")
	s.Int(&n, "n", "T_N", 1, "n")
	s.Duration(&d, "d", "T_D", time.Second, "d")
	s.Bool(&on, "on", "T_ON", false, "on")
	s.Secret(&secret, "secret", "T_SECRET", "a secret")
	s.String(&untouch, "plain", "T_PLAIN", "default", "plain")
	if err := s.Parse([]string{"--n", "9"}); err != nil {
		t.Fatal(err)
	}
	if url != "nats://env:4222" || n != 9 || d != 3*time.Second || !on || secret != "s3cr3t" || untouch != "default" {
		t.Errorf("url=%s n=%d d=%s on=%v secret=%s plain=%s", url, n, d, on, secret, untouch)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ env, want string }{
		{"T_N", "T_N: invalid integer"},
		{"T_D", "T_D: invalid duration"},
		{"T_ON", "T_ON: invalid boolean"},
	} {
		var n int
		var d time.Duration
		var on bool
		s := New("test", env(map[string]string{tt.env: "banana"}))
		s.Int(&n, "n", "T_N", 1, "n")
		s.Duration(&d, "d", "T_D", time.Second, "d")
		s.Bool(&on, "on", "T_ON", false, "on")
		if err := s.Parse(nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.env, err, tt.want)
		}
	}
	st := &Setting{Flag: "jumio-client-id", Env: "JUMIO_CLIENT_ID", Usage: "Jumio OAuth2 client ID"}
	if got := Missing(st).Error(); got != "missing JUMIO_CLIENT_ID (or --jumio-client-id): Jumio OAuth2 client ID" {
		t.Errorf("Missing = %q", got)
	}
}

func TestUsageHidesSecrets(t *testing.T) {
	t.Parallel()
	var secret, plain string
	s := New("test", env(map[string]string{"T_SECRET": "hunter2-very-secret"}))
	s.Secret(&secret, "secret", "T_SECRET", "a secret")
	s.String(&plain, "plain", "T_PLAIN", "visible-default", "plain")
	_ = s.Parse(nil)
	var buf bytes.Buffer
	s.PrintUsage(&buf)
	if strings.Contains(buf.String(), "hunter2") || !strings.Contains(buf.String(), "visible-default") || !strings.Contains(buf.String(), "$T_SECRET") {
		t.Errorf("usage:\n%s", buf.String())
	}
	if err := s.Parse([]string{"extra"}); err == nil {
		t.Error("stray arguments accepted")
	}
}

// The string rules refuse unusable values by name, and pass empty ones
// (the setting is off).
func TestStringRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "creds")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		env, value, want string // want "" = accepted
	}{
		{"T_FILE", file, ""},
		{"T_FILE", filepath.Join(dir, "missing"), "invalid T_FILE (--file): cannot read"},
		{"T_FILE", dir, "is a directory"},
		{"T_URL", "http://collector:4318", ""},
		{"T_URL", "HTTPS://collector", ""},
		{"T_URL", "::bad", "invalid T_URL (--url): want an absolute http or https URL"},
		{"T_URL", "ftp://collector", "want an absolute http or https URL"},
		{"T_URL", "collector:4318", "want an absolute"},
		{"T_ADDR", ":9090", ""},
		{"T_ADDR", "127.0.0.1:0", ""},
		{"T_ADDR", "[::1]:8080", ""},
		{"T_ADDR", "not-an-address", "invalid T_ADDR (--addr): want HOST:PORT"},
		{"T_ADDR", "127.0.0.1:http-alt", "want a port number"},
		{"T_ADDR", "127.0.0.1:70000", "want a port number"},
		{"T_ADDR", "127.0.0.1:", "want a port number"},
		{"T_WAIT", "0s", ""},
		{"T_WAIT", "-1s", "invalid T_WAIT (--wait): must not be negative"},
	}
	for _, c := range cases {
		var file, u, addr string
		var wait time.Duration
		s := New("test", env(map[string]string{c.env: c.value}))
		s.String(&file, "file", "T_FILE", "", "a file").File()
		s.String(&u, "url", "T_URL", "", "a URL").URL("http", "https")
		s.String(&addr, "addr", "T_ADDR", ":9090", "an address").HostPort()
		s.Duration(&wait, "wait", "T_WAIT", 0, "a wait").NonNegative()
		err := s.Parse(nil)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s=%q refused: %v", c.env, c.value, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s=%q: err = %v, want %q", c.env, c.value, err, c.want)
		}
	}
}

// Rules compose: each one added is checked, and only the first failing
// one is reported.
func TestRulesCompose(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ value, want string }{{"5", ""}, {"0", "greater than zero"}, {"9", "between 1 and 8"}} {
		var n int
		s := New("test", env(map[string]string{"T_N": tt.value}))
		s.Int(&n, "n", "T_N", 1, "n").Positive().Between(1, 8)
		err := s.Parse(nil)
		if (tt.want == "") != (err == nil) || err != nil && (!strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "T_N") != 1) {
			t.Errorf("T_N=%s: err = %v, want %q once", tt.value, err, tt.want)
		}
	}
}
