// Package plot draws align's PNG line plots with image/draw and the 7x13 bitmap font of
// golang.org/x/image: a Frame (a white canvas with a title, a plot area inside fixed margins,
// axes, labelled ticks and grid lines) that maps data to pixels, and the primitives the
// curves are drawn with. The training curves (diffusion.MetricCurve, loss.png and the
// fine-tuning panels) and the experiment curves (align eval plot) use it.
//
// Test: go test ./internal/plot
package plot

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Colours of the frame.
var (
	Black = color.RGBA{0, 0, 0, 255}
	White = color.RGBA{255, 255, 255, 255}
	Light = color.RGBA{235, 235, 235, 255} // grid lines
)

// Palette colours the series of a plot with several (one per reward dimension), in order:
// blue, orange, green, purple, red, then again.
var Palette = []color.RGBA{{31, 90, 200, 255}, {220, 110, 20, 255}, {40, 150, 60, 255}, {150, 60, 170, 255}, {200, 40, 40, 255}}

// Margins of the plot area in a Frame's canvas: y tick labels on the left, the title above,
// x tick labels and the x label below.
const (
	MarginLeft   = 64
	MarginRight  = 16
	MarginTop    = 24
	MarginBottom = 36
)

// Frame is a canvas with a plot area at (Left, Top) of Width x Height pixels whose edges are
// the data coordinates X0, X1 (left, right) and Y0, Y1 (bottom, top).
type Frame struct {
	Img                      *image.RGBA
	Left, Top, Width, Height int
	X0, X1, Y0, Y1           float64
}

// NewFrame returns a white w x h canvas with title written above the plot area.
func NewFrame(title string, w, h int) *Frame {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	Text(img, MarginLeft, 16, title, Black)
	return &Frame{Img: img, Left: MarginLeft, Top: MarginTop, Width: w - MarginLeft - MarginRight, Height: h - MarginTop - MarginBottom}
}

// TooSmall reports whether the plot area is too small to draw in (under 10 pixels a side).
func (f *Frame) TooSmall() bool { return f.Width < 10 || f.Height < 10 }

// Axes draws the x axis along the bottom of the plot area and the y axis along its left.
func (f *Frame) Axes() {
	HLine(f.Img, f.Left, f.Left+f.Width, f.Top+f.Height, Black)
	VLine(f.Img, f.Left, f.Top, f.Top+f.Height, Black)
}

// PX is the pixel column of x: Left + round((x - X0)/(X1 - X0) * Width).
func (f *Frame) PX(x float64) int {
	return f.Left + int(math.Round((x-f.X0)/(f.X1-f.X0)*float64(f.Width)))
}

// PY is the pixel row of y, clamped to [Y0, Y1]: Top + Height - round((y - Y0)/(Y1 - Y0) * Height).
func (f *Frame) PY(y float64) int {
	y = math.Max(f.Y0, math.Min(y, f.Y1))
	return f.Top + f.Height - int(math.Round((y-f.Y0)/(f.Y1-f.Y0)*float64(f.Height)))
}

// YTicks draws n+1 evenly spaced ticks from Y0 to Y1 on the y axis, labelled with %.3g, and
// a grid line across the plot area at each but the lowest (the x axis).
func (f *Frame) YTicks(n int) {
	for k := 0; k <= n; k++ {
		y := f.Y0 + (f.Y1-f.Y0)*float64(k)/float64(n)
		yy := f.PY(y)
		if k > 0 {
			HLine(f.Img, f.Left+1, f.Left+f.Width, yy, Light)
		}
		HLine(f.Img, f.Left-4, f.Left, yy, Black)
		Text(f.Img, 4, yy+4, fmt.Sprintf("%.3g", y), Black)
	}
}

// XTickAt draws a tick at pixel column xx under the x axis with label centred below it.
func (f *Frame) XTickAt(xx int, label string) {
	VLine(f.Img, xx, f.Top+f.Height, f.Top+f.Height+4, Black)
	Text(f.Img, xx-len(label)*7/2, f.Top+f.Height+18, label, Black)
}

// XLabel writes the name of the x axis at the bottom right of the canvas.
func (f *Frame) XLabel(s string) {
	Text(f.Img, f.Left+f.Width-len(s)*7, f.Img.Bounds().Dy()-4, s, Black)
}

// HLine draws the pixels xa..xb of row y.
func HLine(img *image.RGBA, xa, xb, y int, c color.RGBA) {
	for x := xa; x <= xb; x++ {
		img.SetRGBA(x, y, c)
	}
}

// VLine draws the pixels ya..yb of column x.
func VLine(img *image.RGBA, x, ya, yb int, c color.RGBA) {
	for y := ya; y <= yb; y++ {
		img.SetRGBA(x, y, c)
	}
}

// Line draws a segment with Bresenham's algorithm.
func Line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) { segment(img, xa, ya, xb, yb, c, 0) }

// Dashed draws a segment whose pixels alternate between period drawn and period skipped,
// counted along the segment from (xa, ya); period 0 draws it solid.
func Dashed(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA, period int) {
	segment(img, xa, ya, xb, yb, c, period)
}

// segment is Bresenham's algorithm; the n-th pixel (from 0) is drawn when period is 0 or
// (n / period) is even.
func segment(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA, period int) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := 1, 1
	if xa > xb {
		sx = -1
	}
	if ya > yb {
		sy = -1
	}
	err := dx + dy
	for n := 0; ; n++ {
		if period == 0 || (n/period)%2 == 0 {
			img.SetRGBA(xa, ya, c)
		}
		if xa == xb && ya == yb {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			xa += sx
		}
		if e2 <= dx {
			err += dx
			ya += sy
		}
	}
}

// Square draws a (2r+1)-pixel square marker centred on (x, y), filled or as an outline.
func Square(img *image.RGBA, x, y, r int, c color.RGBA, filled bool) {
	for yy := y - r; yy <= y+r; yy++ {
		if filled || yy == y-r || yy == y+r {
			HLine(img, x-r, x+r, yy, c)
		} else {
			img.SetRGBA(x-r, yy, c)
			img.SetRGBA(x+r, yy, c)
		}
	}
}

// Text writes s with its baseline at (x, y).
func Text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
