package webhooks_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// received is one request a test endpoint saw.
type received struct {
	header http.Header
	body   []byte
}

// endpoint is a test receiver that records requests and answers with
// handler (204 when nil).
type endpoint struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newEndpoint(t *testing.T, handler http.HandlerFunc) *endpoint {
	t.Helper()
	e := &endpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, received{header: r.Header.Clone(), body: body})
		e.mu.Unlock()
		if handler == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		handler(w, r)
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *endpoint) Hits() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.reqs)
}

func (e *endpoint) Port() string {
	_, port, _ := net.SplitHostPort(e.Listener.Addr().String())
	return port
}

// lax allows the test servers on 127.0.0.1 over http.
var lax = webhooks.Policy{AllowInsecure: true, AllowPrivate: true}

func newDeliverer(t *testing.T, p webhooks.Policy, opts ...webhooks.Option) *webhooks.Deliverer {
	t.Helper()
	d, err := webhooks.NewDeliverer(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.CloseIdleConnections)
	return d
}

var (
	testBody = []byte(`{"type":"verification.decided","timestamp":"2026-12-06T10:00:00Z","data":{"jobId":"job_1"}}`)
	testTS   = time.Unix(1_796_551_200, 0)
)

func testSecrets(t *testing.T) []webhooks.Secret { return []webhooks.Secret{mustSecret(t, specSecret)} }

func TestDeliverRequest(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, nil)
	newS, oldS := webhooks.NewSecret(), webhooks.NewSecret()
	clock := []time.Time{testTS, testTS.Add(250 * time.Millisecond)}
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := clock[0]
		if len(clock) > 1 {
			clock = clock[1:]
		}
		return t
	}
	d := newDeliverer(t, lax, webhooks.WithClock(now))
	res := d.Deliver(t.Context(), e.URL+"/hooks?tenant=1", "msg_abc", testTS, testBody, []webhooks.Secret{newS, oldS})
	if res.Class != webhooks.ClassDelivered || res.StatusCode != http.StatusNoContent || res.Err != nil {
		t.Fatalf("Deliver = %+v, want delivered 204", res)
	}
	if res.Latency != 250*time.Millisecond {
		t.Errorf("Latency = %s, want 250ms from the injected clock", res.Latency)
	}
	if e.Hits() != 1 {
		t.Fatalf("%d requests, want 1", e.Hits())
	}
	got := e.reqs[0]
	if string(got.body) != string(testBody) {
		t.Errorf("body = %s", got.body)
	}
	for k, want := range map[string]string{
		"Content-Type":      "application/json",
		"webhook-id":        "msg_abc",
		"webhook-timestamp": strconv.FormatInt(testTS.Unix(), 10),
	} {
		if v := got.header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if ua := got.header.Get("User-Agent"); !strings.Contains(ua, "kycpipe") {
		t.Errorf("User-Agent = %q, want one naming kycpipe", ua)
	}
	if n := len(strings.Fields(got.header.Get("webhook-signature"))); n != 2 {
		t.Errorf("%d signatures, want 2 (rotation)", n)
	}
	for _, s := range []webhooks.Secret{newS, oldS} {
		v := &webhooks.Verifier{Secrets: []webhooks.Secret{s}, Now: func() time.Time { return testTS }}
		if err := v.Verify(got.header, got.body); err != nil {
			t.Errorf("receiver cannot verify: %v", err)
		}
	}
}

func TestDeliverClasses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		status     int
		retryAfter string
		class      webhooks.Class
		wantAfter  time.Duration
	}{
		{200, "", webhooks.ClassDelivered, 0},
		{201, "", webhooks.ClassDelivered, 0},
		{202, "", webhooks.ClassDelivered, 0},
		{204, "", webhooks.ClassDelivered, 0},
		{299, "", webhooks.ClassDelivered, 0},
		{301, "", webhooks.ClassRetry, 0},
		{302, "", webhooks.ClassRetry, 0},
		{304, "", webhooks.ClassRetry, 0},
		{307, "", webhooks.ClassRetry, 0},
		{400, "", webhooks.ClassRetry, 0},
		{401, "", webhooks.ClassRetry, 0},
		{404, "", webhooks.ClassRetry, 0},
		{408, "", webhooks.ClassRetry, 0},
		{410, "", webhooks.ClassGone, 0},
		{413, "", webhooks.ClassRetry, 0},
		{429, "", webhooks.ClassRetry, 0},
		{429, "120", webhooks.ClassRetry, 2 * time.Minute},
		{429, "Sun, 06 Dec 2026 10:30:00 GMT", webhooks.ClassRetry, 30 * time.Minute},
		{429, "tomorrow", webhooks.ClassRetry, 0},
		{429, "999999999", webhooks.ClassRetry, webhooks.MaxRetryAfter},
		{500, "", webhooks.ClassRetry, 0},
		{500, "120", webhooks.ClassRetry, 0}, // Retry-After counts only on 429 and 503
		{502, "", webhooks.ClassRetry, 0},
		{503, "7", webhooks.ClassRetry, 7 * time.Second},
		{504, "", webhooks.ClassRetry, 0},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status)+" "+tt.retryAfter, func(t *testing.T) {
			t.Parallel()
			e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status >= 300 && tt.status < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, "answer body")
			})
			d := newDeliverer(t, lax, webhooks.WithClock(func() time.Time { return now }))
			res := d.Deliver(t.Context(), e.URL, "msg_1", testTS, testBody, testSecrets(t))
			if res.Class != tt.class || res.StatusCode != tt.status || res.RetryAfter != tt.wantAfter {
				t.Fatalf("Deliver = %+v, want class %s, status %d, RetryAfter %s", res, tt.class, tt.status, tt.wantAfter)
			}
			if e.Hits() != 1 {
				t.Fatalf("%d requests, want exactly 1 (no redirect followed, no retry inside)", e.Hits())
			}
			if tt.class == webhooks.ClassDelivered {
				if res.Err != nil {
					t.Fatalf("Err = %v for a delivery", res.Err)
				}
				return
			}
			var se *webhooks.StatusError
			if !errors.As(res.Err, &se) || se.StatusCode != tt.status {
				t.Fatalf("Err = %v, want a *StatusError with %d", res.Err, tt.status)
			}
			if tt.status/100 == 3 && !strings.Contains(res.Err.Error(), "redirects are not followed") {
				t.Errorf("Err = %q, want it to say redirects are not followed", res.Err)
			}
		})
	}
}

func TestDeliverTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before e.Close (LIFO)
	d := newDeliverer(t, lax, webhooks.WithTimeout(100*time.Millisecond))
	res := d.Deliver(t.Context(), e.URL, "msg_1", testTS, testBody, testSecrets(t))
	if res.Class != webhooks.ClassRetry || res.StatusCode != 0 || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("Deliver = %+v, want retry with DeadlineExceeded", res)
	}
}

func TestDeliverCallerCancels(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{})
	e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
	})
	d := newDeliverer(t, lax)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}()
	res := d.Deliver(ctx, e.URL, "msg_1", testTS, testBody, testSecrets(t))
	if res.Class != webhooks.ClassRetry || !errors.Is(res.Err, context.Canceled) {
		t.Fatalf("Deliver = %+v, want retry with context.Canceled", res)
	}
}

func TestDeliverConnectionFailure(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	d := newDeliverer(t, lax)
	// The path and query may carry tokens: they never reach Err.
	res := d.Deliver(t.Context(), "http://"+addr+"/hooks/T0K3NPATH?token=s3cr3t", "msg_1", testTS, testBody, testSecrets(t))
	if res.Class != webhooks.ClassRetry || res.StatusCode != 0 || res.Err == nil {
		t.Fatalf("Deliver = %+v, want retry without status", res)
	}
	msg := res.Err.Error()
	if strings.Contains(msg, "T0K3NPATH") || strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, addr) {
		t.Fatalf("Err = %q: want the host, never the path or query", msg)
	}
}

func TestDeliverRefused(t *testing.T) {
	t.Parallel()
	e := newEndpoint(t, nil)
	dns := newFakeDNS(map[string][][]string{"internal.example": {{"127.0.0.1"}}})
	strict := webhooks.Policy{AllowInsecure: true, Resolver: dns}
	tests := []struct {
		name    string
		policy  webhooks.Policy
		url     string
		id      string
		secrets []webhooks.Secret
		want    error
	}{
		{"loopback literal", strict, e.URL, "msg_1", nil, webhooks.ErrValidation},
		{"name resolving to loopback", strict, "http://internal.example:" + e.Port(), "msg_1", nil, webhooks.ErrValidation},
		{"http without AllowInsecure", webhooks.Policy{AllowPrivate: true}, e.URL, "msg_1", nil, webhooks.ErrValidation},
		{"metadata even with AllowPrivate", lax, "http://169.254.169.254/latest/meta-data/", "msg_1", nil, webhooks.ErrValidation},
		{"user info", lax, "http://user:pw@" + strings.TrimPrefix(e.URL, "http://"), "msg_1", nil, webhooks.ErrValidation},
		{"not a URL", lax, "::", "msg_1", nil, webhooks.ErrValidation},
		{"no secret", lax, e.URL, "msg_1", []webhooks.Secret{}, webhooks.ErrNoSecret},
		{"zero secret", lax, e.URL, "msg_1", []webhooks.Secret{{}}, webhooks.ErrNoSecret},
		{"empty id", lax, e.URL, "", nil, nil},
		{"id with a space", lax, e.URL, "msg 1", nil, nil},
		{"id with a newline", lax, e.URL, "msg_1\r\nX-Injected: 1", nil, nil},
		{"non-ASCII id", lax, e.URL, "msg_ü", nil, nil},
		{"id too long", lax, e.URL, strings.Repeat("a", 257), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			secrets := tt.secrets
			if secrets == nil {
				secrets = testSecrets(t)
			}
			d := newDeliverer(t, tt.policy)
			res := d.Deliver(t.Context(), tt.url, tt.id, testTS, testBody, secrets)
			if res.Class != webhooks.ClassRefused || res.Err == nil || (tt.want != nil && !errors.Is(res.Err, tt.want)) {
				t.Fatalf("Deliver = %+v, want refused (%v)", res, tt.want)
			}
		})
	}
	if e.Hits() != 0 {
		t.Fatalf("the endpoint got %d requests; refused deliveries send nothing", e.Hits())
	}
}

// DNS failures at delivery time are retryable, not rule violations.
func TestDeliverDNSFailure(t *testing.T) {
	t.Parallel()
	dns := newFakeDNS(nil)
	d := newDeliverer(t, webhooks.Policy{Resolver: dns})
	for _, host := range []string{"nxdomain.example", "timeout.example"} {
		res := d.Deliver(t.Context(), "https://"+host+"/", "msg_1", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassRetry || !errors.Is(res.Err, webhooks.ErrResolve) || errors.Is(res.Err, webhooks.ErrValidation) {
			t.Errorf("%s: Deliver = %+v, want retry with ErrResolve", host, res)
		}
	}
}

// dialLog records the addresses a Deliverer dials and simulates a network:
// routes maps an address to the local test server that answers for it;
// other non-loopback addresses are unreachable.
type dialLog struct {
	mu     sync.Mutex
	addrs  []string
	routes map[string]string
}

func (l *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	l.addrs = append(l.addrs, addr)
	to, routed := l.routes[addr]
	l.mu.Unlock()
	if !routed {
		host, _, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, errors.New("test network: unreachable")
		}
		to = addr
	}
	var d net.Dialer
	return d.DialContext(ctx, network, to)
}

func (l *dialLog) Addrs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

// DNS rebinding: the host resolves to a public address when checked and to
// 127.0.0.1 afterwards. The connection must go to the checked address, and
// a delivery that sees the private answer must send nothing.
func TestDeliverRebinding(t *testing.T) {
	t.Parallel()

	t.Run("private answer at delivery is refused", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t, nil)
		dns := newFakeDNS(map[string][][]string{"rebind.example": {{publicIP}, {"127.0.0.1"}}})
		p := webhooks.Policy{AllowInsecure: true, Resolver: dns}
		u := "http://rebind.example:" + e.Port() + "/"
		if _, err := p.CheckURL(t.Context(), u); err != nil {
			t.Fatalf("registration (public answer): %v", err)
		}
		log := &dialLog{routes: map[string]string{publicIP + ":" + e.Port(): e.Listener.Addr().String()}}
		d := newDeliverer(t, p, webhooks.WithDialer(log.dial))
		res := d.Deliver(t.Context(), u, "msg_1", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassRefused || !errors.Is(res.Err, webhooks.ErrValidation) {
			t.Fatalf("Deliver = %+v, want refused", res)
		}
		if e.Hits() != 0 || len(log.Addrs()) != 0 {
			t.Fatalf("hits %d, dials %v; want nothing sent", e.Hits(), log.Addrs())
		}
	})

	t.Run("the dial goes to the checked public address", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t, nil)
		dns := newFakeDNS(map[string][][]string{"rebind.example": {{publicIP}, {"127.0.0.1"}}})
		p := webhooks.Policy{AllowInsecure: true, Resolver: dns}
		u := "http://rebind.example:" + e.Port() + "/"
		log := &dialLog{routes: map[string]string{publicIP + ":" + e.Port(): e.Listener.Addr().String()}}
		d := newDeliverer(t, p, webhooks.WithDialer(log.dial))
		res := d.Deliver(t.Context(), u, "msg_1", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassDelivered {
			t.Fatalf("Deliver = %+v, want delivered", res)
		}
		if got := log.Addrs(); len(got) != 1 || got[0] != publicIP+":"+e.Port() {
			t.Fatalf("dialed %v, want exactly the checked %s:%s", got, publicIP, e.Port())
		}
		if n := dns.Calls("rebind.example"); n != 1 {
			t.Fatalf("%d lookups, want 1 (the dial must not resolve again)", n)
		}
		// Next attempt: DNS now says 127.0.0.1. Refused, although a
		// kept-alive connection to the public address exists.
		res = d.Deliver(t.Context(), u, "msg_2", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassRefused || e.Hits() != 1 {
			t.Fatalf("second Deliver = %+v, hits %d; want refused and still 1 hit", res, e.Hits())
		}
	})

	t.Run("with AllowPrivate the first answer is dialed, not a later one", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t, nil)
		// 127.0.0.1 first (allowed here), then an unroutable address: had
		// the dial resolved again, it could not have reached the server.
		dns := newFakeDNS(map[string][][]string{"rebind.example": {{"127.0.0.1"}, {"203.0.113.9"}}})
		d := newDeliverer(t, webhooks.Policy{AllowInsecure: true, AllowPrivate: true, Resolver: dns}, webhooks.WithTimeout(5*time.Second))
		res := d.Deliver(t.Context(), "http://rebind.example:"+e.Port()+"/", "msg_1", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassDelivered || e.Hits() != 1 || dns.Calls("rebind.example") != 1 {
			t.Fatalf("Deliver = %+v, hits %d, lookups %d; want delivered, 1, 1", res, e.Hits(), dns.Calls("rebind.example"))
		}
	})

	t.Run("every checked address is tried in order, nothing else", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t, nil)
		dns := newFakeDNS(map[string][][]string{"multi.example": {{"8.8.8.8", "127.0.0.1"}}})
		log := &dialLog{}
		d := newDeliverer(t, webhooks.Policy{AllowInsecure: true, AllowPrivate: true, Resolver: dns}, webhooks.WithDialer(log.dial))
		res := d.Deliver(t.Context(), "http://multi.example:"+e.Port()+"/", "msg_1", testTS, testBody, testSecrets(t))
		want := []string{"8.8.8.8:" + e.Port(), "127.0.0.1:" + e.Port()}
		got := log.Addrs()
		if res.Class != webhooks.ClassDelivered || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("Deliver = %+v, dialed %v; want delivered after dialing %v", res, got, want)
		}
	})
}

// A redirect is the answer: its target, even a private one, is never
// contacted.
func TestDeliverNoRedirects(t *testing.T) {
	t.Parallel()
	internal := newEndpoint(t, nil)
	for _, target := range []string{internal.URL + "/admin", "http://169.254.169.254/latest/meta-data/"} {
		for _, status := range []int{301, 302, 303, 307, 308} {
			t.Run(strconv.Itoa(status)+" "+target, func(t *testing.T) {
				t.Parallel()
				e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, target, status)
				})
				// Production policy; the endpoint "is" a public address.
				dns := newFakeDNS(map[string][][]string{"hooks.example.com": {{publicIP}}})
				log := &dialLog{routes: map[string]string{publicIP + ":" + e.Port(): e.Listener.Addr().String()}}
				d := newDeliverer(t, webhooks.Policy{AllowInsecure: true, Resolver: dns}, webhooks.WithDialer(log.dial))
				res := d.Deliver(t.Context(), "http://hooks.example.com:"+e.Port()+"/", "msg_1", testTS, testBody, testSecrets(t))
				if res.Class != webhooks.ClassRetry || res.StatusCode != status {
					t.Fatalf("Deliver = %+v, want retry with %d", res, status)
				}
				if got := log.Addrs(); len(got) != 1 || got[0] != publicIP+":"+e.Port() {
					t.Fatalf("dialed %v, want only the endpoint", got)
				}
			})
		}
	}
	t.Run("lax policy", func(t *testing.T) {
		t.Parallel()
		e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
		})
		res := newDeliverer(t, lax).Deliver(t.Context(), e.URL, "msg_1", testTS, testBody, testSecrets(t))
		if res.Class != webhooks.ClassRetry || res.StatusCode != http.StatusFound {
			t.Fatalf("Deliver = %+v, want retry with 302", res)
		}
	})
	if internal.Hits() != 0 {
		t.Fatalf("the redirect target got %d requests", internal.Hits())
	}
}

// The TLS server name is the URL's host name even though the connection
// goes to an IP address.
func TestDeliverTLSServerName(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate()) // valid for example.com, 127.0.0.1 and ::1
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	dns := newFakeDNS(map[string][][]string{
		"example.com":   {{"127.0.0.1"}},
		"other.example": {{"127.0.0.1"}},
	})
	d := newDeliverer(t, webhooks.Policy{AllowPrivate: true, Resolver: dns}, webhooks.WithTLSConfig(&tls.Config{RootCAs: roots, ServerName: "ignored.example"}))
	res := d.Deliver(t.Context(), "https://example.com:"+port+"/", "msg_1", testTS, testBody, testSecrets(t))
	if res.Class != webhooks.ClassDelivered {
		t.Fatalf("example.com: Deliver = %+v, want delivered", res)
	}
	// The certificate also covers 127.0.0.1: had the dialed IP been used
	// as the server name, this would pass.
	res = d.Deliver(t.Context(), "https://other.example:"+port+"/", "msg_1", testTS, testBody, testSecrets(t))
	var certErr *tls.CertificateVerificationError
	if res.Class != webhooks.ClassRetry || !errors.As(res.Err, &certErr) {
		t.Fatalf("other.example: Deliver = %+v, want retry with a certificate verification error", res)
	}
}

// Deliver reads at most MaxResponseBody bytes of an answer: it returns
// while the endpoint, having sent more than that, still holds the response
// open. (Reading on would block until the one-hour timeout.)
func TestDeliverBodyLimit(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusInternalServerError} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			e := newEndpoint(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
				_, _ = w.Write([]byte(strings.Repeat("x", 2*webhooks.MaxResponseBody)))
				w.(http.Flusher).Flush()
				<-release // the body never ends until the test says so
			})
			var once sync.Once
			releaseAll := func() { once.Do(func() { close(release) }) }
			t.Cleanup(releaseAll) // before e.Close, which waits for the handler
			d := newDeliverer(t, lax, webhooks.WithTimeout(time.Hour))
			done := make(chan webhooks.Result, 1)
			go func() { done <- d.Deliver(t.Context(), e.URL, "msg_1", testTS, testBody, testSecrets(t)) }()
			var res webhooks.Result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Deliver is still reading a response body larger than MaxResponseBody")
			}
			releaseAll()
			want := webhooks.ClassDelivered
			if status != http.StatusOK {
				want = webhooks.ClassRetry
			}
			if res.Class != want || res.StatusCode != status {
				t.Fatalf("Deliver = %+v, want %s with %d", res, want, status)
			}
		})
	}
}

func TestNewDelivererOptions(t *testing.T) {
	t.Parallel()
	bad := map[string]webhooks.Option{
		"zero timeout":     webhooks.WithTimeout(0),
		"negative timeout": webhooks.WithTimeout(-time.Second),
		"empty user agent": webhooks.WithUserAgent(" "),
		"user agent CRLF":  webhooks.WithUserAgent("kycpipe\r\nX: 1"),
		"nil TLS config":   webhooks.WithTLSConfig(nil),
		"nil clock":        webhooks.WithClock(nil),
		"nil dialer":       webhooks.WithDialer(nil),
	}
	for name, opt := range bad {
		if _, err := webhooks.NewDeliverer(webhooks.Policy{}, opt); !errors.Is(err, webhooks.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", name, err)
		}
	}
	e := newEndpoint(t, nil)
	d := newDeliverer(t, lax, webhooks.WithUserAgent("kycpipe-notifier/1.2"))
	if res := d.Deliver(t.Context(), e.URL, "msg_1", testTS, testBody, testSecrets(t)); res.Class != webhooks.ClassDelivered {
		t.Fatalf("Deliver = %+v", res)
	}
	if ua := e.reqs[0].header.Get("User-Agent"); ua != "kycpipe-notifier/1.2" {
		t.Fatalf("User-Agent = %q", ua)
	}
}
