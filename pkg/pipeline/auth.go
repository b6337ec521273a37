package pipeline

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// APIKeys checks bearer keys in constant time. Several keys may be valid at
// once, so they can be rotated without downtime.
type APIKeys struct {
	digests [][sha256.Size]byte
}

// MinAPIKeyLength is the shortest key accepted.
const MinAPIKeyLength = 16

// NewAPIKeys builds a checker from keys (empty entries are ignored).
func NewAPIKeys(keys []string) (*APIKeys, error) {
	a := &APIKeys{}
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || strings.HasPrefix(k, "#") {
			continue
		}
		if len(k) < MinAPIKeyLength {
			return nil, fmt.Errorf("pipeline: API keys must be at least %d characters", MinAPIKeyLength)
		}
		if strings.ContainsAny(k, " \t\r\n,") {
			return nil, errors.New("pipeline: API keys must not contain spaces or commas")
		}
		a.digests = append(a.digests, sha256.Sum256([]byte(k)))
	}
	if len(a.digests) == 0 {
		return nil, errors.New("pipeline: no API keys configured")
	}
	return a, nil
}

// LoadAPIKeys reads keys from a comma-separated list and/or a file with one
// key per line (lines starting with # are comments).
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

// Valid reports whether key is one of the keys. It compares digests, so the
// time taken reveals neither the keys nor their lengths, and it checks every
// key whatever matches.
func (a *APIKeys) Valid(key string) bool {
	if a == nil {
		return false
	}
	d := sha256.Sum256([]byte(key))
	ok := 0
	for i := range a.digests {
		ok |= subtle.ConstantTimeCompare(d[:], a.digests[i][:])
	}
	return ok == 1
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
