package kycctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kycpipe/kycpipe/internal/config"
	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/messages"
	"github.com/kycpipe/kycpipe/pkg/pipeline"
)

// maxSubmitFile bounds what submit reads: far above what a job message may
// be, so that an oversized file gets the precise "message too large" error.
const maxSubmitFile = 32 << 20

func submitCommand() command {
	return command{
		name: "submit", synopsis: "FILE|- [--idempotency-key K] [--jumio-region R]",
		summary: "validate a VerificationRequest (JSON file, or - for stdin) and queue it as a job",
		help: `The request is decoded strictly (unknown fields are errors) and checked against the pipeline's
and Jumio's rules; every violation is printed and nothing is stored. A valid request is stored
exactly like ingest stores it: the job record, then the job message on <prefix>.jobs.submit,
deduplicated on the job ID. The job ID is the request's jobId, else derived from
--idempotency-key, else new; a repeat of the same request stores nothing new, and a different
request under a used ID is refused.

Images (API channel) go base64 in parts[].data and travel inside the job message, which is
limited to 1 MiB: send larger images through ingest (multipart/form-data).`,
		flags: func(o *opts, s *config.Set) {
			s.String(&o.idemKey, "idempotency-key", "", "", "derive the job ID from this key (like ingest's Idempotency-Key header) when the request has no jobId")
		},
		run: submit,
	}
}

// fieldErrorsView is the --json output of an invalid request.
type fieldErrorsView struct {
	Error  string             `json:"error"`
	Errors []jumio.FieldError `json:"errors,omitempty"`
}

type submitView struct {
	JobID  string `json:"jobId"`
	Result string `json:"result"` // new or repeat
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Images are the classifiers of the base64 images inside the job
	// message, MessageBytes its size.
	Images       []string `json:"images,omitempty"`
	MessageBytes int      `json:"messageBytes"`
}

func submit(ctx context.Context, e *env) error {
	if len(e.o.positional) != 1 {
		return errors.New("usage: kycctl submit FILE (or - for stdin)")
	}
	name := e.o.positional[0]
	body, err := readInput(e, name)
	if err != nil {
		return err
	}
	req, err := messages.DecodeRequest(body)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "messages: ")
		if e.json {
			_ = e.emit(fieldErrorsView{Error: msg}, nil)
		}
		return fmt.Errorf("%s: not a valid VerificationRequest: %s", name, msg)
	}
	if fields := checkRequest(req); len(fields) > 0 {
		if e.json {
			_ = e.emit(fieldErrorsView{Error: "the request violates the rules of kycpipe or Jumio", Errors: fields}, nil)
		} else {
			fmt.Fprintf(e.errOut, "%s: the request violates the rules of kycpipe or Jumio:\n", name)
			tw := tabwriter.NewWriter(e.errOut, 0, 4, 2, ' ', 0)
			for _, f := range fields {
				fmt.Fprintf(tw, "  %s\t%s\t(%s)\n", f.Field, f.Message, f.Code)
			}
			_ = tw.Flush()
		}
		return fmt.Errorf("%s: %d field error(s); nothing was submitted", name, len(fields))
	}
	if key := e.o.idemKey; key != "" && !pipeline.ValidIdempotencyKey(key) {
		return errors.New("--idempotency-key must be 1-255 printable ASCII characters")
	}
	now := time.Now()
	pipeline.PrepareRequest(req, e.o.idemKey, e.common.DefaultRegion(), now)
	size := messageSize(req, now)
	if n := size; n > messages.MaxRequestJSONSize {
		return fmt.Errorf("%s: the job message would be %d bytes, over the %d-byte (1 MiB) limit of a job message: base64 images in parts[].data travel inside it; send large images through ingest as multipart/form-data",
			name, n, messages.MaxRequestJSONSize)
	}
	if err := e.connect(); err != nil {
		return err
	}
	sub, err := pipeline.NewSubmitter(ctx, e.js, e.topo, nil)
	if err != nil {
		return err
	}
	res, err := sub.Submit(ctx, req, "submitted with kycctl")
	switch {
	case errors.Is(err, pipeline.ErrJobConflict):
		if e.o.idemKey != "" && req.JobID == messages.IdempotentJobID(e.o.idemKey) {
			return fmt.Errorf("job %s: the idempotency key was already used with a different request; nothing was submitted", req.JobID)
		}
		return fmt.Errorf("job %s: this job ID already names a different request; nothing was submitted", req.JobID)
	case err != nil:
		return fmt.Errorf("job %s not stored: %w", req.JobID, err)
	}
	v := submitView{JobID: res.JobID, Result: "new", Status: pipeline.StatusAccepted,
		Detail: "stored and queued on " + e.subj.JobSubmit(res.JobID), MessageBytes: size}
	for _, p := range req.Parts {
		v.Images = append(v.Images, p.Classifier)
	}
	if res.Repeated {
		v.Result = "repeat"
		v.Detail = "the same request was submitted before; nothing new was stored"
		if store, err := e.jobStore(ctx); err == nil {
			if rec, _, err := store.Get(ctx, res.JobID); err == nil {
				v.Status = rec.Status
			}
		}
	}
	return e.emit(v, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "job\t%s\nresult\t%s: %s\nstatus\t%s\n", v.JobID, v.Result, v.Detail, v.Status)
		if len(v.Images) > 0 {
			fmt.Fprintf(w, "images\t%s, inside the job message (%d of %d bytes)\n", strings.Join(v.Images, ", "), v.MessageBytes, messages.MaxRequestJSONSize)
		}
		fmt.Fprintf(w, "next\tkycctl status %s\n", v.JobID)
	})
}

func readInput(e *env, name string) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = e.in
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxSubmitFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxSubmitFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; a job message is limited to 1 MiB", name, maxSubmitFile)
	}
	return b, nil
}

// checkRequest validates like ingest does for JSON bodies: the request's
// rules, then the inline images.
func checkRequest(req *messages.VerificationRequest) []jumio.FieldError {
	var fields []jumio.FieldError
	if err := req.Validate(); err != nil {
		var ve *jumio.ValidationError
		if !errors.As(err, &ve) {
			return []jumio.FieldError{{Field: "", Code: jumio.CodeInvalidValue, Message: err.Error()}}
		}
		fields = append(fields, ve.Fields...)
	}
	return append(fields, pipeline.CheckInlineImages(req)...)
}

// messageSize is the size of the job message Submit will publish (it sets
// SubmittedAt).
func messageSize(req *messages.VerificationRequest, now time.Time) int {
	c := *req
	t := now.UTC()
	c.SubmittedAt = &t
	b, err := json.Marshal(&c)
	if err != nil {
		return 0
	}
	return len(b)
}
