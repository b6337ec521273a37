package webhooks_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// publicIP is a public address (example.com's) used as a resolver answer.
const publicIP = "93.184.215.14"

// fakeDNS is a scripted resolver: each name answers its list of answers in
// turn (the last one repeats); unknown names do not exist; "timeout.example"
// times out. It counts lookups per name.
type fakeDNS struct {
	mu      sync.Mutex
	answers map[string][][]string
	calls   map[string]int
}

func newFakeDNS(answers map[string][][]string) *fakeDNS {
	return &fakeDNS{answers: answers, calls: map[string]int{}}
}

func (f *fakeDNS) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if network != "ip" {
		return nil, errors.New("unexpected network " + network)
	}
	n := f.calls[host]
	f.calls[host]++
	if host == "timeout.example" {
		return nil, &net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true}
	}
	seq, ok := f.answers[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range seq[min(n, len(seq)-1)] {
		out = append(out, netip.MustParseAddr(a))
	}
	return out, nil
}

func (f *fakeDNS) Calls(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[host]
}

func TestAddrClass(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr        string
		strict, lax string // class with AllowPrivate false / true ("" = allowed)
	}{
		{publicIP, "", ""},
		{"8.8.8.8", "", ""},
		{"2606:4700:4700::1111", "", ""},
		{"172.32.0.1", "", ""},
		{"100.128.0.1", "", ""},
		{"127.0.0.1", "loopback", ""},
		{"127.255.255.254", "loopback", ""},
		{"::1", "loopback", ""},
		{"::ffff:127.0.0.1", "loopback", ""}, // IPv4-mapped
		{"::127.0.0.1", "loopback", ""},      // IPv4-compatible (deprecated)
		{"64:ff9b::7f00:1", "loopback", ""},  // NAT64 of 127.0.0.1
		{"64:ff9b:1::a00:1", "private", ""},  // local-use NAT64 of 10.0.0.1
		{"2002:7f00:1::", "loopback", ""},    // 6to4 of 127.0.0.1
		{"2002:5db8:d70e::1", "", ""},        // 6to4 of the public address
		{"10.0.0.1", "private", ""},
		{"172.16.0.1", "private", ""},
		{"172.31.255.255", "private", ""},
		{"192.168.1.1", "private", ""},
		{"::ffff:10.0.0.1", "private", ""},
		{"fc00::1", "private", ""},
		{"fd12:3456::1", "private", ""},
		{"fec0::1", "private", ""},
		{"169.254.1.1", "link-local", ""},
		{"fe80::1", "link-local", ""},
		{"fe80::1%eth0", "link-local", ""},
		{"224.0.0.1", "multicast", ""},
		{"239.255.255.250", "multicast", ""},
		{"ff02::1", "multicast", ""},
		{"0.0.0.0", "unspecified", ""},
		{"0.1.2.3", "unspecified", ""},
		{"::", "unspecified", ""},
		{"100.64.0.1", "shared (CGNAT)", ""},
		{"100.127.255.255", "shared (CGNAT)", ""},
		{"255.255.255.255", "broadcast", ""},
		{"240.0.0.1", "reserved", ""},
		{"198.18.0.1", "reserved", ""},
		{"192.0.2.1", "documentation", ""},
		{"2001:db8::1", "documentation", ""},
		{"169.254.169.254", "cloud metadata", "cloud metadata"},
		{"::ffff:169.254.169.254", "cloud metadata", "cloud metadata"},
		{"64:ff9b::a9fe:a9fe", "cloud metadata", "cloud metadata"},
		{"fd00:ec2::254", "cloud metadata", "cloud metadata"},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		if got := webhooks.AddrClass(a, false); got != tt.strict {
			t.Errorf("AddrClass(%s, strict) = %q, want %q", tt.addr, got, tt.strict)
		}
		if got := webhooks.AddrClass(a, true); got != tt.lax {
			t.Errorf("AddrClass(%s, AllowPrivate) = %q, want %q", tt.addr, got, tt.lax)
		}
	}
	if got := webhooks.AddrClass(netip.Addr{}, true); got != "invalid" {
		t.Errorf("AddrClass(invalid) = %q", got)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	dns := newFakeDNS(map[string][][]string{
		"hooks.example.com":   {{publicIP}},
		"v6.example.com":      {{"2606:4700:4700::1111"}},
		"internal.example":    {{"127.0.0.1"}},
		"mixed.example":       {{publicIP, "10.0.0.1"}},
		"mapped.example":      {{"::ffff:10.0.0.1"}},
		"meta.example":        {{"169.254.169.254"}},
		"ec2v6.example":       {{"fd00:ec2::254"}},
		"cgnat.example":       {{"100.64.1.1"}},
		"empty.example":       {{}},
		"under_score.example": {{publicIP}},
	})
	tests := []struct {
		name   string
		url    string
		strict string // code under the production policy
		lax    string // code with AllowInsecure and AllowPrivate
	}{
		{"public https", "https://hooks.example.com/kyc?x=1", "", ""},
		{"public with port", "https://hooks.example.com:8443/kyc", "", ""},
		{"public IPv6 name", "https://v6.example.com/", "", ""},
		{"public IPv4 literal", "https://" + publicIP + "/", "", ""},
		{"public IPv6 literal", "https://[2606:4700:4700::1111]:443/", "", ""},
		{"underscore in name", "https://under_score.example/", "", ""},
		{"trailing dot", "https://hooks.example.com./", "unresolvable", "unresolvable"}, // the fake DNS knows no "hooks.example.com."
		{"http", "http://hooks.example.com/", webhooks.CodeInsecureScheme, ""},
		{"ftp", "ftp://hooks.example.com/", webhooks.CodeInsecureScheme, webhooks.CodeInsecureScheme},
		{"no scheme", "//hooks.example.com/", webhooks.CodeInsecureScheme, webhooks.CodeInsecureScheme},
		{"empty", "", webhooks.CodeRequired, webhooks.CodeRequired},
		{"too long", "https://hooks.example.com/" + strings.Repeat("a", 2048), webhooks.CodeTooLong, webhooks.CodeTooLong},
		{"not a URL", "https://exa mple.com/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"relative", "/hooks", webhooks.CodeInsecureScheme, webhooks.CodeInsecureScheme},
		{"no host", "https:///hooks", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"opaque", "https:hooks.example.com", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"user info", "https://user:pass@hooks.example.com/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"fragment", "https://hooks.example.com/#x", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"empty fragment", "https://hooks.example.com/#", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"port 0", "https://hooks.example.com:0/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"port too big", "https://hooks.example.com:70000/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"non-ASCII host", "https://bücher.example/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"percent-encoded host", "https://%31%32%37.0.0.1/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		// Addresses written in the URL.
		{"loopback", "https://127.0.0.1/", webhooks.CodeForbiddenAddress, ""},
		{"loopback 127/8", "https://127.10.20.30:8443/", webhooks.CodeForbiddenAddress, ""},
		{"IPv6 loopback", "https://[::1]/", webhooks.CodeForbiddenAddress, ""},
		{"IPv6 loopback long form", "https://[0:0:0:0:0:0:0:1]/", webhooks.CodeForbiddenAddress, ""},
		{"IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/", webhooks.CodeForbiddenAddress, ""},
		{"IPv4-mapped loopback hex", "https://[::ffff:7f00:1]/", webhooks.CodeForbiddenAddress, ""},
		{"NAT64 loopback", "https://[64:ff9b::127.0.0.1]/", webhooks.CodeForbiddenAddress, ""},
		{"unspecified", "https://0.0.0.0/", webhooks.CodeForbiddenAddress, ""},
		{"IPv6 unspecified", "https://[::]/", webhooks.CodeForbiddenAddress, ""},
		{"private 10/8", "https://10.1.2.3/", webhooks.CodeForbiddenAddress, ""},
		{"private 172.16/12", "https://172.20.0.1/", webhooks.CodeForbiddenAddress, ""},
		{"private 192.168/16", "https://192.168.0.10/", webhooks.CodeForbiddenAddress, ""},
		{"unique local", "https://[fd00::1]/", webhooks.CodeForbiddenAddress, ""},
		{"link-local", "https://169.254.10.10/", webhooks.CodeForbiddenAddress, ""},
		{"IPv6 link-local", "https://[fe80::1]/", webhooks.CodeForbiddenAddress, ""},
		{"IPv6 zone", "https://[fe80::1%25eth0]/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"multicast", "https://224.0.0.251/", webhooks.CodeForbiddenAddress, ""},
		{"CGNAT", "https://100.100.100.100/", webhooks.CodeForbiddenAddress, ""},
		{"metadata", "https://169.254.169.254/latest/meta-data/", webhooks.CodeForbiddenAddress, webhooks.CodeForbiddenAddress},
		{"metadata over http", "http://169.254.169.254/", webhooks.CodeInsecureScheme, webhooks.CodeForbiddenAddress},
		{"IPv4-mapped metadata", "https://[::ffff:169.254.169.254]/", webhooks.CodeForbiddenAddress, webhooks.CodeForbiddenAddress},
		{"AWS IPv6 metadata", "https://[fd00:ec2::254]/", webhooks.CodeForbiddenAddress, webhooks.CodeForbiddenAddress},
		// Numeric forms some resolvers read as 127.0.0.1.
		{"decimal", "https://2130706433/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"hex", "https://0x7f000001/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"dotted hex", "https://0x7f.0.0.1/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"octal", "https://0177.0.0.1/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"short form", "https://127.1/", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		{"IPv4 with trailing dot", "https://127.0.0.1./", webhooks.CodeInvalidFormat, webhooks.CodeInvalidFormat},
		// Names.
		{"localhost", "https://localhost:8443/", webhooks.CodeForbiddenAddress, "unresolvable"},
		{"localhost subdomain", "https://api.LOCALHOST./", webhooks.CodeForbiddenAddress, "unresolvable"},
		{"name resolving to 127.0.0.1", "https://internal.example/", webhooks.CodeForbiddenAddress, ""},
		{"one of two answers private", "https://mixed.example/", webhooks.CodeForbiddenAddress, ""},
		{"name resolving to IPv4-mapped private", "https://mapped.example/", webhooks.CodeForbiddenAddress, ""},
		{"name resolving to metadata", "https://meta.example/", webhooks.CodeForbiddenAddress, webhooks.CodeForbiddenAddress},
		{"name resolving to IPv6 metadata", "https://ec2v6.example/", webhooks.CodeForbiddenAddress, webhooks.CodeForbiddenAddress},
		{"name resolving to CGNAT", "https://cgnat.example/", webhooks.CodeForbiddenAddress, ""},
		{"unknown name", "https://nxdomain.example/", webhooks.CodeUnresolvable, webhooks.CodeUnresolvable},
		{"no addresses", "https://empty.example/", webhooks.CodeUnresolvable, webhooks.CodeUnresolvable},
		{"DNS timeout", "https://timeout.example/", "resolve", "resolve"},
	}
	policies := map[string]webhooks.Policy{
		"strict": {Resolver: dns},
		"lax":    {Resolver: dns, AllowInsecure: true, AllowPrivate: true},
	}
	for _, tt := range tests {
		for pname, p := range policies {
			want := tt.strict
			if pname == "lax" {
				want = tt.lax
			}
			t.Run(pname+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				u, err := p.CheckURL(t.Context(), tt.url)
				switch want {
				case "":
					if err != nil || u == nil {
						t.Fatalf("CheckURL(%q) = %v, %v; want accepted", tt.url, u, err)
					}
					return
				case "resolve":
					if !errors.Is(err, webhooks.ErrResolve) || errors.Is(err, webhooks.ErrValidation) {
						t.Fatalf("CheckURL(%q): err = %v, want ErrResolve (not a validation error)", tt.url, err)
					}
					return
				}
				var ve *webhooks.ValidationError
				if !errors.As(err, &ve) || !errors.Is(err, webhooks.ErrValidation) || u != nil {
					t.Fatalf("CheckURL(%q) = %v, %v; want a *ValidationError", tt.url, u, err)
				}
				if ve.Fields[0].Field != "url" || ve.Fields[0].Code != want {
					t.Fatalf("CheckURL(%q): fields %+v, want first code %q", tt.url, ve.Fields, want)
				}
				for _, f := range ve.Fields {
					// Messages name classes, never the URL or a resolved address.
					if f.Message == "" || strings.Contains(f.Message, "127.0.0.1") || strings.Contains(f.Message, "10.0.0.1") ||
						(len(tt.url) > 8 && strings.Contains(f.Message, tt.url)) {
						t.Fatalf("message %q is empty or repeats the URL or an address", f.Message)
					}
				}
			})
		}
	}
}

// Each CheckURL resolves the host exactly once and sees the answer of
// that moment (registration and delivery are checked independently).
func TestCheckURLResolvesOnce(t *testing.T) {
	t.Parallel()
	dns := newFakeDNS(map[string][][]string{"rebind.example": {{publicIP}, {"127.0.0.1"}}})
	p := webhooks.Policy{Resolver: dns}
	if _, err := p.CheckURL(t.Context(), "https://rebind.example/"); err != nil {
		t.Fatalf("first check (public answer): %v", err)
	}
	if n := dns.Calls("rebind.example"); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
	if _, err := p.CheckURL(t.Context(), "https://rebind.example/"); !errors.Is(err, webhooks.ErrValidation) {
		t.Fatalf("second check (now 127.0.0.1): err = %v, want a validation error", err)
	}
	// IP literals are never looked up.
	if _, err := p.CheckURL(t.Context(), "https://"+publicIP+"/"); err != nil || dns.Calls(publicIP) != 0 {
		t.Fatalf("literal: %v, %d lookups", err, dns.Calls(publicIP))
	}
}

// Messages tell the operator how to lift a rule, except for the addresses
// that are always refused.
func TestCheckURLMessages(t *testing.T) {
	t.Parallel()
	p := webhooks.Policy{}
	_, err := p.CheckURL(t.Context(), "http://10.0.0.1/")
	var ve *webhooks.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("err = %v, want two field errors (scheme and address)", err)
	}
	if !strings.Contains(ve.Fields[0].Message, "KYCPIPE_WEBHOOK_ALLOW_INSECURE") || !strings.Contains(ve.Fields[1].Message, "KYCPIPE_WEBHOOK_ALLOW_PRIVATE") {
		t.Fatalf("messages %+v do not name the settings", ve.Fields)
	}
	_, err = webhooks.Policy{AllowPrivate: true}.CheckURL(t.Context(), "https://169.254.169.254/")
	if !errors.As(err, &ve) || !strings.Contains(ve.Fields[0].Message, "always refused") {
		t.Fatalf("metadata: err = %v, want an 'always refused' message", err)
	}
}
