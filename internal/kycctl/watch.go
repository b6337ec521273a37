package kycctl

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

var lifecycleKinds = []string{messages.KindAccepted, messages.KindLaunched, messages.KindFinalized, messages.KindFailed}

func watchCommand() command {
	return command{
		name: "watch", synopsis: "[--type PASSED,REJECTED…] [--kind launched,failed…] [--job ID] [--since 10m] [--count N]",
		summary: "follow decision and lifecycle events live, one line each (JSON lines with --json)",
		help: `Prints decisions (from the decisions stream) and lifecycle events (accepted, launched, finalized,
failed, from the events stream) as they are stored, from now (or from --since ago) until
interrupted (Ctrl-C) or after --count messages. --type selects decision types (PASSED, REJECTED,
WARNING, NOT_EXECUTED, EXPIRED), --kind lifecycle kinds (and "decision"); with only --type, only
decisions are shown, with only --kind, only those kinds.

Each line: stored time, kind, job, detail. Extraction data is never printed; web links and SDK
tokens are shown as "present".`,
		streaming: true,
		flags: func(o *opts, s *config.Set) {
			s.String(&o.types, "type", "", "", "only these decision types, comma-separated (PASSED, REJECTED, WARNING, NOT_EXECUTED, EXPIRED)")
			s.String(&o.kinds, "kind", "", "", "only these kinds, comma-separated (accepted, launched, finalized, failed, decision)")
			s.String(&o.job, "job", "", "", "only this job ID")
			s.Duration(&o.since, "since", "", 0, "start this long ago instead of now (e.g. 10m)")
			s.Int(&o.count, "count", "", 0, "stop after this many messages (0: until interrupted)")
		},
		run: watch,
	}
}

// watchPlan is what watch subscribes to.
type watchPlan struct {
	decisions, events []string // subject filters; nil: that stream is not read
}

func planWatch(subj messages.Subjects, typesFlag, kindsFlag string) (watchPlan, error) {
	var p watchPlan
	var types, lifecycle []string
	decisionKind := false
	for _, t := range splitList(typesFlag) {
		t = strings.ToUpper(t)
		if !slices.Contains(messages.DecisionTypes, t) {
			return p, fmt.Errorf("unknown --type %q: want %s", t, strings.Join(messages.DecisionTypes, ", "))
		}
		types = append(types, t)
	}
	for _, k := range splitList(kindsFlag) {
		k = strings.ToLower(k)
		switch {
		case k == KindDecision:
			decisionKind = true
		case slices.Contains(lifecycleKinds, k):
			lifecycle = append(lifecycle, k)
		default:
			return p, fmt.Errorf("unknown --kind %q: want %s or %s", k, strings.Join(lifecycleKinds, ", "), KindDecision)
		}
	}
	all := len(types) == 0 && len(lifecycle) == 0 && !decisionKind
	switch {
	case len(types) > 0:
		for _, t := range types {
			p.decisions = append(p.decisions, subj.Decision(t))
		}
	case all || decisionKind:
		p.decisions = []string{subj.Decisions()}
	}
	switch {
	case len(lifecycle) > 0:
		for _, k := range lifecycle {
			p.events = append(p.events, subj.Event(k))
		}
	case all:
		p.events = []string{subj.Events()}
	}
	return p, nil
}

func watch(ctx context.Context, e *env) error {
	if len(e.o.positional) > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(e.o.positional, " "))
	}
	if e.o.count < 0 || e.o.since < 0 {
		return fmt.Errorf("--count and --since must not be negative")
	}
	if e.o.job != "" && !messages.ValidJobID(e.o.job) {
		return fmt.Errorf("--job %q is not a job ID", e.o.job)
	}
	if err := e.connect(); err != nil {
		return err
	}
	plan, err := planWatch(e.subj, e.o.types, e.o.kinds)
	if err != nil {
		return err
	}
	lines := make(chan eventLine, 256)
	stop := make(chan struct{}) // closed first when watch ends: unblocks the handlers
	var cleanup []func()
	defer func() {
		close(stop)
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	problems := make(chan string, 16)
	var from *time.Time
	if e.o.since > 0 {
		t := time.Now().Add(-e.o.since)
		from = &t
	}
	var described []string
	for _, src := range []struct {
		stream  string
		filters []string
	}{{e.subj.StreamDecisions(), plan.decisions}, {e.subj.StreamEvents(), plan.events}} {
		if len(src.filters) == 0 {
			continue
		}
		described = append(described, strings.Join(src.filters, ","))
		cfg := jetstream.OrderedConsumerConfig{FilterSubjects: src.filters, DeliverPolicy: jetstream.DeliverNewPolicy, InactiveThreshold: ephemeralIdle}
		if from != nil {
			cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, from
		}
		cons, err := e.js.OrderedConsumer(ctx, src.stream, cfg)
		if err != nil {
			return fmt.Errorf("watch %s: %w", src.stream, err)
		}
		stream := src.stream
		cc, err := cons.Consume(func(m jetstream.Msg) {
			md, err := m.Metadata()
			if err != nil {
				return
			}
			if e.o.job != "" && m.Headers().Get(messages.HeaderJobID) != e.o.job {
				return
			}
			l := newEventLine(e.subj, stream, m.Subject(), md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data())
			select {
			case lines <- l:
			case <-stop:
			case <-ctx.Done():
			}
		}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			select {
			case problems <- fmt.Sprintf("%s: %v", stream, err):
			default:
			}
		}))
		if err != nil {
			return fmt.Errorf("watch %s: %w", src.stream, err)
		}
		cleanup = append(cleanup, func() { cc.Stop(); removeOrdered(ctx, e.js, stream, cons) })
	}
	start := "now"
	if from != nil {
		start = ts(*from)
	}
	fmt.Fprintf(e.errOut, "watching %s from %s (Ctrl-C to stop)\n", strings.Join(described, " and "), start)

	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil // interrupted: a normal end
		case p := <-problems:
			fmt.Fprintln(e.errOut, "warning:", p)
		case l := <-lines:
			if e.json {
				b, err := json.Marshal(l)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.out, "%s\n", b)
			} else {
				fmt.Fprintf(e.out, "%s  %-9s  %s  %s\n", tsMilli(l.Time), l.Kind, orDash(l.JobID), l.detail())
			}
			n++
			if e.o.count > 0 && n >= e.o.count {
				return nil
			}
		}
	}
}
