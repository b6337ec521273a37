package termprobe

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Advisory subject prefix of the advisories the probe listens to (followed by
// <stream>.<consumer>).
const advisoryTerminated = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."

// Options configures a probe run. The zero value (plus a connection) probes
// 100 messages on one stream, one delete at a time.
type Options struct {
	Stream      string        // work-queue stream created for the probe (default PROBE)
	Replicas    int           // of the stream and its consumer (default 1)
	Messages    int           // messages published, delivered once and deleted (default 100)
	Concurrency int           // deletes in flight at once (default 1)
	Settle      time.Duration // how long to wait for late advisories after the last delete (default 3s)
	// DeleteAfter is the time between the NakWithDelay and the delete (a
	// poll task waits seconds between the two; default 0).
	DeleteAfter time.Duration
	// NoHead leaves the stream without a message at its head.
	NoHead bool
	// Leaders places the consumer's leader, on a cluster: LeadersAsElected
	// (default) leaves it where it was elected, LeadersSame moves it to the
	// stream leader's server, LeadersSplit to another server.
	Leaders Leaders
}

// Leaders is where the probe's consumer leader runs relative to its stream
// leader.
type Leaders string

// Consumer leader placements.
const (
	LeadersAsElected Leaders = ""
	LeadersSame      Leaders = "same"
	LeadersSplit     Leaders = "split"
)

func (o Options) withDefaults() Options {
	o.Stream = cmp.Or(o.Stream, "PROBE")
	o.Replicas = cmp.Or(o.Replicas, 1)
	o.Messages = cmp.Or(o.Messages, 100)
	o.Concurrency = cmp.Or(o.Concurrency, 1)
	o.Settle = cmp.Or(o.Settle, 3*time.Second)
	return o
}

// Advisory is the part of a MSG_TERMINATED advisory the probe reads; the
// fields are those of nats-server's JSConsumerDeliveryTerminatedAdvisory.
type Advisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Reason     string `json:"reason"`
}

// Result is what a probe run observed.
type Result struct {
	Deleted    int            // DeleteMsg calls that succeeded
	Advisories int            // MSG_TERMINATED advisories received for the probe's consumer
	ByReason   map[string]int // advisories by reason
	// ByDeliveries counts advisories by their delivery count.
	ByDeliveries map[uint64]int
	// Found counts advisories after which GetMsg still returned the
	// message: the window in which a sweeper could mistake a delete for a
	// give-up.
	Found int
	// Unmatched counts advisories for sequences the probe did not delete.
	Unmatched int
	// LeftInStream is the stream's message count at the end, not counting
	// the head message (0: every deleted message is gone, whatever GetMsg
	// answered meanwhile).
	LeftInStream uint64
	// First is one advisory as received, for the record.
	First Advisory
	// StreamLeader and ConsumerLeader name the servers leading the stream
	// and the consumer at the end (empty on a single server).
	StreamLeader, ConsumerLeader string
}

// Run performs one probe on js (nc is its connection, used for the advisory
// subscription). It deletes the probe stream first if it exists, and leaves
// it in place at the end.
func Run(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, o Options) (*Result, error) {
	o = o.withDefaults()
	if err := js.DeleteStream(ctx, o.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("termprobe: delete old stream: %w", err)
	}
	subject, head := "termprobe."+o.Stream+".task", "termprobe."+o.Stream+".head"
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: o.Stream, Subjects: []string{subject, head},
		Retention: jetstream.WorkQueuePolicy, Replicas: o.Replicas})
	if err != nil {
		return nil, fmt.Errorf("termprobe: create stream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, o.Stream, jetstream.ConsumerConfig{Durable: "probe",
		FilterSubject: subject, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: -1, Replicas: o.Replicas})
	if err != nil {
		return nil, fmt.Errorf("termprobe: create consumer: %w", err)
	}
	if o.Replicas > 1 && o.Leaders != LeadersAsElected {
		if err := placeLeaders(ctx, nc, st, cons, o.Leaders); err != nil {
			return nil, err
		}
	}
	// A message no consumer reads stays at the head of the stream, as the
	// poll tasks of unfinished jobs do in KYC_RETRIEVE. Without it, a deleted
	// task is often the stream's first message, and the consumer's pending
	// timer (armed by the NakWithDelay) may drop it from its pending list
	// below the stream's new first sequence before the delete reaches the
	// consumer: then no advisory is sent at all.
	if !o.NoHead {
		if _, err := js.Publish(ctx, head, []byte("head")); err != nil {
			return nil, fmt.Errorf("termprobe: publish head: %w", err)
		}
	}

	res := &Result{ByReason: map[string]int{}, ByDeliveries: map[uint64]int{}}
	var mu sync.Mutex
	deleted := map[uint64]bool{}
	var checks sync.WaitGroup
	sub, err := nc.Subscribe(advisoryTerminated+o.Stream+".probe", func(m *nats.Msg) {
		var a Advisory
		if json.Unmarshal(m.Data, &a) != nil {
			return
		}
		// Read the message by sequence at once, as a sweeper would.
		checks.Add(1)
		go func() {
			defer checks.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, gerr := st.GetMsg(cctx, a.StreamSeq)
			mu.Lock()
			defer mu.Unlock()
			if res.Advisories == 0 {
				res.First = a
			}
			res.Advisories++
			res.ByReason[a.Reason]++
			res.ByDeliveries[a.Deliveries]++
			if gerr == nil {
				res.Found++
			}
			if !deleted[a.StreamSeq] {
				res.Unmatched++
			}
		}()
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return nil, err
	}

	// Publish, deliver once and leave pending, then delete: what the
	// retriever did with a poll task once a callback had decided its job,
	// Concurrency tasks at a time.
	next := make(chan int)
	errs := make(chan error, o.Concurrency)
	var workers sync.WaitGroup
	for range o.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for i := range next {
				if err := task(ctx, js, st, cons, subject, i, o.DeleteAfter, func(seq uint64) {
					mu.Lock()
					deleted[seq] = true
					mu.Unlock()
				}); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				res.Deleted++
				mu.Unlock()
			}
		}()
	}
	var perr error
feed:
	for i := 0; i < o.Messages; i++ {
		select {
		case next <- i:
		case perr = <-errs:
			break feed
		case <-ctx.Done():
			perr = ctx.Err()
			break feed
		}
	}
	close(next)
	workers.Wait()
	if perr == nil && len(errs) > 0 {
		perr = <-errs
	}
	if perr != nil {
		return nil, perr
	}
	// Wait for the last advisories: until every delete has one, or Settle.
	deadline := time.Now().Add(o.Settle)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := res.Advisories >= res.Deleted
		mu.Unlock()
		if done {
			break
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	_ = sub.Unsubscribe()
	checks.Wait()
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	cinfo, err := cons.Info(ctx)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	if info.Cluster != nil && cinfo.Cluster != nil {
		res.StreamLeader, res.ConsumerLeader = info.Cluster.Leader, cinfo.Cluster.Leader
	}
	defer mu.Unlock()
	res.LeftInStream = info.State.Msgs
	if !o.NoHead {
		res.LeftInStream--
	}
	return res, nil
}

// task publishes message i, receives it once, leaves it pending with a long
// NakWithDelay, and deletes it. deleting is called with its sequence just
// before the delete.
func task(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, cons jetstream.Consumer, subject string, i int, after time.Duration, deleting func(uint64)) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := js.Publish(cctx, subject, []byte(fmt.Sprintf("task %d", i)))
	if err != nil {
		return fmt.Errorf("termprobe: publish: %w", err)
	}
	// Another worker may receive this one; each worker deletes what it
	// published, whoever received it.
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		return fmt.Errorf("termprobe: fetch: %w", err)
	}
	if err := msg.NakWithDelay(time.Hour); err != nil {
		return fmt.Errorf("termprobe: nak: %w", err)
	}
	if after > 0 {
		t := time.NewTimer(after)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	deleting(ack.Sequence)
	if err := st.DeleteMsg(cctx, ack.Sequence); err != nil {
		return fmt.Errorf("termprobe: delete %d: %w", ack.Sequence, err)
	}
	return nil
}

// placeLeaders steps the consumer's leader down until it runs on the stream
// leader's server (LeadersSame) or on another one (LeadersSplit).
func placeLeaders(ctx context.Context, nc *nats.Conn, st jetstream.Stream, cons jetstream.Consumer, want Leaders) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		si, err := st.Info(ctx)
		if err != nil {
			return err
		}
		ci, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		sl, cl := si.Cluster.Leader, ci.Cluster.Leader
		if sl != "" && cl != "" && (sl == cl) == (want == LeadersSame) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("termprobe: cannot place the consumer leader (%s) %s the stream leader (%s)", cl, want, sl)
		}
		if sl != "" && cl != "" {
			req := []byte("{}")
			if want == LeadersSame {
				req = []byte(`{"placement":{"preferred":"` + sl + `"}}`)
			}
			subj := fmt.Sprintf("$JS.API.CONSUMER.LEADER.STEPDOWN.%s.%s", si.Config.Name, ci.Name)
			if _, err := nc.RequestWithContext(ctx, subj, req); err != nil {
				return fmt.Errorf("termprobe: consumer leader stepdown: %w", err)
			}
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
