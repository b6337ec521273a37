package pipeline

import (
	"context"
	"errors"
	"net/http"
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
// shape, publishes it on kyc.callbacks.<region> (deduplicated) and answers
// 200 at once. The callback only triggers a retrieval.
func (in *Ingest) callback(w http.ResponseWriter, r *http.Request) {
	cc := in.cfg.Callbacks
	src, ok := clientAddr(r, cc.TrustedProxies)
	if len(cc.Allowlist) > 0 && (!ok || !containsAddr(cc.Allowlist, src)) {
		in.m.callback("refused")
		in.log.Warn("callback from an address outside the allowlist refused", zap.String("source", src.String()))
		writeProblem(w, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: "callbacks are accepted from Jumio's addresses only"})
		return
	}
	if !in.cbLimit.allow(in.now()) {
		in.m.callback("rate_limited")
		w.Header().Set("Retry-After", "1")
		writeProblem(w, Problem{Type: ProblemTooManyRequests, Status: http.StatusTooManyRequests, Detail: "too many callbacks"})
		return
	}
	cb, err := jumio.ParseCallback(http.MaxBytesReader(w, r.Body, jumio.MaxCallbackSize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "callbacks are limited to 64 KiB"})
		return
	}
	if err != nil {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: publicDetail(err, "cannot read the callback")})
		return
	}
	region := callbackRegion(r, cb, in.cfg.DefaultRegion)
	// The callback is only a trigger: the retriever needs its IDs and
	// status, never the userReference (a job's personal reference), which is
	// not stored (data minimization; nothing to erase later).
	cb.UserReference = ""
	msg := &messages.CallbackReceived{
		Region: string(region), ReceivedAt: in.now().UTC(),
		SourceIP: src.String(), Callback: *cb,
	}
	if j := r.URL.Query().Get("job"); messages.ValidJobID(j) {
		msg.JobID = j
	}
	id := "cb:" + cb.WorkflowExecution.ID + ":" + cb.WorkflowExecution.Status + ":" + cb.CallbackSentAt
	o, err := newOutMsg(in.subj.Callback(string(region)), msg, id, msg.JobID)
	var ack *jetstream.PubAck
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), in.cfg.PublishTimeout)
		ack, err = publish(ctx, in.js, o)
		cancel()
	}
	if err != nil {
		in.m.callback("unavailable")
		in.log.Warn("cannot publish callback; Jumio may resend, and polling covers a lost one",
			accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot store the callback now")
		return
	}
	result := "published"
	if ack.Duplicate {
		result = "duplicate"
	}
	in.m.callback(result)
	in.log.Debug("callback received", accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID),
		zap.String("callback_status", cb.WorkflowExecution.Status), zap.String("result", result))
	writeJSON(w, http.StatusOK, map[string]string{"status": "received"})
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
