package chaosnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/internal/procs"
)

// node is one nats-server process of the cluster, in its own namespace.
type node struct {
	host *Host
	conf string
	log  string
	bin  string
	skew time.Duration // monotonic and boot-time clock offset (time namespace), 0: none
	proc *procs.Proc
}

// Ports every node uses on its own address.
const (
	clientPort  = 4222
	clusterPort = 6222
	monitorPort = 8222
)

func (n *node) url() string { return fmt.Sprintf("nats://%s:%d", n.host.IP, clientPort) }

func (n *node) monitor(path string) string {
	return fmt.Sprintf("http://%s:%d%s", n.host.IP, monitorPort, path)
}

// writeConfig writes the node's configuration: plain TCP, no auth (the
// production configs in deploy/nats add TLS and users; they change nothing
// about partitions), JetStream with a file store in dir.
func (n *node) writeConfig(dir string, peers []*node) error {
	var routes []string
	for _, p := range peers {
		if p != n {
			routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://%s:%d", p.host.IP, clusterPort)))
		}
	}
	conf := fmt.Sprintf(`server_name: %s
listen: "%s:%d"
http: "%s:%d"
max_payload: 2MB
jetstream {
  store_dir: %q
  max_file_store: 20GB
  max_memory_store: 256MB
}
cluster {
  name: kycpipe-chaosnet
  listen: "%s:%d"
  routes: [%s]
}
`, n.host.Name, n.host.IP, clientPort, n.host.IP, monitorPort, filepath.Join(dir, "store-"+n.host.Name),
		n.host.IP, clusterPort, strings.Join(routes, ", "))
	n.conf = filepath.Join(dir, n.host.Name+".conf")
	n.log = filepath.Join(dir, n.host.Name+".log")
	return os.WriteFile(n.conf, []byte(conf), 0o600)
}

func (n *node) start() error {
	args := []string{"-c", n.conf}
	var argv []string
	if n.skew > 0 {
		// A time namespace offsets the monotonic and boot-time clocks only:
		// Linux has no per-namespace wall clock.
		secs := fmt.Sprint(int64(n.skew / time.Second))
		argv = n.host.Command("unshare", append([]string{"--time", "--fork", "--kill-child", "--monotonic", secs, "--boottime", secs, n.bin}, args...)...)
	} else {
		argv = n.host.Command(n.bin, args...)
	}
	p, err := procs.StartArgs(n.host.Name, "ip", argv, nil, n.log)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

func (n *node) stop() {
	if n.proc != nil {
		n.proc.Stop(10 * time.Second)
	}
}

// monitorClient is for the nodes' monitoring endpoints.
var monitorClient = &http.Client{Timeout: 3 * time.Second}

func getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := monitorClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if v == nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

// healthy reports whether the node's /healthz says JetStream is healthy
// (the node is current with the meta group and its streams and consumers).
func (n *node) healthy(ctx context.Context) bool {
	code, err := getJSON(ctx, n.monitor("/healthz"), nil)
	return err == nil && code == http.StatusOK
}

// metaLeader is the meta group's leader as this node sees it.
func (n *node) metaLeader(ctx context.Context) (string, error) {
	var jsz struct {
		Meta *struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if _, err := getJSON(ctx, n.monitor("/jsz"), &jsz); err != nil {
		return "", err
	}
	if jsz.Meta == nil || jsz.Meta.Leader == "" {
		return "", fmt.Errorf("chaosnet: %s knows no meta leader", n.host.Name)
	}
	return jsz.Meta.Leader, nil
}

// hasClient reports whether a client connection with this name is on the
// node.
func (n *node) hasClient(ctx context.Context, name string) (bool, error) {
	var connz struct {
		Conns []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if _, err := getJSON(ctx, n.monitor("/connz?limit=4096"), &connz); err != nil {
		return false, err
	}
	for _, c := range connz.Conns {
		if c.Name == name {
			return true, nil
		}
	}
	return false, nil
}
