package jumiotest

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"sync"

	"github.com/kycpipe/kycpipe/pkg/jumio"
)

// PNG returns a valid PNG image of w×h pixels (a gradient with a card-like
// frame), for uploading parts in tests: PNG(640, 400) passes Jumio's
// checks, PNG(300, 200) is too small. It panics if w or h is not positive.
func PNG(w, h int) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, testImage(w, h)); err != nil {
		panic(fmt.Sprintf("jumiotest: encode PNG: %v", err))
	}
	return buf.Bytes()
}

// JPEG returns a valid JPEG image of w×h pixels, like [PNG]. It panics if
// w or h is not positive.
func JPEG(w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, testImage(w, h), &jpeg.Options{Quality: 80}); err != nil {
		panic(fmt.Sprintf("jumiotest: encode JPEG: %v", err))
	}
	return buf.Bytes()
}

func testImage(w, h int) image.Image {
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("jumiotest: image size must be positive, got %dx%d", w, h))
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := range w {
			c := color.RGBA{R: uint8(40 + 150*x/w), G: uint8(90 + 100*y/h), B: 170, A: 255}
			if x < w/20 || x >= w-w/20 || y < h/20 || y >= h-h/20 {
				c = color.RGBA{R: 240, G: 240, B: 235, A: 255}
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, c.A
		}
	}
	return img
}

// Synthetic images for parts acquired by the simulated web user, encoded
// once per process.
var (
	documentImage = sync.OnceValue(func() []byte { return JPEG(1000, 630) })
	selfieImage   = sync.OnceValue(func() []byte { return JPEG(480, 640) })
	livenessImage = sync.OnceValue(func() []byte { return JPEG(360, 480) })
)

func warmWebImages() {
	documentImage()
	selfieImage()
	livenessImage()
}

// webParts gives a credential acquired through the web flow its parts, as
// Jumio's UI would: document sides, a selfie, or a facemap with liveness
// frames. Parts uploaded before are kept.
func webParts(c *credential) {
	set := func(cls string, data []byte) {
		if c.parts[cls] == nil {
			ct := "image/jpeg"
			if data == nil {
				ct = ""
			}
			c.parts[cls] = &part{contentType: ct, data: data}
		}
	}
	switch c.spec.Category {
	case jumio.CategoryID, jumio.CategoryDocument:
		parts := c.spec.Parts
		if len(parts) == 0 {
			parts = []string{jumio.PartFront}
		}
		for _, p := range parts {
			if p != jumio.PartPreparedData {
				set(p, documentImage())
			}
		}
	case jumio.CategorySelfie:
		set(jumio.PartFace, selfieImage())
	case jumio.CategoryFacemap:
		set("FACEMAP", nil) // binary facemap: listed without href
		for i := 1; i <= 6; i++ {
			set(fmt.Sprintf("LIVENESS_%d", i), livenessImage())
		}
	}
}
