package kycctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// KindDecision is the kind kycctl gives decision events, next to the
// lifecycle kinds (accepted, launched, finalized, failed).
const KindDecision = "decision"

// eventLine is a lifecycle or decision event as kycctl shows it. It never
// holds extraction data (PII), web links or SDK tokens (bearer
// credentials): their presence is all it tells.
type eventLine struct {
	Stream                    string                                  `json:"stream"`
	Sequence                  uint64                                  `json:"seq"`
	Subject                   string                                  `json:"subject"`
	Time                      time.Time                               `json:"time"` // when the stream stored it
	Kind                      string                                  `json:"kind"` // accepted, launched, finalized, failed or decision
	JobID                     string                                  `json:"jobId,omitempty"`
	Region                    string                                  `json:"region,omitempty"`
	AccountID                 string                                  `json:"accountId,omitempty"`
	WorkflowExecutionID       string                                  `json:"workflowExecutionId,omitempty"`
	CustomerInternalReference string                                  `json:"customerInternalReference,omitempty"`
	WebLink                   string                                  `json:"webLink,omitempty"`  // "present"
	SDKToken                  string                                  `json:"sdkToken,omitempty"` // "present"
	Error                     *messages.ErrorInfo                     `json:"error,omitempty"`
	Status                    string                                  `json:"status,omitempty"` // Jumio's workflow status (decisions)
	Decision                  *messages.DecisionSummary               `json:"decision,omitempty"`
	Capabilities              map[string][]messages.CapabilitySummary `json:"capabilities,omitempty"`
	Stage                     string                                  `json:"stage,omitempty"` // dead letters: the stage that gave up
	Malformed                 string                                  `json:"malformed,omitempty"`
}

// KindDeadLetter is the kind kycctl gives a job's dead letters.
const KindDeadLetter = "dead_letter"

// newEventLine decodes a message of the events or decisions stream.
func newEventLine(subj messages.Subjects, stream, subject string, seq uint64, t time.Time, h nats.Header, data []byte) eventLine {
	l := eventLine{Stream: stream, Sequence: seq, Subject: subject, Time: t, JobID: h.Get(messages.HeaderJobID)}
	if stream == subj.StreamDLQ() {
		// The payload is the original message (it may hold PII): only why.
		l.Kind, l.Stage = KindDeadLetter, h.Get(messages.HeaderStage)
		l.Error = &messages.ErrorInfo{Code: h.Get(messages.HeaderReason), Message: h.Get(messages.HeaderError)}
		return l
	}
	if stream == subj.StreamDecisions() {
		l.Kind = KindDecision
		d, err := messages.DecodeDecision(data)
		if err != nil {
			l.Malformed = strings.TrimPrefix(err.Error(), "messages: ")
			return l
		}
		l.JobID = cmp.Or(l.JobID, d.JobID)
		l.Region, l.AccountID, l.WorkflowExecutionID = d.Region, d.AccountID, d.WorkflowExecutionID
		l.CustomerInternalReference, l.Status = d.CustomerInternalReference, d.Status
		dec := d.Decision
		l.Decision, l.Capabilities = &dec, d.Capabilities
		// d.Extraction (PII) is dropped here.
		return l
	}
	l.Kind = subject[strings.LastIndexByte(subject, '.')+1:]
	ev, err := messages.DecodeEvent(data)
	if err != nil {
		l.Malformed = strings.TrimPrefix(err.Error(), "messages: ")
		return l
	}
	l.Kind = ev.Kind
	l.JobID = cmp.Or(l.JobID, ev.JobID)
	l.Region, l.AccountID, l.WorkflowExecutionID = ev.Region, ev.AccountID, ev.WorkflowExecutionID
	l.CustomerInternalReference, l.Error = ev.CustomerInternalReference, ev.Error
	if ev.Web != nil && ev.Web.Href != "" {
		l.WebLink = "present"
	}
	if ev.SDK != nil && ev.SDK.Token != "" {
		l.SDKToken = "present"
	}
	return l
}

// detail is the free-text column of an event.
func (l eventLine) detail() string {
	if l.Malformed != "" {
		return "undecodable: " + l.Malformed
	}
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	if d := l.Decision; d != nil {
		parts = append(parts, d.Type)
		add("label", d.Label)
		if d.RiskScore != nil {
			add("risk", fmt.Sprintf("%g", *d.RiskScore))
		}
		add("status", l.Status)
	}
	add("stage", l.Stage)
	if l.Error != nil {
		msg := l.Error.Code + ": " + truncate(l.Error.Message, 100)
		if l.Error.Status != 0 {
			msg += fmt.Sprintf(" (HTTP %d)", l.Error.Status)
		}
		parts = append(parts, msg)
	}
	if l.WebLink != "" {
		parts = append(parts, "web link: present")
	}
	if l.SDKToken != "" {
		parts = append(parts, "sdk token: present")
	}
	add("account", l.AccountID)
	add("execution", l.WorkflowExecutionID)
	add("ref", l.CustomerInternalReference)
	return strings.Join(parts, " ")
}

// scanResult says how much of a stream a scan read.
type scanResult struct {
	Scanned   int  `json:"scanned"`
	Truncated bool `json:"truncated,omitempty"` // stopped at the limit before the end
}

// scanStream reads the messages of stream matching filters, stored from
// from on (until, when set, ends the scan at the first message stored after
// it), with an ordered consumer, and calls fn for each. It reads at most
// limit messages and never waits for new ones.
func scanStream(ctx context.Context, js jetstream.JetStream, stream string, filters []string, from, until time.Time, limit int,
	fn func(m jetstream.Msg, md *jetstream.MsgMetadata)) (scanResult, error) {
	var res scanResult
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, InactiveThreshold: ephemeralIdle}
	if !from.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", stream, err)
	}
	defer removeOrdered(ctx, js, stream, cons)
	for {
		want := 256
		if limit > 0 {
			want = min(want, limit-res.Scanned)
		}
		batch, err := cons.FetchNoWait(want)
		if err != nil {
			return res, fmt.Errorf("read %s: %w", stream, err)
		}
		n := 0
		var pending uint64
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			if !until.IsZero() && md.Timestamp.After(until) {
				return res, nil
			}
			res.Scanned++
			fn(m, md)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return res, fmt.Errorf("read %s: %w", stream, err)
		}
		if n == 0 || pending == 0 {
			return res, nil
		}
		if limit > 0 && res.Scanned >= limit {
			res.Truncated = true
			return res, nil
		}
	}
}

// ephemeralIdle is how long the server keeps kycctl's ordered consumers
// after kycctl stopped reading (a killed kycctl leaves nothing for long).
const ephemeralIdle = 30 * time.Second

// removeOrdered deletes an ordered consumer's server-side consumer at once
// (best effort; the idle threshold removes it anyway).
func removeOrdered(ctx context.Context, js jetstream.JetStream, stream string, cons jetstream.Consumer) {
	if ci := cons.CachedInfo(); ci != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = js.DeleteConsumer(dctx, stream, ci.Name)
		cancel()
	}
}
