package kycctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kycpipe/kycpipe/internal/kycctl"
	"github.com/kycpipe/kycpipe/internal/localstack"
	"github.com/kycpipe/kycpipe/pkg/pipeline/pipelinetest"
)

// result is one kycctl run.
type result struct {
	out, errOut string
	err         error
}

func (r result) String() string {
	s := "stdout:\n" + r.out + "stderr:\n" + r.errOut
	if r.err != nil {
		s += "error: " + r.err.Error() + "\n"
	}
	return s
}

// kycctlRun runs kycctl with env as its whole environment.
func kycctlRun(t *testing.T, ctx context.Context, env map[string]string, stdin io.Reader, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	cli := &kycctl.CLI{Out: &out, Err: &errOut, In: stdin, Getenv: func(k string) string { return env[k] }}
	err := cli.Run(ctx, args)
	r := result{out: out.String(), errOut: errOut.String(), err: err}
	if testing.Verbose() {
		t.Logf("$ kycctl %s\n%s", strings.Join(args, " "), r)
	}
	return r
}

// ctl runs kycctl against a NATS URL.
func ctl(t *testing.T, natsURL string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.DefaultTimeout)
	defer cancel()
	return kycctlRun(t, ctx, map[string]string{"KYCPIPE_NATS_URL": natsURL}, nil, args...)
}

// decodeJSON decodes a --json output, failing the test on error.
func decodeJSON[T any](t *testing.T, r result) T {
	t.Helper()
	var v T
	if r.err != nil {
		t.Fatalf("kycctl failed: %s", r)
	}
	if err := json.Unmarshal([]byte(r.out), &v); err != nil {
		t.Fatalf("decode --json output: %v\n%s", err, r)
	}
	return v
}

func startStack(t *testing.T) *localstack.Stack { return startStackWith(t, nil) }

func startStackWith(t *testing.T, mutate func(*localstack.Options)) *localstack.Stack {
	t.Helper()
	o := localstack.Options{DataDir: t.TempDir(), Workers: 1, Retrievers: 1, Logger: pipelinetest.Logger(t)}
	if mutate != nil {
		mutate(&o)
	}
	s, err := localstack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// eventually polls run until ok holds for its result.
func eventually(t *testing.T, what string, run func() result, ok func(result) bool) result {
	t.Helper()
	var last result
	pipelinetest.Eventually(t, pipelinetest.DefaultTimeout, func() bool {
		last = run()
		return ok(last)
	}, "%s; last run:\n%s", what, &last)
	return last
}

func contains(t *testing.T, r result, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.out+r.errOut, w) {
			t.Errorf("output lacks %q:\n%s", w, r)
		}
	}
}

func lacks(t *testing.T, r result, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(r.out+r.errOut, w) {
			t.Errorf("output contains %q:\n%s", w, r)
		}
	}
}
