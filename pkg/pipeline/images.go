package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// Jumio's image rules (jumio-api.md §10.10, Credentials API reference:
// "JPEG, PNG (max. size 15 MB and max resolution of 8000 x 8000. Longest
// side must be > 300px.)"). Ingest checks them at the door, before anything
// is stored or a Jumio account exists for a job that cannot succeed.
const (
	// MinImageLongestSide is the least the longest side of an image may
	// measure, in pixels (Jumio: "> 300px").
	MinImageLongestSide = 301
	// MaxImageSide is the most either side of an image may measure.
	MaxImageSide = 8000
	// maxImageHeader bounds the bytes read to find an image's dimensions:
	// a JPEG's frame header may follow metadata segments (EXIF, XMP,
	// thumbnails), each at most 64 KiB. The image itself is never held
	// whole in memory.
	maxImageHeader = 1 << 20
)

// errImageHeader is returned when no dimensions are found within
// maxImageHeader bytes.
var errImageHeader = errors.New("no image header within the first MiB")

// imageConfig reads the dimensions of a JPEG or PNG (contentType as sniffed
// by ImageType) from r, reading only its header.
func imageConfig(contentType string, r io.Reader) (image.Config, error) {
	lr := &io.LimitedReader{R: r, N: maxImageHeader}
	var cfg image.Config
	var err error
	switch contentType {
	case "image/png":
		cfg, err = png.DecodeConfig(lr)
	default:
		cfg, err = jpeg.DecodeConfig(lr)
	}
	if err != nil && lr.N <= 0 {
		return cfg, errImageHeader
	}
	return cfg, err
}

// checkImageSize checks an image's dimensions against Jumio's rules and
// returns the violations for field (the image's JSON path or multipart
// field name).
func checkImageSize(field string, cfg image.Config) []jumio.FieldError {
	w, h := cfg.Width, cfg.Height
	switch {
	case max(w, h) < MinImageLongestSide:
		return []jumio.FieldError{{Field: field, Code: jumio.CodeOutOfRange,
			Message: fmt.Sprintf("is %d×%d px; Jumio needs the longest side above 300 px", w, h)}}
	case max(w, h) > MaxImageSide:
		return []jumio.FieldError{{Field: field, Code: jumio.CodeOutOfRange,
			Message: fmt.Sprintf("is %d×%d px; Jumio accepts at most 8000 px a side", w, h)}}
	}
	return nil
}

// checkImage checks an image whose content type was sniffed: its header
// must decode, and its dimensions follow Jumio's rules.
func checkImage(field, contentType string, r io.Reader) []jumio.FieldError {
	cfg, err := imageConfig(contentType, r)
	if err != nil {
		return []jumio.FieldError{{Field: field, Code: jumio.CodeInvalidValue, Message: "is not a readable JPEG or PNG image"}}
	}
	return checkImageSize(field, cfg)
}

// peekImage reads the header of a streamed image from br (whose first bytes
// were sniffed as contentType), checks it, and returns a reader yielding the
// whole image again: the header read so far, then the rest of br. At most
// maxImageHeader bytes are held.
func peekImage(field, contentType string, br *bufio.Reader) (io.Reader, []jumio.FieldError) {
	var head bytes.Buffer
	fields := checkImage(field, contentType, io.TeeReader(br, &head))
	return io.MultiReader(&head, br), fields
}
