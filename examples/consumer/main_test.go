package main

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// The example consumer receives the decision of a submitted job once, and
// a handler failure is retried.
func TestConsumerExample(t *testing.T) {
	s, err := localstack.Start(context.Background(), localstack.Options{DataDir: t.TempDir(), Workers: 1, Retrievers: 1, Logger: pipelinetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	var mu sync.Mutex
	got := map[string]int{}
	failOnce := true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Consume(ctx, s.JS, s.Topology.Subjects, "test-consumer", func(_ context.Context, ev *messages.DecisionEvent) error {
			mu.Lock()
			defer mu.Unlock()
			if failOnce {
				failOnce = false
				return context.DeadlineExceeded // a transient failure downstream
			}
			got[ev.JobID]++
			return nil
		})
	}()
	req, _ := http.NewRequest(http.MethodPost, s.IngestURL+"/v1/verifications", bytes.NewReader([]byte(
		`{"jobId":"consumer-example-1","customerInternalReference":"c-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"a@example.com"}}`)))
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("submit: %v %v", resp, err)
	}
	resp.Body.Close()
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got["consumer-example-1"] == 1
	}, "the consumer did not handle the decision")
	cancel()
	<-done
}
