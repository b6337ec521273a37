package console_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/console"
)

// cookieNamed returns the Set-Cookie of name in a response.
func cookieNamed(t *testing.T, p page, name string) *http.Cookie {
	t.Helper()
	for _, line := range p.header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s cookie set; headers %v", name, p.header.Values("Set-Cookie"))
	return nil
}

// TestSignInSessionAndSignOut: pages need a session; the sign-in form
// carries a CSRF token; a valid key starts a session (HttpOnly,
// SameSite=Strict, expiring cookie) and goes back where it was asked; a
// wrong key, a key without the read scope and a missing token are refused;
// signing out ends the session; the key never reaches the logs.
func TestSignInSessionAndSignOut(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	b := f.browser(t)

	p := b.get("/console/jobs?status=FAILED")
	if p.status != http.StatusSeeOther || p.loc != "/console/signin?next="+url.QueryEscape("/console/jobs?status=FAILED") {
		t.Fatalf("unauthenticated page: %d %q", p.status, p.loc)
	}
	form := b.get("/console/signin")
	if got := form.header.Get("Content-Security-Policy"); got != console.ContentSecurityPolicy || !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", got)
	}
	ck := cookieNamed(t, form, "kycpipe_console_signin")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Path != "/console/" || ck.Secure {
		t.Errorf("sign-in cookie %+v", ck)
	}
	contains(t, form, `<label for="key">API key</label>`, `type="password"`)

	// No token, a forged token: 403.
	if p := b.post("/console/signin", url.Values{"key": {opsKey}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in without token: %d", p.status)
	}
	if p := b.post("/console/signin", url.Values{"key": {opsKey}, "csrf": {"forged"}}); p.status != http.StatusForbidden {
		t.Errorf("sign-in with a forged token: %d", p.status)
	}
	// Wrong key; a key that cannot read.
	p = b.signInAttempt("not-a-valid-key-000000000", "/console/")
	if p.status != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", p.status)
	}
	contains(t, p, "That API key is not valid.")
	p = b.signInAttempt(submitOnly, "/console/")
	if p.status != http.StatusForbidden {
		t.Errorf("submit-only key: %d", p.status)
	}
	contains(t, p, "lacks the read scope")

	// The right key goes back to the page asked for.
	p = b.signInAttempt(viewerKey, "/console/jobs?status=FAILED")
	if p.status != http.StatusSeeOther || p.loc != "/console/jobs?status=FAILED" {
		t.Fatalf("sign in: %d %q", p.status, p.loc)
	}
	sess := cookieNamed(t, p, "kycpipe_console")
	if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.MaxAge <= 0 || sess.Expires.IsZero() || sess.Path != "/console/" || len(sess.Value) < 40 {
		t.Errorf("session cookie %+v", sess)
	}
	p = b.get("/console/")
	if p.status != http.StatusOK {
		t.Fatalf("overview: %d", p.status)
	}
	contains(t, p, "viewer", "Sign out", "Jobs by state")

	// Never somewhere else after signing in.
	for _, next := range []string{"https://evil.example/", "//evil.example/x", "/v1/verifications", "/console/signin", `/console/\evil`} {
		if p := f.browser(t).signInAttempt(viewerKey, next); p.loc != "/console/" {
			t.Errorf("next=%q sent to %q", next, p.loc)
		}
	}

	// Signing out needs the token, then ends the session.
	if p := b.post("/console/signout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("sign out without token: %d", p.status)
	}
	p = b.action("/console/", "/console/signout", nil)
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.loc, "/console/signin") {
		t.Fatalf("sign out: %d %q", p.status, p.loc)
	}
	if c := cookieNamed(t, p, "kycpipe_console"); c.MaxAge >= 0 {
		t.Errorf("session cookie not cleared: %+v", c)
	}
	if p := b.get("/console/"); p.status != http.StatusSeeOther {
		t.Errorf("after sign out: %d", p.status)
	}

	for _, e := range f.logs.All() {
		for _, key := range []string{opsKey, viewerKey, submitOnly, "not-a-valid-key-000000000"} {
			if strings.Contains(e.Message, key) || strings.Contains(strings.Join(fieldsOf(e.ContextMap()), " "), key) {
				t.Errorf("a key in the log: %s %v", e.Message, e.ContextMap())
			}
		}
	}
	if len(f.logs.FilterMessage("console: sign-in failed: unknown key").All()) != 1 {
		t.Errorf("failed sign-in not logged once")
	}
}

// TestSessionsExpire: a session ends after SessionIdle unused and after
// SessionMax in any case.
func TestSessionsExpire(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	f := startFixture(t, fixtureOpts{console: console.Config{Now: clk.now, SessionIdle: 10 * time.Minute, SessionMax: time.Hour}})
	b := f.browser(t)
	b.signIn(viewerKey)
	for range 7 { // 70 minutes of use, never idle 10
		clk.add(9 * time.Minute)
		if p := b.get("/console/jobs"); clk.now().Sub(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)) < time.Hour && p.status != http.StatusOK {
			t.Fatalf("active session ended at %s: %d", clk.now(), p.status)
		} else if clk.now().Sub(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)) >= time.Hour && p.status != http.StatusSeeOther {
			t.Fatalf("session older than SessionMax still valid at %s: %d", clk.now(), p.status)
		}
	}
	b.signIn(viewerKey)
	clk.add(10 * time.Minute)
	if p := b.get("/console/jobs"); p.status != http.StatusSeeOther {
		t.Errorf("idle session still valid: %d", p.status)
	}
}

// TestSignInRateLimited: after SignInFailures failures a client is refused
// (429, Retry-After), even with the right key, until its bucket refills;
// other clients are not affected. Failures are logged with the client
// address, never the key.
func TestSignInRateLimited(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	f := startFixture(t, fixtureOpts{console: console.Config{Now: clk.now, SignInFailures: 3, SignInWindow: 15 * time.Minute,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	guesser, other := f.browser(t), f.browser(t)
	guesser.forwardedFor, other.forwardedFor = "203.0.113.9", "198.51.100.4"
	for i := range 3 {
		if p := guesser.signInAttempt("guess-number-"+string(rune('a'+i))+"-0000000", "/console/"); p.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, p.status)
		}
	}
	p := guesser.signInAttempt(opsKey, "/console/")
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
		t.Fatalf("after 3 failures, the right key: %d (Retry-After %q)", p.status, p.header.Get("Retry-After"))
	}
	contains(t, p, "Too many failed sign-ins")
	other.signIn(viewerKey)
	clk.add(5 * time.Minute) // a third of the window: one attempt back
	guesser.signIn(opsKey)
	var failures int
	for _, e := range f.logs.FilterMessage("console: sign-in failed: unknown key").All() {
		failures++
		if e.ContextMap()["client"] != "203.0.113.9" {
			t.Errorf("failure logged with client %v", e.ContextMap()["client"])
		}
	}
	if failures != 3 || len(f.logs.FilterMessage("console: sign-in refused: too many failures").All()) != 1 {
		t.Errorf("logged %d failures", failures)
	}
	for _, e := range f.logs.All() {
		if strings.Contains(e.Message, "guess-number") || strings.Contains(strings.Join(fieldsOf(e.ContextMap()), " "), "guess-number") {
			t.Errorf("a guessed key in the log: %s", e.Message)
		}
	}
}

func fieldsOf(m map[string]any) []string {
	var out []string
	for _, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// TestConsoleHeadersAndRoutes: every console answer has the console's CSP
// (not the API's) and no-store; the API keeps its own; unknown pages and
// methods are pages, not problems; assets are embedded and cacheable by
// version.
func TestConsoleHeadersAndRoutes(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	b := f.browser(t)
	b.signIn(viewerKey)
	for _, path := range []string{"/console/", "/console/jobs", "/console/dead-letters", "/console/live", "/console/webhooks", "/console/nope"} {
		p := b.get(path)
		if p.header.Get("Content-Security-Policy") != console.ContentSecurityPolicy || p.header.Get("X-Frame-Options") != "DENY" ||
			p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s headers: %v", path, p.header)
		}
	}
	if p := b.get("/console/nope"); p.status != http.StatusNotFound || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
		t.Errorf("unknown page: %d %s", p.status, p.header.Get("Content-Type"))
	}
	if p := b.do(http.MethodDelete, "/console/jobs", nil, nil); p.status != http.StatusMethodNotAllowed {
		t.Errorf("DELETE a page: %d", p.status)
	}
	if p := b.get("/console"); (p.status != http.StatusMovedPermanently && p.status != http.StatusTemporaryRedirect) || p.loc != "/console/" {
		t.Errorf("/console: %d %q", p.status, p.loc)
	}
	api := b.get("/v1/verifications/job_x")
	if api.status != http.StatusUnauthorized || api.header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" {
		t.Errorf("the API's headers changed: %d %v", api.status, api.header)
	}
	home := b.get("/console/")
	css := regexpFind(t, home.body, `href="(/console/static/console\.css\?v=[0-9a-f]+)"`)
	js := regexpFind(t, home.body, `src="(/console/static/console\.js\?v=[0-9a-f]+)"`)
	for path, ctype := range map[string]string{css: "text/css", js: "text/javascript"} {
		p := b.get(path)
		if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), ctype) || !strings.Contains(p.header.Get("Cache-Control"), "immutable") {
			t.Errorf("%s: %d %v", path, p.status, p.header)
		}
	}
	if p := b.get("/console/static/console.css"); p.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("unversioned asset cached: %v", p.header)
	}
	if p := b.get("/console/static/../../go.mod"); p.status == http.StatusOK {
		t.Errorf("path traversal served")
	}
	// Nothing inline: the CSP forbids it, so nothing may rely on it.
	for _, path := range []string{"/console/", "/console/jobs", "/console/live", "/console/dead-letters"} {
		p := b.get(path)
		for _, bad := range []string{"<script>", " style=", "<style", "javascript:", " onclick=", " onload="} {
			if strings.Contains(p.body, bad) {
				t.Errorf("%s has inline %q", path, bad)
			}
		}
	}
}

// TestConsoleOff: without a console, /console/ is the API's 404.
func TestConsoleOff(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{noConsole: true})
	p := f.browser(t).get("/console/")
	if p.status != http.StatusNotFound || !strings.Contains(p.header.Get("Content-Type"), "problem+json") {
		t.Errorf("console off: %d %s", p.status, p.header.Get("Content-Type"))
	}
}
