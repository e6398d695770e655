// Test: go test ./dpo -run ValidationPlot
package dpo

import (
	"image"
	"image/color"
	"testing"

	"github.com/alignkit/align/internal/plot"
)

// meanRow is the mean row of the pixels of colour c in rows [y0, y1) of img, and their count.
func meanRow(img *image.RGBA, c color.RGBA, y0, y1 int) (float64, int) {
	sum, n := 0, 0
	for y := y0; y < y1; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			if img.RGBAAt(x, y) == c {
				sum, n = sum+y, n+1
			}
		}
	}
	if n == 0 {
		return 0, 0
	}
	return float64(sum) / float64(n), n
}

func TestValidationPlot(t *testing.T) {
	const w, h = 480, 200
	entries := []ValidationEntry{
		{Step: 0, Dims: []string{"vq", "ta"}, ZMean: []float64{1.0, -0.5}},
		{Step: 10, Dims: []string{"vq", "ta"}, ZMean: []float64{1.2, -0.4}, WinRate: []float64{0.9, 0.2}},
		{Step: 20, Dims: []string{"vq", "ta"}, ZMean: []float64{1.1, -0.6}, WinRate: []float64{0.8, 0.1}},
	}
	img := ValidationPlot(entries, w, h)
	if b := img.Bounds(); b.Dx() != w || b.Dy() != 2*h {
		t.Fatalf("size %v, want %dx%d", b, w, 2*h)
	}
	vq, ta := plot.Palette[0], plot.Palette[1]
	// The z panel: vq's curve above ta's (smaller rows), as its values are; likewise the
	// win rates, vq's above ta's.
	for k, panel := range []string{"z-score", "win rate"} {
		rv, nv := meanRow(img, vq, k*h, (k+1)*h)
		rt, nt := meanRow(img, ta, k*h, (k+1)*h)
		if nv < 50 || nt < 50 || !(rv < rt) {
			t.Errorf("%s panel: vq %d pixels at mean row %.1f, ta %d at %.1f; want both drawn, vq above", panel, nv, rv, nt, rt)
		}
	}
	// A grids-only validation before the scored ones (a run resumed with a reward model) is
	// left out.
	mixed := ValidationPlot(append([]ValidationEntry{{Step: 0}}, entries[1:]...), w, h)
	if _, n := meanRow(mixed, vq, 0, h); n < 50 {
		t.Errorf("with a grids-only entry first: %d pixels of vq", n)
	}
	// A run validating with grids only has no scores to draw.
	bare := ValidationPlot([]ValidationEntry{{Step: 0}, {Step: 10}}, w, h)
	if _, n := meanRow(bare, vq, 0, 2*h); n != 0 {
		t.Errorf("entries without scores drew %d pixels of a series", n)
	}
}
