package console

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// overviewStatuses are the states the overview counts, in pipeline order.
var overviewStatuses = []string{pipeline.StatusAccepted, pipeline.StatusAccountCreated, pipeline.StatusLaunched,
	pipeline.StatusFinalized, pipeline.StatusDecided, pipeline.StatusFailed, pipeline.StatusErasing}

// overviewData is everything the overview shows. Each part says when it
// could not be read, instead of failing the page.
type overviewData struct {
	At          time.Time
	States      []stateCount
	StatesAt    time.Time
	StatesErr   string
	Chart       *decisionChart
	ChartErr    string
	Consumers   []consumerRow
	ConsumerErr string
	DeadLetters int
	DLQByStage  []stageCount
	DLQErr      string
	Jumio       jumioSummary
}

type stateCount struct {
	Status string
	Count  uint64
}

type consumerRow struct {
	Stream, Consumer                     string
	Pending, AckPending, Redelivered     uint64
	Waiting                              int
	Stalled                              bool // a backlog and nobody pulling
	Err                                  string
	StreamURL, ConsumerURL, PendingClass string
}

type stageCount struct {
	Stage string
	Count uint64
}

// statsCache computes the overview at most every overviewEvery, however
// many operators watch it, and each costly part less often: the counts of
// jobs by state (the server counts index entries: proportional to the
// number of jobs) every statesEvery or twenty times what the last count
// took, whichever is longer, and the decisions chart every chartEvery.
// The first request computes everything; later ones reuse what is fresh.
type statsCache struct {
	c *Console

	mu       sync.Mutex
	last     *overviewData
	states   []stateCount
	statesAt time.Time
	statesIn time.Duration
	chart    *decisionChart
	chartAt  time.Time
}

const (
	overviewEvery = 3 * time.Second
	statesEvery   = 10 * time.Second
	chartEvery    = time.Minute
)

func newStatsCache(c *Console) *statsCache { return &statsCache{c: c} }

// get returns the overview, recomputing what is due.
func (s *statsCache) get(ctx context.Context) *overviewData {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.c.now()
	if s.last != nil && now.Sub(s.last.At) < overviewEvery {
		return s.last
	}
	d := &overviewData{At: now}
	var wg sync.WaitGroup
	if s.states == nil || now.Sub(s.statesAt) >= max(statesEvery, 20*s.statesIn) {
		wg.Go(func() {
			start := time.Now()
			states, err := s.c.countStates(ctx)
			if err != nil {
				d.StatesErr = "cannot count jobs: " + errText(err)
				return
			}
			s.states, s.statesAt, s.statesIn = states, now, time.Since(start)
		})
	}
	if s.chart == nil || now.Sub(s.chartAt) >= chartEvery {
		wg.Go(func() {
			ch, err := s.c.decisionsChart(ctx, now)
			if err != nil {
				d.ChartErr = "cannot count decisions: " + errText(err)
				return
			}
			s.chart, s.chartAt = ch, now
		})
	}
	wg.Go(func() {
		rows, err := s.c.consumers(ctx)
		d.Consumers = rows
		if err != nil {
			d.ConsumerErr = errText(err)
		}
	})
	wg.Go(func() {
		total, by, err := s.c.dlqCounts(ctx)
		if err != nil {
			d.DLQErr = "cannot read dead letters: " + errText(err)
		}
		d.DeadLetters, d.DLQByStage = int(total), by
	})
	wg.Go(func() { d.Jumio = s.c.rates.summary(ctx) })
	wg.Wait()
	d.States, d.StatesAt, d.Chart = s.states, s.statesAt, s.chart
	s.last = d
	return d
}

// errText is what an operator sees of an error: its text (NATS errors
// carry no personal data).
func errText(err error) string {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Description
	}
	return err.Error()
}

func (c *Console) countStates(ctx context.Context) ([]stateCount, error) {
	out := make([]stateCount, len(overviewStatuses))
	errs := make([]error, len(overviewStatuses))
	var wg sync.WaitGroup
	for i, st := range overviewStatuses {
		wg.Go(func() {
			n, err := c.idx.Count(ctx, st, "", "")
			out[i], errs[i] = stateCount{Status: st, Count: n}, err
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// consumers reads the backlog of every durable consumer of the pipeline.
func (c *Console) consumers(ctx context.Context) ([]consumerRow, error) {
	list := append(pipeline.ConsumersOf(c.cfg.Topology, messages.StageWorker), pipeline.ConsumersOf(c.cfg.Topology, messages.StageRetriever)...)
	list = append(list, [2]string{c.subj.StreamErasures(), pipeline.ConsumerEraser})
	list = append(list, c.extraConsumers()...)
	rows := make([]consumerRow, len(list))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i, sc := range list {
		wg.Go(func() {
			row := consumerRow{Stream: sc[0], Consumer: sc[1]}
			cons, err := c.js.Consumer(ctx, sc[0], sc[1])
			var info *jetstream.ConsumerInfo
			if err == nil {
				info, err = cons.Info(ctx)
			}
			if err != nil {
				row.Err = errText(err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			} else {
				row.Pending, row.AckPending, row.Redelivered, row.Waiting = info.NumPending, uint64(info.NumAckPending), uint64(info.NumRedelivered), info.NumWaiting
				row.Stalled = info.NumPending > 0 && info.NumWaiting == 0 && info.NumAckPending == 0
			}
			rows[i] = row
		})
	}
	wg.Wait()
	if len(errs) == len(list) {
		return rows, errors.Join(errs...)
	}
	return rows, nil
}

// dlqCounts counts the dead letters by stage.
func (c *Console) dlqCounts(ctx context.Context) (uint64, []stageCount, error) {
	st, err := c.js.Stream(ctx, c.subj.StreamDLQ())
	if err != nil {
		return 0, nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(c.subj.DLQs()))
	if err != nil {
		return 0, nil, err
	}
	var by []stageCount
	prefix := c.subj.DLQ("")
	for subject, n := range info.State.Subjects {
		by = append(by, stageCount{Stage: strings.TrimPrefix(subject, prefix), Count: n})
	}
	slices.SortFunc(by, func(a, b stageCount) int { return strings.Compare(a.Stage, b.Stage) })
	return info.State.Msgs, by, nil
}

// overview is the landing page.
func (c *Console) overview(w http.ResponseWriter, q request) {
	d := c.stats.get(q.r.Context())
	c.render(w, q, http.StatusOK, "overview.html", "Overview", "overview", d, flashOf(q.r))
}

// overviewStream sends the overview's body again every few seconds
// (Server-Sent Events), rendered by the same template as the page.
func (c *Console) overviewStream(w http.ResponseWriter, q request) {
	c.stream(w, q.r, func(ctx context.Context, send func(event string, data []byte) error) error {
		t := time.NewTicker(overviewEvery + 2*time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			b, err := c.fragment("overview-body", page{Now: c.now(), Data: c.stats.get(ctx)})
			if err != nil {
				c.log.Error("console: overview not rendered", zap.Error(err))
				return err
			}
			if err := send("overview", b); err != nil {
				return err
			}
		}
	})
}
