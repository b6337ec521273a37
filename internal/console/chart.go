package console

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The decisions chart: decisions per hour over the last 24 hours, by type,
// as a stacked bar chart drawn on the server (SVG, styled by the
// stylesheet's classes). The counts come from KYC_DECISIONS, whose subject
// is the decision's type: for each type and each hour boundary, JetStream
// counts the decisions stored since then (a consumer created at that time
// reports how many messages it has pending; it reads none, and is deleted
// at once). The count walks the stream's blocks, not its messages, so it
// costs the same at a million decisions as at a thousand; 125 consumers
// (25 boundaries × 5 types) per refresh, once a minute at most. Decisions
// of erased jobs are gone from the stream, and from the chart.

const (
	chartHours  = 24
	chartWidth  = 1200
	chartHeight = 280
	chartLeft   = 52
	chartRight  = 12
	chartTop    = 14
	chartBottom = 30
)

type decisionChart struct {
	Width, Height int
	From, To      time.Time
	Total         uint64
	Max           uint64
	Bars          []chartBar
	YTicks        []chartTick
	XTicks        []chartTick
	Legend        []chartLegend
	Hours         []chartHour // the same numbers as a table
	PlotLeft      int
	PlotBottom    int
	PlotRight     int
	Summary       string
}

type chartBar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

type chartTick struct {
	Pos   int
	Label string
}

type chartLegend struct {
	Type, Class string
	Total       uint64
}

type chartHour struct {
	From   time.Time
	Counts []uint64 // by messages.DecisionTypes
	Total  uint64
}

func decisionClass(t string) string { return "d-" + strings.ReplaceAll(strings.ToLower(t), "_", "-") }

// decisionsChart counts the decisions of the last 24 hours by hour and type.
func (c *Console) decisionsChart(ctx context.Context, now time.Time) (*decisionChart, error) {
	end := now.UTC().Truncate(time.Hour).Add(time.Hour)
	start := end.Add(-chartHours * time.Hour)
	types := messages.DecisionTypes
	// pending[t][i]: decisions of type t stored at or after start + i hours.
	pending := make([][]uint64, len(types))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 8)
	)
	for ti, typ := range types {
		pending[ti] = make([]uint64, chartHours+1)
		for i := 0; i <= chartHours; i++ {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				n, err := c.decisionsSince(ctx, typ, start.Add(time.Duration(i)*time.Hour))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				pending[ti][i] = n
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	ch := &decisionChart{Width: chartWidth, Height: chartHeight, From: start, To: end,
		PlotLeft: chartLeft, PlotBottom: chartHeight - chartBottom, PlotRight: chartWidth - chartRight}
	totals := make([]uint64, len(types))
	for i := 0; i < chartHours; i++ {
		h := chartHour{From: start.Add(time.Duration(i) * time.Hour), Counts: make([]uint64, len(types))}
		for ti := range types {
			n := pending[ti][i] - min(pending[ti][i+1], pending[ti][i])
			h.Counts[ti], h.Total = n, h.Total+n
			totals[ti] += n
		}
		ch.Total += h.Total
		ch.Max = max(ch.Max, h.Total)
		ch.Hours = append(ch.Hours, h)
	}
	for ti, typ := range types {
		ch.Legend = append(ch.Legend, chartLegend{Type: typ, Class: decisionClass(typ), Total: totals[ti]})
	}
	ch.layout()
	return ch, nil
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceStep(v float64) uint64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return uint64(m * p)
		}
	}
	return uint64(10 * p)
}

func (ch *decisionChart) layout() {
	plotH := chartHeight - chartTop - chartBottom
	plotW := chartWidth - chartLeft - chartRight
	// About four gridlines at round values; the top one at or above the
	// busiest hour.
	step := niceStep(float64(max(ch.Max, 1)) / 4)
	top := step * max(1, (ch.Max+step-1)/step)
	for v := uint64(0); v <= top; v += step {
		ch.YTicks = append(ch.YTicks, chartTick{Pos: chartTop + plotH - int(float64(plotH)*float64(v)/float64(top)), Label: formatInt(v)})
	}
	slot := float64(plotW) / chartHours
	barW := max(2, int(slot*0.7))
	for i, h := range ch.Hours {
		x := chartLeft + int(float64(i)*slot+(slot-float64(barW))/2)
		if i%3 == 0 {
			ch.XTicks = append(ch.XTicks, chartTick{Pos: x + barW/2, Label: h.From.Format("15:04")})
		}
		y := chartTop + plotH
		for ti, n := range h.Counts {
			if n == 0 {
				continue
			}
			bh := max(1, int(math.Round(float64(plotH)*float64(n)/float64(top))))
			y -= bh
			typ := messages.DecisionTypes[ti]
			ch.Bars = append(ch.Bars, chartBar{X: x, Y: y, W: barW, H: bh, Class: decisionClass(typ),
				Title: fmt.Sprintf("%s–%s UTC: %s %s", h.From.Format("15:04"), h.From.Add(time.Hour).Format("15:04"), formatInt(n), typ)})
		}
	}
	var parts []string
	for _, l := range ch.Legend {
		parts = append(parts, fmt.Sprintf("%s %s", formatInt(l.Total), l.Type))
	}
	ch.Summary = fmt.Sprintf("%s decisions from %s to %s UTC: %s; busiest hour %s.", formatInt(ch.Total),
		ch.From.Format("2006-01-02 15:04"), ch.To.Format("2006-01-02 15:04"), strings.Join(parts, ", "), formatInt(ch.Max))
}

// decisionsSince counts the decisions of type typ stored at or after t.
func (c *Console) decisionsSince(ctx context.Context, typ string, t time.Time) (uint64, error) {
	cons, err := c.js.CreateConsumer(ctx, c.subj.StreamDecisions(), jetstream.ConsumerConfig{
		FilterSubject: c.subj.Decision(typ), DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second, MemoryStorage: true, Replicas: 1,
	})
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	_ = c.js.DeleteConsumer(dctx, c.subj.StreamDecisions(), info.Name)
	cancel()
	return info.NumPending, nil
}
