// Package kycctl is kycpipe's operator command line: where is a job, what
// is stuck, and what to do with dead letters. cmd/kycctl is its thin main.
package kycctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// CLI runs commands. Out and Err receive the output.
type CLI struct {
	Out, Err io.Writer
	Getenv   func(string) string
}

// command is one subcommand.
type command struct {
	name, usage string
	run         func(ctx context.Context, e *env, x *extraFlags) error
}

// env is what a command needs: the connection and the output.
type env struct {
	out    io.Writer
	json   bool
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   messages.Subjects
	topo   pipeline.Topology
	common service.Common
}

func (c *CLI) commands() []command {
	return []command{
		{"dlq list", "dlq list [--stage S] [--reason R] [--job ID] [--since 24h] [--limit N]   list dead letters", dlqList},
		{"dlq show", "dlq show SEQ [--payload]                                               one dead letter (--payload prints the original message: it may hold PII)", dlqShow},
		{"dlq replay", "dlq replay (SEQ… | --all | --stage S --reason R --job ID --since D) [--dry-run]   put dead letters back", dlqReplay},
	}
}

// Run executes args (e.g. ["dlq", "list", "--json"]).
func (c *CLI) Run(ctx context.Context, args []string) error {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.usage(c.Out)
		return nil
	}
	for _, cmd := range c.commands() {
		words := strings.Fields(cmd.name)
		if len(args) < len(words) || strings.Join(args[:len(words)], " ") != cmd.name {
			continue
		}
		return c.exec(ctx, cmd, args[len(words):])
	}
	c.usage(c.Err)
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

func (c *CLI) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: kycctl COMMAND [flags]   (connection flags: --nats-url etc.; --json for machine-readable output)")
	fmt.Fprintln(w)
	for _, cmd := range c.commands() {
		fmt.Fprintln(w, "  kycctl "+cmd.usage)
	}
}

// exec parses the shared flags (NATS connection, --json) and runs cmd.
func (c *CLI) exec(ctx context.Context, cmd command, args []string) error {
	e := &env{out: c.Out}
	set := config.New("kycctl "+cmd.name, c.Getenv)
	e.common.Bind(set)
	set.Bool(&e.json, "json", "", false, "machine-readable JSON output")
	fs := set.FlagSet()
	fs.SetOutput(c.Err)
	// Flags may follow positional arguments: split them.
	var positional, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && i+1 < len(args) && !isBoolFlag(name) && !strings.HasPrefix(args[i+1], "-") {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	extra := newFlags(fs)
	if err := set.Parse(flags); err != nil {
		return err
	}
	e.common.LogLevel = "error"
	log := zap.NewNop()
	nc, js, err := e.common.Connect("kycctl", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	e.nc, e.js = nc, js
	e.topo = e.common.Topology()
	e.subj = e.topo.Subjects
	extra.positional = positional
	return cmd.run(ctx, e, extra)
}

// The commands' own flags are declared on the shared flag set up front, so
// that one parse handles everything.
type extraFlags struct {
	stage, reason, job string
	since              time.Duration
	limit              int
	all, dryRun        bool
	payload            bool
	deadline           time.Duration
	positional         []string
}

func newFlags(fs *flag.FlagSet) *extraFlags {
	x := &extraFlags{}
	fs.StringVar(&x.stage, "stage", "", "only dead letters of this stage (worker, retriever)")
	fs.StringVar(&x.reason, "reason", "", "only this reason (terminal, poison, max_deliveries, retry_budget, deadline, unknown_execution)")
	fs.StringVar(&x.job, "job", "", "only this job ID")
	fs.DurationVar(&x.since, "since", 0, "only dead letters younger than this (e.g. 24h)")
	fs.IntVar(&x.limit, "limit", 0, "at most this many")
	fs.BoolVar(&x.all, "all", false, "replay every dead letter matching the filters")
	fs.BoolVar(&x.dryRun, "dry-run", false, "show what would be replayed")
	fs.BoolVar(&x.payload, "payload", false, "also print the original payload (may hold PII)")
	fs.DurationVar(&x.deadline, "poll-deadline", time.Hour, "new deadline of replayed retrieval tasks")
	return x
}

func isBoolFlag(name string) bool {
	switch name {
	case "json", "all", "dry-run", "payload", "provision", "insecure-no-auth":
		return true
	}
	return false
}

func (x *extraFlags) filter() pipeline.DLQFilter {
	f := pipeline.DLQFilter{Stage: x.stage, Reason: x.reason, JobID: x.job, Limit: x.limit}
	if x.since > 0 {
		f.Since = time.Now().Add(-x.since)
	}
	return f
}

func (e *env) emit(v any, table func(w *tabwriter.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func dlqList(ctx context.Context, e *env, x *extraFlags) error {
	list, err := pipeline.ListDeadLetters(ctx, e.js, e.subj, x.filter())
	if err != nil {
		return err
	}
	if list == nil {
		list = []pipeline.DeadLetter{}
	}
	return e.emit(list, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "SEQ\tTIME\tSTAGE\tREASON\tJOB\tDELIVERIES\tERROR")
		for _, dl := range list {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", dl.Sequence, dl.Time.UTC().Format(time.RFC3339), dl.Stage, dl.Reason,
				orDash(dl.JobID), dl.Deliveries, truncate(dl.Error, 80))
		}
		if len(list) == 0 {
			fmt.Fprintln(w, "(no dead letters)")
		}
	})
}

func dlqShow(ctx context.Context, e *env, x *extraFlags) error {
	if len(x.positional) != 1 {
		return errors.New("usage: kycctl dlq show SEQ [--payload]")
	}
	seq, err := strconv.ParseUint(x.positional[0], 10, 64)
	if err != nil {
		return fmt.Errorf("SEQ must be a number: %q", x.positional[0])
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
			dl.Sequence, dl.Time.UTC().Format(time.RFC3339), dl.Stage, dl.Reason, dl.Error, dl.Deliveries, orDash(dl.JobID),
			dl.OriginalSubject, dl.OriginalStream, dl.OriginalSequence)
		keys := make([]string, 0, len(s.Headers))
		for k := range s.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "header %s\t%s\n", k, s.Headers[k])
		}
		if x.payload {
			fmt.Fprintf(w, "payload\t%s\n", dl.Data)
		} else {
			fmt.Fprintf(w, "payload\t%d bytes (--payload to print; it may hold PII)\n", len(dl.Data))
		}
	})
}

func dlqReplay(ctx context.Context, e *env, x *extraFlags) error {
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
	case len(seqs) == 0:
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
		res, err := pipeline.ReplayDeadLetter(ctx, e.js, e.subj, seq, x.deadline)
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
