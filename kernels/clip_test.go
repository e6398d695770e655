// Tests of ClipScale on the CPU device: the returned global norm, the factor only above
// maxNorm (maxNorm/(norm+1e-6)), nil entries skipped, gradients untouched, a non-finite norm
// reported with the factor 1; and AdamW with GradScale against AdamW of the scaled
// gradients, bit for bit.
//
// Test: go test ./kernels -run ClipScale
package kernels

import (
	"math"
	"testing"
)

func TestClipScale(t *testing.T) {
	d := NewCPU(2)
	a, b := testNormals(171, 37*67), testNormals(172, 20011)
	ss := 0.0
	for _, v := range append(append([]float32(nil), a...), b...) {
		ss += float64(v) * float64(v)
	}
	want := math.Sqrt(ss)

	ta, tb := guarded(d, a, 37, 67), guarded(d, b, 20011)
	if got, s := ClipScale(d, []*Tensor{ta, nil, tb}, want*2); math.Abs(got-want) > 1e-9*want || s != 1 {
		t.Errorf("below the threshold: norm %v, factor %v, want %v and 1", got, s, want)
	}
	const maxNorm = 1.5
	got, s := ClipScale(d, []*Tensor{ta, nil, tb}, maxNorm)
	if math.Abs(got-want) > 1e-9*want || s != float32(maxNorm/(want+1e-6)) {
		t.Errorf("above: norm %v, factor %v, want %v and %v", got, s, want, float32(maxNorm/(want+1e-6)))
	}
	assertSame(t, "a", Host(ta), a)
	assertSame(t, "b", Host(tb), b)
	assertGuard(t, "clip", ta)
	assertGuard(t, "clip", tb)

	bad := d.FromHost([]float32{1, float32(math.Inf(1))}, 2)
	if n, s := ClipScale(d, []*Tensor{bad}, 1); !math.IsInf(n, 1) || s != 1 {
		t.Errorf("infinite gradient: norm %v, factor %v", n, s)
	}
}

// AdamW with GradScale s gives the bits of AdamW after scaling the gradient by s in float32
// (what clipping in place did), and GradScale 0 those of 1.
func TestClipScaleInAdamW(t *testing.T) {
	d := NewCPU(2)
	const n = 1000
	p0, g0 := testNormals(173, n), testNormals(174, n)
	run := func(grad []float32, scale float32) []float32 {
		p, m, v := d.FromHost(p0, n), d.New(n), d.New(n)
		for step := 1; step <= 3; step++ {
			d.AdamW(p, d.FromHost(grad, n), m, v, AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
				WeightDecay: 0.1, Step: step, GradScale: scale})
		}
		return Host(p)
	}
	const s = float32(0.37)
	scaled := make([]float32, n)
	for i, v := range g0 {
		scaled[i] = v * s
	}
	assertSame(t, "GradScale 0.37", run(g0, s), run(scaled, 0))
	assertSame(t, "GradScale 1", run(g0, 1), run(g0, 0))
}
