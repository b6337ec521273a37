package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Series is one line of a chart panel.
type Series struct {
	Name  string
	Color color.RGBA
	X, Y  []float64
}

// panel is one chart: a title, axis labels and lines.
type panel struct {
	title, xLabel, yLabel string
	series                []Series
}

var (
	colIngest    = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colReference = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	colIdeal     = color.RGBA{0x99, 0x99, 0x99, 0xff}
)

// WriteChart draws the offered-load sweep: achieved throughput and p99
// latency of ingest and the reference server against offered load.
func (r *Results) WriteChart(w io.Writer) error {
	var offered, ingT, refT, ingP, refP, ingP50, refP50 []float64
	for _, s := range r.Sweep {
		offered = append(offered, s.Ingest.Offered)
		ingT = append(ingT, s.Ingest.Throughput())
		refT = append(refT, s.Reference.Throughput())
		ingP = append(ingP, msf(s.Ingest.Lat.P(0.99)))
		refP = append(refP, msf(s.Reference.Lat.P(0.99)))
		ingP50 = append(ingP50, msf(s.Ingest.Lat.P(0.5)))
		refP50 = append(refP50, msf(s.Reference.Lat.P(0.5)))
	}
	panels := []panel{
		{title: "Throughput against offered load", xLabel: "offered requests/s", yLabel: "answered requests/s", series: []Series{
			{Name: "offered", Color: colIdeal, X: offered, Y: offered},
			{Name: "ingest", Color: colIngest, X: offered, Y: ingT},
			{Name: "reference", Color: colReference, X: offered, Y: refT},
		}},
		{title: "Latency against offered load (log scale)", xLabel: "offered requests/s", yLabel: "ms (solid p99, thin p50)", series: []Series{
			{Name: "ingest p99", Color: colIngest, X: offered, Y: ingP},
			{Name: "reference p99", Color: colReference, X: offered, Y: refP},
			{Name: "ingest p50", Color: lighten(colIngest), X: offered, Y: ingP50},
			{Name: "reference p50", Color: lighten(colReference), X: offered, Y: refP50},
		}},
	}
	const pw, ph = 560, 380
	img := image.NewRGBA(image.Rect(0, 0, pw*len(panels), ph))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for i, p := range panels {
		p.draw(img, image.Rect(i*pw, 0, (i+1)*pw, ph), i == 1)
	}
	return png.Encode(w, img)
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func lighten(c color.RGBA) color.RGBA {
	return color.RGBA{uint8((int(c.R) + 2*255) / 3), uint8((int(c.G) + 2*255) / 3), uint8((int(c.B) + 2*255) / 3), 0xff}
}

func (p panel) draw(img *image.RGBA, r image.Rectangle, logY bool) {
	plot := image.Rect(r.Min.X+70, r.Min.Y+40, r.Max.X-20, r.Max.Y-60)
	var xmax, ymax float64
	ymin := math.Inf(1)
	for _, s := range p.series {
		for i := range s.X {
			xmax = math.Max(xmax, s.X[i])
			ymax = math.Max(ymax, s.Y[i])
			if s.Y[i] > 0 {
				ymin = math.Min(ymin, s.Y[i])
			}
		}
	}
	if xmax == 0 {
		xmax = 1
	}
	if ymax == 0 {
		ymax = 1
	}
	xmax, ymax = niceCeil(xmax), niceCeil(ymax)
	ylo := 0.0
	if logY {
		ylo = math.Pow(10, math.Floor(math.Log10(math.Max(ymin, 0.01))))
		ymax = math.Pow(10, math.Ceil(math.Log10(ymax)))
	}
	px := func(x float64) int { return plot.Min.X + int(x/xmax*float64(plot.Dx())) }
	py := func(y float64) int {
		if logY {
			y = math.Max(y, ylo)
			return plot.Max.Y - int((math.Log10(y)-math.Log10(ylo))/(math.Log10(ymax)-math.Log10(ylo))*float64(plot.Dy()))
		}
		return plot.Max.Y - int(y/ymax*float64(plot.Dy()))
	}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	black := color.RGBA{0, 0, 0, 0xff}
	// Grid and ticks.
	for i := 0; i <= 5; i++ {
		x := xmax * float64(i) / 5
		line(img, px(x), plot.Min.Y, px(x), plot.Max.Y, grey, 1)
		text(img, px(x)-15, plot.Max.Y+16, fmt.Sprintf("%.0f", x), black)
	}
	if logY {
		for y := ylo; y <= ymax*1.001; y *= 10 {
			line(img, plot.Min.X, py(y), plot.Max.X, py(y), grey, 1)
			text(img, plot.Min.X-60, py(y)+4, trimFloat(y), black)
		}
	} else {
		for i := 0; i <= 5; i++ {
			y := ymax * float64(i) / 5
			line(img, plot.Min.X, py(y), plot.Max.X, py(y), grey, 1)
			text(img, plot.Min.X-60, py(y)+4, fmt.Sprintf("%.0f", y), black)
		}
	}
	line(img, plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y, black, 1)
	line(img, plot.Min.X, plot.Min.Y, plot.Min.X, plot.Max.Y, black, 1)
	text(img, r.Min.X+70, r.Min.Y+20, p.title, black)
	text(img, plot.Min.X+plot.Dx()/2-50, plot.Max.Y+36, p.xLabel, black)
	text(img, r.Min.X+5, r.Min.Y+34, p.yLabel, black)
	// Lines, points and the legend.
	for si, s := range p.series {
		width := 2
		if logY && si >= 2 {
			width = 1
		}
		for i := range s.X {
			if i > 0 {
				line(img, px(s.X[i-1]), py(s.Y[i-1]), px(s.X[i]), py(s.Y[i]), s.Color, width)
			}
			dot(img, px(s.X[i]), py(s.Y[i]), s.Color)
		}
		ly := r.Max.Y - 14
		lx := r.Min.X + 70 + si*120
		line(img, lx, ly-4, lx+18, ly-4, s.Color, 2)
		text(img, lx+22, ly, s.Name, black)
	}
}

func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func trimFloat(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func dot(img *image.RGBA, x, y int, c color.Color) {
	for dx := -2; dx <= 2; dx++ {
		for dy := -2; dy <= 2; dy++ {
			img.Set(x+dx, y+dy, c)
		}
	}
}

// line draws a line of the given width (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		for w := 0; w < width; w++ {
			img.Set(x0, y0+w, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
