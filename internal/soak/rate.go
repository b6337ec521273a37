package soak

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// RateReport is the outcome of MeasureAccountRate.
type RateReport struct {
	Window          time.Duration
	Workers         int
	AccountsCreated int     // during the window
	Allowed         float64 // burst + rate × window
	Share           float64 // AccountsCreated / Allowed
	AccountCalls    int     // account requests during the window
	Account429      int     // 429s among them
	Retrieval429    int
	Backlog         int // jobs queued before the window
}

// MeasureAccountRate runs o.Workers workers (no chaos, no faults) against a
// simulator enforcing limits, with a backlog of jobs, and measures the
// account initiations Jumio accepted over window after the first one.
func MeasureAccountRate(ctx context.Context, o Options, limits jumiotest.RateLimits, window time.Duration) (*RateReport, error) {
	o.NoFaults = true
	o.SimRateLimits = &limits
	o.Notifiers, o.EraseRate = -1, -1
	o = o.withDefaults()
	h := &harness{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed)), subj: messages.MustSubjects("")}
	defer h.shutdown()
	if err := h.setup(ctx); err != nil {
		return nil, err
	}
	backlog := int(limits.AccountPerSecond*window.Seconds()*1.5) + 2*limits.AccountBurst + 20
	client := &http.Client{Timeout: 15 * time.Second}
	var wg sync.WaitGroup
	next := make(chan int)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range next {
				h.submit(ctx, client, n)
			}
		}()
	}
	for n := 0; n < backlog; n++ {
		next <- n
	}
	close(next)
	wg.Wait()
	h.logf("queued %d jobs; waiting for the first account", backlog)
	for h.sim.Stats().AccountsCreated == 0 {
		if !ctxutil.Sleep(ctx, 50*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	before := h.sim.Stats()
	ctxutil.Sleep(ctx, window)
	after := h.sim.Stats()
	count := func(st jumiotest.Stats, route jumiotest.Route, code string) int {
		if code == "" {
			return st.Requests[string(route)]
		}
		return st.Responses[string(route)][code]
	}
	r := &RateReport{
		Window: window, Workers: o.Workers, Backlog: backlog,
		AccountsCreated: after.AccountsCreated - before.AccountsCreated,
		Allowed:         float64(limits.AccountBurst) + limits.AccountPerSecond*window.Seconds(),
		AccountCalls:    count(after, jumiotest.RouteCreateAccount, "") - count(before, jumiotest.RouteCreateAccount, ""),
		Account429:      count(after, jumiotest.RouteCreateAccount, "429") - count(before, jumiotest.RouteCreateAccount, "429"),
	}
	for _, route := range []jumiotest.Route{jumiotest.RouteStatus, jumiotest.RouteDetails} {
		r.Retrieval429 += count(after, route, "429") - count(before, route, "429")
	}
	r.Share = float64(r.AccountsCreated) / r.Allowed
	return r, nil
}
