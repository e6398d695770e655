// The loss-curve plot of pre-training (loss.png), and MetricCurve, the same plot of any
// logged metric: raw per-step values as grey dots, their exponential moving average as a
// blue line, axes with a few labelled ticks. Drawn with image/draw and the 7x13 bitmap font
// of golang.org/x/image.
//
// Test: go test ./diffusion -run LossCurve

package diffusion

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// LossSmoothing is the EMA factor of the plotted curve: s_k = a s_{k-1} + (1-a) loss_k,
// with a = min(0.98, 1 - 1/k) so the start is not biased towards zero.
const LossSmoothing = 0.98

var (
	plotGrey  = color.RGBA{150, 150, 150, 255}
	plotBlue  = color.RGBA{31, 90, 200, 255}
	plotBlack = color.RGBA{0, 0, 0, 255}
	plotLight = color.RGBA{235, 235, 235, 255}
)

// LossCurve draws the losses of log (skipped steps left out) on a w x h image.
func LossCurve(log []LogEntry, w, h int) *image.RGBA {
	var steps, losses []float64
	for _, e := range log {
		if !e.Skipped {
			steps, losses = append(steps, float64(e.Step)), append(losses, e.Loss)
		}
	}
	return MetricCurve("training loss (grey: per step, blue: EMA 0.98)", steps, losses, w, h)
}

// MetricCurve draws one logged metric on a w x h image: the values at steps (non-finite
// ones left out) as grey dots, their exponential moving average (LossSmoothing) as a blue
// line, the title above. A series without negative values is drawn from 0 up to the
// smoothed curve's range (per-step outliers above twice the curve are cut off), a series
// with negative values over its whole range. The loss plot of pre-training and the metric
// panels of fine-tuning (package dpo) use it.
func MetricCurve(title string, steps, values []float64, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	const left, right, top, bottom = 64, 16, 24, 36
	pw, ph := w-left-right, h-top-bottom
	drawText(img, left, 16, title, plotBlack)
	var xs, losses, smooth []float64
	s := 0.0
	for i, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		k := float64(len(losses) + 1)
		a := math.Min(LossSmoothing, 1-1/k)
		s = a*s + (1-a)*v
		xs, losses, smooth = append(xs, steps[i]), append(losses, v), append(smooth, s)
	}
	if pw < 10 || ph < 10 {
		return img
	}
	// Axes.
	hline(img, left, left+pw, top+ph, plotBlack)
	vline(img, left, top, top+ph, plotBlack)
	if len(losses) == 0 {
		drawText(img, left+10, top+ph/2, "no steps yet", plotBlack)
		return img
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	if x1 == x0 {
		x1 = x0 + 1
	}
	y0, y1 := 0.0, 0.0
	if slices.Min(losses) >= 0 {
		for i := range losses {
			y1 = math.Max(y1, math.Max(smooth[i], math.Min(losses[i], 2*smooth[i])))
		}
		y1 *= 1.05
		if y1 <= 0 {
			y1 = 1
		}
	} else {
		y0, y1 = math.Min(slices.Min(losses), 0), math.Max(slices.Max(losses), 0)
		pad := 0.05 * (y1 - y0)
		y0, y1 = y0-pad, y1+pad
	}
	px := func(x float64) int { return left + int(math.Round((x-x0)/(x1-x0)*float64(pw))) }
	py := func(y float64) int {
		y = math.Max(y0, math.Min(y, y1))
		return top + ph - int(math.Round((y-y0)/(y1-y0)*float64(ph)))
	}
	// Ticks and grid lines.
	for k := 0; k <= 4; k++ {
		y := y0 + (y1-y0)*float64(k)/4
		yy := py(y)
		if k > 0 {
			hline(img, left+1, left+pw, yy, plotLight)
		}
		hline(img, left-4, left, yy, plotBlack)
		drawText(img, 4, yy+4, fmt.Sprintf("%.3g", y), plotBlack)
		x := x0 + (x1-x0)*float64(k)/4
		xx := px(x)
		vline(img, xx, top+ph, top+ph+4, plotBlack)
		label := fmt.Sprintf("%d", int(math.Round(x)))
		drawText(img, xx-len(label)*7/2, top+ph+18, label, plotBlack)
	}
	drawText(img, left+pw-28, h-4, "step", plotBlack)
	for i := range losses {
		img.Set(px(xs[i]), py(losses[i]), plotGrey)
	}
	for i := 1; i < len(smooth); i++ {
		line(img, px(xs[i-1]), py(smooth[i-1]), px(xs[i]), py(smooth[i]), plotBlue)
	}
	if len(smooth) == 1 {
		img.Set(px(xs[0]), py(smooth[0]), plotBlue)
	}
	return img
}

func hline(img *image.RGBA, xa, xb, y int, c color.RGBA) {
	for x := xa; x <= xb; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, ya, yb int, c color.RGBA) {
	for y := ya; y <= yb; y++ {
		img.SetRGBA(x, y, c)
	}
}

// line draws a segment with Bresenham's algorithm.
func line(img *image.RGBA, xa, ya, xb, yb int, c color.RGBA) {
	dx, dy := abs(xb-xa), -abs(yb-ya)
	sx, sy := 1, 1
	if xa > xb {
		sx = -1
	}
	if ya > yb {
		sy = -1
	}
	err := dx + dy
	for {
		img.SetRGBA(xa, ya, c)
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

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// drawText writes s with its baseline at (x, y).
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}
