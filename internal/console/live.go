package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Live views are Server-Sent Events: the browser's EventSource holds one
// request open and the console writes events to it; the page works
// without them (it shows what it had when loaded). A stream ends after
// streamLifetime, or when the console drains, and the browser reconnects
// by itself. Live decisions come from one core NATS subscription to
// kyc.decisions.* per console (while someone watches), fanned out to the
// streams; a row holds no personal data (IDs, decision, label, score).

const (
	streamLifetime   = 5 * time.Minute
	streamHeartbeat  = 15 * time.Second
	liveRecent       = 50
	liveClientBuffer = 64
)

type decisionRow struct {
	At                                          time.Time
	JobID, Type, Label, Risk, Region, JumioStat string
	Alerts                                      string
}

func decisionRowOf(ev *messages.DecisionEvent, at time.Time, alerts string) decisionRow {
	row := decisionRow{At: at, JobID: ev.JobID, Type: ev.Decision.Type, Label: ev.Decision.Label, Risk: "—", Region: ev.Region, JumioStat: ev.Status, Alerts: alerts}
	if !ev.DecidedAt.IsZero() {
		row.At = ev.DecidedAt
	}
	if ev.Decision.RiskScore != nil {
		row.Risk = fmt.Sprintf("%g", *ev.Decision.RiskScore)
	}
	return row
}

// decisionHub fans decisions out to the live streams.
type decisionHub struct {
	c       *Console
	mu      sync.Mutex
	sub     *nats.Subscription
	clients map[chan []byte]struct{}
	seen    []string // recent message IDs: a republish is shown once
}

func newDecisionHub(c *Console) *decisionHub {
	return &decisionHub{c: c, clients: map[chan []byte]struct{}{}}
}

// join subscribes a stream; leave must be called when it ends.
func (h *decisionHub) join() (ch chan []byte, leave func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub == nil {
		if h.sub, err = h.c.js.Conn().Subscribe(h.c.subj.Decisions(), h.onMsg); err != nil {
			return nil, nil, err
		}
	}
	ch = make(chan []byte, liveClientBuffer)
	h.clients[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.clients, ch)
		if len(h.clients) == 0 && h.sub != nil {
			_ = h.sub.Unsubscribe()
			h.sub = nil
		}
	}, nil
}

func (h *decisionHub) onMsg(m *nats.Msg) {
	ev, err := messages.DecodeDecision(m.Data)
	if err != nil {
		return
	}
	id := m.Header.Get(messages.HeaderMsgID)
	h.mu.Lock()
	defer h.mu.Unlock()
	if id != "" {
		for _, s := range h.seen {
			if s == id {
				return
			}
		}
		h.seen = append(h.seen, id)
		if len(h.seen) > 512 {
			h.seen = h.seen[len(h.seen)-256:]
		}
	}
	b, err := h.c.fragment("decision-row", page{Now: h.c.now(), Data: decisionRowOf(ev, h.c.now(), m.Header.Get("Kyc-Alerts"))})
	if err != nil {
		h.c.log.Error("console: decision row not rendered", zap.Error(err))
		return
	}
	for ch := range h.clients {
		select {
		case ch <- b:
		default: // a stream that does not keep up misses rows
		}
	}
}

func (h *decisionHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sub != nil {
		_ = h.sub.Unsubscribe()
		h.sub = nil
	}
}

type liveData struct {
	Recent []decisionRow
	Err    string
}

// livePage shows the latest decisions; its script adds new ones as they
// are published.
func (c *Console) livePage(w http.ResponseWriter, q request) {
	d := &liveData{}
	rows, err := c.recentDecisions(q.r.Context(), liveRecent)
	if err != nil {
		d.Err = "Cannot read the latest decisions: " + errText(err)
	}
	d.Recent = rows
	c.render(w, q, http.StatusOK, "live.html", "Live decisions", "live", d, nil)
}

// recentDecisions reads the last n decision events, newest first.
func (c *Console) recentDecisions(ctx context.Context, n int) ([]decisionRow, error) {
	st, err := c.js.Stream(ctx, c.subj.StreamDecisions())
	if err != nil {
		return nil, err
	}
	info := st.CachedInfo()
	if info.State.Msgs == 0 {
		return nil, nil
	}
	start := max(info.State.FirstSeq, info.State.LastSeq-min(info.State.LastSeq, uint64(n))+1)
	cons, err := c.js.OrderedConsumer(ctx, c.subj.StreamDecisions(), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start, InactiveThreshold: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = c.js.DeleteConsumer(dctx, c.subj.StreamDecisions(), ci.Name)
			cancel()
		}
	}()
	batch, err := cons.FetchNoWait(n)
	if err != nil {
		return nil, err
	}
	var rows []decisionRow
	for m := range batch.Messages() {
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		ev, err := messages.DecodeDecision(m.Data())
		if err != nil {
			continue
		}
		rows = append([]decisionRow{decisionRowOf(ev, md.Timestamp, m.Headers().Get("Kyc-Alerts"))}, rows...)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		return rows, err
	}
	return rows, nil
}

// decisionStream sends each new decision as a table row.
func (c *Console) decisionStream(w http.ResponseWriter, q request) {
	ch, leave, err := c.live.join()
	if err != nil {
		c.unavailable(w, q.r, "live decisions", err)
		return
	}
	defer leave()
	c.stream(w, q.r, func(ctx context.Context, send func(string, []byte) error) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case b := <-ch:
				if err := send("decision", b); err != nil {
					return err
				}
			}
		}
	})
}

// stream serves a Server-Sent Events response: run sends events until its
// context ends (the client left, the stream's lifetime passed, or the
// console drains); comments keep idle connections open.
func (c *Console) stream(w http.ResponseWriter, r *http.Request, run func(ctx context.Context, send func(event string, data []byte) error) error) {
	rc := http.NewResponseController(w)
	lifetime := streamLifetime
	if err := rc.SetWriteDeadline(time.Now().Add(streamLifetime + time.Minute)); err != nil {
		lifetime = 90 * time.Second // the server's write timeout (2 min) ends it otherwise
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx, cancel := context.WithTimeout(r.Context(), lifetime)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var mu sync.Mutex
	finished := false // the handler returned: the writer is no longer ours
	write := func(b []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return context.Canceled
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	go func() {
		t := time.NewTicker(streamHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if write([]byte(": keep-alive\n\n")) != nil {
					cancel()
					return
				}
			}
		}
	}()
	send := func(event string, data []byte) error {
		var b bytes.Buffer
		fmt.Fprintf(&b, "event: %s\n", event)
		for _, line := range bytes.Split(data, []byte("\n")) {
			b.WriteString("data: ")
			b.Write(bytes.TrimRight(line, "\r"))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
		return write(b.Bytes())
	}
	if err := run(ctx, send); err != nil {
		c.log.Debug("console: stream ended", zap.Error(err))
	}
	cancel()
	mu.Lock()
	finished = true
	mu.Unlock()
}
