package kycctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/internal/kycctl"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func run(t *testing.T, s *localstack.Stack, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cli := &kycctl.CLI{Out: &out, Err: &errOut, Getenv: func(k string) string {
		if k == "KYCPIPE_NATS_URL" {
			return s.NATSURL
		}
		return ""
	}}
	err := cli.Run(context.Background(), args)
	return out.String() + errOut.String(), err
}

func TestDLQCommands(t *testing.T) {
	t.Parallel()
	s, err := localstack.Start(context.Background(), localstack.Options{DataDir: t.TempDir(), Workers: 1, Retrievers: 1, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	subj := s.Topology.Subjects
	decisions := pipelinetest.Decisions(t, s.JS, subj)
	dlq := pipelinetest.DeadLetters(t, s.JS, subj)

	s.Sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	body := `{"customerInternalReference":"ctl-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"pii-marker@example.com"}}`
	req, _ := http.NewRequest(http.MethodPost, s.IngestURL+"/v1/verifications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct{ JobID string }
	_ = json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	dlq.WaitN(t, 1, pipelinetest.DefaultTimeout, pipelinetest.ForJob[[]byte](sub.JobID), "dead letter")

	out, err := run(t, s, "dlq", "list")
	if err != nil || !strings.Contains(out, sub.JobID) || !strings.Contains(out, "terminal") || !strings.Contains(out, "SEQ") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	out, err = run(t, s, "dlq", "list", "--json", "--stage", "worker")
	var list []pipeline.DeadLetter
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].JobID != sub.JobID {
		t.Fatalf("dlq list --json: %v\n%s", err, out)
	}
	if out, _ := run(t, s, "dlq", "list", "--stage", "retriever"); !strings.Contains(out, "no dead letters") {
		t.Errorf("filtered list:\n%s", out)
	}
	seq := jsonNumber(list[0].Sequence)
	out, err = run(t, s, "dlq", "show", seq)
	if err != nil || !strings.Contains(out, "400 Bad Request") || strings.Contains(out, "pii-marker") {
		t.Fatalf("dlq show (no payload without --payload): %v\n%s", err, out)
	}
	if out, _ := run(t, s, "dlq", "show", seq, "--payload"); !strings.Contains(out, "pii-marker") {
		t.Errorf("dlq show --payload:\n%s", out)
	}
	if out, _ := run(t, s, "dlq", "replay", "--all", "--dry-run"); !strings.Contains(out, "would replay") {
		t.Errorf("dry run:\n%s", out)
	}
	out, err = run(t, s, "dlq", "replay", seq)
	if err != nil || !strings.Contains(out, "replayed") {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	decisions.WaitN(t, 1, pipelinetest.DefaultTimeout, pipelinetest.ForJob[*messages.DecisionEvent](sub.JobID), "decision after replay")
	if n := s.Sim.Stats().AccountsByReference["ctl-1"]; n != 1 {
		t.Errorf("accounts = %d", n)
	}
	if out, err := run(t, s, "dlq", "replay", seq); err == nil || !strings.Contains(out, "replayed or deleted already") {
		t.Errorf("second replay of the same dead letter: %v\n%s", err, out)
	}
	if _, err := run(t, s, "dlq", "replay"); err == nil {
		t.Error("replay without a target succeeded")
	}
	if _, err := run(t, s, "frobnicate"); err == nil {
		t.Error("unknown command succeeded")
	}
}

func jsonNumber(n uint64) string { b, _ := json.Marshal(n); return string(b) }
