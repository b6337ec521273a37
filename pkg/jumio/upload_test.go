package jumio_test

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// slowReader yields its data in small chunks, like a network stream.
type slowReader struct {
	data  []byte
	reads atomic.Int32
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 4096)], r.data)
	r.data = r.data[n:]
	r.reads.Add(1)
	return n, nil
}

// failingReader yields some bytes, then a read error.
type failingReader struct{ n int }

var errDisk = errors.New("disk on fire")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errDisk
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// apiAccount is an ID workflow request Jumio accepts for API uploads:
// end-user consent and the document's country and type.
func apiAccount(ref string) *jumio.AccountRequest {
	return &jumio.AccountRequest{
		CustomerInternalReference: ref,
		WorkflowDefinition: jumio.WorkflowDefinition{Key: jumio.WorkflowIDIV, Credentials: []jumio.CredentialDefinition{{
			Category: jumio.CategoryID,
			Country:  &jumio.PredefinedValue{Values: []string{"USA"}},
			Type:     &jumio.PredefinedValue{Values: []string{"DRIVING_LICENSE"}},
		}}},
		UserConsent: &jumio.UserConsent{
			UserIP:       "192.0.2.10",
			UserLocation: &jumio.UserLocation{Country: "USA", State: "CA"},
			Consent:      &jumio.Consent{Obtained: "yes", ObtainedAt: "2026-03-14T09:00:00.000Z"},
		},
	}
}

// uploadTargets creates an API account and returns its ID and SELFIE
// credentials.
func uploadTargets(t *testing.T, c *jumio.Client, ref string) (acct *jumio.AccountResponse, id, selfie jumio.CredentialStart) {
	t.Helper()
	acct, err := c.CreateAccount(t.Context(), apiAccount(ref))
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range acct.WorkflowExecution.Credentials {
		switch cr.Category {
		case jumio.CategoryID:
			id = cr
		case jumio.CategorySelfie:
			selfie = cr
		}
	}
	return acct, id, selfie
}

func TestUploadPart(t *testing.T) {
	t.Parallel()
	// The simulator refuses chunked uploads (its default, as Jumio expects
	// Content-Length): every upload below must carry one.
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()
	acct, idCred, selfie := uploadTargets(t, c, "ref-img")
	front, _ := idCred.API.PartURL(jumio.PartFront)
	// A non-seekable reader in small chunks: the file is streamed.
	img := jumiotest.PNG(1200, 800)
	src := &slowReader{data: img}
	if _, err := c.UploadPart(ctx, front, idCred.API.Token, "front.png", "image/png", int64(len(img)), src); err != nil {
		t.Fatal(err)
	}
	if src.reads.Load() < 2 {
		t.Errorf("image read in %d chunk(s)", src.reads.Load())
	}
	face, _ := selfie.API.PartURL(jumio.PartFace)
	// Too small for Jumio (the longest side must exceed 300 px).
	tiny := jumiotest.PNG(200, 150)
	_, err := c.UploadPart(ctx, face, selfie.API.Token, "face.png", "image/png", int64(len(tiny)), bytes.NewReader(tiny))
	if !errors.Is(err, jumio.ErrBadRequest) {
		t.Errorf("tiny image: %v", err)
	}
	_, err = c.UploadPart(ctx, face, selfie.API.Token, "face.txt", "text/plain", 12, strings.NewReader("not an image"))
	if err == nil || jumio.IsRetryable(err) {
		t.Errorf("text upload: %v", err)
	}
	jpg := jumiotest.JPEG(480, 640)
	if _, err := c.UploadPart(ctx, face, selfie.API.Token, "face.jpg", "image/jpeg", int64(len(jpg)), bytes.NewReader(jpg)); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if n := st.UploadsByExecution[acct.WorkflowExecution.ID]; n != 2 {
		t.Errorf("uploads = %d", n)
	}
	if st.ChunkedRequests != 0 || st.Refusals[jumiotest.RefusalContentLength] != 0 || st.Requests["upload_part"] != 4 {
		t.Errorf("a chunked upload reached the simulator: %+v", st)
	}
}

// TestUploadPartContentLength checks the request on the wire: a
// Content-Length equal to the body, no chunked encoding, and a multipart
// body whose field "file" holds exactly the image.
func TestUploadPartContentLength(t *testing.T) {
	t.Parallel()
	type seen struct {
		contentLength int64
		chunked       bool
		bodyLen       int
		file          []byte
		filename      string
		fileType      string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{contentLength: r.ContentLength, bodyLen: len(body)}
		for _, te := range r.TransferEncoding {
			s.chunked = s.chunked || te == "chunked"
		}
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err == nil {
			mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
			if p, err := mr.NextPart(); err == nil && p.FormName() == "file" {
				s.filename, s.fileType = p.FileName(), p.Header.Get("Content-Type")
				s.file, _ = io.ReadAll(p)
			}
		}
		got <- s
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"account":{"id":"a"},"workflowExecution":{"id":"w"},"api":{"token":"t","parts":{}}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := jumio.New(jumio.Credentials{ClientID: "id", ClientSecret: "secret"}, jumio.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	img := jumiotest.JPEG(640, 480)
	if _, err := c.UploadPart(t.Context(), srv.URL+"/parts/FRONT", "tx", `we"ird.jpg`, "image/jpeg", int64(len(img)),
		&slowReader{data: img}); err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s.chunked || s.contentLength != int64(s.bodyLen) || s.contentLength <= int64(len(img)) {
		t.Errorf("Content-Length %d, chunked %v, body %d bytes", s.contentLength, s.chunked, s.bodyLen)
	}
	if !bytes.Equal(s.file, img) || s.filename != `we"ird.jpg` || s.fileType != "image/jpeg" {
		t.Errorf("file part: %d bytes, name %q, type %q", len(s.file), s.filename, s.fileType)
	}
}

func TestUploadPartSizeMismatch(t *testing.T) {
	t.Parallel()
	c, sim := setup(t, jumiotest.Options{})
	ctx := t.Context()
	_, idCred, _ := uploadTargets(t, c, "ref-size")
	front, _ := idCred.API.PartURL(jumio.PartFront)
	img := jumiotest.PNG(640, 400)
	n := int64(len(img))

	for name, size := range map[string]int64{"zero size": 0, "negative size": -1} {
		_, err := c.UploadPart(ctx, front, idCred.API.Token, "f.png", "image/png", size, bytes.NewReader(img))
		if !errors.Is(err, jumio.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if st := sim.Stats(); st.Requests["upload_part"] != 0 {
		t.Fatalf("an invalid size reached the simulator: %+v", st.Requests)
	}
	for name, size := range map[string]int64{"reader shorter than size": n + 100, "reader longer than size": n - 100} {
		_, err := c.UploadPart(ctx, front, idCred.API.Token, "f.png", "image/png", size, &slowReader{data: img})
		if !errors.Is(err, jumio.ErrInvalidArgument) || jumio.IsRetryable(err) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A read error is the reader's, not a size mismatch: retryable.
	_, err := c.UploadPart(ctx, front, idCred.API.Token, "f.png", "image/png", n, &failingReader{n: int(n / 2)})
	if !errors.Is(err, errDisk) || errors.Is(err, jumio.ErrInvalidArgument) || !jumio.IsRetryable(err) {
		t.Errorf("read error: %v", err)
	}
	if st := sim.Stats(); st.Uploads != 0 || st.ChunkedRequests != 0 {
		t.Errorf("an incomplete upload was accepted: %+v", st)
	}
	// The execution is untouched: the full image still uploads.
	if _, err := c.UploadPart(ctx, front, idCred.API.Token, "f.png", "image/png", n, bytes.NewReader(img)); err != nil {
		t.Fatal(err)
	}
}
