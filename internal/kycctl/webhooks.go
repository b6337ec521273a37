package kycctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

// webhookOpts are the flags of the webhooks commands.
type webhookOpts struct {
	url, events, description string
	limit                    int
}

const webhooksHelp = `Endpoints are stored in JetStream (the KYC_WEBHOOK_ENDPOINTS bucket) and shared with ingest's
/v1/webhook-endpoints routes; cmd/notifier delivers to them. Set KYCPIPE_WEBHOOK_ALLOW_INSECURE,
KYCPIPE_WEBHOOK_ALLOW_PRIVATE and KYCPIPE_WEBHOOK_SECRET_KEY as on ingest and the notifiers: the URL
rules are checked here too, and secrets are sealed with the key.`

func webhookFlags(o *opts, s *config.Set) {
	s.String(&o.wh.url, "url", "", "", "the endpoint's URL (https; public addresses only unless allowed)")
	s.String(&o.wh.events, "events", "", "", "event types, comma-separated: verification.accepted, .launched, .finalized, .failed, .decided, .erased, verification.* or *")
	s.String(&o.wh.description, "description", "", "", "what the endpoint is for (at most 512 bytes)")
}

func webhookCommands() []command {
	return []command{
		{name: "webhooks add", synopsis: "URL --events TYPES [--description TEXT]", webhooks: true,
			summary: "register a webhook endpoint (prints its secret, once)",
			help: webhooksHelp + `

The secret (whsec_…) is printed only now: give it to the receiver, which verifies every delivery with it.`,
			flags: func(o *opts, s *config.Set) {
				s.String(&o.wh.events, "events", "", "*", "event types, comma-separated: verification.accepted, .launched, .finalized, .failed, .decided, .erased, verification.* or *")
				s.String(&o.wh.description, "description", "", "", "what the endpoint is for (at most 512 bytes)")
			},
			run: webhooksAdd},
		{name: "webhooks list", webhooks: true, summary: "list the webhook endpoints", help: webhooksHelp, run: webhooksList},
		{name: "webhooks show", synopsis: "ID", webhooks: true, summary: "one webhook endpoint", help: webhooksHelp, run: webhooksShow},
		{name: "webhooks update", synopsis: "ID [--url URL] [--events TYPES] [--description TEXT]", webhooks: true,
			summary: "change a webhook endpoint's URL, event types or description", help: webhooksHelp, flags: webhookFlags, run: webhooksUpdate},
		{name: "webhooks disable", synopsis: "ID", webhooks: true, summary: "stop deliveries to an endpoint (pending ones are dropped)",
			help: webhooksHelp, run: webhooksStatus(pipeline.WebhookDisabled)},
		{name: "webhooks enable", synopsis: "ID", webhooks: true, summary: "resume deliveries to an endpoint (after a 410 or a disable)",
			help: webhooksHelp, run: webhooksStatus(pipeline.WebhookEnabled)},
		{name: "webhooks delete", synopsis: "ID", webhooks: true, summary: "remove an endpoint and its pending deliveries",
			help: webhooksHelp, run: webhooksDelete},
		{name: "webhooks rotate", synopsis: "ID", webhooks: true, summary: "give an endpoint a new secret (prints it, once; the old one signs 24 h more)",
			help: webhooksHelp + `

For the next 24 hours every delivery carries two signatures, the new secret's first: deploy the new
secret to the receiver within that time.`, run: webhooksRotate},
		{name: "webhooks deliveries", synopsis: "ID [--limit N]", webhooks: true, summary: "an endpoint's recent delivery attempts, newest first",
			help: webhooksHelp + `

Columns: AT, WEBHOOK ID, TYPE, JOB, ATTEMPT, OUTCOME (delivered, failed, refused, gone, dropped),
STATUS (the endpoint's HTTP status), MS, NEXT (the next attempt) or DEAD (dead-lettered), ERROR.
The log keeps 7 days.`,
			flags: func(o *opts, s *config.Set) {
				s.Int(&o.wh.limit, "limit", "", pipeline.DefaultWebhookAttempts, "at most this many (up to 1000)")
			},
			run: webhooksDeliveries},
		{name: "webhooks resend", synopsis: "ID WEBHOOK_ID", webhooks: true, summary: "send a delivery again (same webhook-id, a fresh retry schedule)",
			help: webhooksHelp + `

WEBHOOK_ID is from kycctl webhooks deliveries. Dead-lettered deliveries can also be replayed with
kycctl dlq replay --stage notifier.`, run: webhooksResend},
	}
}

// registry opens the endpoint registry with the webhook settings.
func (e *env) registry(ctx context.Context) (*pipeline.WebhookEndpoints, error) {
	if err := e.connect(); err != nil {
		return nil, err
	}
	return pipeline.NewWebhookEndpoints(ctx, e.js, e.topo, e.hooks.Settings(), nil)
}

// oneID returns the single positional argument (an endpoint ID).
func (e *env) oneID(usage string) (string, error) {
	if len(e.o.positional) != 1 {
		return "", errors.New("usage: " + usage)
	}
	return e.o.positional[0], nil
}

// webhookError explains a registry error for the terminal.
func webhookError(err error) error {
	var ve *webhooks.ValidationError
	if errors.As(err, &ve) {
		var lines []string
		for _, f := range ve.Fields {
			lines = append(lines, fmt.Sprintf("  %s: %s (%s)", f.Field, f.Message, f.Code))
		}
		return fmt.Errorf("refused:\n%s", strings.Join(lines, "\n"))
	}
	if errors.Is(err, webhooks.ErrResolve) {
		return fmt.Errorf("%w (a DNS failure that may pass: try again)", err)
	}
	return err
}

func (e *env) showEndpoint(ep *pipeline.WebhookEndpoint, secret string, extra func(w *tabwriter.Writer)) error {
	var v any = ep
	if secret != "" {
		v = pipeline.WebhookEndpointCreated{WebhookEndpoint: *ep, Secret: secret}
	}
	return e.emit(v, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "id\t%s\nurl\t%s\nevent types\t%s\ndescription\t%s\nstatus\t%s\n", ep.ID, ep.URL,
			strings.Join(ep.EventTypes, ","), orDash(ep.Description), ep.Status)
		if ep.DisabledReason != "" {
			fmt.Fprintf(w, "disabled because\t%s\n", ep.DisabledReason)
		}
		fmt.Fprintf(w, "created\t%s\nupdated\t%s\n", ts(ep.CreatedAt), ts(ep.UpdatedAt))
		if secret != "" {
			fmt.Fprintf(w, "secret\t%s\n", secret)
		}
		if extra != nil {
			extra(w)
		}
	})
}

func webhooksAdd(ctx context.Context, e *env) error {
	url, err := e.oneID("kycctl webhooks add URL --events TYPES [--description TEXT]")
	if err != nil {
		return err
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	ep, secret, err := reg.Create(ctx, pipeline.WebhookEndpointInput{URL: url, EventTypes: splitList(e.o.wh.events), Description: e.o.wh.description})
	if err != nil {
		return webhookError(err)
	}
	return e.showEndpoint(ep, secret.Reveal(), func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "\nThe secret is shown only now: give it to the receiver (WEBHOOK_SECRET for examples/webhook-receiver).")
	})
}

func webhooksList(ctx context.Context, e *env) error {
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	list, err := reg.List(ctx)
	if err != nil {
		return err
	}
	return e.emit(list, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "ID\tSTATUS\tEVENT TYPES\tURL\tDESCRIPTION")
		for _, ep := range list {
			status := ep.Status
			if ep.DisabledReason != "" {
				status += " (" + ep.DisabledReason + ")"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ep.ID, status, strings.Join(ep.EventTypes, ","), ep.URL, truncate(ep.Description, 40))
		}
		if len(list) == 0 {
			fmt.Fprintln(w, "(no webhook endpoints; kycctl webhooks add URL registers one)")
		}
	})
}

func webhooksShow(ctx context.Context, e *env) error {
	id, err := e.oneID("kycctl webhooks show ID")
	if err != nil {
		return err
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	ep, err := reg.Get(ctx, id)
	if err != nil {
		return err
	}
	return e.showEndpoint(ep, "", nil)
}

func webhooksUpdate(ctx context.Context, e *env) error {
	id, err := e.oneID("kycctl webhooks update ID [--url URL] [--events TYPES] [--description TEXT]")
	if err != nil {
		return err
	}
	var p pipeline.WebhookEndpointPatch
	if e.o.wh.url != "" {
		p.URL = &e.o.wh.url
	}
	if e.o.wh.events != "" {
		types := splitList(e.o.wh.events)
		p.EventTypes = &types
	}
	if e.o.wh.description != "" {
		p.Description = &e.o.wh.description
	}
	if p.URL == nil && p.EventTypes == nil && p.Description == nil {
		return errors.New("nothing to change: give --url, --events or --description")
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	ep, err := reg.Update(ctx, id, p)
	if err != nil {
		return webhookError(err)
	}
	return e.showEndpoint(ep, "", nil)
}

func webhooksStatus(status string) func(context.Context, *env) error {
	return func(ctx context.Context, e *env) error {
		id, err := e.oneID("kycctl webhooks " + strings.ToLower(strings.TrimSuffix(status, "D")) + " ID")
		if err != nil {
			return err
		}
		reg, err := e.registry(ctx)
		if err != nil {
			return err
		}
		ep, err := reg.Update(ctx, id, pipeline.WebhookEndpointPatch{Status: &status})
		if err != nil {
			return webhookError(err)
		}
		return e.showEndpoint(ep, "", nil)
	}
}

func webhooksDelete(ctx context.Context, e *env) error {
	id, err := e.oneID("kycctl webhooks delete ID")
	if err != nil {
		return err
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	if err := reg.Delete(ctx, id); err != nil {
		return err
	}
	return e.emit(map[string]string{"id": id, "result": "deleted"}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "deleted %s and its pending deliveries\n", id)
	})
}

func webhooksRotate(ctx context.Context, e *env) error {
	id, err := e.oneID("kycctl webhooks rotate ID")
	if err != nil {
		return err
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	secret, expires, err := reg.RotateSecret(ctx, id)
	if err != nil {
		return err
	}
	v := pipeline.WebhookSecretRotated{Secret: secret.Reveal(), PreviousSecretExpiresAt: expires}
	return e.emit(v, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "secret\t%s\nprevious secret signs until\t%s\n", v.Secret, ts(expires))
		fmt.Fprintln(w, "\nThe secret is shown only now: deploy it to the receiver before the previous one stops signing.")
	})
}

func webhooksDeliveries(ctx context.Context, e *env) error {
	id, err := e.oneID("kycctl webhooks deliveries ID [--limit N]")
	if err != nil {
		return err
	}
	if e.o.wh.limit < 1 || e.o.wh.limit > pipeline.MaxWebhookAttempts {
		return fmt.Errorf("--limit must be from 1 to %d", pipeline.MaxWebhookAttempts)
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	list, err := reg.Deliveries(ctx, id, e.o.wh.limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []pipeline.WebhookAttempt{}
	}
	return e.emit(list, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "AT\tWEBHOOK ID\tTYPE\tJOB\tATTEMPT\tOUTCOME\tSTATUS\tMS\tNEXT\tERROR")
		for _, a := range list {
			next := "-"
			switch {
			case a.DeadLettered:
				next = "DEAD"
			case a.NextAttemptAt != nil:
				next = "in " + human(time.Until(*a.NextAttemptAt))
			}
			status := "-"
			if a.StatusCode != 0 {
				status = fmt.Sprint(a.StatusCode)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", tsMilli(a.At), a.WebhookID, strings.TrimPrefix(a.EventType, "verification."),
				a.JobID, a.Attempt, a.Outcome, status, a.DurationMs, next, truncate(orDash(a.Error), 80))
		}
		if len(list) == 0 {
			fmt.Fprintln(w, "(no deliveries in the log)")
		}
	})
}

func webhooksResend(ctx context.Context, e *env) error {
	if len(e.o.positional) != 2 {
		return errors.New("usage: kycctl webhooks resend ID WEBHOOK_ID")
	}
	reg, err := e.registry(ctx)
	if err != nil {
		return err
	}
	res, err := reg.Resend(ctx, e.o.positional[0], e.o.positional[1])
	if err != nil {
		return err
	}
	return e.emit(res, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "queued %s again for %s (job %s)\n", res.WebhookID, res.EndpointID, res.JobID)
	})
}
