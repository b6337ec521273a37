package webhooks_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/kycpipe/kycpipe/pkg/webhooks"
)

func TestEventTypes(t *testing.T) {
	t.Parallel()
	want := []webhooks.EventType{"verification.accepted", "verification.launched", "verification.finalized",
		"verification.failed", "verification.decided", "verification.erased"}
	got := webhooks.EventTypes()
	if len(got) != len(want) {
		t.Fatalf("EventTypes = %v", got)
	}
	for i := range want {
		if got[i] != want[i] || !got[i].Valid() {
			t.Fatalf("EventTypes = %v, want %v", got, want)
		}
	}
	got[0] = "mutated"
	if webhooks.EventTypes()[0] != webhooks.EventAccepted {
		t.Fatal("EventTypes returns shared state")
	}
	for _, bad := range []webhooks.EventType{"", "*", "verification.*", "verification.", "decided", "Verification.decided"} {
		if bad.Valid() {
			t.Errorf("%q is valid", bad)
		}
	}
}

func TestLifecycleEventType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind string
		want webhooks.EventType // "": not a lifecycle kind
	}{
		{"accepted", webhooks.EventAccepted},
		{"launched", webhooks.EventLaunched},
		{"finalized", webhooks.EventFinalized},
		{"failed", webhooks.EventFailed},
		{"erased", webhooks.EventErased},
		{"decided", ""}, // decisions come from kyc.decisions.*, not from a lifecycle kind
		{"", ""},
		{"unknown", ""},
		{"*", ""},
	}
	for _, tt := range tests {
		got, ok := webhooks.LifecycleEventType(tt.kind)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("LifecycleEventType(%q) = %q, %v; want %q", tt.kind, got, ok, tt.want)
		}
	}
}

func TestMatchEventType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		typ     webhooks.EventType
		want    bool
	}{
		{"*", webhooks.EventDecided, true},
		{"*", webhooks.EventErased, true},
		{"verification.*", webhooks.EventAccepted, true},
		{"verification.*", webhooks.EventDecided, true},
		{"verification.decided", webhooks.EventDecided, true},
		{"verification.decided", webhooks.EventFailed, false},
		{"verification.decide", webhooks.EventDecided, false},
		{"verification.", webhooks.EventDecided, false},
		{"verif*", webhooks.EventDecided, false},
		{"*.decided", webhooks.EventDecided, false},
		{"", webhooks.EventDecided, false},
		{"VERIFICATION.DECIDED", webhooks.EventDecided, false},
	}
	for _, tt := range tests {
		if got := webhooks.MatchEventType(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("MatchEventType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
	if !webhooks.Subscribed([]string{"verification.failed", "verification.decided"}, webhooks.EventDecided) ||
		webhooks.Subscribed([]string{"verification.failed"}, webhooks.EventDecided) ||
		webhooks.Subscribed(nil, webhooks.EventDecided) {
		t.Error("Subscribed is wrong")
	}
}

func TestValidateEventTypes(t *testing.T) {
	t.Parallel()
	many := make([]string, 33)
	for i := range many {
		many[i] = "*"
	}
	tests := []struct {
		name   string
		in     []string
		fields []string // nil: valid
	}{
		{"one exact", []string{"verification.decided"}, nil},
		{"all kinds", []string{"*", "verification.*", "verification.accepted", "verification.launched",
			"verification.finalized", "verification.failed", "verification.decided", "verification.erased"}, nil},
		{"duplicates", []string{"*", "*"}, nil},
		{"empty", nil, []string{"eventTypes"}},
		{"too many", many, []string{"eventTypes"}},
		{"unknown entries", []string{"verification.decided", "verification.approved", "", "verif*"},
			[]string{"eventTypes[1]", "eventTypes[2]", "eventTypes[3]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhooks.ValidateEventTypes(tt.in)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("ValidateEventTypes: %v", err)
				}
				return
			}
			var ve *webhooks.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, webhooks.ErrValidation) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if len(got) != len(tt.fields) {
				t.Fatalf("fields = %v, want %v", got, tt.fields)
			}
			for i := range got {
				if got[i] != tt.fields[i] {
					t.Fatalf("fields = %v, want %v", got, tt.fields)
				}
			}
		})
	}
}

func TestEncodePayload(t *testing.T) {
	t.Parallel()
	// Data keeps its exact bytes, inner whitespace and key order included.
	data := []byte(`{"schema":"kycpipe.decision.v1", "jobId":"job_1",` + "\n\t" + `"decision":{"type":"PASSED"},"a":1.50}`)
	at := time.Date(2026, 12, 6, 11, 0, 0, 123456789, time.FixedZone("CET", 3600))
	body, err := webhooks.EncodePayload(webhooks.EventDecided, at, append([]byte("\n "), data...))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"verification.decided","timestamp":"2026-12-06T10:00:00.123456789Z","data":` + string(data) + `}`
	if string(body) != want {
		t.Fatalf("body = %s\nwant   %s", body, want)
	}
	var p webhooks.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != webhooks.EventDecided || !p.Timestamp.Equal(at) || !bytes.Equal(p.Data, data) {
		t.Fatalf("decoded %+v", p)
	}
	again, _ := webhooks.EncodePayload(webhooks.EventDecided, at, data)
	if !bytes.Equal(again, body) {
		t.Fatal("EncodePayload is not deterministic")
	}

	for name, tc := range map[string]struct {
		typ  webhooks.EventType
		data string
	}{
		"unknown type": {"verification.approved", `{}`},
		"pattern type": {"*", `{}`},
		"empty data":   {webhooks.EventDecided, ``},
		"blank data":   {webhooks.EventDecided, "  \n"},
		"invalid data": {webhooks.EventDecided, `{"jobId":`},
		"two values":   {webhooks.EventDecided, `{} {}`},
	} {
		if _, err := webhooks.EncodePayload(tc.typ, at, []byte(tc.data)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

var crockfordTest = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

func TestMessageID(t *testing.T) {
	t.Parallel()
	format := regexp.MustCompile(`^msg_[0-9a-hjkmnp-tv-z]{26}$`)
	id := webhooks.MessageID("exec-123", "ep_1")
	if !format.MatchString(id) {
		t.Fatalf("MessageID = %q, want msg_ + 26 Crockford base32 characters", id)
	}
	// The documented derivation, computed independently.
	h := sha256.New()
	h.Write([]byte("kycpipe/webhook-id/v1"))
	for _, s := range []string{"exec-123", "ep_1"} {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	if want := "msg_" + crockfordTest.EncodeToString(h.Sum(nil)[:16]); id != want {
		t.Fatalf("MessageID = %q, want %q (the documented derivation)", id, want)
	}
	if webhooks.MessageID("exec-123", "ep_1") != id {
		t.Fatal("MessageID is not stable")
	}
	distinct := map[string]bool{id: true}
	for _, pair := range [][2]string{{"exec-123", "ep_2"}, {"exec-124", "ep_1"}, {"exec-12", "3ep_1"}, {"exec-123ep_1", ""}, {"", "exec-123ep_1"}, {"", ""}} {
		other := webhooks.MessageID(pair[0], pair[1])
		if distinct[other] {
			t.Errorf("MessageID(%q, %q) collides", pair[0], pair[1])
		}
		distinct[other] = true
	}
}
