package jumio

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestRefreshTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	skew := 5 * time.Minute
	tests := []struct {
		name string
		left time.Duration
		want time.Duration // after now
	}{
		{"full hour", time.Hour, 55 * time.Minute},
		{"exactly twice skew", 10 * time.Minute, 5 * time.Minute},
		{"cached token with 4m left", 4 * time.Minute, 2 * time.Minute},
		{"already expired", -time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := refreshTime(now, now.Add(tt.left), skew).Sub(now); got != tt.want {
				t.Errorf("refresh after %v, want %v", got, tt.want)
			}
		})
	}
}

func TestJWTExpiry(t *testing.T) {
	t.Parallel()
	enc := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	if exp, ok := jwtExpiry(enc(`{"exp":1767268800,"iat":1767265200}`)); !ok || exp.Unix() != 1767268800 {
		t.Errorf("exp = %v, %v", exp, ok)
	}
	for _, tok := range []string{"opaque-token", enc(`{"iat":1}`), enc(`not json`), "a.b.c", enc(`{"exp":"soon"}`), enc(`{"exp":-5}`)} {
		if _, ok := jwtExpiry(tok); ok {
			t.Errorf("jwtExpiry(%q): want no expiry", tok)
		}
	}
}
