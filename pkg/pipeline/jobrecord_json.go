package pipeline

import (
	"encoding/json"

	"github.com/kycpipe/kycpipe/internal/jsonx"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// Job records are read on every step of every job (a KV get, then JSON).
// decodeRecord reads them with a hand-written fast path that handles the
// records JobStore writes and leaves everything else to encoding/json (an
// unknown or differently spelled key, a value of another type, a record
// written by a later version with a new field): the result is always what
// json.Unmarshal gives, which FuzzRecordDecode checks.

// decodeRecord decodes a job record as json.Unmarshal does.
func decodeRecord(b []byte, r *JobRecord) error {
	if decodeRecordFast(b, r) {
		return nil
	}
	*r = JobRecord{}
	return json.Unmarshal(b, r)
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
