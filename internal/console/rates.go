package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
)

// jumioCallsMetric counts the calls to Jumio by endpoint class, operation
// and HTTP status (0: no answer); workers and retrievers export it.
const jumioCallsMetric = "kycpipe_jumio_calls_total"

// jumioRates turns the Jumio call counters of this process (its registry)
// and of other processes (their /metrics) into rates: it samples them when
// the overview is shown, at most every rateSampleEvery, and compares the
// newest sample with the oldest of the last rateWindow.
type jumioRates struct {
	gatherer prometheus.Gatherer
	urls     []string
	client   *http.Client
	now      func() time.Time
	log      *zap.Logger

	mu      sync.Mutex
	samples []rateSample
}

type rateSample struct {
	at                                 time.Time
	calls, throttled, errors, rejected float64
	sources                            int
	failed                             []string
}

const (
	rateSampleEvery = 5 * time.Second
	rateWindow      = 5 * time.Minute
)

// jumioSummary is what the overview shows of Jumio's answers.
type jumioSummary struct {
	Available       bool
	Measuring       bool // one sample so far: rates need two
	Sources         int
	Failed          []string // metrics URLs that did not answer (host only)
	Window          time.Duration
	CallsPerMin     float64
	ThrottledPerMin float64 // 429
	ErrorsPerMin    float64 // 5xx and no answer
	RejectedPerMin  float64 // other 4xx
	ErrorPct        float64
	ThrottledPct    float64
}

func newJumioRates(g prometheus.Gatherer, urls []string, now func() time.Time, log *zap.Logger) *jumioRates {
	return &jumioRates{gatherer: g, urls: urls, client: &http.Client{Timeout: 3 * time.Second}, now: now, log: log}
}

func (j *jumioRates) summary(ctx context.Context) jumioSummary {
	if j.gatherer == nil && len(j.urls) == 0 {
		return jumioSummary{}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	if n := len(j.samples); n == 0 || now.Sub(j.samples[n-1].at) >= rateSampleEvery {
		j.samples = append(j.samples, j.sample(ctx, now))
	}
	for len(j.samples) > 1 && now.Sub(j.samples[0].at) > 2*rateWindow {
		j.samples = j.samples[1:]
	}
	last := j.samples[len(j.samples)-1]
	out := jumioSummary{Available: last.sources > 0, Sources: last.sources, Failed: last.failed}
	first := last
	for _, s := range j.samples {
		if now.Sub(s.at) <= rateWindow {
			first = s
			break
		}
	}
	span := last.at.Sub(first.at)
	if span <= 0 {
		out.Measuring = true
		return out
	}
	perMin := func(a, b float64) float64 { return max(0, b-a) / span.Minutes() }
	out.Window = span.Round(time.Second)
	out.CallsPerMin = perMin(first.calls, last.calls)
	out.ThrottledPerMin = perMin(first.throttled, last.throttled)
	out.ErrorsPerMin = perMin(first.errors, last.errors)
	out.RejectedPerMin = perMin(first.rejected, last.rejected)
	if out.CallsPerMin > 0 {
		out.ErrorPct = 100 * out.ErrorsPerMin / out.CallsPerMin
		out.ThrottledPct = 100 * out.ThrottledPerMin / out.CallsPerMin
	}
	return out
}

// sample reads the counters from every source.
func (j *jumioRates) sample(ctx context.Context, now time.Time) rateSample {
	s := rateSample{at: now}
	if j.gatherer != nil {
		if mfs, err := j.gatherer.Gather(); err == nil {
			s.add(mfs)
		}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, u := range j.urls {
		wg.Go(func() {
			mfs, err := j.scrape(ctx, u)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				host := u
				if p, perr := url.Parse(u); perr == nil {
					host = p.Host
				}
				s.failed = append(s.failed, host)
				j.log.Debug("console: metrics not scraped", zap.String("host", host), zap.Error(err))
				return
			}
			s.add(mfs)
		})
	}
	wg.Wait()
	return s
}

func (s *rateSample) add(mfs []*dto.MetricFamily) {
	for _, mf := range mfs {
		if mf.GetName() != jumioCallsMetric {
			continue
		}
		s.sources++
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			code := 0
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					code, _ = strconv.Atoi(l.GetValue())
				}
			}
			s.calls += v
			switch {
			case code == http.StatusTooManyRequests:
				s.throttled += v
			case code == 0 || code >= 500:
				s.errors += v
			case code >= 400:
				s.rejected += v
			}
		}
	}
}

func (j *jumioRates) scrape(ctx context.Context, u string) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, 1)
	if mf, ok := fams[jumioCallsMetric]; ok {
		out = append(out, mf)
	}
	return out, nil
}
