package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readyTTL is how long a readiness verdict is reused: probes come often,
// and checking the topology costs a JetStream request per resource.
const readyTTL = 5 * time.Second

// readiness answers "can this process work?": NATS connected, and every
// stream, consumer and bucket of the topology present (checked at most every
// readyTTL). Stages add their own conditions with extra.
type readiness struct {
	nc   *nats.Conn // nil: only the topology is checked
	js   jetstream.JetStream
	topo Topology
	now  func() time.Time

	mu  sync.Mutex
	at  time.Time
	err error
}

func newReadiness(js jetstream.JetStream, topo Topology, now func() time.Time) *readiness {
	return &readiness{nc: js.Conn(), js: js, topo: topo, now: now}
}

// check returns nil when the process can work, else why not.
func (r *readiness) check(ctx context.Context) error {
	if r.nc != nil && r.nc.Status() != nats.CONNECTED {
		return fmt.Errorf("NATS %s", strings.ToLower(r.nc.Status().String()))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && r.now().Sub(r.at) < readyTTL {
		return r.err
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r.err = Check(cctx, r.js, r.topo)
	r.at = r.now()
	return r.err
}
