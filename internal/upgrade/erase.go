package upgrade

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// ErasureStats is the erasure phase: finished jobs of every phase erased on
// the new release, through ingest's DELETE.
type ErasureStats struct {
	Requested, Completed int
	ByPhase              map[string]int
	// OnExistingAccount counts erased jobs that ran on an account another
	// job created; OwnersLost counts those whose owner's execution was
	// deleted by the erasure (another job's data: must be 0).
	OnExistingAccount, OwnersLost int
	// AccountDeletes and ExecutionDeletes are the simulator's DELETE calls
	// during the phase.
	AccountDeletes, ExecutionDeletes int
	// Leftover counts messages about erased jobs still in the events,
	// decisions and dead-letter streams (the erased event excepted), by the
	// phase the job ran in.
	Leftover map[string]int
	Slowest  time.Duration
	Errors   []string
}

// eraseSample erases up to n decided jobs of each phase (jobs run on an
// existing account first; never the owner of an account another job ran
// on) and checks what the erasure left.
func (h *harness) eraseSample(ctx context.Context, acc map[string]*acceptedJob, oc *outcomes, n int) (*ErasureStats, error) {
	es := &ErasureStats{ByPhase: map[string]int{}, Leftover: map[string]int{}}
	owners := map[string]bool{}
	for _, j := range acc {
		if j.kind == "existing" {
			owners[j.owner] = true
		}
	}
	byPhase := map[string][]string{}
	for id, j := range acc {
		if oc.decided[id] && !owners[id] {
			byPhase[j.phase] = append(byPhase[j.phase], id)
		}
	}
	kv, err := h.js.KeyValue(ctx, h.subj.BucketJobs())
	if err != nil {
		return nil, err
	}
	store := pipeline.NewJobStore(kv, time.Now)
	var targets []string
	for _, phase := range []string{PhaseOld, PhaseRolling, PhaseMixed, PhaseNew} {
		ids := byPhase[phase]
		sort.Slice(ids, func(a, b int) bool {
			ea, eb := acc[ids[a]].kind == "existing", acc[ids[b]].kind == "existing"
			if ea != eb {
				return ea
			}
			return ids[a] < ids[b]
		})
		targets = append(targets, ids[:min(n, len(ids))]...)
	}
	ownerExec := map[string]string{} // erased job → its owner's execution
	for _, id := range targets {
		if j := acc[id]; j.kind == "existing" {
			rec, _, err := store.Get(ctx, j.owner)
			if err != nil {
				return nil, fmt.Errorf("owner of %s: %w", id, err)
			}
			ownerExec[id] = rec.WorkflowExecutionID
		}
	}
	before := h.sim.Stats()
	client := &http.Client{Timeout: 15 * time.Second}
	erased := map[string]bool{}
	for _, id := range targets {
		j := acc[id]
		es.Requested++
		es.ByPhase[j.phase]++
		start := time.Now()
		if err := h.erase(ctx, client, id); err != nil {
			es.Errors = append(es.Errors, fmt.Sprintf("%s (%s, %s): %v", id, j.kind, j.phase, err))
			continue
		}
		es.Completed++
		erased[id] = true
		es.Slowest = max(es.Slowest, time.Since(start).Round(10*time.Millisecond))
		if exec, ok := ownerExec[id]; ok {
			es.OnExistingAccount++
			if info, ok := h.sim.Execution(exec); !ok || info.Deleted {
				es.OwnersLost++
				es.Errors = append(es.Errors, fmt.Sprintf("erasing %s (on %s's account) deleted %s's execution", id, j.owner, j.owner))
			}
		}
	}
	after := h.sim.Stats()
	es.AccountDeletes = after.Requests[string(jumiotest.RouteDeleteAccount)] - before.Requests[string(jumiotest.RouteDeleteAccount)]
	es.ExecutionDeletes = after.Requests[string(jumiotest.RouteDeleteExecution)] - before.Requests[string(jumiotest.RouteDeleteExecution)]
	for _, stream := range []string{h.subj.StreamEvents(), h.subj.StreamDecisions(), h.subj.StreamDLQ()} {
		if err := readStream(ctx, h.js, stream, func(m *jetstream.RawStreamMsg) {
			job := m.Header.Get(messages.HeaderJobID)
			if erased[job] && m.Subject != h.subj.Event(messages.KindErased) {
				es.Leftover[acc[job].phase]++
			}
		}); err != nil {
			return nil, err
		}
	}
	return es, nil
}

// erase asks ingest to erase a job and waits until it reads ERASED.
func (h *harness) erase(ctx context.Context, client *http.Client, id string) error {
	do := func(method string) (int, []byte, error) {
		req, _ := http.NewRequestWithContext(ctx, method, h.lb.URL+"/v1/verifications/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+h.key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body, err := do(http.MethodDelete)
		if err == nil && (code == http.StatusAccepted || code == http.StatusOK) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("DELETE: %d %s %v", code, body, err)
		}
		if !ctxutil.Sleep(ctx, 500*time.Millisecond) {
			return ctx.Err()
		}
	}
	for {
		code, body, err := do(http.MethodGet)
		if err == nil && code == http.StatusOK {
			var v struct{ Status string }
			if json.Unmarshal(body, &v) == nil && v.Status == pipeline.StatusErased {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not erased in time: GET %d %s %v", code, body, err)
		}
		if !ctxutil.Sleep(ctx, 250*time.Millisecond) {
			return ctx.Err()
		}
	}
}
