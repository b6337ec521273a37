package pipeline

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// CallbackConfig configures the callback receiver's defenses (see
// docs/SECURITY.md). The callback only triggers a retrieval from Jumio's
// authenticated API, so a forged callback can at worst cause one retrieval of
// a known execution; these defenses bound even that.
type CallbackConfig struct {
	// Secret, when set, is a path token: Jumio must call
	// /v1/callbacks/jumio/{Secret}; the bare route answers 404.
	Secret string
	// Allowlist, when not empty, is the set of source addresses callbacks
	// may come from (Jumio's published callback IPs: JumioCallbackPrefixes).
	Allowlist []netip.Prefix
	// TrustedProxies are the addresses of reverse proxies in front of
	// ingest whose X-Forwarded-For header is believed. The client address is
	// the rightmost X-Forwarded-For entry that is not a trusted proxy.
	// Without trusted proxies X-Forwarded-For is ignored.
	TrustedProxies []netip.Prefix
	// RatePerSecond and Burst bound the callbacks one ingest instance
	// accepts from one source address (IPv6: one /64), default 100/s, burst
	// 200; more is answered 429. Per source, so that a flood from one
	// address does not refuse Jumio's own callbacks.
	RatePerSecond float64
	Burst         int
	// Open says that accepting callbacks from any source without a secret
	// path is intended (make run, where the Jumio simulator calls back over
	// loopback). Otherwise an ingest with neither Secret nor Allowlist logs
	// a warning at every start.
	Open bool
}

// unprotected reports whether anyone who can reach ingest can post
// callbacks: no secret path and no source allowlist.
func (c CallbackConfig) unprotected() bool { return c.Secret == "" && len(c.Allowlist) == 0 }

// JumioCallbackPrefixes returns Jumio's published callback source IPs of
// the given regions (all regions when none is given) as /32 prefixes.
func JumioCallbackPrefixes(regions ...jumio.Region) []netip.Prefix {
	if len(regions) == 0 {
		regions = jumio.Regions
	}
	var out []netip.Prefix
	for _, r := range regions {
		for _, ip := range r.CallbackSourceIPs() {
			a := netip.MustParseAddr(ip)
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// ParsePrefixes parses a comma-separated list of IP addresses and CIDR
// prefixes. The word "jumio" stands for Jumio's published callback IPs.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case strings.EqualFold(item, "jumio"):
			out = append(out, JumioCallbackPrefixes()...)
		case strings.Contains(item, "/"):
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("invalid CIDR %q", item)
			}
			out = append(out, p.Masked())
		default:
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("invalid IP address %q", item)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address a request comes from: the peer, or, when
// the peer is a trusted proxy, the rightmost X-Forwarded-For hop that is not
// a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	peer = peer.Unmap()
	if len(trusted) == 0 || !containsAddr(trusted, peer) {
		return peer, true
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, false // a malformed hop: believe nothing
		}
		if a = a.Unmap(); !containsAddr(trusted, a) {
			return a, true
		}
	}
	return peer, true // only proxies: the request came from a proxy itself
}

// maxSources bounds the source addresses the callback rate limiter
// tracks at once.
const maxSources = 16384

// sourceLimiter is a token bucket per source address (per /64 for IPv6, as
// one host easily holds a whole /64). Buckets refilled to their burst carry
// no state and are dropped when the table is full; if it is still full, an
// eighth of it is dropped (a sender with that many addresses is not slowed
// by per-address limits anyway: the allowlist is the defense).
type sourceLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	max     int
	buckets map[netip.Addr]*tokens
}

type tokens struct {
	n    float64
	last time.Time
}

func newSourceLimiter(rate float64, burst, max int) *sourceLimiter {
	return &sourceLimiter{rate: rate, burst: float64(burst), max: max, buckets: map[netip.Addr]*tokens{}}
}

// sourceKey is the rate-limit key of an address (the zero Addr for a
// source that could not be determined: they share one bucket).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// allow takes a token from src's bucket at now.
func (l *sourceLimiter) allow(src netip.Addr, now time.Time) bool {
	key := sourceKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &tokens{n: l.burst, last: now}
		l.buckets[key] = b
	} else {
		b.n = min(l.burst, b.n+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	if b.n < 1 {
		return false
	}
	b.n--
	return true
}

// evict makes room in a full table. Lock held.
func (l *sourceLimiter) evict(now time.Time) {
	refill := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= refill {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) <= l.max-l.max/8 {
			break
		}
		delete(l.buckets, k)
	}
}

// bucket is a simple token bucket.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *bucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
