package jumio

import (
	"encoding/json"
	"fmt"
	"io"
)

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
