// Package e2e runs kycpipe as separate processes: it builds the ingest,
// worker and retriever binaries and drives them against an embedded NATS
// server listening on loopback and the Jumio simulator (and the notifier,
// for the webhook tests).
package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/procs"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/natsembed"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kycpipe-e2e-bin")
	if err != nil {
		panic(err)
	}
	root, err := procs.ModuleRoot(".")
	if err == nil {
		err = procs.Build(root, dir, raceEnabled, "ingest", "worker", "retriever", "notifier")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is NATS + simulator + the processes.
type cluster struct {
	t         *testing.T
	natsURL   string
	sim       *jumiotest.Server
	ingestURL string
	apiKey    string
	env       []string
	procs     []*procs.Proc
	subj      messages.Subjects
	decisions *pipelinetest.Recorder[*messages.DecisionEvent]
	events    *pipelinetest.Recorder[*messages.Event]
	dlq       *pipelinetest.Recorder[[]byte]
	js        jetstream.JetStream
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clusterOptions adjust newCluster.
type clusterOptions struct {
	sim          jumiotest.Options
	apiKey       string
	natsUser     string // NATS user and password, when the server requires them
	natsPassword string
	env          []string
}

func newCluster(t *testing.T) *cluster { return newClusterWith(t, clusterOptions{}) }

func newClusterWith(t *testing.T, o clusterOptions) *cluster {
	t.Helper()
	eo := natsembed.Options{StoreDir: t.TempDir()}
	if o.natsUser != "" {
		conf := filepath.Join(t.TempDir(), "nats.conf")
		body := fmt.Sprintf("authorization { user: %q, password: %q }\n", o.natsUser, o.natsPassword)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		eo.ConfigFile = conf
	}
	ns, err := natsembed.Run(eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if o.sim.Logger == nil {
		o.sim.Logger = pipelinetest.Logger(t).Named("jumiosim")
	}
	sim, err := jumiotest.StartServer(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	ingestAddr := freePort(t)
	apiKey := cmp.Or(o.apiKey, "e2e-test-key-0123456789")
	c := &cluster{t: t, natsURL: ns.ClientURL(), sim: sim, ingestURL: "http://" + ingestAddr, apiKey: apiKey, subj: messages.MustSubjects("")}
	creds := sim.Credentials()
	c.env = []string{
		"KYCPIPE_NATS_URL=" + c.natsURL,
		"KYCPIPE_HTTP_ADDR=" + ingestAddr,
		"KYCPIPE_API_KEYS=" + c.apiKey,
		"KYCPIPE_CALLBACK_URL=" + c.ingestURL + "/v1/callbacks/jumio",
		"JUMIO_BASE_URL=" + sim.URL,
		"JUMIO_CLIENT_ID=" + creds.ClientID,
		"JUMIO_CLIENT_SECRET=" + creds.ClientSecret,
		"JUMIO_USER_AGENT=kycpipe-e2e/1.0",
		"KYCPIPE_POLL_SCHEDULE=200ms,400ms,700ms,1s",
		"KYCPIPE_RETRY_BACKOFF=50ms",
		"KYCPIPE_RETRY_BACKOFF_MAX=1s",
		"KYCPIPE_ACK_WAIT=2s",
		"KYCPIPE_SHUTDOWN_TIMEOUT=5s",
		"KYCPIPE_LOG_LEVEL=debug",
		"KYCPIPE_RATE_ACCOUNT=50", "KYCPIPE_RATE_ACCOUNT_BURST=10",
	}
	if o.natsUser != "" {
		c.env = append(c.env, "KYCPIPE_NATS_USER="+o.natsUser, "KYCPIPE_NATS_PASSWORD="+o.natsPassword)
	}
	c.env = append(c.env, o.env...)
	c.start("ingest")
	pipelinetest.Eventually(t, 60*time.Second, func() bool { return c.get("/readyz") == http.StatusOK }, "ingest never became ready")
	c.start("worker")
	c.start("retriever")
	natsURL := c.natsURL
	if o.natsUser != "" {
		natsURL = strings.Replace(natsURL, "nats://", "nats://"+o.natsUser+":"+o.natsPassword+"@", 1)
	}
	_, js := pipelinetest.Connect(t, natsURL)
	c.js = js
	c.decisions = pipelinetest.Decisions(t, js, c.subj)
	c.events = pipelinetest.Events(t, js, c.subj)
	c.dlq = pipelinetest.DeadLetters(t, js, c.subj)
	t.Cleanup(func() {
		for _, p := range c.procs {
			c.stop(p)
		}
	})
	return c
}

// start runs a binary with the cluster's environment.
func (c *cluster) start(name string, extraEnv ...string) *procs.Proc {
	c.t.Helper()
	env := append(append(append([]string{}, c.env...), "KYCPIPE_METRICS_ADDR="+freePort(c.t)), extraEnv...)
	p, err := procs.Start(name, filepath.Join(binDir, name), env, "")
	if err != nil {
		c.t.Fatal(err)
	}
	c.procs = append(c.procs, p)
	return p
}

// stop sends SIGTERM and waits for a graceful exit; the output goes to t.Log.
func (c *cluster) stop(p *procs.Proc) {
	if !p.Running() {
		return
	}
	if !p.Stop(20 * time.Second) {
		c.t.Errorf("%s did not stop within 20s of SIGTERM", p.Name)
	}
	c.t.Logf("---- %s output ----\n%s", p.Name, p.Output())
}

func (c *cluster) get(path string) int {
	resp, err := http.Get(c.ingestURL + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *cluster) post(t *testing.T, contentType string, body io.Reader, header map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.ingestURL+"/v1/verifications", body)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c *cluster) submit(t *testing.T, job any, want int, header map[string]string) string {
	t.Helper()
	b, _ := json.Marshal(job)
	status, body := c.post(t, "application/json", bytes.NewReader(b), header)
	if status != want {
		t.Fatalf("submit: %d %s, want %d", status, body, want)
	}
	var out struct{ JobID string }
	_ = json.Unmarshal(body, &out)
	return out.JobID
}

func (c *cluster) decision(t *testing.T, jobID string) *messages.DecisionEvent {
	t.Helper()
	return c.decisions.WaitN(t, 1, 60*time.Second, pipelinetest.ForJob[*messages.DecisionEvent](jobID), "decision for "+jobID)[0].Value
}

func emailJob(ref string) map[string]any {
	return map[string]any{"customerInternalReference": ref, "workflowDefinition": map[string]any{"key": 10066},
		"channel": "API", "preparedData": map[string]any{"email": "jane@example.com"}}
}

func TestThreeProcesses(t *testing.T) {
	c := newCluster(t)

	t.Run("api prepared data", func(t *testing.T) {
		dec := c.decision(t, c.submit(t, emailJob("e2e-api-1"), 202, nil))
		if st := c.sim.Stats(); st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 || st.AccountsByReference["e2e-api-1"] != 1 {
			t.Errorf("finalizes=%v accounts=%v", st.FinalizesByExecution, st.AccountsByReference)
		}
	})

	t.Run("web flow", func(t *testing.T) {
		job := map[string]any{"customerInternalReference": "e2e-web-1", "workflowDefinition": map[string]any{"key": 10164}, "channel": "WEB"}
		id := c.submit(t, job, 202, nil)
		ev := c.events.WaitN(t, 1, 60*time.Second, func(m pipelinetest.Received[*messages.Event]) bool {
			return m.Value.JobID == id && m.Value.Kind == messages.KindLaunched
		}, "launched")[0].Value
		if ev.Web == nil || ev.Web.Href == "" {
			t.Fatalf("launched = %+v", ev)
		}
		if err := c.sim.CompleteWeb(ev.WorkflowExecutionID); err != nil {
			t.Fatal(err)
		}
		c.decision(t, id)
	})

	t.Run("api images", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormField("request")
		_ = json.NewEncoder(w).Encode(map[string]any{"customerInternalReference": "e2e-img-1", "workflowDefinition": pipelinetest.IDWorkflow(10011), "channel": "API", "userConsent": pipelinetest.Consent()})
		for _, part := range []string{"FRONT", "BACK", "FACE"} {
			fw, _ := mw.CreateFormFile(part, part+".png")
			_, _ = fw.Write(jumiotest.PNG(640, 480))
		}
		_ = mw.Close()
		status, body := c.post(t, mw.FormDataContentType(), &buf, nil)
		if status != 202 {
			t.Fatalf("multipart: %d %s", status, body)
		}
		var out struct{ JobID string }
		_ = json.Unmarshal(body, &out)
		dec := c.decision(t, out.JobID)
		if n := c.sim.Stats().UploadsByExecution[dec.WorkflowExecutionID]; n != 3 {
			t.Errorf("uploads = %d", n)
		}
	})

	t.Run("existing account", func(t *testing.T) {
		first := c.decision(t, c.submit(t, emailJob("e2e-acct-1"), 202, nil))
		job := emailJob("e2e-acct-2")
		job["accountId"] = first.AccountID
		second := c.decision(t, c.submit(t, job, 202, nil))
		if second.AccountID != first.AccountID || c.sim.Stats().AccountsByReference["e2e-acct-2"] != 0 {
			t.Errorf("PUT did not reuse the account: %s vs %s", second.AccountID, first.AccountID)
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		h := map[string]string{"Idempotency-Key": "e2e-idem-key"}
		id := c.submit(t, emailJob("e2e-idem-1"), 202, h)
		if again := c.submit(t, emailJob("e2e-idem-1"), 200, h); again != id {
			t.Fatalf("got %s, want %s", again, id)
		}
		c.decision(t, id)
		if n := c.sim.Stats().AccountsByReference["e2e-idem-1"]; n != 1 {
			t.Errorf("accounts = %d", n)
		}
	})

	t.Run("duplicated and reordered callbacks", func(t *testing.T) {
		c.sim.SetCallbackOptions(jumiotest.CallbackOptions{Duplicates: 2, Reorder: true, Intermediate: true})
		defer c.sim.SetCallbackOptions(jumiotest.CallbackOptions{})
		dec := c.decision(t, c.submit(t, emailJob("e2e-dup-1"), 202, nil))
		pipelinetest.Eventually(t, 60*time.Second, func() bool {
			info, _ := c.sim.Execution(dec.WorkflowExecutionID)
			return len(info.CallbacksSent) == 9
		}, "callbacks not delivered")
		// Every copy is handled once the callbacks consumer is idle; a second
		// decision would have been published before that.
		pipelinetest.Eventually(t, 60*time.Second, func() bool {
			cons, err := c.js.Consumer(context.Background(), c.subj.StreamCallbacks(), pipeline.ConsumerRetrieverCallback)
			if err != nil {
				return false
			}
			info, err := cons.Info(context.Background())
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0
		}, "callbacks not all handled")
		if n := len(c.decisions.Where(func(m pipelinetest.Received[*messages.DecisionEvent]) bool {
			return m.Value.WorkflowExecutionID == dec.WorkflowExecutionID
		})); n != 1 {
			t.Errorf("%d decisions", n)
		}
	})

	t.Run("lost callback", func(t *testing.T) {
		c.sim.SetCallbackOptions(jumiotest.CallbackOptions{DropRate: 1})
		defer c.sim.SetCallbackOptions(jumiotest.CallbackOptions{})
		c.decision(t, c.submit(t, emailJob("e2e-lost-1"), 202, nil))
	})

	t.Run("plain nats publish", func(t *testing.T) {
		nc, _ := pipelinetest.Connect(t, c.natsURL)
		job := emailJob("e2e-plain-1")
		job["jobId"] = "e2e-plain-1"
		b, _ := json.Marshal(job)
		if err := nc.Publish(c.subj.JobsSubmit(), b); err != nil {
			t.Fatal(err)
		}
		c.decision(t, "e2e-plain-1")
	})

	t.Run("jumio 500s then success", func(t *testing.T) {
		c.sim.FailNext(jumiotest.RouteCreateAccount, 3, 500)
		c.decision(t, c.submit(t, emailJob("e2e-5xx-1"), 202, nil))
		if n := c.sim.Stats().AccountsByReference["e2e-5xx-1"]; n != 1 {
			t.Errorf("accounts = %d", n)
		}
	})

	t.Run("jumio 400 is terminal", func(t *testing.T) {
		c.sim.FailNext(jumiotest.RouteCreateAccount, 1, 400)
		id := c.submit(t, emailJob("e2e-400-1"), 202, nil)
		c.events.WaitN(t, 1, 60*time.Second, func(m pipelinetest.Received[*messages.Event]) bool {
			return m.Value.JobID == id && m.Value.Kind == messages.KindFailed
		}, "failed event")
		c.dlq.WaitN(t, 1, 60*time.Second, pipelinetest.ForJob[[]byte](id), "dead letter")
	})

	t.Run("worker killed between account and upload", func(t *testing.T) {
		c.sim.SetLatency(jumiotest.RouteUploadPreparedData, time.Minute)
		before := c.sim.Stats()
		id := c.submit(t, emailJob("e2e-kill-1"), 202, nil)
		pipelinetest.Eventually(t, 60*time.Second, func() bool {
			st := c.sim.Stats()
			return st.AccountsByReference["e2e-kill-1"] == 1 && st.Requests["upload_prepared_data"] > before.Requests["upload_prepared_data"]
		}, "worker never reached the upload")
		c.procs[1].Kill()
		c.sim.SetLatency(jumiotest.RouteUploadPreparedData, 0)
		c.procs[1] = c.start("worker")
		dec := c.decision(t, id)
		st := c.sim.Stats()
		if st.AccountsByReference["e2e-kill-1"] != 1 || st.FinalizesByExecution[dec.WorkflowExecutionID] != 1 {
			t.Errorf("accounts=%d finalizes=%d", st.AccountsByReference["e2e-kill-1"], st.FinalizesByExecution[dec.WorkflowExecutionID])
		}
	})

	t.Run("bad submissions", func(t *testing.T) {
		for _, tt := range []struct {
			ct     string
			body   string
			header map[string]string
			want   int
		}{
			{"application/json", `{}`, map[string]string{"Authorization": "Bearer wrong-key-000000000"}, 401},
			{"text/plain", `hello`, nil, 415},
			{"application/json", `{"customerInternalReference":"a;b","workflowDefinition":{"key":10066}}`, nil, 422},
			{"application/json", `{"customerInternalReference":`, nil, 400},
		} {
			status, body := c.post(t, tt.ct, strings.NewReader(tt.body), tt.header)
			if status != tt.want || !bytes.Contains(body, []byte(`"type":"urn:kycpipe:problem:`)) {
				t.Errorf("%s %q: %d %s, want %d", tt.ct, tt.body, status, body, tt.want)
			}
		}
	})

	// Every decision exactly once across the whole run.
	seen := map[string]int{}
	for _, d := range c.decisions.All() {
		seen[d.Value.WorkflowExecutionID]++
	}
	for exec, n := range seen {
		if n != 1 {
			t.Errorf("execution %s has %d decisions", exec, n)
		}
	}
}

// TestWorkerKilledAtEachSagaBoundary SIGKILLs the worker right after each
// saga checkpoint in turn; a fresh worker then finishes the job. Each time
// there is exactly one account, one finalize and one decision, and no part
// is uploaded twice.
func TestWorkerKilledAtEachSagaBoundary(t *testing.T) {
	c := newCluster(t)
	c.stop(c.procs[1]) // only the crashing worker may take the job
	for i, step := range []string{"account", "prepared_data", "part:FRONT", "part:BACK", "part:FACE", "finalize", "announce"} {
		t.Run(step, func(t *testing.T) {
			ref := fmt.Sprintf("e2e-boundary-%d", i)
			crashing := c.start("worker", "KYCPIPE_TEST_KILL_AFTER="+step)
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			w, _ := mw.CreateFormField("request")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"customerInternalReference": ref, "workflowDefinition": pipelinetest.IDWorkflow(10164), "channel": "API", "userConsent": pipelinetest.Consent(),
				"preparedData": map[string]any{"firstName": "Jane", "lastName": "Doe", "email": "jane@example.com"},
			})
			for _, part := range []string{"FRONT", "BACK", "FACE"} {
				fw, _ := mw.CreateFormFile(part, part+".png")
				_, _ = fw.Write(jumiotest.PNG(640, 480))
			}
			_ = mw.Close()
			status, body := c.post(t, mw.FormDataContentType(), &buf, nil)
			if status != 202 {
				t.Fatalf("submit: %d %s", status, body)
			}
			var out struct{ JobID string }
			_ = json.Unmarshal(body, &out)
			select {
			case <-crashing.Done:
			case <-time.After(60 * time.Second):
				t.Fatalf("the worker did not kill itself after %s", step)
			}
			if !crashing.KilledBySignal() {
				t.Fatalf("worker exited with %v, want SIGKILL", crashing.Cmd.ProcessState)
			}
			fresh := c.start("worker")
			defer c.stop(fresh)
			dec := c.decision(t, out.JobID)
			st := c.sim.Stats()
			if st.AccountsByReference[ref] != 1 || st.ExecutionsByReference[ref] != 1 {
				t.Errorf("accounts=%d executions=%d, want 1", st.AccountsByReference[ref], st.ExecutionsByReference[ref])
			}
			if n := st.FinalizesByExecution[dec.WorkflowExecutionID]; n != 1 {
				t.Errorf("finalizes = %d, want 1", n)
			}
			if n := st.UploadsByExecution[dec.WorkflowExecutionID]; n != 4 {
				t.Errorf("uploads = %d, want 4 (prepared data and three images, none twice)", n)
			}
			if n := len(c.decisions.Where(pipelinetest.ForJob[*messages.DecisionEvent](out.JobID))); n != 1 {
				t.Errorf("%d decisions", n)
			}
		})
	}
}
