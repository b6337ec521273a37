// Package natsdeploy_test loads the NATS server configurations of
// deploy/nats into embedded servers and shows both sides of their
// permissions: every kycpipe service can do its job as its own user, and a
// representative forbidden action of each is refused.
package natsdeploy_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

var users = []string{"admin", "operator", "ingest", "console", "worker", "retriever", "notifier", "reader"}

// writeTLS creates a CA and a server certificate for 127.0.0.1/localhost.
func writeTLS(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kycpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for path, block := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: caDER}, cert: {Type: "CERTIFICATE", Bytes: srvDER}, key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// setEnv sets the environment the configuration files read (t.Setenv:
// restored after the test).
func setEnv(t *testing.T, store string, port int) (caFile string) {
	t.Helper()
	ca, cert, key := writeTLS(t, t.TempDir())
	env := map[string]string{
		"NATS_SERVER_NAME": "kycpipe-test", "NATS_PORT": fmt.Sprint(port), "NATS_MONITOR_PORT": fmt.Sprint(freePort(t)),
		"NATS_STORE_DIR": store, "NATS_TLS_CERT": cert, "NATS_TLS_KEY": key, "NATS_TLS_CA": ca,
		"KYCPIPE_JS_KEY": "f1d2d2f924e986ac86fdf7b36c94bcdf32beec15",
	}
	for _, u := range users {
		env["KYCPIPE_NATS_"+strings.ToUpper(u)+"_PASSWORD"] = "pw-" + u + "-0f9e8d"
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return ca
}

// connect connects as user, naming the connection "kycpipe-<user>" (the
// server's log names it in a permissions violation).
func connect(t *testing.T, url, ca, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connectNamed(t, url, ca, user, "kycpipe-"+user)
}

// probe connects as user for a check expected to be refused: its
// violations are the point, and are told apart by the name "probe-<user>".
func probe(t *testing.T, url, ca, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return connectNamed(t, url, ca, user, "probe-"+user)
}

func connectNamed(t *testing.T, url, ca, user, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name(name), nats.RootCAs(ca), nats.UserInfo("kycpipe-"+user, "pw-"+user+"-0f9e8d"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// forbidden asserts that op fails (a permissions violation surfaces as an
// error or a timeout).
func forbidden(t *testing.T, who, what string, op func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := op(ctx); err == nil {
		t.Errorf("%s could %s; the configuration must refuse it", who, what)
	}
}

// refusals runs forbidden checks concurrently (a refused request only
// ends at its timeout).
type refusals struct {
	t  *testing.T
	wg sync.WaitGroup
}

func (r *refusals) forbidden(who, what string, op func(ctx context.Context) error) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		forbidden(r.t, who, what, op)
	}()
}

func (r *refusals) wait() { r.wg.Wait() }

// TestSingleNodeConfiguration loads nats-server.conf and runs the whole
// product under its users (runProduct: every feature, each process as its
// own user, kycctl as the operator), then checks that the server logged no
// permissions violation by any of them, that each user's forbidden actions
// are refused, and that applicant data is encrypted at rest.
func TestSingleNodeConfiguration(t *testing.T) {
	store := t.TempDir()
	port := freePort(t)
	ca := setEnv(t, store, port)
	serverLog, logs := natsLog()
	ns, err := natsembed.Run(natsembed.Options{ConfigFile: "nats-server.conf", Logger: serverLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	ctx := context.Background()

	// Without credentials, or with the wrong ones, nothing works.
	if nc, err := nats.Connect(url, nats.RootCAs(ca)); err == nil {
		nc.Close()
		t.Error("anonymous connection accepted")
	}
	if nc, err := nats.Connect(url, nats.RootCAs(ca), nats.UserInfo("kycpipe-admin", "guess")); err == nil {
		nc.Close()
		t.Error("wrong password accepted")
	}
	if nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port), nats.UserInfo("kycpipe-admin", "pw-admin-0f9e8d"), nats.Secure(nil)); err == nil {
		nc.Close()
		t.Error("connection without a trusted CA accepted")
	}

	// The admin provisions; nobody else may. A service left at the default
	// --provision=true under its own user is refused (the refusal only
	// arrives asynchronously) and falls back to checking that the
	// resources exist.
	_, adminJS := connect(t, url, ca, "admin")
	topo := productTopology()
	if err := pipeline.Provision(ctx, adminJS, topo); err != nil {
		t.Fatalf("admin cannot provision: %v", err)
	}
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	_, provisioningWorker := probe(t, url, ca, "worker")
	if err := (&service.Common{Provision: true}).Setup(setupCtx, provisioningWorker, topo, pipelinetest.Logger(t)); err != nil {
		t.Fatalf("a worker with --provision=true does not start under its user: %v", err)
	}

	// Every feature, each process as its own user.
	p := startProduct(t, url, ca, topo, productOptions{})
	runProduct(t, p)
	p.stop()
	if t.Failed() {
		return
	}
	// Not one refusal on the way: a missing grant on a best-effort path
	// (index upkeep, flow control, clean-up) shows only here.
	if v := violations(logs, `:go:kycpipe-`); len(v) > 0 {
		t.Errorf("the product hit %d permissions violations; a grant is missing:\n%s", len(v), strings.Join(v, "\n"))
	}

	// Forbidden actions, one or more per user.
	testForbidden(t, url, ca, topo)
	if v := violations(logs, `:go:kycpipe-`); len(v) > 0 {
		t.Errorf("permissions violations outside the forbidden checks:\n%s", strings.Join(v, "\n"))
	}

	// Encryption at rest: the marker is nowhere in the store's files.
	found := ""
	_ = filepath.WalkDir(store, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(atRestMarker)) {
			found = path
			return errors.New("found")
		}
		return nil
	})
	if found != "" {
		t.Errorf("applicant data stored in clear in %s", found)
	}
}

// testForbidden tries a representative forbidden action of each user, on
// connections of its own (named probe-<user>).
func testForbidden(t *testing.T, url, ca string, topo pipeline.Topology) {
	s := topo.Subjects
	r := &refusals{t: t}
	defer r.wait()
	js := map[string]jetstream.JetStream{}
	ncs := map[string]*nats.Conn{}
	for _, u := range []string{"operator", "ingest", "worker", "retriever", "notifier", "reader"} {
		ncs[u], js[u] = probe(t, url, ca, u)
	}
	deleteStream := func(js jetstream.JetStream) func(context.Context) error {
		return func(ctx context.Context) error { return js.DeleteStream(ctx, s.StreamJobs()) }
	}
	readDecisions := func(js jetstream.JetStream) func(context.Context) error {
		return func(ctx context.Context) error {
			c, err := js.OrderedConsumer(ctx, s.StreamDecisions(), jetstream.OrderedConsumerConfig{})
			if err != nil {
				return err
			}
			_, err = c.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}
	}
	getMsg := func(js jetstream.JetStream, stream string) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			_, err = st.GetMsg(ctx, 1)
			return err
		}
	}
	publish := func(js jetstream.JetStream, subject string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := js.Publish(ctx, subject, []byte(`{}`)); return err }
	}
	readJob := func(js jetstream.JetStream) func(context.Context) error {
		return func(ctx context.Context) error {
			kv, err := js.KeyValue(ctx, s.BucketJobs())
			if err != nil {
				return err
			}
			_, err = kv.Get(ctx, "lease.retention")
			return err
		}
	}
	purge := func(js jetstream.JetStream, stream string) func(context.Context) error {
		return func(ctx context.Context) error {
			st, err := js.Stream(ctx, stream)
			if err != nil {
				return err
			}
			return st.Purge(ctx)
		}
	}
	for name, js := range js {
		r.forbidden(name, "delete a stream", deleteStream(js))
		r.forbidden(name, "create a stream", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue.>"}})
			return err
		})
		r.forbidden(name, "purge the jobs stream", purge(js, s.StreamJobs()))
		r.forbidden(name, "purge the audit trail", purge(js, s.StreamAudit()))
		r.forbidden(name, "create a durable consumer on the jobs stream", func(ctx context.Context) error {
			_, err := js.CreateConsumer(ctx, s.StreamJobs(), jetstream.ConsumerConfig{Durable: "rogue", AckPolicy: jetstream.AckExplicitPolicy})
			return err
		})
	}
	r.forbidden("ingest", "publish a decision", publish(js["ingest"], s.Decision("PASSED")))
	r.forbidden("ingest", "read decisions", readDecisions(js["ingest"]))
	r.forbidden("ingest", "read dead letters", getMsg(js["ingest"], s.StreamDLQ()))
	r.forbidden("ingest", "write an audit record", publish(js["ingest"], s.Audit(messages.AuditErasure)))
	r.forbidden("worker", "read decisions", readDecisions(js["worker"]))
	r.forbidden("worker", "read a decision by sequence", getMsg(js["worker"], s.StreamDecisions()))
	r.forbidden("worker", "publish a decision", publish(js["worker"], s.Decision("PASSED")))
	r.forbidden("worker", "read dead letters", getMsg(js["worker"], s.StreamDLQ()))
	r.forbidden("retriever", "submit a job", publish(js["retriever"], s.JobsSubmit()))
	r.forbidden("retriever", "write an audit record", publish(js["retriever"], s.Audit(messages.AuditErasure)))
	r.forbidden("notifier", "submit a job", publish(js["notifier"], s.JobSubmit("job_rogue")))
	r.forbidden("notifier", "read job records", readJob(js["notifier"]))
	r.forbidden("notifier", "publish a decision", publish(js["notifier"], s.Decision("PASSED")))
	r.forbidden("notifier", "read a job message", getMsg(js["notifier"], s.StreamJobs()))
	r.forbidden("notifier", "read the images", getMsg(js["notifier"], "OBJ_"+s.BucketImages()))
	r.forbidden("reader", "submit a job", publish(js["reader"], s.JobsSubmit()))
	r.forbidden("reader", "read job state", readJob(js["reader"]))
	r.forbidden("reader", "delete the notifier's consumer", func(ctx context.Context) error {
		return js["reader"].DeleteConsumer(ctx, s.StreamDecisions(), pipeline.ConsumerNotifierDecisions)
	})
	r.forbidden("operator", "read the images", getMsg(js["operator"], "OBJ_"+s.BucketImages()))
	r.forbidden("operator", "delete the notifier's consumer", func(ctx context.Context) error {
		return js["operator"].DeleteConsumer(ctx, s.StreamEvents(), pipeline.ConsumerNotifierEvents)
	})
	if _, err := ncs["reader"].SubscribeSync(s.JobsSubmit()); err == nil {
		if err := ncs["reader"].Flush(); err == nil && ncs["reader"].LastError() == nil {
			// The server reports subscribe violations asynchronously.
			pipelinetest.Eventually(t, 5*time.Second, func() bool { return ncs["reader"].LastError() != nil }, "reader could subscribe to jobs")
		}
	}
}

func TestClusterConfiguration(t *testing.T) {
	ports := []int{freePort(t), freePort(t), freePort(t)}
	routes := []int{freePort(t), freePort(t), freePort(t)}
	var ca string
	var servers []func()
	for i := range ports {
		ca = setEnv(t, t.TempDir(), ports[i])
		if i > 0 {
			// Every node must trust the same CA: reuse node 1's files.
			t.Setenv("NATS_TLS_CA", os.Getenv("KYCPIPE_TEST_CA"))
			t.Setenv("NATS_TLS_CERT", os.Getenv("KYCPIPE_TEST_CERT"))
			t.Setenv("NATS_TLS_KEY", os.Getenv("KYCPIPE_TEST_KEY"))
			ca = os.Getenv("KYCPIPE_TEST_CA")
		} else {
			t.Setenv("KYCPIPE_TEST_CA", os.Getenv("NATS_TLS_CA"))
			t.Setenv("KYCPIPE_TEST_CERT", os.Getenv("NATS_TLS_CERT"))
			t.Setenv("KYCPIPE_TEST_KEY", os.Getenv("NATS_TLS_KEY"))
		}
		t.Setenv("NATS_SERVER_NAME", fmt.Sprintf("n%d", i+1))
		t.Setenv("NATS_CLUSTER_PORT", fmt.Sprint(routes[i]))
		var others []string
		for j := range routes {
			if j != i {
				others = append(others, fmt.Sprintf("tls://127.0.0.1:%d", routes[j]))
			}
		}
		t.Setenv("NATS_ROUTE_1", others[0])
		t.Setenv("NATS_ROUTE_2", others[1])
		ns, err := natsembed.Run(natsembed.Options{ConfigFile: "cluster/node.conf"})
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		servers = append(servers, func() { ns.Shutdown(); ns.WaitForShutdown() })
	}
	t.Cleanup(func() {
		for _, stop := range servers {
			stop()
		}
	})
	url := fmt.Sprintf("tls://127.0.0.1:%d,tls://127.0.0.1:%d,tls://127.0.0.1:%d", ports[0], ports[1], ports[2])
	_, js := connect(t, url, ca, "admin")
	topo := pipeline.Topology{Replicas: 3}.WithDefaults()
	var err error
	pipelinetest.Eventually(t, 60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = pipeline.Provision(ctx, js, topo)
		return err == nil
	}, "the cluster never accepted R3 streams: %v", err)
	st, err := js.Stream(context.Background(), topo.Subjects.StreamJobs())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil || info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("jobs stream = %+v, %v", info, err)
	}
	// The users work on the cluster too: ingest stores a job on its own
	// subject, the worker pulls and acknowledges it, the notifier finds
	// its resources; and the worker may not delete a stream.
	ctx := context.Background()
	_, ingestJS := connect(t, url, ca, "ingest")
	if _, err := ingestJS.Publish(ctx, topo.Subjects.JobSubmit("job_cluster"), []byte(`{}`)); err != nil {
		t.Fatalf("ingest cannot store a job on the cluster: %v", err)
	}
	_, workerJS := connect(t, url, ca, "worker")
	c, err := workerJS.Consumer(ctx, topo.Subjects.StreamJobs(), pipeline.ConsumerWorker)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("the worker cannot pull on the cluster: %v", err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatalf("the worker cannot acknowledge on the cluster: %v", err)
	}
	_, notifierJS := connect(t, url, ca, "notifier")
	if err := pipeline.Check(ctx, notifierJS, topo); err != nil {
		t.Fatalf("the notifier cannot check the topology on the cluster: %v", err)
	}
	forbidden(t, "worker", "delete a stream on the cluster", func(ctx context.Context) error { return workerJS.DeleteStream(ctx, topo.Subjects.StreamJobs()) })
}

// TestConsoleUserHasIngestGrants: the console runs inside ingest, so its
// user must keep every grant of ingest's (permissions.conf repeats them:
// the configuration language cannot merge two permission blocks).
func TestConsoleUserHasIngestGrants(t *testing.T) {
	setEnv(t, t.TempDir(), freePort(t))
	opts, err := server.ProcessConfigFile("nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	perms := map[string]*server.Permissions{}
	for _, u := range opts.Users {
		perms[u.Username] = u.Permissions
	}
	ingest, console := perms["kycpipe-ingest"], perms["kycpipe-console"]
	if ingest == nil || console == nil {
		t.Fatalf("users: %v", perms)
	}
	missing := func(what string, want, have *server.SubjectPermission) {
		for _, s := range want.Allow {
			if !slices.Contains(have.Allow, s) {
				t.Errorf("kycpipe-console lacks ingest's %s grant %q", what, s)
			}
		}
	}
	missing("publish", ingest.Publish, console.Publish)
	missing("subscribe", ingest.Subscribe, console.Subscribe)
}
