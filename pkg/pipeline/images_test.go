package pipeline

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/kycpipe/kycpipe/pkg/jumio"
	"github.com/kycpipe/kycpipe/pkg/jumio/jumiotest"
)

// Jumio's image rules are read from the header alone, and a streamed image
// comes out whole after its header was read.
func TestImageRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		img  []byte
		ct   string
		code string // "" = accepted
	}{
		{"PNG 640×400", jumiotest.PNG(640, 400), "image/png", ""},
		{"JPEG 301×10", jumiotest.JPEG(301, 10), "image/jpeg", ""},
		{"PNG 300×300", jumiotest.PNG(300, 300), "image/png", jumio.CodeOutOfRange},
		{"PNG 8001×2", jumiotest.PNG(8001, 2), "image/png", jumio.CodeOutOfRange},
		{"PNG 8000×2", jumiotest.PNG(8000, 2), "image/png", ""},
		{"truncated JPEG", jumiotest.JPEG(640, 400)[:20], "image/jpeg", jumio.CodeInvalidValue},
		{"JPEG whose frame header is past the first MiB", padJPEG(jumiotest.JPEG(640, 400), 17), "image/jpeg", jumio.CodeInvalidValue},
		{"JPEG with 960 KiB of metadata", padJPEG(jumiotest.JPEG(640, 400), 15), "image/jpeg", ""},
	} {
		br := bufio.NewReaderSize(bytes.NewReader(c.img), 512)
		body, fields := peekImage("FRONT", c.ct, br)
		switch {
		case c.code == "" && len(fields) > 0:
			t.Errorf("%s refused: %+v", c.name, fields)
		case c.code != "" && (len(fields) != 1 || fields[0].Code != c.code || fields[0].Field != "FRONT"):
			t.Errorf("%s: %+v, want %s", c.name, fields, c.code)
		}
		if c.code == "" {
			all, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(all, c.img) {
				t.Errorf("%s: the image read after its header differs (%d of %d bytes, %v)", c.name, len(all), len(c.img), err)
			}
		}
	}
}

// padJPEG inserts n APP1 segments of 64 KiB after a JPEG's SOI marker:
// metadata that a decoder skips before the frame header.
func padJPEG(img []byte, n int) []byte {
	out := append([]byte{}, img[:2]...)
	seg := make([]byte, 0xFFFF-2)
	for range n {
		out = append(out, 0xFF, 0xE1, 0xFF, 0xFF)
		out = append(out, seg...)
	}
	return append(out, img[2:]...)
}
