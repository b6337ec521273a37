package webhooks

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// SecretPrefix starts every secret string.
const SecretPrefix = "whsec_"

// Secret key sizes. Standard Webhooks asks for 24 to 64 bytes of random
// data; [NewSecret] makes 32.
const (
	SecretSize    = 32
	MinSecretSize = 24
	MaxSecretSize = 64
)

// redacted is what every formatting of a [Secret] prints.
const redacted = SecretPrefix + "[REDACTED]"

// Secret is an endpoint's signing key. The zero value is no secret.
//
// A Secret never shows its key by accident: String, GoString, every fmt
// verb and zap's Stringer encoding print "whsec_[REDACTED]", and JSON
// encoding fails. The only way to obtain the secret string (to show it once
// to the client that registered the endpoint, or to store it) is
// [Secret.Reveal]. A Secret is immutable and safe for concurrent use.
type Secret struct {
	key []byte
}

// NewSecret returns a fresh secret of [SecretSize] random bytes from
// crypto/rand.
func NewSecret() Secret {
	key := make([]byte, SecretSize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (it crashes the program instead)
	return Secret{key: key}
}

// ParseSecret parses a secret string: "whsec_" followed by the standard
// base64 encoding (with padding) of 24 to 64 bytes; the decoded bytes are
// the HMAC key. Surrounding spaces are ignored. Errors wrap
// [ErrInvalidSecret] and never contain s.
func ParseSecret(s string) (Secret, error) {
	s = strings.TrimSpace(s)
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return Secret{}, fmt.Errorf("%w: it must start with %q", ErrInvalidSecret, SecretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: the part after %q is not standard base64", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < MinSecretSize || len(key) > MaxSecretSize {
		return Secret{}, fmt.Errorf("%w: the key must be %d to %d bytes, not %d", ErrInvalidSecret, MinSecretSize, MaxSecretSize, len(key))
	}
	return Secret{key: key}, nil
}

// ParseSecrets parses a list of secret strings separated by commas or
// spaces (a receiver's configuration during a rotation). Empty entries are
// skipped; at least one secret is required.
func ParseSecrets(list string) ([]Secret, error) {
	var out []Secret
	for i, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		s, err := ParseSecret(f)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i+1, err)
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrInvalidSecret)
	}
	return out, nil
}

// Reveal returns the secret string, "whsec_" + base64(key). Call it only to
// hand the secret to its owner or to store it; never log the result.
func (s Secret) Reveal() string {
	if s.IsZero() {
		return ""
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(s.key)
}

// IsZero reports whether s holds no key.
func (s Secret) IsZero() bool { return len(s.key) == 0 }

// Equal reports, in constant time for keys of equal length, whether s and
// o are the same key.
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s.key, o.key) == 1 }

// String returns "whsec_[REDACTED]" (or "" for the zero Secret).
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return redacted
}

// GoString is String: %#v prints no key either.
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x, %d…) print
// String's redacted form.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// errSecretMarshal is returned by MarshalJSON.
var errSecretMarshal = errors.New("webhooks: a Secret is never encoded implicitly; store Secret.Reveal() explicitly")

// MarshalJSON fails on purpose, so a Secret inside a struct is neither
// leaked into a log line nor silently stored as "{}".
func (s Secret) MarshalJSON() ([]byte, error) { return nil, errSecretMarshal }
