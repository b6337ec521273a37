package pipeline

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/kycpipe/kycpipe/internal/jsonx"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Job records are read on every step of every job (a KV get, then JSON).
// decodeRecord reads them with a hand-written fast path that handles the
// records JobStore writes and leaves everything else to encoding/json (an
// unknown or differently spelled key, a value of another type, a record
// written by a later version with a new field): the result is always what
// json.Unmarshal gives, which FuzzRecordDecode checks.
//
// They are written on every checkpoint of every job: encodeRecord writes
// them with a hand-written encoder whose output is byte for byte
// json.Marshal's (the stored JSON is a contract: older releases read it
// during a rolling upgrade), and leaves to encoding/json what it refuses
// (a time RFC 3339 cannot write, a NaN risk score), so that the error
// is json.Marshal's. FuzzRecordEncode checks the bytes;
// TestRecordEncoderCoversEveryField fails when JobRecord, or a type it
// holds, gains a field the encoder does not write.

// decodeRecord decodes a job record as json.Unmarshal does.
func decodeRecord(b []byte, r *JobRecord) error {
	if decodeRecordFast(b, r) {
		return nil
	}
	*r = JobRecord{}
	return json.Unmarshal(b, r)
}

// encodeRecord encodes a job record as json.Marshal(r) does, byte for
// byte, and fails exactly when it fails (with its error).
func encodeRecord(r *JobRecord) ([]byte, error) {
	if r == nil {
		return json.Marshal(r)
	}
	bp := recordBufs.Get().(*[]byte)
	b, ok := appendRecord((*bp)[:0], r)
	var out []byte
	if ok {
		out = bytes.Clone(b)
	}
	if cap(b) <= maxPooledRecordBuf {
		*bp = b[:0]
		recordBufs.Put(bp)
	}
	if !ok {
		return json.Marshal(r)
	}
	return out, nil
}

// recordBufs holds encodeRecord's scratch buffers: a record is written
// into one and copied out at its size, one allocation per record.
var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledRecordBuf bounds the buffers recordBufs keeps (a record with an
// unusually long timeline or message list does not pin its buffer).
const maxPooledRecordBuf = 64 << 10

// appendRecord appends r's JSON as json.Marshal writes it. false: r holds
// a value encoding/json refuses (a time it cannot write as RFC 3339, a
// NaN or infinite risk score); b is then garbage.
func appendRecord(b []byte, r *JobRecord) ([]byte, bool) {
	o := jsonx.Open(b, true)
	o.Str("jobId", r.JobID)
	o.Str("status", r.Status)
	o.Str("region", r.Region)
	o.Str("channel", r.Channel)
	o.StrOmit("customerInternalReference", r.CustomerInternalReference)
	o.StrOmit("userReference", r.UserReference)
	o.StrOmit("requestHash", r.RequestHash)
	o.StrOmit("traceParent", r.TraceParent)
	if !o.Time("createdAt", r.CreatedAt) || !o.Time("updatedAt", r.UpdatedAt) {
		return o.B, false
	}
	o.StrOmit("accountId", r.AccountID)
	o.StrOmit("workflowExecutionId", r.WorkflowExecutionID)
	memberArray(&o, "credentials", r.Credentials, func(b []byte, c *CredentialState) ([]byte, bool) {
		return appendCredentialState(b, c), true
	})
	o.StrOmit("webHref", r.WebHref)
	o.StrOmit("sdkToken", r.SDKToken)
	o.StringsOmit("uploaded", r.Uploaded)
	o.BoolOmit("finalized", r.Finalized)
	o.BoolOmit("announced", r.Announced)
	o.UintOmit("pollSequence", r.PollSequence)
	o.BoolOmit("imagesDeleted", r.ImagesDeleted)
	o.IntOmit("attempts", int64(r.Attempts))
	o.IntOmit("throttled", int64(r.Throttled))
	if e := r.LastError; e != nil {
		o.Key("lastError")
		eo := jsonx.Open(o.B, true)
		eo.Str("code", e.Code)
		eo.Str("message", e.Message)
		eo.IntOmit("status", int64(e.Status))
		o.B = eo.Close()
	}
	o.IntOmit("ambiguousCreates", int64(r.AmbiguousCreates))
	o.IntOmit("held", int64(r.Held))
	o.StringsOmit("replacedExecutions", r.ReplacedExecutions)
	o.IntOmit("polls", int64(r.Polls))
	if !o.TimeOmitZero("pollDeadline", r.PollDeadline) {
		return o.B, false
	}
	o.StrOmit("lastStatus", r.LastStatus)
	if d := r.Decision; d != nil {
		o.Key("decision")
		do := jsonx.Open(o.B, true)
		do.Str("type", d.Type)
		do.StrOmit("label", d.Label)
		if d.RiskScore != nil && !do.Float("riskScore", *d.RiskScore) {
			return do.B, false
		}
		o.B = do.Close()
	}
	if !o.TimeOmitZero("decidedAt", r.DecidedAt) {
		return o.B, false
	}
	if d := r.DecisionDetail; d != nil {
		o.Key("decisionDetail")
		o.B = appendDecisionDetail(o.B, d)
	}
	if !memberArray(&o, "timeline", r.Timeline, func(b []byte, e *TimelineEntry) ([]byte, bool) {
		to := jsonx.Open(b, true)
		if !to.Time("at", e.At) {
			return to.B, false
		}
		to.Str("status", e.Status)
		to.StrOmit("note", e.Note)
		return to.Close(), true
	}) {
		return o.B, false
	}
	o.StringsOmit("images", r.Images)
	o.UintOmit("jobSeq", r.JobSeq)
	if !memberArray(&o, "messages", r.Messages, func(b []byte, m *MessageRef) ([]byte, bool) {
		mo := jsonx.Open(b, true)
		mo.Str("stream", m.Stream)
		mo.Uint("seq", m.Seq)
		mo.Str("kind", m.Kind)
		if !mo.TimeOmitZero("at", m.At) {
			return mo.B, false
		}
		return mo.Close(), true
	}) {
		return o.B, false
	}
	o.BoolOmit("existingAccount", r.ExistingAccount)
	o.BoolOmit("ownAccount", r.OwnAccount)
	if !o.TimeOmitZero("acceptedUnconfirmed", r.AcceptedUnconfirmed) {
		return o.B, false
	}
	if e := r.Erasure; e != nil {
		o.Key("erasure")
		eo := jsonx.Open(o.B, true)
		if !eo.Time("requestedAt", e.RequestedAt) || !eo.TimeOmitZero("completedAt", e.CompletedAt) {
			return eo.B, false
		}
		eo.Str("source", e.Source)
		eo.StrOmit("actor", e.Actor)
		eo.StrOmit("jumio", e.Jumio)
		o.B = eo.Close()
	}
	return o.Close(), true
}

// memberArray writes the member name: [elem(x) for each x of xs], as
// encoding/json writes a non-empty slice under omitempty (nothing when xs
// is empty). false: elem refused an element (see appendRecord).
func memberArray[T any](o *jsonx.Object, name string, xs []T, elem func(b []byte, x *T) ([]byte, bool)) bool {
	if len(xs) == 0 {
		return true
	}
	o.Key(name)
	o.B = append(o.B, '[')
	for i := range xs {
		if i > 0 {
			o.B = append(o.B, ',')
		}
		var ok bool
		if o.B, ok = elem(o.B, &xs[i]); !ok {
			return false
		}
	}
	o.B = append(o.B, ']')
	return true
}

func appendCredentialState(b []byte, c *CredentialState) []byte {
	o := jsonx.Open(b, true)
	o.Str("id", c.ID)
	o.Str("category", c.Category)
	o.StringsOmit("channels", c.Channels)
	o.StrOmit("token", c.Token)
	o.StringMapOmit("parts", c.Parts)
	o.StrOmit("finalizeUrl", c.FinalizeURL)
	return o.Close()
}

func appendDecisionDetail(b []byte, d *DecisionDetail) []byte {
	o := jsonx.Open(b, true)
	if len(d.Capabilities) > 0 {
		o.Key("capabilities")
		var buf [16]string
		co := jsonx.Open(o.B, true)
		for _, name := range jsonx.SortedKeys(buf[:0], d.Capabilities) {
			co.MapKey(name)
			co.B = appendCapabilities(co.B, d.Capabilities[name])
		}
		o.B = co.Close()
	}
	memberArray(&o, "alerts", d.Alerts, func(b []byte, a *messages.Alert) ([]byte, bool) {
		ao := jsonx.Open(b, true)
		ao.Str("capability", a.Capability)
		ao.Str("decision", a.Decision)
		ao.StrOmit("label", a.Label)
		return ao.Close(), true
	})
	o.BoolOmit("extraction", d.Extraction)
	return o.Close()
}

func appendCapabilities(b []byte, list []messages.CapabilitySummary) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		c := &list[i]
		o := jsonx.Open(b, true)
		o.Str("decision", c.Decision)
		o.StrOmit("label", c.Label)
		o.StrOmit("credential", c.Credential)
		if d := c.Data; d != nil {
			o.Key("data")
			o.B = appendCapabilityData(o.B, d)
		}
		b = o.Close()
	}
	return append(b, ']')
}

func appendCapabilityData(b []byte, d *messages.CapabilityData) []byte {
	o := jsonx.Open(b, true)
	boolPtr := func(name string, v *bool) {
		if v != nil {
			o.Bool(name, *v)
		}
	}
	o.StrOmit("similarity", d.Similarity)
	o.StrOmit("livenessType", d.LivenessType)
	o.StrOmit("faceSearchStatus", d.FaceSearchStatus)
	o.StringsOmit("faceSearchFindings", d.FaceSearchFindings)
	o.StrOmit("emailStatus", d.EmailStatus)
	boolPtr("emailExists", d.EmailExists)
	o.StrOmit("domainRiskLevel", d.DomainRiskLevel)
	o.StrOmit("advice", d.Advice)
	o.StrOmit("phoneType", d.PhoneType)
	boolPtr("phoneBlocked", d.PhoneBlocked)
	o.StringsOmit("phoneRisk", d.PhoneRisk)
	o.StrOmit("watchlistStatus", d.WatchlistStatus)
	if d.WatchlistResults != nil {
		o.Int("watchlistResults", int64(*d.WatchlistResults))
	}
	return o.Close()
}

func decodeRecordFast(b []byte, rec *JobRecord) bool {
	r := jsonx.NewReader(b)
	if r.Peek() != '{' {
		return false
	}
	ok := r.Object(func(k []byte) bool {
		switch string(k) {
		case "jobId":
			return r.StringOrNull(&rec.JobID)
		case "status":
			return r.StringOrNull(&rec.Status)
		case "region":
			return r.StringOrNull(&rec.Region)
		case "channel":
			return r.StringOrNull(&rec.Channel)
		case "customerInternalReference":
			return r.StringOrNull(&rec.CustomerInternalReference)
		case "userReference":
			return r.StringOrNull(&rec.UserReference)
		case "requestHash":
			return r.StringOrNull(&rec.RequestHash)
		case "traceParent":
			return r.StringOrNull(&rec.TraceParent)
		case "createdAt":
			return r.Time(&rec.CreatedAt)
		case "updatedAt":
			return r.Time(&rec.UpdatedAt)
		case "accountId":
			return r.StringOrNull(&rec.AccountID)
		case "workflowExecutionId":
			return r.StringOrNull(&rec.WorkflowExecutionID)
		case "credentials":
			if r.Null() {
				return true
			}
			rec.Credentials = []CredentialState{}
			return r.Array(func() bool {
				var c CredentialState
				if !decodeCredentialState(r, &c) {
					return false
				}
				rec.Credentials = append(rec.Credentials, c)
				return true
			})
		case "webHref":
			return r.StringOrNull(&rec.WebHref)
		case "sdkToken":
			return r.StringOrNull(&rec.SDKToken)
		case "uploaded":
			return r.Strings(&rec.Uploaded)
		case "finalized":
			return r.Bool(&rec.Finalized)
		case "announced":
			return r.Bool(&rec.Announced)
		case "pollSequence":
			return r.Uint64(&rec.PollSequence)
		case "imagesDeleted":
			return r.Bool(&rec.ImagesDeleted)
		case "attempts":
			return r.Int(&rec.Attempts)
		case "throttled":
			return r.Int(&rec.Throttled)
		case "lastError":
			if r.Null() {
				return true
			}
			e := new(messages.ErrorInfo)
			rec.LastError = e
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "code":
					return r.StringOrNull(&e.Code)
				case "message":
					return r.StringOrNull(&e.Message)
				case "status":
					return r.Int(&e.Status)
				}
				return false
			})
		case "ambiguousCreates":
			return r.Int(&rec.AmbiguousCreates)
		case "held":
			return r.Int(&rec.Held)
		case "replacedExecutions":
			return r.Strings(&rec.ReplacedExecutions)
		case "polls":
			return r.Int(&rec.Polls)
		case "pollDeadline":
			return r.Time(&rec.PollDeadline)
		case "lastStatus":
			return r.StringOrNull(&rec.LastStatus)
		case "decision":
			if r.Null() {
				return true
			}
			d := new(messages.DecisionSummary)
			rec.Decision = d
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "type":
					return r.StringOrNull(&d.Type)
				case "label":
					return r.StringOrNull(&d.Label)
				case "riskScore":
					if r.Null() {
						return true
					}
					d.RiskScore = new(float64)
					return r.Float64(d.RiskScore)
				}
				return false
			})
		case "decidedAt":
			return r.Time(&rec.DecidedAt)
		case "decisionDetail":
			if r.Null() {
				return true
			}
			rec.DecisionDetail = new(DecisionDetail)
			return decodeDecisionDetail(r, rec.DecisionDetail)
		case "timeline":
			if r.Null() {
				return true
			}
			rec.Timeline = []TimelineEntry{}
			return r.Array(func() bool {
				var t TimelineEntry
				ok := r.Object(func(k []byte) bool {
					switch string(k) {
					case "at":
						return r.Time(&t.At)
					case "status":
						return r.StringOrNull(&t.Status)
					case "note":
						return r.StringOrNull(&t.Note)
					}
					return false
				})
				rec.Timeline = append(rec.Timeline, t)
				return ok
			})
		case "images":
			return r.Strings(&rec.Images)
		case "jobSeq":
			return r.Uint64(&rec.JobSeq)
		case "messages":
			if r.Null() {
				return true
			}
			rec.Messages = []MessageRef{}
			return r.Array(func() bool {
				var m MessageRef
				ok := r.Object(func(k []byte) bool {
					switch string(k) {
					case "stream":
						return r.StringOrNull(&m.Stream)
					case "seq":
						return r.Uint64(&m.Seq)
					case "kind":
						return r.StringOrNull(&m.Kind)
					case "at":
						return r.Time(&m.At)
					}
					return false
				})
				rec.Messages = append(rec.Messages, m)
				return ok
			})
		case "existingAccount":
			return r.Bool(&rec.ExistingAccount)
		case "ownAccount":
			return r.Bool(&rec.OwnAccount)
		case "acceptedUnconfirmed":
			return r.Time(&rec.AcceptedUnconfirmed)
		case "erasure":
			if r.Null() {
				return true
			}
			e := new(Erasure)
			rec.Erasure = e
			return r.Object(func(k []byte) bool {
				switch string(k) {
				case "requestedAt":
					return r.Time(&e.RequestedAt)
				case "completedAt":
					return r.Time(&e.CompletedAt)
				case "source":
					return r.StringOrNull(&e.Source)
				case "actor":
					return r.StringOrNull(&e.Actor)
				case "jumio":
					return r.StringOrNull(&e.Jumio)
				}
				return false
			})
		}
		return false
	})
	return ok && r.End()
}

func decodeCredentialState(r *jsonx.Reader, c *CredentialState) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "id":
			return r.StringOrNull(&c.ID)
		case "category":
			return r.StringOrNull(&c.Category)
		case "channels":
			return r.Strings(&c.Channels)
		case "token":
			return r.StringOrNull(&c.Token)
		case "parts":
			if r.Null() {
				c.Parts = nil
				return true
			}
			c.Parts = map[string]string{}
			return r.Map(func(key string) bool {
				v, ok := r.String()
				c.Parts[key] = v
				return ok
			})
		case "finalizeUrl":
			return r.StringOrNull(&c.FinalizeURL)
		}
		return false
	})
}

func decodeDecisionDetail(r *jsonx.Reader, d *DecisionDetail) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "capabilities":
			if r.Null() {
				return true
			}
			d.Capabilities = map[string][]messages.CapabilitySummary{}
			return r.Map(func(name string) bool {
				if r.Null() {
					d.Capabilities[name] = nil
					return true
				}
				list := []messages.CapabilitySummary{}
				ok := r.Array(func() bool {
					var c messages.CapabilitySummary
					ok := decodeCapability(r, &c)
					list = append(list, c)
					return ok
				})
				d.Capabilities[name] = list
				return ok
			})
		case "alerts":
			if r.Null() {
				return true
			}
			d.Alerts = []messages.Alert{}
			return r.Array(func() bool {
				var a messages.Alert
				ok := r.Object(func(k []byte) bool {
					switch string(k) {
					case "capability":
						return r.StringOrNull(&a.Capability)
					case "decision":
						return r.StringOrNull(&a.Decision)
					case "label":
						return r.StringOrNull(&a.Label)
					}
					return false
				})
				d.Alerts = append(d.Alerts, a)
				return ok
			})
		case "extraction":
			return r.Bool(&d.Extraction)
		}
		return false
	})
}

func decodeCapability(r *jsonx.Reader, c *messages.CapabilitySummary) bool {
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "decision":
			return r.StringOrNull(&c.Decision)
		case "label":
			return r.StringOrNull(&c.Label)
		case "credential":
			return r.StringOrNull(&c.Credential)
		case "data":
			if r.Null() {
				return true
			}
			c.Data = new(messages.CapabilityData)
			return decodeCapabilityData(r, c.Data)
		}
		return false
	})
}

func decodeCapabilityData(r *jsonx.Reader, d *messages.CapabilityData) bool {
	boolPtr := func(dst **bool) bool {
		if r.Null() {
			return true
		}
		*dst = new(bool)
		return r.Bool(*dst)
	}
	return r.Object(func(k []byte) bool {
		switch string(k) {
		case "similarity":
			return r.StringOrNull(&d.Similarity)
		case "livenessType":
			return r.StringOrNull(&d.LivenessType)
		case "faceSearchStatus":
			return r.StringOrNull(&d.FaceSearchStatus)
		case "faceSearchFindings":
			return r.Strings(&d.FaceSearchFindings)
		case "emailStatus":
			return r.StringOrNull(&d.EmailStatus)
		case "emailExists":
			return boolPtr(&d.EmailExists)
		case "domainRiskLevel":
			return r.StringOrNull(&d.DomainRiskLevel)
		case "advice":
			return r.StringOrNull(&d.Advice)
		case "phoneType":
			return r.StringOrNull(&d.PhoneType)
		case "phoneBlocked":
			return boolPtr(&d.PhoneBlocked)
		case "phoneRisk":
			return r.Strings(&d.PhoneRisk)
		case "watchlistStatus":
			return r.StringOrNull(&d.WatchlistStatus)
		case "watchlistResults":
			if r.Null() {
				return true
			}
			d.WatchlistResults = new(int)
			return r.Int(d.WatchlistResults)
		}
		return false
	})
}
