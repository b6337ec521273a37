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
