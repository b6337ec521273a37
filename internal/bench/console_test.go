package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestConsoleStepSmoke runs the console step small: the seeded jobs are
// found by every filter and every kind of search, a job's page and the
// overview answer, the index cost is measured, and the report has the
// step's section and targets. It checks what was answered, never how fast.
func TestConsoleStepSmoke(t *testing.T) {
	_, nc, _ := pipelinetest.RunJetStream(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*pipelinetest.DefaultTimeout)
	defer cancel()
	profiles := t.TempDir()
	res, err := ConsoleBench(ctx, js, ConsoleOptions{Jobs: 3000, Samples: 2, IndexJobs: 100, Logf: t.Logf, ProfileDir: profiles, ProfileFor: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs != 3000 || res.Messages < 5*3000 {
		t.Errorf("seeded %d jobs, %d messages", res.Jobs, res.Messages)
	}
	kinds := map[string]int{}
	for _, p := range res.Pages {
		kinds[p.Kind]++
		if len(p.Lat) == 0 {
			t.Errorf("%s: no sample", p.Name)
		}
		switch {
		case p.Kind == "list" && p.Name == "no filter" && p.Rows != 50:
			t.Errorf("the unfiltered list shows %d rows", p.Rows)
		case p.Kind == "list" && strings.HasPrefix(p.Name, "state DECIDED") && p.Rows != 50:
			t.Errorf("DECIDED shows %d rows", p.Rows)
		case p.Name == "100 per page" && p.Rows != 100:
			t.Errorf("100 per page shows %d rows", p.Rows)
		case p.Name == "created in the last 15 min" && p.Rows == 0, p.Name == "unchanged for over 15 min" && p.Rows == 0:
			t.Errorf("%s shows nothing", p.Name)
		}
	}
	if kinds["list"] < 20 || kinds["search"] != 4 || kinds["job"] != 1 || kinds["overview"] != 1 {
		t.Errorf("pages measured: %v", kinds)
	}
	// A CPU profile of the console per page (no nats-server profiler here).
	for _, name := range []string{"01-no-filter.console.pprof", fmt.Sprintf("%02d-a-job-s-page.console.pprof", len(res.Pages)-1)} {
		if st, err := os.Stat(filepath.Join(profiles, name)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	if res.Index.Jobs != 100 || res.Index.WriterWith <= 0 {
		t.Errorf("index cost: %+v", res.Index)
	}
	r := &Results{Console: res}
	var sb strings.Builder
	res.markdown(func(format string, a ...any) { fmt.Fprintf(&sb, format, a...) })
	for _, want := range []string{"### 10. Console at 3,000 jobs", "| search | by userReference |", "| job | a job's page |", "Keeping the index, per submission"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if rows := r.Console.targets(); len(rows) != 4 {
		t.Errorf("targets: %+v", rows)
	}
}
