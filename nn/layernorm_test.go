// Tests of LayerNorm: forward against a float64 reference and gradients against finite
// differences, with and without affine, plus a frozen affine.
//
// Test: go test ./nn -run LayerNorm
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

// layerNormRef normalises rows of x (N,C) in float64; w, b may be nil.
func layerNormRef(x []float64, w, b []float32, N, C int, eps float64) []float64 {
	y := make([]float64, N*C)
	for n := 0; n < N; n++ {
		row := x[n*C : (n+1)*C]
		mean, v := 0.0, 0.0
		for _, u := range row {
			mean += u
		}
		mean /= float64(C)
		for _, u := range row {
			v += (u - mean) * (u - mean)
		}
		rstd := 1 / math.Sqrt(v/float64(C)+eps)
		for c, u := range row {
			o := (u - mean) * rstd
			if w != nil {
				o = o*float64(w[c]) + float64(b[c])
			}
			y[n*C+c] = o
		}
	}
	return y
}

func TestLayerNormForward(t *testing.T) {
	r := newHostRand(20)
	for _, affine := range []bool{false, true} {
		n := NewLayerNorm(testDev, 12, 1e-6, affine)
		var w, b []float32
		if affine {
			r.Normal(n.Weight)
			r.Normal(n.Bias)
			w, b = toHost(n.Weight), toHost(n.Bias)
		}
		x := r.tensor(2, 2, 7, 12)
		y := n.Forward(x)
		assertClose(t, "y", toHost(y), layerNormRef(to64(toHost(x)), w, b, 14, 12, 1e-6), 1e-5, 1e-5)
	}
}

func TestLayerNormGrad(t *testing.T) {
	for _, affine := range []bool{false, true} {
		r := newHostRand(21)
		n := NewLayerNorm(testDev, 12, 1e-6, affine)
		if affine {
			r.Normal(n.Weight)
			r.Normal(n.Bias)
		}
		x := r.tensor(1, 2, 7, 12)
		var dx *kernels.Tensor
		vars := append(paramVars(n.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
		gradCheck(t, func() *kernels.Tensor { return n.Forward(x) },
			func(d *kernels.Tensor) { dx = n.Backward(d) }, vars, gcOpts{h: 3e-3})
	}
}

func TestLayerNormFrozenAffine(t *testing.T) {
	r := newHostRand(22)
	n := NewLayerNorm(testDev, 12, 1e-6, true)
	r.Normal(n.Weight)
	n.SetTrainable(false)
	if ps := n.Params(); len(ps) != 2 || ps[0].G != nil || ps[1].G != nil {
		t.Fatalf("frozen affine params %+v", ps)
	}
	x, dy := r.tensor(1, 3, 12), r.tensor(1, 3, 12)
	n.Forward(x)
	got := toHost(n.Backward(dy))

	m := NewLayerNorm(testDev, 12, 1e-6, true)
	testDev.Copy(m.Weight, n.Weight)
	m.Forward(x)
	assertClose(t, "dx frozen vs trainable", got, to64(toHost(m.Backward(dy))), 0, 0)
}
