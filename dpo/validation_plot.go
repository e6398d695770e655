// validation.png: the course of a run's validations in two panels, one above the other: each
// dimension's mean z-score over the validation images by step, and its win rate against the
// first validation (the dashed line at 0.5 is no change) by step; one colour per dimension
// (plot.Palette), named in the legend at the top right of each panel.
//
// Test: go test ./dpo -run ValidationPlot
package dpo

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"

	"github.com/alignkit/align/internal/plot"
)

// ValidationPlotFile is the plot in the output directory.
const ValidationPlotFile = "validation.png"

// validationMarker is the half-width of the markers of the validations; validationLegend
// the width of the legend's column.
const validationMarker, validationLegend = 3, 70

// ValidationPlot draws the entries' two panels, each w x h. Entries without scores (a run
// validating with grids only) are left out.
func ValidationPlot(entries []ValidationEntry, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, 2*h))
	var dims []string
	for _, e := range entries {
		if e.Dims != nil {
			dims = e.Dims
			break
		}
	}
	panels := []struct {
		title  string
		get    func(e *ValidationEntry, d int) (float64, bool)
		y0, y1 float64 // fixed range; NaN: the values' own
	}{
		{"validation: mean z-score by step", func(e *ValidationEntry, d int) (float64, bool) {
			if e.ZMean == nil {
				return 0, false
			}
			return e.ZMean[d], true
		}, math.NaN(), math.NaN()},
		{"validation: win rate against the first validation (same prompt and seed)", func(e *ValidationEntry, d int) (float64, bool) {
			if e.WinRate == nil {
				return 0, false
			}
			return e.WinRate[d], true
		}, 0, 1},
	}
	for k, p := range panels {
		f := plot.NewFrame(p.title, w, h)
		series := make([][][2]float64, len(dims)) // per dimension: (step, value) of the validations
		for i := range entries {
			for d := range dims {
				if y, ok := p.get(&entries[i], d); ok {
					series[d] = append(series[d], [2]float64{float64(entries[i].Step), y})
				}
			}
		}
		if !f.TooSmall() {
			drawValidationPanel(f, dims, series, p.y0, p.y1)
			if k == 1 && len(series) > 0 && len(series[0]) > 0 {
				y := f.PY(0.5)
				plot.Dashed(f.Img, f.Left+1, y, f.Left+f.Width, y, plot.Black, 4)
			}
		}
		draw.Draw(img, image.Rect(0, k*h, w, (k+1)*h), f.Img, image.Point{}, draw.Src)
	}
	return img
}

// drawValidationPanel draws the axes over the points' range (y0, y1 where not NaN) and one
// line with markers per dimension, with the legend.
func drawValidationPanel(f *plot.Frame, dims []string, series [][][2]float64, y0, y1 float64) {
	f.Width -= validationLegend
	f.Axes()
	var xs, ys []float64
	for _, pts := range series {
		for _, p := range pts {
			xs, ys = append(xs, p[0]), append(ys, p[1])
		}
	}
	if len(xs) == 0 {
		plot.Text(f.Img, f.Left+10, f.Top+f.Height/2, "no scored validations yet", plot.Black)
		return
	}
	x0, x1 := slices.Min(xs), slices.Max(xs)
	if x1 == x0 {
		x0, x1 = x0-1, x1+1
	}
	pad := 0.04 * (x1 - x0)
	f.X0, f.X1 = x0-pad, x1+pad
	if math.IsNaN(y0) {
		y0, y1 = slices.Min(ys), slices.Max(ys)
		if y1 == y0 {
			y0, y1 = y0-0.5, y1+0.5
		}
		pad := 0.08 * (y1 - y0)
		y0, y1 = y0-pad, y1+pad
	}
	f.Y0, f.Y1 = y0, y1
	f.YTicks(4)
	// The validations' own steps where they are few, else five evenly spaced ones.
	ticks := slices.Compact(slices.Sorted(slices.Values(xs)))
	if len(ticks) > 8 {
		ticks = ticks[:0]
		for k := 0; k <= 4; k++ {
			ticks = append(ticks, math.Round(x0+(x1-x0)*float64(k)/4))
		}
	}
	for _, x := range ticks {
		f.XTickAt(f.PX(x), fmt.Sprintf("%d", int(x)))
	}
	f.XLabel("step")
	for d, dim := range dims {
		c := plot.Palette[d%len(plot.Palette)]
		pts := series[d]
		for i, p := range pts {
			if i > 0 {
				plot.Line(f.Img, f.PX(pts[i-1][0]), f.PY(pts[i-1][1]), f.PX(p[0]), f.PY(p[1]), c)
			}
			plot.Square(f.Img, f.PX(p[0]), f.PY(p[1]), validationMarker, c, true)
		}
		legend(f, d, dim, c)
	}
}

// legend names dimension d in its colour in the column right of the plot area, a line each.
func legend(f *plot.Frame, d int, dim string, c color.RGBA) {
	x, y := f.Left+f.Width+16, f.Top+14+14*d
	plot.Square(f.Img, x, y-4, validationMarker, c, true)
	plot.Text(f.Img, x+10, y, dim, plot.Black)
}
