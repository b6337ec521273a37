package webhooks

import (
	"io"
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
