// Package kycctl is kycpipe's operator command line: submit a job, where is
// a job, what is happening now, what is stuck, is the deployment healthy,
// and what to do with dead letters. cmd/kycctl is its thin main.
//
// Every command takes the services' NATS settings (--nats-url or
// KYCPIPE_NATS_URL, credentials, TLS, --subject-prefix, …, bound by
// service.Common) and --json for machine-readable output; by default the
// output is a human-readable table. Errors go to Err (stderr) and make Run
// return an error (exit status 1).
//
// kycctl never prints applicant data: prepared data, images, extraction
// results, web links and SDK tokens (which are bearer credentials) are shown
// as "present" at most. Dead-letter payloads are printed only with
// `dlq show --payload`. Webhook secrets are printed only by `webhooks add`
// and `webhooks rotate`, once.
package kycctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// CLI runs commands. Out and Err receive the output, In is read by
// `submit -`, Getenv replaces os.Getenv (nil: no environment).
type CLI struct {
	Out, Err io.Writer
	In       io.Reader
	Getenv   func(string) string
}

// command is one subcommand.
type command struct {
	name     string // words, e.g. "dlq list"
	synopsis string // arguments and flags after the name
	summary  string // one line for `kycctl help`
	help     string // more, for `kycctl NAME --help`
	// flags declares the command's own flags on the shared set.
	flags func(o *opts, s *config.Set)
	// jumio binds the Jumio settings (JUMIO_CLIENT_ID, …).
	jumio bool
	// webhooks binds the webhook settings (KYCPIPE_WEBHOOK_ALLOW_INSECURE,
	// _ALLOW_PRIVATE, _SECRET_KEY).
	webhooks bool
	// raw: the command validates the configuration itself (doctor) and
	// handles a missing connection.
	raw bool
	// streaming: runs until interrupted; no --timeout.
	streaming bool
	run       func(ctx context.Context, e *env) error
}

func (c command) usageLine() string {
	if c.synopsis == "" {
		return "kycctl " + c.name
	}
	return "kycctl " + c.name + " " + c.synopsis
}

func commands() []command {
	return append([]command{
		submitCommand(),
		statusCommand(),
		watchCommand(),
		jobsCommand(),
		eraseCommand(),
		auditCommand(),
		dlqListCommand(),
		dlqShowCommand(),
		dlqReplayCommand(),
		provisionCommand(),
		indexBackfillCommand(),
		doctorCommand(),
	}, webhookCommands()...)
}

// opts are the values of the commands' own flags (each command declares the
// ones it uses) and the positional arguments.
type opts struct {
	positional []string
	timeout    time.Duration

	// dlq
	stage, reason, job string
	since              time.Duration
	limit              int
	all, dryRun        bool
	payload            bool
	pollDeadline       time.Duration

	// submit
	idemKey string

	// status

	// watch
	types, kinds string
	count        int

	// jobs
	state     string
	olderThan time.Duration

	// erase, audit
	file, actor, action string
	wait                bool
	// webhooks
	wh webhookOpts

	// doctor
	sample         time.Duration
	maxBacklog     int
	maxRedelivered int
	checkTimeout   time.Duration
}

// env is what a command needs: the settings, the connection and the output.
type env struct {
	out, errOut io.Writer
	in          io.Reader
	json        bool
	o           *opts
	common      service.Common
	jumio       service.Jumio
	hooks       service.Webhooks

	nc   *nats.Conn
	js   jetstream.JetStream
	subj messages.Subjects
	topo pipeline.Topology
}

// Run executes args (e.g. ["dlq", "list", "--json"]).
func (c *CLI) Run(ctx context.Context, args []string) error {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Err == nil {
		c.Err = io.Discard
	}
	if c.In == nil {
		c.In = strings.NewReader("")
	}
	if len(args) == 0 || isHelp(args[0]) {
		c.usage(c.Out)
		return nil
	}
	if args[0] == "help" {
		if len(args) == 1 {
			c.usage(c.Out)
			return nil
		}
		if cmd, _, ok := findCommand(args[1:]); ok {
			return c.commandHelp(cmd)
		}
		if group := groupOf(args[1]); len(group) > 0 {
			for _, g := range group {
				fmt.Fprintf(c.Out, "  %-60s %s\n", g.usageLine(), g.summary)
			}
			return nil
		}
		c.usage(c.Err)
		return fmt.Errorf("unknown command %q", strings.Join(args[1:], " "))
	}
	cmd, rest, ok := findCommand(args)
	if !ok {
		if group := groupOf(args[0]); len(group) > 0 {
			fmt.Fprintf(c.Err, "Usage:\n")
			for _, g := range group {
				fmt.Fprintf(c.Err, "  %s\n", g.usageLine())
			}
			return fmt.Errorf("%s: want one of: %s", args[0], strings.Join(subNames(group), ", "))
		}
		c.usage(c.Err)
		return fmt.Errorf("unknown command %q (kycctl help lists them)", strings.Join(args, " "))
	}
	for _, a := range rest {
		if a == "--" {
			break
		}
		if isHelp(a) {
			return c.commandHelp(cmd)
		}
	}
	return c.exec(ctx, cmd, rest)
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// findCommand matches the longest command name at the start of args.
func findCommand(args []string) (command, []string, bool) {
	var best command
	bestWords := 0
	for _, cmd := range commands() {
		words := strings.Fields(cmd.name)
		if len(args) < len(words) || len(words) <= bestWords {
			continue
		}
		if strings.Join(args[:len(words)], " ") == cmd.name {
			best, bestWords = cmd, len(words)
		}
	}
	if bestWords == 0 {
		return command{}, nil, false
	}
	return best, args[bestWords:], true
}

// groupOf returns the commands whose first word is word, for a group name
// given alone ("kycctl dlq").
func groupOf(word string) []command {
	var out []command
	for _, cmd := range commands() {
		if words := strings.Fields(cmd.name); len(words) > 1 && words[0] == word {
			out = append(out, cmd)
		}
	}
	return out
}

func subNames(cmds []command) []string {
	var out []string
	for _, c := range cmds {
		w := strings.Fields(c.name)
		out = append(out, w[len(w)-1])
	}
	return out
}

func (c *CLI) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: kycctl COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "kycpipe's operator command line. Commands:")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, cmd := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", cmd.name, cmd.summary)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command connects like the services do (--nats-url / KYCPIPE_NATS_URL, --nats-creds,")
	fmt.Fprintln(w, "--nats-user, --nats-password, --nats-tls-ca, --subject-prefix, …) and takes --json for")
	fmt.Fprintln(w, "machine-readable output. `kycctl COMMAND --help` (or `kycctl help COMMAND`) describes one command.")
}

// hiddenSettings are bound (the services' environment applies) but say
// nothing about kycctl, so its help leaves them out.
var hiddenSettings = map[string]bool{"log-format": true, "log-level": true, "provision": true, "shutdown-timeout": true}

func (c *CLI) commandHelp(cmd command) error {
	e := &env{}
	set := c.flagSet(cmd, e)
	w := c.Out
	fmt.Fprintf(w, "Usage: %s\n\n", cmd.usageLine())
	fmt.Fprintln(w, strings.ToUpper(cmd.summary[:1])+cmd.summary[1:]+".")
	if cmd.help != "" {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.TrimSpace(cmd.help))
	}
	var own, shared []config.Setting
	for _, st := range set.Settings() {
		switch {
		case hiddenSettings[st.Flag]:
		case st.Env == "":
			own = append(own, st)
		default:
			shared = append(shared, st)
		}
	}
	printSettings := func(title string, list []config.Setting) {
		if len(list) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, st := range list {
			env := ""
			if st.Env != "" {
				env = " ($" + st.Env + ")"
			}
			def := ""
			if st.Default != "" && !st.Secret && st.Default != "0" && st.Default != "false" && st.Default != "0s" {
				def = " (default " + st.Default + ")"
			}
			arg := ""
			if f := set.FlagSet().Lookup(st.Flag); f != nil {
				if name, _ := flag.UnquoteUsage(f); name != "" {
					arg = " " + name
				}
			}
			fmt.Fprintf(w, "  --%s%s%s\n      %s%s\n", st.Flag, arg, env, st.Usage, def)
		}
	}
	printSettings("Flags", own)
	printSettings("Connection and configuration (flag, else environment variable)", shared)
	return nil
}

// flagSet declares every flag of cmd: the shared settings, --json, the
// command's own flags and, for Jumio commands, the Jumio settings.
func (c *CLI) flagSet(cmd command, e *env) *config.Set {
	e.o = &opts{}
	set := config.New("kycctl "+cmd.name, c.Getenv)
	e.common.Bind(set)
	if cmd.jumio {
		e.jumio.Bind(set)
	}
	if cmd.webhooks {
		e.hooks.Bind(set)
	}
	set.Bool(&e.json, "json", "", false, "machine-readable JSON output")
	if !cmd.streaming {
		set.Duration(&e.o.timeout, "timeout", "", 30*time.Second, "bound on the whole command")
	}
	if cmd.flags != nil {
		cmd.flags(e.o, set)
	}
	return set
}

// exec parses the flags (shared, then the command's) and runs cmd.
func (c *CLI) exec(ctx context.Context, cmd command, args []string) error {
	e := &env{out: c.Out, errOut: c.Err, in: c.In}
	set := c.flagSet(cmd, e)
	fs := set.FlagSet()
	fs.SetOutput(c.Err)
	fs.Usage = func() {
		fmt.Fprintf(c.Err, "Usage: %s   (kycctl %s --help for the flags)\n", cmd.usageLine(), cmd.name)
	}
	flags, positional := splitArgs(fs, args)
	if err := set.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	e.o.positional = positional
	if !cmd.raw {
		if err := e.common.Validate(); err != nil {
			return err
		}
	}
	if e.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.o.timeout)
		defer cancel()
	}
	defer e.close()
	err := cmd.run(ctx, e)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		err = fmt.Errorf("%w (the command ran longer than --timeout %s)", err, e.o.timeout)
	}
	return err
}

// splitArgs separates flags (with their values) from positional arguments,
// so that flags may follow positional arguments ("dlq show 7 --payload").
// "-" alone is positional (stdin); "--" ends the flags.
func splitArgs(fs *flag.FlagSet, args []string) (flags, positional []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // Parse reports it
		}
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return flags, positional
}

// connect connects to NATS once (commands connect when they need to, after
// checking their arguments).
func (e *env) connect() error {
	if e.js != nil {
		return nil
	}
	if _, err := messages.NewSubjects(e.common.SubjectPrefix); err != nil {
		return err
	}
	e.common.LogLevel = "error"
	nc, js, err := e.common.Connect("kycctl", zap.NewNop(), nil)
	if err != nil {
		return err
	}
	e.nc, e.js = nc, js
	e.topo = e.common.Topology()
	e.subj = e.topo.Subjects
	return nil
}

func (e *env) close() {
	if e.nc != nil {
		e.nc.Close()
	}
}

// jobStore opens the job-state bucket.
func (e *env) jobStore(ctx context.Context) (*pipeline.JobStore, error) {
	kv, err := e.js.KeyValue(ctx, e.subj.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("job-state bucket %s: %w", e.subj.BucketJobs(), err)
	}
	return pipeline.NewJobStore(kv, nil), nil
}

func (e *env) emit(v any, table func(w *tabwriter.Writer)) error {
	if e.json {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// ts formats a time for tables: RFC 3339 in UTC, "-" when unset.
func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// tsMilli is ts with milliseconds, for event lines.
func tsMilli(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// human formats a duration the way operators read ages: 45s, 12m, 3h5m, 2d4h.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}

// splitList splits a comma-separated flag value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
