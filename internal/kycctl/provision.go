package kycctl

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/internal/service"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// Resource kinds.
const (
	kindStream   = "stream"
	kindConsumer = "consumer"
	kindKV       = "kv bucket"
	kindObject   = "object store"
)

// resource is one JetStream resource of the topology.
type resource struct {
	Name    string // stream, consumer or bucket name
	Kind    string
	Stream  string // the stream holding it: a consumer's stream, a bucket's KV_/OBJ_ stream
	Display string // what tables show
}

// topologyResources lists what pipeline.Provision creates. (pipeline does
// not export the list; pipeline.Check, run after provisioning and by
// doctor, catches a resource missing here.)
func topologyResources(s messages.Subjects) []resource {
	var out []resource
	for _, name := range []string{s.StreamJobs(), s.StreamCallbacks(), s.StreamRetrieve(), s.StreamEvents(),
		s.StreamDecisions(), s.StreamDLQ(), s.StreamAdvisories(), s.StreamWebhooks(), s.StreamWebhookLog()} {
		out = append(out, resource{Name: name, Kind: kindStream, Stream: name, Display: name})
	}
	for _, c := range []struct{ stream, name string }{
		{s.StreamJobs(), pipeline.ConsumerWorker},
		{s.StreamCallbacks(), pipeline.ConsumerRetrieverCallback},
		{s.StreamRetrieve(), pipeline.ConsumerRetrieverPoll},
		{s.StreamAdvisories(), pipeline.ConsumerDLQSweeper},
		{s.StreamEvents(), pipeline.ConsumerNotifierEvents},
		{s.StreamDecisions(), pipeline.ConsumerNotifierDecisions},
		{s.StreamWebhooks(), pipeline.ConsumerNotifierDelivery},
	} {
		out = append(out, resource{Name: c.name, Kind: kindConsumer, Stream: c.stream, Display: c.stream + "/" + c.name})
	}
	for _, b := range []string{s.BucketJobs(), s.BucketLimits(), s.BucketWebhookEndpoints(), s.BucketWebhookAttempts()} {
		out = append(out, resource{Name: b, Kind: kindKV, Stream: "KV_" + b, Display: b})
	}
	out = append(out, resource{Name: s.BucketImages(), Kind: kindObject, Stream: "OBJ_" + s.BucketImages(), Display: s.BucketImages()})
	return out
}

// resourceRow is a resource's state. For a consumer, Messages are the
// messages it has not finished: not yet delivered plus delivered and not
// yet acknowledged.
type resourceRow struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Stream   string `json:"stream,omitempty"`
	Replicas int    `json:"replicas"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes,omitempty"`

	consumer *jetstream.ConsumerInfo
	stream   *jetstream.StreamInfo
}

// describe reads a resource's info. Errors are JetStream's (a missing
// resource: jetstream.ErrStreamNotFound, ErrConsumerNotFound,
// ErrBucketNotFound).
func describe(ctx context.Context, js jetstream.JetStream, r resource) (resourceRow, error) {
	row := resourceRow{Name: r.Display, Kind: r.Kind}
	switch r.Kind {
	case kindConsumer:
		row.Stream = r.Stream
		c, err := js.Consumer(ctx, r.Stream, r.Name)
		if err != nil {
			return row, err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return row, err
		}
		row.consumer = ci
		row.Replicas = ci.Config.Replicas
		row.Messages = ci.NumPending + uint64(ci.NumAckPending)
		return row, nil
	case kindKV:
		if _, err := js.KeyValue(ctx, r.Name); err != nil {
			return row, err
		}
	case kindObject:
		if _, err := js.ObjectStore(ctx, r.Name); err != nil {
			return row, err
		}
	}
	st, err := js.Stream(ctx, r.Stream)
	if err != nil {
		return row, err
	}
	si, err := st.Info(ctx)
	if err != nil {
		return row, err
	}
	row.stream = si
	row.Replicas, row.Messages, row.Bytes = si.Config.Replicas, si.State.Msgs, si.State.Bytes
	if r.Kind != kindStream {
		row.Stream = r.Stream
	}
	return row, nil
}

func provisionCommand() command {
	return command{
		name: "provision", synopsis: "[--stream-replicas N] [--jobs-max-msgs N] [--jobs-max-bytes N] [--ack-wait D]",
		summary: "create or update every stream, consumer and bucket, then list them",
		help: `For deployments whose services run with --provision=false (least-privilege users): run it with
the admin user, before the services start and after changing limits. It is idempotent: with the
same settings it changes nothing; with new limits it updates them in place. It uses the services'
settings: --subject-prefix, --stream-replicas, --ack-wait (set the same on every service),
--jobs-max-msgs and --jobs-max-bytes.

Columns: NAME, KIND, REPLICAS, MESSAGES (for a consumer: not yet delivered plus not yet
acknowledged), BYTES.`,
		run: provision,
	}
}

type provisionView struct {
	Prefix       string        `json:"prefix"`
	Replicas     int           `json:"replicas"`
	AckWait      string        `json:"ackWait"`
	JobsMaxMsgs  int64         `json:"jobsMaxMsgs"`
	JobsMaxBytes int64         `json:"jobsMaxBytes"`
	Resources    []resourceRow `json:"resources"`
}

func provision(ctx context.Context, e *env) error {
	if err := e.connect(); err != nil {
		return err
	}
	t := e.topo
	if err := pipeline.Provision(ctx, e.js, t); err != nil {
		if service.IsPermission(err, e.nc) {
			return fmt.Errorf("%w: the NATS user may not create or update streams, consumers and buckets (the server refused: %v); provision as an admin user such as deploy/nats's admin", err, e.nc.LastError())
		}
		return err
	}
	if err := pipeline.Check(ctx, e.js, t); err != nil {
		return fmt.Errorf("provisioned, but the check fails: %w", err)
	}
	v := provisionView{Prefix: e.subj.Prefix(), Replicas: t.Replicas, AckWait: t.WorkerAckWait.String(),
		JobsMaxMsgs: t.JobsMaxMsgs, JobsMaxBytes: t.JobsMaxBytes, Resources: []resourceRow{}}
	for _, r := range topologyResources(e.subj) {
		row, err := describe(ctx, e.js, r)
		if err != nil {
			return fmt.Errorf("provisioned, but cannot read %s %s: %w", r.Kind, r.Display, err)
		}
		v.Resources = append(v.Resources, row)
	}
	return e.emit(v, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NAME\tKIND\tREPLICAS\tMESSAGES\tBYTES")
		for _, r := range v.Resources {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\n", r.Name, r.Kind, r.Replicas, r.Messages, r.Bytes)
		}
		fmt.Fprintf(w, "\nprovisioned %d resources: prefix %s, %d replica(s), ack wait %s, job queue up to %d messages / %s\n",
			len(v.Resources), v.Prefix, v.Replicas, v.AckWait, v.JobsMaxMsgs, bytesHuman(uint64(max(v.JobsMaxBytes, 0))))
	})
}
