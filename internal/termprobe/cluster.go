package termprobe

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/natsembed"
)

// Cluster is a JetStream cluster of embedded servers on loopback, each with
// its file store under one directory, that can lose and regain nodes.
type Cluster struct {
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	name, dir         string
	port, clusterPort int
	routes            []string
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

// StartCluster starts n clustered servers with their stores under dir.
func StartCluster(dir string, n int) (*Cluster, error) {
	c := &Cluster{}
	for i := range n {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		cp, err := freePort()
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, &node{name: fmt.Sprintf("n%d", i+1), dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), port: p, clusterPort: cp})
	}
	for _, nd := range c.nodes {
		for _, other := range c.nodes {
			nd.routes = append(nd.routes, fmt.Sprintf("nats://127.0.0.1:%d", other.clusterPort))
		}
	}
	for i := range c.nodes {
		if err := c.Start(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	return c, nil
}

// URLs returns the client URLs of every node, comma-separated.
func (c *Cluster) URLs() string {
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", nd.port))
	}
	return strings.Join(urls, ",")
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.nodes) }

// Start starts node i (again) on its store and ports.
func (c *Cluster) Start(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	if nd.srv != nil {
		return nil
	}
	srv, err := natsembed.Run(natsembed.Options{StoreDir: nd.dir, Port: nd.port, ServerName: nd.name,
		ClusterName: "termprobe", ClusterPort: nd.clusterPort, Routes: nd.routes})
	if err != nil {
		return err
	}
	nd.srv = srv
	return nil
}

// Stop shuts node i down.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// WaitJetStream waits until JetStream answers through js (a meta leader was
// elected), or ctx ends.
func WaitJetStream(ctx context.Context, js jetstream.JetStream) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(cctx)
		cancel()
		if err == nil {
			return nil
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("termprobe: JetStream not available: %w", err)
		case <-t.C:
		}
	}
}

// Connect connects to the cluster with unlimited reconnects.
func (c *Cluster) Connect() (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
