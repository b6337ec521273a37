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
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

var users = []string{"admin", "ingest", "worker", "retriever", "notifier", "reader"}

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

func connect(t *testing.T, url, ca, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.RootCAs(ca), nats.UserInfo("kycpipe-"+user, "pw-"+user+"-0f9e8d"),
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

func TestSingleNodeConfiguration(t *testing.T) {
	store := t.TempDir()
	port := freePort(t)
	ca := setEnv(t, store, port)
	ns, err := natsembed.Run(natsembed.Options{ConfigFile: "nats-server.conf"})
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

	// The admin provisions; nobody else may.
	_, adminJS := connect(t, url, ca, "admin")
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, adminJS, topo); err != nil {
		t.Fatalf("admin cannot provision: %v", err)
	}

	ingestNC, ingestJS := connect(t, url, ca, "ingest")
	_, workerJS := connect(t, url, ca, "worker")
	_, retrieverJS := connect(t, url, ca, "retriever")
	readerNC, readerJS := connect(t, url, ca, "reader")

	// Each service does its job: a real pipeline, each stage as its user.
	sim := jumiotest.NewServer(jumiotest.Options{})
	t.Cleanup(sim.Close)
	keys, _ := pipeline.NewAPIKeys([]string{"deploy-test-key-0123456789"})
	log := pipelinetest.Logger(t)
	for _, js := range []jetstream.JetStream{ingestJS, workerJS, retrieverJS} {
		if err := pipeline.Check(ctx, js, topo); err != nil {
			t.Fatalf("a service cannot check the topology: %v", err)
		}
	}
	// A service left at the default --provision=true under its own user is
	// refused (the refusal only arrives asynchronously) and falls back to
	// checking that the resources exist.
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()
	if err := (&service.Common{Provision: true}).Setup(setupCtx, workerJS, topo, log); err != nil {
		t.Fatalf("a worker with --provision=true does not start under its user: %v", err)
	}
	in, err := pipeline.NewIngest(ctx, ingestNC, ingestJS, pipeline.IngestConfig{Topology: topo, APIKeys: keys, Logger: log.Named("ingest")})
	if err != nil {
		t.Fatal(err)
	}
	httpLn, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := &http.Server{Handler: in.Handler()}
	go func() { _ = srv.Serve(httpLn) }()
	t.Cleanup(func() { _ = srv.Close() })
	ingestURL := "http://" + httpLn.Addr().String()

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	t.Cleanup(func() { stop(); <-done; <-done })
	newClients := func(js jetstream.JetStream) *pipeline.Clients {
		ls, err := pipeline.NewLimiters(ctx, js, topo, pipeline.RateLimits{Account: pipeline.Rate{PerSecond: 100, Burst: 10}, Retrieval: pipeline.Rate{PerSecond: 100, Burst: 10}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := pipeline.NewClients(pipeline.JumioConfig{BaseURL: sim.URL, Credentials: sim.Credentials(), Limiters: ls}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	w, err := pipeline.NewWorker(ctx, workerJS, pipeline.WorkerConfig{Topology: topo, Jumio: newClients(workerJS),
		CallbackURL: ingestURL + "/v1/callbacks/jumio", Logger: log.Named("worker")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pipeline.NewRetriever(ctx, retrieverJS, pipeline.RetrieverConfig{Topology: topo, Jumio: newClients(retrieverJS),
		Schedule: []time.Duration{200 * time.Millisecond, 500 * time.Millisecond}, Logger: log.Named("retriever")})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = w.Run(runCtx); done <- struct{}{} }()
	go func() { _ = r.Run(runCtx); done <- struct{}{} }()

	// A downstream reader consumes decisions.
	decisions := pipelinetest.Decisions(t, readerJS, topo.Subjects)

	idemKey := ""
	submit := func(body []byte, contentType string) string {
		req, _ := http.NewRequest(http.MethodPost, ingestURL+"/v1/verifications", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer deploy-test-key-0123456789")
		req.Header.Set("Content-Type", contentType)
		if idemKey != "" {
			req.Header.Set("Idempotency-Key", idemKey)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ JobID string }
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 202 {
			t.Fatalf("submit as the ingest user: %d", resp.StatusCode)
		}
		return out.JobID
	}
	marker := "at-rest-marker-5d41402abc4b2a76"
	email := submit([]byte(`{"customerInternalReference":"deploy-1","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"`+marker+`@example.com"}}`), "application/json")
	// An Idempotency-Key binds the key to the job: ingest writes that too.
	idemKey = "deploy-idempotency-key-1"
	submit([]byte(`{"jobId":"deploy-idem","customerInternalReference":"deploy-idem","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"y@example.com"}}`), "application/json")
	idemKey = ""
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormField("request")
	_, _ = fw.Write([]byte(`{"customerInternalReference":"deploy-2","channel":"API",` + pipelinetest.APIImageFields(10011) + `}`))
	for _, p := range []string{"FRONT", "FACE"} {
		fw, _ := mw.CreateFormFile(p, p+".png")
		_, _ = fw.Write(jumiotest.PNG(640, 480))
	}
	_ = mw.Close()
	images := submit(buf.Bytes(), mw.FormDataContentType())
	for _, id := range []string{email, images} {
		decisions.WaitN(t, 1, pipelinetest.DefaultTimeout, pipelinetest.ForJob[*messages.DecisionEvent](id), "decision for "+id)
	}
	// A terminal Jumio error is dead-lettered by the worker user.
	sim.FailNext(jumiotest.RouteCreateAccount, 1, 400)
	failed := submit([]byte(`{"customerInternalReference":"deploy-3","workflowDefinition":{"key":10066},"channel":"API","preparedData":{"email":"x@example.com"}}`), "application/json")
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		list, err := pipeline.ListDeadLetters(ctx, adminJS, topo.Subjects, pipeline.DLQFilter{JobID: failed})
		return err == nil && len(list) == 1
	}, "the worker user could not dead-letter")

	// Forbidden actions, one or more per user.
	deleteStream := func(js jetstream.JetStream) func(context.Context) error {
		return func(ctx context.Context) error { return js.DeleteStream(ctx, topo.Subjects.StreamJobs()) }
	}
	readDecisions := func(js jetstream.JetStream) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := js.OrderedConsumer(ctx, topo.Subjects.StreamDecisions(), jetstream.OrderedConsumerConfig{})
			if err != nil {
				return err
			}
			c, err := js.OrderedConsumer(ctx, topo.Subjects.StreamDecisions(), jetstream.OrderedConsumerConfig{})
			if err != nil {
				return err
			}
			_, err = c.Next(jetstream.FetchMaxWait(time.Second))
			return err
		}
	}
	publish := func(js jetstream.JetStream, subject string) func(context.Context) error {
		return func(ctx context.Context) error { _, err := js.Publish(ctx, subject, []byte(`{}`)); return err }
	}
	for name, js := range map[string]jetstream.JetStream{"ingest": ingestJS, "worker": workerJS, "retriever": retrieverJS, "reader": readerJS} {
		forbidden(t, name, "delete a stream", deleteStream(js))
		forbidden(t, name, "create a stream", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ROGUE", Subjects: []string{"rogue.>"}})
			return err
		})
	}
	forbidden(t, "ingest", "publish a decision", publish(ingestJS, topo.Subjects.Decision("PASSED")))
	forbidden(t, "ingest", "read decisions", readDecisions(ingestJS))
	forbidden(t, "worker", "read decisions", readDecisions(workerJS))
	forbidden(t, "worker", "publish a decision", publish(workerJS, topo.Subjects.Decision("PASSED")))
	forbidden(t, "retriever", "submit a job", publish(retrieverJS, topo.Subjects.JobsSubmit()))
	forbidden(t, "reader", "submit a job", publish(readerJS, topo.Subjects.JobsSubmit()))
	forbidden(t, "reader", "read job state", func(ctx context.Context) error {
		kv, err := readerJS.KeyValue(ctx, topo.Subjects.BucketJobs())
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, "job."+email)
		return err
	})
	if _, err := readerNC.SubscribeSync(topo.Subjects.JobsSubmit()); err == nil {
		if err := readerNC.Flush(); err == nil && readerNC.LastError() == nil {
			// The server reports subscribe violations asynchronously.
			pipelinetest.Eventually(t, 5*time.Second, func() bool { return readerNC.LastError() != nil }, "reader could subscribe to jobs")
		}
	}

	// Encryption at rest: the marker is nowhere in the store's files.
	found := ""
	_ = filepath.WalkDir(store, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(marker)) {
			found = path
			return errors.New("found")
		}
		return nil
	})
	if found != "" {
		t.Errorf("applicant data stored in clear in %s", found)
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
	_, workerJS := connect(t, url, ca, "worker")
	forbidden(t, "worker", "delete a stream on the cluster", func(ctx context.Context) error { return workerJS.DeleteStream(ctx, topo.Subjects.StreamJobs()) })
}
