package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

func (in *Ingest) callbackBare(w http.ResponseWriter, r *http.Request) {
	if in.cfg.Callbacks.Secret != "" {
		in.m.callback("refused")
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
		return
	}
	in.callback(w, r)
}

func (in *Ingest) callbackWithSecret(w http.ResponseWriter, r *http.Request) {
	s := in.cfg.Callbacks.Secret
	if s == "" || !secretMatches(s, r.PathValue("secret")) {
		in.m.callback("refused")
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
		return
	}
	in.callback(w, r)
}

// callback receives a Jumio callback: it checks where it comes from and its
// shape, and that a job knows its execution and account; then it publishes
// it on kyc.callbacks.<region> (deduplicated on execution and status) and
// answers 200. The callback only triggers a retrieval. A callback for an
// execution no job knows is answered 200 too (the answer reveals nothing)
// but not stored: it is counted, and logged at a bounded rate.
func (in *Ingest) callback(w http.ResponseWriter, r *http.Request) {
	cc := in.cfg.Callbacks
	src, ok := clientAddr(r, cc.TrustedProxies)
	if len(cc.Allowlist) > 0 && (!ok || !containsAddr(cc.Allowlist, src)) {
		in.m.callback("refused")
		in.log.Warn("callback from an address outside the allowlist refused", zap.String("source", src.String()))
		writeProblem(w, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: "callbacks are accepted from Jumio's addresses only"})
		return
	}
	if !in.cbLimit.allow(src, in.now()) {
		in.m.callback("rate_limited")
		w.Header().Set("Retry-After", "1")
		writeProblem(w, Problem{Type: ProblemTooManyRequests, Status: http.StatusTooManyRequests, Detail: "too many callbacks from this address"})
		return
	}
	cb, err := jumio.ParseCallback(http.MaxBytesReader(w, r.Body, jumio.MaxCallbackSize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("callbacks are limited to %d KiB", jumio.MaxCallbackSize>>10)})
		return
	}
	if err != nil {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: publicDetail(err, "cannot read the callback")})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.cfg.PublishTimeout)
	defer cancel()
	// The job ID comes from the job record, never from the request: a
	// client-supplied ?job= would only mislabel what is stored.
	jobID, err := in.knownExecution(ctx, cb)
	if errors.Is(err, ErrJobNotFound) {
		in.unknownCallback(src, cb)
		writeJSON(w, http.StatusOK, map[string]string{"status": "received"})
		return
	}
	var ack *jetstream.PubAck
	if err == nil {
		region := callbackRegion(r, cb, in.cfg.DefaultRegion)
		// The callback is only a trigger: the retriever needs its IDs and
		// status, never the userReference (a job's personal reference), which
		// is not stored (data minimization; nothing to erase later).
		cb.UserReference = ""
		msg := &messages.CallbackReceived{
			Schema: messages.SchemaCallback, Region: string(region), ReceivedAt: in.now().UTC(),
			SourceIP: src.String(), JobID: jobID, Callback: *cb,
		}
		// No Kyc-Job-Id header: a callback's dead letter must never resume
		// a job when it is replayed.
		var o outMsg
		if o, err = newOutMsg(in.subj.Callback(string(region)), msg, messages.CallbackMsgID(cb.WorkflowExecution.ID, cb.WorkflowExecution.Status), ""); err == nil {
			ack, err = publish(ctx, in.js, o)
		}
	}
	if err != nil {
		in.m.callback("unavailable")
		in.log.Warn("cannot store callback; Jumio may resend, and polling covers a lost one",
			accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot store the callback now")
		return
	}
	result := "published"
	if ack.Duplicate {
		result = "duplicate"
	}
	in.m.callback(result)
	in.log.Debug("callback received", jobField(jobID), accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID),
		zap.String("callback_status", cb.WorkflowExecution.Status), zap.String("result", result))
	writeJSON(w, http.StatusOK, map[string]string{"status": "received"})
}

// knownExecution returns the job whose record names the callback's
// workflow execution and account, or ErrJobNotFound. It reads with direct
// gets (any replica) and confirms every "unknown" with the bucket stream's
// leader: after a partition a lagging replica may not have the execution's
// index entry or the record naming it yet, and a genuine callback must not
// be dropped for that.
func (in *Ingest) knownExecution(ctx context.Context, cb *jumio.Callback) (string, error) {
	jobID, err := in.matchExecution(ctx, cb, false)
	if errors.Is(err, ErrJobNotFound) {
		jobID, err = in.matchExecution(ctx, cb, true)
	}
	return jobID, err
}

// matchExecution is knownExecution with one kind of read: from the stream
// leader (latest) or with direct gets.
func (in *Ingest) matchExecution(ctx context.Context, cb *jumio.Callback, latest bool) (string, error) {
	jobID, err := in.store.jobForExecution(ctx, cb.WorkflowExecution.ID, latest)
	if err != nil {
		return "", err
	}
	if !messages.ValidJobID(jobID) {
		return "", ErrJobNotFound
	}
	rec, _, err := in.store.get(ctx, jobID, latest)
	if err != nil {
		return "", err
	}
	if rec.WorkflowExecutionID != cb.WorkflowExecution.ID || rec.AccountID != cb.Account.ID {
		return "", ErrJobNotFound
	}
	return jobID, nil
}

// unknownCallback records a callback for an execution no job knows: a
// count, and a log line with its IDs and source at a bounded rate (the
// lines in between are counted in the next one). Nothing is stored: an
// unauthenticated sender must not be able to fill JetStream.
func (in *Ingest) unknownCallback(src netip.Addr, cb *jumio.Callback) {
	in.m.callback("unknown_execution")
	if !in.cbLog.allow(in.now()) {
		in.cbSuppressed.Add(1)
		return
	}
	in.log.Info("callback for a workflow execution no job knows; not stored",
		executionField(cb.WorkflowExecution.ID), accountField(cb.Account.ID), zap.String("source", src.String()),
		zap.Int64("not_logged_since_last", in.cbSuppressed.Swap(0)))
}

// callbackRegion finds the callback's region: a region query parameter on the
// callback URL, else the region in Jumio's retrieval host
// (retrieval.<region>.jumio.ai), else the default.
func callbackRegion(r *http.Request, cb *jumio.Callback, def jumio.Region) jumio.Region {
	if q := r.URL.Query().Get("region"); q != "" {
		if reg, err := jumio.ParseRegion(q); err == nil {
			return reg
		}
	}
	for _, href := range []string{cb.Account.Href, cb.WorkflowExecution.Href} {
		for _, reg := range jumio.Regions {
			if strings.Contains(href, "."+string(reg)+".jumio.") {
				return reg
			}
		}
	}
	return def
}
