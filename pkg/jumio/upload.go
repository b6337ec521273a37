package jumio

import (
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
// field "file". The image is streamed from r, never buffered whole, so r is
// read once: a failed upload needs a fresh reader. filename and contentType
// (image/jpeg or image/png) describe the file. partURL and token are the
// credential's api.parts URL and api.token exactly as Jumio returned them.
//
// Jumio API docs: https://documentation.jumio.ai/developer-resources/api/credentials
func (c *Client) UploadPart(ctx context.Context, partURL, token, filename, contentType string, r io.Reader) (*UploadResponse, error) {
	if err := checkCredentialCall(opUploadPart, partURL, token); err != nil {
		return nil, err
	}
	if r == nil {
		return nil, fmt.Errorf("jumio: %s: %w: nil reader", opUploadPart, ErrInvalidArgument)
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
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, escapeQuotes(filename)))
		h.Set("Content-Type", contentType)
		part, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := c.newRequest(ctx, opUploadPart, http.MethodPost, partURL, pr)
	if err != nil {
		pr.CloseWithError(err)
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	var out UploadResponse
	if err := c.do(req, opUploadPart, &out); err != nil {
		pr.CloseWithError(err)
		return nil, err
	}
	return &out, nil
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
