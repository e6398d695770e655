// Tests of the CPU softmax: forward against a float64 reference (large logits, -Inf masks,
// fully masked rows), backward against the analytic reference, which is itself checked by
// central differences, on guarded views with aliasing, across thread counts.
//
// Test: go test ./kernels -run Softmax
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func refSoftmax(x []float64, N, C int) []float64 {
	out := make([]float64, N*C)
	for n := 0; n < N; n++ {
		r := x[n*C : (n+1)*C]
		m := math.Inf(-1)
		for _, v := range r {
			m = math.Max(m, v)
		}
		if math.IsInf(m, -1) {
			continue
		}
		s := 0.0
		for _, v := range r {
			s += math.Exp(v - m)
		}
		for c, v := range r {
			out[n*C+c] = math.Exp(v-m) / s
		}
	}
	return out
}

func refSoftmaxBackward(g, y []float64, N, C int) []float64 {
	dx := make([]float64, N*C)
	for n := 0; n < N; n++ {
		s := 0.0
		for c := 0; c < C; c++ {
			s += g[n*C+c] * y[n*C+c]
		}
		for c := 0; c < C; c++ {
			dx[n*C+c] = y[n*C+c] * (g[n*C+c] - s)
		}
	}
	return dx
}

func TestSoftmaxReferenceFiniteDifferences(t *testing.T) {
	N, C := 3, 6
	x, g := f64s(testNormals(71, N*C)), f64s(testNormals(72, N*C))
	want := fdGrad(func(v []float64) float64 { return dot64(refSoftmax(v, N, C), g) }, x, 1e-5)
	assertClose64(t, "softmax dx", refSoftmaxBackward(g, refSoftmax(x, N, C), N, C), want, 1e-8, 1e-6)
}

func TestSoftmaxCPU(t *testing.T) {
	for _, sz := range [][2]int{{37, 67}, {1201, 67}, {3, 1024}} {
		N, C := sz[0], sz[1]
		x := testNormals(73, N*C)
		for i := range x {
			x[i] *= 4
		}
		x[0] = 1e4 // a large logit dominates its row
		for c := 0; c < C; c++ {
			x[C+c] = float32(math.Inf(-1)) // a fully masked row
			if c%3 == 0 {
				x[2*C+c] = float32(math.Inf(-1)) // a partly masked row
			}
		}
		g := testNormals(74, N*C)
		wantY := refSoftmax(f64s(x), N, C)
		wantDX := refSoftmaxBackward(f64s(g), wantY, N, C)
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("N=%d C=%d threads=%d", N, C, th)
			tx, out := guarded(d, x, N, C), guarded(d, nil, N, C)
			d.SoftmaxForward(out, tx, N, C)
			assertClose(t, "SoftmaxForward "+tag, Host(out), wantY, 1e-7, 1e-5)
			d.SoftmaxForward(tx, tx, N, C) // in place
			assertClose(t, "SoftmaxForward in place "+tag, Host(tx), wantY, 1e-7, 1e-5)
			// Backward from the float32 forward output, dinp aliasing dout.
			wantDX32 := refSoftmaxBackward(f64s(g), f64s(Host(out)), N, C)
			tg := guarded(d, g, N, C)
			d.SoftmaxBackward(tg, tg, out, N, C)
			assertClose(t, "SoftmaxBackward "+tag, Host(tg), wantDX32, 1e-6, 1e-5)
			assertClose(t, "SoftmaxBackward vs float64 forward "+tag, Host(tg), wantDX, 1e-5, 1e-4)
			for _, v := range []*Tensor{tx, out, tg} {
				assertGuard(t, tag, v)
			}
		}
	}
}
