package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// The webhook endpoint routes of ingest (DESIGN 3.8), all with scope admin:
//
//	POST   /v1/webhook-endpoints                                   register → 201 with the secret
//	GET    /v1/webhook-endpoints                                   list
//	GET    /v1/webhook-endpoints/{id}                              one
//	PATCH  /v1/webhook-endpoints/{id}                              url, eventTypes, description, status
//	DELETE /v1/webhook-endpoints/{id}                              remove it and its pending deliveries
//	POST   /v1/webhook-endpoints/{id}/rotate-secret                a new secret; the old one signs 24 h more
//	GET    /v1/webhook-endpoints/{id}/deliveries                   recent attempts
//	POST   /v1/webhook-endpoints/{id}/deliveries/{webhookId}/resend  kycpipe's extension: send again

// maxWebhookBody bounds the JSON body of the webhook endpoint routes.
const maxWebhookBody = 64 << 10

// WebhookEndpointCreated is the answer to a registration: the endpoint and
// its secret, shown only here.
type WebhookEndpointCreated struct {
	WebhookEndpoint
	Secret string `json:"secret"`
}

// WebhookSecretRotated is the answer to a rotation: the new secret (shown
// only here) and when the previous one stops signing.
type WebhookSecretRotated struct {
	Secret                  string    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previousSecretExpiresAt"`
}

// webhookRoutes registers the routes on mux.
func (in *Ingest) webhookRoutes(mux *http.ServeMux) {
	mux.Handle("POST /v1/webhook-endpoints", in.route("webhook_create", in.authed(ScopeAdmin, in.webhookCreate)))
	mux.Handle("GET /v1/webhook-endpoints", in.route("webhook_list", in.authed(ScopeAdmin, in.webhookList)))
	mux.Handle("GET /v1/webhook-endpoints/{id}", in.route("webhook_get", in.authed(ScopeAdmin, in.webhookGet)))
	mux.Handle("PATCH /v1/webhook-endpoints/{id}", in.route("webhook_update", in.authed(ScopeAdmin, in.webhookUpdate)))
	mux.Handle("DELETE /v1/webhook-endpoints/{id}", in.route("webhook_delete", in.authed(ScopeAdmin, in.webhookDelete)))
	mux.Handle("POST /v1/webhook-endpoints/{id}/rotate-secret", in.route("webhook_rotate", in.authed(ScopeAdmin, in.webhookRotate)))
	mux.Handle("GET /v1/webhook-endpoints/{id}/deliveries", in.route("webhook_deliveries", in.authed(ScopeAdmin, in.webhookDeliveries)))
	mux.Handle("POST /v1/webhook-endpoints/{id}/deliveries/{webhookId}/resend", in.route("webhook_resend", in.authed(ScopeAdmin, in.webhookResend)))
}

// readWebhookJSON decodes a JSON body strictly into v.
func readWebhookJSON(w http.ResponseWriter, r *http.Request, v any) *Problem {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return &Problem{Type: ProblemUnsupportedType, Status: http.StatusUnsupportedMediaType, Detail: "send application/json"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "webhook endpoint bodies are limited to 64 KiB"}
		}
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "cannot read the body"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: messages.DescribeJSONError(err)}
	}
	if dec.More() {
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "trailing data after the JSON object"}
	}
	return nil
}

// webhookFailure answers an error of the registry.
func (in *Ingest) webhookFailure(w http.ResponseWriter, what string, err error) {
	var ve *webhooks.ValidationError
	switch {
	case errors.As(err, &ve):
		fields := make([]jumio.FieldError, len(ve.Fields))
		for i, f := range ve.Fields {
			fields[i] = jumio.FieldError(f)
		}
		writeProblem(w, Problem{Type: ProblemValidation, Status: http.StatusUnprocessableEntity,
			Detail: "the endpoint breaks the webhook rules", Errors: fields})
	case errors.Is(err, ErrWebhookEndpointNotFound):
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown webhook endpoint"})
	case errors.Is(err, ErrWebhookDeliveryNotFound):
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown delivery (or older than the delivery log keeps)"})
	case errors.Is(err, ErrWebhookEventGone):
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "the event of this delivery is no longer stored"})
	case errors.Is(err, ErrWebhookEndpointDisabled):
		writeProblem(w, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "the endpoint is disabled; enable it first"})
	case errors.Is(err, webhooks.ErrResolve):
		in.log.Warn("cannot resolve a webhook endpoint's host", zap.String("what", what), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot resolve the endpoint's host now; retry later")
	default:
		in.log.Warn("webhook endpoint request failed", zap.String("what", what), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot reach the endpoint registry now")
	}
}

func (in *Ingest) webhookCtx(r *http.Request) (context.Context, context.CancelFunc) {
	// Registration resolves the host (up to the resolver's own timeout)
	// and talks to JetStream a few times.
	return context.WithTimeout(r.Context(), 3*in.cfg.PublishTimeout)
}

func (in *Ingest) webhookCreate(w http.ResponseWriter, r *http.Request) {
	var body WebhookEndpointInput
	if p := readWebhookJSON(w, r, &body); p != nil {
		writeProblem(w, *p)
		return
	}
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	ep, secret, err := in.hooks.Create(ctx, body)
	if err != nil {
		in.webhookFailure(w, "create", err)
		return
	}
	in.log.Info("webhook endpoint registered", zap.String("endpoint_id", ep.ID), zap.String("key", PrincipalFrom(r.Context()).Name))
	w.Header().Set("Location", "/v1/webhook-endpoints/"+ep.ID)
	writeJSON(w, http.StatusCreated, WebhookEndpointCreated{WebhookEndpoint: *ep, Secret: secret.Reveal()})
}

func (in *Ingest) webhookList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	list, err := in.hooks.List(ctx)
	if err != nil {
		in.webhookFailure(w, "list", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": list})
}

func (in *Ingest) webhookGet(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	ep, err := in.hooks.Get(ctx, r.PathValue("id"))
	if err != nil {
		in.webhookFailure(w, "get", err)
		return
	}
	writeJSON(w, http.StatusOK, ep)
}

func (in *Ingest) webhookUpdate(w http.ResponseWriter, r *http.Request) {
	var patch WebhookEndpointPatch
	if p := readWebhookJSON(w, r, &patch); p != nil {
		writeProblem(w, *p)
		return
	}
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	ep, err := in.hooks.Update(ctx, r.PathValue("id"), patch)
	if err != nil {
		in.webhookFailure(w, "update", err)
		return
	}
	in.log.Info("webhook endpoint changed", zap.String("endpoint_id", ep.ID), zap.String("status", ep.Status), zap.String("key", PrincipalFrom(r.Context()).Name))
	writeJSON(w, http.StatusOK, ep)
}

func (in *Ingest) webhookDelete(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	id := r.PathValue("id")
	if err := in.hooks.Delete(ctx, id); err != nil {
		in.webhookFailure(w, "delete", err)
		return
	}
	in.log.Info("webhook endpoint deleted", zap.String("endpoint_id", id), zap.String("key", PrincipalFrom(r.Context()).Name))
	w.WriteHeader(http.StatusNoContent)
}

func (in *Ingest) webhookRotate(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	id := r.PathValue("id")
	secret, expires, err := in.hooks.RotateSecret(ctx, id)
	if err != nil {
		in.webhookFailure(w, "rotate", err)
		return
	}
	in.log.Info("webhook endpoint secret rotated", zap.String("endpoint_id", id), zap.String("key", PrincipalFrom(r.Context()).Name))
	writeJSON(w, http.StatusOK, WebhookSecretRotated{Secret: secret.Reveal(), PreviousSecretExpiresAt: expires})
}

func (in *Ingest) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := DefaultWebhookAttempts
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxWebhookAttempts {
			writeProblem(w, Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest,
				Detail: "limit must be an integer from 1 to " + strconv.Itoa(MaxWebhookAttempts)})
			return
		}
		limit = n
	}
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	list, err := in.hooks.Deliveries(ctx, r.PathValue("id"), limit)
	if err != nil {
		in.webhookFailure(w, "deliveries", err)
		return
	}
	if list == nil {
		list = []WebhookAttempt{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": list})
}

func (in *Ingest) webhookResend(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := in.webhookCtx(r)
	defer cancel()
	res, err := in.hooks.Resend(ctx, r.PathValue("id"), r.PathValue("webhookId"))
	if err != nil {
		in.webhookFailure(w, "resend", err)
		return
	}
	in.log.Info("webhook delivery resent", zap.String("endpoint_id", res.EndpointID), zap.String("webhook_id", res.WebhookID),
		jobField(res.JobID), zap.String("key", PrincipalFrom(r.Context()).Name))
	writeJSON(w, http.StatusAccepted, res)
}
