package service

import (
	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Webhooks are the webhook settings ingest, the notifier and kycctl share
// (DESIGN 3.8): the endpoint URL policy and the key that seals endpoint
// secrets at rest. Set them the same on all three.
type Webhooks struct {
	AllowInsecure bool
	AllowPrivate  bool
	secretKey     string
	keySetting    *config.Setting
	key           []byte
}

// Bind registers the webhook settings.
func (w *Webhooks) Bind(s *config.Set) {
	s.Bool(&w.AllowInsecure, "webhook-allow-insecure", "KYCPIPE_WEBHOOK_ALLOW_INSECURE", false,
		"accept http:// webhook endpoint URLs (development only; https otherwise)")
	s.Bool(&w.AllowPrivate, "webhook-allow-private", "KYCPIPE_WEBHOOK_ALLOW_PRIVATE", false,
		"accept webhook endpoints on loopback, private, link-local and other non-public addresses (development and tests only)")
	w.keySetting = s.Secret(&w.secretKey, "webhook-secret-key", "KYCPIPE_WEBHOOK_SECRET_KEY",
		"base64 of 32 random bytes (openssl rand -base64 32) sealing webhook endpoint secrets at rest with AES-256-GCM; unset: secrets are stored as they are")
	w.keySetting.Check(func() string {
		if w.secretKey == "" {
			w.key = nil
			return ""
		}
		key, err := pipeline.ParseWebhookSecretKey(w.secretKey)
		if err != nil {
			return err.Error()
		}
		w.key = key
		return ""
	})
}

// Settings returns the pipeline's webhook settings (after the set is
// parsed).
func (w *Webhooks) Settings() pipeline.WebhookSettings {
	return pipeline.WebhookSettings{
		Policy:    webhooks.Policy{AllowInsecure: w.AllowInsecure, AllowPrivate: w.AllowPrivate},
		SecretKey: w.key,
	}
}
