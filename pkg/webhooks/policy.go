package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// MaxURLLength bounds an endpoint URL.
const MaxURLLength = 2048

// Resolver looks up the IP addresses of a host name. *net.Resolver
// (net.DefaultResolver) implements it; tests inject a [ResolverFunc].
// network is "ip".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolverFunc adapts a function to [Resolver].
type ResolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

// LookupNetIP calls f(ctx, host).
func (f ResolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// Policy is the endpoint URL rule set (the SSRF defence of DESIGN 3.8),
// applied at registration ([Policy.CheckURL]) and again at every delivery
// ([Deliverer.Deliver]). The zero value is the production policy: https
// only, public addresses only, the system resolver.
//
// A URL is accepted when:
//   - it is absolute, at most [MaxURLLength] bytes, https (http too with
//     AllowInsecure), with a host, without user info or fragment;
//   - its host is an IP literal (no IPv6 zone) or an ASCII DNS name whose
//     last label is not numeric, so that numeric tricks such as
//     2130706433, 0x7f.1 or 0177.0.0.1 (which some resolvers read as
//     127.0.0.1) are refused outright;
//   - every address the host is or resolves to is allowed: loopback,
//     private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10),
//     multicast, unspecified (0/8, ::), CGNAT (100.64/10), broadcast,
//     reserved and documentation ranges, and "localhost" names are refused
//     unless AllowPrivate; IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible,
//     NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) addresses
//     are judged by the IPv4 address they embed. The cloud metadata
//     addresses 169.254.169.254 and fd00:ec2::254 are refused even with
//     AllowPrivate: no webhook receiver lives there.
//
// A Policy is a value; it is safe for concurrent use.
type Policy struct {
	// AllowInsecure accepts http:// URLs (KYCPIPE_WEBHOOK_ALLOW_INSECURE).
	AllowInsecure bool
	// AllowPrivate accepts non-public addresses (KYCPIPE_WEBHOOK_ALLOW_PRIVATE),
	// for development and tests.
	AllowPrivate bool
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
}

// addrRule refuses the addresses of a prefix.
type addrRule struct {
	prefix netip.Prefix
	kind   string // the class named in the reason
	always bool   // refused even with AllowPrivate
}

var addrRules = func() []addrRule {
	r := func(p, kind string, always bool) addrRule {
		return addrRule{prefix: netip.MustParsePrefix(p), kind: kind, always: always}
	}
	return []addrRule{
		// Cloud metadata first, so its reason wins over link-local / private.
		r("169.254.169.254/32", "cloud metadata", true),
		r("fd00:ec2::254/128", "cloud metadata", true),
		r("0.0.0.0/8", "unspecified", false),
		r("::/128", "unspecified", false),
		r("127.0.0.0/8", "loopback", false),
		r("::1/128", "loopback", false),
		r("10.0.0.0/8", "private", false),
		r("172.16.0.0/12", "private", false),
		r("192.168.0.0/16", "private", false),
		r("fc00::/7", "private", false),
		r("fec0::/10", "private", false), // deprecated site-local
		r("169.254.0.0/16", "link-local", false),
		r("fe80::/10", "link-local", false),
		r("224.0.0.0/4", "multicast", false),
		r("ff00::/8", "multicast", false),
		r("100.64.0.0/10", "shared (CGNAT)", false),
		r("255.255.255.255/32", "broadcast", false),
		r("192.0.0.0/24", "reserved", false),
		r("198.18.0.0/15", "reserved", false),
		r("240.0.0.0/4", "reserved", false),
		r("100::/64", "reserved", false),
		r("192.0.2.0/24", "documentation", false),
		r("198.51.100.0/24", "documentation", false),
		r("203.0.113.0/24", "documentation", false),
		r("2001:db8::/32", "documentation", false),
	}
}()

// IPv6 ranges that carry an IPv4 address, and where it sits.
var (
	nat64       = netip.MustParsePrefix("64:ff9b::/96")   // last 4 bytes
	nat64Local  = netip.MustParsePrefix("64:ff9b:1::/48") // last 4 bytes
	sixToFour   = netip.MustParsePrefix("2002::/16")      // bytes 2..5
	v4Compatibl = netip.MustParsePrefix("::/96")          // last 4 bytes (deprecated)
)

// AddrClass returns the class of a refused address ("loopback", "private",
// "link-local", "cloud metadata", …) or "" when addr may be dialed under
// allowPrivate. Zones are ignored; IPv4-mapped and IPv4-embedding IPv6
// addresses are judged by their IPv4 address. The invalid Addr is
// "invalid".
func AddrClass(addr netip.Addr, allowPrivate bool) string {
	if !addr.IsValid() {
		return "invalid"
	}
	addr = addr.WithZone("").Unmap()
	for _, r := range addrRules {
		if r.prefix.Contains(addr) && (r.always || !allowPrivate) {
			return r.kind
		}
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr), nat64Local.Contains(addr), v4Compatibl.Contains(addr):
			return AddrClass(netip.AddrFrom4([4]byte(b[12:16])), allowPrivate)
		case sixToFour.Contains(addr):
			return AddrClass(netip.AddrFrom4([4]byte(b[2:6])), allowPrivate)
		}
	}
	return ""
}

// CheckURL applies the policy to an endpoint URL at registration (or on
// PATCH): syntax first, then the host's addresses, resolved once. It
// returns the parsed URL, or
//   - a *[ValidationError] (matching [ErrValidation]) listing field "url"
//     violations, including a host that does not exist (code
//     [CodeUnresolvable]): answer 422 with its Fields;
//   - an error wrapping [ErrResolve] when resolution failed for a reason
//     that may pass (DNS timeout): answer 503.
//
// Messages name the class of a refused address, never the address itself.
func (p Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, _, err := p.resolveURL(ctx, raw)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// resolveURL checks raw and returns the URL and the checked addresses to
// dial (an IP literal is its own single address).
func (p Policy) resolveURL(ctx context.Context, raw string) (*url.URL, []netip.Addr, error) {
	u, err := p.parseURL(raw)
	if err != nil {
		return nil, nil, err
	}
	host := u.Hostname()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		res := p.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		addrs, err = res.LookupNetIP(ctx, "ip", host)
		var dnsErr *net.DNSError
		switch {
		case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			return nil, nil, &ValidationError{Fields: []FieldError{{Field: "url", Code: CodeUnresolvable, Message: "the host name does not resolve"}}}
		case err != nil:
			return nil, nil, fmt.Errorf("%w: %w", ErrResolve, err)
		case len(addrs) == 0:
			return nil, nil, &ValidationError{Fields: []FieldError{{Field: "url", Code: CodeUnresolvable, Message: "the host name has no addresses"}}}
		}
	}
	var v validator
	seen := map[string]bool{}
	for _, a := range addrs {
		if kind := AddrClass(a, p.AllowPrivate); kind != "" && !seen[kind] {
			seen[kind] = true
			v.add("url", CodeForbiddenAddress, p.addrMessage(kind))
		}
	}
	if err := v.err(); err != nil {
		return nil, nil, err
	}
	return u, addrs, nil
}

func (p Policy) addrMessage(kind string) string {
	msg := "the host is or resolves to a " + kind + " address"
	if kind == "cloud metadata" || kind == "invalid" || p.AllowPrivate {
		return msg + ", which is always refused"
	}
	return msg + "; only public addresses are allowed (KYCPIPE_WEBHOOK_ALLOW_PRIVATE=true lifts this for development)"
}

// parseURL applies the syntax rules; the error is a *ValidationError.
func (p Policy) parseURL(raw string) (*url.URL, error) {
	var v validator
	bad := func(code, msg string) (*url.URL, error) {
		v.add("url", code, msg)
		return nil, v.err()
	}
	switch {
	case strings.TrimSpace(raw) == "":
		return bad(CodeRequired, "a URL is required")
	case len(raw) > MaxURLLength:
		return bad(CodeTooLong, fmt.Sprintf("at most %d bytes", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad(CodeInvalidFormat, "not a valid URL") // err repeats the URL: not included
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowInsecure:
	case u.Scheme == "http":
		v.add("url", CodeInsecureScheme, "the URL must use https (KYCPIPE_WEBHOOK_ALLOW_INSECURE=true allows http for development)")
	default:
		v.add("url", CodeInsecureScheme, "the URL must be an https URL")
	}
	if u.Opaque != "" || u.Host == "" {
		v.add("url", CodeInvalidFormat, "the URL must be absolute, with a host")
		return nil, v.err()
	}
	if u.User != nil {
		v.add("url", CodeInvalidFormat, "the URL must not contain user info (credentials)")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		v.add("url", CodeInvalidFormat, "the URL must not have a fragment")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			v.add("url", CodeInvalidFormat, "the port must be 1 to 65535")
		}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			v.add("url", CodeInvalidFormat, "an IPv6 zone is not allowed in the host")
		} else if kind := AddrClass(a, p.AllowPrivate); kind != "" {
			v.add("url", CodeForbiddenAddress, p.addrMessage(kind))
		}
	} else if msg := checkHostName(host); msg != "" {
		v.add("url", CodeInvalidFormat, msg)
	} else if !p.AllowPrivate && isLocalhostName(host) {
		v.add("url", CodeForbiddenAddress, p.addrMessage("loopback"))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return u, nil
}

// checkHostName returns why host is not an acceptable DNS name, or "".
func checkHostName(host string) string {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return "the host is not a valid DNS name"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "the host is not a valid DNS name"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return "the host must be an IP address or an ASCII DNS name (use punycode for international names)"
			}
		}
	}
	last := strings.ToLower(labels[len(labels)-1])
	if isDigits(last) || strings.HasPrefix(last, "0x") {
		return "the host looks like a numeric address in a non-standard form; write IPv4 addresses as four decimal numbers"
	}
	return ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isLocalhostName reports names that resolve to loopback by convention
// (RFC 6761), whatever DNS says.
func isLocalhostName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}
