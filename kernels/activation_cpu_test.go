// Tests of the CPU activations: forward against float64 formulas (including large |x|),
// backward against the analytic derivative and against central differences of the
// reference forward, on guarded views, across thread counts.
//
// Test: go test ./kernels -run 'Gelu|Silu'
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func refGelu(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
}

func refSilu(x float64) float64 { return x / (1 + math.Exp(-x)) }

// activationInputs mixes normal draws with extremes where tanh and exp saturate.
func activationInputs(n int) []float32 {
	x := testNormals(11, n)
	for i := range x {
		x[i] *= 3
	}
	copy(x, []float32{0, -0, 1e-8, -1e-8, 20, -20, 60, -60, 100, -100, 400, -400})
	return x
}

func testActivation(t *testing.T, name string, ref func(float64) float64,
	fwd func(d *CPU, out, inp *Tensor), bwd func(d *CPU, dinp, inp, dout *Tensor)) {
	for _, n := range []int{37 * 67, 20011} {
		x, dout := activationInputs(n), testNormals(12, n)
		wantY := make([]float64, n)
		wantDX := make([]float64, n)
		for i := range x {
			v := float64(x[i])
			wantY[i] = ref(v)
			// Central difference of the float64 reference (h scaled to x).
			h := 1e-5 * math.Max(1, math.Abs(v))
			wantDX[i] = float64(dout[i]) * (ref(v+h) - ref(v-h)) / (2 * h)
		}
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("%s n=%d threads=%d", name, n, th)
			tx, tg := guarded(d, x, n), guarded(d, dout, n)
			y := guarded(d, nil, n)
			fwd(d, y, tx)
			assertClose(t, tag+" forward", Host(y), wantY, 1e-6, 1e-6)
			dx := guarded(d, nil, n)
			bwd(d, dx, tx, tg)
			assertClose(t, tag+" backward", Host(dx), wantDX, 1e-5, 1e-5)
			// In place: out aliases inp, dinp aliases dout.
			fwd(d, tx, tx)
			assertClose(t, tag+" forward in place", Host(tx), wantY, 1e-6, 1e-6)
			copy(Host(tx), x)
			bwd(d, tg, tx, tg)
			assertClose(t, tag+" backward in place", Host(tg), wantDX, 1e-5, 1e-5)
			for _, g := range []*Tensor{tx, tg, y, dx} {
				assertGuard(t, tag, g)
			}
		}
	}
}

func TestGelu(t *testing.T) {
	testActivation(t, "Gelu", refGelu,
		func(d *CPU, out, inp *Tensor) { d.GeluForward(out, inp) },
		func(d *CPU, dinp, inp, dout *Tensor) { d.GeluBackward(dinp, inp, dout) })
}

func TestSilu(t *testing.T) {
	testActivation(t, "Silu", refSilu,
		func(d *CPU, out, inp *Tensor) { d.SiluForward(out, inp) },
		func(d *CPU, dinp, inp, dout *Tensor) { d.SiluBackward(dinp, inp, dout) })
}

// TestGeluEdges puts the saturating inputs at every position of slices of 1 to 20
// elements, so that both the vector loop (multiples of 8, where the CPU has one) and the
// element-wise tail see them.
func TestGeluEdges(t *testing.T) {
	edges := []float32{0, -1e-8, 1e-8, 3.5, -3.5, 10, -10, 20, -20, 100, -100, 400, -400}
	for n := 1; n <= 20; n++ {
		for pos := 0; pos < n; pos++ {
			for _, e := range edges {
				x, g := make([]float32, n), make([]float32, n)
				for i := range x {
					x[i], g[i] = float32(i%7)-3, 1+float32(i%3)
				}
				x[pos] = e
				y, dx := make([]float32, n), make([]float32, n)
				geluForward(y, x)
				geluBackward(dx, x, g)
				wantY, wantDX := make([]float64, n), make([]float64, n)
				for i, v := range x {
					xv := float64(v)
					wantY[i] = refGelu(xv)
					h := 1e-5 * math.Max(1, math.Abs(xv))
					wantDX[i] = float64(g[i]) * (refGelu(xv+h) - refGelu(xv-h)) / (2 * h)
				}
				tag := fmt.Sprintf("n=%d pos=%d x=%v", n, pos, e)
				if !assertClose(t, tag+" forward", y, wantY, 1e-6, 1e-6) ||
					!assertClose(t, tag+" backward", dx, wantDX, 1e-5, 1e-5) {
					return
				}
			}
		}
	}
}
