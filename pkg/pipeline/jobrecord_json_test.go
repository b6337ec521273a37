package pipeline

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// fullRecord is a record with every field set, as reflection finds them:
// a field added to JobRecord is set here too.
func fullRecord(t testing.TB) *JobRecord {
	t.Helper()
	var rec JobRecord
	fill(reflect.ValueOf(&rec).Elem(), 0)
	return &rec
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
