package messages

import "encoding/json"

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
func Marshal(m Message) ([]byte, error) {
	m.stamp()
	return json.Marshal(m)
}
