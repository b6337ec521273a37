package config

import (
	"bytes"
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
