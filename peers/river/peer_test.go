package riverpeer

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap/zaptest"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// These tests need PostgreSQL: KYCPIPE_PEERS_DATABASE_URL names a database
// the tests may create schemas in. `make bench-peers` starts one and runs
// them first; they are not part of `make test` (this is its own module).

type testPeer struct {
	url  string
	pool *pgxpool.Pool
	sim  *jumiotest.Server
}

func startPeer(t *testing.T, simOpts jumiotest.Options, tune func(*Config)) *testPeer {
	t.Helper()
	dsn := os.Getenv("KYCPIPE_PEERS_DATABASE_URL")
	if dsn == "" {
		t.Fatal("KYCPIPE_PEERS_DATABASE_URL is not set: these tests need PostgreSQL (make bench-peers runs them against the one it starts)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	schema := fmt.Sprintf("t_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.RuntimeParams["search_path"] = schema
	pcfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pcfg.MaxConns = 2
	ingestPool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	sim := jumiotest.NewServer(simOpts)
	client, err := jumio.New(sim.Credentials(), jumio.WithBaseURL(sim.URL))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg := Config{Pool: pool, IngestPool: ingestPool, CallbackURL: url + "/v1/callbacks/jumio", APIKeys: []string{"test-key"},
		Jumio:  func(jumio.Region) (*jumio.Client, error) { return client, nil },
		Logger: zaptest.NewLogger(t), VerifyWorkers: 8, RetrieveWorkers: 8, FetchCooldown: 10 * time.Millisecond}
	if tune != nil {
		tune(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
		sim.Close()
		ingestPool.Close()
		pool.Close()
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		_ = admin.Close(context.Background())
	})
	return &testPeer{url: url, pool: pool, sim: sim}
}

func jobBody(id string) string {
	return `{"jobId":"` + id + `","customerInternalReference":"ref-` + id + `","workflowDefinition":{"key":10148},"channel":"API","region":"amer-1",` +
		`"userConsent":{"userIp":"203.0.113.7","userLocation":{"country":"USA","state":"IN"},"consent":{"obtained":"yes","obtainedAt":"2026-11-01T10:00:00Z"}},` +
		`"preparedData":{"firstName":"Jane","lastName":"Doe","dateOfBirth":"1990-08-10","email":"jane@example.com"}}`
}

func (tp *testPeer) submit(t *testing.T, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tp.url+"/v1/verifications", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer test-key")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (tp *testPeer) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := tp.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (tp *testPeer) waitCount(t *testing.T, want int, timeout time.Duration, query string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := tp.count(t, query, args...)
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d after %s", query, n, want, timeout)
		}
		timer := time.NewTimer(20 * time.Millisecond)
		<-timer.C
	}
}

// TestSagaEndToEnd runs jobs from submission to the decision in the outbox:
// one account, one finalize and one decision per job, the poll jobs
// deleted, and submissions idempotent by job ID.
func TestSagaEndToEnd(t *testing.T) {
	tp := startPeer(t, jumiotest.Options{}, nil)
	const n = 20
	for i := range n {
		if code := tp.submit(t, jobBody(fmt.Sprintf("e2e-%d", i))); code != http.StatusAccepted {
			t.Fatalf("submit %d: %d", i, code)
		}
	}
	tp.waitCount(t, n, 30*time.Second, `SELECT count(*) FROM kyc_decision_outbox`)
	if got := tp.count(t, `SELECT count(*) FROM kyc_job WHERE status = 'DECIDED'`); got != n {
		t.Errorf("%d jobs DECIDED, want %d", got, n)
	}
	st := tp.sim.Stats()
	if st.AccountsCreated != n || st.Finalizes != n {
		t.Errorf("simulator: %d accounts, %d finalizes; want %d each", st.AccountsCreated, st.Finalizes, n)
	}
	for ref, k := range st.AccountsByReference {
		if k != 1 {
			t.Errorf("%s: %d accounts", ref, k)
		}
	}
	// Every poll job was deleted by its decision (or finds it decided).
	tp.waitCount(t, 0, 10*time.Second, `SELECT count(*) FROM river_job WHERE kind = 'kyc_poll' AND state NOT IN ('completed')`)
	if code := tp.submit(t, jobBody("e2e-3")); code != http.StatusOK {
		t.Errorf("repeated submission: %d, want 200", code)
	}
	if code := tp.submit(t, strings.Replace(jobBody("e2e-3"), "Jane", "John", 1)); code != http.StatusConflict {
		t.Errorf("same job ID, other body: %d, want 409", code)
	}
	if got := tp.count(t, `SELECT count(*) FROM river_job WHERE kind = 'kyc_verify'`); got != n {
		t.Errorf("%d kyc_verify jobs, want %d", got, n)
	}
}

// TestDuplicateCallbacks: Jumio's repeated callbacks make one retrieve job
// and one decision per execution.
func TestDuplicateCallbacks(t *testing.T) {
	tp := startPeer(t, jumiotest.Options{Callbacks: jumiotest.CallbackOptions{Duplicates: 2}}, nil)
	const n = 5
	for i := range n {
		if code := tp.submit(t, jobBody(fmt.Sprintf("dup-%d", i))); code != http.StatusAccepted {
			t.Fatalf("submit: %d", code)
		}
	}
	tp.waitCount(t, n, 30*time.Second, `SELECT count(*) FROM kyc_decision_outbox`)
	deadline := time.Now().Add(10 * time.Second)
	for tp.sim.Stats().Requests["callback"] < 3*n && time.Now().Before(deadline) {
		timer := time.NewTimer(20 * time.Millisecond)
		<-timer.C
	}
	if got := tp.sim.Stats().Requests["callback"]; got != 3*n {
		t.Fatalf("simulator delivered %d callbacks, want %d", got, 3*n)
	}
	if got := tp.count(t, `SELECT count(*) FROM river_job WHERE kind = 'kyc_retrieve'`); got != n {
		t.Errorf("%d kyc_retrieve jobs for %d executions", got, n)
	}
	if got := tp.sim.Stats().Requests["details"]; got != n {
		t.Errorf("%d details retrievals, want %d", got, n)
	}
}

// TestLostCallbacks: with every callback lost, the poll job scheduled at
// finalize still brings the decision.
func TestLostCallbacks(t *testing.T) {
	tp := startPeer(t, jumiotest.Options{Callbacks: jumiotest.CallbackOptions{DropRate: 1}}, func(c *Config) {
		c.PollSchedule = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	})
	for i := range 3 {
		if code := tp.submit(t, jobBody(fmt.Sprintf("lost-%d", i))); code != http.StatusAccepted {
			t.Fatalf("submit: %d", code)
		}
	}
	tp.waitCount(t, 3, 30*time.Second, `SELECT count(*) FROM kyc_decision_outbox`)
	if got := tp.count(t, `SELECT count(*) FROM river_job WHERE kind = 'kyc_retrieve'`); got != 0 {
		t.Errorf("%d retrieve jobs without callbacks", got)
	}
}

// TestResumesAfterAccountStep: an upload that fails after the account was
// created and recorded is retried by River from the recorded step, without a
// second Jumio account.
func TestResumesAfterAccountStep(t *testing.T) {
	tp := startPeer(t, jumiotest.Options{}, nil)
	tp.sim.FailNext(jumiotest.RouteUploadPreparedData, 1, http.StatusInternalServerError)
	if code := tp.submit(t, jobBody("resume-1")); code != http.StatusAccepted {
		t.Fatalf("submit: %d", code)
	}
	tp.waitCount(t, 1, 60*time.Second, `SELECT count(*) FROM kyc_decision_outbox`)
	var attempt int
	if err := tp.pool.QueryRow(context.Background(), `SELECT attempt FROM river_job WHERE kind = 'kyc_verify'`).Scan(&attempt); err != nil {
		t.Fatal(err)
	}
	st := tp.sim.Stats()
	if attempt != 2 || st.AccountsCreated != 1 || st.Requests["upload_prepared_data"] != 2 || st.Finalizes != 1 {
		t.Errorf("attempts %d, accounts %d, uploads %d, finalizes %d; want 2 attempts, 1 account, 2 uploads, 1 finalize", attempt, st.AccountsCreated, st.Requests["upload_prepared_data"], st.Finalizes)
	}
}

// TestRejectsBadRequests: the submission route checks what kycpipe's
// ingest checks.
func TestRejectsBadRequests(t *testing.T) {
	tp := startPeer(t, jumiotest.Options{}, nil)
	req, _ := http.NewRequest(http.MethodPost, tp.url+"/v1/verifications", bytes.NewReader([]byte(jobBody("x"))))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: %d", resp.StatusCode)
	}
	if code := tp.submit(t, `{"jobId":"bad","unknownField":1}`); code != http.StatusBadRequest {
		t.Errorf("unknown field: %d", code)
	}
	if code := tp.submit(t, `{"jobId":"bad","workflowDefinition":{"key":10148}}`); code != http.StatusUnprocessableEntity {
		t.Errorf("missing customerInternalReference: %d", code)
	}
}
