package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
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
		{"-deny", "initiate,nothing"},
		{"-default-region", "mars-1", "-addr", "127.0.0.1:0"},
		{"-bad-client-status", "418", "-addr", "127.0.0.1:0"},
		{"-blocked-user-agents", "*", "-addr", "127.0.0.1:0"},
	} {
		if err := run(t.Context(), args, io.Discard); err == nil {
			t.Errorf("run %v: no error", args)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("run -h: %v", err)
	}
	for _, want := range []string{"notexec", "reject", "warn", "alert", "watchlistScreening WARNING/ALERT",
		"/regions/", "-allow-missing-consent", "-omit-web-href", "-blocked-user-agents", "-deny", "-default-region"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// TestRunSwitches checks the rule and region flags reach the simulator.
func TestRunSwitches(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-format", "json", "-omit-web-href", "-allow-missing-consent",
			"-blocked-user-agents", "curl/*, Go-http-client/1.1", "-deny", "delete", "-default-region", "emea-1",
			"-client-secret-emea-1", "eu-secret", "-bad-client-status", "403", "-expired-as-rejected"}, pw)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var lines []string
	for len(lines) < 6 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 6 {
		t.Fatalf("output = %q (%v)", lines, <-done)
	}
	go func() {
		for sc.Scan() { // drain
		}
	}()
	url := strings.TrimPrefix(lines[0], "jumiosim listening on ")
	if lines[1] != "OAuth2 client: id=sim-client-emea-1 secret=eu-secret" ||
		lines[3] != "region emea-1: "+url+"/regions/emea-1 (client id=sim-client-emea-1 secret=eu-secret)" {
		t.Errorf("output = %q", lines)
	}
	get := func(path string, v any) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var sw jumiotest.Switches
	get("/_sim/switches", &sw)
	if !sw.OmitWebHref || !sw.AllowMissingConsent || !sw.ExpiredAsRejected || sw.BadClientStatus != 403 ||
		strings.Join(sw.BlockedUserAgents, "|") != "curl/*|Go-http-client/1.1" || sw.AllowChunkedUploads {
		t.Errorf("switches = %+v", sw)
	}
	var clients []jumiotest.ClientCredentials
	get("/_sim/clients", &clients)
	if len(clients) != 3 || !clients[0].DenyDelete || !clients[2].DenyDelete || clients[1].DenyRetrieve {
		t.Errorf("clients = %+v", clients)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
