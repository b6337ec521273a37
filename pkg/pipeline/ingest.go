package pipeline

import (
	"bufio"
	"bytes"
	"cmp"
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/kycpipe/kycpipe/docs"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
)

// IngestConfig configures the ingest HTTP API.
type IngestConfig struct {
	Topology Topology
	// APIKeys accepted as bearer tokens. Required unless InsecureNoAuth.
	APIKeys        *APIKeys
	InsecureNoAuth bool
	// MaxBodyBytes bounds JSON bodies (default 1 MiB); larger is 413.
	MaxBodyBytes int64
	// MaxImageBytes bounds each multipart image (default 15 MiB).
	MaxImageBytes int64
	// DefaultRegion is used for jobs that name none (default amer-1).
	DefaultRegion jumio.Region
	// RetryAfter is suggested with 503 answers (default 5s).
	RetryAfter time.Duration
	// PublishTimeout bounds each JetStream call of a request (default 5s).
	PublishTimeout time.Duration
	// Callbacks configures the Jumio callback route's defenses.
	Callbacks CallbackConfig
	// TracerProvider records a span per request (default: none).
	TracerProvider trace.TracerProvider
	// MetricsHandler serves GET /metrics (optional).
	MetricsHandler http.Handler
	Logger         *zap.Logger
	Now            func() time.Time
	Metrics        *Metrics
}

func (c IngestConfig) withDefaults() IngestConfig {
	c.Topology = c.Topology.WithDefaults()
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, messages.MaxRequestJSONSize)
	c.MaxImageBytes = cmp.Or(c.MaxImageBytes, messages.MaxImageSize)
	c.DefaultRegion = cmp.Or(c.DefaultRegion, jumio.DefaultRegion)
	c.RetryAfter = cmp.Or(c.RetryAfter, 5*time.Second)
	c.PublishTimeout = cmp.Or(c.PublishTimeout, 5*time.Second)
	c.Callbacks.RatePerSecond = cmp.Or(c.Callbacks.RatePerSecond, 100)
	c.Callbacks.Burst = cmp.Or(c.Callbacks.Burst, 200)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Ingest is the HTTP front door: job submission and status, the Jumio
// callback receiver, health and readiness.
type Ingest struct {
	cfg       IngestConfig
	nc        *nats.Conn
	js        jetstream.JetStream
	subj      messages.Subjects
	store     *JobStore
	images    jetstream.ObjectStore
	log       *zap.Logger
	now       func() time.Time
	m         *Metrics
	draining  atomic.Bool
	cbLimit   *bucket
	submitter *Submitter

	readyMu  sync.Mutex
	readyAt  time.Time
	readyErr error
}

// NewIngest opens the job-state bucket and image store.
func NewIngest(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg IngestConfig) (*Ingest, error) {
	cfg = cfg.withDefaults()
	if cfg.APIKeys == nil && !cfg.InsecureNoAuth {
		return nil, errors.New("pipeline: ingest needs API keys (or InsecureNoAuth)")
	}
	kv, err := js.KeyValue(ctx, cfg.Topology.Subjects.BucketJobs())
	if err != nil {
		return nil, fmt.Errorf("pipeline: ingest: job-state bucket: %w", err)
	}
	images, err := js.ObjectStore(ctx, cfg.Topology.Subjects.BucketImages())
	if err != nil {
		return nil, fmt.Errorf("pipeline: ingest: image store: %w", err)
	}
	submitter, err := NewSubmitter(ctx, js, cfg.Topology, cfg.Now)
	if err != nil {
		return nil, err
	}
	return &Ingest{cfg: cfg, nc: nc, js: js, subj: cfg.Topology.Subjects, store: NewJobStore(kv, cfg.Now),
		images: images, log: cfg.Logger, now: cfg.Now, m: cfg.Metrics, submitter: submitter,
		cbLimit: newBucket(cfg.Callbacks.RatePerSecond, cfg.Callbacks.Burst)}, nil
}

// SetDraining makes readiness fail, so load balancers stop sending traffic
// before the server shuts down.
func (in *Ingest) SetDraining(d bool) { in.draining.Store(d) }

// Handler returns the HTTP API.
func (in *Ingest) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/verifications", in.route("submit", in.authed(in.submit)))
	mux.Handle("GET /v1/verifications/{jobId}", in.route("status", in.authed(in.status)))
	mux.Handle("POST /v1/callbacks/jumio", in.route("callback", http.HandlerFunc(in.callbackBare)))
	mux.Handle("POST /v1/callbacks/jumio/{secret}", in.route("callback", http.HandlerFunc(in.callbackWithSecret)))
	mux.Handle("GET /healthz", in.route("healthz", http.HandlerFunc(in.healthz)))
	mux.Handle("GET /readyz", in.route("readyz", http.HandlerFunc(in.readyz)))
	mux.Handle("GET /openapi.yaml", in.route("openapi", in.authed(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(docs.OpenAPI)
	})))
	if in.cfg.MetricsHandler != nil {
		mux.Handle("GET /metrics", in.authed(in.cfg.MetricsHandler.ServeHTTP))
	}
	return securityHeaders(problemFallback(mux))
}

// statusRecorder captures the status code for metrics and logs.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (in *Ingest) route(name string, h http.Handler) http.Handler {
	tracer := tracerOf(in.cfg.TracerProvider)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		ctx, span := tracer.Start(propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header)), r.Method+" "+name,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("http.route", name)))
		r = r.WithContext(ctx)
		defer func() {
			span.SetAttributes(attribute.Int("http.response.status_code", rec.code))
			span.End()
		}()
		defer func() {
			if p := recover(); p != nil {
				in.log.Error("handler panicked", zap.String("route", name), zap.Any("panic", p))
				if rec.code == 0 {
					writeProblem(rec, Problem{Type: ProblemInternal, Status: http.StatusInternalServerError})
				}
			}
			in.m.observeHTTP(name, rec.code, time.Since(start))
		}()
		h.ServeHTTP(rec, r)
	})
}

func (in *Ingest) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !in.cfg.InsecureNoAuth {
			key, ok := bearer(r)
			if !ok || !in.cfg.APIKeys.Valid(key) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kycpipe"`)
				writeProblem(w, Problem{Type: ProblemUnauthorized, Status: http.StatusUnauthorized,
					Detail: "send a valid API key as Authorization: Bearer <key>"})
				return
			}
		}
		h(w, r)
	})
}

// securityHeaders sets headers that suit a JSON API holding personal data.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		hd.Set("Referrer-Policy", "no-referrer")
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", "max-age=63072000")
		}
		h.ServeHTTP(w, r)
	})
}

// problemFallback answers unknown routes and wrong methods with problems
// instead of the mux's plain-text bodies.
func problemFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			// Ask the mux what it would do: 404 or 405.
			rec := &statusRecorder{ResponseWriter: discardWriter{h: http.Header{}}}
			mux.ServeHTTP(rec, r)
			if rec.code == http.StatusMethodNotAllowed {
				w.Header().Set("Allow", rec.ResponseWriter.Header().Get("Allow"))
				writeProblem(w, Problem{Type: ProblemMethodNotAllowed, Status: http.StatusMethodNotAllowed})
				return
			}
			writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

// submitResponse is the body of 202 (and of 200 for a repeat).
type submitResponse struct {
	JobID  string `json:"jobId"`
	Status string `json:"status"`
}

func (in *Ingest) submit(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*in.cfg.PublishTimeout)
	defer cancel()
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
	switch mt {
	case "application/json":
		req, images, p = in.readJSON(w, r)
	case "multipart/form-data":
		req, images, p = in.readMultipart(ctx, w, r, params["boundary"])
	default:
		p = &Problem{Type: ProblemUnsupportedType, Status: http.StatusUnsupportedMediaType,
			Detail: "send application/json, or multipart/form-data with a request part and image parts"}
	}
	if p != nil {
		in.m.submission("invalid")
		writeProblem(w, *p)
		return
	}
	in.respondSubmit(ctx, w, req, images, key)
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
// the data, and no part names an object in the image store (those are
// internal). It fills in missing content types and returns every violation.
// Run it after req.Validate.
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
		}
	}
	return fields
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
		return nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: strings.TrimPrefix(err.Error(), "messages: ")}
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
	return nil
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
func (in *Ingest) readMultipart(ctx context.Context, w http.ResponseWriter, r *http.Request, boundary string) (*messages.VerificationRequest, []pendingImage, *Problem) {
	if boundary == "" {
		return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "multipart body without a boundary"}
	}
	limit := in.cfg.MaxBodyBytes + 3*in.cfg.MaxImageBytes + 64<<10
	mr := multipart.NewReader(http.MaxBytesReader(w, r.Body, limit), boundary)
	tooLarge := &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
		Detail: fmt.Sprintf("the request part is limited to %d bytes and each image to %d bytes", in.cfg.MaxBodyBytes, in.cfg.MaxImageBytes)}
	var req *messages.VerificationRequest
	var imgs []pendingImage
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
				return nil, nil, tooLarge
			}
			return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "malformed multipart body"}
		}
		name := part.FormName()
		switch {
		case name == "request":
			if req != nil {
				cleanup()
				return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "more than one request part"}
			}
			body, err := io.ReadAll(io.LimitReader(part, in.cfg.MaxBodyBytes+1))
			if err != nil || int64(len(body)) > in.cfg.MaxBodyBytes {
				cleanup()
				return nil, nil, tooLarge
			}
			var p *Problem
			if req, p = decodeOnly(body); p != nil {
				cleanup()
				return nil, nil, p
			}
			if len(req.Parts) > 0 {
				cleanup()
				return nil, nil, validationProblem(jumio.FieldError{Field: "parts", Code: jumio.CodeInvalidValue, Message: "send images as file parts, not in the request JSON, in a multipart submission"})
			}
			// Name the job now: its images are stored under its ID.
			PrepareRequest(req, r.Header.Get("Idempotency-Key"), in.cfg.DefaultRegion, in.now())
		case name == jumio.PartFront || name == jumio.PartBack || name == jumio.PartFace:
			if req == nil {
				cleanup()
				return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "the request part must come before the image parts"}
			}
			for _, im := range imgs {
				if im.classifier == name {
					cleanup()
					return nil, nil, validationProblem(jumio.FieldError{Field: name, Code: jumio.CodeInvalidValue, Message: "each image may be sent once"})
				}
			}
			img, p := in.storeImage(ctx, req.JobID, nonce, name, part)
			if p != nil {
				cleanup()
				return nil, nil, p
			}
			imgs = append(imgs, img)
		default:
			cleanup()
			return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "unexpected multipart field; expected request, FRONT, BACK, FACE"}
		}
	}
	if req == nil {
		cleanup()
		return nil, nil, &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "missing the request part"}
	}
	// Validate with the images in place (an API job may carry only images).
	for _, im := range imgs {
		req.Parts = append(req.Parts, messages.Part{Classifier: im.classifier, ContentType: im.contentType, Object: im.object})
	}
	p := validate(req)
	req.Parts = nil
	if p != nil {
		cleanup()
		return nil, nil, p
	}
	return req, imgs, nil
}

// storeImage streams one multipart image into the image store.
func (in *Ingest) storeImage(ctx context.Context, jobID, nonce, classifier string, part io.Reader) (pendingImage, *Problem) {
	br := bufio.NewReaderSize(part, 512)
	head, _ := br.Peek(512)
	ct, ok := ImageType(head)
	if !ok {
		return pendingImage{}, &Problem{Type: ProblemUnsupportedType, Status: http.StatusUnsupportedMediaType, Detail: classifier + " must be a JPEG or PNG image"}
	}
	h := sha256.New()
	lr := &io.LimitedReader{R: io.TeeReader(br, h), N: in.cfg.MaxImageBytes + 1}
	name := messages.ObjectName(jobID, nonce, classifier)
	info, err := in.images.Put(ctx, jetstream.ObjectMeta{Name: name, Headers: nats.Header{"Content-Type": {ct}}}, lr)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return pendingImage{}, &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "the body is too large"}
		}
		in.log.Warn("cannot store image", jobField(jobID), zap.String("part", classifier), zap.Error(err))
		return pendingImage{}, &Problem{Type: ProblemUnavailable, Status: http.StatusServiceUnavailable, Detail: "cannot store the image now"}
	}
	img := pendingImage{classifier: classifier, contentType: ct, object: name, size: int64(info.Size), sha: hex.EncodeToString(h.Sum(nil))}
	if lr.N <= 0 {
		in.deleteObjects(context.WithoutCancel(ctx), []pendingImage{img})
		return pendingImage{}, &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("%s is larger than %d bytes", classifier, in.cfg.MaxImageBytes)}
	}
	return img, nil
}

func (in *Ingest) deleteObjects(ctx context.Context, imgs []pendingImage) {
	for _, im := range imgs {
		if im.object != "" {
			_ = in.images.Delete(ctx, im.object)
		}
	}
}

func newNonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// respondSubmit stores the job and answers. The 202 is written only after
// JetStream acknowledged the job message.
func (in *Ingest) respondSubmit(ctx context.Context, w http.ResponseWriter, req *messages.VerificationRequest, imgs []pendingImage, idemKey string) {
	PrepareRequest(req, idemKey, in.cfg.DefaultRegion, in.now())
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
	res, err := in.submitter.Submit(ctx, req, "submitted over HTTP")
	bg := context.WithoutCancel(ctx)
	switch {
	case errors.Is(err, ErrJobConflict):
		in.deleteObjects(bg, imgs)
		in.m.submission("conflict")
		detail := "jobId is already used by a different request"
		if idemKey != "" && req.JobID == messages.IdempotentJobID(idemKey) {
			detail = "Idempotency-Key was already used with a different request"
		}
		writeProblem(w, Problem{Type: ProblemConflict, Status: http.StatusConflict, Detail: detail})
	case err != nil:
		in.deleteObjects(bg, imgs)
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
// jobs stream is full.
func (in *Ingest) unavailable(w http.ResponseWriter, detail string, err error) {
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
	if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamStoreFailed {
		return true
	}
	return err != nil && (strings.Contains(err.Error(), "maximum messages exceeded") || strings.Contains(err.Error(), "maximum bytes exceeded"))
}

// JobView is the body of GET /v1/verifications/{jobId}.
type JobView struct {
	JobID               string                    `json:"jobId"`
	Status              string                    `json:"status"`
	AccountID           string                    `json:"accountId,omitempty"`
	WorkflowExecutionID string                    `json:"workflowExecutionId,omitempty"`
	Web                 *messages.WebLink         `json:"web,omitempty"`
	SDK                 *messages.SDKToken        `json:"sdk,omitempty"`
	Decision            *messages.DecisionSummary `json:"decision,omitempty"`
	Error               *JobViewError             `json:"error,omitempty"`
	CreatedAt           time.Time                 `json:"createdAt"`
	UpdatedAt           time.Time                 `json:"updatedAt,omitzero"`
}

// JobViewError is the last error of a failed job.
type JobViewError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// NewJobView builds the public view of a job record.
func NewJobView(rec *JobRecord) JobView {
	v := JobView{JobID: rec.JobID, Status: rec.Status, AccountID: rec.AccountID, WorkflowExecutionID: rec.WorkflowExecutionID,
		Decision: rec.Decision, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	if rec.Announced || rec.Status == StatusDecided {
		if rec.WebHref != "" && rec.Channel == messages.ChannelWeb {
			v.Web = &messages.WebLink{Href: rec.WebHref}
		}
		if rec.SDKToken != "" && rec.Channel == messages.ChannelSDK {
			v.SDK = &messages.SDKToken{Token: rec.SDKToken}
		}
	}
	if rec.Status == StatusFailed && rec.LastError != nil {
		v.Error = &JobViewError{Code: rec.LastError.Code, Message: rec.LastError.Message}
	}
	return v
}

func (in *Ingest) status(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("jobId")
	if !messages.ValidJobID(id) {
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.cfg.PublishTimeout)
	defer cancel()
	rec, _, err := in.store.Get(ctx, id)
	if errors.Is(err, ErrJobNotFound) {
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "unknown job"})
		return
	}
	if err != nil {
		in.log.Warn("cannot read job", jobField(id), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot read the job now")
		return
	}
	writeJSON(w, http.StatusOK, NewJobView(rec))
}

func (in *Ingest) callbackBare(w http.ResponseWriter, r *http.Request) {
	if in.cfg.Callbacks.Secret != "" {
		in.m.callback("refused")
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
		return
	}
	in.callback(w, r)
}

func (in *Ingest) callbackWithSecret(w http.ResponseWriter, r *http.Request) {
	s := in.cfg.Callbacks.Secret
	if s == "" || !(&APIKeys{digests: [][sha256.Size]byte{sha256.Sum256([]byte(s))}}).Valid(r.PathValue("secret")) {
		in.m.callback("refused")
		writeProblem(w, Problem{Type: ProblemNotFound, Status: http.StatusNotFound, Detail: "no such route"})
		return
	}
	in.callback(w, r)
}

// callback receives a Jumio callback: it checks where it comes from and its
// shape, publishes it on kyc.callbacks.<region> (deduplicated) and answers
// 200 at once. The callback only triggers a retrieval.
func (in *Ingest) callback(w http.ResponseWriter, r *http.Request) {
	cc := in.cfg.Callbacks
	src, ok := clientAddr(r, cc.TrustedProxies)
	if len(cc.Allowlist) > 0 && (!ok || !containsAddr(cc.Allowlist, src)) {
		in.m.callback("refused")
		in.log.Warn("callback from an address outside the allowlist refused", zap.String("source", src.String()))
		writeProblem(w, Problem{Type: ProblemForbidden, Status: http.StatusForbidden, Detail: "callbacks are accepted from Jumio's addresses only"})
		return
	}
	if !in.cbLimit.allow(in.now()) {
		in.m.callback("rate_limited")
		w.Header().Set("Retry-After", "1")
		writeProblem(w, Problem{Type: ProblemTooManyRequests, Status: http.StatusTooManyRequests, Detail: "too many callbacks"})
		return
	}
	cb, err := jumio.ParseCallback(http.MaxBytesReader(w, r.Body, jumio.MaxCallbackSize))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "callbacks are limited to 64 KiB"})
		return
	}
	if err != nil {
		in.m.callback("invalid")
		writeProblem(w, Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: strings.TrimPrefix(err.Error(), "jumio: ")})
		return
	}
	region := callbackRegion(r, cb, in.cfg.DefaultRegion)
	msg := &messages.CallbackReceived{
		Schema: messages.SchemaCallback, Region: string(region), ReceivedAt: in.now().UTC(),
		SourceIP: src.String(), Callback: *cb,
	}
	if j := r.URL.Query().Get("job"); messages.ValidJobID(j) {
		msg.JobID = j
	}
	id := "cb:" + cb.WorkflowExecution.ID + ":" + cb.WorkflowExecution.Status + ":" + cb.CallbackSentAt
	o, err := newOutMsg(in.subj.Callback(string(region)), msg, id, msg.JobID)
	var ack *jetstream.PubAck
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), in.cfg.PublishTimeout)
		ack, err = publish(ctx, in.js, o)
		cancel()
	}
	if err != nil {
		in.m.callback("unavailable")
		in.log.Warn("cannot publish callback; Jumio may resend, and polling covers a lost one",
			accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID), zap.Error(err))
		writeUnavailable(w, in.cfg.RetryAfter, "cannot store the callback now")
		return
	}
	result := "published"
	if ack.Duplicate {
		result = "duplicate"
	}
	in.m.callback(result)
	in.log.Debug("callback received", accountField(cb.Account.ID), executionField(cb.WorkflowExecution.ID),
		zap.String("callback_status", cb.WorkflowExecution.Status), zap.String("result", result))
	writeJSON(w, http.StatusOK, map[string]string{"status": "received"})
}

// callbackRegion finds the callback's region: a region query parameter on the
// callback URL, else the region in Jumio's retrieval host
// (retrieval.<region>.jumio.ai), else the default.
func callbackRegion(r *http.Request, cb *jumio.Callback, def jumio.Region) jumio.Region {
	if q := r.URL.Query().Get("region"); q != "" {
		if reg, err := jumio.ParseRegion(q); err == nil {
			return reg
		}
	}
	for _, href := range []string{cb.Account.Href, cb.WorkflowExecution.Href} {
		for _, reg := range jumio.Regions {
			if strings.Contains(href, "."+string(reg)+".jumio.") {
				return reg
			}
		}
	}
	return def
}

func (in *Ingest) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (in *Ingest) readyz(w http.ResponseWriter, r *http.Request) {
	if err := in.Ready(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// Ready reports whether ingest can take work: not draining, NATS connected,
// streams and buckets present (checked at most every 5s).
func (in *Ingest) Ready(ctx context.Context) error {
	if in.draining.Load() {
		return errors.New("draining")
	}
	return readiness(ctx, in.nc, in.js, in.cfg.Topology, &in.readyMu, &in.readyAt, &in.readyErr, in.now)
}

func readiness(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, t Topology, mu *sync.Mutex, at *time.Time, last *error, now func() time.Time) error {
	if nc != nil && nc.Status() != nats.CONNECTED {
		return fmt.Errorf("NATS %s", strings.ToLower(nc.Status().String()))
	}
	mu.Lock()
	defer mu.Unlock()
	if !at.IsZero() && now().Sub(*at) < 5*time.Second {
		return *last
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	*last = Check(cctx, js, t)
	*at = now()
	return *last
}
