package pipeline

import (
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
