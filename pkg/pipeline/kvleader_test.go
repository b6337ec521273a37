package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// Leader reads see what key-value Get sees on one node: values, revisions,
// deleted and missing keys.
func TestLeaderReads(t *testing.T) {
	t.Parallel()
	_, nc, js := pipelinetest.RunJetStream(t)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "LEADER_READS", History: 2})
	if err != nil {
		t.Fatal(err)
	}
	l := newLeaderReader(js, "LEADER_READS")
	if _, _, err := l.get(ctx, "job.none"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if _, err := kv.Put(ctx, "job.a", []byte("one")); err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Put(ctx, "job.a", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	v, r, err := l.get(ctx, "job.a")
	if err != nil || string(v) != "two" || r != rev {
		t.Errorf("get = %q at %d, %v; want two at %d", v, r, err, rev)
	}
	if err := kv.Delete(ctx, "job.a"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.get(ctx, "job.a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("deleted key: %v", err)
	}
	if _, err := kv.Put(ctx, "job.a", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if v, _, err := l.get(ctx, "job.a"); err != nil || string(v) != "three" {
		t.Errorf("key put again = %q, %v", v, err)
	}

	// A JobStore with leader reads reads the same through both paths.
	s := NewJobStore(kv, nil).withLeaderReads(js)
	direct, drev, derr := s.read(ctx, "job.a", false)
	latest, lrev, lerr := s.read(ctx, "job.a", true)
	if derr != nil || lerr != nil || string(direct) != string(latest) || drev != lrev {
		t.Errorf("direct %q@%d (%v), leader %q@%d (%v)", direct, drev, derr, latest, lrev, lerr)
	}

	// JetStream's errors come back typed.
	missing := newLeaderReader(js, "NO_SUCH_BUCKET")
	var lre *leaderReadError
	if _, _, err := missing.get(ctx, "job.a"); !errors.As(err, &lre) || lre.code != 404 {
		t.Errorf("read of a missing bucket: %v", err)
	}

	// The request goes to the JetStream API the handle uses.
	for _, c := range []struct {
		name string
		js   func() (jetstream.JetStream, error)
		want string
	}{
		{"default", func() (jetstream.JetStream, error) { return jetstream.New(nc) }, "$JS.API.STREAM.MSG.GET.KV_B"},
		{"prefix", func() (jetstream.JetStream, error) { return jetstream.NewWithAPIPrefix(nc, "hub.API") }, "hub.API.STREAM.MSG.GET.KV_B"},
		{"domain", func() (jetstream.JetStream, error) { return jetstream.NewWithDomain(nc, "leaf") }, "$JS.leaf.API.STREAM.MSG.GET.KV_B"},
	} {
		h, err := c.js()
		if err != nil {
			t.Fatal(err)
		}
		if got := newLeaderReader(h, "B").apiSubj; got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
