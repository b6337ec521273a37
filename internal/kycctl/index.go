package kycctl

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

func indexBackfillCommand() command {
	return command{
		name: "index backfill", synopsis: "[--timeout 30m]",
		summary: "index the job records that have no job-index entry (after upgrading from 9aa777e)",
		help: `The job index (stream KYC_INDEX) lists jobs for kycctl jobs, the console and the retention
sweep. Releases before it (9aa777e) wrote no entries: after upgrading from one, run this once, when
no old process is left. It reads every job record (a one-off cost: about one read per record) and
publishes the entry and the reference entries of each record that has none under its current
state; erasing and erased jobs are left to the eraser. It is safe to repeat and to run beside the
services: a subject that holds an entry gets no second one. Give it a --timeout that fits the
number of records (30 s is the default of every command).

Prints how many records it read, indexed now, found indexed already, and skipped.`,
		run: indexBackfill,
	}
}

func indexBackfill(ctx context.Context, e *env) error {
	if err := e.connect(); err != nil {
		return err
	}
	idx, err := pipeline.NewJobIndex(ctx, e.js, e.topo)
	if err != nil {
		return err
	}
	res, err := idx.Backfill(ctx, func(r pipeline.BackfillResult) {
		if !e.json {
			fmt.Fprintf(e.errOut, "%d records read, %d indexed so far\n", r.Records, r.Indexed)
		}
	})
	if err != nil {
		return fmt.Errorf("backfill stopped after %d records (%d indexed; run it again to go on): %w", res.Records, res.Indexed, err)
	}
	return e.emit(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%d job records read: %d indexed now (%d reference entries), %d indexed already, %d skipped (erasing or erased)\n",
			res.Records, res.Indexed, res.References, res.Present, res.Skipped)
	})
}
