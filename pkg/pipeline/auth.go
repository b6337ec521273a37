package pipeline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Scope is a permission an API key carries (DESIGN 3.6).
type Scope string

// The scopes, and the routes that need them.
const (
	ScopeSubmit  Scope = "submit"  // POST /v1/verifications
	ScopeRead    Scope = "read"    // GET /v1/verifications/{jobId}, viewing the console
	ScopeErase   Scope = "erase"   // DELETE /v1/verifications/{jobId}, erasure in the console
	ScopeAdmin   Scope = "admin"   // webhook endpoints, dead-letter replay, console actions
	ScopeMetrics Scope = "metrics" // GET /metrics only, for scrapers
)

// AllScopes lists every scope; a bare key carries all of them.
var AllScopes = []Scope{ScopeSubmit, ScopeRead, ScopeErase, ScopeAdmin, ScopeMetrics}

// Principal is who made a request: the API key's name (never the key) and
// its scopes.
type Principal struct {
	// Name identifies the key in logs, audit records and the console: the
	// NAME of a NAME:SCOPES:KEY entry, or "key-" and a short hash of a bare
	// key.
	Name   string
	Scopes []Scope
}

// Has reports whether the principal carries scope.
func (p *Principal) Has(scope Scope) bool { return p != nil && slices.Contains(p.Scopes, scope) }

// insecurePrincipal is who every request is with InsecureNoAuth.
var insecurePrincipal = &Principal{Name: "anonymous", Scopes: AllScopes}

type principalKey struct{}

// PrincipalFrom returns the principal an authenticated request carries.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

func withPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// APIKeys checks bearer keys in constant time and tells who a key is.
// Several keys may be valid at once, so they can be rotated without
// downtime.
type APIKeys struct {
	keys []apiKey
}

type apiKey struct {
	digest    [sha256.Size]byte
	principal *Principal
}

// MinAPIKeyLength is the shortest key accepted.
const MinAPIKeyLength = 16

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// NewAPIKeys builds a checker from entries (empty entries and lines
// starting with # are ignored). An entry is a bare KEY (every scope) or
// NAME:SCOPES:KEY, SCOPES being +-separated (submit+read). Keys are at
// least [MinAPIKeyLength] characters, without spaces, commas or colons;
// names are 1 to 64 letters, digits, '.', '_' and '-', and unique.
func NewAPIKeys(entries []string) (*APIKeys, error) {
	a := &APIKeys{}
	names := map[string]bool{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" || strings.HasPrefix(e, "#") {
			continue
		}
		k, err := parseAPIKey(e)
		if err != nil {
			return nil, err
		}
		if names[k.principal.Name] {
			return nil, fmt.Errorf("pipeline: API key name %q is used twice", k.principal.Name)
		}
		names[k.principal.Name] = true
		a.keys = append(a.keys, k)
	}
	if len(a.keys) == 0 {
		return nil, errors.New("pipeline: no API keys configured")
	}
	return a, nil
}

// parseAPIKey reads one entry. Its errors never contain the key.
func parseAPIKey(e string) (apiKey, error) {
	key, p := e, &Principal{Scopes: AllScopes}
	if parts := strings.SplitN(e, ":", 3); len(parts) > 1 {
		if len(parts) != 3 {
			return apiKey{}, errors.New("pipeline: an API key entry is KEY or NAME:SCOPES:KEY")
		}
		if !keyNameRE.MatchString(parts[0]) {
			return apiKey{}, errors.New("pipeline: API key names are 1-64 letters, digits, '.', '_' or '-'")
		}
		scopes, err := parseScopes(parts[1])
		if err != nil {
			return apiKey{}, fmt.Errorf("pipeline: API key %s: %w", parts[0], err)
		}
		p, key = &Principal{Name: parts[0], Scopes: scopes}, parts[2]
	}
	if len(key) < MinAPIKeyLength {
		return apiKey{}, fmt.Errorf("pipeline: API keys must be at least %d characters", MinAPIKeyLength)
	}
	if strings.ContainsAny(key, " \t\r\n,:") {
		return apiKey{}, errors.New("pipeline: API keys must not contain spaces, commas or colons")
	}
	d := sha256.Sum256([]byte(key))
	if p.Name == "" {
		p.Name = "key-" + hex.EncodeToString(d[:4])
	}
	return apiKey{digest: d, principal: p}, nil
}

func parseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, name := range strings.Split(s, "+") {
		sc := Scope(strings.ToLower(strings.TrimSpace(name)))
		if !slices.Contains(AllScopes, sc) {
			return nil, fmt.Errorf("unknown scope %q (want submit, read, erase, admin, metrics)", name)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// LoadAPIKeys reads entries from a comma-separated list and/or a file with
// one entry per line (lines starting with # are comments).
func LoadAPIKeys(list, file string) (*APIKeys, error) {
	var keys []string
	if list != "" {
		keys = append(keys, strings.Split(list, ",")...)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("pipeline: API keys file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			keys = append(keys, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("pipeline: API keys file: %w", err)
		}
	}
	return NewAPIKeys(keys)
}

// Authenticate returns who key is, or false. It compares digests, so the
// time taken reveals neither the keys nor their lengths, and it checks every
// key whatever matches.
func (a *APIKeys) Authenticate(key string) (*Principal, bool) {
	if a == nil {
		return nil, false
	}
	d := sha256.Sum256([]byte(key))
	var found *Principal
	for i := range a.keys {
		if subtle.ConstantTimeCompare(d[:], a.keys[i].digest[:]) == 1 {
			found = a.keys[i].principal
		}
	}
	return found, found != nil
}

// Valid reports whether key is one of the keys.
func (a *APIKeys) Valid(key string) bool {
	_, ok := a.Authenticate(key)
	return ok
}

// Names lists the keys' names and scopes, for operators.
func (a *APIKeys) Names() []Principal {
	if a == nil {
		return nil
	}
	out := make([]Principal, 0, len(a.keys))
	for _, k := range a.keys {
		out = append(out, *k.principal)
	}
	return out
}

// secretMatches compares a secret path token in constant time.
func secretMatches(secret, got string) bool {
	a, b := sha256.Sum256([]byte(secret)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// bearer extracts a bearer token from the Authorization header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}
