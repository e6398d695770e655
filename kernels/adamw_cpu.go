// AdamW optimiser step of the CPU device (Loshchilov & Hutter 2019, "Decoupled Weight Decay
// Regularization", https://arxiv.org/abs/1711.05101), elementwise over the parameter.
//
// Test: go test ./kernels -run AdamW
package kernels

import (
	"fmt"
	"math"
)

// AdamW updates param in place from grad with the moments m and v (all the same length),
// g = grad*h.GradScale (float32; 0 means 1):
//
//	p -= lr*wd*p
//	m = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g^2
//	p -= lr * (m/(1-b1^step)) / (sqrt(v/(1-b2^step)) + eps)
//
// h.Step counts from 1. The bias corrections are computed in float64.
func (d *CPU) AdamW(param, grad, m, v *Tensor, h AdamWParams) {
	n := param.Len()
	mustLen("AdamW grad", grad, n)
	mustLen("AdamW m", m, n)
	mustLen("AdamW v", v, n)
	if h.Step < 1 {
		panic(fmt.Sprintf("kernels: AdamW: step %d, want >= 1", h.Step))
	}
	p, g, mm, vv := Host(param), Host(grad), Host(m), Host(v)
	b1, b2 := h.Beta1, h.Beta2
	bc1 := float32(1 - math.Pow(float64(b1), float64(h.Step)))
	bc2 := float32(1 - math.Pow(float64(b2), float64(h.Step)))
	decay, scale := h.LR*h.WeightDecay, h.Scale()
	// The vector loop's constants, in its order (gemmasm.AdamWAVX2): the same float32 values
	// the loop below computes with, so its results are the same bits.
	k := [10]float32{scale, b1, 1 - b1, b2, 1 - b2, decay, bc2, h.Eps, h.LR, bc1}
	d.parallel(n, elemGrain/2, func(lo, hi int) {
		if n8 := (hi - lo) &^ 7; adamwAsm != nil && n8 > 0 {
			adamwAsm(&p[lo], &g[lo], &mm[lo], &vv[lo], n8, &k)
			lo += n8
		}
		// Each product rounded before it is added, as the vector loop does: the conversions
		// keep the compiler from fusing them (with GOAMD64=v3 it would).
		for i := lo; i < hi; i++ {
			gi := g[i] * scale
			mi := float32(b1*mm[i]) + float32((1-b1)*gi)
			vi := float32(b2*vv[i]) + float32(float32((1-b2)*gi)*gi)
			mm[i], vv[i] = mi, vi
			pi := p[i] - float32(decay*p[i])
			den := float32(math.Sqrt(float64(vi/bc2))) + h.Eps
			p[i] = pi - h.LR*(mi/bc1)/den
		}
	})
}

// AdamWEach runs AdamW on each parameter in turn.
func (d *CPU) AdamWEach(params, grads, ms, vs []*Tensor, hs []AdamWParams) {
	if len(grads) != len(params) || len(ms) != len(params) || len(vs) != len(params) || len(hs) != len(params) {
		panic(fmt.Sprintf("kernels: AdamWEach: %d params, %d grads, %d m, %d v, %d hyper-parameter sets",
			len(params), len(grads), len(ms), len(vs), len(hs)))
	}
	for i := range params {
		d.AdamW(params[i], grads[i], ms[i], vs[i], hs[i])
	}
}
