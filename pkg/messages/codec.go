package messages

// Message is a payload the pipeline publishes: a [VerificationRequest],
// [Event], [CallbackReceived], [DecisionEvent] or [RetrievalTask]. The set
// is closed: only this package's types implement it.
type Message interface {
	// stamp sets the message's schema field to its current version.
	stamp()
}

func (r *VerificationRequest) stamp() { r.Schema = SchemaVerification }
func (e *Event) stamp()               { e.Schema = SchemaEvent }
func (c *CallbackReceived) stamp()    { c.Schema = SchemaCallback }
func (d *DecisionEvent) stamp()       { d.Schema = SchemaDecision }
func (t *RetrievalTask) stamp()       { t.Schema = SchemaRetrievalTask }

// Marshal stamps m with its schema and encodes it. It is the one way the
// pipeline encodes what it publishes, so no producer sets schema by hand.
// It does not escape HTML characters: no message is HTML, and escaping
// would grow a payload full of '<' six-fold (the escaped form \u003c), so a
// body accepted at the door could exceed the size a stream accepts.
func Marshal(m Message) ([]byte, error) {
	m.stamp()
	if b, ok := appendMessage(make([]byte, 0, 512), m); ok {
		return b, nil
	}
	return encodeJSON(m, false)
}

// appendMessage writes m with the hand-written encoders (the bytes
// encoding/json writes); false: m holds a value they leave to
// encoding/json.
func appendMessage(b []byte, m Message) ([]byte, bool) {
	switch v := m.(type) {
	case *VerificationRequest:
		return appendRequest(b, v, false)
	}
	return b, false
}
