package console

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// TestMaskPayload: only the values of allowlisted fields show; objects
// under other fields are hidden whole; arrays under clear fields are
// walked; a payload that is not a JSON object is not shown at all.
func TestMaskPayload(t *testing.T) {
	m := maskPayload([]byte(`{"schema":"kycpipe.verification.v1","jobId":"job-1","customerInternalReference":"Ann Example",
		"preparedData":{"firstName":"Ann","email":"ann@example.com"},"workflowDefinition":{"key":10148,"credentials":[{"category":"ID","country":"DEU"}]},
		"parts":[{"classifier":"FRONT","data":"aGVsbG8="}],"userConsent":{"userIp":"203.0.113.7"},"newField":"secret"}`))
	for _, want := range []string{`"jobId": "job-1"`, `"key": 10148`, `"category": "ID"`, `"classifier": "FRONT"`, `"schema": "kycpipe.verification.v1"`} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("masked payload lacks %s:\n%s", want, m.Text)
		}
	}
	for _, bad := range []string{"Ann", "ann@example.com", "DEU", "aGVsbG8=", "203.0.113.7", `"secret"`} {
		if strings.Contains(m.Text, bad) {
			t.Errorf("masked payload shows %s:\n%s", bad, m.Text)
		}
	}
	if got := strings.Join(m.Hidden, ","); got != "customerInternalReference,newField,parts[].data,preparedData,userConsent,workflowDefinition.credentials[].country" {
		t.Errorf("hidden: %s", got)
	}
	for _, raw := range []string{`not json`, `["a"]`, `"x"`} {
		if m := maskPayload([]byte(raw)); m.Text != "" || m.Size != len(raw) {
			t.Errorf("%q: %+v", raw, m)
		}
	}
}

// TestSessionStore: sessions expire when idle and when old, the least
// recently used goes when the store is full, and a deleted one is gone.
func TestSessionStore(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	s := newSessionStore(10*time.Minute, time.Hour, 2, func() time.Time { return now })
	p := &pipeline.Principal{Name: "ops"}
	a, _ := s.create(p)
	now = now.Add(time.Minute)
	b, _ := s.create(p)
	if s.get(a) == nil || s.get(b) == nil || s.get("nope") != nil || s.get("") != nil {
		t.Fatal("lookup")
	}
	now = now.Add(time.Minute)
	_ = s.get(b) // a is now the least recently used
	c, _ := s.create(p)
	if s.get(a) != nil || s.get(b) == nil || s.get(c) == nil || s.len() != 2 {
		t.Errorf("eviction: a %v b %v c %v len %d", s.get(a) != nil, s.get(b) != nil, s.get(c) != nil, s.len())
	}
	s.delete(c)
	if s.get(c) != nil {
		t.Error("deleted session still valid")
	}
	now = now.Add(10 * time.Minute)
	if s.get(b) != nil {
		t.Error("idle session still valid")
	}
}

// TestSafeNext keeps sign-in redirects inside the console.
func TestSafeNext(t *testing.T) {
	for next, want := range map[string]string{
		"/console/jobs?status=FAILED": "/console/jobs?status=FAILED", "/console/jobs/job-1": "/console/jobs/job-1",
		"": "/console/", "https://evil.example/console/": "/console/", "//evil.example/console/": "/console/",
		"/v1/verifications": "/console/", "/console/signin?next=x": "/console/", "/console/events/decisions": "/console/",
		`/console/\evil`: "/console/", "javascript:alert(1)": "/console/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// TestConfigRefused: New refuses settings that cannot work, naming them.
func TestConfigRefused(t *testing.T) {
	keys, err := pipeline.NewAPIKeys([]string{"ops:read:ops-key-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{}, {APIKeys: keys, SessionIdle: -time.Second}, {APIKeys: keys, MetricsURLs: []string{"ftp://worker/metrics"}}} {
		if err := c.validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if err := (Config{APIKeys: keys, MetricsURLs: []string{"http://worker:9090/metrics"}}).validate(); err != nil {
		t.Error(err)
	}
}

// TestChartLayout: round gridlines above the busiest hour, one bar per
// non-zero count, and a summary for screen readers.
func TestChartLayout(t *testing.T) {
	ch := &decisionChart{Max: 37, Total: 40}
	ch.Hours = make([]chartHour, chartHours)
	for i := range ch.Hours {
		ch.Hours[i] = chartHour{Counts: make([]uint64, 5)}
	}
	ch.Hours[23].Counts[0], ch.Hours[23].Counts[1], ch.Hours[23].Total = 30, 7, 37
	ch.Hours[5].Counts[4], ch.Hours[5].Total = 3, 3
	ch.layout()
	var labels []string
	for _, y := range ch.YTicks {
		labels = append(labels, y.Label)
	}
	if got := strings.Join(labels, " "); got != "0 10 20 30 40" {
		t.Errorf("gridlines %s", got)
	}
	if len(ch.Bars) != 3 || len(ch.XTicks) != 8 || !strings.Contains(ch.Summary, "40 decisions") {
		t.Errorf("bars %d, x ticks %d, summary %q", len(ch.Bars), len(ch.XTicks), ch.Summary)
	}
}
