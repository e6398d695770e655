// Image geometry for reward inputs: resize (stretch, shorter side + centre crop, longer side
// + centre pad) on float (C,H,W) planes with PIL's separable, antialiased resampling filters,
// so that a reward model sees its inputs as its own Python preprocessing would give them.
//
// Test: go test ./rewards/onnx -run 'Geometry|Resample'
package onnx

import (
	"fmt"
	"math"
)

// Geometry says how an image of any size becomes Height x Width.
type Geometry struct {
	Height, Width int
	Resize        string  // ResizeStretch, ResizeShorter, ResizeLonger or ResizeNone
	Filter        string  // FilterNearest, FilterBilinear, FilterBicubic or FilterBox
	PadValue      float64 // border of ResizeLonger, in [0, 1] pixel units
}

// plan returns the intermediate size (rh, rw) of the resize step and the offset (top, left)
// of the output window inside it (crop, >= 0) or of it inside the output (pad, <= 0).
func (g Geometry) plan(H, W int) (rh, rw, top, left int, err error) {
	switch g.Resize {
	case ResizeNone:
		if H != g.Height || W != g.Width {
			return 0, 0, 0, 0, fmt.Errorf("image is %dx%d, the reward model takes %dx%d and its manifest says resize none", W, H, g.Width, g.Height)
		}
		return H, W, 0, 0, nil
	case ResizeStretch:
		return g.Height, g.Width, 0, 0, nil
	case ResizeShorter:
		s := math.Max(float64(g.Height)/float64(H), float64(g.Width)/float64(W))
		rh = max(g.Height, int(math.Round(float64(H)*s)))
		rw = max(g.Width, int(math.Round(float64(W)*s)))
		// torchvision's CenterCrop: int(round((size - crop)/2)).
		return rh, rw, int(math.Round(float64(rh-g.Height) / 2)), int(math.Round(float64(rw-g.Width) / 2)), nil
	case ResizeLonger:
		s := math.Min(float64(g.Height)/float64(H), float64(g.Width)/float64(W))
		rh = min(g.Height, max(1, int(math.Round(float64(H)*s))))
		rw = min(g.Width, max(1, int(math.Round(float64(W)*s))))
		// HPSv2's ResizeMaxSize pads pad//2 before and the rest after.
		return rh, rw, -((g.Height - rh) / 2), -((g.Width - rw) / 2), nil
	}
	return 0, 0, 0, 0, fmt.Errorf("unknown resize mode %q", g.Resize)
}

// Apply maps src (C,H,W), values in [-1, 1], to dst (C,Height,Width). It fails only for
// ResizeNone with a wrongly sized input.
func (g Geometry) Apply(dst, src []float32, C, H, W int) error {
	if H < 1 || W < 1 || len(src) != C*H*W {
		return fmt.Errorf("image: %d values for (%d,%d,%d)", len(src), C, H, W)
	}
	if len(dst) != C*g.Height*g.Width {
		panic(fmt.Sprintf("onnx: Geometry.Apply: dst has %d values, want %d", len(dst), C*g.Height*g.Width))
	}
	rh, rw, top, left, err := g.plan(H, W)
	if err != nil {
		return err
	}
	res := src
	if rh != H || rw != W {
		res = make([]float32, C*rh*rw)
		Resample(res, src, C, H, W, rh, rw, g.Filter)
	}
	if rh == g.Height && rw == g.Width {
		copy(dst, res)
		return nil
	}
	pad := float32(2*g.PadValue - 1)
	for c := range C {
		for y := range g.Height {
			sy := y + top
			row := dst[(c*g.Height+y)*g.Width:][:g.Width]
			for x := range row {
				sx := x + left
				if sy < 0 || sy >= rh || sx < 0 || sx >= rw {
					row[x] = pad
				} else {
					row[x] = res[(c*rh+sy)*rw+sx]
				}
			}
		}
	}
	return nil
}

// Resample resizes src (C,H,W) to dst (C,OH,OW) with a separable filter as PIL's
// Image.resize does (the filter widened by the scale when downsampling, so that it
// antialiases; box at an integer factor is the area average). Values are clamped to
// [-1, 1], as PIL clamps 8-bit images.
func Resample(dst, src []float32, C, H, W, OH, OW int, filter string) {
	tmp := make([]float32, C*H*OW)
	xw := coeffs(W, OW, filter)
	for c := range C {
		for y := range H {
			in := src[(c*H+y)*W:][:W]
			out := tmp[(c*H+y)*OW:][:OW]
			for x := range out {
				out[x] = xw[x].apply(in, 1)
			}
		}
	}
	yw := coeffs(H, OH, filter)
	for c := range C {
		plane := tmp[c*H*OW:][:H*OW]
		for y := range OH {
			out := dst[(c*OH+y)*OW:][:OW]
			k := yw[y]
			for x := range out {
				out[x] = max(-1, min(1, k.apply(plane[x:], OW)))
			}
		}
	}
}

// tap is one output sample: weights w over input samples first, first+1, ...
type tap struct {
	first int
	w     []float32
}

func (t tap) apply(in []float32, stride int) float32 {
	var s float32
	for i, w := range t.w {
		s += w * in[(t.first+i)*stride]
	}
	return s
}

// coeffs computes PIL's resampling weights (precompute_coeffs in Resample.c) from n to m
// samples.
func coeffs(n, m int, filter string) []tap {
	taps := make([]tap, m)
	scale := float64(n) / float64(m)
	if filter == FilterNearest {
		for i := range taps {
			taps[i] = tap{first: min(n-1, int((float64(i)+0.5)*scale)), w: []float32{1}}
		}
		return taps
	}
	var support float64
	var f func(float64) float64
	switch filter {
	case FilterBox:
		support, f = 0.5, func(x float64) float64 {
			if x >= -0.5 && x < 0.5 {
				return 1
			}
			return 0
		}
	case FilterBilinear:
		support, f = 1, func(x float64) float64 { return max(0, 1-math.Abs(x)) }
	default: // bicubic, a = -0.5
		support, f = 2, func(x float64) float64 {
			const a = -0.5
			x = math.Abs(x)
			switch {
			case x < 1:
				return ((a+2)*x-(a+3))*x*x + 1
			case x < 2:
				return (((x-5)*x+8)*x - 4) * a
			}
			return 0
		}
	}
	fs := max(scale, 1)
	support *= fs
	for i := range taps {
		center := (float64(i) + 0.5) * scale
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), n)
		w := make([]float64, 0, hi-lo)
		total := 0.0
		for j := lo; j < hi; j++ {
			v := f((float64(j) - center + 0.5) / fs)
			w = append(w, v)
			total += v
		}
		t := tap{first: lo, w: make([]float32, len(w))}
		for k, v := range w {
			if total != 0 {
				t.w[k] = float32(v / total)
			}
		}
		if len(t.w) == 0 { // cannot happen for n, m >= 1; keep the nearest sample
			t = tap{first: min(n-1, int(center)), w: []float32{1}}
		}
		taps[i] = t
	}
	return taps
}
