package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file is the stage core's pause gate for configuration faults
// (DESIGN 4, "Configuration faults are not job faults"). When Jumio refuses
// kycpipe's configuration of a region (credentials, a permission, the
// portal's web domain), the region is paused: its messages are handed back
// without touching their retry budget, the runner stops pulling once every
// region the process serves is paused, readiness fails naming the setting
// to fix, a metric says so and an error is logged once a minute. A probe
// every FaultProbeEvery (a token request with a fresh client, then one
// harmless call of the refused kind) resumes the region by itself.
//
// Telling a configuration fault from a job's own refusal: a token endpoint
// that refuses the credentials (400/401/403) is always the configuration.
// A 403 (or a 401 after the client's token refresh) on a call is only a
// suspect: the gate probes the same permission with a fresh token; if Jumio
// refuses the probe too, the configuration is at fault, otherwise the job
// is (a consumed transaction token, a job-specific refusal) and the job
// fails as before. Probes are shared: one runs at a time per region and
// permission, and a passing probe answers the suspects of the next
// FaultProbeEvery without asking Jumio again.

// DefaultFaultProbeEvery is how often a paused region is probed.
const DefaultFaultProbeEvery = 30 * time.Second

// faultLogEvery is how often a paused region's error is logged again.
const faultLogEvery = time.Minute

// maxHoldDelay bounds how long a message of a paused region waits before
// it is delivered again.
const maxHoldDelay = 5 * time.Minute

// faultScope is what a fault pauses in a region.
type faultScope string

const (
	scopeAll faultScope = "all" // every message of the region
	scopeWeb faultScope = "web" // WEB-channel jobs only (web.href)
)

type faultKey struct {
	region jumio.Region
	scope  faultScope
}

// pause is one paused region (and scope).
type pause struct {
	fault     *ConfigFault
	since     time.Time
	nextProbe time.Time
	lastLog   time.Time
	// canaries: web.href faults are probed by letting one held job with
	// an account launch again (a new execution on its account): lastCanary
	// is when the last one was let through.
	lastCanary time.Time
}

// probeKey names one shared probe.
type probeKey struct {
	region jumio.Region
	perm   jumio.Permission
}

type probeCall struct {
	done  chan struct{}
	fault *ConfigFault
	err   error
}

// faultGate holds a stage's paused regions. Its zero value is not usable:
// see newFaultGate. A nil *faultGate pauses nothing.
type faultGate struct {
	stage   string
	clients *Clients // nil: the stage calls no Jumio (nothing to probe)
	every   time.Duration
	log     *zap.Logger
	now     func() time.Time
	m       *Metrics

	mu      sync.Mutex
	paused  map[faultKey]*pause
	changed chan struct{} // closed and replaced on every change
	probes  map[probeKey]*probeCall
	passed  map[probeKey]time.Time // when a suspect's probe last passed
}

func newFaultGate(stage string, clients *Clients, every time.Duration, log *zap.Logger, now func() time.Time, m *Metrics) *faultGate {
	if every <= 0 {
		every = DefaultFaultProbeEvery
	}
	return &faultGate{stage: stage, clients: clients, every: every, log: log, now: now, m: m,
		paused: map[faultKey]*pause{}, changed: make(chan struct{}), probes: map[probeKey]*probeCall{}, passed: map[probeKey]time.Time{}}
}

func scopeOf(f *ConfigFault) faultScope {
	if f.Kind == FaultWebHref {
		return scopeWeb
	}
	return scopeAll
}

// notifyLocked wakes everyone waiting for a change.
func (g *faultGate) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// report pauses the fault's region (and scope). A region already paused
// keeps its pause, with the newest fault.
func (g *faultGate) report(f *ConfigFault) {
	if g == nil {
		return
	}
	now := g.now()
	key := faultKey{f.Region, scopeOf(f)}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.paused[key]; ok {
		if p.fault.Kind != f.Kind {
			g.m.configFault(g.stage, string(f.Region), string(p.fault.Kind), false)
			g.m.configFault(g.stage, string(f.Region), string(f.Kind), true)
		}
		p.fault = f
		return
	}
	g.paused[key] = &pause{fault: f, since: now, nextProbe: now.Add(g.every), lastLog: now}
	g.m.configFault(g.stage, string(f.Region), string(f.Kind), true)
	g.log.Error("Jumio refuses kycpipe's configuration: pausing the region's work (no job is failed; a probe resumes it)",
		zap.String("region", string(f.Region)), zap.String("fault", string(f.Kind)), zap.String("fix", f.Fix),
		zap.Int("status", f.Status), zap.Duration("probe_every", g.every))
	g.notifyLocked()
}

// resume lifts the pause of key.
func (g *faultGate) resume(key faultKey, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.paused[key]
	if !ok {
		return
	}
	delete(g.paused, key)
	g.m.configFault(g.stage, string(key.region), string(p.fault.Kind), false)
	g.log.Info("Jumio accepts the configuration again: resuming the region's work", zap.String("region", string(key.region)),
		zap.String("fault", string(p.fault.Kind)), zap.Duration("paused_for", g.now().Sub(p.since)), zap.String("by", why))
	g.notifyLocked()
}

// pausedFor returns the fault pausing a message of region (web: a
// WEB-channel job), if any.
func (g *faultGate) pausedFor(region jumio.Region, web bool) (*ConfigFault, bool) {
	if g == nil {
		return nil, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.paused[faultKey{region, scopeAll}]; ok {
		return p.fault, true
	}
	if web {
		if p, ok := g.paused[faultKey{region, scopeWeb}]; ok {
			return p.fault, true
		}
	}
	return nil, false
}

// admitCanary reports whether a held WEB job of region may launch again to
// find out whether Jumio returns web.href now: once per probe period for a
// job whose account exists (a new execution on its account), once per ten
// periods for one without (it creates an account), so the pause cannot
// outlive the job that detected it.
func (g *faultGate) admitCanary(region jumio.Region, hasAccount bool) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.paused[faultKey{region, scopeWeb}]
	if !ok {
		return true
	}
	now := g.now()
	wait := g.every
	if !hasAccount {
		wait = 10 * g.every
	}
	last := p.since
	if p.lastCanary.After(last) {
		last = p.lastCanary
	}
	if now.Sub(last) < wait {
		return false
	}
	p.lastCanary = now
	return true
}

// webHrefBack records that Jumio returned web.href again in region.
func (g *faultGate) webHrefBack(region jumio.Region) {
	if g != nil {
		g.resume(faultKey{region, scopeWeb}, "a job got web.href")
	}
}

// holdDelay is how long a message held for a paused region waits: until
// about the next probe, longer as the pause lasts (up to maxHoldDelay),
// spread so that held messages do not return all at once.
func (g *faultGate) holdDelay(region jumio.Region) time.Duration {
	d := DefaultFaultProbeEvery
	if g != nil {
		d = g.every
		g.mu.Lock()
		now := g.now()
		for k, p := range g.paused {
			if k.region == region {
				d = max(p.nextProbe.Sub(now), now.Sub(p.since)/4, time.Second/10)
			}
		}
		g.mu.Unlock()
	}
	d = min(d, maxHoldDelay)
	return d + time.Duration(rand.Int64N(int64(d/2)+1))
}

// blocked reports whether every region in regions is paused entirely: the
// runner then stops pulling.
func (g *faultGate) blocked(regions []jumio.Region) bool {
	if g == nil || len(regions) == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.paused) == 0 {
		return false
	}
	for _, r := range regions {
		if _, ok := g.paused[faultKey{r, scopeAll}]; !ok {
			return false
		}
	}
	return true
}

// waitUnblocked returns once the regions the stage serves are not all
// paused, or ctx ends (false).
func (g *faultGate) waitUnblocked(ctx context.Context) bool {
	if g == nil || g.clients == nil {
		return ctx.Err() == nil
	}
	for {
		g.mu.Lock()
		ch := g.changed
		g.mu.Unlock()
		if !g.blocked(g.clients.Regions()) {
			return ctx.Err() == nil
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// confirm decides whether a suspect refusal (a 403, or a 401 after the
// token refresh) of a call needing perm in region is the configuration's
// fault: with a region already paused, yes; otherwise a probe with a fresh
// token, shared with concurrent suspects, decides. nil, nil means the job
// is at fault; an error means Jumio could not be asked.
func (g *faultGate) confirm(ctx context.Context, region jumio.Region, perm jumio.Permission) (*ConfigFault, error) {
	if g == nil || g.clients == nil {
		return nil, nil
	}
	if f, ok := g.pausedFor(region, false); ok {
		return f, nil
	}
	key := probeKey{region, perm}
	g.mu.Lock()
	if at, ok := g.passed[key]; ok && g.now().Sub(at) < g.every {
		g.mu.Unlock()
		return nil, nil
	}
	call, running := g.probes[key]
	if !running {
		call = &probeCall{done: make(chan struct{})}
		g.probes[key] = call
		go g.runProbe(context.WithoutCancel(ctx), key, call)
	}
	g.mu.Unlock()
	select {
	case <-call.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return call.fault, call.err
}

func (g *faultGate) runProbe(ctx context.Context, key probeKey, call *probeCall) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	call.fault, call.err = g.clients.Probe(ctx, key.region, key.perm)
	g.m.faultProbe(g.stage, string(key.region), probeResult(call.fault, call.err))
	if call.fault != nil {
		g.report(call.fault)
	}
	g.mu.Lock()
	if call.fault == nil && call.err == nil {
		g.passed[key] = g.now()
	}
	delete(g.probes, key)
	g.mu.Unlock()
	close(call.done)
}

func probeResult(f *ConfigFault, err error) string {
	switch {
	case f != nil:
		return "refused"
	case err != nil:
		return "inconclusive"
	}
	return "accepted"
}

// run probes every paused region every FaultProbeEvery and logs each
// pause once a minute, until ctx ends.
func (g *faultGate) run(ctx context.Context) {
	if g == nil || g.clients == nil {
		return
	}
	t := time.NewTicker(min(g.every, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for key, p := range g.due() {
			if key.scope == scopeWeb {
				continue // probed by canary jobs (admitCanary)
			}
			perm := p.fault.Permission
			f, err := g.clients.Probe(ctx, key.region, perm)
			g.m.faultProbe(g.stage, string(key.region), probeResult(f, err))
			switch {
			case f == nil && err == nil:
				g.resume(key, "probe")
			case f != nil:
				g.report(f) // the newest answer
			}
		}
		g.logPaused()
	}
}

// due returns the pauses whose probe is due, and schedules the next one.
func (g *faultGate) due() map[faultKey]*pause {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	out := map[faultKey]*pause{}
	for k, p := range g.paused {
		if !now.Before(p.nextProbe) {
			p.nextProbe = now.Add(g.every)
			cp := *p
			out[k] = &cp
		}
	}
	return out
}

// logPaused logs each pause again once a minute.
func (g *faultGate) logPaused() {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, p := range g.paused {
		if now.Sub(p.lastLog) >= faultLogEvery {
			p.lastLog = now
			f := p.fault
			g.log.Error("Jumio still refuses kycpipe's configuration: the region's work stays paused",
				zap.String("region", string(f.Region)), zap.String("fault", string(f.Kind)), zap.String("fix", f.Fix),
				zap.Int("status", f.Status), zap.Duration("paused_for", now.Sub(p.since).Round(time.Second)))
		}
	}
}

// err describes the pauses for readiness, nil when none.
func (g *faultGate) err() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.paused) == 0 {
		return nil
	}
	var parts []string
	for _, p := range g.paused {
		parts = append(parts, fmt.Sprintf("%s (paused %s)", p.fault.Error(), g.now().Sub(p.since).Round(time.Second)))
	}
	sort.Strings(parts)
	return fmt.Errorf("%w: %s", ErrPaused, strings.Join(parts, "; "))
}

// ErrPaused is wrapped by a stage's readiness error while Jumio refuses
// its configuration of a region.
var ErrPaused = errors.New("paused")

// configFaultError marks a failure the stage knows to be a configuration
// fault (no web.href).
type configFaultError struct{ fault *ConfigFault }

func (e *configFaultError) Error() string { return e.fault.Error() }
func (e *configFaultError) Unwrap() error { return e.fault }

// heldInfo is the error recorded in a held job's record: why it waits.
func heldInfo(f *ConfigFault) messages.ErrorInfo {
	return messages.ErrorInfo{Code: messages.ErrCodeJumioConfiguration, Message: sanitizeError(f.Error()), Status: f.Status}
}

// requeue publishes a copy of a held message on its subject (a job's own
// submit subject for a job published on kyc.jobs.submit; the body and
// headers, Kyc-Requeue-Of naming the original, a message ID derived from
// the original's stream sequence so that a repeat is dropped) and acks the
// original: the copy starts with a fresh delivery count. If publishing
// fails, the original is held again.
func (s *stage) requeue(ctx context.Context, m jetstream.Msg, jobID string, log *zap.Logger) outcome {
	md, err := m.Metadata()
	if err != nil {
		return retry(maxHoldDelay)
	}
	of := md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
	subject := m.Subject()
	if jobID != "" && subject == s.subj.JobsSubmit() {
		// A job published on kyc.jobs.submit moves to its own subject, where
		// an erasure looks for it while it is pending.
		subject = s.subj.JobSubmit(jobID)
	}
	nm := nats.NewMsg(subject)
	nm.Data = m.Data()
	for k, vs := range m.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		nm.Header[k] = append([]string(nil), vs...)
	}
	nm.Header.Set(messages.HeaderRequeueOf, of)
	nm.Header.Set(messages.HeaderMsgID, "requeue:"+of)
	if jobID != "" {
		nm.Header.Set(messages.HeaderJobID, jobID)
	}
	if _, err := s.js.PublishMsg(ctx, nm); err != nil {
		log.Warn("cannot requeue a held message; holding it again", zap.Error(err))
		return retry(maxHoldDelay)
	}
	log.Info("held message requeued to keep it from its consumer's delivery limit", zap.String("requeue_of", of))
	return ack()
}
