package webhooks_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Verify never panics on hostile headers, and what Sign produces always
// verifies.
func FuzzVerify(f *testing.F) {
	f.Add(specID, strconv.Itoa(specTimestamp), specSignature, []byte(specBody))
	f.Add("", "", "", []byte{})
	f.Add("msg_1", "-1", "v1, v1,,, v2,abc", []byte("{}"))
	f.Add("a.b.c", "99999999999999999999", "v1,"+string(make([]byte, 100)), []byte("\x00"))
	secret := mustSecret(f, specSecret)
	now := time.Unix(specTimestamp, 0)
	v := &webhooks.Verifier{Secrets: []webhooks.Secret{secret}, Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(webhooks.HeaderID, id)
		h.Set(webhooks.HeaderTimestamp, ts)
		h.Set(webhooks.HeaderSignature, sig)
		_ = v.Verify(h, body)

		if id == "" {
			return
		}
		h2 := http.Header{}
		if err := webhooks.SetHeaders(h2, []webhooks.Secret{secret}, id, now, body); err != nil {
			t.Fatal(err)
		}
		// http.Header.Get returns the value as set; Verify must accept it.
		if err := v.Verify(h2, body); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
	})
}

// CheckURL never panics, and whatever it accepts under the production
// policy is https with a host that is public.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "https://127.0.0.1/", "https://[::ffff:127.0.0.1]/",
		"https://2130706433/", "http://[fe80::1%25eth0]:80/", "https://a@b/#c", "https://%zz/", "https://[::1", "https://0x7f.1/"} {
		f.Add(s)
	}
	p := webhooks.Policy{Resolver: webhooks.ResolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr(publicIP)}, nil
	})}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := p.CheckURL(context.Background(), raw)
		if err != nil {
			return
		}
		if u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q: %+v", raw, u)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && webhooks.AddrClass(a, false) != "" {
			t.Fatalf("accepted %q with a %s address", raw, webhooks.AddrClass(a, false))
		}
	})
}

// ParseRetryAfter never panics and stays within [0, MaxRetryAfter].
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "", "Sun, 06 Dec 2026 10:30:00 GMT", "-1", "99999999999999999999999", "Sun Dec  6 11:00:00 2026"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := webhooks.ParseRetryAfter(v, now)
		if d < 0 || d > webhooks.MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s, %v", v, d, ok)
		}
	})
}
