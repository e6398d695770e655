// Tests of `align eval plot`: the curves from two reports against one baseline (hand
// values), the log-x positions, the pixels of the PNG where the hand-computed frame puts the
// markers, and bad arguments named in the error.
//
// Test: go test ./cmd/align -run EvalPlot
package main

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards/scoring"
)

// writePlotReport writes an eval report on vq and ta of the models reward and judge; v maps
// "role dim" to {baseline mean, candidate mean, change CI lo, change CI hi}.
func writePlotReport(t *testing.T, path string, pairs int, v map[string][4]float64) {
	writeReport(t, path, pairs, func(role, dim string) scoring.Paired {
		x := v[role+" "+dim]
		return scoring.Paired{MeanBaseline: x[0], MeanCandidate: x[1], MeanChange: x[1] - x[0], ChangeCI: [2]float64{x[2], x[3]}}
	})
}

// plotFixture writes the reports of x = 25 and x = 50; their points span y in [-1, 1].
func plotFixture(t *testing.T) (dir, r25, r50 string) {
	dir = t.TempDir()
	r25, r50 = filepath.Join(dir, "s25.json"), filepath.Join(dir, "s50.json")
	writePlotReport(t, r25, 100, map[string][4]float64{"reward vq": {0, 0.5, 0.3, 0.7}, "reward ta": {-0.5, -0.6, -0.2, 0},
		"judge vq": {0.2, 0.25, -0.05, 0.15}, "judge ta": {-0.3, -0.2, 0, 0.2}})
	writePlotReport(t, r50, 100, map[string][4]float64{"reward vq": {0, 0.9, 0.8, 1}, "reward ta": {-0.5, -0.8, -0.5, -0.1},
		"judge vq": {0.2, 0.3, 0, 0.2}, "judge ta": {-0.3, -0.35, -0.1, 0}})
	return dir, r25, r50
}

func TestEvalPlotCurves(t *testing.T) {
	_, r25, r50 := plotFixture(t)
	// Given out of order: the points come sorted by x, the baseline first at x = 0.
	curves, err := evalPlotCurves([]xReport{{50, r50}, {25, r25}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Candidate points: (x, mean candidate, mean baseline + change CI).
	want := []plotCurve{
		{evalColumn{"reward", "vq"}, []plotPoint{{0, 0, 0, 0}, {25, 0.5, 0.3, 0.7}, {50, 0.9, 0.8, 1}}},
		{evalColumn{"reward", "ta"}, []plotPoint{{0, -0.5, -0.5, -0.5}, {25, -0.6, -0.7, -0.5}, {50, -0.8, -1, -0.6}}},
		{evalColumn{"judge", "vq"}, []plotPoint{{0, 0.2, 0.2, 0.2}, {25, 0.25, 0.15, 0.35}, {50, 0.3, 0.2, 0.4}}},
		{evalColumn{"judge", "ta"}, []plotPoint{{0, -0.3, -0.3, -0.3}, {25, -0.2, -0.3, -0.1}, {50, -0.35, -0.4, -0.3}}},
	}
	if len(curves) != len(want) {
		t.Fatalf("%d curves, want %d", len(curves), len(want))
	}
	for i := range want {
		got := curves[i]
		ok := got.evalColumn == want[i].evalColumn && len(got.Points) == len(want[i].Points)
		for j := 0; ok && j < len(got.Points); j++ {
			g, w := got.Points[j], want[i].Points[j]
			ok = g.X == w.X && math.Abs(g.Y-w.Y) < 1e-12 && math.Abs(g.Lo-w.Lo) < 1e-12 && math.Abs(g.Hi-w.Hi) < 1e-12
		}
		if !ok {
			t.Errorf("curve %d: %+v, want %+v", i, got, want[i])
		}
	}
}

func TestEvalPlotAxisPositions(t *testing.T) {
	if got := plotAxisPositions([]float64{0, 25, 50}, false); !reflect.DeepEqual(got, []float64{0, 25, 50}) {
		t.Errorf("linear: %v", got)
	}
	// Doubling scales: 0 goes where 12.5 would, one doubling left of 25.
	want := []float64{math.Log10(12.5), math.Log10(25), math.Log10(50), 2}
	got := plotAxisPositions([]float64{0, 25, 50, 100}, true)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("log: %v, want %v", got, want)
			break
		}
	}
	// One positive x: a step of log10(2), 0 at 50's place for 100.
	if got := plotAxisPositions([]float64{0, 100}, true); math.Abs(got[0]-math.Log10(50)) > 1e-12 || got[1] != 2 {
		t.Errorf("log, one x: %v", got)
	}
}

func TestEvalPlotPNG(t *testing.T) {
	dir, r25, r50 := plotFixture(t)
	out := filepath.Join(dir, "curve.png")
	code, stdout, stderr := runAlign(t, "eval", "plot", "25="+r25, "50="+r50, "--x-label", "reward guidance scale", "--title", "NRG", "-o", out)
	if code != exitOK || stdout != "" || !strings.Contains(stderr, "wrote "+out) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	img := readPNG(t, out)
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 440 {
		t.Fatalf("size %v, want 800x440", b)
	}
	// The plot area: left 64, width 800-64-16-150 = 570, top 24, height 440-24-36 = 380; x
	// from 0-2.5 to 50+2.5, y from -1-0.1 to 1+0.1 (5% of the spans beyond the points).
	// px(x) = 64 + round((x+2.5)/55*570), py(y) = 404 - round((y+1.1)/2.2*380):
	// px(0) = 90, px(25) = 349, py(0) = 214, py(0.5) = 128, py(-0.2) = 249.
	blue, orange, white := color.RGBA{31, 90, 200, 255}, color.RGBA{220, 110, 20, 255}, color.RGBA{255, 255, 255, 255}
	for _, c := range []struct {
		what string
		x, y int
		want color.RGBA
	}{
		{"reward vq at x = 25 (filled marker)", 349 + 2, 128 + 2, blue},
		{"reward vq baseline at x = 0 (filled marker)", 90 + 2, 214 + 2, blue},
		{"judge ta at x = 25 (hollow marker's edge)", 349 + 3, 249 + 1, orange},
		{"judge ta at x = 25 (hollow marker's inside)", 349 + 2, 249 - 2, white},
	} {
		if got := color.RGBAModel.Convert(img.At(c.x, c.y)).(color.RGBA); got != c.want {
			t.Errorf("%s: pixel (%d, %d) is %v, want %v", c.what, c.x, c.y, got, c.want)
		}
	}
}

func TestEvalPlotErrors(t *testing.T) {
	dir, r25, r50 := plotFixture(t)
	out := filepath.Join(dir, "curve.png")
	other, fewer := filepath.Join(dir, "other.json"), filepath.Join(dir, "fewer.json")
	writePlotReport(t, other, 100, map[string][4]float64{"reward vq": {0, 0.9, 0.8, 1}, "reward ta": {-0.5, -0.8, -0.5, -0.1},
		"judge vq": {0.21, 0.3, 0, 0.2}, "judge ta": {-0.3, -0.35, -0.1, 0}})
	writePlotReport(t, fewer, 50, nil)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"25=" + r25}, exitUsage, "--output is required"},
		{[]string{r25, "-o", out}, exitUsage, "want X=REPORT.json"},
		{[]string{"w=" + r25, "-o", out}, exitUsage, "want X=REPORT.json"},
		{[]string{"25=" + r25, "25=" + r50, "-o", out}, exitUsage, "x 25 is taken by " + r25},
		{[]string{"0=" + r25, "-o", out}, exitUsage, "x 0 is taken by --baseline-x"},
		{[]string{"0=" + r25, "--baseline-x", "1", "--log-x", "-o", out}, exitUsage, "--log-x needs every X > 0"},
		{[]string{"25=" + r25, "50=" + other, "-o", out}, exitError, "the baseline's mean z-score of judge vq is 0.21, in " + r25 + " 0.2:"},
		{[]string{"25=" + r25, "50=" + fewer, "-o", out}, exitError, "not be comparable"},
		{[]string{"25=" + filepath.Join(dir, "missing.json"), "-o", out}, exitError, "missing.json"},
	} {
		code, _, stderr := runAlign(t, append([]string{"eval", "plot"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d (want %d), stderr %q, want %q", c.args, code, c.code, stderr, c.want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed plot left %s (%v)", out, err)
	}
}
