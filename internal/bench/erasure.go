package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// ErasureRun is one erasure measurement: Erased jobs erased out of Stored.
type ErasureRun struct {
	Stored, Erased int
	Seed           time.Duration // writing the stored jobs
	Elapsed        time.Duration // first request to last tombstone
	WorkerCPU      time.Duration // the worker's CPU during the erasures
	NATSCPU        time.Duration // nats-server's CPU during the erasures
	RequestCPU     time.Duration // this process's CPU to request them (what ingest does)
}

// PerErasure divides a total by the erasures.
func (e ErasureRun) PerErasure(d time.Duration) time.Duration {
	return d / time.Duration(max(e.Erased, 1))
}

// ErasureResult compares a small store with a large one: without a scan,
// the cost of an erasure does not grow with the store.
type ErasureResult struct {
	Small, Large ErasureRun
}

// erasure measures erasing jobs among many stored ones.
func (b *runner) erasure(ctx context.Context) error {
	small, large, erase := 10_000, 1_000_000, 1000
	if b.o.ErasureStored > 0 {
		small, large, erase = max(b.o.ErasureStored/100, 2*b.o.ErasureCount), b.o.ErasureStored, b.o.ErasureCount
	}
	var err error
	if b.r.Erasure.Small, err = b.erasureRun(ctx, "erasure-small", small, erase); err != nil {
		return err
	}
	b.r.Erasure.Large, err = b.erasureRun(ctx, "erasure-large", large, erase)
	return err
}

func (b *runner) erasureRun(ctx context.Context, name string, stored, erase int) (ErasureRun, error) {
	run := ErasureRun{Stored: stored, Erased: erase}
	s, err := NewStack(ctx, b.binDir, filepath.Join(b.o.WorkDir, name), b.o.NATSEnv)
	if err != nil {
		return run, err
	}
	defer s.Close()
	if err := s.StartSim(ctx); err != nil {
		return run, err
	}
	nc, err := nats.Connect(s.NATSURL)
	if err != nil {
		return run, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return run, err
	}
	topo := pipeline.Topology{Subjects: messages.MustSubjects("")}.WithDefaults()
	if err := pipeline.Provision(ctx, js, topo); err != nil {
		return run, err
	}
	b.o.Logf("seeding %d decided jobs (record, index entry, accepted event, decision)", stored)
	start := time.Now()
	ids, err := SeedJobs(ctx, js, topo, stored)
	if err != nil {
		return run, err
	}
	run.Seed = time.Since(start)
	if err := s.StartStages(ctx, unthrottled, "worker"); err != nil {
		return run, err
	}
	targets := make([]string, 0, erase)
	for _, i := range rand.Perm(len(ids))[:erase] {
		targets = append(targets, ids[i])
	}
	b.o.Logf("erasing %d of %d", erase, stored)
	before := s.Stats()
	selfBefore := selfCPU()
	start = time.Now()
	if err := EraseJobs(ctx, js, topo, targets, 5*time.Minute); err != nil {
		return run, err
	}
	run.Elapsed = time.Since(start)
	after := s.Stats()
	run.WorkerCPU = after["worker"].CPU - before["worker"].CPU
	run.NATSCPU = after["nats"].CPU - before["nats"].CPU
	run.RequestCPU = selfCPU() - selfBefore
	return run, nil
}

// SeedJobs stores n decided jobs the way the pipeline leaves them: a
// record listing its accepted event and decision, both in their streams,
// and an index entry. It writes with asynchronous publishes, in batches.
func SeedJobs(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, n int) ([]string, error) {
	subj := topo.Subjects
	ids := make([]string, 0, n)
	now := time.Now().UTC()
	const batch = 2000
	for done := 0; done < n; done += batch {
		m := min(batch, n-done)
		type pending struct {
			rec           *pipeline.JobRecord
			event, decide jetstream.PubAckFuture
		}
		ps := make([]pending, 0, m)
		for i := range m {
			id := messages.NewJobID(now.Add(time.Duration(done+i) * time.Microsecond))
			rec := &pipeline.JobRecord{JobID: id, Status: pipeline.StatusDecided, Region: messages.RegionAMER, Channel: messages.ChannelAPI,
				CustomerInternalReference: "seed-" + id, AccountID: uuid.NewString(), WorkflowExecutionID: uuid.NewString(),
				CreatedAt: now, UpdatedAt: now, Decision: &messages.DecisionSummary{Type: messages.DecisionPassed, Label: "PASSED"}}
			ev, _ := messages.Marshal(&messages.Event{Kind: messages.KindAccepted, JobID: id, CustomerInternalReference: rec.CustomerInternalReference, At: now})
			dec, _ := messages.Marshal(&messages.DecisionEvent{JobID: id, AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
				CustomerInternalReference: rec.CustomerInternalReference, Status: "PROCESSED", Decision: *rec.Decision, DecidedAt: now})
			fe, err := js.PublishMsgAsync(&nats.Msg{Subject: subj.Event(messages.KindAccepted), Data: ev, Header: nats.Header{messages.HeaderJobID: {id}}})
			if err != nil {
				return nil, err
			}
			fd, err := js.PublishMsgAsync(&nats.Msg{Subject: subj.Decision(messages.DecisionPassed), Data: dec, Header: nats.Header{messages.HeaderJobID: {id}}})
			if err != nil {
				return nil, err
			}
			ps = append(ps, pending{rec: rec, event: fe, decide: fd})
		}
		if err := waitAsync(ctx, js); err != nil {
			return nil, err
		}
		for _, p := range ps {
			ea, da := <-p.event.Ok(), <-p.decide.Ok()
			p.rec.Messages = []pipeline.MessageRef{{Stream: ea.Stream, Seq: ea.Sequence, Kind: "event:accepted"}, {Stream: da.Stream, Seq: da.Sequence, Kind: "decision"}}
			rb, _ := json.Marshal(p.rec)
			if _, err := js.PublishAsync("$KV."+subj.BucketJobs()+".job."+p.rec.JobID, rb); err != nil {
				return nil, err
			}
			ib, _ := json.Marshal(pipeline.IndexEntry{JobID: p.rec.JobID, Status: p.rec.Status, Region: p.rec.Region, Decision: messages.DecisionPassed,
				Channel: p.rec.Channel, CreatedAt: now, UpdatedAt: now})
			if _, err := js.PublishAsync(subj.IndexJob(p.rec.Status, p.rec.Region, messages.DecisionPassed, p.rec.JobID), ib); err != nil {
				return nil, err
			}
			ids = append(ids, p.rec.JobID)
		}
		if err := waitAsync(ctx, js); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func waitAsync(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// EraseJobs requests the erasure of each job, as ingest does, and waits
// until every one is a tombstone.
func EraseJobs(ctx context.Context, js jetstream.JetStream, topo pipeline.Topology, ids []string, timeout time.Duration) error {
	kv, err := js.KeyValue(ctx, topo.Subjects.BucketJobs())
	if err != nil {
		return err
	}
	store := pipeline.NewJobStore(kv, nil)
	for _, id := range ids {
		if _, err := pipeline.RequestErasure(ctx, js, store, topo.Subjects, pipeline.ErasureRequest{JobID: id, Source: messages.ErasureRequest, Actor: "bench"}); err != nil {
			return fmt.Errorf("request erasure of %s: %w", id, err)
		}
	}
	return waitFor(ctx, timeout, func() bool {
		for len(ids) > 0 {
			rec, _, err := store.Get(ctx, ids[0])
			if err != nil || rec.Status != pipeline.StatusErased {
				return false
			}
			ids = ids[1:]
		}
		return true
	})
}
