package kycctl_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// kycctl erase queues erasures by ID, from a file and by age, waits for
// them, and kycctl audit lists the records they leave.
func TestEraseAndAudit(t *testing.T) {
	t.Parallel()
	s := startStack(t)
	url := s.NATSURL
	decisions := pipelinetest.Decisions(t, s.JS, s.Topology.Subjects)
	var ids []string
	for _, ref := range []string{"ctl-erase-1", "ctl-erase-2", "ctl-erase-3"} {
		r := ctl(t, url, "submit", writeFile(t, ref+".json", `{"customerInternalReference":"`+ref+`","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"x@example.com"}}`), "--json")
		ids = append(ids, decodeJSON[struct{ JobID string }](t, r).JobID)
	}
	for _, id := range ids {
		decisions.WaitN(t, 1, pipelinetest.DefaultTimeout, pipelinetest.ForJob[*messages.DecisionEvent](id), "decision of "+id)
	}

	r := ctl(t, url, "erase", ids[0], "job_unknown0000000000000000", "--wait", "--actor", "support-7")
	contains(t, r, ids[0], pipeline.StatusErased, messages.JumioDeleted, "job_unknown0000000000000000", "UNKNOWN")
	r = ctl(t, url, "erase", "--file", writeFile(t, "ids.txt", "# to erase\n"+ids[1]+"\n"), "--wait", "--json")
	rows := decodeJSON[[]struct{ JobID, Status, Jumio string }](t, r)
	if len(rows) != 1 || rows[0].JobID != ids[1] || rows[0].Status != pipeline.StatusErased {
		t.Errorf("erase --file: %+v", rows)
	}
	r = ctl(t, url, "erase", "--older-than", "1ns", "--dry-run", "--json")
	dry := decodeJSON[[]struct{ JobID, Status string }](t, r)
	if len(dry) != 1 || dry[0].JobID != ids[2] || dry[0].Status != "WOULD_ERASE" {
		t.Errorf("erase --older-than --dry-run: %+v", dry)
	}
	if r := ctl(t, url, "erase"); r.err == nil || !strings.Contains(r.err.Error(), "name the jobs") {
		t.Errorf("erase without targets: %s", r)
	}

	r = ctl(t, url, "audit", "--json")
	recs := decodeJSON[[]messages.AuditRecord](t, r)
	if len(recs) != 2 || recs[0].JobID != ids[0] || recs[0].Actor != "support-7" || recs[1].JobID != ids[1] ||
		!strings.HasPrefix(recs[1].Actor, "kycctl") || recs[0].Removed == nil || recs[0].Jumio != messages.JumioDeleted {
		t.Errorf("audit: %+v", recs)
	}
	r = ctl(t, url, "audit", "--job", ids[1])
	contains(t, r, "TIME", "ACTION", "erasure", ids[1], "REQUEST", "DELETED")
	lacks(t, r, ids[0], "ctl-erase")
	_ = context.Background()
}
