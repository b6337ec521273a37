package console

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console/"

// ContentSecurityPolicy is the policy of every console response: nothing
// but the console's own origin (its embedded stylesheet and script, its
// event streams), no framing, forms posted only to itself.
const ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// Config configures a [Console]. Zero fields take their defaults.
type Config struct {
	Topology pipeline.Topology
	// APIKeys are the keys operators sign in with (required): read to look,
	// erase to erase, admin for every other action.
	APIKeys *pipeline.APIKeys
	// ReadOnly removes every action (KYCPIPE_CONSOLE_READONLY): no replay,
	// erase, reveal or resend button is shown, and their routes answer 403.
	ReadOnly bool
	// SecureCookies marks cookies Secure even on plain HTTP requests (behind
	// a proxy that terminates TLS). Requests over TLS get Secure cookies
	// anyway.
	SecureCookies bool
	// TrustedProxies are the proxies whose X-Forwarded-For is believed when
	// rate-limiting sign-ins by client address.
	TrustedProxies []netip.Prefix
	// SessionIdle ends a session unused this long (default 30m);
	// SessionMax ends any session this old (default 12h).
	SessionIdle time.Duration
	SessionMax  time.Duration
	// MaxSessions bounds the sessions held (default 10,000; the least
	// recently used goes first).
	MaxSessions int
	// SignInFailures is how many failed sign-ins a client address may have
	// per SignInWindow (default 5 per 15m); all clients together may fail
	// 20 times as many.
	SignInFailures int
	SignInWindow   time.Duration
	// Gatherer is this process's metrics registry, read for the rates of
	// Jumio calls (optional; in `make run` every stage shares it).
	Gatherer prometheus.Gatherer
	// MetricsURLs are the /metrics of the processes that call Jumio
	// (workers, retrievers), scraped for the same rates
	// (KYCPIPE_CONSOLE_METRICS_URLS).
	MetricsURLs []string
	// ReplayDeadline is the new deadline of replayed retrieval tasks
	// (default 1h, as kycctl dlq replay).
	ReplayDeadline time.Duration
	// Webhooks is the webhook endpoint registry the webhooks page shows
	// (optional: without it the page says so).
	Webhooks *pipeline.WebhookEndpoints
	Logger   *zap.Logger
	Now      func() time.Time
}

func (c Config) withDefaults() Config {
	c.Topology = c.Topology.WithDefaults()
	c.SessionIdle = cmp.Or(c.SessionIdle, 30*time.Minute)
	c.SessionMax = cmp.Or(c.SessionMax, 12*time.Hour)
	c.MaxSessions = cmp.Or(c.MaxSessions, 10_000)
	c.SignInFailures = cmp.Or(c.SignInFailures, 5)
	c.SignInWindow = cmp.Or(c.SignInWindow, 15*time.Minute)
	c.ReplayDeadline = cmp.Or(c.ReplayDeadline, time.Hour)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ErrInvalidConfig is wrapped by New's errors for settings that cannot work.
var ErrInvalidConfig = errors.New("console: invalid configuration")

func (c Config) validate() error {
	var errs []string
	if c.APIKeys == nil {
		errs = append(errs, "APIKeys is required (operators sign in with an API key)")
	}
	for name, v := range map[string]time.Duration{"SessionIdle": c.SessionIdle, "SessionMax": c.SessionMax, "SignInWindow": c.SignInWindow, "ReplayDeadline": c.ReplayDeadline} {
		if v < 0 {
			errs = append(errs, name+" must not be negative")
		}
	}
	if c.MaxSessions < 0 || c.SignInFailures < 0 {
		errs = append(errs, "MaxSessions and SignInFailures must not be negative")
	}
	for _, u := range c.MetricsURLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Sprintf("metrics URL %q is not an http(s) URL", u))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}
	return nil
}

// Console is the operator console (DESIGN 3.9): an http.Handler for
// everything under /console/. It is safe for concurrent use.
type Console struct {
	cfg      Config
	js       jetstream.JetStream
	subj     messages.Subjects
	idx      *pipeline.JobIndex
	store    *pipeline.JobStore
	sessions *sessionStore
	limiter  *signInLimiter
	log      *zap.Logger
	now      func() time.Time

	pages     map[string]*template.Template
	fragments *template.Template
	assets    map[string]asset
	mux       *http.ServeMux

	stats   *statsCache
	rates   *jumioRates
	live    *decisionHub
	streams sync.Map // stream name → jetstream.Stream

	stopOnce sync.Once
	stop     chan struct{} // closed by Close or SetDraining(true): live streams end
}

type asset struct {
	body        []byte
	contentType string
	version     string
}

// New builds the console on the pipeline's JetStream resources (see
// pipeline.Provision). It starts no goroutine until a page needs one; Close
// stops them.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Console, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	idx, err := pipeline.NewJobIndex(ctx, js, cfg.Topology)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	c := &Console{cfg: cfg, js: js, subj: cfg.Topology.Subjects, idx: idx, store: idx.Store(),
		sessions: newSessionStore(cfg.SessionIdle, cfg.SessionMax, cfg.MaxSessions, cfg.Now),
		limiter:  newSignInLimiter(cfg.SignInFailures, 20*cfg.SignInFailures, cfg.SignInWindow, cfg.Now),
		log:      cfg.Logger, now: cfg.Now, stop: make(chan struct{})}
	if err := c.loadAssets(); err != nil {
		return nil, err
	}
	if err := c.loadTemplates(); err != nil {
		return nil, err
	}
	c.stats = newStatsCache(c)
	c.rates = newJumioRates(cfg.Gatherer, cfg.MetricsURLs, cfg.Now, c.log)
	c.live = newDecisionHub(c)
	c.routes()
	return c, nil
}

// SetDraining(true) ends the live streams (their browsers reconnect to
// another replica), so that a graceful shutdown is not held up by them.
func (c *Console) SetDraining(d bool) {
	if d {
		c.Close()
	}
}

// Close stops the console's background work and ends its live streams.
func (c *Console) Close() {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.live.close()
	})
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /console/static/{file}", c.static)
	m.HandleFunc("GET /console/signin", c.signInForm)
	m.HandleFunc("POST /console/signin", c.signIn)
	m.Handle("POST /console/signout", c.action("", c.signOut))

	m.Handle("GET /console/{$}", c.view(c.overview))
	m.Handle("GET /console/jobs", c.view(c.jobs))
	m.Handle("GET /console/jobs/{jobId}", c.view(c.job))
	m.Handle("POST /console/jobs/{jobId}/reveal", c.action(pipeline.ScopeAdmin, c.reveal))
	m.Handle("POST /console/jobs/{jobId}/replay", c.action(pipeline.ScopeAdmin, c.replayJob))
	m.Handle("POST /console/jobs/{jobId}/erase", c.action(pipeline.ScopeErase, c.erase))
	m.Handle("GET /console/dead-letters", c.view(c.deadLetters))
	m.Handle("GET /console/dead-letters/{seq}", c.view(c.deadLetter))
	m.Handle("POST /console/dead-letters/replay", c.action(pipeline.ScopeAdmin, c.replayDeadLetters))
	m.Handle("GET /console/webhooks", c.view(c.webhooks))
	m.Handle("GET /console/webhooks/{id}", c.view(c.webhook))
	m.Handle("POST /console/webhooks/{id}/resend", c.action(pipeline.ScopeAdmin, c.resend))
	m.Handle("GET /console/live", c.view(c.livePage))
	m.Handle("GET /console/events/decisions", c.view(c.decisionStream))
	m.Handle("GET /console/events/overview", c.view(c.overviewStream))
	c.mux = m
}

// ServeHTTP serves the console with its security headers: a request the
// mux does not know is a 404 page, a wrong method a 405 page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if _, pattern := c.mux.Handler(r); pattern == "" {
		status, msg := http.StatusNotFound, "There is no such page in the console."
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rec := &methodProbe{h: http.Header{}}
			c.mux.ServeHTTP(rec, r)
			if rec.code == http.StatusMethodNotAllowed {
				h.Set("Allow", rec.h.Get("Allow"))
				status, msg = http.StatusMethodNotAllowed, "This page does not take that method."
			}
		}
		c.errorPage(w, r, status, msg)
		return
	}
	c.mux.ServeHTTP(w, r)
}

type methodProbe struct {
	h    http.Header
	code int
}

func (m *methodProbe) Header() http.Header         { return m.h }
func (m *methodProbe) Write(b []byte) (int, error) { return len(b), nil }
func (m *methodProbe) WriteHeader(code int)        { m.code = code }

// viewer is who a page is shown to.
type viewer struct {
	Name     string
	Scopes   []pipeline.Scope
	CanErase bool // erase scope, console not read-only
	CanAdmin bool // admin scope, console not read-only
}

// page is what every template gets.
type page struct {
	Title    string
	Nav      string
	Viewer   *viewer
	CSRF     string
	ReadOnly bool
	Flash    *flash
	Now      time.Time
	Data     any
}

type flash struct {
	Kind string // ok, error
	Text string
}

// request is one authenticated request.
type request struct {
	r    *http.Request
	sess *session
}

func (q request) viewer(readOnly bool) *viewer {
	p := q.sess.principal
	return &viewer{Name: p.Name, Scopes: p.Scopes, CanErase: !readOnly && p.Has(pipeline.ScopeErase), CanAdmin: !readOnly && p.Has(pipeline.ScopeAdmin)}
}

// view serves GET pages to signed-in operators with the read scope; others
// are sent to the sign-in form (and back here after it).
func (c *Console) view(h func(http.ResponseWriter, request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := c.session(r)
		if sess == nil {
			if r.Header.Get("Accept") == "text/event-stream" {
				c.errorPage(w, r, http.StatusUnauthorized, "Sign in again.")
				return
			}
			http.Redirect(w, r, "/console/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !sess.principal.Has(pipeline.ScopeRead) {
			c.errorPage(w, r, http.StatusForbidden, "Your API key lacks the read scope.")
			return
		}
		h(w, request{r: r, sess: sess})
	})
}

// action serves a state-changing form POST: it needs a session, a valid
// CSRF token (403 otherwise), the scope (403 otherwise) and a console that
// is not read-only (403). Signing out needs no scope and works read-only.
func (c *Console) action(scope pipeline.Scope, h func(http.ResponseWriter, request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		sess := c.session(r)
		if sess == nil {
			c.errorPage(w, r, http.StatusForbidden, "Your session has ended: sign in again, then repeat the action.")
			return
		}
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" || !tokensEqual(r.PostFormValue("csrf"), sess.csrf) {
			c.log.Warn("console: action refused: no valid CSRF token", zap.String("key", sess.principal.Name), zap.String("path", r.URL.Path))
			c.errorPage(w, r, http.StatusForbidden, "This form has expired or did not come from the console. Reload the page and try again.")
			return
		}
		if scope != "" {
			if c.cfg.ReadOnly {
				c.errorPage(w, r, http.StatusForbidden, "The console is read-only: actions are turned off.")
				return
			}
			if !sess.principal.Has(scope) {
				c.errorPage(w, r, http.StatusForbidden, "Your API key lacks the "+string(scope)+" scope.")
				return
			}
		}
		h(w, request{r: r, sess: sess})
	})
}

// maxFormBytes bounds the forms the console takes.
const maxFormBytes = 64 << 10

func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return c.sessions.get(ck.Value)
}

// secure reports whether the console's cookies are Secure for r.
func (c *Console) secure(r *http.Request) bool { return c.cfg.SecureCookies || r.TLS != nil }

// render writes a page.
func (c *Console) render(w http.ResponseWriter, q request, status int, name, title, nav string, data any, fl *flash) {
	p := page{Title: title, Nav: nav, Viewer: q.viewer(c.cfg.ReadOnly), CSRF: q.sess.csrf, ReadOnly: c.cfg.ReadOnly, Flash: fl, Now: c.now(), Data: data}
	c.write(w, status, name, p)
}

func (c *Console) write(w http.ResponseWriter, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		c.log.Error("console: no such template", zap.String("template", name))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", p); err != nil {
		c.log.Error("console: page not rendered", zap.String("template", name), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers with a page saying what went wrong (the session's
// navigation when there is one).
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p := page{Title: http.StatusText(status), Now: c.now(), ReadOnly: c.cfg.ReadOnly, Data: errorData{Status: status, Message: msg}}
	if sess := c.session(r); sess != nil {
		q := request{r: r, sess: sess}
		p.Viewer, p.CSRF = q.viewer(c.cfg.ReadOnly), sess.csrf
	}
	c.write(w, status, "error.html", p)
}

type errorData struct {
	Status  int
	Message string
}

// unavailable answers a page whose data could not be read.
func (c *Console) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	c.log.Warn("console: cannot read "+what, zap.Error(err))
	w.Header().Set("Retry-After", "5")
	c.errorPage(w, r, http.StatusServiceUnavailable, "Cannot read "+what+" now (NATS did not answer). Try again in a moment.")
}

func (c *Console) loadAssets() error {
	c.assets = map[string]asset{}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return err
	}
	types := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
	for _, e := range entries {
		b, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		c.assets[e.Name()] = asset{body: b, contentType: cmp.Or(types[path.Ext(e.Name())], "application/octet-stream"), version: hex.EncodeToString(sum[:6])}
	}
	return nil
}

// static serves the embedded stylesheet, script and icon. A request with
// the asset's current version is cached for a year (the version changes
// with the content).
func (c *Console) static(w http.ResponseWriter, r *http.Request) {
	a, ok := c.assets[r.PathValue("file")]
	if !ok {
		c.errorPage(w, r, http.StatusNotFound, "There is no such file.")
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	if r.URL.Query().Get("v") == a.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	_, _ = w.Write(a.body)
}

func (c *Console) assetURL(name string) string {
	return "/console/static/" + name + "?v=" + c.assets[name].version
}

func (c *Console) loadTemplates() error {
	funcs := c.funcs()
	c.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "base.html" || base == "partials.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/partials.html", n)
		if err != nil {
			return fmt.Errorf("console: template %s: %w", base, err)
		}
		c.pages[base] = t
	}
	c.fragments, err = template.New("partials").Funcs(funcs).ParseFS(templateFS, "templates/partials.html")
	if err != nil {
		return fmt.Errorf("console: partials: %w", err)
	}
	return nil
}

// fragment renders one template of partials.html (for live updates).
func (c *Console) fragment(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	err := c.fragments.ExecuteTemplate(&buf, name, data)
	return buf.Bytes(), err
}

// safeNext returns next if it is a console path to go back to after
// signing in, else the overview: never another site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, Prefix) || strings.HasPrefix(next, "//") ||
		strings.Contains(next, "\\") || strings.HasPrefix(u.Path, "/console/signin") || strings.HasPrefix(u.Path, "/console/events/") {
		return Prefix
	}
	return u.RequestURI()
}

// flashes are the notices a redirect after an action may name (?done=…):
// fixed texts, so nothing a URL carries is shown.
var flashes = map[string]flash{
	"erasing":      {"ok", "Erasure queued: the job is ERASING; a worker removes its data here and at Jumio, then it is ERASED."},
	"replayed":     {"ok", "Replayed: the job resumes from its checkpoint."},
	"nothing":      {"error", "Nothing to replay: the job has no stored dead letter."},
	"resent":       {"ok", "Delivery queued again."},
	"signedout":    {"ok", "Signed out."},
	"replay-error": {"error", "Some dead letters could not be replayed; see the list."},
}

func flashOf(r *http.Request) *flash {
	if f, ok := flashes[r.URL.Query().Get("done")]; ok {
		return &f
	}
	return nil
}
