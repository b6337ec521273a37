package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Uploads (Security II, finding 7). The deadline of a submission's
// JetStream calls used to start before its body was read, so a slow but
// steady client (a 5 MiB image at 250 KB/s) got 503 with Retry-After and
// retried forever, and an upload cut short left its stored chunks behind
// for the image store's TTL, because nats.go purged them with the expired
// context. Now:
//   - reading the body has no overall deadline from the JetStream calls;
//     instead each read must make progress within an idle timeout (three
//     times the publish timeout, 15 s by default), and the whole upload
//     within maxUploadTime;
//   - images are stored with a context that is neither canceled by the
//     client going away nor bounded by a deadline (nats.go bounds each
//     chunk publish itself), so a failed upload's own purge succeeds;
//   - the JetStream deadline of storing the job starts once the body is read;
//   - deleting stored images after a refusal uses a fresh bounded context.

// maxUploadTime bounds a whole request body, however steadily it arrives.
const maxUploadTime = 10 * time.Minute

// uploadIdleTimeout is how long a body read may wait for the client.
func (in *Ingest) uploadIdleTimeout() time.Duration { return 3 * in.cfg.PublishTimeout }

// idleBody moves the connection's read deadline before each read of the
// request body: idle from now, never past end. A client that stops sending
// gets an i/o timeout instead of holding the handler.
type idleBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
}

// withIdleDeadlines replaces r's body with one whose reads time out after
// the upload idle timeout. It works on any server; where deadlines are not
// supported (a test recorder) reads are unbounded as before.
func (in *Ingest) withIdleDeadlines(w http.ResponseWriter, r *http.Request) {
	r.Body = &idleBody{body: r.Body, rc: http.NewResponseController(w), idle: in.uploadIdleTimeout(),
		end: time.Now().Add(maxUploadTime)}
}

func (b *idleBody) Read(p []byte) (int, error) {
	d := time.Now().Add(b.idle)
	if d.After(b.end) {
		d = b.end
	}
	_ = b.rc.SetReadDeadline(d)
	return b.body.Read(p)
}

func (b *idleBody) Close() error { return b.body.Close() }

// storeContext is the context images are stored with: the request's values
// (its trace), without its cancellation or deadline (see above).
func storeContext(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// errImageTooLarge is returned by a limitedImage past its limit, so the
// object store abandons (and purges) the upload instead of completing it.
var errImageTooLarge = errors.New("image larger than the limit")

// limitedImage reads at most n bytes of an image and fails beyond.
type limitedImage struct {
	r io.Reader
	n int64
}

func (l *limitedImage) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errImageTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errImageTooLarge
	}
	return n, err
}

// uploadProblem is the answer to an image upload that failed because of
// the request body, or nil when the failure was JetStream's.
func (in *Ingest) uploadProblem(classifier string, err error) *Problem {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "the body is too large"}
	case errors.Is(err, errImageTooLarge):
		return &Problem{Type: ProblemTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("%s is larger than %d bytes", classifier, in.cfg.MaxImageBytes)}
	case errors.As(err, &ne) && ne.Timeout():
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("the upload stalled: nothing arrived for %s", in.uploadIdleTimeout())}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		return &Problem{Type: ProblemInvalidBody, Status: http.StatusBadRequest, Detail: "the body ended early"}
	}
	return nil
}

// deleteObjects removes stored images, each with a fresh bounded context:
// the request's may be canceled or past its deadline by now.
func (in *Ingest) deleteObjects(ctx context.Context, imgs []pendingImage) {
	base := context.WithoutCancel(ctx)
	for _, im := range imgs {
		if im.object == "" {
			continue
		}
		dctx, cancel := context.WithTimeout(base, in.cfg.PublishTimeout)
		if err := in.images.Delete(dctx, im.object); err != nil && !errors.Is(err, context.Canceled) {
			in.log.Debug("cannot delete a refused submission's image; the store's TTL removes it", zap.String("part", im.classifier), zap.Error(err))
		}
		cancel()
	}
}
