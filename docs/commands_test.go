package docs_test

// TestDocumentedCommands runs what README.md, examples/README.md and
// docs/OPERATIONS.md tell a newcomer to type, against the stack `make run`
// starts, and fails when a command errors or its output no longer says
// what the document shows. The documents are the source: every ```console
// block is read, its "$ " lines are run in order, and the lines after each
// are its expected output (see commands_match_test.go for how they are
// compared). A document that drifts from the code fails here, not in a
// newcomer's terminal.
//
// What runs, and how (a Go-only machine has neither curl nor the nats CLI):
//   - curl: parsed and sent with net/http (commands_shell_test.go).
//   - bin/kycctl (or kycctl): internal/kycctl's CLI in process, against the
//     stack's NATS; `kycctl watch` runs in the background until the end of
//     the document.
//   - go run ./examples/X: the program, built once, run against the stack
//     (INGEST, KYCPIPE_API_KEY and KYCPIPE_NATS_URL point it there); the
//     consumer and the webhook receiver run in the background until the
//     end of the document (once the output shown for them appeared).
//   - NAME=VALUE before a command: its environment.
//   - examples/*.sh: interpreted line by line (curl, echo, variables).
//   - nats pub: a NATS publish.
//   - make run: the stack itself; its echoed recipe is compared with the
//     Makefile. go build: the packages must exist (go list).
// Each document gets a fresh stack (a new data directory), built like
// cmd/devstack builds `make run`'s; the documents' addresses
// (127.0.0.1:8080, :8090, :4222, the receiver's :8070) and key are
// replaced by the stack's (and a free port).
// Read-only commands are repeated until their output matches (a person
// runs them a moment later); commands that change something run once.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/kycctl"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

var showOutput = flag.Bool("show-output", false, "TestDocumentedCommands: log every command's real output (to write a document's expected output)")

// documentsWithCommands are the documents whose console blocks run.
var documentsWithCommands = []string{"README.md", "examples/README.md", "docs/OPERATIONS.md"}

// The documents' view of `make run` (cmd/devstack's defaults).
const (
	docIngestURL = "http://127.0.0.1:8080"
	docSimURL    = "http://127.0.0.1:8090"
	docNATSURL   = "nats://127.0.0.1:4222"
	// docReceiverAddr is where examples/README.md runs the example webhook
	// receiver on its own.
	docReceiverAddr = "127.0.0.1:8070"
	devAPIKey       = "kycpipe-local-dev-key"
)

// devstack's settings that shape what the documents show (cmd/devstack:
// --poll-schedule, --auto-complete-web; webhooks to the example receiver
// over loopback http, as devWebhooks allows).
var (
	devPollSchedule = []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 60 * time.Second}
	// make run's simulated user finishes a web flow after 20 s; the test's
	// after 5 s, as `make run ARGS='--auto-complete-web 5s'` (which
	// examples/README.md offers) does: the document waits for DECIDED
	// either way, and the test ends 15 s sooner.
	devAutoCompleteIn = 5 * time.Second
)

// streamingPrograms run until interrupted: they are started in the
// background and their output is checked at the end of the document.
var streamingPrograms = []string{"./examples/consumer", "./examples/webhook-receiver"}

// notExamples are files under examples/ that no document command runs,
// and why that is fine.
var notExamples = map[string]string{
	"examples/README.md": "the document itself",
	// The receiver's package runs in every `make run` stack (and in this
	// test's: see checkReceiver), and in the command examples/README.md
	// runs.
	"examples/webhook-receiver/main_test.go":              "its own test",
	"examples/webhook-receiver/receiver/receiver.go":      "runs in the stack: checkReceiver",
	"examples/webhook-receiver/receiver/receiver_test.go": "its own test",
	"examples/consumer/main_test.go":                      "its own test",
}

func TestDocumentedCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a stack per document (~30 s)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string][]consoleStep{}
	var goRun []string
	for _, d := range documentsWithCommands {
		steps, err := consoleSteps(root, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(steps) == 0 {
			t.Fatalf("%s has no console block: nothing would be checked", d)
		}
		docs[d] = steps
		for _, s := range steps {
			if m := goRunRE.FindStringSubmatch(s.cmd); m != nil && !slices.Contains(goRun, m[1]) {
				goRun = append(goRun, m[1])
			}
		}
	}
	// The examples that are Go programs build while the stacks start.
	bins := startBuild(t, root, goRun)

	var mu sync.Mutex
	used := map[string]bool{}
	t.Run("documents", func(t *testing.T) {
		for _, d := range documentsWithCommands {
			t.Run(d, func(t *testing.T) {
				t.Parallel()
				r := newDocRun(t, root, d, bins)
				r.runAll(docs[d])
				mu.Lock()
				defer mu.Unlock()
				for f := range r.used {
					used[f] = true
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	// Every example is run by some document, or is listed with the reason
	// it need not be.
	err = filepath.WalkDir(filepath.Join(root, "examples"), func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if !used[rel] && notExamples[rel] == "" {
			t.Errorf("%s is run by no command of %s (document it in examples/README.md, or list it in notExamples with the reason)",
				rel, strings.Join(documentsWithCommands, ", "))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for f := range notExamples {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("notExamples lists %s, which does not exist any more", f)
		}
	}
}

// consoleStep is one "$ command" of a console block and the output the
// document shows after it.
type consoleStep struct {
	doc      string
	line     int
	cmd      string
	expected []string
}

var fenceRE = regexp.MustCompile("^(\\s*)```\\s*([A-Za-z0-9_-]*)\\s*$")

// consoleSteps reads the console blocks of the Markdown document rel.
func consoleSteps(root, rel string) ([]consoleStep, error) {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	var steps []consoleStep
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, lang := m[1], m[2]
		j := i + 1
		for j < len(lines) && !fenceRE.MatchString(lines[j]) {
			j++
		}
		if j == len(lines) {
			return nil, fmt.Errorf("%s:%d: unterminated code block", rel, i+1)
		}
		if lang == "console" {
			var cur *consoleStep
			for k := i + 1; k < j; k++ {
				l := strings.TrimPrefix(lines[k], indent)
				switch {
				case strings.HasPrefix(l, "$ "):
					steps = append(steps, consoleStep{doc: rel, line: k + 1, cmd: strings.TrimPrefix(l, "$ ")})
					cur = &steps[len(steps)-1]
					for strings.HasSuffix(cur.cmd, "\\") && k+1 < j {
						k++
						cur.cmd += "\n" + strings.TrimPrefix(lines[k], indent)
					}
				case cur == nil:
					if strings.TrimSpace(l) != "" {
						return nil, fmt.Errorf("%s:%d: console block output before any $ command", rel, k+1)
					}
				default:
					cur.expected = append(cur.expected, l)
				}
			}
		}
		i = j
	}
	return steps, nil
}

// goRunRE finds the example a command runs (after its NAME=VALUE words).
var goRunRE = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*go run (\./examples/[A-Za-z0-9_./-]+)`)

// builds are the example programs, built once in the background.
type builds struct {
	done chan struct{}
	dir  string
	err  error
	out  []byte
}

func startBuild(t *testing.T, root string, pkgs []string) *builds {
	b := &builds{done: make(chan struct{}), dir: t.TempDir()}
	if len(pkgs) == 0 {
		close(b.done)
		return b
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go is not on PATH: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, goTool, append([]string{"build", "-o", b.dir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	t.Cleanup(func() { cancel(); <-b.done })
	go func() {
		defer close(b.done)
		b.out, b.err = cmd.CombinedOutput()
	}()
	return b
}

// binary returns the built program of pkg (./examples/X).
func (b *builds) binary(pkg string) (string, error) {
	<-b.done
	if b.err != nil {
		return "", fmt.Errorf("go build: %w\n%s", b.err, b.out)
	}
	return filepath.Join(b.dir, filepath.Base(pkg)), nil
}

// docRun runs one document's commands against its own stack.
type docRun struct {
	t     *testing.T
	root  string
	doc   string
	stack *localstack.Stack
	bins  *builds
	b     *binder
	used  map[string]bool
	bg    []*background
	// receiverAddr is a free loopback address standing for docReceiverAddr.
	receiverAddr string
}

func newDocRun(t *testing.T, root, doc string, bins *builds) *docRun {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// The stack of `make run` (cmd/devstack), on free ports.
	st, err := localstack.Start(ctx, localstack.Options{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", APIKeys: []string{devAPIKey},
		Sim:     jumiotest.Options{Addr: "127.0.0.1:0", AutoCompleteWeb: devAutoCompleteIn},
		Workers: 1, Retrievers: 1, Retriever: pipeline.RetrieverConfig{Schedule: devPollSchedule},
		Notifiers: 1, WebhookReceiver: true,
		Ingest:   pipeline.IngestConfig{Webhooks: devWebhooks},
		Notifier: pipeline.NotifierConfig{Webhooks: devWebhooks},
		Logger:   zap.NewNop(), Registry: service.NewRegistry(),
	})
	if err != nil {
		t.Fatalf("%s: start the stack: %v", doc, err)
	}
	t.Cleanup(st.Close)
	return &docRun{t: t, root: root, doc: doc, stack: st, bins: bins, b: newBinder(), used: map[string]bool{},
		receiverAddr: freeAddr(t)}
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runAll runs the steps in order, then checks the background commands.
func (r *docRun) runAll(steps []consoleStep) {
	defer func() {
		for _, bg := range r.bg {
			bg.stop()
		}
	}()
	for _, s := range steps {
		start := time.Now()
		ok := r.step(s)
		r.t.Logf("%s (%s)", r.where(s), time.Since(start).Round(time.Millisecond))
		if !ok {
			return
		}
	}
	for _, bg := range r.bg {
		r.await(bg.step, true, func(context.Context) (string, error) { return bg.output(), nil })
	}
	r.checkReceiver()
}

// toStack turns the document's addresses into the stack's.
func (r *docRun) toStack(s string) string {
	return strings.NewReplacer(docIngestURL, r.stack.IngestURL, docSimURL, r.stack.Sim.URL, docNATSURL, r.stack.NATSURL,
		docReceiverAddr, r.receiverAddr).Replace(s)
}

// toDoc turns the stack's addresses in real output into the document's.
func (r *docRun) toDoc(s string) string {
	return strings.NewReplacer(r.stack.IngestURL, docIngestURL, r.stack.Sim.URL, docSimURL, r.stack.NATSURL, docNATSURL,
		r.receiverAddr, docReceiverAddr).Replace(s)
}

// env is the environment commands see: the stack's addresses and key.
func (r *docRun) env(k string) string {
	switch k {
	case "KYCPIPE_NATS_URL":
		return r.stack.NATSURL
	case "INGEST":
		return r.stack.IngestURL
	case "KYCPIPE_API_KEY":
		return devAPIKey
	}
	return ""
}

// resolve makes a path of the documents (relative to the repository's
// root) absolute, and records the examples used.
func (r *docRun) resolve(p string) string {
	abs := p
	if !filepath.IsAbs(p) {
		abs = filepath.Join(r.root, p)
	}
	if rel, err := filepath.Rel(r.root, abs); err == nil && strings.HasPrefix(filepath.ToSlash(rel), "examples/") {
		r.used[filepath.ToSlash(rel)] = true
	}
	return abs
}

// subst runs the command substitutions the documents use: $(cat FILE).
func (r *docRun) subst(words []string) (string, error) {
	if len(words) == 2 && words[0] == "cat" {
		b, err := os.ReadFile(r.resolve(words[1]))
		return strings.TrimRight(string(b), "\n"), err
	}
	return "", fmt.Errorf("%w: $(%s)", errUnsupportedShell, strings.Join(words, " "))
}

// run is one execution of a command: its output (as a terminal shows it)
// and whether the output must be checked against a problem status.
type run func(ctx context.Context) (string, error)

func (r *docRun) where(s consoleStep) string {
	return fmt.Sprintf("%s:%d: %s", s.doc, s.line, firstLine(s.cmd))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// step runs one command and checks its output; false stops the document.
func (r *docRun) step(s consoleStep) bool {
	t := r.t
	cmd, err := r.b.substitute(r.toStack(s.cmd))
	if err != nil {
		t.Errorf("%s: %v", r.where(s), err)
		return false
	}
	words, err := shellWords(cmd, r.env, r.subst)
	if err != nil || len(words) == 0 {
		t.Errorf("%s: %v", r.where(s), cmpErr(err, errors.New("empty command")))
		return false
	}
	// NAME=VALUE words before the command are its environment.
	extra := map[string]string{}
	for len(words) > 1 {
		m := assignRE.FindStringSubmatch(words[0])
		if m == nil {
			break
		}
		extra[m[1]], words = m[2], words[1:]
	}
	getenv := func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return r.env(k)
	}
	name := words[0]
	switch {
	case name == "curl":
		req, err := parseCurl(words[1:], r.resolve)
		if err != nil {
			t.Errorf("%s: %v", r.where(s), err)
			return false
		}
		return r.await(s, req.readOnly(), func(ctx context.Context) (string, error) {
			res, err := req.do(ctx)
			if err != nil {
				return "", err
			}
			return res.output, checkStatus(res, s.expected)
		})
	case name == "kycctl" || strings.HasSuffix(name, "/kycctl"):
		args := make([]string, 0, len(words)-1)
		for _, a := range words[1:] {
			if strings.HasPrefix(a, "examples/") {
				a = r.resolve(a)
			}
			args = append(args, a)
		}
		if len(args) > 0 && args[0] == "watch" {
			r.startKycctl(s, args, getenv)
			return true
		}
		return r.await(s, kycctlReadOnly(args), func(ctx context.Context) (string, error) { return r.kycctl(ctx, args, s.expected, getenv) })
	case name == "go" && len(words) > 2 && words[1] == "run":
		bin, err := r.bins.binary(words[2])
		if err != nil {
			t.Errorf("%s: %v", r.where(s), err)
			return false
		}
		r.resolveDir(words[2])
		if slices.Contains(streamingPrograms, words[2]) {
			bg := r.startProgram(s, bin, words[3:], extra)
			if bg == nil {
				return false
			}
			// Go on once it shows what the document shows (a person waits
			// for "listening" too).
			return r.await(s, true, func(context.Context) (string, error) { return bg.output(), nil })
		}
		return r.await(s, false, func(ctx context.Context) (string, error) { return r.program(ctx, bin, words[3:], extra) })
	case name == "go" && len(words) > 2 && words[1] == "build":
		return r.await(s, false, func(ctx context.Context) (string, error) { return r.goList(ctx, words[2:]) })
	case name == "nats" && len(words) > 1 && words[1] == "pub":
		return r.await(s, false, func(ctx context.Context) (string, error) { return "", natsPub(ctx, r.stack.NC, words[2:]) })
	case strings.HasSuffix(name, ".sh") && strings.HasPrefix(strings.TrimPrefix(name, "./"), "examples/"):
		script := r.resolve(strings.TrimPrefix(name, "./"))
		return r.await(s, false, func(ctx context.Context) (string, error) {
			var out bytes.Buffer
			var statusErr error
			err := runScript(ctx, script, r.env, r.resolve, &out, func(req *curlRequest, res *curlResult) {
				statusErr = errors.Join(statusErr, checkStatus(res, s.expected))
			})
			return out.String(), errors.Join(err, statusErr)
		})
	case name == "make" && len(words) == 2 && words[1] == "run":
		return r.checkMakeRun(s)
	}
	t.Errorf("%s: the docs test does not run %q (teach docs/commands_test.go, or show it in a sh block)", r.where(s), name)
	return false
}

// await runs the command, repeating a read-only one until its output
// matches the document (or a deadline), and reports a mismatch.
func (r *docRun) await(s consoleStep, readOnly bool, do run) bool {
	t := r.t
	deadline := time.Now().Add(45 * time.Second)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		out, err := do(ctx)
		cancel()
		out = r.toDoc(out)
		missing, ok := "", err == nil
		if ok {
			missing, ok = r.b.matchOutput(s.expected, out)
		}
		if ok {
			if *showOutput {
				t.Logf("%s: output:\n%s", r.where(s), out)
			}
			return true
		}
		if !readOnly || time.Now().After(deadline) {
			if err != nil {
				t.Errorf("%s: failed: %v\noutput:\n%s", r.where(s), err, out)
			} else {
				t.Errorf("%s: the output does not show\n\t%s\nas the document does; the output was:\n%s", r.where(s), missing, out)
			}
			return false
		}
		select {
		case <-t.Context().Done():
			return false
		case <-tick.C:
		}
	}
}

// checkStatus fails a curl whose answer is an error the document does not
// show, or whose problem status differs from the one it shows.
func checkStatus(res *curlResult, expected []string) error {
	shown := 0 // the status of a problem the document shows
	for _, l := range expected {
		if v, ok := jsonValue(l); ok {
			if m, ok := v.(map[string]any); ok {
				if typ, _ := m["type"].(string); strings.HasPrefix(typ, "urn:kycpipe:problem:") {
					if n, ok := m["status"].(float64); ok {
						shown = int(n)
					}
				}
			}
		}
	}
	switch {
	case shown != 0 && shown != res.status:
		return fmt.Errorf("HTTP %d, the document shows a %d problem", res.status, shown)
	case shown == 0 && res.status >= 400:
		return fmt.Errorf("HTTP %d (the document shows no error)", res.status)
	case shown != 0 && !res.problem:
		return fmt.Errorf("HTTP %d without application/problem+json", res.status)
	}
	return nil
}

// kycctlReadOnly reports whether a kycctl command changes nothing.
func kycctlReadOnly(args []string) bool {
	if slices.Contains(args, "--dry-run") {
		return true
	}
	for _, ro := range []string{"status", "jobs", "doctor", "dlq list", "dlq show", "webhooks list", "audit"} {
		if strings.HasPrefix(strings.Join(args, " "), ro) {
			return true
		}
	}
	return false
}

// kycctl runs the operator CLI in process, the way cmd/kycctl does: an
// error is printed as "kycctl: …" after the output. A failure the
// document shows is the expected output, not an error.
func (r *docRun) kycctl(ctx context.Context, args, expected []string, getenv func(string) string) (string, error) {
	var out syncBuffer
	cli := &kycctl.CLI{Out: &out, Err: &out, Getenv: getenv}
	err := cli.Run(ctx, args)
	if err != nil {
		fmt.Fprintln(&out, "kycctl:", err)
		for _, l := range expected {
			if strings.HasPrefix(strings.TrimSpace(l), "kycctl: ") {
				return out.String(), nil // the document shows the failure
			}
		}
	}
	return out.String(), err
}

// background is a command that runs until the end of the document.
type background struct {
	step   consoleStep
	output func() string
	stop   func()
}

func (r *docRun) startKycctl(s consoleStep, args []string, getenv func(string) string) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cli := &kycctl.CLI{Out: out, Err: out, Getenv: getenv}
		if err := cli.Run(ctx, args); err != nil && ctx.Err() == nil {
			fmt.Fprintln(out, "kycctl:", err)
		}
	}()
	r.bg = append(r.bg, &background{step: s, output: out.String, stop: func() { cancel(); <-done }})
}

// program runs a built example to its end.
func (r *docRun) program(ctx context.Context, bin string, args []string, extra map[string]string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = r.root, r.programEnv(extra)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startProgram starts a built example that runs until interrupted; nil
// if it could not start.
func (r *docRun) startProgram(s consoleStep, bin string, args []string, extra map[string]string) *background {
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = r.root, r.programEnv(extra), out, out
	if err := cmd.Start(); err != nil {
		r.t.Errorf("%s: %v", r.where(s), err)
		return nil
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	bg := &background{step: s, output: out.String, stop: func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}}
	r.bg = append(r.bg, bg)
	return bg
}

// programEnv is a program's environment: the test's, the stack's
// addresses and key, and the command line's NAME=VALUE words.
func (r *docRun) programEnv(extra map[string]string) []string {
	env := append(os.Environ(), "INGEST="+r.env("INGEST"), "KYCPIPE_API_KEY="+r.env("KYCPIPE_API_KEY"), "KYCPIPE_NATS_URL="+r.env("KYCPIPE_NATS_URL"))
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	return env
}

// resolveDir records every file of a Go example's directory as used.
func (r *docRun) resolveDir(pkg string) {
	dir := r.resolve(strings.TrimPrefix(pkg, "./"))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
			r.resolve(filepath.Join(dir, e.Name()))
		}
	}
}

// goList checks that the packages a documented go build names exist.
func (r *docRun) goList(ctx context.Context, args []string) (string, error) {
	var pkgs []string
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-o":
			i++
		case strings.HasPrefix(args[i], "-"):
		default:
			pkgs = append(pkgs, args[i])
		}
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"list"}, pkgs...)...)
	cmd.Dir = r.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go list %s: %w\n%s", strings.Join(pkgs, " "), err, out)
	}
	return "", nil
}

// checkMakeRun compares what the document shows `make run` print before
// the stack's own output ("…") with the Makefile's recipe, as make echoes
// it.
func (r *docRun) checkMakeRun(s consoleStep) bool {
	b, err := os.ReadFile(filepath.Join(r.root, "Makefile"))
	if err != nil {
		r.t.Fatal(err)
	}
	var echoed []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "run:"):
			in = true
		case in && strings.HasPrefix(l, "\t"):
			l = strings.TrimPrefix(l, "\t")
			if !strings.HasPrefix(l, "@") {
				echoed = append(echoed, strings.TrimSpace(strings.NewReplacer("$(GO)", "go", "$(ARGS)", "").Replace(l)))
			}
		case in:
			in = false
		}
	}
	var shown []string
	for _, l := range s.expected {
		if strings.HasPrefix(strings.TrimSpace(l), "…") {
			break
		}
		shown = append(shown, strings.TrimSpace(l))
	}
	if !slices.Equal(shown, echoed) {
		r.t.Errorf("%s: the document shows make run printing\n\t%s\nbut the Makefile's recipe echoes\n\t%s",
			r.where(s), strings.Join(shown, "\n\t"), strings.Join(echoed, "\n\t"))
		return false
	}
	return true
}

// checkReceiver checks that the stack's example webhook receiver verified
// the deliveries of the jobs the document ran.
func (r *docRun) checkReceiver() {
	ctx, cancel := context.WithTimeout(r.t.Context(), 10*time.Second)
	defer cancel()
	info, err := r.stack.JS.Stream(ctx, r.stack.Topology.Subjects.StreamEvents())
	if err != nil {
		r.t.Errorf("%s: %v", r.doc, err)
		return
	}
	if info.CachedInfo().State.Msgs == 0 {
		return // the document ran no job: nothing to deliver
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.stack.Receiver.Stats().Delivered == 0 {
		if time.Now().After(deadline) {
			r.t.Errorf("%s: the example webhook receiver verified no delivery (stats %+v)", r.doc, r.stack.Receiver.Stats())
			return
		}
		select {
		case <-r.t.Context().Done():
			return
		case <-time.After(pollEvery):
		}
	}
	if st := r.stack.Receiver.Stats(); st.Rejected > 0 {
		r.t.Errorf("%s: the example webhook receiver rejected %d deliveries", r.doc, st.Rejected)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
