package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// submitResponse is the body of 202 (and of 200 for a repeat).
type submitResponse struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`
}

func (in *Ingest) submit(w http.ResponseWriter, r *http.Request) {
	in.withIdleDeadlines(w, r)
	// The key is checked before the body is read: a multipart body stores
	// its images as it is read, and a refused submission must store nothing.
	key := r.Header.Get("Idempotency-Key")
	if key != "" && !ValidIdempotencyKey(key) {
		in.m.submission("invalid")
		writeProblem(w, Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest,
			Detail: "Idempotency-Key must be 1-255 printable ASCII characters"})
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	var req *messages.VerificationRequest
	var images []pendingImage
	var p *Problem
	newID := false
	switch mt {
	case "application/json":
		req, images, p = in.readJSON(w, r)
	case "multipart/form-data":
		req, images, newID, p = in.readMultipart(storeContext(r), w, r, params["boundary"])
	default:
		p = &Problem{Type: ProblemUnsupportedType, Status: http.StatusUnsupportedMediaType,
			Detail: "send application/json, or multipart/form-data with a request part and image parts"}
	}
	if p != nil {
		in.m.submission("invalid")
		writeProblem(w, *p)
		return
	}
	// The deadline of storing the job starts once the body is read.
	ctx, cancel := context.WithTimeout(r.Context(), 3*in.cfg.PublishTimeout)
	defer cancel()
	if err := in.claimIdempotencyKey(ctx, req, key); err != nil {
		in.deleteObjects(ctx, images)
		if errors.Is(err, errKeyConflict) {
			in.m.submission("conflict")
			writeProblem(w, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: "Idempotency-Key was already used with a different request"})
			return
		}
		in.unavailable(w, "cannot store the job now", err)
		return
	}
	in.respondSubmit(ctx, w, req, images, key, newID)
}

// pendingImage is an image read from the request, to be stored.
type pendingImage struct {
	classifier, contentType string
	data                    []byte // base64 JSON images (small)
	object                  string // multipart images, already stored
	size                    int64
	sha                     string
}

func (in *Ingest) readJSON(w http.ResponseWriter, r *http.Request) (*messages.VerificationRequest, []pendingImage, *Problem) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, in.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
				Detail: fmt.Sprintf("JSON bodies are limited to %d bytes; send large images as multipart/form-data", in.cfg.MaxBodyBytes)}
		}
		return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "cannot read the body"}
	}
	req, p := in.decode(body)
	if p != nil {
		return nil, nil, p
	}
	if fields := CheckInlineImages(req); len(fields) > 0 {
		return nil, nil, validationProblem(fields...)
	}
	var imgs []pendingImage
	for _, part := range req.Parts {
		if len(part.Data) == 0 {
			continue
		}
		sum := sha256.Sum256(part.Data)
		imgs = append(imgs, pendingImage{classifier: part.Classifier, contentType: part.ContentType, data: part.Data, size: int64(len(part.Data)), sha: hex.EncodeToString(sum[:])})
	}
	return req, imgs, nil
}

// CheckInlineImages checks the images of a JSON submission as ingest does:
// each base64 part is a JPEG or PNG whose contentType (when given) matches
// the data and whose dimensions Jumio accepts (see checkImageSize), no part
// names an object in the image store (those are internal), and the job
// meets Jumio's rules for API image uploads ([CheckUploadRules]: consent,
// the ID's country and type). It fills in missing content types and returns
// every violation. Run it after req.Validate.
func CheckInlineImages(req *messages.VerificationRequest) []jumio.FieldError {
	var fields []jumio.FieldError
	for i := range req.Parts {
		part := &req.Parts[i]
		path := fmt.Sprintf("parts[%d]", i)
		if part.Object != "" {
			fields = append(fields, jumio.FieldError{Field: path + ".object", Code: jumio.CodeInvalidValue,
				Message: "object references are internal; send the image as data or as a multipart file"})
			continue
		}
		if len(part.Data) == 0 {
			continue
		}
		ct, ok := ImageType(part.Data)
		switch {
		case !ok:
			fields = append(fields, jumio.FieldError{Field: path + ".data", Code: jumio.CodeInvalidValue, Message: "must be a JPEG or PNG image"})
		case part.ContentType != "" && part.ContentType != ct:
			fields = append(fields, jumio.FieldError{Field: path + ".contentType", Code: jumio.CodeInvalidValue, Message: "does not match the image data"})
		default:
			part.ContentType = ct
			fields = append(fields, checkImage(path+".data", ct, bytes.NewReader(part.Data))...)
		}
	}
	return append(fields, CheckUploadRules(req, nil)...)
}

// ValidIdempotencyKey reports whether k can be an Idempotency-Key: 1 to 255
// printable ASCII characters.
func ValidIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// decode parses and validates a request body.
func (in *Ingest) decode(body []byte) (*messages.VerificationRequest, *Problem) {
	req, p := decodeOnly(body)
	if p != nil {
		return nil, p
	}
	return req, validate(req)
}

func decodeOnly(body []byte) (*messages.VerificationRequest, *Problem) {
	req, err := messages.DecodeRequest(body)
	if err != nil {
		return nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: publicDetail(err, "cannot read the body")}
	}
	return req, nil
}

func validate(req *messages.VerificationRequest) *Problem {
	if err := req.Validate(); err != nil {
		var ve *jumio.ValidationError
		if errors.As(err, &ve) {
			return validationProblem(ve.Fields...)
		}
		return &Problem{Type: ProblemValidation, Status: http.StatusUnprocessableEntity, Detail: err.Error()}
	}
	return checkBounds(req)
}

func validationProblem(fields ...jumio.FieldError) *Problem {
	return &Problem{Type: ProblemValidation, Status: http.StatusUnprocessableEntity,
		Detail: "the request violates the rules of kycpipe or Jumio", Errors: fields}
}

// ImageType sniffs JPEG and PNG: it returns the content type of b.
func ImageType(b []byte) (string, bool) {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "image/jpeg", true
	case len(b) >= 8 && bytes.Equal(b[:8], []byte("\x89PNG\r\n\x1a\n")):
		return "image/png", true
	}
	return "", false
}

// readMultipart reads a multipart submission: a "request" part with the JSON
// first, then FRONT, BACK and FACE file parts, each streamed into the image
// store (never held in memory whole).
//
// newID says the job was given a new ID (the request part named none).
func (in *Ingest) readMultipart(ctx context.Context, w http.ResponseWriter, r *http.Request, boundary string) (*messages.VerificationRequest, []pendingImage, bool, *Problem) {
	if boundary == "" {
		return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "multipart body without a boundary"}
	}
	limit := in.cfg.MaxBodyBytes + 3*in.cfg.MaxImageBytes + 64<<10
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit), boundary)
	tooLarge := &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the request part is limited to %d bytes and each image to %d bytes", in.cfg.MaxBodyBytes, in.cfg.MaxImageBytes)}
	var req *messages.VerificationRequest
	var imgs []pendingImage
	newID := false
	nonce := newNonce()
	cleanup := func() { in.deleteObjects(context.WithoutCancel(ctx), imgs) }
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			cleanup()
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, false, tooLarge
			}
			return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "malformed multipart body"}
		}
		name := part.FormName()
		switch {
		case name == "request":
			if req != nil {
				cleanup()
				return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "more than one request part"}
			}
			body, err := io.ReadAll(io.LimitReader(part, in.cfg.MaxBodyBytes+1))
			if err != nil || int64(len(body)) > in.cfg.MaxBodyBytes {
				cleanup()
				return nil, nil, false, tooLarge
			}
			var p *Problem
			if req, p = decodeOnly(body); p != nil {
				cleanup()
				return nil, nil, false, p
			}
			if len(req.Parts) > 0 {
				cleanup()
				return nil, nil, false, validationProblem(jumio.FieldError{Field: "parts", Code: jumio.CodeInvalidValue, Message: "send images as file parts, not in the request JSON, in a multipart submission"})
			}
			// Name the job now: its images are stored under its ID.
			newID = PrepareRequest(req, r.Header.Get("Idempotency-Key"), in.cfg.DefaultRegion, in.now())
		case name == jumio.PartFront || name == jumio.PartBack || name == jumio.PartFace:
			if req == nil {
				cleanup()
				return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "the request part must come before the image parts"}
			}
			for _, im := range imgs {
				if im.classifier == name {
					cleanup()
					return nil, nil, false, validationProblem(jumio.FieldError{Field: name, Code: jumio.CodeInvalidValue, Message: "each image may be sent once"})
				}
			}
			if p := checkBeforeStore(req, imgs, name); p != nil {
				cleanup()
				return nil, nil, false, p
			}
			if fields := CheckUploadRules(req, append(classifiersOf(imgs), name)); len(fields) > 0 {
				cleanup()
				return nil, nil, false, validationProblem(fields...)
			}
			img, p := in.storeImage(ctx, req.JobID, nonce, name, part)
			if p != nil {
				cleanup()
				return nil, nil, false, p
			}
			imgs = append(imgs, img)
		default:
			cleanup()
			return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "unexpected multipart field; expected request, FRONT, BACK, FACE"}
		}
	}
	if req == nil {
		cleanup()
		return nil, nil, false, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "missing the request part"}
	}
	// Validate with the images in place (an API job may carry only images).
	for _, im := range imgs {
		req.Parts = append(req.Parts, messages.Part{Classifier: im.classifier, ContentType: im.contentType, Object: im.object})
	}
	p := validate(req)
	req.Parts = nil
	if p != nil {
		cleanup()
		return nil, nil, false, p
	}
	return req, imgs, newID, nil
}

// storeImage streams one multipart image into the image store.
func (in *Ingest) storeImage(ctx context.Context, jobID, nonce, classifier string, part io.Reader) (pendingImage, *Problem) {
	br := bufio.NewReaderSize(part, 512)
	head, _ := br.Peek(512)
	ct, ok := ImageType(head)
	if !ok {
		return pendingImage{}, &Problem{Type: ProblemUnsupportedType, Status: http.StatusUnsupportedMediaType, Detail: classifier + " must be a JPEG or PNG image"}
	}
	// Jumio's dimension rules, from the header alone, before storing.
	body, fields := peekImage(classifier, ct, br)
	if len(fields) > 0 {
		return pendingImage{}, validationProblem(fields...)
	}
	h := sha256.New()
	lr := &limitedImage{r: io.TeeReader(body, h), n: in.cfg.MaxImageBytes}
	name := messages.ObjectName(jobID, nonce, classifier)
	info, err := in.images.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {ct}}}, lr)
	if err != nil {
		if p := in.uploadProblem(classifier, err); p != nil {
			return pendingImage{}, p
		}
		in.log.Warn("cannot store image", jobField(jobID), zap.String("part", classifier), zap.Error(err))
		return pendingImage{}, &Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: "cannot store the image now"}
	}
	return pendingImage{classifier: classifier, contentType: ct, object: name, size: int64(info.Size), sha: hex.EncodeToString(h.Sum(nil))}, nil
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// respondSubmit stores the job and answers. The 202 is written only after
// JetStream acknowledged the job message.
func (in *Ingest) respondSubmit(ctx context.Context, w http.ResponseWriter, req *messages.VerificationRequest, imgs []pendingImage, idemKey string, newID bool) {
	if PrepareRequest(req, idemKey, in.cfg.DefaultRegion, in.now()) {
		newID = true
	}
	// Images from JSON go to the store too, under this submission's nonce.
	nonce := newNonce()
	var parts []messages.Part
	for _, im := range imgs {
		if im.object == "" {
			name := messages.ObjectName(req.JobID, nonce, im.classifier)
			if _, err := in.images.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {im.contentType}}}, bytes.NewReader(im.data)); err != nil {
				in.deleteObjects(context.WithoutCancel(ctx), imgs)
				in.unavailable(w, "cannot store the image now", err)
				return
			}
			im.object = name
		}
		parts = append(parts, messages.Part{Classifier: im.classifier, ContentType: im.contentType, Object: im.object, Size: im.size, SHA256: im.sha})
	}
	for i := range imgs {
		if imgs[i].object == "" {
			imgs[i].object = messages.ObjectName(req.JobID, nonce, imgs[i].classifier)
		}
	}
	req.Parts = parts
	if p := checkEncodedSize(req); p != nil {
		in.deleteObjects(ctx, imgs)
		in.m.submission("invalid")
		writeProblem(w, *p)
		return
	}
	res, err := in.submitter.submit(ctx, req, "submitted over HTTP", newID)
	bg := context.WithoutCancel(ctx)
	switch {
	case errors.Is(err, ErrJobConflict):
		in.deleteObjects(bg, imgs)
		in.m.submission("conflict")
		detail := "jobId is already used by a different request"
		if idemKey != "" && req.JobID == messages.IdempotentJobID(idemKey) {
			detail = "Idempotency-Key was already used with a different request"
		}
		if errors.Is(err, ErrJobErased) {
			detail = "this job was erased: its jobId and Idempotency-Key cannot be used again"
		}
		writeProblem(w, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: detail})
	case err != nil:
		if !errors.Is(err, errStoredUnconfirmed) {
			in.deleteObjects(bg, imgs) // nothing refers to them
		}
		in.unavailable(w, "cannot store the job now", err)
	case res.Repeated:
		if !res.Stored {
			in.deleteObjects(bg, imgs) // the first submission's images are the ones in use
		}
		in.m.submission("repeated")
		writeJSON(w, http.StatusOK, submitResponse{JobID: req.JobID, Status: StatusAccepted})
	default:
		in.m.submission("accepted")
		in.log.Debug("job accepted", jobField(req.JobID), zap.String("channel", req.Channel), zap.String("region", req.Region))
		w.Header().Set("Location", "/v1/verifications/"+req.JobID)
		writeJSON(w, http.StatusAccepted, submitResponse{JobID: req.JobID, Status: StatusAccepted})
	}
}

// unavailable answers 503 with Retry-After: JetStream is unreachable or the
// jobs stream is full. A message refused for its size is the client's
// fault, not a reason to retry: 413.
func (in *Ingest) unavailable(w http.ResponseWriter, detail string, err error) {
	if isMessageTooLarge(err) {
		in.m.submission("invalid")
		writeProblem(w, *tooLargeMessage())
		return
	}
	in.m.submission("unavailable")
	if isStreamFull(err) {
		detail = "the job queue is full; retry later"
	}
	in.log.Warn("submission refused", zap.String("reason", detail), zap.Error(err))
	writeUnavailable(w, in.cfg.RetryAfter, detail)
}

// errCodeStreamStoreFailed is JetStream's "storing the message failed"
// (10077), returned with DiscardNew when the stream is full.
const errCodeStreamStoreFailed jetstream.ErrorCode = 10077

func isStreamFull(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamStoreFailed
}
