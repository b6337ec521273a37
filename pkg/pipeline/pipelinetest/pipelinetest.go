// Package pipelinetest helps test code that uses kycpipe's pipeline: a real
// embedded NATS server with JetStream in a temporary directory, and waiting
// helpers that poll a condition against a deadline instead of sleeping.
package pipelinetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
)

// DefaultTimeout bounds the waits of this package.
const DefaultTimeout = 30 * time.Second

// RunJetStream starts an embedded NATS server with JetStream, its file
// store in t.TempDir(), listening on a free loopback port, and connects to
// it. Everything is shut down when the test ends.
func RunJetStream(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := natsembed.Run(natsembed.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, js := Connect(t, ns.ClientURL())
	return ns, nc, js
}

// Connect connects to url and closes the connection when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// Logger returns a logger writing to t.Log (shown on failure or with -v).
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// Eventually polls cond every 10ms until it holds, failing the test with
// msg after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+msg, append([]any{timeout}, args...)...)
		}
		<-tick.C
	}
}

// WaitFor receives from ch, failing the test after timeout.
func WaitFor[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// Recorder collects messages of a limits stream (events, decisions, dead
// letters) with an ordered consumer, for assertions.
type Recorder[T any] struct {
	mu   sync.Mutex
	msgs []Received[T]
}

// Received is one recorded message.
type Received[T any] struct {
	Subject string
	Header  nats.Header
	Value   T
	Raw     []byte
}

// Record starts recording every message of stream matching filter, decoded
// with decode (nil: JSON into T).
func Record[T any](t testing.TB, js jetstream.JetStream, stream, filter string, decode func([]byte) (T, error)) *Recorder[T] {
	t.Helper()
	if decode == nil {
		decode = func(b []byte) (T, error) {
			var v T
			err := json.Unmarshal(b, &v)
			return v, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		t.Fatalf("record %s: %v", stream, err)
	}
	r := &Recorder[T]{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		v, err := decode(m.Data())
		if err != nil {
			t.Errorf("recorded %s: cannot decode: %v", m.Subject(), err)
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, Received[T]{Subject: m.Subject(), Header: m.Headers(), Value: v, Raw: m.Data()})
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatalf("record %s: %v", stream, err)
	}
	t.Cleanup(cc.Stop)
	return r
}

// All returns the messages recorded so far.
func (r *Recorder[T]) All() []Received[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received[T](nil), r.msgs...)
}

// Where returns the recorded messages for which keep is true.
func (r *Recorder[T]) Where(keep func(Received[T]) bool) []Received[T] {
	var out []Received[T]
	for _, m := range r.All() {
		if keep(m) {
			out = append(out, m)
		}
	}
	return out
}

// WaitN waits until at least n messages satisfy keep and returns them.
func (r *Recorder[T]) WaitN(t testing.TB, n int, timeout time.Duration, keep func(Received[T]) bool, what string) []Received[T] {
	t.Helper()
	var got []Received[T]
	Eventually(t, timeout, func() bool {
		got = r.Where(keep)
		return len(got) >= n
	}, "want %d %s, have %d", n, what, len(got))
	return got
}

// Decisions records decision events.
func Decisions(t testing.TB, js jetstream.JetStream, s messages.Subjects) *Recorder[*messages.DecisionEvent] {
	return Record(t, js, s.StreamDecisions(), s.Decisions(), messages.DecodeDecision)
}

// Events records lifecycle events.
func Events(t testing.TB, js jetstream.JetStream, s messages.Subjects) *Recorder[*messages.Event] {
	return Record(t, js, s.StreamEvents(), s.Events(), messages.DecodeEvent)
}

// DeadLetters records dead letters (raw payloads; headers say why).
func DeadLetters(t testing.TB, js jetstream.JetStream, s messages.Subjects) *Recorder[[]byte] {
	return Record(t, js, s.StreamDLQ(), s.DLQs(), func(b []byte) ([]byte, error) { return b, nil })
}

// ForJob filters recorded messages by their Kyc-Job-Id header.
func ForJob[T any](jobID string) func(Received[T]) bool {
	return func(m Received[T]) bool { return m.Header.Get(messages.HeaderJobID) == jobID }
}

// Describe prints recorded messages, for failure messages.
func Describe[T any](msgs []Received[T]) string {
	s := ""
	for _, m := range msgs {
		s += fmt.Sprintf("\n  %s %s", m.Subject, m.Raw)
	}
	return s
}

// Consent is an end user's consent in a request, as Jumio requires before ID
// and selfie images are uploaded over the API channel (jumio-api.md §10.1).
func Consent() map[string]any {
	return map[string]any{"userIp": "203.0.113.7", "userLocation": map[string]any{"country": "USA", "state": "CA"},
		"consent": map[string]any{"obtained": "yes", "obtainedAt": "2026-11-01T10:00:00Z"}}
}

// IDWorkflow is a workflow definition naming the ID's country and type, as
// Jumio requires for ID images uploaded over the API channel
// (jumio-api.md §10.2).
func IDWorkflow(key int) map[string]any {
	return map[string]any{"key": key, "credentials": []any{map[string]any{
		"category": "ID", "country": map[string]any{"values": []string{"USA"}}, "type": map[string]any{"values": []string{"DRIVING_LICENSE"}}}}}
}

// APIImageFields are Consent and the ID's country and type as JSON object
// members, for requests written as JSON text: `{"channel":"API",` +
// APIImageFields(10011) + `,…}`.
func APIImageFields(key int) string {
	return fmt.Sprintf(`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"CA"},"consent":{"obtained":"yes","obtainedAt":"2026-11-01T10:00:00Z"}},`+
		`"workflowDefinition":{"key":%d,"credentials":[{"category":"ID","country":{"values":["USA"]},"type":{"values":["DRIVING_LICENSE"]}}]}`, key)
}

// StoredMessage is one message of one stream, as stored.
type StoredMessage struct {
	Stream, Subject string
	Seq             uint64
	Header          nats.Header
	Data            []byte
}

// AllMessages reads every message of every stream on the server (key-value
// and object-store backing streams included), for tests that must prove
// something is stored nowhere.
func AllMessages(t *testing.T, js jetstream.JetStream) []StoredMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	var out []StoredMessage
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("%s/%d: %v", name, seq, err)
			}
			out = append(out, StoredMessage{Stream: name, Subject: m.Subject, Seq: seq, Header: m.Header, Data: m.Data})
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Contains reports whether the message holds s in its subject, headers or
// payload.
func (m StoredMessage) Contains(s string) bool {
	if strings.Contains(m.Subject, s) || bytes.Contains(m.Data, []byte(s)) {
		return true
	}
	for k, vs := range m.Header {
		for _, v := range append([]string{k}, vs...) {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// KVKeys returns the keys stored in bucket (values and markers), sorted,
// from its stream's subject counts. No watcher: one created while keys are
// being purged may never signal the end of its initial values (nats.go
// counts the messages pending at its creation), and kv.Keys and
// ListKeys then never return.
func KVKeys(t testing.TB, js jetstream.JetStream, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "$KV." + bucket + "."
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for s := range info.State.Subjects {
		keys = append(keys, strings.TrimPrefix(s, prefix))
	}
	slices.Sort(keys)
	return keys
}
