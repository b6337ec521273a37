package pipeline

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// A publish whose acknowledgement was lost is repeated with its
// Nats-Msg-Id, and JetStream's answer to the duplicate gives the sequence
// of the copy that was stored: the caller records where the message is
// (an erasure deletes it) and nothing is stored twice.
func TestConfirmLearnsTheSequenceOfAStoredMessage(t *testing.T) {
	t.Parallel()
	js, topo := provisioned(t)
	ctx := t.Context()
	ev := &messages.Event{Kind: messages.KindAccepted, JobID: "job-confirm-1"}
	o, err := newOutMsg(topo.Subjects.Event(messages.KindAccepted), ev, messages.EventMsgID(messages.KindAccepted, "job-confirm-1"), "job-confirm-1")
	if err != nil {
		t.Fatal(err)
	}
	first, err := js.PublishMsg(ctx, o.natsMsg(ctx)) // stored; say its ack was lost
	if err != nil {
		t.Fatal(err)
	}
	lost := errors.New("nats: timeout")
	if !unconfirmed(ctx, o, lost) {
		t.Fatal("a lost acknowledgement of a message with an ID must be confirmed")
	}
	ack, err := confirm(ctx, js, o, lost)
	if err != nil {
		t.Fatal(err)
	}
	if ack.Sequence != first.Sequence || !ack.Duplicate {
		t.Errorf("confirm: %+v, want the stored copy's sequence %d as a duplicate", ack, first.Sequence)
	}
	st, err := js.Stream(ctx, topo.Subjects.StreamEvents())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Errorf("stream holds %v messages (%v), want 1", info.State.Msgs, err)
	}

	// Not repeated: a message without an ID (it could be stored twice), an
	// answer from JetStream (it is final).
	if unconfirmed(ctx, outMsg{subject: o.subject}, lost) {
		t.Error("a message without a Nats-Msg-Id was repeated")
	}
	if unconfirmed(ctx, o, &jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}) {
		t.Error("a JetStream error answer was repeated")
	}
}
