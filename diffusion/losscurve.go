// The loss-curve plot of pre-training (loss.png), and MetricCurve, the same plot of any
// logged metric: raw per-step values as grey dots, their exponential moving average as a
// blue line, in a frame of package internal/plot (axes with a few labelled ticks).
//
// Test: go test ./diffusion -run LossCurve

package diffusion

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"

	"github.com/alignkit/align/internal/plot"
)

// LossSmoothing is the EMA factor of the plotted curve: s_k = a s_{k-1} + (1-a) loss_k,
// with a = min(0.98, 1 - 1/k) so the start is not biased towards zero.
const LossSmoothing = 0.98

var (
	plotGrey = color.RGBA{150, 150, 150, 255}
	plotBlue = color.RGBA{31, 90, 200, 255}
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
	f := plot.NewFrame(title, w, h)
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
	if f.TooSmall() {
		return f.Img
	}
	f.Axes()
	if len(losses) == 0 {
		plot.Text(f.Img, f.Left+10, f.Top+f.Height/2, "no steps yet", plot.Black)
		return f.Img
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
	f.X0, f.X1, f.Y0, f.Y1 = x0, x1, y0, y1
	f.YTicks(4)
	for k := 0; k <= 4; k++ {
		x := x0 + (x1-x0)*float64(k)/4
		f.XTickAt(f.PX(x), fmt.Sprintf("%d", int(math.Round(x))))
	}
	f.XLabel("step")
	for i := range losses {
		f.Img.Set(f.PX(xs[i]), f.PY(losses[i]), plotGrey)
	}
	for i := 1; i < len(smooth); i++ {
		plot.Line(f.Img, f.PX(xs[i-1]), f.PY(smooth[i-1]), f.PX(xs[i]), f.PY(smooth[i]), plotBlue)
	}
	if len(smooth) == 1 {
		f.Img.Set(f.PX(xs[0]), f.PY(smooth[0]), plotBlue)
	}
	return f.Img
}
