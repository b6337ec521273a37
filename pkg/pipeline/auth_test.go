package pipeline

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestAPIKeyEntries(t *testing.T) {
	t.Parallel()
	const bare = "bare-key-0123456789"
	keys, err := NewAPIKeys([]string{
		bare,
		"support:read:support-key-0123456789",
		" scraper:metrics:scraper-key-0123456789 ",
		"upstream:submit+read:upstream-key-0123456789",
		"# a comment", "",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key    string
		name   string
		scopes []Scope
	}{
		{bare, "", AllScopes},
		{"support-key-0123456789", "support", []Scope{ScopeRead}},
		{"scraper-key-0123456789", "scraper", []Scope{ScopeMetrics}},
		{"upstream-key-0123456789", "upstream", []Scope{ScopeSubmit, ScopeRead}},
	} {
		p, ok := keys.Authenticate(tt.key)
		if !ok || !slices.Equal(p.Scopes, tt.scopes) {
			t.Errorf("%s: %+v %v", tt.name, p, ok)
			continue
		}
		if tt.name != "" && p.Name != tt.name {
			t.Errorf("name %q, want %q", p.Name, tt.name)
		}
		if tt.name == "" && (!strings.HasPrefix(p.Name, "key-") || strings.Contains(p.Name, tt.key)) {
			t.Errorf("bare key named %q: want key-<short hash>", p.Name)
		}
	}
	if _, ok := keys.Authenticate("support:read:support-key-0123456789"); ok {
		t.Error("the whole entry was accepted as a key")
	}
	if _, ok := keys.Authenticate("not-a-key-0123456789"); ok {
		t.Error("unknown key accepted")
	}

	for _, bad := range []struct{ entry, want string }{
		{"short", "at least 16"},
		{"n:read:short", "at least 16"},
		{"n:readwrite:key-0123456789abcdef", "unknown scope"},
		{"n:read", "KEY or NAME:SCOPES:KEY"},
		{"bad name:read:key-0123456789abcdef", "names are"},
		{"n:read:key-0123456789:abcdef", "colons"},
		{"has space 0123456789", "spaces"},
	} {
		_, err := NewAPIKeys([]string{bad.entry})
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want an error about %q", bad.entry, err, bad.want)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789") {
			t.Errorf("%q: the error repeats the key: %v", bad.entry, err)
		}
	}
	if _, err := NewAPIKeys([]string{"a:read:key-0123456789abcdef", "a:admin:key-abcdef0123456789"}); err == nil {
		t.Error("a name used twice was accepted")
	}
}

// A key without the scope a route needs gets 403 (problem+json); the key is
// named in the log by its NAME, never by the key.
func TestScopesPerRoute(t *testing.T) {
	t.Parallel()
	keys, err := NewAPIKeys([]string{"reader:read:reader-key-0123456789", "scraper:metrics:scraper-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	in := &Ingest{cfg: IngestConfig{APIKeys: keys}, log: zap.New(core)}
	ok := func(w http.ResponseWriter, r *http.Request) {
		if PrincipalFrom(r.Context()) == nil {
			t.Error("no principal in the request context")
		}
		w.WriteHeader(http.StatusNoContent)
	}
	for _, tt := range []struct {
		scope Scope
		key   string
		want  int
	}{
		{ScopeRead, "reader-key-0123456789", 204},
		{ScopeSubmit, "reader-key-0123456789", 403},
		{ScopeErase, "reader-key-0123456789", 403},
		{ScopeAdmin, "reader-key-0123456789", 403},
		{ScopeMetrics, "reader-key-0123456789", 403},
		{ScopeMetrics, "scraper-key-0123456789", 204},
		{ScopeRead, "scraper-key-0123456789", 403},
		{ScopeRead, "wrong-key-0123456789", 401},
		{"", "scraper-key-0123456789", 204},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Authorization", "Bearer "+tt.key)
		in.authed(tt.scope, ok).ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s with %s: %d, want %d", tt.scope, tt.key, rec.Code, tt.want)
		}
		if tt.want == 403 && (rec.Header().Get("Content-Type") != "application/problem+json" || !strings.Contains(rec.Body.String(), string(tt.scope))) {
			t.Errorf("403 body: %s %s", rec.Header().Get("Content-Type"), rec.Body)
		}
	}
	if logs.FilterField(zap.String("key", "reader")).Len() == 0 {
		t.Error("refusals are not logged with the key's name")
	}
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if strings.Contains(f.String, "key-0123456789") {
				t.Errorf("a log line carries a key: %v", e.Context)
			}
		}
	}
}
