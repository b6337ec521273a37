package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/examples/webhook-receiver/receiver"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The soak's webhooks: two endpoints on one example receiver
// (examples/webhook-receiver), which fails a share of the deliveries on
// purpose (500s and hangs past the notifier's timeout) and journals what it
// answered.

// WebhookEndpoint is an endpoint the soak registered.
type WebhookEndpoint struct {
	ID, Path string
	Types    []string
	Secret   string // whsec_…, as the registration answered it
}

// Webhooks is what the check of the deliveries needs.
type Webhooks struct {
	Endpoints []WebhookEndpoint
	// Journal is the receiver's journal file (--journal).
	Journal string
}

// WebhookEnv is the notifier's (and ingest's) configuration in a soak: a
// receiver on a private address over http, a 3 s attempt timeout and a
// retry schedule of minutes rather than hours.
var WebhookEnv = []string{
	"KYCPIPE_WEBHOOK_ALLOW_INSECURE=true",
	"KYCPIPE_WEBHOOK_ALLOW_PRIVATE=true",
	"KYCPIPE_WEBHOOK_TIMEOUT=3s",
	"KYCPIPE_WEBHOOK_SCHEDULE=1s,2s,5s,10s,20s,30s,30s,30s",
}

// ReceiverArgs are the example receiver's flags in a soak: 5% of the
// verified deliveries answered 500 and 5% held past the notifier's timeout
// (10% failed attempts in all).
func ReceiverArgs(listen, journal string) []string {
	return []string{"--listen", listen, "--failure-rate", "0.05", "--hang-rate", "0.05", "--hang-for", "10s", "--journal", journal}
}

// ReceiverSecrets is the receiver's WEBHOOK_SECRET: every endpoint's secret.
func ReceiverSecrets(eps []WebhookEndpoint) string {
	var s []string
	for _, ep := range eps {
		s = append(s, ep.Secret)
	}
	return strings.Join(s, ",")
}

// RegisterWebhooks registers the soak's endpoints at receiverURL (no
// trailing slash) over ingest's API with an admin key: /all subscribed to
// every event, /decisions to decisions and erasures.
func RegisterWebhooks(ctx context.Context, ingestURL, adminKey, receiverURL string) ([]WebhookEndpoint, error) {
	client := &http.Client{Timeout: 30 * time.Second}
	var out []WebhookEndpoint
	for _, ep := range []WebhookEndpoint{
		{Path: "/all", Types: []string{"*"}},
		{Path: "/decisions", Types: []string{string(webhooks.EventDecided), string(webhooks.EventErased)}},
	} {
		body, _ := json.Marshal(map[string]any{"url": receiverURL + ep.Path, "eventTypes": ep.Types, "description": "soak " + ep.Path})
		var last error
		for attempt := 0; attempt < 20; attempt++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, ingestURL+"/v1/webhook-endpoints", bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+adminKey)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				last = err
			} else {
				rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					var v struct{ ID, Secret string }
					if err := json.Unmarshal(rb, &v); err != nil || v.ID == "" || v.Secret == "" {
						return nil, fmt.Errorf("soak: register webhook endpoint: unexpected answer %s", rb)
					}
					ep.ID, ep.Secret = v.ID, v.Secret
					out = append(out, ep)
					last = nil
					break
				}
				last = fmt.Errorf("status %d: %s", resp.StatusCode, rb)
				if resp.StatusCode < 500 {
					break
				}
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		if last != nil {
			return nil, fmt.Errorf("soak: register webhook endpoint %s: %w", ep.Path, last)
		}
	}
	return out, nil
}

// webhooksQuiet reports whether the notifiers have nothing left to do: no
// pending delivery and no event waiting for its fan-out.
func webhooksQuiet(ctx context.Context, js jetstream.JetStream, subj messages.Subjects) (bool, string, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := js.Stream(cctx, subj.StreamWebhooks())
	if err != nil {
		return false, "", err
	}
	info, err := st.Info(cctx)
	if err != nil {
		return false, "", err
	}
	var parts []string
	if info.State.Msgs > 0 {
		part := fmt.Sprintf("%d deliveries pending", info.State.Msgs)
		// Where they are: waiting for delivery, or delivered and not
		// acknowledged (an attempt in flight or a retry's wait).
		if ci, err := js.Consumer(cctx, subj.StreamWebhooks(), pipeline.ConsumerNotifierDelivery); err == nil {
			if ii, err := ci.Info(cctx); err == nil {
				part += fmt.Sprintf(" (consumer: %d waiting, %d unacknowledged, %d redelivered)", ii.NumPending, ii.NumAckPending, ii.NumRedelivered)
			}
		}
		parts = append(parts, part)
	}
	for _, c := range []struct{ stream, name string }{
		{subj.StreamEvents(), pipeline.ConsumerNotifierEvents}, {subj.StreamDecisions(), pipeline.ConsumerNotifierDecisions},
	} {
		ci, err := js.Consumer(cctx, c.stream, c.name)
		if err != nil {
			return false, "", err
		}
		ii, err := ci.Info(cctx)
		if err != nil {
			return false, "", err
		}
		if n := ii.NumPending + uint64(ii.NumAckPending); n > 0 {
			parts = append(parts, fmt.Sprintf("%d events before fan-out (%s)", n, c.name))
		}
	}
	return len(parts) == 0, strings.Join(parts, ", "), nil
}

// WebhookReport is what the receiver saw and how it compares with the
// events in the streams.
type WebhookReport struct {
	Endpoints int
	// Attempts the receiver verified, by outcome (receiver.Outcome*).
	Attempts map[string]int
	// Expected deliveries: every (event, subscribed endpoint) for the events
	// in KYC_EVENTS and KYC_DECISIONS at the end (the events of erased jobs
	// are gone from there, except their erased event).
	Expected, Delivered int
	Missing             []string // "endpoint path webhook-id type job"
	// EventsWithSeveralIDs lists (endpoint, event) pairs delivered
	// successfully under more than one webhook-id.
	EventsWithSeveralIDs []string
	// Unexplained counts successful deliveries whose webhook-id belongs to
	// no event in the streams and whose job was not erased.
	Unexplained []string
	// DeadLetters are the notifier's dead letters left at the end.
	DeadLetters int
}

// journalEntries reads the receiver's journal.
func journalEntries(path string) ([]receiver.JournalEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []receiver.JournalEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e receiver.JournalEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// streamEvent is an event of KYC_EVENTS or KYC_DECISIONS: what fan-out
// makes a webhook of.
type streamEvent struct {
	ID    string // the event ID the webhook-id derives from
	Type  webhooks.EventType
	JobID string
}

// eventOf mirrors the notifier's reading of an event message
// (pipeline's webhookEvent): the type from the stream and kind, the event
// ID from Nats-Msg-Id, else <stream>:<sequence>.
func eventOf(subj messages.Subjects, stream string, seq uint64, hdr nats.Header, data []byte) (streamEvent, bool) {
	var h struct {
		Kind  string `json:"kind"`
		JobID string `json:"jobId"`
	}
	if json.Unmarshal(data, &h) != nil || !messages.ValidJobID(h.JobID) {
		return streamEvent{}, false
	}
	ev := streamEvent{JobID: h.JobID, ID: hdr.Get(messages.HeaderMsgID)}
	if stream == subj.StreamDecisions() {
		ev.Type = webhooks.EventDecided
	} else {
		t, ok := webhooks.LifecycleEventType(h.Kind)
		if !ok {
			return streamEvent{}, false
		}
		ev.Type = t
	}
	if ev.ID == "" {
		ev.ID = stream + ":" + strconv.FormatUint(seq, 10)
	}
	return ev, true
}

// checkWebhooks compares the receiver's journal with the events in the
// streams.
func (h *harness) checkWebhooks(ctx context.Context, hooks *Webhooks, erased map[string]bool) (*WebhookReport, error) {
	entries, err := journalEntries(hooks.Journal)
	if err != nil {
		return nil, fmt.Errorf("soak: webhook journal: %w", err)
	}
	var events []streamEvent
	for _, stream := range []string{h.subj.StreamEvents(), h.subj.StreamDecisions()} {
		if err := h.readStream(ctx, stream, func(_ string, seq uint64, hdr nats.Header, data []byte) {
			if ev, ok := eventOf(h.subj, stream, seq, hdr, data); ok {
				events = append(events, ev)
			}
		}); err != nil {
			return nil, err
		}
	}
	dead := 0
	if err := h.readStream(ctx, h.subj.StreamDLQ(), func(subject string, _ uint64, _ nats.Header, _ []byte) {
		if subject == h.subj.DLQ(messages.StageNotifier) {
			dead++
		}
	}); err != nil {
		return nil, err
	}
	return compareWebhooks(hooks.Endpoints, entries, events, erased, dead), nil
}

// compareWebhooks computes the webhook report (pure, for tests).
func compareWebhooks(eps []WebhookEndpoint, entries []receiver.JournalEntry, events []streamEvent, erased map[string]bool, dead int) *WebhookReport {
	r := &WebhookReport{Endpoints: len(eps), Attempts: map[string]int{}, DeadLetters: dead}
	type key struct{ path, id string }
	ok := map[key]receiver.JournalEntry{} // successful deliveries by (path, webhook-id)
	ids := map[key]map[string]bool{}      // (path, event hash) → webhook-ids delivered
	for _, e := range entries {
		r.Attempts[e.Outcome]++
		if e.Outcome != receiver.OutcomeDelivered && e.Outcome != receiver.OutcomeDuplicate {
			continue
		}
		ok[key{e.Path, e.WebhookID}] = e
		k := key{e.Path, e.EventSHA256}
		if ids[k] == nil {
			ids[k] = map[string]bool{}
		}
		ids[k][e.WebhookID] = true
	}
	expected := map[key]bool{}
	for _, ev := range events {
		for _, ep := range eps {
			if !webhooks.Subscribed(ep.Types, ev.Type) {
				continue
			}
			id := webhooks.MessageID(ev.ID, ep.ID)
			k := key{ep.Path, id}
			if expected[k] {
				continue // one event ID, one webhook-id: a republished event is the same event
			}
			expected[k] = true
			r.Expected++
			if _, found := ok[k]; found {
				r.Delivered++
			} else {
				r.Missing = append(r.Missing, fmt.Sprintf("%s %s %s %s", ep.Path, id, ev.Type, ev.JobID))
			}
		}
	}
	for k, set := range ids {
		if len(set) > 1 {
			var list []string
			for id := range set {
				list = append(list, id)
			}
			sort.Strings(list)
			r.EventsWithSeveralIDs = append(r.EventsWithSeveralIDs, fmt.Sprintf("%s event %.12s…: %s", k.path, k.id, strings.Join(list, " ")))
		}
	}
	for k, e := range ok {
		if !expected[k] && !erased[e.JobID] {
			r.Unexplained = append(r.Unexplained, fmt.Sprintf("%s %s %s %s", k.path, k.id, e.Type, e.JobID))
		}
	}
	sort.Strings(r.Missing)
	sort.Strings(r.EventsWithSeveralIDs)
	sort.Strings(r.Unexplained)
	return r
}
