//go:build browser

package console_test

// Browser tests: the console in a real headless Chromium (Debian's
// chromium package, /usr/bin/chromium), driven with chromedp. They run
// with `make test-browser` (go test -tags browser), which installs
// Chromium when it is missing. The same run saves a screenshot of each
// page to docs/console/ (CONSOLE_SCREENSHOTS=dir to put them elsewhere,
// =off for none).

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium with the flags this machine needs
// as root (no sandbox, no network of its own) and a fresh profile.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: make test-browser installs it (apt-get install chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("headless", true), chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true), chromedp.Flag("mute-audio", true),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // start the browser, with no deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs actions with a deadline, failing the test on error.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor polls a JavaScript predicate in the page for up to 30 s.
func waitFor(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	run(t, ctx, what, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second)))
}

// reloadUntil reloads the page until predicate holds (a page that does not
// update by itself), for up to 30 s.
func reloadUntil(t *testing.T, ctx context.Context, what, predicate string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := run(t, ctx, what, chromedp.Evaluate[bool]("!!("+predicate+")"))
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30s", what)
		}
		step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("footer")))
	}
}

// screenshots saves full-page screenshots (docs/console by default).
type screenshots struct{ dir string }

func newScreenshots(t *testing.T) *screenshots {
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "off" {
		return &screenshots{}
	}
	if dir == "" {
		dir = filepath.Join("..", "..", "docs", "console")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &screenshots{dir: dir}
}

func (s *screenshots) save(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if s.dir == "" {
		return
	}
	// Relative times and the clock in the footer would make every run's
	// images differ only by them; they stay as rendered.
	png := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserSupportCase walks the scenario in Chromium: sign in,
// find a decided job by its reference, open its timeline, replay a dead
// letter and see the job decided, erase a job and see it ERASED, watch a
// decision appear live without reloading, and an XSS payload in
// userReference rendered as text (no dialog, no element from it). No
// JavaScript dialog may open during the whole run.
func TestBrowserSupportCase(t *testing.T) {
	f := startFixture(t, fixtureOpts{workers: 1, webhooks: true})
	shots := newScreenshots(t)
	ctx := newBrowser(t)
	var dialogs atomic.Int32
	go func() {
		for ev, err := range chromedp.Events(ctx, cdppage.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			dialogs.Add(1)
			t.Errorf("a JavaScript dialog opened: %q", ev.Message)
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	// Some history for the overview: decisions of each kind, one failure.
	for _, ref := range []string{"order-1001", "order-1002-reject", "order-1003-warn", "order-1004", "order-1005", "order-1006-notexec", "order-1007", "order-1008-reject"} {
		f.submit(t, emailJob(ref, "crm-"+ref, "customer@example.com"))
	}
	target := f.submit(t, emailJob("ticket-4711-order", "crm-customer-4711", "jane@example.com"))
	f.waitStatus(t, target, pipeline.StatusDecided)
	f.stack.Sim.FailNext(jumiotest.RouteCreateAccount, 1, http.StatusForbidden)
	failed := f.submit(t, emailJob("order-2001-blocked", "crm-customer-2001", "blocked@example.com"))
	f.waitStatus(t, failed, pipeline.StatusFailed)
	xss := "job-xss-browser"
	f.createRecord(t, &pipeline.JobRecord{JobID: xss, Status: pipeline.StatusAccepted, Region: "amer-1", Channel: messages.ChannelAPI,
		CustomerInternalReference: "order-xss-1", UserReference: xssUserRef, CreatedAt: time.Now().UTC()})

	// Sign in.
	step(t, ctx, "sign-in page", chromedp.Navigate(f.base+"/console/"), chromedp.WaitVisible(chromedp.ID("key")))
	shots.save(t, ctx, "signin")
	step(t, ctx, "sign in", chromedp.SendKeys(chromedp.ID("key"), opsKey), chromedp.Submit(chromedp.ID("key")),
		chromedp.WaitVisible(chromedp.CSS("#h-states")))
	if title := run(t, ctx, "title", chromedp.Title()); !strings.HasPrefix(title, "Overview") {
		t.Errorf("after sign-in: %q", title)
	}
	waitFor(t, ctx, "overview counts", `document.body.textContent.includes("decisions from")`)

	// Find the decided job by its reference from the header's search, and
	// open its timeline.
	step(t, ctx, "search by reference", chromedp.SendKeys(chromedp.ID("quick-q"), "ticket-4711-order"), chromedp.Submit(chromedp.ID("quick-q")),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/jobs/`+target+`"]`)))
	if n := run(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("table.jobs tbody tr").length`)); n != 1 {
		t.Errorf("search by reference: %d rows", n)
	}
	step(t, ctx, "open the job", chromedp.Click(chromedp.CSS(`a[href="/console/jobs/`+target+`"]`)), chromedp.WaitVisible(chromedp.ID("h-timeline")))
	timeline := run(t, ctx, "timeline", chromedp.Text(chromedp.CSS("table.timeline")))
	for _, want := range []string{"ACCEPTED", "ACCOUNT_CREATED", "FINALIZED", "DECIDED", "decision published"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline lacks %q:\n%s", want, timeline)
		}
	}
	if masked := run(t, ctx, "masked", chromedp.Evaluate[bool](`!document.body.innerText.includes("ticket-4711-order")`)); !masked {
		t.Error("the reference shows before a reveal")
	}
	shots.save(t, ctx, "job")

	// The jobs list and the overview, for the record.
	step(t, ctx, "jobs page", chromedp.Navigate(f.base+"/console/jobs"), chromedp.WaitVisible(chromedp.CSS("table.jobs")))
	shots.save(t, ctx, "jobs")
	step(t, ctx, "overview", chromedp.Navigate(f.base+"/console/"), chromedp.WaitVisible(chromedp.CSS("svg")))
	// The Jumio rates need two samples: the live update brings them, with
	// the calls of a few more jobs.
	for _, ref := range []string{"order-3001", "order-3002-warn", "order-3003"} {
		f.submit(t, emailJob(ref, "crm-"+ref, "customer@example.com"))
	}
	waitFor(t, ctx, "Jumio rates, live", `(() => { const dd = document.querySelector("#h-jumio + dl dd"); return dd && !dd.innerText.startsWith("0 "); })()`)
	shots.save(t, ctx, "overview")

	// Replay the failed job's dead letter from the dead-letters page and
	// see the job decided.
	step(t, ctx, "dead letters", chromedp.Navigate(f.base+"/console/dead-letters"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/jobs/`+failed+`"]`)))
	shots.save(t, ctx, "dead-letters")
	step(t, ctx, "open the letter", chromedp.Click(chromedp.CSS(`table.dlq tbody td.num a`)), chromedp.WaitVisible(chromedp.ID("h-payload")))
	shots.save(t, ctx, "dead-letter")
	step(t, ctx, "back to the list", chromedp.Navigate(f.base+"/console/dead-letters"), chromedp.WaitVisible(chromedp.ID("select-all")))
	step(t, ctx, "select all and replay", chromedp.Click(chromedp.ID("select-all")), chromedp.Click(chromedp.ID("replay-selected")),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	step(t, ctx, "the replayed job", chromedp.Navigate(f.base+"/console/jobs/"+failed), chromedp.WaitVisible(chromedp.ID("h-timeline")))
	reloadUntil(t, ctx, "replayed job decided", `document.querySelector(".job-status .s-decided")`)
	if s := run(t, ctx, "timeline", chromedp.Text(chromedp.CSS("table.timeline"))); !strings.Contains(s, "replayed from dead letter") {
		t.Errorf("the replay is not in the timeline:\n%s", s)
	}

	// Erase a job and see it ERASED.
	step(t, ctx, "job to erase", chromedp.Navigate(f.base+"/console/jobs/"+target), chromedp.WaitVisible(chromedp.ID("erase")))
	step(t, ctx, "erase", chromedp.Click(chromedp.ID("confirm-erase")), chromedp.Click(chromedp.ID("erase")), chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	reloadUntil(t, ctx, "job erased", `document.querySelector(".job-status .s-erased")`)
	if s := run(t, ctx, "erased page", chromedp.Text(chromedp.CSS("main"))); strings.Contains(s, "ticket-4711-order") || !strings.Contains(s, "ERASED") {
		t.Errorf("erased job page:\n%s", s)
	}

	// A decision appears live, without a reload.
	step(t, ctx, "live page", chromedp.Navigate(f.base+"/console/live"), chromedp.WaitVisible(chromedp.ID("decisions")))
	waitFor(t, ctx, "stream open", `document.querySelector("[data-live-state]").classList.contains("on")`)
	run(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))
	liveJob := f.submit(t, emailJob("order-live-9", "crm-live-9", "live@example.com"))
	waitFor(t, ctx, "decision appears live", `document.querySelector('#decisions a[href="/console/jobs/`+liveJob+`"]')`)
	if still := run(t, ctx, "not reloaded", chromedp.Evaluate[bool](`window.__notReloaded === true`)); !still {
		t.Error("the page reloaded")
	}
	shots.save(t, ctx, "live")

	// The XSS payload in userReference renders as text: found by search
	// (the search box holds it as its value), revealed on the job's page
	// as text; no element or dialog comes from it.
	step(t, ctx, "search the payload", chromedp.Navigate(f.base+"/console/jobs?q="+url.QueryEscape(xssUserRef)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/console/jobs/`+xss+`"]`)))
	if v := run(t, ctx, "search value", chromedp.Value(chromedp.ID("q"))); v != xssUserRef {
		t.Errorf("search box holds %q", v)
	}
	step(t, ctx, "xss job", chromedp.Navigate(f.base+"/console/jobs/"+xss), chromedp.WaitVisible(chromedp.ID("reveal")))
	step(t, ctx, "reveal", chromedp.Click(chromedp.ID("reveal")), chromedp.WaitVisible(chromedp.CSS(`span.revealed[data-field="userReference"]`)))
	if v := run(t, ctx, "revealed text", chromedp.Text(chromedp.CSS(`span.revealed[data-field="userReference"]`))); v != xssUserRef {
		t.Errorf("revealed userReference %q", v)
	}
	for expr, want := range map[string]int{
		`document.querySelectorAll("script").length`:             1, // console.js only
		`document.querySelectorAll("main img, main svg").length`: 0,
		`document.querySelectorAll("[onerror],[onload]").length`: 0,
	} {
		if n := run(t, ctx, expr, chromedp.Evaluate[int](expr)); n != want {
			t.Errorf("%s = %d, want %d", expr, n, want)
		}
	}
	shots.save(t, ctx, "reveal")

	step(t, ctx, "webhooks", chromedp.Navigate(f.base+"/console/webhooks"), chromedp.WaitVisible(chromedp.CSS("table.webhooks")))
	shots.save(t, ctx, "webhooks")
	ep := f.stack.ReceiverEndpoint.ID
	step(t, ctx, "an endpoint's deliveries", chromedp.Click(chromedp.CSS(`a[href="/console/webhooks/`+ep+`"]`)), chromedp.WaitVisible(chromedp.CSS("table.deliveries")))
	waitFor(t, ctx, "deliveries logged", `document.querySelectorAll("table.deliveries button.resend").length > 0`)
	step(t, ctx, "resend", chromedp.Click(chromedp.CSS("table.deliveries button.resend")), chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	shots.save(t, ctx, "webhook")
	if dialogs.Load() != 0 {
		t.Errorf("%d dialogs opened", dialogs.Load())
	}
}
