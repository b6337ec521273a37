// Package receiver is an example receiver of kycpipe's signed webhooks
// (Standard Webhooks): an http.Handler that verifies each delivery's
// signature, acknowledges each webhook-id once and logs the event type,
// webhook-id and job ID. examples/webhook-receiver serves it as a program;
// `make run` (internal/localstack) serves it in process.
package receiver

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// MaxBody bounds a delivery body: JetStream's 1 MiB payload plus the
// envelope.
const MaxBody = 1<<20 + 64<<10

// DefaultDedupSize is how many webhook-ids the receiver remembers.
const DefaultDedupSize = 100_000

// Config configures a [Receiver].
type Config struct {
	// Secrets verify signatures (several during a rotation); required.
	Secrets []webhooks.Secret
	// Tolerance bounds the webhook-timestamp's age; 0 = 5 minutes.
	Tolerance time.Duration
	// FailureRate is the fraction (0 to 1) of verified deliveries answered
	// 500 on purpose, to exercise the sender's retries.
	FailureRate float64
	// HangRate is the fraction (0 to 1, at most 1 - FailureRate) of
	// verified deliveries that get no answer on purpose: the receiver holds
	// the request until the sender gives up (its timeout) or HangFor
	// passes, then answers 503. It exercises the sender's timeouts.
	HangRate float64
	// HangFor bounds a hang; 0 = 30 seconds.
	HangFor time.Duration
	// Rand returns numbers in [0, 1) for the failure and hang rates; nil =
	// math/rand/v2.
	Rand func() float64
	// Journal, when set, receives one JSON line ([JournalEntry]) per
	// verified delivery: what was answered, to which path, for which
	// webhook-id and event. The soak (internal/soak) checks the deliveries
	// with it. Writes are serialized.
	Journal io.Writer
	// Now is the clock for timestamp checks; nil = time.Now.
	Now func() time.Time
	// DedupSize is how many recent webhook-ids are remembered; 0 =
	// DefaultDedupSize.
	DedupSize int
	// Logger receives one line per verified delivery; nil = no logs.
	Logger *zap.Logger
}

// Stats counts what the receiver did.
type Stats struct {
	Delivered        int64 `json:"delivered"`        // verified, first seen, processed
	Duplicates       int64 `json:"duplicates"`       // verified, id already processed: acknowledged again
	Rejected         int64 `json:"rejected"`         // bad or missing signature, stale timestamp
	InjectedFailures int64 `json:"injectedFailures"` // answered 500 on purpose
	InjectedHangs    int64 `json:"injectedHangs"`    // held without an answer on purpose
}

// Outcomes of a verified delivery in the journal.
const (
	OutcomeDelivered = "delivered" // first seen, processed, answered 204
	OutcomeDuplicate = "duplicate" // webhook-id already processed, answered 204
	OutcomeFailed    = "failed"    // answered 500 on purpose (FailureRate)
	OutcomeHung      = "hung"      // held on purpose (HangRate); the sender got no answer in time
	OutcomeBadBody   = "bad_body"  // signed, but not a webhook payload (400)
)

// JournalEntry is one line of the journal: a verified delivery and its
// answer. It carries IDs and a hash, never the body: EventSHA256 is the
// SHA-256 of the payload's data bytes exactly as received (the event as
// kycpipe stored it), the same at every retry of one event.
type JournalEntry struct {
	At          time.Time `json:"at"`
	Path        string    `json:"path"`
	WebhookID   string    `json:"webhookId"`
	Type        string    `json:"type"`
	JobID       string    `json:"jobId"`
	EventSHA256 string    `json:"eventSha256"`
	Outcome     string    `json:"outcome"`
}

// Receiver is an http.Handler for kycpipe webhook deliveries: it verifies
// the Standard Webhooks signature (401 otherwise), deduplicates on
// webhook-id, logs the event type, webhook-id and job ID (never personal
// fields: only those are even decoded) and answers 204. It is safe for
// concurrent use.
type Receiver struct {
	verifier    *webhooks.Verifier
	failureRate float64
	hangRate    float64
	hangFor     time.Duration
	rand        func() float64
	logger      *zap.Logger
	seen        *idSet
	now         func() time.Time

	journalMu sync.Mutex
	journal   io.Writer

	delivered, duplicates, rejected, injected, hangs atomic.Int64
}

// NewReceiver validates cfg and returns a Receiver.
func NewReceiver(cfg Config) (*Receiver, error) {
	if len(cfg.Secrets) == 0 {
		return nil, errors.New("receiver: at least one secret is required")
	}
	if !(cfg.FailureRate >= 0 && cfg.FailureRate <= 1) { // also refuses NaN
		return nil, errors.New("receiver: the failure rate must be between 0 and 1")
	}
	if !(cfg.HangRate >= 0 && cfg.HangRate <= 1-cfg.FailureRate) {
		return nil, errors.New("receiver: the hang rate must be between 0 and 1 minus the failure rate")
	}
	if cfg.HangFor < 0 {
		return nil, errors.New("receiver: the hang bound must not be negative")
	}
	if cfg.DedupSize < 0 {
		return nil, errors.New("receiver: the dedup size must not be negative")
	}
	rc := &Receiver{
		verifier:    &webhooks.Verifier{Secrets: cfg.Secrets, Tolerance: cfg.Tolerance, Now: cfg.Now},
		failureRate: cfg.FailureRate,
		hangRate:    cfg.HangRate,
		hangFor:     cmp.Or(cfg.HangFor, 30*time.Second),
		rand:        cfg.Rand,
		logger:      cfg.Logger,
		seen:        newIDSet(cmp.Or(cfg.DedupSize, DefaultDedupSize)),
		now:         cfg.Now,
		journal:     cfg.Journal,
	}
	if rc.rand == nil {
		rc.rand = rand.Float64
	}
	if rc.now == nil {
		rc.now = time.Now
	}
	if rc.logger == nil {
		rc.logger = zap.NewNop()
	}
	return rc, nil
}

// Stats returns the counters so far.
func (rc *Receiver) Stats() Stats {
	return Stats{
		Delivered:        rc.delivered.Load(),
		Duplicates:       rc.duplicates.Load(),
		Rejected:         rc.rejected.Load(),
		InjectedFailures: rc.injected.Load(),
		InjectedHangs:    rc.hangs.Load(),
	}
}

// Handler routes POST (any path) to the deliveries, GET /healthz to a
// liveness answer and GET /stats to the counters as JSON.
func (rc *Receiver) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost:
			rc.ServeHTTP(w, r)
		case r.Method == http.MethodGet && r.URL.Path == "/healthz":
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodGet && r.URL.Path == "/stats":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(rc.Stats())
		case r.URL.Path == "/healthz" || r.URL.Path == "/stats":
			w.Header().Set("Allow", "GET")
			problem(w, http.StatusMethodNotAllowed, "use GET")
		default:
			w.Header().Set("Allow", "POST")
			problem(w, http.StatusMethodNotAllowed, "deliveries are POSTed")
		}
	})
}

// payload is what the receiver reads of a delivery: the type, the data's
// raw bytes (only hashed) and the job ID, nothing personal.
type payload struct {
	Type webhooks.EventType `json:"type"`
	Data json.RawMessage    `json:"data"`
}

type payloadJob struct {
	JobID string `json:"jobId"`
}

// record appends a journal line.
func (rc *Receiver) record(r *http.Request, id string, p *payload, outcome string) {
	if rc.journal == nil {
		return
	}
	e := JournalEntry{At: rc.now().UTC(), Path: r.URL.Path, WebhookID: id, Outcome: outcome}
	if p != nil {
		sum := sha256.Sum256(p.Data)
		e.Type, e.EventSHA256 = string(p.Type), hex.EncodeToString(sum[:])
		var j payloadJob
		if json.Unmarshal(p.Data, &j) == nil {
			e.JobID = j.JobID
		}
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	rc.journalMu.Lock()
	defer rc.journalMu.Unlock()
	_, _ = rc.journal.Write(append(b, '\n'))
}

// ServeHTTP handles one delivery.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		problem(w, http.StatusMethodNotAllowed, "deliveries are POSTed")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			problem(w, http.StatusRequestEntityTooLarge, "the body is too large")
			return
		}
		problem(w, http.StatusBadRequest, "cannot read the body")
		return
	}
	id := r.Header.Get(webhooks.HeaderID)
	if err := rc.verifier.Verify(r.Header, body); err != nil {
		rc.rejected.Add(1)
		rc.logger.Warn("webhook rejected", zap.String("webhook_id", id), zap.Error(err))
		problem(w, http.StatusUnauthorized, "signature verification failed")
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		rc.record(r, id, nil, OutcomeBadBody)
		problem(w, http.StatusBadRequest, "the body is not a webhook payload")
		return
	}
	// Fail on purpose before anything is processed, so the retry is.
	if rc.failureRate > 0 || rc.hangRate > 0 {
		switch x := rc.rand(); {
		case x < rc.failureRate:
			rc.injected.Add(1)
			rc.record(r, id, &p, OutcomeFailed)
			rc.logger.Debug("webhook failed on purpose", zap.String("webhook_id", id))
			problem(w, http.StatusInternalServerError, "failure injected by --failure-rate")
			return
		case x < rc.failureRate+rc.hangRate:
			rc.hangs.Add(1)
			rc.record(r, id, &p, OutcomeHung)
			rc.logger.Debug("webhook held on purpose", zap.String("webhook_id", id))
			t := time.NewTimer(rc.hangFor)
			defer t.Stop()
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			problem(w, http.StatusServiceUnavailable, "hang injected by --hang-rate")
			return
		}
	}
	if !rc.seen.Add(id) {
		rc.duplicates.Add(1)
		rc.record(r, id, &p, OutcomeDuplicate)
		rc.logger.Debug("webhook duplicate acknowledged", zap.String("webhook_id", id))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	rc.delivered.Add(1)
	rc.record(r, id, &p, OutcomeDelivered)
	var j payloadJob
	_ = json.Unmarshal(p.Data, &j)
	// A real service would act here, idempotently on webhook-id, and
	// answer fast (queue slow work).
	rc.logger.Info("webhook delivered",
		zap.String("type", string(p.Type)),
		zap.String("webhook_id", id),
		zap.String("job_id", j.JobID))
	w.WriteHeader(http.StatusNoContent)
}

// problem writes an RFC 9457 problem.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type":   "about:blank",
		"title":  http.StatusText(status),
		"status": status,
		"detail": detail,
	})
}

// idSet remembers the last n ids added (first in, first out).
type idSet struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string
	next int
}

func newIDSet(n int) *idSet {
	return &idSet{ids: make(map[string]struct{}, n), ring: make([]string, n)}
}

// Add records id and reports whether it was new.
func (s *idSet) Add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % len(s.ring)
	s.ids[id] = struct{}{}
	return true
}
