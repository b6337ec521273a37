package pipeline

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// This file holds the checks ingest makes before it writes anything to
// JetStream for a submission (Security II, finding 1): every value a client
// controls that becomes part of a subject, a header or an object name must
// be validated and bounded first. A value longer than the server's
// max_control_line in a subject makes the server close the connection.

// checkBeforeStore validates a multipart submission's request before its
// image part classifier is stored: the whole request as if the image were
// already in place, so an invalid job ID (which names the stored objects)
// or any other fault is refused before anything is written.
func checkBeforeStore(req *messages.VerificationRequest, stored []pendingImage, classifier string) *Problem {
	c := *req
	c.Parts = make([]messages.Part, 0, len(stored)+1)
	for _, im := range stored {
		c.Parts = append(c.Parts, messages.Part{Classifier: im.classifier, ContentType: im.contentType, Object: im.object})
	}
	// A placeholder for the image about to be stored: a well-formed object
	// name, so only the request itself is judged.
	c.Parts = append(c.Parts, messages.Part{Classifier: classifier, Object: messages.ObjectName("pending", "0", classifier)})
	if p := validate(&c); p != nil {
		return p
	}
	if !messages.ValidJobID(req.JobID) {
		// PrepareRequest always names the job; this only guards the invariant
		// that an unbounded ID never reaches an object name.
		return validationProblem(messages.FieldError{Field: "jobId", Code: messages.CodeInvalidFormat, Message: "must be 1-64 letters, digits, '-' or '_'"})
	}
	return nil
}

// MaxCapabilitiesBytes bounds workflowDefinition.capabilities, a free-form
// JSON object passed to Jumio (Security II, finding 8). Jumio's capability
// settings are a few hundred bytes.
const MaxCapabilitiesBytes = 16 << 10

// maxJobMessageBytes bounds an encoded job message: the jobs stream takes
// MaxRequestJSONSize plus 64 KiB with headers; half of that margin is left
// to the headers (message ID, job ID, trace context).
const maxJobMessageBytes = messages.MaxRequestJSONSize + 32<<10

// checkBounds refuses free-form parts of a request larger than kycpipe
// stores.
func checkBounds(req *messages.VerificationRequest) *Problem {
	n := 0
	for name, raw := range req.WorkflowDefinition.Capabilities {
		n += len(name) + len(raw)
	}
	if n > MaxCapabilitiesBytes {
		return validationProblem(messages.FieldError{Field: "workflowDefinition.capabilities", Code: messages.CodeTooLong,
			Message: fmt.Sprintf("must be at most %d bytes of JSON", MaxCapabilitiesBytes)})
	}
	return nil
}

// checkEncodedSize refuses, with 413, a job whose message would be larger
// than the jobs stream accepts: an oversized message is the client's
// fault, never a retryable 503. Call it with the request as it will be
// published (images as object references).
func checkEncodedSize(req *messages.VerificationRequest) *Problem {
	b, err := messages.Marshal(req)
	if err != nil {
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "the request cannot be encoded"}
	}
	if len(b) > maxJobMessageBytes {
		return tooLargeMessage()
	}
	return nil
}

func tooLargeMessage() *Problem {
	return &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the job is larger than the %d bytes a job message may have", maxJobMessageBytes)}
}

// isMessageTooLarge reports whether err says a message was refused for its
// size (by the client library or by the stream).
func isMessageTooLarge(err error) bool {
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}
