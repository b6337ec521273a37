package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// fullRecord is a record with every field set, as reflection finds them:
// a field added to JobRecord is set here too.
//
// fullRecord fails when fill left a field zero (a field of a kind fill
// does not set): the tests built on it would not see that field.
func fullRecord(t testing.TB) *JobRecord {
	t.Helper()
	var rec JobRecord
	fill(reflect.ValueOf(&rec).Elem(), 0)
	checkAllSet(t, reflect.ValueOf(rec), "JobRecord")
	return &rec
}

// checkAllSet fails for every exported field under v that is zero.
func checkAllSet(t testing.TB, v reflect.Value, path string) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		checkAllSet(t, v.Elem(), path)
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			checkAllSet(t, v.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			checkAllSet(t, it.Value(), path+"[key]")
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			break
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			where := path + "." + f.Name
			if v.Field(i).IsZero() {
				t.Fatalf("fill left %s (%s) zero: teach fill its kind", where, f.Type)
			}
			checkAllSet(t, v.Field(i), where)
		}
	}
}

func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x<" + v.Type().Name() + ">\u00e9")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint64:
		v.SetUint(1 << 40)
	case reflect.Float64:
		v.SetFloat(12.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), depth+1)
		fill(s.Index(1), depth+1)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, depth+1)
		fill(e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth+1)
			}
		}
	}
}

// The fast path reads every field JobRecord has: a record written with
// all of them set takes it and decodes to the same value. A field added to
// JobRecord (or one of its types) without a case in decodeRecordFast fails
// here: records would still decode (through encoding/json), only slowly.
func TestRecordFastPathCoversEveryField(t *testing.T) {
	t.Parallel()
	want := fullRecord(t)
	b, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got JobRecord
	if !decodeRecordFast(b, &got) {
		t.Fatalf("the fast path gives up on a full record (a JobRecord field without a case in decodeRecordFast?):\n%s", b)
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("fast path decoded\n%#v\nwant\n%#v", got, want)
	}
}

// A tombstone written before the erasure's removed counts left JobRecord
// (they are the audit record's only) still has them: decodeRecord reads it
// as json.Unmarshal does, which ignores the key (the fast path leaves it to
// encoding/json).
func TestRecordDecodesATombstoneWithRemovedCounts(t *testing.T) {
	t.Parallel()
	b := []byte(`{"jobId":"j-1","status":"ERASED","createdAt":"2026-12-06T10:00:00Z","updatedAt":"2026-12-06T10:05:00Z",` +
		`"workflowExecutionId":"e-1","erasure":{"requestedAt":"2026-12-06T10:04:00Z","completedAt":"2026-12-06T10:05:00Z",` +
		`"source":"REQUEST","actor":"ops","jumio":"DELETED","removed":{"messages":3,"images":2,"kvRevisions":1}}}`)
	var want JobRecord
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if want.Erasure == nil || want.Erasure.Jumio != "DELETED" || want.WorkflowExecutionID != "e-1" {
		t.Fatalf("json.Unmarshal: %#v", want)
	}
	var got JobRecord
	if err := decodeRecord(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeRecord\n%#v\nwant\n%#v", got, want)
	}
}

// FuzzRecordDecode checks the record's fast path against json.Unmarshal:
// whatever it accepts, json.Unmarshal decodes to the same value.
func FuzzRecordDecode(f *testing.F) {
	full, _ := json.Marshal(fullRecord(f))
	f.Add(full)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rec := newJobRecord(&messages.VerificationRequest{JobID: "j-1", Region: "amer-1", CustomerInternalReference: "c"}, "h", now)
	rec.note(now, StatusAccepted, "submitted over HTTP")
	b, _ := json.Marshal(rec)
	f.Add(b)
	for _, s := range []string{
		`{}`, `null`, `{"jobId":"a","jobId":"b"}`, `{"JOBID":"a"}`, `{"future":1}`, `{"attempts":1.5}`, `{"pollSequence":-1}`,
		`{"decision":{"type":"PASSED","riskScore":1e400}}`, `{"decision":{"riskScore":null}}`, `{"createdAt":null,"timeline":[null]}`,
		`{"credentials":[{"parts":{"front":null}}]}`, `{"credentials":[],"uploaded":[],"messages":[{"seq":1}]}`, `{"lastError":{"status":400}} x`,
		`{"status":"ERASED","erasure":{"jumio":"DELETED","removed":{"messages":1,"images":0,"kvRevisions":1}}}`,
		`{"decisionDetail":{"capabilities":{"a":null,"b":[],"c":[{"data":{"emailExists":null,"watchlistResults":1.5}}]},"alerts":[]}}`,
		`{"decisionDetail":{"capabilities":{"a":[]},"capabilities":{}}}`, `{"decisionDetail":null,"decisionDetail":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var slow, fast JobRecord
		slowErr := json.Unmarshal(b, &slow)
		if !decodeRecordFast(b, &fast) {
			return
		}
		if slowErr != nil {
			t.Fatalf("fast path accepted what json.Unmarshal refuses (%v): %q", slowErr, b)
		}
		if !reflect.DeepEqual(slow, fast) {
			t.Fatalf("fast path decoded %q as\n%#v\njson.Unmarshal as\n%#v", b, fast, slow)
		}
	})
}

// The encoder writes every field JobRecord has, and every field of the
// types it holds: a record with all of them set (fullRecord, by
// reflection) takes the hand-written path and comes out as json.Marshal
// writes it. A field added to JobRecord, or to a type it holds, without a
// line in appendRecord fails here: the encoder would drop it from every
// stored record.
func TestRecordEncoderCoversEveryField(t *testing.T) {
	t.Parallel()
	full := fullRecord(t)
	want, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendRecord(nil, full)
	if !ok {
		t.Fatalf("the encoder gives up on a full record:\n%s", want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the encoder and json.Marshal differ on a full record (a field without a line in appendRecord?): %s", firstDiff(got, want))
	}
	// And with every field zero.
	zero := &JobRecord{}
	want, _ = json.Marshal(zero)
	if got, ok = appendRecord(nil, zero); !ok || !bytes.Equal(got, want) {
		t.Fatalf("the encoder wrote a zero record as %s (ok %v), json.Marshal as %s", got, ok, want)
	}
}

// firstDiff describes where got first differs from want, with some
// context.
func firstDiff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-60, 0)
	return fmt.Sprintf("at byte %d, after %q: encoder %q, json.Marshal %q", i, got[from:i], got[i:min(i+60, len(got))], want[i:min(i+60, len(want))])
}

// sampleRecords are records as the stages write them, from submission to
// erasure, and records with the strings and times that escape or format
// differently.
func sampleRecords() []struct {
	name string
	rec  *JobRecord
} {
	at := time.Date(2026, 12, 6, 10, 0, 0, 851448172, time.UTC)
	later := func(d time.Duration) time.Time { return at.Add(d) }
	f := func(v float64) *float64 { return &v }
	yes, no, n := true, false, 3

	accepted := newJobRecord(&messages.VerificationRequest{JobID: "job_06h4sxjdhf1vc1252nxe4e8m7w", Region: "amer-1",
		CustomerInternalReference: "order-1234", UserReference: "user-42"}, "9d16db2f99c6ba91743d02e7", at)
	accepted.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	accepted.note(at, StatusAccepted, "submitted over HTTP")
	accepted.Messages = []MessageRef{{Stream: "KYC_EVENTS", Seq: 1, Kind: EventMessageKind(messages.KindAccepted), At: at}}

	const base = "http://127.0.0.1:44201/link/api/v1/accounts/31732c11-8154-4b8c-a236-b2bc75adf913/workflow-executions/6355ea62-2ea8-43b3-b448-38b3530fc819"
	midSaga := cloneRecord(accepted)
	midSaga.Status = StatusLaunched
	midSaga.AccountID, midSaga.WorkflowExecutionID = "31732c11-8154-4b8c-a236-b2bc75adf913", "6355ea62-2ea8-43b3-b448-38b3530fc819"
	midSaga.Credentials = []CredentialState{
		{ID: "6a507dcd-7c96-4d62-ab01-efbceab1e822", Category: "ID", Channels: []string{"API"},
			Token:       "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJhY2MiOiIzMTczMmMxMSIsImV4cCI6MTc5NjU4OTMzOX0.2Synnhsdbl-zqAmKLO-mxgPHvTQ1W7EUMBirFDACj2MK0",
			Parts:       map[string]string{"front": base + "/credentials/6a507dcd/parts/FRONT", "back": base + "/credentials/6a507dcd/parts/BACK"},
			FinalizeURL: base},
		{ID: "0c6d3b8e-2a51-4f0e-9d1c-3e3d1b7c9a10", Category: "SELFIE", Channels: []string{"API", "SDK"},
			Token: "eyJhbGciOiJIUzUxMiJ9.eyJ3ZmUiOiI2MzU1In0.sig", Parts: map[string]string{"face": base + "/credentials/0c6d3b8e/parts/FACE"},
			FinalizeURL: base},
		{ID: "d1", Category: "DATA", Parts: map[string]string{}},
	}
	midSaga.Uploaded = []string{"FRONT", "BACK"}
	midSaga.Announced, midSaga.PollSequence, midSaga.Attempts, midSaga.Throttled = true, 1, 2, 1
	midSaga.SetStatus(later(46*time.Millisecond), StatusAccountCreated, "")
	midSaga.SetStatus(later(67*time.Millisecond), StatusLaunched, "")
	midSaga.addMessages(MessageRef{Stream: "KYC_EVENTS", Seq: 6, Kind: EventMessageKind(messages.KindLaunched), At: later(67 * time.Millisecond)})
	midSaga.UpdatedAt = later(70 * time.Millisecond)
	midSaga.AcceptedUnconfirmed = later(time.Millisecond)

	decided := cloneRecord(midSaga)
	decided.AcceptedUnconfirmed = time.Time{}
	decided.Uploaded = append(decided.Uploaded, "FACE")
	decided.Finalized, decided.Polls, decided.PollDeadline, decided.LastStatus = true, 2, later(time.Hour), "PROCESSED"
	decided.SetStatus(later(80*time.Millisecond), StatusFinalized, "")
	decided.Decision = &messages.DecisionSummary{Type: messages.DecisionWarning, Label: "WARNING", RiskScore: f(57.25)}
	decided.DecidedAt = later(1100 * time.Millisecond)
	decided.DecisionDetail = &DecisionDetail{Capabilities: map[string][]messages.CapabilitySummary{
		"usability":   {{Decision: messages.DecisionPassed, Label: "OK", Credential: "ID"}, {Decision: messages.DecisionPassed, Label: "OK", Credential: "SELFIE"}},
		"extraction":  {{Decision: messages.DecisionPassed, Label: "OK"}},
		"dataChecks":  {{Decision: messages.DecisionPassed, Label: "OK"}},
		"imageChecks": {{Decision: messages.DecisionPassed, Label: "OK", Data: &messages.CapabilityData{FaceSearchStatus: "DONE", FaceSearchFindings: []string{"e-1", "e-2"}}}},
		"liveness":    {{Decision: messages.DecisionPassed, Label: "OK", Data: &messages.CapabilityData{LivenessType: "JUMIO_STANDARD"}}},
		"similarity":  {{Decision: messages.DecisionPassed, Label: "MATCH", Data: &messages.CapabilityData{Similarity: "MATCH"}}},
		"watchlistScreening": {{Decision: messages.DecisionWarning, Label: "ALERT",
			Data: &messages.CapabilityData{WatchlistStatus: "SUCCESS", WatchlistResults: &n}}},
		"emailVerification": {{Decision: messages.DecisionPassed, Label: "OK",
			Data: &messages.CapabilityData{EmailStatus: "VALID", EmailExists: &yes, DomainRiskLevel: "LOW", Advice: "ACCEPT"}}},
		"phoneVerification": {{Decision: messages.DecisionPassed, Label: "OK",
			Data: &messages.CapabilityData{PhoneType: "MOBILE", PhoneBlocked: &no, PhoneRisk: []string{"LOW"}}}},
	},
		Alerts:     []messages.Alert{{Capability: "watchlistScreening", Decision: messages.DecisionWarning, Label: "ALERT"}},
		Extraction: true}
	decided.SetStatus(decided.DecidedAt, StatusDecided, "WARNING")
	decided.addMessages(MessageRef{Stream: "KYC_EVENTS", Seq: 9, Kind: EventMessageKind(messages.KindFinalized), At: later(80 * time.Millisecond)},
		MessageRef{Stream: "KYC_DECISIONS", Seq: 1, Kind: "decision", At: decided.DecidedAt})
	decided.UpdatedAt = later(1101 * time.Millisecond)

	failed := cloneRecord(midSaga)
	failed.LastError = &messages.ErrorInfo{Code: messages.ErrCodeJumioRejected, Message: "jumio: create account: 400 Bad Request", Status: 400}
	failed.SetStatus(later(time.Second), StatusFailed, "jumio_rejected")
	failed.Held, failed.AmbiguousCreates = 2, 1
	failed.ReplacedExecutions = []string{"e-old-1", "e-old-2"}
	failed.addMessages(MessageRef{Stream: "KYC_DLQ", Seq: 3, Kind: MessageKindDeadLetter})
	failed.ImagesDeleted, failed.JobSeq, failed.Images = true, 12, []string{"img/job_06h4/front", "img/job_06h4/back"}
	failed.WebHref, failed.SDKToken = "https://amer-1.web.jumio.com/?authorizationToken=abc&locale=en", "sdk.token.value"
	failed.ExistingAccount, failed.OwnAccount = true, false

	erased := &JobRecord{JobID: accepted.JobID, Status: StatusErased, CreatedAt: at, UpdatedAt: later(5 * time.Second),
		WorkflowExecutionID: "6355ea62-2ea8-43b3-b448-38b3530fc819", AmbiguousCreates: 1,
		Erasure: &Erasure{RequestedAt: later(4 * time.Second), CompletedAt: later(5 * time.Second), Source: "REQUEST", Actor: "key-0bb37fbd", Jumio: "DELETED"}}
	erasing := cloneRecord(decided)
	erasing.Status = StatusErasing
	erasing.Erasure = &Erasure{RequestedAt: later(4 * time.Second), Source: "RETENTION"}

	paris := time.FixedZone("CET", 3600)
	kathmandu := time.FixedZone("", 5*3600+45*60)
	lmt := time.FixedZone("LMT", -(17*60 + 30)) // an offset with seconds, which RFC 3339 cannot write
	hostile := &JobRecord{JobID: "j<script>&amp;</script>", Status: "\\u2028 \u2028\u2029 \"quoted\"", Region: "\xff\xfe\xff",
		Channel: "\u00e9\u4e2d\U0001F600\t\n\r\x00\x1f\x7f", CustomerInternalReference: "a&b<c>d", UserReference: "bad \xed\xa0\x80 surrogate",
		CreatedAt: time.Date(2026, 3, 29, 2, 30, 0, 1, paris), UpdatedAt: time.Date(0, 1, 1, 0, 0, 0, 999999999, kathmandu),
		PollDeadline: time.Date(9999, 12, 31, 23, 59, 59, 100, lmt), DecidedAt: time.Date(1, 1, 1, 0, 0, 0, 0, paris), // the zero instant elsewhere: not IsZero
		Credentials: []CredentialState{{ID: "<", Parts: map[string]string{"\xff": "<>", "a\u2028": "&", "A": "", "": "\x00"}}},
		Uploaded:    []string{"", "<", "\xff"}, Timeline: []TimelineEntry{{At: time.Date(2026, 12, 6, 10, 0, 0, 10, time.Local), Status: "&"}},
		Decision:       &messages.DecisionSummary{Type: "<PASSED>", RiskScore: f(math.Copysign(0, -1))},
		DecisionDetail: &DecisionDetail{Capabilities: map[string][]messages.CapabilitySummary{"b": nil, "a": {}, "<": {{Decision: "&"}}, "\xff": {{Data: &messages.CapabilityData{}}}}},
		Messages:       []MessageRef{{}}, Attempts: -1, PollSequence: math.MaxUint64, JobSeq: 1}
	return []struct {
		name string
		rec  *JobRecord
	}{
		{"accepted", accepted}, {"mid-saga", midSaga}, {"decided", decided}, {"failed", failed},
		{"erasing", erasing}, {"erased", erased}, {"hostile strings and times", hostile},
	}
}

// encodeRecord writes what json.Marshal writes, and fails when it fails,
// for records as the stages write them and for values no JSON decodes to
// (a time json.Marshal refuses, a NaN, nil and empty slices and maps).
func TestRecordEncodeMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	cases := sampleRecords()
	add := func(name string, rec *JobRecord) {
		cases = append(cases, struct {
			name string
			rec  *JobRecord
		}{name, rec})
	}
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	add("nil", nil)
	add("zero", &JobRecord{})
	add("year 10000", &JobRecord{CreatedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("year -1", &JobRecord{CreatedAt: at, UpdatedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("year 10000 in a timeline", &JobRecord{Timeline: []TimelineEntry{{At: at}, {At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}})
	add("year 10000 in a message", &JobRecord{Messages: []MessageRef{{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}})
	add("year 10000 in the erasure", &JobRecord{Erasure: &Erasure{CompletedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	add("year 10000 in pollDeadline", &JobRecord{PollDeadline: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("year 10000 in decidedAt", &JobRecord{DecidedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("year 10000 in acceptedUnconfirmed", &JobRecord{AcceptedUnconfirmed: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	add("9999 in UTC, 10000 in its zone", &JobRecord{CreatedAt: time.Date(9999, 12, 31, 23, 0, 0, 0, time.UTC).In(time.FixedZone("", 2*3600))})
	add("10000 in UTC, 9999 in its zone", &JobRecord{CreatedAt: time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -2*3600))})
	add("a zone offset of 24 hours", &JobRecord{CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))})
	add("a zone offset of -23:59", &JobRecord{CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -(23*3600+59*60)))})
	add("a monotonic reading", &JobRecord{CreatedAt: time.Now(), UpdatedAt: time.Now().Add(time.Hour)})
	add("a zero erasure request time", &JobRecord{Erasure: &Erasure{}})
	add("NaN risk score", &JobRecord{Decision: &messages.DecisionSummary{RiskScore: f(math.NaN())}})
	add("infinite risk score", &JobRecord{Decision: &messages.DecisionSummary{RiskScore: f(math.Inf(-1))}})
	add("risk scores that format as exponents", &JobRecord{Decision: &messages.DecisionSummary{RiskScore: f(1e21)},
		DecisionDetail: &DecisionDetail{}})
	add("a tiny risk score", &JobRecord{Decision: &messages.DecisionSummary{RiskScore: f(-1.5e-7)}})
	add("a zero risk score", &JobRecord{Decision: &messages.DecisionSummary{RiskScore: f(0)}})
	add("empty slices and maps", &JobRecord{Credentials: []CredentialState{}, Uploaded: []string{}, ReplacedExecutions: []string{},
		Timeline: []TimelineEntry{}, Images: []string{}, Messages: []MessageRef{},
		DecisionDetail: &DecisionDetail{Capabilities: map[string][]messages.CapabilitySummary{}, Alerts: []messages.Alert{}}})
	add("empty nested slices and maps", &JobRecord{Credentials: []CredentialState{{Channels: []string{}, Parts: map[string]string{}}, {}},
		DecisionDetail: &DecisionDetail{Capabilities: map[string][]messages.CapabilitySummary{"nil": nil, "empty": {},
			"data": {{Data: &messages.CapabilityData{FaceSearchFindings: []string{}, PhoneRisk: []string{}}}}}}})
	add("nil and empty strings in lists", &JobRecord{Uploaded: []string{""}, Credentials: []CredentialState{{Channels: []string{""}, Parts: map[string]string{"": ""}}}})
	add("many capabilities", func() *JobRecord {
		caps := map[string][]messages.CapabilitySummary{}
		for i := range 40 {
			caps[fmt.Sprintf("cap-%02d", (i*7)%40)] = []messages.CapabilitySummary{{Decision: messages.DecisionPassed}}
		}
		return &JobRecord{DecisionDetail: &DecisionDetail{Capabilities: caps}}
	}())
	add("many parts", func() *JobRecord {
		parts := map[string]string{}
		for i := range 30 {
			parts[fmt.Sprintf("p%d", i)] = fmt.Sprint(i)
		}
		return &JobRecord{Credentials: []CredentialState{{Parts: parts}}}
	}())
	add("a long timeline", func() *JobRecord {
		r := &JobRecord{}
		for i := range 200 {
			r.Timeline = append(r.Timeline, TimelineEntry{At: at.Add(time.Duration(i) * time.Nanosecond), Status: "S", Note: "n"})
			r.Messages = append(r.Messages, MessageRef{Stream: "KYC_EVENTS", Seq: uint64(i), Kind: "event:x"})
		}
		return r
	}())
	add("a record too long to keep its buffer", &JobRecord{JobID: string(bytes.Repeat([]byte("<"), maxPooledRecordBuf))})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, wantErr := json.Marshal(tc.rec)
			got, err := encodeRecord(tc.rec)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("encodeRecord error %v, json.Marshal's %v", err, wantErr)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeRecord and json.Marshal differ: %s", firstDiff(got, want))
			}
			// The hand-written path gives up exactly when json.Marshal fails.
			if tc.rec != nil {
				if _, ok := appendRecord(nil, tc.rec); ok != (wantErr == nil) {
					t.Fatalf("appendRecord ok %v, json.Marshal's error %v", ok, wantErr)
				}
			}
		})
	}
}

// The records every release stored (the golden corpus) encode as
// json.Marshal encodes them once read.
func TestRecordEncodeGoldenRecords(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*", "job_record-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no job records in %s", goldenDir)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var rec JobRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		want, _ := json.Marshal(&rec)
		if got, err := encodeRecord(&rec); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: encodeRecord wrote (%v)\n%s\njson.Marshal\n%s", file, err, got, want)
		}
	}
}

// FuzzRecordEncode checks encodeRecord against json.Marshal on every
// record JSON decodes to: the same bytes, and an error exactly when
// json.Marshal fails.
func FuzzRecordEncode(f *testing.F) {
	full, _ := json.Marshal(fullRecord(f))
	f.Add(full)
	for _, tc := range sampleRecords() {
		b, err := json.Marshal(tc.rec)
		if err != nil {
			f.Fatalf("%s: %v", tc.name, err)
		}
		f.Add(b)
	}
	if files, _ := filepath.Glob(filepath.Join(goldenDir, "current", "job_record-*.json")); len(files) > 0 {
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	for _, s := range []string{
		`{}`, `null`, `{"jobId":"<\u2028>&\ud800","region":"\u00e9\u4e2d\ud83d\ude00"}`,
		"{\"status\":\"raw invalid UTF-8: \xff\xfe, a raw U+2028: \u2028, raw unicode: \u00e9\u4e2d\U0001F600\"}",
		`{"createdAt":"9999-12-31T23:59:59.999999999-23:59","updatedAt":"0000-01-01T00:00:00+23:59"}`,
		`{"pollDeadline":"2026-12-06T10:00:00.1+05:45","decidedAt":"0001-01-01T00:00:00Z","acceptedUnconfirmed":"0001-01-01T01:00:00+01:00"}`,
		`{"decision":{"type":"PASSED","riskScore":1e21},"decisionDetail":{"capabilities":{"b":null,"a":[],"<":[{"data":{}}]},"alerts":[]}}`,
		`{"decision":{"riskScore":-0},"attempts":-5,"pollSequence":18446744073709551615}`, `{"decision":{"riskScore":1e-7}}`,
		`{"credentials":[{"parts":{"z":"1","a":"2","\u00e9":"3","A":"4","":""}},{"parts":{}},{"channels":[]}],"uploaded":[]}`,
		`{"timeline":[{}],"messages":[{"at":"0001-01-01T00:00:00Z"}],"erasure":{}}`,
		`{"lastError":{"code":"x","message":"<b>","status":0}}`,
	} {
		if err := json.Unmarshal([]byte(s), new(JobRecord)); err != nil {
			f.Fatalf("seed %s does not decode: %v", s, err)
		}
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var rec JobRecord
		if json.Unmarshal(b, &rec) != nil {
			return
		}
		want, wantErr := json.Marshal(&rec)
		got, err := encodeRecord(&rec)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("record %q: encodeRecord wrote %s (%v), json.Marshal %s (%v)", b, got, err, want, wantErr)
		}
		if _, ok := appendRecord(nil, &rec); ok != (wantErr == nil) {
			t.Fatalf("record %q: appendRecord ok %v, json.Marshal's error %v", b, ok, wantErr)
		}
	})
}

// BenchmarkRecordEncode compares json.Marshal and encodeRecord on a
// decided record (credentials, a timeline, messages, the decision's
// capabilities): the record the later checkpoints of every job write.
func BenchmarkRecordEncode(b *testing.B) {
	var rec *JobRecord
	for _, tc := range sampleRecords() {
		if tc.name == "decided" {
			rec = tc.rec
		}
	}
	want, _ := json.Marshal(rec)
	if got, err := encodeRecord(rec); err != nil || !bytes.Equal(got, want) {
		b.Fatalf("encodeRecord wrote %s (%v), json.Marshal %s", got, err, want)
	}
	for _, bc := range []struct {
		name string
		enc  func(*JobRecord) ([]byte, error)
	}{
		{"json.Marshal", func(r *JobRecord) ([]byte, error) { return json.Marshal(r) }},
		{"encodeRecord", encodeRecord},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(want)))
			for b.Loop() {
				if _, err := bc.enc(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
