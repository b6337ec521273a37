package console_test

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/internal/console"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// TestPagesOfDecidedJobs: overview, jobs (every filter, every kind of
// search), a job's page (decision, capabilities, timeline, masked personal
// data) and live decisions, for two decided jobs.
func TestPagesOfDecidedJobs(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1})
	pass := f.submit(t, emailJob("order-pass-1", "cust-pass-1", piiMarker+"@example.com"))
	reject := f.submit(t, emailJob("order-reject-1", "cust-reject-1", "someone@example.com"))
	passRec := f.waitStatus(t, pass, pipeline.StatusDecided)
	f.waitStatus(t, reject, pipeline.StatusDecided)
	b := f.browser(t)
	b.signIn(viewerKey)

	ov := b.get("/console/")
	contains(t, ov, "Jobs by state", `href="/console/jobs?status=DECIDED"`, "Decisions per hour", `<svg viewBox="0 0 1200 280" role="img"`,
		"Consumer backlogs", "KYC_JOBS", "worker", "retriever-polls", "Dead letters", "Jumio")
	// Two decided jobs: the DECIDED row counts 2 (the counts are cached a
	// few seconds, and the index entries are asynchronous).
	pipelinetest.Eventually(t, testTimeout, func() bool {
		return strings.Contains(b.get("/console/").body, `<span class="badge s-decided">DECIDED</span></a></td><td class="num">2</td>`)
	}, "overview counts 2 decided jobs")
	pipelinetest.Eventually(t, testTimeout, func() bool {
		p := b.get("/console/")
		return strings.Contains(p.body, "2 decisions from") && strings.Contains(p.body, `<rect class="bar d-passed"`) && strings.Contains(p.body, `<rect class="bar d-rejected"`)
	}, "the chart shows the two decisions")

	listed := func(query string, want ...string) {
		t.Helper()
		p := b.get("/console/jobs?" + query)
		if p.status != http.StatusOK {
			t.Fatalf("jobs?%s: %d", query, p.status)
		}
		for _, id := range []string{pass, reject} {
			shown := strings.Contains(p.body, `href="/console/jobs/`+id+`"`)
			wanted := false
			for _, w := range want {
				wanted = wanted || w == id
			}
			if shown != wanted {
				t.Errorf("jobs?%s: %s shown %v, want %v", query, id, shown, wanted)
			}
		}
	}
	listed("", pass, reject)
	listed("status=DECIDED", pass, reject)
	listed("status=FAILED")
	listed("decision=REJECTED", reject)
	listed("decision=PASSED&region=amer-1", pass)
	listed("region=apac-1")
	listed("age=15m", pass, reject)
	listed("idle=1h")
	listed("q="+pass, pass)
	listed("q=order-reject-1", reject)
	listed("q=cust-pass-1", pass)
	listed("q="+passRec.WorkflowExecutionID, pass)
	listed("q=order-pass-1&decision=REJECTED")
	listed("q=nothing-like-it")
	list := b.get("/console/jobs")
	lacks(t, list, "order-pass-1", "cust-pass-1", piiMarker)
	contains(t, list, `<label for="status">State</label>`, `<label for="q">Search</label>`, "most recently changed first")
	for _, bad := range []string{"status=SLEEPING", "decision=MAYBE", "region=mars-1", "age=3h", "idle=2m", "limit=7", "before=x"} {
		if p := b.get("/console/jobs?" + bad); p.status != http.StatusBadRequest {
			t.Errorf("jobs?%s: %d", bad, p.status)
		}
	}

	job := b.get("/console/jobs/" + pass)
	if job.status != http.StatusOK {
		t.Fatalf("job page: %d", job.status)
	}
	contains(t, job, pass, "PASSED", "Capabilities", "emailVerification", "Timeline", ">ACCEPTED<", ">ACCOUNT_CREATED<", ">FINALIZED<", ">DECIDED<",
		"decision published", "event accepted", "event finalized", passRec.WorkflowExecutionID, passRec.AccountID, "Personal data",
		`data-field="customerInternalReference"`, `class="masked"`, "KYC_DECISIONS#", "not held: the job&#39;s message leaves the queue")
	lacks(t, job, "order-pass-1", "cust-pass-1", piiMarker, `id="reveal"`, `id="erase"`, `id="replay"`)
	if p := b.get("/console/jobs/no-such-job"); p.status != http.StatusNotFound {
		t.Errorf("unknown job: %d", p.status)
	}
	if p := b.get("/console/jobs/" + url.PathEscape("bad id!")); p.status != http.StatusNotFound {
		t.Errorf("malformed job ID: %d", p.status)
	}

	live := b.get("/console/live")
	contains(t, live, pass, reject, `data-live="/console/events/decisions"`)
	lacks(t, live, "order-pass-1", "cust-pass-1")
}

// TestJobsPagination pages through 30 jobs 25 at a time with the index's
// cursor.
func TestJobsPagination(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	now := time.Now().UTC()
	for i := range 30 {
		f.createRecord(t, &pipeline.JobRecord{JobID: fmt.Sprintf("page-job-%02d", i), Status: pipeline.StatusAccepted, Region: "emea-1",
			Channel: messages.ChannelAPI, CreatedAt: now})
	}
	b := f.browser(t)
	b.signIn(viewerKey)
	// Index entries are written asynchronously: wait until all 30 are
	// listed (a first page of 25 is full before the last five arrive).
	pipelinetest.Eventually(t, testTimeout, func() bool {
		return strings.Count(b.get("/console/jobs?limit=100&region=emea-1").body, `<a href="/console/jobs/page-job-`) == 30
	}, "all 30 jobs listed")
	first := b.get("/console/jobs?limit=25&region=emea-1")
	if n := strings.Count(first.body, `<a href="/console/jobs/page-job-`); n != 25 {
		t.Fatalf("first page: %d jobs", n)
	}
	contains(t, first, "page-job-29", `rel="next"`)
	lacks(t, first, "page-job-04\"", `rel="first"`)
	next := html.UnescapeString(regexpFind(t, first.body, `<a href="([^"]+)" rel="next">`))
	second := b.get(next)
	if n := strings.Count(second.body, `<a href="/console/jobs/page-job-`); n != 5 {
		t.Fatalf("second page: %d jobs", n)
	}
	contains(t, second, "page-job-00", "page-job-04", `rel="first"`, "(older page)")
	lacks(t, second, `rel="next"`)
}

// TestEscapingAndAuditedReveal: references holding markup render as text
// wherever they appear; personal data is masked until an admin reveals it,
// and each reveal is audited before anything is shown; a key without the
// admin scope cannot reveal; a reload masks again.
func TestEscapingAndAuditedReveal(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{}) // no worker: the job message stays queued, prepared data and all
	id := f.submit(t, emailJob("order-reveal-1", "cust-reveal-1", piiMarker+"@example.com"))
	// A userReference with markup (ingest refuses '<' and '>' today; a job
	// published to NATS directly can carry them).
	xss := "xss-job-1"
	f.createRecord(t, &pipeline.JobRecord{JobID: xss, Status: pipeline.StatusAccepted, Region: "amer-1", Channel: messages.ChannelAPI,
		CustomerInternalReference: `"><svg onload=alert(2)>`, UserReference: xssUserRef, CreatedAt: time.Now().UTC()})

	viewer := f.browser(t)
	viewer.signIn(viewerKey)
	var found page
	pipelinetest.Eventually(t, testTimeout, func() bool {
		found = viewer.get("/console/jobs?q=" + url.QueryEscape(xssUserRef))
		return strings.Contains(found.body, `href="/console/jobs/`+xss+`"`)
	}, "search by a userReference with markup")
	lacks(t, found, xssUserRef, "<script>alert", "<img src=x")
	contains(t, found, html.EscapeString(xssUserRef))
	if p := viewer.action("/console/jobs/"+xss, "/console/jobs/"+xss+"/reveal", nil); p.status != http.StatusForbidden {
		t.Errorf("reveal with the read scope: %d", p.status)
	}

	ops := f.browser(t)
	ops.signIn(opsKey)
	masked := ops.get("/console/jobs/" + id)
	contains(t, masked, `id="reveal"`, "from the job&#39;s message in the queue", `data-field="preparedData"`)
	lacks(t, masked, "order-reveal-1", "cust-reveal-1", piiMarker)
	revealed := ops.action("/console/jobs/"+id, "/console/jobs/"+id+"/reveal", url.Values{"field": {"customerInternalReference", "preparedData", "bogus"}})
	if revealed.status != http.StatusOK {
		t.Fatalf("reveal: %d", revealed.status)
	}
	contains(t, revealed, "order-reveal-1", piiMarker, "audited as kyc.audit.reveal by ops")
	lacks(t, revealed, "cust-reveal-1") // not asked for
	lacks(t, ops.get("/console/jobs/"+id), "order-reveal-1", piiMarker)

	x := ops.action("/console/jobs/"+xss, "/console/jobs/"+xss+"/reveal", nil)
	contains(t, x, html.EscapeString(xssUserRef), html.EscapeString(`"><svg onload=alert(2)>`))
	lacks(t, x, xssUserRef, "<svg onload")

	var audits []messages.AuditRecord
	for _, m := range pipelinetest.AllMessages(t, f.stack.JS) {
		if m.Subject == f.subj.Audit(messages.AuditReveal) {
			a, err := messages.DecodeAudit(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(m.Data), piiMarker) || strings.Contains(string(m.Data), "order-reveal-1") {
				t.Errorf("personal data in an audit record: %s", m.Data)
			}
			audits = append(audits, *a)
		}
	}
	if len(audits) != 2 || audits[0].JobID != id || audits[0].Actor != "ops" || audits[0].Action != messages.AuditReveal ||
		strings.Join(audits[0].Fields, ",") != "customerInternalReference,preparedData" || audits[1].JobID != xss || len(audits[1].Fields) != 4 {
		t.Errorf("audit records: %+v", audits)
	}
}

// TestEraseFromTheConsole: the erase button needs the erase scope, the
// CSRF token and the confirmation; the job then goes ERASING, then ERASED,
// and its page shows the erasure and nothing personal.
func TestEraseFromTheConsole(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1})
	id := f.submit(t, emailJob("order-erase-1", "cust-erase-1", "erase@example.com"))
	f.waitStatus(t, id, pipeline.StatusDecided)

	viewer := f.browser(t)
	viewer.signIn(viewerKey)
	if p := viewer.action("/console/jobs/"+id, "/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}}); p.status != http.StatusForbidden {
		t.Errorf("erase with the read scope: %d", p.status)
	}
	support := f.browser(t)
	support.signIn(supportKey)
	p := support.get("/console/jobs/" + id)
	contains(t, p, `id="erase"`, `<label for="confirm-erase">`)
	lacks(t, p, `id="reveal"`, `id="replay"`)
	if p := support.post("/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}}); p.status != http.StatusForbidden {
		t.Errorf("erase without the CSRF token: %d", p.status)
	}
	if p := support.post("/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}, "csrf": {"0123456789"}}); p.status != http.StatusForbidden {
		t.Errorf("erase with a wrong CSRF token: %d", p.status)
	}
	if p := support.do(http.MethodPost, "/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}, "csrf": {support.get("/console/").csrf(t)}},
		map[string]string{"Sec-Fetch-Site": "cross-site"}); p.status != http.StatusForbidden {
		t.Errorf("cross-site erase: %d", p.status)
	}
	if p := support.action("/console/jobs/"+id, "/console/jobs/"+id+"/erase", nil); p.status != http.StatusBadRequest {
		t.Errorf("erase without confirmation: %d", p.status)
	}
	if rec := f.record(t, id); rec.Status != pipeline.StatusDecided {
		t.Fatalf("a refused erase changed the job: %s", rec.Status)
	}
	p = support.action("/console/jobs/"+id, "/console/jobs/"+id+"/erase", url.Values{"confirm": {"yes"}})
	if p.status != http.StatusSeeOther || p.loc != "/console/jobs/"+id+"?done=erasing" {
		t.Fatalf("erase: %d %q", p.status, p.loc)
	}
	rec := f.waitStatus(t, id, pipeline.StatusErased)
	if rec.Erasure == nil || rec.Erasure.Actor != "support" {
		t.Errorf("erasure %+v", rec.Erasure)
	}
	p = support.get("/console/jobs/" + id + "?done=erasing")
	contains(t, p, ">ERASED<", "Erasure queued", "REQUEST", "support")
	lacks(t, p, "Personal data", `id="erase"`, "order-erase-1")
}

// TestReplayFromTheConsole: a job Jumio refused once fails with a dead
// letter; its page says why and what to do; replay (admin) puts it back and
// it is decided.
func TestReplayFromTheConsole(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1})
	f.stack.Sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusForbidden)
	id := f.submit(t, emailJob("order-replay-1", "cust-replay-1", "replay@example.com"))
	f.waitStatus(t, id, pipeline.StatusFailed)
	ops := f.browser(t)
	ops.signIn(opsKey)
	var p page
	pipelinetest.Eventually(t, testTimeout, func() bool {
		p = ops.get("/console/jobs/" + id)
		return strings.Contains(p.body, `id="replay"`)
	}, "replay offered")
	contains(t, p, "Last error", "jumio_rejected", "HTTP 403", "What to do", "check JUMIO_CLIENT_ID/SECRET", "dead-lettered by worker", "Dead letters of this job",
		"from the job&#39;s dead letter")
	v := f.browser(t)
	v.signIn(viewerKey)
	lacks(t, v.get("/console/jobs/"+id), `id="replay"`)
	if r := v.action("/console/jobs/"+id, "/console/jobs/"+id+"/replay", nil); r.status != http.StatusForbidden {
		t.Errorf("replay with the read scope: %d", r.status)
	}
	r := ops.action("/console/jobs/"+id, "/console/jobs/"+id+"/replay", nil)
	if r.status != http.StatusSeeOther || r.loc != "/console/jobs/"+id+"?done=replayed" {
		t.Fatalf("replay: %d %q", r.status, r.loc)
	}
	f.waitStatus(t, id, pipeline.StatusDecided)
	p = ops.get("/console/jobs/" + id)
	contains(t, p, "replayed from dead letter", ">DECIDED<", "no longer stored")
	lacks(t, p, `id="replay"`)
}

// TestDeadLettersPage: filters by stage and reason, a letter's headers and
// masked payload, and the replay of a selection.
func TestDeadLettersPage(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1})
	f.stack.Sim.FailNext(jumiotest.RouteCreateAccount, 2, http.StatusBadRequest)
	a := f.submit(t, emailJob("order-dlq-1", "cust-dlq-1", piiMarker+"@example.com"))
	f.waitStatus(t, a, pipeline.StatusFailed)
	c := f.submit(t, emailJob("order-dlq-2", "cust-dlq-2", piiMarker+"@example.com"))
	f.waitStatus(t, c, pipeline.StatusFailed)
	ops := f.browser(t)
	ops.signIn(opsKey)
	var list page
	pipelinetest.Eventually(t, testTimeout, func() bool {
		list = ops.get("/console/dead-letters")
		return strings.Contains(list.body, a) && strings.Contains(list.body, c)
	}, "both dead letters listed")
	contains(t, list, "2 dead letter(s) held", `name="seq"`, `id="replay-selected"`, "terminal", "kyc.jobs.submit")
	lacks(t, list, piiMarker, "order-dlq-1")
	for q, want := range map[string]int{"stage=worker": 2, "stage=retriever": 0, "reason=terminal": 2, "reason=poison": 0, "stage=worker&reason=terminal": 2} {
		p := ops.get("/console/dead-letters?" + q)
		if n := strings.Count(p.body, `name="seq"`); n != want {
			t.Errorf("dead-letters?%s: %d letters, want %d", q, n, want)
		}
	}
	if p := ops.get("/console/dead-letters?reason=bogus"); p.status != http.StatusBadRequest {
		t.Errorf("unknown reason: %d", p.status)
	}
	seqA := regexpFind(t, list.body, `<a href="/console/dead-letters/(\d+)">\d+</a></td>\s*<td><time[^>]*>[^<]*</time> <span[^>]*>[^<]*</span></td>\s*<td>worker</td>\s*<td><code>terminal</code></td>\s*<td><a href="/console/jobs/`+a)
	letter := ops.get("/console/dead-letters/" + seqA)
	contains(t, letter, "Kyc-Stage", "Kyc-Reason", "Kyc-Original-Subject", a, "preparedData", "‹hidden›", "customerInternalReference")
	lacks(t, letter, piiMarker, "order-dlq-1", "cust-dlq-1")
	if p := ops.get("/console/dead-letters/999999"); p.status != http.StatusNotFound {
		t.Errorf("unknown letter: %d", p.status)
	}
	seqs := seqValues(list.body)
	r := ops.action("/console/dead-letters", "/console/dead-letters/replay", url.Values{"seq": seqs, "stage": {"worker"}})
	if r.status != http.StatusSeeOther || !strings.Contains(r.loc, "replayed=2") || !strings.Contains(r.loc, "failed=0") {
		t.Fatalf("replay selection: %d %q", r.status, r.loc)
	}
	contains(t, ops.get(r.loc), "Replayed 2 dead letter(s)")
	f.waitStatus(t, a, pipeline.StatusDecided)
	f.waitStatus(t, c, pipeline.StatusDecided)
	if p := ops.action("/console/dead-letters", "/console/dead-letters/replay", nil); p.status != http.StatusBadRequest {
		t.Errorf("empty selection: %d", p.status)
	}
}

// seqValues returns the values of the seq checkboxes of a page.
func seqValues(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `name="seq" value="`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}

// TestReadOnlyConsole: no action is offered, and every action route is
// 403 even with a valid token; signing out still works.
func TestReadOnlyConsole(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1, console: console.Config{ReadOnly: true}})
	f.stack.Sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusBadRequest)
	id := f.submit(t, emailJob("order-ro-1", "cust-ro-1", "ro@example.com"))
	f.waitStatus(t, id, pipeline.StatusFailed)
	ops := f.browser(t)
	ops.signIn(opsKey)
	var p page
	pipelinetest.Eventually(t, testTimeout, func() bool {
		p = ops.get("/console/jobs/" + id)
		return strings.Contains(p.body, "Dead letters of this job")
	}, "dead letter recorded")
	contains(t, p, "Read-only console")
	lacks(t, p, `id="erase"`, `id="replay"`, `id="reveal"`, `name="field"`)
	lacks(t, ops.get("/console/dead-letters"), `name="seq"`, `id="replay-selected"`)
	for path, form := range map[string]url.Values{
		"/console/jobs/" + id + "/erase":  {"confirm": {"yes"}},
		"/console/jobs/" + id + "/replay": {},
		"/console/jobs/" + id + "/reveal": {},
		"/console/dead-letters/replay":    {"seq": {"1"}},
		"/console/webhooks/ep/resend":     {"webhookId": {"x"}},
	} {
		if r := ops.action("/console/jobs/"+id, path, form); r.status != http.StatusForbidden {
			t.Errorf("read-only %s: %d", path, r.status)
		}
	}
	if rec := f.record(t, id); rec.Status != pipeline.StatusFailed {
		t.Errorf("read-only console changed the job: %s", rec.Status)
	}
	if r := ops.action("/console/", "/console/signout", nil); r.status != http.StatusSeeOther {
		t.Errorf("sign out: %d", r.status)
	}
}

// TestLiveStreams: a decision reaches an open live stream without a
// reload; the overview stream sends its body; an unauthenticated stream is
// refused.
func TestLiveStreams(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1})
	ops := f.browser(t)
	ops.signIn(opsKey)
	if p := f.browser(t).do(http.MethodGet, "/console/events/decisions", nil, map[string]string{"Accept": "text/event-stream"}); p.status != http.StatusUnauthorized {
		t.Errorf("unauthenticated stream: %d", p.status)
	}
	events := func(path string) (<-chan string, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.base+path, nil)
		req.Header.Set("Accept", "text/event-stream")
		hc := &http.Client{Jar: ops.hc.Jar}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		lines := make(chan string, 1024)
		go func() {
			defer resp.Body.Close()
			defer close(lines)
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			var ev strings.Builder
			for sc.Scan() {
				if sc.Text() == "" {
					lines <- ev.String()
					ev.Reset()
					continue
				}
				ev.WriteString(sc.Text() + "\n")
			}
		}()
		return lines, cancel
	}
	decisions, stop := events("/console/events/decisions")
	defer stop()
	pipelinetest.WaitFor(t, decisions, testTimeout, "stream opened") // retry: 3000
	id := f.submit(t, emailJob("order-live-1", "cust-live-1", "live@example.com"))
	for {
		ev := pipelinetest.WaitFor(t, decisions, testTimeout, "decision event")
		if strings.HasPrefix(ev, "event: decision\n") {
			if !strings.Contains(ev, `href="/console/jobs/`+id+`"`) || !strings.Contains(ev, "PASSED") || strings.Contains(ev, "order-live-1") {
				t.Errorf("decision event: %s", ev)
			}
			break
		}
	}
	overview, stop2 := events("/console/events/overview")
	defer stop2()
	for {
		ev := pipelinetest.WaitFor(t, overview, testTimeout, "overview event")
		if strings.HasPrefix(ev, "event: overview\n") {
			if !strings.Contains(ev, "Jobs by state") || !strings.Contains(ev, "Consumer backlogs") {
				t.Errorf("overview event: %.300s", ev)
			}
			break
		}
	}
}

// TestEveryPageRendersForEveryScope renders each page for a reader and an
// admin and checks the labels of its controls.
func TestEveryPageRendersForEveryScope(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{})
	id := f.submit(t, emailJob("order-render-1", "cust-render-1", "render@example.com"))
	for _, key := range []string{viewerKey, opsKey, supportKey} {
		b := f.browser(t)
		b.signIn(key)
		for path, want := range map[string][]string{
			"/console/":             {"<h1>Overview</h1>", `aria-current="page">Overview`},
			"/console/jobs":         {"<h1>Jobs</h1>", `<label for="decision">Decision</label>`, `<label for="region">Region</label>`, `<label for="age">Created in the</label>`, `<label for="idle">Unchanged for over</label>`},
			"/console/jobs/" + id:   {"<h1>Job", "Timeline", ">ACCEPTED<"},
			"/console/dead-letters": {"<h1>Dead letters</h1>", `<label for="stage">Stage</label>`, `<label for="reason">Reason</label>`},
			"/console/webhooks":     {"<h1>Webhooks</h1>"},
			"/console/live":         {"<h1>Live decisions</h1>"},
			"/console/jobs?q=" + id: {"1 job(s) match"},
		} {
			p := b.get(path)
			if p.status != http.StatusOK {
				t.Errorf("%s as %s: %d", path, key[:6], p.status)
				continue
			}
			contains(t, p, want...)
			contains(t, p, `<a class="skip" href="#main">`, `<label for="quick-q" class="visually-hidden">`)
		}
	}
}

// TestWebhooksPage: the registered endpoints, an endpoint's deliveries, and
// Resend (admin, with the CSRF token) queuing a logged delivery again
// with the same webhook-id.
func TestWebhooksPage(t *testing.T) {
	t.Parallel()
	f := startFixture(t, fixtureOpts{workers: 1, webhooks: true})
	ep := f.stack.ReceiverEndpoint.ID
	id := f.submit(t, emailJob("order-hook-1", "cust-hook-1", "hook@example.com"))
	f.waitStatus(t, id, pipeline.StatusDecided)

	viewer := f.browser(t)
	viewer.signIn(viewerKey)
	list := viewer.get("/console/webhooks")
	contains(t, list, ep, f.stack.ReceiverURL, "ENABLED")
	var page page
	pipelinetest.Eventually(t, testTimeout, func() bool {
		page = viewer.get("/console/webhooks/" + ep)
		return strings.Contains(page.body, "verification.decided") && strings.Contains(page.body, `href="/console/jobs/`+id+`"`)
	}, "the decided delivery logged")
	contains(t, page, "delivered", "verification.accepted")
	lacks(t, page, `class="resend"`, "whsec_")
	if p := viewer.get("/console/webhooks/ep_0000000000000000000000000a"); p.status != http.StatusNotFound {
		t.Errorf("unknown endpoint: %d", p.status)
	}

	ops := f.browser(t)
	ops.signIn(opsKey)
	page = ops.get("/console/webhooks/" + ep)
	contains(t, page, `class="resend"`)
	hook := regexpFind(t, page.body, `name="webhookId" value="([^"]+)"`)
	before := strings.Count(page.body, hook)
	if p := ops.post("/console/webhooks/"+ep+"/resend", url.Values{"webhookId": {hook}}); p.status != http.StatusForbidden {
		t.Errorf("resend without the CSRF token: %d", p.status)
	}
	r := ops.action("/console/webhooks/"+ep, "/console/webhooks/"+ep+"/resend", url.Values{"webhookId": {hook}})
	if r.status != http.StatusSeeOther || r.loc != "/console/webhooks/"+ep+"?done=resent" {
		t.Fatalf("resend: %d %q", r.status, r.loc)
	}
	pipelinetest.Eventually(t, testTimeout, func() bool {
		return strings.Count(ops.get("/console/webhooks/"+ep).body, hook) > before
	}, "the resent delivery logged")
	if p := ops.action("/console/webhooks/"+ep, "/console/webhooks/"+ep+"/resend", url.Values{"webhookId": {"msg_nosuchdelivery"}}); p.status != http.StatusNotFound {
		t.Errorf("resend of an unknown delivery: %d", p.status)
	}
}
