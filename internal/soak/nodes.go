package soak

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
)

// The NATS side of a run: the embedded servers (one, or a 3-node cluster),
// their restarts, and waiting for JetStream.

type natsNode struct {
	name, dir         string
	port, clusterPort int
	srv               *server.Server
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (h *harness) natsURLs() string {
	var urls []string
	for _, n := range h.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(urls, ",")
}

func (h *harness) startNode(i int) error {
	n := h.nodes[i]
	o := natsembed.Options{StoreDir: n.dir, Port: n.port, ServerName: n.name}
	if h.o.Cluster {
		o.ClusterName, o.ClusterPort = "kycpipe-soak", n.clusterPort
		for j, other := range h.nodes {
			if j != i {
				o.Routes = append(o.Routes, fmt.Sprintf("nats://127.0.0.1:%d", other.clusterPort))
			}
		}
	}
	srv, err := natsembed.Run(o)
	if err != nil {
		return fmt.Errorf("soak: start NATS %s: %w", n.name, err)
	}
	n.srv = srv
	return nil
}

func (h *harness) stopNode(i int) {
	if s := h.nodes[i].srv; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		h.nodes[i].srv = nil
	}
}

// waitJetStream waits until JetStream answers (a meta leader exists).
func (h *harness) waitJetStream(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := h.js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("soak: JetStream not available: %w", err)
		}
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}
