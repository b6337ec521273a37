package jumio

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
)

// UploadResponse is Jumio's answer to a part upload. API.Parts lists the parts
// still expected (empty after PREPARED_DATA).
type UploadResponse struct {
	Timestamp         string        `json:"timestamp,omitempty"`
	Account           Ref           `json:"account"`
	WorkflowExecution Ref           `json:"workflowExecution"`
	Credential        *Ref          `json:"credential,omitempty"`
	Part              *Ref          `json:"part,omitempty"`
	API               CredentialAPI `json:"api"`
}

// FinalizeResponse is Jumio's answer to finalize. Jumio may answer 200 with an
// empty body; the fields are then empty.
type FinalizeResponse struct {
	Timestamp         string `json:"timestamp,omitempty"`
	Account           Ref    `json:"account"`
	WorkflowExecution Ref    `json:"workflowExecution"`
}

// UploadPreparedData uploads prepared data to a DATA credential. partURL is
// the credential's api.parts.prepared_data URL and token its api.token, both
// exactly as Jumio returned them.
//
// Jumio API docs: https://documentation.jumio.ai/docs/quickStart/standaloneRiskSignal
func (c *Client) UploadPreparedData(ctx context.Context, partURL, token string, data *PreparedData) (*UploadResponse, error) {
	if err := checkCredentialCall(opUploadPreparedData, partURL, token); err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("jumio: %s: %w: nil prepared data", opUploadPreparedData, ErrInvalidArgument)
	}
	var out UploadResponse
	if err := c.doBearer(ctx, opUploadPreparedData, http.MethodPost, partURL, token, data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadPart uploads one image part (FRONT, BACK or FACE) as the multipart
// field "file". size is the image's length in bytes: the request carries a
// Content-Length computed from it and the multipart envelope, as Jumio
// expects on every call (a chunked upload risks a 403), while the image is
// still streamed from r, never buffered whole. r is read once: a failed
// upload needs a fresh reader. filename and contentType (image/jpeg or
// image/png) describe the file. partURL and token are the credential's
// api.parts URL and api.token exactly as Jumio returned them.
//
// A size of zero or less, or a nil r, is an error matching
// [ErrInvalidArgument]. If r yields fewer or more than size bytes the
// request is aborted before its body is complete (Jumio never receives a
// whole upload) and the error matches [ErrInvalidArgument]. An error
// reading r is returned as a transport error.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/credentials
func (c *Client) UploadPart(ctx context.Context, partURL, token, filename, contentType string, size int64, r io.Reader) (*UploadResponse, error) {
	if err := checkCredentialCall(opUploadPart, partURL, token); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("jumio: %s: %w: nil reader", opUploadPart, ErrInvalidArgument)
	}
	if size <= 0 {
		return nil, fmt.Errorf("jumio: %s: %w: size must be positive", opUploadPart, ErrInvalidArgument)
	}
	if err := c.wait(ctx, opUploadPart); err != nil {
		return nil, err
	}
	if filename == "" {
		filename = "image"
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	head, tail, boundary, err := multipartEnvelope(filename, contentType)
	if err != nil {
		return nil, fmt.Errorf("jumio: %s: %w", opUploadPart, err)
	}
	img := &sizedReader{r: r, want: size}
	body := io.MultiReader(bytes.NewReader(head), img, bytes.NewReader(tail))
	req, err := c.newRequest(ctx, opUploadPart, http.MethodPost, partURL, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(head)) + size + int64(len(tail))
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Authorization", "Bearer "+token)
	var out UploadResponse
	if err := c.do(req, opUploadPart, &out); err != nil {
		if img.mismatch != nil {
			return nil, fmt.Errorf("jumio: %s: %w: %w", opUploadPart, ErrInvalidArgument, img.mismatch)
		}
		return nil, err
	}
	return &out, nil
}

// multipartEnvelope returns the bytes a multipart/form-data body with one
// file field "file" has before and after the file's content, and the
// boundary.
func multipartEnvelope(filename, contentType string) (head, tail []byte, boundary string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(filename)))
	h.Set("Content-Type", contentType)
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", err
	}
	head = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	return head, bytes.Clone(buf.Bytes()), mw.Boundary(), nil
}

// sizedReader passes exactly want bytes of r through. If r ends early, or
// has more than want bytes, it fails (recording why in mismatch) before
// passing on a byte beyond want, so the request body is never complete.
type sizedReader struct {
	r        io.Reader
	want     int64
	read     int64
	mismatch error
}

func (s *sizedReader) Read(p []byte) (int, error) {
	if s.mismatch != nil {
		return 0, s.mismatch
	}
	if s.read == s.want {
		// Everything announced was sent: r must be exhausted.
		var one [1]byte
		for range 100 {
			n, err := s.r.Read(one[:])
			if n > 0 {
				s.mismatch = fmt.Errorf("the reader has more than the %d bytes announced", s.want)
				return 0, s.mismatch
			}
			if err == io.EOF {
				return 0, io.EOF
			}
			if err != nil {
				return 0, err
			}
		}
		return 0, io.ErrNoProgress
	}
	if rest := s.want - s.read; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := s.r.Read(p)
	s.read += int64(n)
	if err == io.EOF {
		if s.read < s.want {
			s.mismatch = fmt.Errorf("the reader ended after %d of the %d bytes announced", s.read, s.want)
			return n, s.mismatch
		}
		err = nil // the check for extra bytes comes with the next Read
	}
	return n, err
}

// Finalize tells Jumio that acquisition over the API channel is complete and
// processing can start. workflowExecutionURL is the credential's
// api.workflowExecution URL and token its api.token, exactly as Jumio returned
// them. Jumio accepts one finalize per execution; later calls fail (the
// transaction token is consumed).
//
// Jumio API docs: https://documentation.jumio.ai/docs/quickStart/standaloneRiskSignal
func (c *Client) Finalize(ctx context.Context, workflowExecutionURL, token string) (*FinalizeResponse, error) {
	if err := checkCredentialCall(opFinalize, workflowExecutionURL, token); err != nil {
		return nil, err
	}
	var out FinalizeResponse
	if err := c.doBearer(ctx, opFinalize, http.MethodPut, workflowExecutionURL, token, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func checkCredentialCall(op, u, token string) error {
	if u == "" {
		return fmt.Errorf("jumio: %s: %w: empty URL", op, ErrInvalidArgument)
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return fmt.Errorf("jumio: %s: %w: URL is not absolute", op, ErrInvalidArgument)
	}
	if token == "" {
		return fmt.Errorf("jumio: %s: %w: empty credential token", op, ErrInvalidArgument)
	}
	return nil
}

var quoteEscaper = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

func escapeQuotes(s string) string { return quoteEscaper.Replace(s) }
