package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-format", "json", "-client-id", "demo",
			"-client-secret", "demo-secret", "-fail", "health=1:503", "-latency", "status=1ms", "-rate-limits"}, pw)
		pw.Close()
	}()

	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var url string
	select {
	case l := <-lines:
		url = strings.TrimPrefix(l, "jumiosim listening on ")
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no URL printed")
	}
	if creds := <-lines; !strings.Contains(creds, "id=demo secret=demo-secret") {
		t.Errorf("credentials line = %q", creds)
	}

	get := func() int {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/", nil)
		req.Header.Set("User-Agent", "test")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusServiceUnavailable {
		t.Errorf("first health = %d, want the injected 503", got)
	}
	if got := get(); got != http.StatusOK {
		t.Errorf("second health = %d", got)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not shut down")
	}
	for range lines { // drain
	}
}

func TestRunFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-latency", "details"},
		{"-latency", "nope=1s"},
		{"-fail", "status=x:500"},
		{"-log-format", "xml"},
		{"-callback-drop-rate", "2", "-addr", "127.0.0.1:0"},
		{"-no-such-flag"},
	} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}
