package pipeline

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Endpoint secrets at rest. With KYCPIPE_WEBHOOK_SECRET_KEY (32 bytes,
// base64) every secret is sealed with AES-256-GCM, a fresh 96-bit nonce per
// secret and the endpoint's ID as additional data (a sealed secret copied
// to another endpoint does not open); without it secrets are stored as
// they are, and anyone who can read the endpoints bucket can read them.

// WebhookSecretKeySize is the size of KYCPIPE_WEBHOOK_SECRET_KEY once
// base64-decoded.
const WebhookSecretKeySize = 32

// Prefixes of stored secrets.
const (
	sealedPrefix = "v1:aesgcm:"
	plainPrefix  = "v1:plain:"
)

// Errors of stored secrets. Neither ever contains a secret.
var (
	// ErrWebhookSecretKeyMissing: a stored secret is encrypted and no
	// KYCPIPE_WEBHOOK_SECRET_KEY is configured.
	ErrWebhookSecretKeyMissing = errors.New("pipeline: webhook secrets are encrypted: set KYCPIPE_WEBHOOK_SECRET_KEY")
	// ErrWebhookSecretKeyMismatch: a stored secret does not open with the
	// configured KYCPIPE_WEBHOOK_SECRET_KEY (another key sealed it, or it was
	// tampered with).
	ErrWebhookSecretKeyMismatch = errors.New("pipeline: a webhook secret does not open with KYCPIPE_WEBHOOK_SECRET_KEY")
)

// ParseWebhookSecretKey decodes KYCPIPE_WEBHOOK_SECRET_KEY: the standard
// base64 encoding of 32 bytes (openssl rand -base64 32). The error never
// contains the value.
func ParseWebhookSecretKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != WebhookSecretKeySize {
		return nil, fmt.Errorf("want the base64 encoding of %d random bytes (openssl rand -base64 32)", WebhookSecretKeySize)
	}
	return b, nil
}

// secretBox seals and opens stored secrets; a nil aead stores them plain.
type secretBox struct{ aead cipher.AEAD }

func newSecretBox(key []byte) (secretBox, error) {
	if key == nil {
		return secretBox{}, nil
	}
	if len(key) != WebhookSecretKeySize {
		return secretBox{}, fmt.Errorf("%w: webhook secret key: want %d bytes, got %d", ErrInvalidConfig, WebhookSecretKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return secretBox{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return secretBox{}, err
	}
	return secretBox{aead: aead}, nil
}

func secretAAD(endpointID string) []byte { return []byte("kycpipe/webhook-secret/v1:" + endpointID) }

// seal returns the stored form of s for endpointID.
func (b secretBox) seal(endpointID string, s webhooks.Secret) string {
	if b.aead == nil {
		return plainPrefix + s.Reveal()
	}
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	ct := b.aead.Seal(nonce, nonce, []byte(s.Reveal()), secretAAD(endpointID))
	return sealedPrefix + base64.StdEncoding.EncodeToString(ct)
}

// open reads a stored secret of endpointID.
func (b secretBox) open(endpointID, stored string) (webhooks.Secret, error) {
	switch {
	case strings.HasPrefix(stored, plainPrefix):
		return webhooks.ParseSecret(strings.TrimPrefix(stored, plainPrefix))
	case strings.HasPrefix(stored, sealedPrefix):
		if b.aead == nil {
			return webhooks.Secret{}, ErrWebhookSecretKeyMissing
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(stored, sealedPrefix))
		if err != nil || len(raw) < b.aead.NonceSize() {
			return webhooks.Secret{}, ErrWebhookSecretKeyMismatch
		}
		n := b.aead.NonceSize()
		pt, err := b.aead.Open(nil, raw[:n], raw[n:], secretAAD(endpointID))
		if err != nil {
			return webhooks.Secret{}, ErrWebhookSecretKeyMismatch
		}
		return webhooks.ParseSecret(string(pt))
	}
	return webhooks.Secret{}, fmt.Errorf("pipeline: unknown stored webhook secret format")
}

// storedSecret is one signing secret of an endpoint, as stored.
type storedSecret struct {
	Value     string    `json:"value"` // sealed or plain, see secretBox
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt is set once a rotation replaced the secret: it keeps
	// signing, after the new one, until then.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// timedSecret is an opened secret and when it stops signing (zero: never).
type timedSecret struct {
	secret    webhooks.Secret
	expiresAt time.Time
}

// activeSecrets returns the secrets that sign at now, newest first.
func activeSecrets(all []timedSecret, now time.Time) []webhooks.Secret {
	out := make([]webhooks.Secret, 0, len(all))
	for _, s := range all {
		if s.expiresAt.IsZero() || now.Before(s.expiresAt) {
			out = append(out, s.secret)
		}
	}
	return out
}
