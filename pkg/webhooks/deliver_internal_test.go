package webhooks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

// bigBody is a 1 MiB body that counts the bytes read from it.
type bigBody struct{ n int64 }

func (b *bigBody) Read(p []byte) (int, error) {
	if b.n >= 1<<20 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), 1<<20-b.n)]
	for i := range p {
		p[i] = 'x'
	}
	b.n += int64(len(p))
	return len(p), nil
}

func TestDrainReadsAtMostTheLimit(t *testing.T) {
	t.Parallel()
	r := &bigBody{}
	n, err := drain(r)
	if err != nil || n != MaxResponseBody || r.n != MaxResponseBody {
		t.Fatalf("drain = %d, %v; read %d bytes of the body; want exactly %d", n, err, r.n, MaxResponseBody)
	}
}

// The transport never dials what Deliver did not check: a request without
// checked addresses, or for another host than the checked one, fails
// before any connection.
func TestDialCheckedRefusesUncheckedTargets(t *testing.T) {
	t.Parallel()
	dialed := 0
	d, err := NewDeliverer(Policy{AllowInsecure: true, AllowPrivate: true}, WithDialer(func(context.Context, string, string) (net.Conn, error) {
		dialed++
		return nil, errors.New("dialed")
	}))
	if err != nil {
		t.Fatal(err)
	}
	checked := &target{host: "hooks.example.com", addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	for name, ctx := range map[string]context.Context{
		"no target":    t.Context(),
		"other host":   context.WithValue(t.Context(), targetKey{}, checked),
		"empty target": context.WithValue(t.Context(), targetKey{}, &target{host: "127.0.0.1"}),
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:9/", nil)
		if _, err := d.client.Do(req); !errors.Is(err, errUncheckedDial) {
			t.Errorf("%s: err = %v, want errUncheckedDial", name, err)
		}
	}
	if dialed != 0 {
		t.Fatalf("%d dials", dialed)
	}
}
