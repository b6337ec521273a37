package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// The dead-letters page: filter by stage and reason, pages of
// dlqPageSize oldest first, each letter's headers and payload (personal
// fields hidden) on its own page, replay of one or a selection.

const dlqPageSize = 100

var (
	dlqStages  = []string{messages.StageIngest, messages.StageWorker, messages.StageRetriever, "notifier"}
	dlqReasons = []string{messages.ReasonTerminal, messages.ReasonPoison, messages.ReasonMaxDeliveries, messages.ReasonRetryBudget, messages.ReasonDeadline, messages.ReasonUnknown}
)

type dlqData struct {
	Stage, Reason string
	After         uint64
	Stages        []string
	Reasons       []string
	Letters       []pipeline.DeadLetter
	Total         uint64
	NextURL       string
	FirstURL      string
	CanReplay     bool
	Err           string
}

type dlqFilter struct {
	stage, reason string
	after         uint64
}

func (f dlqFilter) values() url.Values {
	v := url.Values{}
	if f.stage != "" {
		v.Set("stage", f.stage)
	}
	if f.reason != "" {
		v.Set("reason", f.reason)
	}
	return v
}

func (c *Console) deadLetters(w http.ResponseWriter, q request) {
	qs := q.r.URL.Query()
	f := dlqFilter{stage: qs.Get("stage"), reason: qs.Get("reason")}
	d := &dlqData{Stage: f.stage, Reason: f.reason, Stages: dlqStages, Reasons: dlqReasons, CanReplay: q.viewer(c.cfg.ReadOnly).CanAdmin}
	switch {
	case f.stage != "" && !messages.ValidJobID(f.stage):
		d.Err = "Unknown stage."
	case f.reason != "" && !slices.Contains(dlqReasons, f.reason):
		d.Err = "Unknown reason: use one of the list."
	}
	if s := qs.Get("after"); s != "" && d.Err == "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			d.Err = "Invalid page cursor."
		}
		f.after, d.After = n, n
	}
	if d.Err != "" {
		c.render(w, q, http.StatusBadRequest, "deadletters.html", "Dead letters", "dlq", d, nil)
		return
	}
	letters, last, total, err := c.listDeadLetters(q.r.Context(), f, dlqPageSize)
	if err != nil {
		c.unavailable(w, q.r, "the dead letters", err)
		return
	}
	d.Letters, d.Total = letters, total
	if last != 0 {
		v := f.values()
		v.Set("after", strconv.FormatUint(last, 10))
		d.NextURL = "/console/dead-letters?" + v.Encode()
	}
	if f.after != 0 {
		d.FirstURL = "/console/dead-letters?" + f.values().Encode()
	}
	fl := flashOf(q.r)
	if n, err := strconv.Atoi(qs.Get("replayed")); err == nil {
		failed, _ := strconv.Atoi(qs.Get("failed"))
		fl = &flash{Kind: "ok", Text: fmt.Sprintf("Replayed %d dead letter(s); their jobs resume from their checkpoints.", n)}
		if failed > 0 {
			fl = &flash{Kind: "error", Text: fmt.Sprintf("Replayed %d dead letter(s); %d could not be replayed (see the logs).", n, failed)}
		}
	}
	c.render(w, q, http.StatusOK, "deadletters.html", "Dead letters", "dlq", d, fl)
}

// listDeadLetters reads up to n dead letters matching f after f.after,
// oldest first, and says where the next page starts (0: none) and how many
// the stage's subject holds.
func (c *Console) listDeadLetters(ctx context.Context, f dlqFilter, n int) ([]pipeline.DeadLetter, uint64, uint64, error) {
	filter := c.subj.DLQs()
	if f.stage != "" {
		filter = c.subj.DLQ(f.stage)
	}
	st, err := c.js.Stream(ctx, c.subj.StreamDLQ())
	if err != nil {
		return nil, 0, 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return nil, 0, 0, err
	}
	var total uint64
	for _, m := range info.State.Subjects {
		total += m
	}
	if total == 0 || f.after >= info.State.LastSeq {
		return nil, 0, total, nil
	}
	cons, err := c.js.OrderedConsumer(ctx, c.subj.StreamDLQ(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: f.after + 1, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return nil, 0, 0, err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = c.js.DeleteConsumer(dctx, c.subj.StreamDLQ(), ci.Name)
			cancel()
		}
	}()
	var out []pipeline.DeadLetter
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return nil, 0, 0, err
		}
		got := 0
		var pending uint64
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			if len(out) == n {
				return out, out[n-1].Sequence, total, nil
			}
			dl := deadLetterOf(md, m)
			if f.reason == "" || dl.Reason == f.reason {
				out = append(out, dl)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, 0, 0, err
		}
		if got == 0 || pending == 0 {
			return out, 0, total, nil
		}
	}
}

func deadLetterOf(md *jetstream.MsgMetadata, m jetstream.Msg) pipeline.DeadLetter {
	h := m.Headers()
	dl := pipeline.DeadLetter{Sequence: md.Sequence.Stream, Subject: m.Subject(), Time: md.Timestamp, Header: h,
		Stage: h.Get(messages.HeaderStage), Reason: h.Get(messages.HeaderReason), Error: h.Get(messages.HeaderError),
		JobID: h.Get(messages.HeaderJobID), OriginalSubject: h.Get(messages.HeaderOriginalSubject), OriginalStream: h.Get(messages.HeaderOriginalStream)}
	dl.Deliveries, _ = strconv.Atoi(h.Get(messages.HeaderDeliveries))
	return dl
}

type dlqLetterData struct {
	DL        *pipeline.DeadLetter
	Headers   []headerRow
	Payload   maskedPayload
	CanReplay bool
}

type headerRow struct{ Name, Value string }

func (c *Console) deadLetter(w http.ResponseWriter, q request) {
	seq, err := strconv.ParseUint(q.r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such dead letter.")
		return
	}
	dl, err := pipeline.GetDeadLetter(q.r.Context(), c.js, c.subj, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such dead letter (replayed or deleted already, or past the stream's retention).")
		return
	}
	if err != nil {
		c.unavailable(w, q.r, "the dead letter", err)
		return
	}
	d := &dlqLetterData{DL: dl, Payload: maskPayload(dl.Data), CanReplay: q.viewer(c.cfg.ReadOnly).CanAdmin}
	var names []string
	for k := range dl.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range dl.Header[k] {
			d.Headers = append(d.Headers, headerRow{Name: k, Value: v})
		}
	}
	c.render(w, q, http.StatusOK, "deadletter.html", fmt.Sprintf("Dead letter %d", seq), "dlq", d, nil)
}

// replayDeadLetters replays the dead letters selected in the form.
func (c *Console) replayDeadLetters(w http.ResponseWriter, q request) {
	var seqs []uint64
	for _, s := range q.r.PostForm["seq"] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			c.errorPage(w, q.r, http.StatusBadRequest, "The selection is invalid.")
			return
		}
		if !slices.Contains(seqs, n) {
			seqs = append(seqs, n)
		}
	}
	if len(seqs) == 0 {
		c.errorPage(w, q.r, http.StatusBadRequest, "Select the dead letters to replay.")
		return
	}
	if len(seqs) > dlqPageSize {
		c.errorPage(w, q.r, http.StatusBadRequest, fmt.Sprintf("Replay at most %d dead letters at once.", dlqPageSize))
		return
	}
	replayed, failed := 0, 0
	for _, seq := range seqs {
		res, err := pipeline.ReplayDeadLetter(q.r.Context(), c.js, c.subj, seq, c.cfg.ReplayDeadline)
		if err != nil {
			failed++
			c.log.Warn("console: replay failed", zap.Uint64("seq", seq), zap.Error(err))
			continue
		}
		replayed++
		c.log.Info("console: dead letter replayed", zap.Uint64("seq", seq), zap.String("job_id", res.JobID), zap.Bool("duplicate", res.Duplicate), zap.String("key", q.sess.principal.Name))
	}
	v := url.Values{}
	for _, k := range []string{"stage", "reason"} {
		if s := q.r.PostFormValue(k); s != "" && (k != "reason" || slices.Contains(dlqReasons, s)) && (k != "stage" || messages.ValidJobID(s)) {
			v.Set(k, s)
		}
	}
	v.Set("replayed", strconv.Itoa(replayed))
	v.Set("failed", strconv.Itoa(failed))
	if q.r.PostFormValue("from") == "letter" && len(seqs) == 1 && failed == 0 {
		if res := q.r.PostFormValue("job"); messages.ValidJobID(res) {
			http.Redirect(w, q.r, "/console/jobs/"+res+"?done=replayed", http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, q.r, "/console/dead-letters?"+v.Encode(), http.StatusSeeOther)
}
