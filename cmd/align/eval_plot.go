// align eval plot: the curve of a swept sampling knob (the Flow-NRG guidance scale in make
// steering-experiment) from several align eval reports against one baseline: the
// candidate's mean z-score per (reward model, dimension) at each run's x, the baseline's
// mean at --baseline-x, as a PNG drawn with package internal/plot.
//
// Test: go test ./cmd/align -run EvalPlot
package main

import (
	"cmp"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/plot"
)

// EvalPlotOptions are the arguments and flags of `align eval plot`.
type EvalPlotOptions struct {
	Runs      []xReport // X=REPORT.json arguments, in order
	Output    string    // -o, --output: the PNG, written atomically
	Title     string
	XLabel    string
	BaselineX float64 // where the baseline's mean is drawn
	LogX      bool
}

type xReport struct {
	X    float64
	File string
}

// Size of the plot in pixels, and the width of the legend's column right of the plot area
// (16 pixels of space, then 18 characters of 7 pixels).
const evalPlotW, evalPlotH, evalPlotLegend = 800, 440, 150

func newCmdEvalPlot(runF func(*EvalPlotOptions) error) *cobra.Command {
	opts := &EvalPlotOptions{}
	cmd := &cobra.Command{
		Use:   "plot X=REPORT.json... -o PLOT.png",
		Short: "Plot mean reward z-scores of several align eval reports against a swept value",
		Long: `Draw the curve of a swept sampling value, such as the Flow-NRG guidance scale, from align
eval reports (--output files) that all compare against the same baseline samples: one line
per reward model role and dimension (colour: the dimension; solid with filled markers: the
first role, usually the reward used for steering; dashed with hollow markers: the next,
usually the held-out judge) through the candidate's mean z-score at each report's X and the
baseline's mean z-score at --baseline-x (default 0: no steering). Each candidate point
has a bar of the 95% interval of its paired change from the baseline, mean_baseline +
[lo, hi] of the report's Δz interval.

The reports must compare the same pairs under the same roles and dimensions and agree on
the baseline's means, that is be scored on the same baseline set by the same models. Xs are
distinct and differ from --baseline-x.

--log-x puts x on a log scale, for values that double or grow by a factor: every X must be
> 0, and a baseline at x = 0 is drawn one step left of the smallest X (the step from the
smallest to the next X on the log axis), with a break mark on the axis. The PNG is written
atomically.`,
		Example: `  $ align eval plot 25=exp/eval-nrg-s25.json 50=exp/eval-nrg-s50.json 100=exp/eval-nrg-s100.json \
      --x-label "reward guidance scale w" --title "Flow-NRG, TA-only" --log-x -o exp/curve.png`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				xs, file, ok := strings.Cut(a, "=")
				x, err := strconv.ParseFloat(xs, 64)
				if !ok || file == "" || err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
					return flagErrorf("argument %q: want X=REPORT.json with X a finite number", a)
				}
				opts.Runs = append(opts.Runs, xReport{x, file})
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return evalPlotRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "", "the PNG file to write (required)")
	f.StringVar(&opts.Title, "title", "mean z-score per reward model and dimension", "title above the plot")
	f.StringVar(&opts.XLabel, "x-label", "x", "name of the x axis")
	f.Float64Var(&opts.BaselineX, "baseline-x", 0, "x at which the baseline's mean is drawn")
	f.BoolVar(&opts.LogX, "log-x", false, "log-scaled x axis (every X > 0; a baseline at 0 is drawn one step left of the smallest X)")
	return cmd
}

func (o *EvalPlotOptions) validate() error {
	switch {
	case o.Output == "":
		return flagErrorf("--output is required: the PNG file to write")
	case math.IsInf(o.BaselineX, 0) || math.IsNaN(o.BaselineX):
		return flagErrorf("--baseline-x must be a finite number, got %v", o.BaselineX)
	case o.LogX && o.BaselineX < 0:
		return flagErrorf("--log-x: --baseline-x must be >= 0, got %v", o.BaselineX)
	}
	seen := map[float64]string{o.BaselineX: "--baseline-x"}
	for _, r := range o.Runs {
		if prev, dup := seen[r.X]; dup {
			return flagErrorf("%v=%s: x %v is taken by %s; every run needs its own x", r.X, r.File, r.X, prev)
		}
		if o.LogX && r.X <= 0 {
			return flagErrorf("%v=%s: --log-x needs every X > 0", r.X, r.File)
		}
		seen[r.X] = r.File
	}
	return nil
}

// plotPoint is a point of a curve: the mean z-score Y at X and the 95% interval [Lo, Hi] of
// the candidate's paired change added to the baseline's mean (Lo = Hi = Y at the baseline).
type plotPoint struct{ X, Y, Lo, Hi float64 }

// plotCurve is the curve of one model role and dimension, its points in increasing x.
type plotCurve struct {
	evalColumn
	Points []plotPoint
}

// evalPlotCurves reads the reports and builds one curve per (role, dimension): the baseline
// point at baselineX, then each report's candidate mean at its x.
func evalPlotCurves(runs []xReport, baselineX float64) ([]plotCurve, error) {
	var first *evalReport
	var curves []plotCurve
	for i, run := range runs {
		rep, err := readEvalReport(run.File)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = rep
			for _, m := range rep.Models {
				for _, d := range m.Dims {
					curves = append(curves, plotCurve{evalColumn: evalColumn{m.Role, d.Dim},
						Points: []plotPoint{{baselineX, d.MeanBaseline, d.MeanBaseline, d.MeanBaseline}}})
				}
			}
		} else if err := checkComparable(rep, run.File, first, runs[0].File); err != nil {
			return nil, err
		}
		k := 0
		for _, m := range rep.Models {
			for _, d := range m.Dims {
				c := &curves[k]
				// Scores of one set under one model are deterministic, so one baseline gives
				// bit-identical means (the JSON round trip of a float64 is exact).
				if mb := c.Points[0].Y; d.MeanBaseline != mb {
					return nil, fmt.Errorf("%s: the baseline's mean z-score of %s %s is %.6g, in %s %.6g: "+
						"the reports compare against different baselines or reward models", run.File, m.Role, d.Dim, d.MeanBaseline, runs[0].File, mb)
				}
				c.Points = append(c.Points, plotPoint{run.X, d.MeanCandidate, d.MeanBaseline + d.ChangeCI[0], d.MeanBaseline + d.ChangeCI[1]})
				k++
			}
		}
	}
	for i := range curves {
		slices.SortFunc(curves[i].Points, func(a, b plotPoint) int { return cmp.Compare(a.X, b.X) })
	}
	return curves, nil
}

// plotAxisPositions maps the distinct xs (sorted) to positions on the x axis: x itself, or
// with logX log10(x), where x = 0 goes one step left of the smallest positive x0:
// log10(x0) - (log10(x1) - log10(x0)), x1 the next larger x (a step of log10(2) when there is
// none), so that values doubling from 0 are evenly spaced.
func plotAxisPositions(xs []float64, logX bool) []float64 {
	u := slices.Clone(xs)
	if !logX {
		return u
	}
	var pos []float64
	for _, x := range xs {
		if x > 0 {
			pos = append(pos, math.Log10(x))
		}
	}
	step := math.Log10(2)
	if len(pos) > 1 {
		step = pos[1] - pos[0]
	}
	for i, x := range xs {
		if x > 0 {
			u[i] = math.Log10(x)
		} else {
			u[i] = pos[0] - step
		}
	}
	return u
}

// Look of the curves: markers of 2*evalPlotMarker+1 pixels, dashes of evalPlotDash pixels.
const evalPlotMarker, evalPlotDash = 3, 4

// drawEvalPlot draws the curves: colour by dimension, and for the roles in order of
// appearance solid lines with filled markers (even) or dashed lines with hollow ones (odd).
func drawEvalPlot(curves []plotCurve, opts *EvalPlotOptions) *image.RGBA {
	f := plot.NewFrame(opts.Title, evalPlotW, evalPlotH)
	f.Width -= evalPlotLegend
	var xs []float64
	y0, y1 := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, p := range c.Points {
			if !slices.Contains(xs, p.X) {
				xs = append(xs, p.X)
			}
			y0, y1 = math.Min(y0, p.Lo), math.Max(y1, p.Hi)
		}
	}
	slices.Sort(xs)
	u := plotAxisPositions(xs, opts.LogX)
	pos := func(x float64) float64 { return u[slices.Index(xs, x)] }
	// 5% of the span beyond the extreme points on each side, so that markers stay inside.
	pad := func(lo, hi float64) (float64, float64) {
		if hi == lo {
			return lo - 0.5, hi + 0.5
		}
		return lo - 0.05*(hi-lo), hi + 0.05*(hi-lo)
	}
	f.X0, f.X1 = pad(u[0], u[len(u)-1])
	f.Y0, f.Y1 = pad(y0, y1)
	f.Axes()
	f.YTicks(4)
	for i, x := range xs {
		f.XTickAt(f.PX(u[i]), strconv.FormatFloat(x, 'g', -1, 64))
	}
	if opts.LogX && xs[0] <= 0 {
		// Break mark between the baseline at 0 and the smallest X: the axis is cut, "//".
		mx, ay := (f.PX(u[0])+f.PX(u[1]))/2, f.Top+f.Height
		plot.HLine(f.Img, mx-3, mx+3, ay, plot.White)
		plot.Line(f.Img, mx-4, ay+3, mx-2, ay-3, plot.Black)
		plot.Line(f.Img, mx+2, ay+3, mx+4, ay-3, plot.Black)
	}
	f.XLabel(opts.XLabel)

	var dims, roles []string
	for _, c := range curves {
		if !slices.Contains(dims, c.Dim) {
			dims = append(dims, c.Dim)
		}
		if !slices.Contains(roles, c.Role) {
			roles = append(roles, c.Role)
		}
	}
	style := func(c plotCurve) (color.RGBA, bool) {
		return plot.Palette[slices.Index(dims, c.Dim)%len(plot.Palette)], slices.Index(roles, c.Role)%2 == 0
	}
	dash := func(solid bool) int {
		if solid {
			return 0
		}
		return evalPlotDash
	}
	const r = evalPlotMarker
	for _, c := range curves {
		col, solid := style(c)
		for i, p := range c.Points {
			x, y := f.PX(pos(p.X)), f.PY(p.Y)
			if i > 0 {
				q := c.Points[i-1]
				plot.Dashed(f.Img, f.PX(pos(q.X)), f.PY(q.Y), x, y, col, dash(solid))
			}
			if p.Lo != p.Hi {
				lo, hi := f.PY(p.Lo), f.PY(p.Hi)
				plot.VLine(f.Img, x, hi, lo, col)
				plot.HLine(f.Img, x-2, x+2, lo, col)
				plot.HLine(f.Img, x-2, x+2, hi, col)
			}
		}
		for _, p := range c.Points {
			plot.Square(f.Img, f.PX(pos(p.X)), f.PY(p.Y), r, col, solid)
		}
	}

	// The legend, in its column right of the plot area: a line sample with its marker and
	// "role dim" per curve, between what y is and what the bars are.
	lx, ly := f.Left+f.Width+16, f.Top+10
	plot.Text(f.Img, lx, ly, "y: mean z-score", plot.Black)
	for i, c := range curves {
		col, solid := style(c)
		yy := ly + 14*(i+1) - 4
		plot.Dashed(f.Img, lx, yy, lx+20, yy, col, dash(solid))
		plot.Square(f.Img, lx+10, yy, r, col, solid)
		plot.Text(f.Img, lx+28, yy+4, c.Role+" "+c.Dim, plot.Black)
	}
	for i, s := range []string{"bars: 95% interval", "of the change from", "the baseline"} {
		plot.Text(f.Img, lx, ly+14*(len(curves)+2+i), s, plot.Black)
	}
	return f.Img
}

func evalPlotRun(cmd *cobra.Command, opts *EvalPlotOptions) error {
	curves, err := evalPlotCurves(opts.Runs, opts.BaselineX)
	if err != nil {
		return err
	}
	if err := diffusion.WritePNG(opts.Output, drawEvalPlot(curves, opts)); err != nil {
		return fmt.Errorf("--output %s: %w", opts.Output, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", opts.Output)
	return nil
}
