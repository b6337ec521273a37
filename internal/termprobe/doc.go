// Package termprobe is the minimal program behind the root cause of the
// "spurious dead letter" of the cluster soak of 2026-11-30
// (docs/RELIABILITY.md): a MSG_TERMINATED advisory that no kycpipe stage sent.
//
// It shows a server behaviour of nats-server (v2.15.2, server/consumer.go):
// when a message that is pending in a consumer (delivered, not acked: a
// poll task waiting out its NakWithDelay) is removed from its stream by a
// DeleteMsg, the stream calls the consumer's decStreamPending, which
// processes the message as terminated (processTerm) with the reason
// "Unacknowledged message was deleted" and publishes a MSG_TERMINATED
// advisory with the message's stream sequence and its delivery count (1 for
// a poll task still waiting for its first poll). On a single node the
// message is gone from the stream before the advisory is out; in an R3
// cluster the advisory is sent by the consumer leader as soon as its own
// replica of the stream applies the delete, and a GetMsg answered by the
// stream leader may still return the message for a moment. A sweeper that
// treats "advisory + message still readable" as a give-up then dead-letters
// a message that was deleted on purpose.
//
// [Run] reproduces it against any JetStream (one embedded node in the tests,
// a 3-node embedded cluster in cmd/termprobe): it publishes messages to a
// work-queue stream, delivers each once and leaves it pending with
// NakWithDelay, deletes them, and for every MSG_TERMINATED advisory reads the
// message by sequence at once, counting the reasons and how often the
// message was still there.
package termprobe
