package pipeline_test

import (
	"testing"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

func TestAPIPreparedDataFlow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	jobID := b.submit(t, emailJob("order-api-1"), 202, nil)

	dec := b.waitDecision(t, jobID)
	if dec.Decision.Type != messages.DecisionPassed || dec.WorkflowDefinitionKey != "10066" || dec.CustomerInternalReference != "order-api-1" {
		t.Errorf("decision = %+v", dec)
	}
	if got := dec.Capabilities["emailVerification"]; len(got) != 1 {
		t.Errorf("capabilities = %+v", dec.Capabilities)
	}
	st := b.sim.Stats()
	if st.AccountsByReference["order-api-1"] != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
		t.Errorf("jumio: accounts=%v finalizes=%v", st.AccountsByReference, st.FinalizesByExecution)
	}
	pipelinetest.Eventually(t, waitLong, func() bool { return b.job(t, jobID).Status == pipeline.StatusDecided }, "job not DECIDED")
	v := b.job(t, jobID)
	if v.Decision == nil || v.Decision.Type != messages.DecisionPassed || v.AccountID != dec.AccountID {
		t.Errorf("job view = %+v", v)
	}
	evs := b.events.WaitN(t, 2, waitLong, pipelinetest.ForJob[*messages.Event](jobID), "events")
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Value.Kind]++
	}
	if kinds[messages.KindAccepted] != 1 || kinds[messages.KindFinalized] != 1 {
		t.Errorf("events = %v", kinds)
	}
}
