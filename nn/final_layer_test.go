// Tests of FinalLayer: a fresh head outputs zeros, the forward matches a float64
// reference, and every gradient matches finite differences.
//
// Test: go test ./nn -run FinalLayer
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

func newTrainedFinalLayer(r *hostRand) *FinalLayer {
	f := NewFinalLayer(testDev, 12, 5, 8, 0)
	f.Ada.InitNormal(r, 0.3)
	r.Normal(f.Ada.Bias)
	f.Linear.InitNormal(r, 0.3)
	r.Normal(f.Linear.Bias)
	return f
}

func TestFinalLayerFreshIsZero(t *testing.T) {
	r := newHostRand(120)
	f := NewFinalLayer(testDev, 12, 5, 8, 0)
	y := f.Forward(r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5))
	mustShape("y", y, 2, 7, 8)
	assertClose(t, "y", toHost(y), make([]float64, 2*7*8), 0, 0)
}

func TestFinalLayerForward(t *testing.T) {
	r := newHostRand(121)
	f := newTrainedFinalLayer(r)
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	ch := to64(toHost(c))
	for i, v := range ch {
		ch[i] = v / (1 + math.Exp(-v))
	}
	mod := linear64(ch, toHost(f.Ada.Weight), toHost(f.Ada.Bias), 2, 5, 24)
	h := layerNormRef(to64(toHost(x)), nil, nil, 14, 12, 1e-6)
	for n := range h {
		b, i := n/(7*12), n%12
		h[n] = h[n]*(1+mod[b*24+12+i]) + mod[b*24+i]
	}
	want := linear64(h, toHost(f.Linear.Weight), toHost(f.Linear.Bias), 14, 12, 8)
	assertClose(t, "y", toHost(f.Forward(x, c)), want, 1e-5, 1e-4)
}

func TestFinalLayerGrad(t *testing.T) {
	r := newHostRand(122)
	f := newTrainedFinalLayer(r)
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	var dx, dc *kernels.Tensor
	vars := append(paramVars(f.Params()),
		gcVar{"x", x, func() *kernels.Tensor { return dx }},
		gcVar{"c", c, func() *kernels.Tensor { return dc }})
	gradCheck(t, func() *kernels.Tensor { return f.Forward(x, c) },
		func(g *kernels.Tensor) { dx, dc = f.Backward(g) }, vars, gcOpts{h: 3e-3})
}
