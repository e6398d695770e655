//go:build amd64 && gc && !purego

package kernels

import (
	"math"
	"testing"

	"golang.org/x/sys/cpu"

	"github.com/alignkit/align/kernels/internal/gemmasm"
)

// TestExpLoopsAVX512SameBits: the sixteen-lane GELU loops (gelu512, geluBackward512) and
// ExpSumAVX512 give the eight-lane ones' bits (the exps and their sum) on every length (the
// last 8 through the eight-lane code), on ordinary values and on the clamps' and NaN's edges,
// so the results do not depend on the CPU's vector width.
func TestExpLoopsAVX512SameBits(t *testing.T) {
	if !cpu.X86.HasAVX512F || !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		t.Skip("no AVX-512F")
	}
	x := testUniforms(61, 4096, -12, 12)
	dout := testUniforms(62, 4096, -2, 2)
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-40, -1e-40, 3.5, -3.5, 40, -40, 43.6, -43.6,
		87, -87, 88, -88, 100, -100, 400, -400, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for i, v := range special {
		x[37*i] = v
	}
	for n := 8; n <= 136; n += 8 {
		for _, off := range []int{0, 1, 5} {
			src, g := x[off*n:off*n+n], dout[off*n:off*n+n]
			want, got := make([]float32, n), make([]float32, n)
			gemmasm.GeluAVX2(&want[0], &src[0], n)
			gelu512(&got[0], &src[0], n)
			sameBits(t, "gelu", got, want)
			gemmasm.GeluBackwardAVX2(&want[0], &src[0], &g[0], n)
			geluBackward512(&got[0], &src[0], &g[0], n)
			sameBits(t, "gelu backward", got, want)
			for _, sub := range []float32{0, 3.25, -40} {
				s2 := gemmasm.ExpSumAVX2(&want[0], &src[0], n, sub)
				s5 := gemmasm.ExpSumAVX512(&got[0], &src[0], n, sub)
				sameBits(t, "exp", got, want)
				sameBits(t, "exp sum", []float32{s5}, []float32{s2})
			}
		}
	}
}
