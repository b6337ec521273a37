package kycctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func eraseCommand() command {
	return command{
		name: "erase", synopsis: "(JOB_ID… | --older-than D | --file IDS) [--wait] [--actor NAME] [--dry-run]",
		summary: "erase jobs and every copy of their personal data, here and at Jumio",
		help: `Queues the erasure of each job (DESIGN 3.7), as DELETE /v1/verifications/{jobId} does: a worker
removes the job record, images, every message about the job and its index entries, and deletes the
account the job created at Jumio (or, on an existing account, the job's workflow execution). The
audit record names --actor (default kycctl/<your user name>).

--older-than D selects the jobs that ended (DECIDED or FAILED) more than D ago; --file reads job IDs,
one per line (# comments). --wait waits until every erasure is done (or --timeout).

Columns: JOB, STATUS (ERASING: queued; ERASED: done; UNKNOWN: no such job), JUMIO (once done).`,
		flags: func(o *opts, s *config.Set) {
			s.Duration(&o.olderThan, "older-than", "", 0, "erase every job that ended longer ago than this (e.g. 720h)")
			s.String(&o.file, "file", "", "", "file of job IDs to erase, one per line")
			s.Bool(&o.wait, "wait", "", false, "wait until the erasures are done")
			s.String(&o.actor, "actor", "", "", "who asks, for the audit record (default kycctl/<user>)")
			s.Bool(&o.dryRun, "dry-run", "", false, "list the jobs that would be erased")
			s.Int(&o.limit, "limit", "", 1000, "with --older-than: at most this many")
		},
		run: erase,
	}
}

type eraseRow struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`
	Jumio  string `json:"jumio,omitempty"`
}

func erase(ctx context.Context, e *env) error {
	if err := e.connect(); err != nil {
		return err
	}
	ids, err := e.eraseTargets(ctx)
	if err != nil {
		return err
	}
	store, err := e.jobStore(ctx)
	if err != nil {
		return err
	}
	actor := e.o.actor
	if actor == "" {
		actor = "kycctl"
		if u, err := user.Current(); err == nil && u.Username != "" {
			actor += "/" + u.Username
		}
	}
	rows := make([]eraseRow, 0, len(ids))
	for _, id := range ids {
		if !messages.ValidJobID(id) {
			return fmt.Errorf("%q is not a job ID", id)
		}
		if e.o.dryRun {
			rows = append(rows, eraseRow{JobID: id, Status: "WOULD_ERASE"})
			continue
		}
		rec, err := pipeline.RequestErasure(ctx, e.js, store, e.subj, pipeline.ErasureRequest{JobID: id, Source: messages.ErasureRequest, Actor: actor})
		switch {
		case errors.Is(err, pipeline.ErrJobNotFound):
			rows = append(rows, eraseRow{JobID: id, Status: "UNKNOWN"})
		case err != nil:
			return fmt.Errorf("erase %s: %w", id, err)
		default:
			rows = append(rows, eraseRow{JobID: id, Status: rec.Status})
		}
	}
	if e.o.wait && !e.o.dryRun {
		for i := range rows {
			if rows[i].Status != pipeline.StatusErasing {
				continue
			}
			if err := waitErased(ctx, store, &rows[i]); err != nil {
				return err
			}
		}
	}
	for i := range rows {
		if rows[i].Status == pipeline.StatusErased && rows[i].Jumio == "" {
			if rec, _, err := store.Get(ctx, rows[i].JobID); err == nil && rec.Erasure != nil {
				rows[i].Jumio = rec.Erasure.Jumio
			}
		}
	}
	return e.emit(rows, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "JOB\tSTATUS\tJUMIO")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\n", r.JobID, r.Status, dash(r.Jumio))
		}
	})
}

// eraseTargets are the job IDs the command names.
func (e *env) eraseTargets(ctx context.Context) ([]string, error) {
	ids := append([]string(nil), e.o.positional...)
	if e.o.file != "" {
		f, err := os.Open(e.o.file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				ids = append(ids, line)
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	if e.o.olderThan > 0 {
		idx, err := pipeline.NewJobIndex(ctx, e.js, e.topo)
		if err != nil {
			return nil, err
		}
		recs, err := idx.Ended(ctx, time.Now().Add(-e.o.olderThan), e.o.limit)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			ids = append(ids, r.JobID)
		}
	}
	if len(ids) == 0 && e.o.olderThan == 0 {
		return nil, errors.New("name the jobs to erase: JOB_ID…, --older-than D or --file IDS")
	}
	return ids, nil
}

func waitErased(ctx context.Context, store *pipeline.JobStore, row *eraseRow) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		rec, _, err := store.Get(ctx, row.JobID)
		if err == nil && rec.Status == pipeline.StatusErased {
			row.Status = rec.Status
			if rec.Erasure != nil {
				row.Jumio = rec.Erasure.Jumio
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("erasure of %s not done yet (it goes on): %w", row.JobID, ctx.Err())
		case <-t.C:
		}
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func auditCommand() command {
	return command{
		name: "audit", synopsis: "[--job ID] [--action erasure|reveal] [--since 720h] [--limit N]",
		summary: "list the audit trail: erasures and reveals, who and when (no personal data)",
		help: `Reads the KYC_AUDIT stream (kyc.audit.<action>), oldest first. Every erasure (API, console, kycctl,
retention) and every reveal of personal data in the console appends a record naming the job, the
actor (the API key's NAME, kycctl/<user> or retention) and the times; erasures also say what was
removed and what happened at Jumio.

Columns: TIME, ACTION, JOB, ACTOR, SOURCE, JUMIO, REMOVED (messages/images/KV revisions).`,
		flags: func(o *opts, s *config.Set) {
			s.String(&o.job, "job", "", "", "only this job ID")
			s.String(&o.action, "action", "", "", "only this action (erasure, reveal)")
			s.Duration(&o.since, "since", "", 0, "only records younger than this")
			s.Int(&o.limit, "limit", "", 0, "at most this many")
		},
		run: audit,
	}
}

func audit(ctx context.Context, e *env) error {
	if err := e.connect(); err != nil {
		return err
	}
	filter := e.subj.Audits()
	if e.o.action != "" {
		filter = e.subj.Audit(e.o.action)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
	if e.o.since > 0 {
		start := time.Now().Add(-e.o.since)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	st, err := e.js.Stream(ctx, e.subj.StreamAudit())
	if err != nil {
		return fmt.Errorf("audit stream: %w", err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return err
	}
	var recs []*messages.AuditRecord
	if info.State.Msgs > 0 {
		cons, err := e.js.OrderedConsumer(ctx, e.subj.StreamAudit(), cfg)
		if err != nil {
			return err
		}
	read:
		for {
			batch, err := cons.FetchNoWait(256)
			if err != nil {
				return err
			}
			n := 0
			var pending uint64
			for m := range batch.Messages() {
				n++
				if md, err := m.Metadata(); err == nil {
					pending = md.NumPending
				}
				a, err := messages.DecodeAudit(m.Data())
				if err != nil || (e.o.job != "" && a.JobID != e.o.job) {
					continue
				}
				recs = append(recs, a)
				if e.o.limit > 0 && len(recs) >= e.o.limit {
					break read
				}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
				return err
			}
			if n == 0 || pending == 0 {
				break
			}
		}
	}
	return e.emit(recs, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "TIME\tACTION\tJOB\tACTOR\tSOURCE\tJUMIO\tREMOVED")
		for _, a := range recs {
			removed := "-"
			if a.Removed != nil {
				removed = fmt.Sprintf("%d/%d/%d", a.Removed.Messages, a.Removed.Images, a.Removed.KVRevisions)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.At.UTC().Format(time.RFC3339), a.Action, a.JobID, a.Actor,
				dash(a.Source), dash(a.Jumio), removed)
		}
	})
}
