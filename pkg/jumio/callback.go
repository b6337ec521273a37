package jumio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// MaxCallbackSize bounds the size of a callback body [ParseCallback] reads.
// Real callbacks are well under 1 KiB.
const MaxCallbackSize = 64 << 10

// Callback is the notification Jumio POSTs to the callback URL when a
// workflow execution changes status. It carries no decision and no PII: it
// only says which execution to retrieve.
//
// Jumio API docs: https://documentation.jumio.ai/docs/developer-resources/callback
type Callback struct {
	CallbackSentAt    string         `json:"callbackSentAt,omitempty"`
	UserReference     string         `json:"userReference,omitempty"`
	WorkflowExecution WorkflowStatus `json:"workflowExecution"`
	Account           Ref            `json:"account"`
}

// ErrInvalidCallback is returned by [ParseCallback] for a body that is not a
// Jumio callback.
var ErrInvalidCallback = errors.New("jumio: invalid callback")

var statusRE = regexp.MustCompile(`^[A-Z][A-Z_]{1,39}$`)

// ParseCallback reads and checks a callback body. It tolerates unknown
// fields (Jumio may add some) but requires workflowExecution.id and
// account.id to be Jumio IDs and the status to be an upper-case word. It
// reads at most [MaxCallbackSize] bytes. Errors wrap [ErrInvalidCallback] and
// never echo the body.
func ParseCallback(r io.Reader) (*Callback, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxCallbackSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read body: %w", ErrInvalidCallback, err)
	}
	if len(b) > MaxCallbackSize {
		return nil, fmt.Errorf("%w: body larger than %d bytes", ErrInvalidCallback, MaxCallbackSize)
	}
	var cb Callback
	if err := json.Unmarshal(b, &cb); err != nil {
		return nil, fmt.Errorf("%w: not a JSON callback object", ErrInvalidCallback)
	}
	if err := cb.Check(); err != nil {
		return nil, err
	}
	return &cb, nil
}

// Check verifies that the callback names a workflow execution and an
// account with well-formed IDs and has a plausible status.
func (cb *Callback) Check() error {
	switch {
	case !ValidID(cb.WorkflowExecution.ID):
		return fmt.Errorf("%w: missing or malformed workflowExecution.id", ErrInvalidCallback)
	case !ValidID(cb.Account.ID):
		return fmt.Errorf("%w: missing or malformed account.id", ErrInvalidCallback)
	case !statusRE.MatchString(cb.WorkflowExecution.Status):
		return fmt.Errorf("%w: missing or malformed workflowExecution.status", ErrInvalidCallback)
	case len(cb.UserReference) > 4*MaxReferenceLength:
		return fmt.Errorf("%w: userReference too long", ErrInvalidCallback)
	case len(cb.WorkflowExecution.DefinitionKey) > 64:
		return fmt.Errorf("%w: definitionKey too long", ErrInvalidCallback)
	}
	return nil
}
