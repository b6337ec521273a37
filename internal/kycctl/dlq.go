package kycctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func dlqFilterFlags(o *opts, s *config.Set) {
	s.String(&o.stage, "stage", "", "", "only dead letters of this stage (worker, retriever, notifier)")
	s.String(&o.reason, "reason", "", "", "only this reason (terminal, poison, max_deliveries, retry_budget, deadline, unknown_execution)")
	s.String(&o.job, "job", "", "", "only this job ID")
	s.Duration(&o.since, "since", "", 0, "only dead letters younger than this (e.g. 24h)")
	s.Int(&o.limit, "limit", "", 0, "at most this many")
}

func dlqListCommand() command {
	return command{
		name: "dlq list", synopsis: "[--stage S] [--reason R] [--job ID] [--since 24h] [--limit N]",
		summary: "list dead letters (oldest first)",
		help:    "Columns: SEQ (sequence in the dead-letter stream, for dlq show and dlq replay), TIME, STAGE, REASON, JOB, DELIVERIES, ERROR.",
		flags:   dlqFilterFlags,
		run:     dlqList,
	}
}

func dlqShowCommand() command {
	return command{
		name: "dlq show", synopsis: "SEQ [--payload]",
		summary: "one dead letter with its headers (--payload also prints the original message: it may hold PII)",
		flags: func(o *opts, s *config.Set) {
			s.Bool(&o.payload, "payload", "", false, "also print the original payload (may hold PII)")
		},
		run: dlqShow,
	}
}

func dlqReplayCommand() command {
	return command{
		name: "dlq replay", synopsis: "(SEQ… | --all | --stage S --reason R --job ID --since D) [--dry-run]",
		summary: "put dead letters back into the pipeline",
		help: `The job's record goes from FAILED back to the status its checkpoint reached, with a fresh retry
budget; the original message is republished on its original subject (deduplicated: two operators
replaying the same dead letter produce one message) and the dead letter is removed. A replayed job
never creates a second Jumio account or finalizes twice. A notifier dead letter is one webhook
delivery: replaying it sends it again with the same webhook-id and a fresh retry schedule, and leaves
its job as it is.`,
		flags: func(o *opts, s *config.Set) {
			dlqFilterFlags(o, s)
			s.Bool(&o.all, "all", "", false, "replay every dead letter matching the filters")
			s.Bool(&o.dryRun, "dry-run", "", false, "show what would be replayed")
			s.Duration(&o.pollDeadline, "poll-deadline", "", time.Hour, "new deadline of replayed retrieval tasks")
		},
		run: dlqReplay,
	}
}

func (o *opts) filter() pipeline.DLQFilter {
	f := pipeline.DLQFilter{Stage: o.stage, Reason: o.reason, JobID: o.job, Limit: o.limit}
	if o.since > 0 {
		f.Since = time.Now().Add(-o.since)
	}
	return f
}

func dlqList(ctx context.Context, e *env) error {
	if err := e.connect(); err != nil {
		return err
	}
	list, err := pipeline.ListDeadLetters(ctx, e.js, e.subj, e.o.filter())
	if err != nil {
		return err
	}
	if list == nil {
		list = []pipeline.DeadLetter{}
	}
	return e.emit(list, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SEQ\tTIME\tSTAGE\tREASON\tJOB\tDELIVERIES\tERROR")
		for _, dl := range list {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", dl.Sequence, ts(dl.Time), dl.Stage, dl.Reason,
				orDash(dl.JobID), dl.Deliveries, truncate(dl.Error, 80))
		}
		if len(list) == 0 {
			fmt.Fprintln(w, "(no dead letters)")
		}
	})
}

func dlqShow(ctx context.Context, e *env) error {
	x := e.o
	if len(x.positional) != 1 {
		return errors.New("usage: kycctl dlq show SEQ [--payload]")
	}
	seq, err := strconv.ParseUint(x.positional[0], 10, 64)
	if err != nil {
		return fmt.Errorf("SEQ must be a number: %q", x.positional[0])
	}
	if err := e.connect(); err != nil {
		return err
	}
	dl, err := pipeline.GetDeadLetter(ctx, e.js, e.subj, seq)
	if err != nil {
		return err
	}
	type shown struct {
		pipeline.DeadLetter
		Headers map[string]string `json:"headers"`
		Payload json.RawMessage   `json:"payload,omitempty"`
	}
	s := shown{DeadLetter: *dl, Headers: map[string]string{}}
	for k := range dl.Header {
		s.Headers[k] = dl.Header.Get(k)
	}
	if x.payload {
		if json.Valid(dl.Data) {
			s.Payload = dl.Data
		} else {
			s.Payload, _ = json.Marshal(string(dl.Data))
		}
	}
	return e.emit(s, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "sequence\t%d\ntime\t%s\nstage\t%s\nreason\t%s\nerror\t%s\ndeliveries\t%d\njob\t%s\noriginal subject\t%s\noriginal stream\t%s #%d\n",
			dl.Sequence, ts(dl.Time), dl.Stage, dl.Reason, dl.Error, dl.Deliveries, orDash(dl.JobID),
			dl.OriginalSubject, dl.OriginalStream, dl.OriginalSequence)
		for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
			fmt.Fprintf(w, "header %s\t%s\n", k, s.Headers[k])
		}
		if x.payload {
			fmt.Fprintf(w, "payload\t%s\n", dl.Data)
		} else {
			fmt.Fprintf(w, "payload\t%d bytes (--payload to print; it may hold PII)\n", len(dl.Data))
		}
	})
}

func dlqReplay(ctx context.Context, e *env) error {
	x := e.o
	var seqs []uint64
	for _, p := range x.positional {
		seq, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return fmt.Errorf("SEQ must be a number: %q", p)
		}
		seqs = append(seqs, seq)
	}
	f := x.filter()
	filtered := f.Stage != "" || f.Reason != "" || f.JobID != "" || !f.Since.IsZero()
	switch {
	case len(seqs) > 0 && (x.all || filtered):
		return errors.New("give sequences, or --all / filters, not both")
	case len(seqs) == 0 && !x.all && !filtered:
		return errors.New("say what to replay: SEQ…, --all, or filters (--stage, --reason, --job, --since)")
	}
	if err := e.connect(); err != nil {
		return err
	}
	if len(seqs) == 0 {
		list, err := pipeline.ListDeadLetters(ctx, e.js, e.subj, f)
		if err != nil {
			return err
		}
		for _, dl := range list {
			seqs = append(seqs, dl.Sequence)
		}
	}
	type row struct {
		Sequence uint64 `json:"sequence"`
		JobID    string `json:"jobId,omitempty"`
		Subject  string `json:"subject,omitempty"`
		Result   string `json:"result"`
	}
	var rows []row
	var failed int
	for _, seq := range seqs {
		if x.dryRun {
			dl, err := pipeline.GetDeadLetter(ctx, e.js, e.subj, seq)
			if err != nil {
				rows = append(rows, row{Sequence: seq, Result: "error: " + err.Error()})
				failed++
				continue
			}
			rows = append(rows, row{Sequence: seq, JobID: dl.JobID, Subject: dl.OriginalSubject, Result: "would replay"})
			continue
		}
		res, err := pipeline.ReplayDeadLetter(ctx, e.js, e.subj, seq, x.pollDeadline)
		if err != nil {
			rows = append(rows, row{Sequence: seq, Result: "error: " + err.Error()})
			failed++
			continue
		}
		result := "replayed"
		if res.Duplicate {
			result = "already replayed"
		}
		rows = append(rows, row{Sequence: seq, JobID: res.JobID, Subject: res.Subject, Result: result})
	}
	if rows == nil {
		rows = []row{}
	}
	err := e.emit(rows, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SEQ\tJOB\tSUBJECT\tRESULT")
		for _, r := range rows {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", r.Sequence, orDash(r.JobID), r.Subject, r.Result)
		}
		if len(rows) == 0 {
			fmt.Fprintln(w, "(nothing to replay)")
		}
	})
	if err == nil && failed > 0 {
		err = fmt.Errorf("%d of %d replays failed", failed, len(rows))
	}
	return err
}
