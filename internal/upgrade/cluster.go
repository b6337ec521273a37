package upgrade

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/ctxutil"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
)

// cluster is a NATS JetStream cluster of in-process servers (one server
// when it has a single node), each with its own store and ports.
type cluster struct {
	name  string
	nodes []*node
}

type node struct {
	name, dir         string
	port, clusterPort int
	srv               *server.Server
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startCluster starts n servers under dir (3 make a JetStream cluster).
func startCluster(dir string, n int) (*cluster, error) {
	c := &cluster{name: "kycpipe-upgrade"}
	for i := 0; i < n; i++ {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("nats-n%d", i+1)), port: p, clusterPort: cp})
	}
	// A clustered server waits for its routes only in the background, so
	// the nodes can be started one after the other.
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) start(i int) error {
	n := c.nodes[i]
	o := natsembed.Options{StoreDir: n.dir, Port: n.port, ServerName: n.name}
	if len(c.nodes) > 1 {
		o.ClusterName, o.ClusterPort = c.name, n.clusterPort
		for j, other := range c.nodes {
			if j != i {
				o.Routes = append(o.Routes, fmt.Sprintf("nats://127.0.0.1:%d", other.clusterPort))
			}
		}
	}
	srv, err := natsembed.Run(o)
	if err != nil {
		return fmt.Errorf("upgrade: start NATS %s: %w", n.name, err)
	}
	n.srv = srv
	return nil
}

func (c *cluster) stop(i int) {
	if s := c.nodes[i].srv; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i].srv = nil
	}
}

func (c *cluster) close() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// urls is the comma-separated client URL list of every node.
func (c *cluster) urls() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(urls, ",")
}

// waitJetStream waits until JetStream answers (a meta leader exists).
func waitJetStream(ctx context.Context, js jetstream.JetStream, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("upgrade: JetStream not available: %w", err)
		}
		if !ctxutil.Sleep(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}
