// Tests of ClipGradNorm on the CPU device: the returned global norm, scaling only above
// maxNorm to maxNorm/(norm+1e-6), nil entries skipped, and a non-finite norm left alone.
//
// Test: go test ./kernels -run ClipGradNorm
package kernels

import (
	"math"
	"testing"
)

func TestClipGradNorm(t *testing.T) {
	d := NewCPU(2)
	a, b := testNormals(171, 37*67), testNormals(172, 20011)
	ss := 0.0
	for _, v := range append(append([]float32(nil), a...), b...) {
		ss += float64(v) * float64(v)
	}
	want := math.Sqrt(ss)

	// Below the threshold: unchanged.
	ta, tb := guarded(d, a, 37, 67), guarded(d, b, 20011)
	if got := ClipGradNorm(d, []*Tensor{ta, nil, tb}, want*2); math.Abs(got-want) > 1e-9*want {
		t.Errorf("norm %v, want %v", got, want)
	}
	assertSame(t, "unclipped a", Host(ta), a)
	assertSame(t, "unclipped b", Host(tb), b)

	// Above: scaled to maxNorm/(norm+1e-6).
	const maxNorm = 1.5
	got := ClipGradNorm(d, []*Tensor{ta, nil, tb}, maxNorm)
	if math.Abs(got-want) > 1e-9*want {
		t.Errorf("norm %v, want %v", got, want)
	}
	s := maxNorm / (want + 1e-6)
	wa, wb := f64s(a), f64s(b)
	for i := range wa {
		wa[i] *= s
	}
	for i := range wb {
		wb[i] *= s
	}
	assertClose(t, "clipped a", Host(ta), wa, 1e-7, 1e-6)
	assertClose(t, "clipped b", Host(tb), wb, 1e-7, 1e-6)
	if after := ClipGradNorm(d, []*Tensor{ta, tb}, 1e9); math.Abs(after-maxNorm) > 1e-5 {
		t.Errorf("norm after clipping %v, want %v", after, maxNorm)
	}
	assertGuard(t, "clip", ta)
	assertGuard(t, "clip", tb)

	// Non-finite: reported, gradients untouched.
	bad := d.FromHost([]float32{1, float32(math.Inf(1))}, 2)
	if n := ClipGradNorm(d, []*Tensor{bad}, 1); !math.IsInf(n, 1) {
		t.Errorf("norm of an infinite gradient = %v", n)
	}
	if Host(bad)[0] != 1 {
		t.Errorf("infinite norm scaled the gradients: %v", Host(bad))
	}
}
