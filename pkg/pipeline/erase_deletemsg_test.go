package pipeline

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// Deleting a message twice is "gone", not an error, wherever it sat in its
// block: JetStream answers "no message found" (10057) for the first one and
// "sequence N not found" (10043) for one in the middle. An erasure that
// removes its messages a second time (the tombstone's compare-and-swap
// failed, or its task was redelivered) used to fail on the latter and
// retry forever, the job ERASING (found by the soak, docs/RELIABILITY.md).
func TestDeleteMsgTwiceIsGone(t *testing.T) {
	t.Parallel()
	_, nc, js := pipelinetest.RunJetStream(t)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DEL", Subjects: []string{"del.>"}}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := js.Publish(ctx, "del.x", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []uint64{2, 1, 4} {
		for pass, want := range []bool{true, false} {
			removed, err := deleteMsg(ctx, nc, "DEL", seq, false)
			if err != nil || removed != want {
				t.Errorf("seq %d, pass %d: removed %v, err %v; want %v, nil", seq, pass+1, removed, err, want)
			}
		}
	}
	if removed, err := deleteMsg(ctx, nc, "DEL", 100, false); err != nil || removed {
		t.Errorf("past the last sequence: removed %v, err %v", removed, err)
	}
}

// A deleted object leaves its metadata (marked deleted) under a subject
// that names it; purgeObjectMeta removes it, and nothing of the object is
// left in the bucket's stream.
func TestPurgeObjectMetaLeavesNothing(t *testing.T) {
	t.Parallel()
	_, _, js := pipelinetest.RunJetStream(t)
	ctx := t.Context()
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: "IMGS"})
	if err != nil {
		t.Fatal(err)
	}
	const name = "job_0123456789abcdefghjkmnpqrs/part/FRONT"
	if _, err := obs.PutBytes(ctx, name, []byte("image bytes")); err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(ctx, "other/FRONT", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "OBJ_IMGS")
	if err != nil {
		t.Fatal(err)
	}
	count := func() uint64 {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if n := count(); n != 3 { // the other object's chunk and metadata, and the deleted one's metadata
		t.Fatalf("%d messages after Delete, want 3 (the deleted object's metadata stays)", n)
	}
	for range 2 { // idempotent
		if err := purgeObjectMeta(ctx, js, "IMGS", name); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2 {
		t.Errorf("%d messages after the purge, want the other object's 2", n)
	}
	if b, err := obs.GetBytes(ctx, "other/FRONT"); err != nil || string(b) != "kept" {
		t.Errorf("the other object: %q, %v", b, err)
	}
}
