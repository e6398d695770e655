// Tests: the frame's layout and data-to-pixel mapping, the pixels of a Bresenham segment,
// a dashed one and the markers, all against hand-computed positions.
//
// Test: go test ./internal/plot
package plot

import (
	"image"
	"image/color"
	"slices"
	"testing"
)

var red = color.RGBA{255, 0, 0, 255}

// drawn lists the pixels of img that have colour c, row by row.
func drawn(img *image.RGBA, c color.RGBA) []image.Point {
	var out []image.Point
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if img.RGBAAt(x, y) == c {
				out = append(out, image.Pt(x, y))
			}
		}
	}
	return out
}

func TestFrame(t *testing.T) {
	f := NewFrame("t", 200, 100)
	// Plot area: 200 - 64 - 16 = 120 wide from x 64, 100 - 24 - 36 = 40 high from y 24.
	if f.Left != 64 || f.Top != 24 || f.Width != 120 || f.Height != 40 || f.TooSmall() {
		t.Fatalf("frame %+v", f)
	}
	if img := f.Img; img.RGBAAt(199, 99) != White {
		t.Error("canvas not white")
	}
	f.X0, f.X1, f.Y0, f.Y1 = 0, 120, 0, 4
	// px = 64 + round(x/120*120); py = 24 + 40 - round(y/4*40), y clamped to [0, 4].
	for _, c := range []struct {
		x, y   float64
		px, py int
	}{{30, 1, 94, 54}, {0, 0, 64, 64}, {120, 9, 184, 24}, {0.4, -3, 64, 64}} {
		if px, py := f.PX(c.x), f.PY(c.y); px != c.px || py != c.py {
			t.Errorf("(%v, %v) -> (%d, %d), want (%d, %d)", c.x, c.y, px, py, c.px, c.py)
		}
	}
	if !NewFrame("t", 80, 100).TooSmall() {
		t.Error("a 0-pixel-wide plot area is not too small")
	}
	// YTicks(4): ticks at y 0, 1, 2, 3, 4 = rows 64, 54, 44, 34, 24; grid lines (light) from
	// x 65 to 184 on all but row 64.
	f.YTicks(4)
	for _, row := range []int{54, 44, 34, 24} {
		if f.Img.RGBAAt(65, row) != Light || f.Img.RGBAAt(184, row) != Light || f.Img.RGBAAt(60, row) != Black {
			t.Errorf("row %d: grid line or tick missing", row)
		}
	}
	if f.Img.RGBAAt(65, 64) == Light {
		t.Error("grid line on the x axis")
	}
}

func TestLines(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 10, 10))
	// Bresenham from (0,0) to (3,1): err = dx+dy = 2; pixels (0,0), (1,0), (2,1), (3,1).
	Line(img, 0, 0, 3, 1, red)
	if got, want := drawn(img, red), []image.Point{{0, 0}, {1, 0}, {2, 1}, {3, 1}}; !slices.Equal(got, want) {
		t.Errorf("line: %v, want %v", got, want)
	}
	// The same line backwards draws the same pixels.
	img = image.NewRGBA(image.Rect(0, 0, 10, 10))
	Line(img, 3, 1, 0, 0, red)
	if got, want := drawn(img, red), []image.Point{{0, 0}, {1, 0}, {2, 1}, {3, 1}}; !slices.Equal(got, want) {
		t.Errorf("reversed line: %v, want %v", got, want)
	}
	// Period 0 is solid: the same pixels as Line.
	img = image.NewRGBA(image.Rect(0, 0, 10, 10))
	Dashed(img, 0, 0, 3, 1, red, 0)
	if got, want := drawn(img, red), []image.Point{{0, 0}, {1, 0}, {2, 1}, {3, 1}}; !slices.Equal(got, want) {
		t.Errorf("dashed, period 0: %v, want %v", got, want)
	}
	// Dashes of 2 along (0,5)..(7,5): pixels 0, 1 drawn, 2, 3 skipped, 4, 5 drawn, 6, 7 skipped.
	img = image.NewRGBA(image.Rect(0, 0, 10, 10))
	Dashed(img, 0, 5, 7, 5, red, 2)
	if got, want := drawn(img, red), []image.Point{{0, 5}, {1, 5}, {4, 5}, {5, 5}}; !slices.Equal(got, want) {
		t.Errorf("dashed: %v, want %v", got, want)
	}
}

func TestSquare(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 10, 10))
	Square(img, 4, 4, 1, red, true)
	if got := len(drawn(img, red)); got != 9 || img.RGBAAt(4, 4) != red {
		t.Errorf("filled 3x3 square: %d pixels", got)
	}
	img = image.NewRGBA(image.Rect(0, 0, 10, 10))
	Square(img, 4, 4, 2, red, false)
	// A 5x5 outline: 25 - 9 inner pixels = 16.
	if got := len(drawn(img, red)); got != 16 || img.RGBAAt(4, 4) == red || img.RGBAAt(2, 2) != red || img.RGBAAt(6, 5) != red {
		t.Errorf("hollow 5x5 square: %d pixels", got)
	}
}
