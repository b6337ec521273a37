package console

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// The webhooks page: the endpoints the notifiers deliver to (DESIGN 3.8),
// each endpoint's recent deliveries from its delivery log, and Resend
// (admin), which queues a logged delivery again with the same webhook-id.
// Endpoints are managed over the API and kycctl; the console shows them.
// No page shows a secret (the registry never returns one but at creation
// and rotation).

// extraConsumers are the notifiers' consumers, for the overview's backlogs.
func (c *Console) extraConsumers() [][2]string {
	return pipeline.ConsumersOf(c.cfg.Topology, messages.StageNotifier)
}

type webhooksData struct {
	Available bool
	Endpoints []pipeline.WebhookEndpoint
}

func (c *Console) webhooks(w http.ResponseWriter, q request) {
	d := &webhooksData{Available: c.cfg.Webhooks != nil}
	if d.Available {
		eps, err := c.cfg.Webhooks.List(q.r.Context())
		if err != nil {
			c.unavailable(w, q.r, "the webhook endpoints", err)
			return
		}
		d.Endpoints = eps
	}
	c.render(w, q, http.StatusOK, "webhooks.html", "Webhooks", "webhooks", d, nil)
}

type webhookData struct {
	Endpoint   *pipeline.WebhookEndpoint
	Deliveries []pipeline.WebhookAttempt
	CanResend  bool
}

func (c *Console) webhook(w http.ResponseWriter, q request) {
	id := q.r.PathValue("id")
	if c.cfg.Webhooks == nil || !pipeline.ValidWebhookEndpointID(id) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such webhook endpoint.")
		return
	}
	ep, err := c.cfg.Webhooks.Get(q.r.Context(), id)
	if errors.Is(err, pipeline.ErrWebhookEndpointNotFound) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such webhook endpoint.")
		return
	}
	if err != nil {
		c.unavailable(w, q.r, "the webhook endpoint", err)
		return
	}
	dels, err := c.cfg.Webhooks.Deliveries(q.r.Context(), id, pipeline.DefaultWebhookAttempts)
	if err != nil {
		c.unavailable(w, q.r, "the deliveries", err)
		return
	}
	d := &webhookData{Endpoint: ep, Deliveries: dels, CanResend: q.viewer(c.cfg.ReadOnly).CanAdmin && ep.Enabled()}
	c.render(w, q, http.StatusOK, "webhook.html", "Webhook endpoint "+id, "webhooks", d, flashOf(q.r))
}

// resend queues a logged delivery again.
func (c *Console) resend(w http.ResponseWriter, q request) {
	id, webhookID := q.r.PathValue("id"), q.r.PostFormValue("webhookId")
	if c.cfg.Webhooks == nil || !pipeline.ValidWebhookEndpointID(id) {
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such webhook endpoint.")
		return
	}
	ctx := q.r.Context()
	_, err := c.cfg.Webhooks.Resend(ctx, id, webhookID)
	switch {
	case errors.Is(err, pipeline.ErrWebhookEndpointNotFound), errors.Is(err, pipeline.ErrWebhookDeliveryNotFound):
		c.errorPage(w, q.r, http.StatusNotFound, "There is no such delivery (older than the delivery log keeps, or never made).")
	case errors.Is(err, pipeline.ErrWebhookEndpointDisabled):
		c.errorPage(w, q.r, http.StatusConflict, "The endpoint is disabled: enable it (API or kycctl webhooks enable) before resending.")
	case errors.Is(err, pipeline.ErrWebhookEventGone):
		c.errorPage(w, q.r, http.StatusGone, "The event of this delivery is no longer stored (erased, or past its stream's retention): it cannot be sent again.")
	case err != nil:
		c.unavailable(w, q.r, "the delivery (it was not queued)", err)
	default:
		c.log.Info("console: webhook delivery queued again", zap.String("endpoint", id), zap.String("webhook_id", webhookID), zap.String("key", q.sess.principal.Name))
		http.Redirect(w, q.r, "/console/webhooks/"+id+"?done=resent", http.StatusSeeOther)
	}
}

// attemptDuration is an attempt's duration for the templates.
func attemptDuration(a pipeline.WebhookAttempt) time.Duration {
	return time.Duration(a.DurationMs) * time.Millisecond
}
