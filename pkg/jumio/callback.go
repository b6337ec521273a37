package jumio

import (
	"io"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// ParseCallback reads and checks a callback body. It tolerates unknown
// fields (Jumio may add some) but requires workflowExecution.id and
// account.id to be Jumio IDs and the status to be an upper-case word. It
// reads at most [MaxCallbackSize] bytes. Errors wrap [ErrInvalidCallback] and
// never echo the body.
func ParseCallback(r io.Reader) (*Callback, error) { return messages.ParseCallback(r) }
