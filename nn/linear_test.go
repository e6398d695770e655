// Tests of Linear: forward against a float64 host reference, gradients against finite
// differences, with and without bias, on 3-D inputs.
//
// Test: go test ./nn -run Linear
package nn

import (
	"testing"

	"github.com/alignkit/align/kernels"
)

// linearRef is y = x W^T + b in float64 (b may be nil).
func linearRef(x, w, b []float32, N, in, out int) []float64 {
	return linear64(to64(x), w, b, N, in, out)
}

func TestLinearForward(t *testing.T) {
	r := newHostRand(2)
	l := NewLinear(testDev, r, 12, 5, true)
	testDev.CopyFromHost(l.Bias, r.values(5, 1))
	x := r.tensor(1, 2, 7, 12)
	y := l.Forward(x)
	mustShape("y", y, 2, 7, 5)
	assertClose(t, "y", toHost(y), linearRef(toHost(x), toHost(l.Weight), toHost(l.Bias), 14, 12, 5), 1e-5, 1e-5)
}

func TestLinearGrad(t *testing.T) {
	for _, bias := range []bool{true, false} {
		r := newHostRand(3)
		l := NewLinear(testDev, r, 12, 5, bias)
		if bias {
			testDev.CopyFromHost(l.Bias, r.values(5, 1))
		}
		x := r.tensor(1, 2, 7, 12)
		var dx *kernels.Tensor
		vars := append(paramVars(l.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
		gradCheck(t, func() *kernels.Tensor { return l.Forward(x) },
			func(d *kernels.Tensor) { dx = l.Backward(d) }, vars, gcOpts{})
	}
}

// Parameter gradients accumulate over Backward calls; dx is overwritten.
func TestLinearAccumulates(t *testing.T) {
	r := newHostRand(4)
	l := NewLinear(testDev, r, 6, 3, true)
	x, dy := r.tensor(1, 5, 6), r.tensor(1, 5, 3)
	l.Forward(x)
	dx1 := toHost(l.Backward(dy))
	g1 := toHost(l.DWeight)
	l.Forward(x)
	dx2 := toHost(l.Backward(dy))
	g2 := toHost(l.DWeight)
	want := make([]float64, len(g1))
	for i := range g1 {
		want[i] = 2 * float64(g1[i])
	}
	assertClose(t, "dW after two passes", g2, want, 1e-6, 1e-6)
	assertClose(t, "dx", dx2, to64(dx1), 0, 0)
}

func TestLinearFrozen(t *testing.T) {
	r := newHostRand(5)
	l := NewLinear(testDev, r, 6, 3, true)
	l.SetTrainable(false)
	for _, p := range l.Params() {
		if p.G != nil {
			t.Errorf("%s has a gradient while frozen", p.Name)
		}
	}
	x, dy := r.tensor(1, 4, 6), r.tensor(1, 4, 3)
	l.Forward(x)
	dx := toHost(l.Backward(dy))
	// dx = dy W still flows through a frozen layer.
	want := make([]float64, 4*6)
	w, d := toHost(l.Weight), toHost(dy)
	for n := 0; n < 4; n++ {
		for i := 0; i < 6; i++ {
			for o := 0; o < 3; o++ {
				want[n*6+i] += float64(d[n*3+o]) * float64(w[o*6+i])
			}
		}
	}
	assertClose(t, "dx", dx, want, 1e-5, 1e-5)
}
