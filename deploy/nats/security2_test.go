package natsdeploy_test

// Security II (issue 13), findings 4 and 5, against the exact configuration
// files of deploy/nats.

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// accountHash is nats-server's hash of an account name, the second token
// of a v2 ack subject.
func accountHash(name string) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	sum := sha256.Sum256([]byte(name))
	b := make([]byte, 8)
	for i := range b {
		b[i] = digits[int(sum[i]%62)]
	}
	return string(b)
}

// watched is a connection as one user that records the server's
// asynchronous errors (that is how a refused publish is reported).
type watched struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []string
}

func connectWatched(t *testing.T, url, ca, user string) *watched {
	t.Helper()
	w := &watched{user: user}
	nc, err := nats.Connect(url, nats.RootCAs(ca), nats.UserInfo("kycpipe-"+user, "pw-"+user+"-0f9e8d"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			w.mu.Lock()
			w.errs = append(w.errs, err.Error())
			w.mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	w.nc = nc
	if w.js, err = jetstream.New(nc, jetstream.WithDefaultTimeout(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	return w
}

// refused reports whether the server refused a publish to subject.
func (w *watched) refused(subject string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.errs {
		if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

// publish sends a core NATS message and makes sure the server has read it.
func (w *watched) publish(t *testing.T, subject, data string) {
	t.Helper()
	if err := w.nc.Publish(subject, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := w.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// startDeployServer loads nats-server.conf (with extra configuration lines
// appended through an including file) into an embedded server.
func startDeployServer(t *testing.T, extra string) (url, ca string) {
	t.Helper()
	port := freePort(t)
	ca = setEnv(t, t.TempDir(), port)
	// nats-server resolves includes relative to the including file only.
	conf, _ := filepath.Abs("nats-server.conf")
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, conf)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "test.conf")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("include %q\n%s\n", rel, extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	ns, err := natsembed.Run(natsembed.Options{ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return fmt.Sprintf("tls://127.0.0.1:%d", port), ca
}

// hostileUsers are the users whose forged acks are tried.
var hostileUsers = []string{"operator", "ingest", "worker", "retriever", "notifier", "reader"}

// victim is a message delivered to a consumer and not yet acknowledged.
type victim struct {
	stream, consumer string
	owners           []string // the users whose consumer it is
	seq              uint64
	msg              jetstream.Msg
}

// hostileNATS is one row of docs/SECURITY.md's table of hostile NATS
// clients.
type hostileNATS struct{ finding, client, action, observed string }

// TestHostileNATSClients tries, against the exact configuration files, what
// a compromised service could do with its NATS user (Security II, findings
// 4 and 5), and keeps the table in docs/SECURITY.md in step with what is
// observed (regenerate it with -update-security-doc).
//
// Finding 4 (medium): every service user, the read-only reader included,
// could publish to $JS.ACK.>, so with a guessed stream sequence the reader
// removed pending poll tasks (+ACK, +TERM). Each user may now ack only its
// own consumers, in both ack subject forms (v1, and the domain-qualified v2
// of nats-server 2.14+); the test runs with the server delivering either.
//
// Finding 5 (low): see compromisedIngest.
func TestHostileNATSClients(t *testing.T) {
	var rows []hostileNATS
	for _, v2 := range []bool{false, true} {
		// (No comma in the name: it becomes part of paths the config reads.)
		t.Run(map[bool]string{false: "forged acks server v1", true: "forged acks server v2"}[v2], func(t *testing.T) {
			extra := ""
			if v2 {
				extra = "feature_flags { js_ack_fc_v2: true }"
			}
			url, ca := startDeployServer(t, extra)
			r := testForgedAcks(t, url, ca, v2)
			if !v2 {
				rows = append(rows, r...)
			}
		})
	}
	t.Run("compromised ingest", func(t *testing.T) { rows = append(rows, compromisedIngest(t)...) })
	t.Run("hostile reader", func(t *testing.T) { rows = append(rows, hostileReader(t)...) })
	t.Run("compromised services", func(t *testing.T) { rows = append(rows, compromisedServices(t)...) })
	if t.Failed() {
		return
	}
	syncNATSTable(t, rows)
}

func testForgedAcks(t *testing.T, url, ca string, v2 bool) []hostileNATS {
	ctx := context.Background()
	admin := connectWatched(t, url, ca, "admin")
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, admin.js, topo); err != nil {
		t.Fatal(err)
	}
	s := topo.Subjects
	users := map[string]*watched{}
	for _, u := range hostileUsers {
		users[u] = connectWatched(t, url, ca, u)
	}
	// The reader's own durable consumer on the decisions.
	if _, err := users["reader"].js.CreateOrUpdateConsumer(ctx, s.StreamDecisions(), jetstream.ConsumerConfig{
		Durable: "downstream", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	victims := []*victim{
		{stream: s.StreamJobs(), consumer: pipeline.ConsumerWorker, owners: []string{"worker"}},
		{stream: s.StreamCallbacks(), consumer: pipeline.ConsumerRetrieverCallback, owners: []string{"retriever"}},
		{stream: s.StreamRetrieve(), consumer: pipeline.ConsumerRetrieverPoll, owners: []string{"retriever"}},
		{stream: s.StreamAdvisories(), consumer: pipeline.ConsumerDLQSweeper, owners: []string{"worker", "retriever"}},
		{stream: s.StreamDecisions(), consumer: "downstream", owners: []string{"reader"}},
		{stream: s.StreamErasures(), consumer: pipeline.ConsumerEraser, owners: []string{"worker"}},
		{stream: s.StreamEvents(), consumer: pipeline.ConsumerNotifierEvents, owners: []string{"notifier"}},
		{stream: s.StreamDecisions(), consumer: pipeline.ConsumerNotifierDecisions, owners: []string{"notifier"}},
		{stream: s.StreamWebhooks(), consumer: pipeline.ConsumerNotifierDelivery, owners: []string{"notifier"}},
	}
	subjectOf := map[string]string{
		s.StreamJobs(): s.JobsSubmit(), s.StreamCallbacks(): s.Callback("amer-1"), s.StreamRetrieve(): s.Retrieve("amer-1"),
		s.StreamAdvisories(): pipeline.AdvisoryMaxDeliveries + s.StreamJobs() + ".worker", s.StreamDecisions(): s.Decision("PASSED"),
		s.StreamErasures(): s.Erasure("job_victim"), s.StreamEvents(): s.Event(messages.KindAccepted),
		s.StreamWebhooks(): s.WebhookDelivery("ep_victim", "job_victim"),
	}
	// Each victim: one message, delivered to its owner and left pending.
	// Consumers of one stream (the reader's and the notifier's on
	// KYC_DECISIONS) share its message.
	published := map[string]uint64{}
	for _, v := range victims {
		if published[v.stream] == 0 {
			ack, err := admin.js.Publish(ctx, subjectOf[v.stream], []byte(`{}`))
			if err != nil {
				t.Fatalf("publish to %s: %v", v.stream, err)
			}
			published[v.stream] = ack.Sequence
		}
		v.seq = published[v.stream]
		c, err := users[v.owners[0]].js.Consumer(ctx, v.stream, v.consumer)
		if err != nil {
			t.Fatal(err)
		}
		if v.msg, err = c.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
			t.Fatalf("%s fetches from %s/%s: %v", v.owners[0], v.stream, v.consumer, err)
		}
		if md, _ := v.msg.Metadata(); md == nil || md.Sequence.Stream != v.seq {
			t.Fatalf("%s/%s delivered another message", v.stream, v.consumer)
		}
		if is2 := strings.Count(v.msg.Reply(), ".") >= 10; is2 != v2 {
			t.Fatalf("reply subject %s: want the v2 form %v", v.msg.Reply(), v2)
		}
	}
	forms := func(v *victim) []string {
		return []string{
			fmt.Sprintf("$JS.ACK.%s.%s.1.%d.1.%d.0", v.stream, v.consumer, v.seq, time.Now().UnixNano()),
			fmt.Sprintf("$JS.ACK._.%s.%s.%s.1.%d.1.%d.0", accountHash("$G"), v.stream, v.consumer, v.seq, time.Now().UnixNano()),
		}
	}
	pending := func(v *victim) bool {
		st, err := admin.js.Stream(ctx, v.stream)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.GetMsg(ctx, v.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := admin.js.Consumer(ctx, v.stream, v.consumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 1
	}
	// Every other user's forged +TERM and +ACK, in both forms, is refused,
	// and the message stays pending.
	var rows []hostileNATS
	for _, v := range victims {
		var others []string
		refusedAll := true
		for _, name := range hostileUsers {
			u := users[name]
			if contains(v.owners, name) {
				continue
			}
			others = append(others, name)
			for _, subj := range forms(v) {
				for _, verb := range []string{"+TERM", "+ACK"} {
					u.publish(t, subj, verb)
					if !eventually(5*time.Second, func() bool { return u.refused(subj) }) {
						refusedAll = false
						t.Errorf("%s could ack %s/%s (%s to %s)", name, v.stream, v.consumer, verb, subj)
					}
				}
			}
		}
		observed := "refused (permissions violation); the message stays pending"
		if !refusedAll {
			observed = "accepted by the server"
		}
		if !pending(v) {
			observed = "the message was acknowledged"
			t.Errorf("%s/%s: the message was acknowledged by a forged ack", v.stream, v.consumer)
		}
		rows = append(rows, hostileNATS{finding: "4", client: strings.Join(others, ", "),
			action: fmt.Sprintf("`+TERM` and `+ACK` to a message pending on `%s/%s` (v1 and v2 ack subjects)", v.stream, v.consumer), observed: observed})
	}
	// The owners may still ack their own in both forms (a sequence not
	// pending is ignored by the server, so this harms nothing)...
	for _, v := range victims {
		for _, owner := range v.owners {
			u := users[owner]
			other := &victim{stream: v.stream, consumer: v.consumer, seq: 1 << 40}
			for _, subj := range forms(other) {
				u.publish(t, subj, "+ACK")
				if u.refused(subj) {
					t.Errorf("%s may not ack its own consumer %s/%s (%s)", owner, v.stream, v.consumer, subj)
				}
			}
		}
		// ... and do, through the message (on a work queue it is removed).
		if err := v.msg.DoubleAck(ctx); err != nil {
			t.Errorf("%s acks its own %s/%s: %v", v.owners[0], v.stream, v.consumer, err)
		}
	}
	// A control: the same forged subject, sent by a user allowed to (the
	// admin), does remove a pending message. The refusals above are what
	// kept the messages.
	ack, err := admin.js.Publish(ctx, s.Retrieve("amer-1"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := users["retriever"].js.Consumer(ctx, s.StreamRetrieve(), pipeline.ConsumerRetrieverPoll)
	if _, err := c.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	control := &victim{stream: s.StreamRetrieve(), consumer: pipeline.ConsumerRetrieverPoll, seq: ack.Sequence}
	admin.publish(t, forms(control)[0], "+TERM")
	pipelinetest.Eventually(t, 5*time.Second, func() bool { return !pending(control) }, "the forged ack format does not work at all: the test proves nothing")
	return rows
}

// eventually polls cond every 10ms until it holds (true) or timeout passes
// (false).
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// compromisedIngest: finding 5 (low). A compromised ingest could overwrite
// any job record and purge the whole image store. What JetStream's
// permissions and stream settings can take away is taken: the job-state
// bucket no longer accepts roll-ups (before, one publish with Nats-Rollup:
// all to any job key purged every job record and the execution index), and
// ingest cannot write the execution index or the retrievers' callback
// claims. What it can still do is listed in docs/SECURITY.md, and checked
// here so the list stays true.
func compromisedIngest(t *testing.T) []hostileNATS {
	url, ca := startDeployServer(t, "")
	ctx := context.Background()
	admin := connectWatched(t, url, ca, "admin")
	topo := pipeline.Topology{}.WithDefaults()
	if err := pipeline.Provision(ctx, admin.js, topo); err != nil {
		t.Fatal(err)
	}
	s := topo.Subjects
	kv, err := admin.js.KeyValue(ctx, s.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"job.victim-1", "job.victim-2", "exec.2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e"} {
		if _, err := kv.Put(ctx, k, []byte(`{"jobId":"victim"}`)); err != nil {
			t.Fatal(err)
		}
	}
	ingest := connectWatched(t, url, ca, "ingest")

	var rows []hostileNATS
	row := func(action, observed string) {
		rows = append(rows, hostileNATS{finding: "5", client: "ingest", action: action, observed: observed})
	}
	// A roll-up purging the whole bucket is refused by the stream.
	m := nats.NewMsg("$KV." + s.BucketJobs() + ".job.attacker")
	m.Header.Set("Nats-Rollup", "all")
	m.Data = []byte(`{}`)
	observed := "refused by the stream (roll-ups are off on the key-value buckets); no key lost"
	if _, err := ingest.js.PublishMsg(ctx, m); err == nil {
		observed = "accepted"
		t.Error("ingest's Nats-Rollup: all on a job key was accepted")
	}
	if keys, err := kv.Keys(ctx); err != nil || len(keys) < 3 {
		observed = "accepted: every job record and the execution index purged"
		t.Errorf("the job-state bucket holds %v after the roll-up attempt (%v): it was purged", keys, err)
	}
	row("publish to a job key with `Nats-Rollup: all`", observed)
	// The execution index and the retrievers' callback claims are not
	// ingest's to write.
	for _, key := range []string{"exec", "cbchain"} {
		subj := "$KV." + s.BucketJobs() + "." + key + ".2f1e3c6a-58a1-4a6e-9d7b-9a6c1c2b3d4e"
		ingest.publish(t, subj, "job.attacker")
		observed := "refused (permissions violation)"
		if !eventually(5*time.Second, func() bool { return ingest.refused(subj) }) {
			observed = "accepted"
			t.Errorf("ingest could write %s", subj)
		}
		what := map[string]string{"exec": "redirect an execution to another job (write `exec.<id>`)",
			"cbchain": "block an execution's callbacks (write `cbchain.<id>`)"}[key]
		row(what, observed)
	}

	// What a compromised ingest can still do (docs/SECURITY.md, "A
	// compromised ingest"): overwrite a job record, for instance to show a
	// decision; purge the image store.
	ikv, err := ingest.js.KeyValue(ctx, s.BucketJobs())
	if err != nil {
		t.Fatal(err)
	}
	observed = "still possible (docs/SECURITY.md, \"A compromised ingest\")"
	if _, err := ikv.Put(ctx, "job.victim-1", []byte(`{"jobId":"victim-1","status":"DECIDED","decision":{"type":"PASSED"}}`)); err != nil {
		observed = "refused"
		t.Errorf("ingest can no longer overwrite a job record (%v): update docs/SECURITY.md", err)
	}
	row("overwrite a job record (show `DECIDED`/`PASSED`)", observed)
	images, err := ingest.js.ObjectStore(ctx, s.BucketImages())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := images.PutBytes(ctx, "victim/0/FRONT", []byte("image")); err != nil {
		t.Fatal(err)
	}
	st, err := ingest.js.Stream(ctx, "OBJ_"+s.BucketImages())
	if err != nil {
		t.Fatal(err)
	}
	observed = "still possible (docs/SECURITY.md, \"A compromised ingest\")"
	if err := st.Purge(ctx); err != nil {
		observed = "refused"
		t.Errorf("ingest can no longer purge the image store (%v): update docs/SECURITY.md", err)
	}
	row("purge the image store", observed)
	return rows
}

var updateSecurityDoc = flag.Bool("update-security-doc", false, "rewrite the hostile NATS clients table in docs/SECURITY.md")

const (
	securityDoc = "../../docs/SECURITY.md"
	natsBegin   = "<!-- hostile-nats:begin (generated by TestHostileNATSClients; go test ./deploy/nats -run TestHostileNATSClients -update-security-doc) -->"
	natsEnd     = "<!-- hostile-nats:end -->"
)

// syncNATSTable compares the observed rows with docs/SECURITY.md's table,
// or rewrites it with -update-security-doc.
func syncNATSTable(t *testing.T, rows []hostileNATS) {
	t.Helper()
	var b strings.Builder
	b.WriteString("| # | finding | NATS user | tries to | observed |\n| --- | --- | --- | --- | --- |\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", i+1, r.finding, r.client, r.action, r.observed)
	}
	table := b.String()
	doc, err := os.ReadFile(securityDoc)
	if err != nil {
		t.Fatal(err)
	}
	start, end := strings.Index(string(doc), natsBegin), strings.Index(string(doc), natsEnd)
	if start < 0 || end < start {
		t.Fatalf("%s lacks the hostile-nats markers", securityDoc)
	}
	if *updateSecurityDoc {
		out := string(doc[:start+len(natsBegin)]) + "\n" + table + string(doc[end:])
		if err := os.WriteFile(securityDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if current := string(doc[start+len(natsBegin)+1 : end]); current != table {
		t.Errorf("what hostile NATS clients can do changed; if deliberate, rerun with -update-security-doc.\n--- docs/SECURITY.md\n%s\n--- observed\n%s", current, table)
	}
}
