package jumio

// Internals the external tests (which may import jumiotest) reach.
var (
	// DecodeDetailsSlow is the encoding/json decoder of workflow details.
	DecodeDetailsSlow = decodeDetailsSlow
	// DecodeDetailsFast is the hand-written fast path; false: it gives up.
	DecodeDetailsFast = decodeDetailsFast
	// DecodeDetailsValue is how Client.WorkflowDetails decodes the body.
	DecodeDetailsValue = decodeDetailsValue
)
