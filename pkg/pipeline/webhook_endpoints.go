package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// Endpoint statuses.
const (
	WebhookEnabled  = "ENABLED"
	WebhookDisabled = "DISABLED"
)

// Why an endpoint was disabled (WebhookEndpoint.DisabledReason).
const (
	DisabledByOperator = "operator" // PATCH status DISABLED, kycctl webhooks disable
	DisabledGone       = "gone"     // the endpoint answered 410 Gone
)

// WebhookRotationOverlap is how long the previous secret keeps signing,
// after the new one, once a secret is rotated.
const WebhookRotationOverlap = 24 * time.Hour

// MaxWebhookDescription bounds an endpoint's description (bytes).
const MaxWebhookDescription = 512

// ErrWebhookEndpointNotFound: no endpoint has that ID.
var ErrWebhookEndpointNotFound = errors.New("pipeline: unknown webhook endpoint")

// WebhookEndpoint is a registered endpoint as the API and kycctl show it.
// It never holds a secret: the secret is shown once, by Create and
// RotateSecret.
type WebhookEndpoint struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	EventTypes  []string `json:"eventTypes"`
	Description string   `json:"description"`
	Status      string   `json:"status"` // WebhookEnabled or WebhookDisabled
	// DisabledReason says why a DISABLED endpoint is: "operator" or "gone"
	// (it answered 410).
	DisabledReason string    `json:"disabledReason,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
}

// Enabled reports whether deliveries go to the endpoint.
func (e *WebhookEndpoint) Enabled() bool { return e.Status == WebhookEnabled }

// WebhookEndpointInput is what POST /v1/webhook-endpoints takes.
type WebhookEndpointInput struct {
	URL         string   `json:"url"`
	EventTypes  []string `json:"eventTypes"`
	Description string   `json:"description,omitempty"`
}

// WebhookEndpointPatch is what PATCH /v1/webhook-endpoints/{id} takes: nil
// fields are left as they are.
type WebhookEndpointPatch struct {
	URL         *string   `json:"url,omitempty"`
	EventTypes  *[]string `json:"eventTypes,omitempty"`
	Description *string   `json:"description,omitempty"`
	Status      *string   `json:"status,omitempty"`
}

// endpointRecord is an endpoint as stored in the endpoints bucket.
type endpointRecord struct {
	WebhookEndpoint
	Secrets []storedSecret `json:"secrets"` // newest first
}

// WebhookSettings are the webhook settings ingest, the notifier and kycctl
// share.
type WebhookSettings struct {
	// Policy checks endpoint URLs (KYCPIPE_WEBHOOK_ALLOW_INSECURE,
	// KYCPIPE_WEBHOOK_ALLOW_PRIVATE); the zero value is the production
	// policy.
	Policy webhooks.Policy
	// SecretKey seals endpoint secrets at rest with AES-256-GCM
	// (KYCPIPE_WEBHOOK_SECRET_KEY, 32 bytes); nil stores them plain.
	SecretKey []byte
}

// WebhookEndpoints is the registry of webhook endpoints, one JSON record
// per endpoint under ep.<id> in the endpoints bucket. Ingest's API, kycctl
// and the notifier share it. Every change is a compare-and-swap on the
// record's revision. It is safe for concurrent use.
type WebhookEndpoints struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	leader *leaderReader
	subj   messages.Subjects
	policy webhooks.Policy
	box    secretBox
	now    func() time.Time
}

// NewWebhookEndpoints opens the endpoints bucket (it must exist: see
// Provision). now defaults to time.Now.
func NewWebhookEndpoints(ctx context.Context, js jetstream.JetStream, t Topology, s WebhookSettings, now func() time.Time) (*WebhookEndpoints, error) {
	t = t.WithDefaults()
	box, err := newSecretBox(s.SecretKey)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, t.Subjects.BucketWebhookEndpoints())
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook endpoints bucket: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &WebhookEndpoints{js: js, kv: kv, leader: newLeaderReader(js, t.Subjects.BucketWebhookEndpoints()),
		subj: t.Subjects, policy: s.Policy, box: box, now: now}, nil
}

var endpointIDEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

var endpointIDRE = regexp.MustCompile(`^ep_[0-9a-hjkmnp-tv-z]{26}$`)

// ValidWebhookEndpointID reports whether id can name an endpoint: "ep_"
// and 26 lower-case Crockford base32 characters.
func ValidWebhookEndpointID(id string) bool { return endpointIDRE.MatchString(id) }

func newEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ep_" + endpointIDEncoding.EncodeToString(b[:])
}

func endpointKey(id string) string { return "ep." + id }

// validateDescription collects the violations of a description in v.
func validateDescription(v *[]webhooks.FieldError, d string) {
	switch {
	case len(d) > MaxWebhookDescription:
		*v = append(*v, webhooks.FieldError{Field: "description", Code: webhooks.CodeTooLong,
			Message: fmt.Sprintf("must be at most %d bytes", MaxWebhookDescription)})
	case !utf8.ValidString(d) || strings.ContainsFunc(d, unicode.IsControl):
		*v = append(*v, webhooks.FieldError{Field: "description", Code: webhooks.CodeInvalidFormat,
			Message: "must be UTF-8 text without control characters"})
	}
}

// check applies the URL policy and the event type rules; it returns a
// *webhooks.ValidationError (422), an error wrapping webhooks.ErrResolve
// (503) or nil.
func (r *WebhookEndpoints) check(ctx context.Context, url *string, types *[]string, desc *string, status *string) error {
	var fields []webhooks.FieldError
	if url != nil {
		if _, err := r.policy.CheckURL(ctx, *url); err != nil {
			var ve *webhooks.ValidationError
			if !errors.As(err, &ve) {
				return err
			}
			fields = append(fields, ve.Fields...)
		}
	}
	if types != nil {
		var ve *webhooks.ValidationError
		if err := webhooks.ValidateEventTypes(*types); errors.As(err, &ve) {
			fields = append(fields, ve.Fields...)
		}
	}
	if desc != nil {
		validateDescription(&fields, *desc)
	}
	if status != nil && *status != WebhookEnabled && *status != WebhookDisabled {
		fields = append(fields, webhooks.FieldError{Field: "status", Code: messages.CodeInvalidValue, Message: "must be ENABLED or DISABLED"})
	}
	if len(fields) > 0 {
		return &webhooks.ValidationError{Fields: fields}
	}
	return nil
}

// Create registers an endpoint (enabled) after checking its URL against
// the policy and its event types. It returns the endpoint and its secret,
// which is shown only now. Errors: *webhooks.ValidationError (the client
// must fix the input), webhooks.ErrResolve (DNS trouble: try again later),
// or a NATS error.
func (r *WebhookEndpoints) Create(ctx context.Context, in WebhookEndpointInput) (*WebhookEndpoint, webhooks.Secret, error) {
	if err := r.check(ctx, &in.URL, &in.EventTypes, &in.Description, nil); err != nil {
		return nil, webhooks.Secret{}, err
	}
	now := r.now().UTC()
	secret := webhooks.NewSecret()
	rec := &endpointRecord{WebhookEndpoint: WebhookEndpoint{
		ID: newEndpointID(), URL: in.URL, EventTypes: slices.Clone(in.EventTypes), Description: in.Description,
		Status: WebhookEnabled, CreatedAt: now, UpdatedAt: now,
	}}
	rec.Secrets = []storedSecret{{Value: r.box.seal(rec.ID, secret), CreatedAt: now}}
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, webhooks.Secret{}, err
	}
	if _, err := r.kv.Create(ctx, endpointKey(rec.ID), b); err != nil {
		return nil, webhooks.Secret{}, fmt.Errorf("pipeline: store webhook endpoint: %w", err)
	}
	ep := rec.WebhookEndpoint
	return &ep, secret, nil
}

// load reads an endpoint's record and its revision.
func (r *WebhookEndpoints) load(ctx context.Context, id string) (*endpointRecord, uint64, error) {
	if !ValidWebhookEndpointID(id) {
		return nil, 0, ErrWebhookEndpointNotFound
	}
	e, err := r.kv.Get(ctx, endpointKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// A direct get may be answered by a replica that lags (after a
		// node loss or a partition): "not found" drops deliveries, so the
		// bucket stream's leader confirms it (kvleader.go; the soak lost
		// webhook deliveries around node losses).
		b, rev, err := r.leader.get(ctx, endpointKey(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, 0, ErrWebhookEndpointNotFound
		}
		if err != nil {
			return nil, 0, fmt.Errorf("pipeline: read webhook endpoint: %w", err)
		}
		rec, err := decodeEndpointRecord(b)
		return rec, rev, err
	}
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline: read webhook endpoint: %w", err)
	}
	rec, err := decodeEndpointRecord(e.Value())
	if err != nil {
		return nil, 0, err
	}
	return rec, e.Revision(), nil
}

// storedIDs returns the IDs of the endpoints whose keys the bucket
// stream's leader holds a message for (a deleted endpoint's marker
// included): stream info is answered by the leader.
func (r *WebhookEndpoints) storedIDs(ctx context.Context) ([]string, error) {
	bucket := r.subj.BucketWebhookEndpoints()
	st, err := r.js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook endpoints bucket: %w", err)
	}
	prefix := "$KV." + bucket + ".ep."
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+"*"))
	if err != nil {
		return nil, fmt.Errorf("pipeline: webhook endpoints bucket: %w", err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subject := range info.State.Subjects {
		ids = append(ids, strings.TrimPrefix(subject, prefix))
	}
	return ids, nil
}

func decodeEndpointRecord(b []byte) (*endpointRecord, error) {
	var rec endpointRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("pipeline: undecodable webhook endpoint record: %w", err)
	}
	return &rec, nil
}

// Get returns one endpoint, or ErrWebhookEndpointNotFound.
func (r *WebhookEndpoints) Get(ctx context.Context, id string) (*WebhookEndpoint, error) {
	rec, _, err := r.load(ctx, id)
	if err != nil {
		return nil, err
	}
	return &rec.WebhookEndpoint, nil
}

// List returns every endpoint, oldest first.
func (r *WebhookEndpoints) List(ctx context.Context) ([]WebhookEndpoint, error) {
	lister, err := r.kv.ListKeysFiltered(ctx, "ep.*")
	if err != nil {
		return nil, fmt.Errorf("pipeline: list webhook endpoints: %w", err)
	}
	out := []WebhookEndpoint{}
	for key := range lister.Keys() {
		rec, _, err := r.load(ctx, strings.TrimPrefix(key, "ep."))
		if errors.Is(err, ErrWebhookEndpointNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec.WebhookEndpoint)
	}
	slices.SortFunc(out, func(a, b WebhookEndpoint) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// update applies change to an endpoint's record with compare-and-swap,
// re-reading and reapplying on a lost race. change returns errStop to
// write nothing.
func (r *WebhookEndpoints) update(ctx context.Context, id string, change func(*endpointRecord) error) (*endpointRecord, error) {
	for {
		rec, rev, err := r.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := change(rec); errors.Is(err, errStop) {
			return rec, nil
		} else if err != nil {
			return nil, err
		}
		rec.UpdatedAt = r.now().UTC()
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		_, err = r.kv.Update(ctx, endpointKey(id), b, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pipeline: update webhook endpoint: %w", err)
		}
		return rec, nil
	}
}

// Update changes an endpoint's URL, event types, description or status
// (checked like Create's). Enabling clears the disabled reason.
func (r *WebhookEndpoints) Update(ctx context.Context, id string, p WebhookEndpointPatch) (*WebhookEndpoint, error) {
	if _, _, err := r.load(ctx, id); err != nil {
		return nil, err
	}
	if err := r.check(ctx, p.URL, p.EventTypes, p.Description, p.Status); err != nil {
		return nil, err
	}
	rec, err := r.update(ctx, id, func(rec *endpointRecord) error {
		if p.URL != nil {
			rec.URL = *p.URL
		}
		if p.EventTypes != nil {
			rec.EventTypes = slices.Clone(*p.EventTypes)
		}
		if p.Description != nil {
			rec.Description = *p.Description
		}
		if p.Status != nil && *p.Status != rec.Status {
			rec.Status = *p.Status
			rec.DisabledReason = ""
			if rec.Status == WebhookDisabled {
				rec.DisabledReason = DisabledByOperator
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &rec.WebhookEndpoint, nil
}

// disable marks an endpoint DISABLED for reason (the notifier, on 410).
func (r *WebhookEndpoints) disable(ctx context.Context, id, reason string) error {
	_, err := r.update(ctx, id, func(rec *endpointRecord) error {
		if rec.Status == WebhookDisabled {
			return errStop
		}
		rec.Status, rec.DisabledReason = WebhookDisabled, reason
		return nil
	})
	return err
}

// Delete removes an endpoint and its pending deliveries (its delivery log
// stays until it ages out).
func (r *WebhookEndpoints) Delete(ctx context.Context, id string) error {
	if _, _, err := r.load(ctx, id); err != nil {
		return err
	}
	// A delete marker, not a purge: the bucket keeps one revision per key,
	// so the endpoint's secrets are gone with it, and a purge would need
	// roll-ups, which the webhook buckets refuse.
	if err := r.kv.Delete(ctx, endpointKey(id)); err != nil {
		return fmt.Errorf("pipeline: delete webhook endpoint: %w", err)
	}
	st, err := r.js.Stream(ctx, r.subj.StreamWebhooks())
	if err != nil {
		return fmt.Errorf("pipeline: deleted webhook endpoint %s, but cannot purge its deliveries: %w", id, err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(r.subj.WebhookDeliveriesOfEndpoint(id))); err != nil {
		return fmt.Errorf("pipeline: deleted webhook endpoint %s, but cannot purge its deliveries: %w", id, err)
	}
	return nil
}

// RotateSecret gives an endpoint a new secret and returns it (shown only
// now) with the time the previous one stops signing (WebhookRotationOverlap
// from now). Secrets whose overlap has ended are dropped.
func (r *WebhookEndpoints) RotateSecret(ctx context.Context, id string) (webhooks.Secret, time.Time, error) {
	secret := webhooks.NewSecret()
	now := r.now().UTC()
	expires := now.Add(WebhookRotationOverlap)
	_, err := r.update(ctx, id, func(rec *endpointRecord) error {
		kept := []storedSecret{{Value: r.box.seal(rec.ID, secret), CreatedAt: now}}
		for _, s := range rec.Secrets {
			switch {
			case s.ExpiresAt.IsZero():
				s.ExpiresAt = expires
			case !now.Before(s.ExpiresAt):
				continue
			}
			kept = append(kept, s)
		}
		rec.Secrets = kept
		return nil
	})
	if err != nil {
		return webhooks.Secret{}, time.Time{}, err
	}
	return secret, expires, nil
}

// openSecrets opens every stored secret of rec that has not expired.
func (r *WebhookEndpoints) openSecrets(rec *endpointRecord) ([]timedSecret, error) {
	out := make([]timedSecret, 0, len(rec.Secrets))
	now := r.now()
	for _, s := range rec.Secrets {
		if !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			continue
		}
		sec, err := r.box.open(rec.ID, s.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, timedSecret{secret: sec, expiresAt: s.ExpiresAt})
	}
	return out, nil
}
