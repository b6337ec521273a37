package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Sessions live in the memory of the ingest process that signed the
// operator in: they do not survive a restart (the operator signs in again)
// and do not move between ingest replicas (behind a load balancer, pin the
// console's clients to one replica, e.g. with a sticky cookie, or run the
// console on one replica). The cookie holds a random 256-bit ID; the
// server keeps only its SHA-256, with the key's name and scopes (never the
// key), the session's CSRF token and its times.

// Cookie names. Both are HttpOnly, SameSite=Strict, scoped to /console/,
// Secure under TLS, and expire.
const (
	sessionCookie = "kycpipe_console"
	signInCookie  = "kycpipe_console_signin" // the sign-in form's CSRF token
)

// session is a signed-in operator.
type session struct {
	principal *pipeline.Principal
	csrf      string
	created   time.Time
	lastSeen  time.Time
}

// sessionStore holds the sessions of this process.
type sessionStore struct {
	mu        sync.Mutex
	m         map[[sha256.Size]byte]*session
	idle, max time.Duration
	limit     int
	now       func() time.Time
}

func newSessionStore(idle, max time.Duration, limit int, now func() time.Time) *sessionStore {
	return &sessionStore{m: map[[sha256.Size]byte]*session{}, idle: idle, max: max, limit: limit, now: now}
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p and returns its ID (the cookie value).
// When the store is full, the session idle the longest is dropped.
func (s *sessionStore) create(p *pipeline.Principal) (string, *session) {
	id := randomToken()
	now := s.now()
	sess := &session{principal: p, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.m) >= s.limit {
		var oldestKey [sha256.Size]byte
		var oldest time.Time
		for k, v := range s.m {
			if oldest.IsZero() || v.lastSeen.Before(oldest) {
				oldestKey, oldest = k, v.lastSeen
			}
		}
		delete(s.m, oldestKey)
	}
	s.m[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// get returns the live session with this ID and marks it seen, or nil. A
// session idle longer than the idle timeout, or older than the absolute
// maximum, is removed. The lookup is by the ID's SHA-256, so its timing
// reveals nothing of the IDs stored.
func (s *sessionStore) get(id string) *session {
	if id == "" {
		return nil
	}
	key := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[key]
	if !ok {
		return nil
	}
	if s.expired(sess, now) {
		delete(s.m, key)
		return nil
	}
	sess.lastSeen = now
	return sess
}

func (s *sessionStore) expired(sess *session, now time.Time) bool {
	return now.Sub(sess.lastSeen) >= s.idle || now.Sub(sess.created) >= s.max
}

// delete ends a session.
func (s *sessionStore) delete(id string) {
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (s *sessionStore) sweepLocked(now time.Time) {
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
		}
	}
}

// len returns the number of sessions held (expired ones included until
// the next sweep).
func (s *sessionStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// tokensEqual compares two tokens in constant time.
func tokensEqual(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	x, y := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// signInLimiter slows down key guessing: each client address may fail
// perClient times per window (a token bucket refilling over the window),
// and all clients together failPerWindow times (so that many addresses
// cannot guess freely either). While a client (or everyone) is over the
// limit, every sign-in attempt from it is refused, a correct key included:
// a guess must never be confirmed.
type signInLimiter struct {
	mu        sync.Mutex
	perClient float64
	global    float64
	window    time.Duration
	clients   map[netip.Addr]*tokenBucket
	all       tokenBucket
	now       func() time.Time
}

type tokenBucket struct {
	tokens float64
	last   time.Time
}

func newSignInLimiter(perClient, global int, window time.Duration, now func() time.Time) *signInLimiter {
	return &signInLimiter{perClient: float64(perClient), global: float64(global), window: window,
		clients: map[netip.Addr]*tokenBucket{}, all: tokenBucket{tokens: float64(global), last: now()}, now: now}
}

// refill brings b up to date for a bucket of size max refilling over the
// window.
func (l *signInLimiter) refill(b *tokenBucket, max float64, now time.Time) {
	b.tokens = min(max, b.tokens+max*now.Sub(b.last).Seconds()/l.window.Seconds())
	b.last = now
}

// allowed reports whether client may try to sign in now; if not, how long
// until it may.
func (l *signInLimiter) allowed(client netip.Addr) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill(&l.all, l.global, now)
	wait := time.Duration(0)
	if l.all.tokens < 1 {
		wait = time.Duration((1 - l.all.tokens) / l.global * float64(l.window))
	}
	if b, ok := l.clients[client]; ok {
		l.refill(b, l.perClient, now)
		if b.tokens < 1 {
			wait = max(wait, time.Duration((1-b.tokens)/l.perClient*float64(l.window)))
		}
	}
	return wait == 0, wait
}

// failed records a failed sign-in of client.
func (l *signInLimiter) failed(client netip.Addr) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			// Forget the clients whose buckets refilled.
			for a, cb := range l.clients {
				if l.refill(cb, l.perClient, now); cb.tokens >= l.perClient {
					delete(l.clients, a)
				}
			}
		}
		b = &tokenBucket{tokens: l.perClient, last: now}
		l.clients[client] = b
	}
	l.refill(b, l.perClient, now)
	b.tokens--
	l.refill(&l.all, l.global, now)
	l.all.tokens--
}

// maxTrackedClients bounds the limiter's memory.
const maxTrackedClients = 100_000

// clientAddr returns the address a request comes from: the peer, or, when
// the peer is a trusted proxy, the rightmost X-Forwarded-For hop that is not
// one (the same rule as ingest's callback guard).
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !containsAddr(trusted, peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer
		}
		if a = a.Unmap(); !containsAddr(trusted, a) {
			return a
		}
	}
	return peer
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
