package upgrade

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/messages"
)

// The old release's known defects are told apart by their error, and an
// image read from a lagging replica only when an old release's worker wrote
// the letter: the same error from the new release fails the run.
func TestKnownOldDefects(t *testing.T) {
	dir := t.TempDir()
	logs := map[string]string{
		"worker-2.1.9aa777e.log": `{"level":"info","msg":"jumio account ready","job_id":"job_old"}` + "\n" +
			`{"level":"warn","msg":"gave up on message","job_id":"job_old","error":"image FRONT is no longer in the image store (expired?)"}` + "\n" +
			"not json\n",
		"worker-1.3.current.log": `{"level":"warn","msg":"gave up on message","job_id":"job_new","error":"image FRONT is no longer in the image store (expired?)"}` + "\n",
		"retriever-1.1.9aa777e.log": `{"level":"warn","msg":"gave up on message","job_id":"job_retr"}` + "\n",
	}
	for name, body := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{o: Options{WorkDir: dir, Old: Release{Name: "9aa777e"}, New: Release{Name: "current"}}}
	gaveUp, err := h.oldReleaseGaveUp()
	if err != nil {
		t.Fatal(err)
	}
	if len(gaveUp) != 1 || !gaveUp["job_old"] {
		t.Fatalf("old release gave up on %v, want job_old only", gaveUp)
	}
	missing := "image FRONT is no longer in the image store (expired?)"
	for _, tc := range []struct {
		d    deadLetter
		want bool
	}{
		{deadLetter{job: "job_x", stage: messages.StageWorker, reason: messages.ReasonTerminal, error: "jumio: upload part: 403 Forbidden: The Content-Length header is required"}, true},
		{deadLetter{job: "job_old", stage: messages.StageWorker, reason: messages.ReasonTerminal, error: missing}, true},
		{deadLetter{job: "job_new", stage: messages.StageWorker, reason: messages.ReasonTerminal, error: missing}, false},
		{deadLetter{job: "job_old", stage: messages.StageRetriever, reason: messages.ReasonTerminal, error: missing}, false},
		{deadLetter{job: "job_old", stage: messages.StageWorker, reason: messages.ReasonTerminal, error: "jumio: 400 Bad Request"}, false},
	} {
		if got := tc.d.knownOldDefect(gaveUp); got != tc.want {
			t.Errorf("%+v: knownOldDefect = %v, want %v", tc.d, got, tc.want)
		}
	}
}
