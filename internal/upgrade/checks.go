package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// DecodeResult counts, per stream or bucket, the messages read and those
// the new release's decoders refused.
type DecodeResult struct {
	Read, Failed int
	Examples     []string // the first errors
}

// streamDecoder returns the new release's decoder of a stream's payloads,
// the one the stage reading that stream uses.
func streamDecoder(subj messages.Subjects, stream string) func(*jetstream.RawStreamMsg) error {
	byPayload := payloadDecoder(subj)
	switch stream {
	case subj.StreamDLQ():
		return func(m *jetstream.RawStreamMsg) error {
			h := m.Header
			if h.Get(messages.HeaderStage) == "" || h.Get(messages.HeaderReason) == "" || h.Get(messages.HeaderOriginalSubject) == "" {
				return errors.New("dead letter without Kyc-Stage, Kyc-Reason or Kyc-Original-Subject")
			}
			if h.Get(messages.HeaderReason) == messages.ReasonPoison {
				return nil // kept as received: it never decoded
			}
			return byPayload(h.Get(messages.HeaderOriginalSubject), m.Data)
		}
	case subj.StreamAdvisories(), subj.StreamWebhooks(), subj.StreamWebhookLog():
		return nil // JetStream's own advisories; the notifier's internal stream (not in this run)
	}
	return func(m *jetstream.RawStreamMsg) error { return byPayload(m.Subject, m.Data) }
}

// payloadDecoder decodes a pipeline message by the subject it was
// published on, with the new release's decoders.
func payloadDecoder(subj messages.Subjects) func(subject string, data []byte) error {
	p := subj.Prefix() + "."
	return func(subject string, data []byte) error {
		rest, ok := strings.CutPrefix(subject, p)
		if !ok {
			return fmt.Errorf("subject %s outside the prefix", subject)
		}
		var err error
		switch tok, _, _ := strings.Cut(rest, "."); tok {
		case "jobs":
			var r *messages.VerificationRequest
			if r, err = messages.DecodeRequest(data); err == nil {
				err = r.Validate()
			}
		case "callbacks":
			_, err = messages.DecodeCallback(data)
		case "retrieve":
			_, err = messages.DecodeRetrievalTask(data)
		case "events":
			_, err = messages.DecodeEvent(data)
		case "decisions":
			_, err = messages.DecodeDecision(data)
		case "erasures":
			_, err = messages.DecodeErasureTask(data)
		case "audit":
			_, err = messages.DecodeAudit(data)
		case "index":
			if strings.HasPrefix(rest, "index.jobs.") {
				var e pipeline.IndexEntry
				if err = json.Unmarshal(data, &e); err == nil && !messages.ValidJobID(e.JobID) {
					err = errors.New("index entry without a job ID")
				}
			}
		default:
			err = fmt.Errorf("no decoder for subject %s", subject)
		}
		return err
	}
}

// decodeAll reads every message of every stream of the topology and every
// job record, and decodes them with the new release's decoders.
func (h *harness) decodeAll(ctx context.Context) (map[string]*DecodeResult, error) {
	out := map[string]*DecodeResult{}
	s := h.subj
	for _, stream := range []string{s.StreamJobs(), s.StreamCallbacks(), s.StreamRetrieve(), s.StreamEvents(), s.StreamDecisions(),
		s.StreamDLQ(), s.StreamErasures(), s.StreamAudit(), s.StreamIndex()} {
		dec := streamDecoder(s, stream)
		res := &DecodeResult{}
		out[stream] = res
		if dec == nil {
			continue
		}
		err := readStream(ctx, h.js, stream, func(m *jetstream.RawStreamMsg) {
			res.Read++
			if err := dec(m); err != nil {
				res.Failed++
				if len(res.Examples) < 3 {
					res.Examples = append(res.Examples, fmt.Sprintf("%s: %v", m.Subject, err))
				}
			}
		})
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
	}
	kv, err := h.js.KeyValue(ctx, s.BucketJobs())
	if err != nil {
		return nil, err
	}
	store := pipeline.NewJobStore(kv, time.Now)
	res := &DecodeResult{}
	out[s.BucketJobs()] = res
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for key := range keys.Keys() {
		res.Read++
		var err error
		switch kind, id, _ := strings.Cut(key, "."); kind {
		case "job":
			_, _, err = store.Get(ctx, id)
		case "exec", "erased":
			var e jetstream.KeyValueEntry
			if e, err = kv.Get(ctx, key); err == nil && !messages.ValidJobID(string(e.Value())) {
				err = errors.New("execution index entry is not a job ID")
			}
		default:
			// Other keys of the bucket (the new release's leases, …) are not
			// job data; read them to be sure they are readable.
			_, err = kv.Get(ctx, key)
		}
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			res.Failed++
			if len(res.Examples) < 3 {
				res.Examples = append(res.Examples, fmt.Sprintf("%s: %v", key, err))
			}
		}
	}
	return out, nil
}

// readStream calls fn for every message of a stream, oldest first. It
// reads by sequence (direct gets) rather than through a consumer, so that it
// works on work-queue streams too (JetStream allows no second consumer there
// with other replicas) and consumes nothing.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(*jetstream.RawStreamMsg)) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := js.Stream(cctx, stream)
	if err != nil {
		return err
	}
	info, err := st.Info(cctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(cctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s #%d: %w", stream, seq, err)
		}
		fn(m)
	}
	return nil
}

// outcomes are what the streams say about each job.
type outcomes struct {
	decided  map[string]bool
	dead     map[string][]string // job → "stage/reason"
	dlq      map[string]int      // "stage/reason" → count
	examples map[string][]string // "stage/reason" → the first dead letters' job, subject and error
	letters  []deadLetter
}

// deadLetter is one message of the dead-letter stream.
type deadLetter struct {
	seq                       uint64
	job, stage, reason, error string
}

// knownOldDefect says whether a dead letter is one the old release causes
// by itself, whatever the upgrade: its workers stream images to Jumio
// without Content-Length, which Jumio refuses (403, "The Content-Length
// header is required"; jumio-api.md, the simulator follows it). The
// release fixed it; the run replays these dead letters once the roll is
// over, as an operator would.
func (d deadLetter) knownOldDefect() bool {
	return d.stage == messages.StageWorker && d.reason == messages.ReasonTerminal &&
		strings.Contains(d.error, "upload part: 403") && strings.Contains(d.error, "Content-Length header is required")
}

func (h *harness) readOutcomes(ctx context.Context) (*outcomes, error) {
	o := &outcomes{decided: map[string]bool{}, dead: map[string][]string{}, dlq: map[string]int{}, examples: map[string][]string{}}
	if err := readStream(ctx, h.js, h.subj.StreamDecisions(), func(m *jetstream.RawStreamMsg) {
		if d, err := messages.DecodeDecision(m.Data); err == nil {
			o.decided[d.JobID] = true
		}
	}); err != nil {
		return nil, err
	}
	if err := readStream(ctx, h.js, h.subj.StreamDLQ(), func(m *jetstream.RawStreamMsg) {
		hd := m.Header
		o.letters = append(o.letters, deadLetter{seq: m.Sequence, job: hd.Get(messages.HeaderJobID), stage: hd.Get(messages.HeaderStage),
			reason: hd.Get(messages.HeaderReason), error: hd.Get(messages.HeaderError)})
		k := hd.Get(messages.HeaderStage) + "/" + hd.Get(messages.HeaderReason)
		o.dlq[k]++
		if len(o.examples[k]) < 3 {
			o.examples[k] = append(o.examples[k], fmt.Sprintf("job %s on %s: %s", hd.Get(messages.HeaderJobID),
				hd.Get(messages.HeaderOriginalSubject), tail(hd.Get(messages.HeaderError), 200)))
		}
		if j := hd.Get(messages.HeaderJobID); j != "" {
			o.dead[j] = append(o.dead[j], k)
		}
	}); err != nil {
		return nil, err
	}
	return o, nil
}

// RecordStats describes the job records of the accepted jobs at the end.
type RecordStats struct {
	Checked   int
	Disagree  int            // the record's status disagrees with the streams
	ByStatus  map[string]int // statuses of the records
	Examples  []string
	Existing  int            // jobs run on an existing account
	Unflagged map[string]int // of those, records without existingAccount, by phase/ingest release
	Unindexed map[string]int // decided or failed jobs without a current index entry, by phase
}

// checkRecords compares each accepted job's record with the streams, and
// counts what records written by the old release lack: the existing-account
// flag and a current index entry.
func (h *harness) checkRecords(ctx context.Context, acc map[string]*acceptedJob, oc *outcomes) (*RecordStats, error) {
	kv, err := h.js.KeyValue(ctx, h.subj.BucketJobs())
	if err != nil {
		return nil, err
	}
	idx, err := h.js.Stream(ctx, h.subj.StreamIndex())
	if err != nil {
		return nil, err
	}
	store := pipeline.NewJobStore(kv, time.Now)
	rs := &RecordStats{ByStatus: map[string]int{}, Unflagged: map[string]int{}, Unindexed: map[string]int{}}
	ids := make([]string, 0, len(acc))
	for id := range acc {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		j := acc[id]
		rec, _, err := store.Get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("record of %s: %w", id, err)
		}
		rs.Checked++
		rs.ByStatus[rec.Status]++
		want := pipeline.StatusFailed
		if oc.decided[id] {
			want = pipeline.StatusDecided
		}
		if rec.Status != want || (want == pipeline.StatusFailed && len(oc.dead[id]) == 0) {
			rs.Disagree++
			if len(rs.Examples) < 5 {
				rs.Examples = append(rs.Examples, fmt.Sprintf("%s (%s, %s): record %s, streams %s %v", id, j.kind, j.phase, rec.Status, want, oc.dead[id]))
			}
		}
		if j.kind == "existing" {
			rs.Existing++
			if !rec.ExistingAccount {
				rs.Unflagged[j.phase+"/ingest "+j.ingest]++
			}
		}
		decision := ""
		if rec.Decision != nil {
			decision = rec.Decision.Type
		}
		if _, err := idx.GetLastMsgForSubject(ctx, h.subj.IndexJob(rec.Status, rec.Region, decision, id)); err != nil {
			if !errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, err
			}
			rs.Unindexed[j.phase]++
		}
	}
	return rs, nil
}
