package webhooks

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EventType names what happened to a verification; it is the payload's
// "type" and what endpoints subscribe to.
type EventType string

// Event types (DESIGN 3.8). The first five follow the lifecycle events on
// kyc.events.<kind>; decided follows the DecisionEvent on kyc.decisions.<TYPE>.
const (
	EventAccepted  EventType = "verification.accepted"
	EventLaunched  EventType = "verification.launched"
	EventFinalized EventType = "verification.finalized"
	EventFailed    EventType = "verification.failed"
	EventDecided   EventType = "verification.decided"
	EventErased    EventType = "verification.erased"
)

// eventPrefix is the namespace of every event type.
const eventPrefix = "verification."

// Subscription patterns that match more than one type.
const (
	PatternAll          = "*"
	PatternVerification = "verification.*"
)

// EventTypes returns every event type, in lifecycle order. The slice is a
// fresh copy.
func EventTypes() []EventType {
	return []EventType{EventAccepted, EventLaunched, EventFinalized, EventFailed, EventDecided, EventErased}
}

// Valid reports whether t is one of [EventTypes].
func (t EventType) Valid() bool { return slices.Contains(EventTypes(), t) }

// LifecycleEventType maps a lifecycle event's kind (the "kind" field and
// the last token of kyc.events.<kind>: accepted, launched, finalized,
// failed, erased) to its event type. Unknown kinds report false: the
// notifier skips them rather than inventing a type.
func LifecycleEventType(kind string) (EventType, bool) {
	t := EventType(eventPrefix + kind)
	if !t.Valid() || t == EventDecided {
		return "", false
	}
	return t, true
}

// MatchEventType reports whether one subscription pattern selects t:
// "*" matches every type, "verification.*" every type in that namespace,
// and any other pattern only the identical type.
func MatchEventType(pattern string, t EventType) bool {
	switch pattern {
	case PatternAll:
		return true
	case PatternVerification:
		return strings.HasPrefix(string(t), eventPrefix)
	default:
		return pattern == string(t)
	}
}

// Subscribed reports whether any of patterns selects t.
func Subscribed(patterns []string, t EventType) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return MatchEventType(p, t) })
}

// maxPatterns bounds an endpoint's eventTypes list.
const maxPatterns = 32

// ValidateEventTypes checks an endpoint's eventTypes: at least one entry,
// at most 32, each "*", "verification.*" or one of [EventTypes]. It returns
// a *[ValidationError] (fields "eventTypes" / "eventTypes[i]") or nil.
// Duplicates are allowed.
func ValidateEventTypes(patterns []string) error {
	var v validator
	switch {
	case len(patterns) == 0:
		v.add("eventTypes", CodeRequired, "at least one event type or pattern is required")
	case len(patterns) > maxPatterns:
		v.add("eventTypes", CodeTooLong, fmt.Sprintf("at most %d entries", maxPatterns))
	}
	for i, p := range patterns {
		if p != PatternAll && p != PatternVerification && !EventType(p).Valid() {
			v.add("eventTypes["+strconv.Itoa(i)+"]", CodeInvalidFormat,
				`unknown event type: use "*", "verification.*" or one of verification.accepted, launched, finalized, failed, decided, erased`)
		}
	}
	return v.err()
}

// Payload is the JSON body of a delivery: {"type", "timestamp", "data"}.
// Receivers decode into it; senders build the bytes with [EncodePayload],
// which keeps Data byte for byte.
type Payload struct {
	// Type is the event type.
	Type EventType `json:"type"`
	// Timestamp is when the event happened (the lifecycle event's "at", the
	// decision's "decidedAt"), not when this attempt was made: that is the
	// webhook-timestamp header.
	Timestamp time.Time `json:"timestamp"`
	// Data is the lifecycle event or DecisionEvent exactly as published on
	// JetStream.
	Data json.RawMessage `json:"data"`
}

// EncodePayload returns the delivery body
// {"type":t,"timestamp":at (RFC 3339, UTC),"data":data}, with data copied
// verbatim (json.Marshal would re-compact it). data must be one valid JSON
// value; t must be valid. The result is the same for the same arguments, so
// every retry of an event sends identical bytes.
func EncodePayload(t EventType, at time.Time, data []byte) ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("webhooks: encode payload: unknown event type %q", string(t))
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return nil, fmt.Errorf("webhooks: encode payload: data is not valid JSON")
	}
	ts, err := at.UTC().MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("webhooks: encode payload: timestamp: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(trimmed) + 96)
	b.WriteString(`{"type":`)
	b.WriteString(strconv.Quote(string(t))) // event types are plain ASCII: Quote is valid JSON here
	b.WriteString(`,"timestamp":`)
	b.Write(ts)
	b.WriteString(`,"data":`)
	b.Write(trimmed)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// crockford is Crockford's base32 alphabet in lower case (no i, l, o, u),
// as pkg/messages uses for job IDs.
var crockford = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// MessageID returns the webhook-id of one event delivered to one endpoint:
// "msg_" followed by 26 lower-case Crockford base32 characters, the first
// 128 bits of
//
//	SHA-256("kycpipe/webhook-id/v1" || len(eventID) || eventID || len(endpointID) || endpointID)
//
// (lengths as 8-byte big-endian integers, so no two pairs collide by
// concatenation). It is a pure function: every retry, every replica and
// every replay of the same event to the same endpoint carries the same id,
// which is what receivers deduplicate on; the same event to two endpoints
// gets two ids. eventID must name the event stably: the JetStream message's
// Nats-Msg-Id when it has one, else "<stream>:<stream sequence>".
func MessageID(eventID, endpointID string) string {
	h := sha256.New()
	h.Write([]byte("kycpipe/webhook-id/v1"))
	var n [8]byte
	for _, s := range []string{eventID, endpointID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return "msg_" + crockford.EncodeToString(h.Sum(nil)[:16])
}
