package soak

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The marker scan reads every message of every stream on the server (the
// key-value and object-store buckets are streams too: every revision a
// bucket keeps is a message) and looks for the erased jobs in them: their
// job IDs, and their references, which every personal field of a soak job
// carries (UserReference, Email). A reference may be nowhere. A job ID may
// be only where the design keeps one after the erasure (DESIGN 3.7,
// docs/PRIVACY.md), each with IDs and times only:
//
//   - the tombstone (the job record, status ERASED, no reference);
//   - the audit record (KYC_AUDIT);
//   - the erased event (kyc.events.erased) and, for each endpoint
//     subscribed to it, its webhook delivery, delivery-log entries and
//     attempt counters (the webhook-id of the erased event);
//   - the erased-execution marker erased.<executionId> in the job-state
//     bucket (its value is the job ID: it drops late callbacks).
//
// Anything else carrying an erased job's ID or reference is a finding.

// refRE matches the references of both harnesses' jobs (soak-000123,
// cn-000123-warn, …), also inside the user reference and the email.
var refRE = regexp.MustCompile(`(?:soak|cn)-[0-9]{6}(?:-warn|-reject)?`)

// jobIDRE matches kycpipe's generated job IDs.
var jobIDRE = regexp.MustCompile(`(?:job|idem)_[0-9a-z]{26}`)

// MarkerHit is a message that carries an erased job's marker.
type MarkerHit struct {
	Stream  string
	Seq     uint64
	Subject string
	JobID   string
	What    string // "reference" or "job ID"
	// Allowed names the designed place of a job ID ("" for a finding).
	Allowed string
	// Note is what a dead letter says of itself (stage, reason, error),
	// and the time of the message when known.
	Note string
}

func (m MarkerHit) String() string {
	s := fmt.Sprintf("%s/%d %s: %s of %s", m.Stream, m.Seq, m.Subject, m.What, m.JobID)
	if m.Note != "" {
		s += " (" + m.Note + ")"
	}
	return s
}

// ScanReport is the outcome of the marker scan.
type ScanReport struct {
	Streams, Messages int
	// Findings are the hits outside the allowed places.
	Findings []MarkerHit
	// Allowed counts the hits in allowed places, by place.
	Allowed map[string]int
}

// scanTarget is what the scan looks for.
type scanTarget struct {
	subj      messages.Subjects
	byJob     map[string]string // erased job ID → reference
	byRef     map[string]string // reference → erased job ID
	erasedIDs map[string]string // webhook-id of an erased event → job ID
}

func newScanTarget(subj messages.Subjects, erased map[string]string, endpoints []WebhookEndpoint) *scanTarget {
	t := &scanTarget{subj: subj, byJob: erased, byRef: map[string]string{}, erasedIDs: map[string]string{}}
	for job, ref := range erased {
		t.byRef[ref] = job
		for _, ep := range endpoints {
			t.erasedIDs[webhooks.MessageID(messages.EventMsgID(messages.KindErased, job), ep.ID)] = job
		}
	}
	return t
}

// scanMarkers reads every stream and reports the erased jobs' markers.
func scanMarkers(ctx context.Context, js jetstream.JetStream, t *scanTarget) (*ScanReport, error) {
	r := &ScanReport{Allowed: map[string]int{}}
	if len(t.byJob) == 0 {
		return r, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	var names []string
	lister := js.StreamNames(cctx)
	for n := range lister.Name() {
		names = append(names, n)
	}
	err := lister.Err()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("soak: list streams: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		r.Streams++
		err := readAll(ctx, js, name, func(subject string, seq uint64, hdr map[string][]string, data []byte) {
			r.Messages++
			for _, hit := range t.check(name, subject, seq, hdr, data) {
				if hit.Allowed != "" {
					r.Allowed[hit.Allowed]++
				} else {
					r.Findings = append(r.Findings, hit)
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("soak: scan %s: %w", name, err)
		}
	}
	return r, nil
}

// check returns the markers one message carries.
func (t *scanTarget) check(stream, subject string, seq uint64, hdr map[string][]string, data []byte) []MarkerHit {
	var text bytes.Buffer
	text.WriteString(subject)
	text.WriteByte('\n')
	// An object's name is base64 in its metadata subject.
	if i := strings.LastIndexByte(subject, '.'); strings.HasPrefix(subject, "$O.") && i > 0 {
		for _, enc := range []*base64.Encoding{base64.URLEncoding, base64.RawURLEncoding, base64.StdEncoding} {
			if b, err := enc.DecodeString(subject[i+1:]); err == nil {
				text.Write(b)
				text.WriteByte('\n')
				break
			}
		}
	}
	for k, vs := range hdr {
		text.WriteString(k)
		for _, v := range vs {
			text.WriteByte(' ')
			text.WriteString(v)
		}
		text.WriteByte('\n')
	}
	text.Write(data)
	b := text.Bytes()
	var hits []MarkerHit
	seen := map[string]bool{}
	for _, m := range refRE.FindAll(b, -1) {
		if job, ok := t.byRef[string(m)]; ok && !seen["r"+job] {
			seen["r"+job] = true
			hits = append(hits, MarkerHit{Stream: stream, Seq: seq, Subject: subject, JobID: job, What: "reference", Note: note(hdr)})
		}
	}
	for _, m := range jobIDRE.FindAll(b, -1) {
		job := string(m)
		if _, ok := t.byJob[job]; !ok || seen["j"+job] {
			continue
		}
		seen["j"+job] = true
		hit := MarkerHit{Stream: stream, Seq: seq, Subject: subject, JobID: job, What: "job ID", Note: note(hdr)}
		if !seen["r"+job] {
			hit.Allowed = t.allowed(stream, subject, job, data)
		}
		hits = append(hits, hit)
	}
	return hits
}

// note is what a dead letter's headers say of it.
func note(hdr map[string][]string) string {
	var parts []string
	for _, k := range []string{messages.HeaderStage, messages.HeaderReason, messages.HeaderError, messages.HeaderOriginalSubject} {
		if v := hdr[k]; len(v) > 0 && v[0] != "" {
			parts = append(parts, k+"="+v[0])
		}
	}
	return strings.Join(parts, ", ")
}

// allowed names the designed place of an erased job's ID, or "".
func (t *scanTarget) allowed(stream, subject, job string, data []byte) string {
	s := t.subj
	jobsKV := "$KV." + s.BucketJobs() + "."
	switch {
	case stream == "KV_"+s.BucketJobs() && subject == jobsKV+"job."+job:
		var rec struct{ Status string }
		if json.Unmarshal(data, &rec) == nil && rec.Status == "ERASED" {
			return "tombstone"
		}
	case stream == "KV_"+s.BucketJobs() && strings.HasPrefix(subject, jobsKV+"erased."):
		return "erased-execution marker"
	case stream == "KV_"+s.BucketJobs() && strings.HasPrefix(subject, jobsKV+"idem."):
		// IDs only (the key's derived ID → the job ID), kept on purpose: the
		// erased job's Idempotency-Key stays refused while the tombstone
		// exists (docs/PRIVACY.md).
		return "Idempotency-Key binding"
	case stream == s.StreamAudit():
		return "audit record"
	case stream == s.StreamEvents() && subject == s.Event(messages.KindErased):
		return "erased event"
	case stream == s.StreamWebhooks() || stream == s.StreamWebhookLog():
		var v struct {
			WebhookID string `json:"webhookId"`
		}
		if json.Unmarshal(data, &v) == nil && t.erasedIDs[v.WebhookID] == job {
			return "the erased event's webhook delivery or log"
		}
	case stream == "KV_"+s.BucketWebhookAttempts():
		// att.<jobId>.<webhookId>.<seq>
		parts := strings.Split(subject, ".")
		for _, p := range parts {
			if t.erasedIDs[p] == job {
				return "the erased event's webhook delivery or log"
			}
		}
	}
	return ""
}

// scanAttempts bounds the reads of one stream that a transient error
// interrupts: with retryTransient's pauses (at most scanPauseMax each),
// about four minutes of a stream without a leader. Eight attempts (28 s)
// were not enough in the soak of 2026-12-07 14:07: its verification ended
// on "no responders" from KV_KYC_JOBS_STATE, on a machine also running
// rolling-upgrade tests.
const scanAttempts = 30

// scanPauseMax caps the pause between two attempts.
const scanPauseMax = 10 * time.Second

// errScanStalled is a fetch of the ordered consumer that ended without a
// message or an error before the end of the stream.
var errScanStalled = errors.New("soak: the ordered consumer stalled")

// readAll calls fn for every message of a stream, once each: through an
// ordered consumer (the stream leader's copy), or, where a work-queue stream
// refuses another consumer, by sequence. A transient error (no responders or
// a timeout, as while leaders are elected after the soak's node losses and
// partitions) resumes the read after the last message read, up to
// scanAttempts times.
func readAll(ctx context.Context, js jetstream.JetStream, stream string, fn func(subject string, seq uint64, hdr map[string][]string, data []byte)) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	return retryTransient(cctx, scanAttempts, time.Second, func(next *uint64) error {
		return readFrom(cctx, js, stream, next, fn)
	})
}

// retryTransient calls read until it returns nil, a permanent error, or
// attempts transient errors, pausing attempt×pause between them. read
// advances next (the next stream sequence to read, 0 for the first) past
// every message it hands on, so that each try resumes where the last one
// stopped.
func retryTransient(ctx context.Context, attempts int, pause time.Duration, read func(next *uint64) error) error {
	var next uint64
	for attempt := 1; ; attempt++ {
		err := read(&next)
		if err == nil || !transientScanError(err) || attempt >= attempts {
			return err
		}
		if !ctxutil.Sleep(ctx, min(time.Duration(attempt)*pause, scanPauseMax)) {
			return fmt.Errorf("%w (then %w)", err, ctx.Err())
		}
	}
}

// transientScanError reports whether a read may succeed when retried.
func transientScanError(err error) bool {
	for _, t := range []error{nats.ErrNoResponders, nats.ErrTimeout, context.DeadlineExceeded, errScanStalled,
		jetstream.ErrNoHeartbeat, jetstream.ErrConsumerDeleted, jetstream.ErrConsumerNotFound, jetstream.ErrJetStreamNotEnabled} {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// readFrom reads a stream from sequence *next on, advancing *next past
// every message handed to fn.
func readFrom(ctx context.Context, js jetstream.JetStream, stream string, next *uint64, fn func(subject string, seq uint64, hdr map[string][]string, data []byte)) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	last := info.State.LastSeq
	*next = max(*next, info.State.FirstSeq)
	if info.State.Msgs == 0 || *next > last {
		return nil
	}
	if info.Config.Retention != jetstream.WorkQueuePolicy {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: *next})
		if err != nil {
			return err
		}
		for *next <= last {
			batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(3*time.Second))
			if err != nil {
				return err
			}
			n := 0
			for m := range batch.Messages() {
				n++
				md, err := m.Metadata()
				if err != nil || md.Sequence.Stream < *next {
					continue
				}
				fn(m.Subject(), md.Sequence.Stream, m.Headers(), m.Data())
				*next = md.Sequence.Stream + 1
				if md.NumPending == 0 {
					return nil
				}
			}
			if err := batch.Error(); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w at sequence %d of %d", errScanStalled, *next, last)
			}
		}
		return nil
	}
	for ; *next <= last; *next++ {
		m, err := st.GetMsg(ctx, *next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		fn(m.Subject, *next, m.Header, m.Data)
	}
	return nil
}

// FindingPlace names where a finding is, for counting: the stream and the
// subject's kind (its first tokens, without IDs).
func FindingPlace(h MarkerHit) string {
	parts := strings.Split(h.Subject, ".")
	keep := 2
	if strings.HasPrefix(h.Subject, "$KV.") || strings.HasPrefix(h.Subject, "$O.") {
		keep = 3
	}
	if len(parts) > keep {
		parts = parts[:keep]
	}
	return h.What + " in " + h.Stream + " (" + strings.Join(parts, ".") + ")"
}
