// Activations of the CPU device: GELU (tanh approximation, as in GPT-2 and DiT) and SiLU,
// forward and backward, computed per element in float64 and stored as float32.
//
// Test: go test ./kernels -run 'Gelu|Silu'
package kernels

import "math"

// geluScale is sqrt(2/pi).
var geluScale = math.Sqrt(2 / math.Pi)

// geluMaxExp caps the exponent in the logistic form of GELU so that e*s below never
// becomes Inf*0; at the cap the output is already below 1e-33 in magnitude.
const geluMaxExp = 80

// GeluForward: out = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))), evaluated as
// x*s with s = 0.5*(1 + tanh u) = 1/(1 + exp(-2u)) (one exp, no branches). out may alias inp.
func (d *CPU) GeluForward(out, inp *Tensor) {
	n := out.Len()
	mustLen("GeluForward inp", inp, n)
	o, x := Host(out), Host(inp)
	d.parallel(n, elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			u := geluScale * (v + 0.044715*v*v*v)
			o[i] = float32(v / (1 + math.Exp(min(-2*u, geluMaxExp))))
		}
	})
}

// GeluBackward: dinp = dout * gelu'(x) with, for u = sqrt(2/pi)*(x + 0.044715*x^3),
// gelu'(x) = 0.5*(1 + tanh u) + 0.5*x*(1 - tanh^2 u)*sqrt(2/pi)*(1 + 3*0.044715*x^2),
// evaluated with s = 0.5*(1 + tanh u) = 1/(1 + e), e = exp(-2u), 1 - s = e*s and
// 1 - tanh^2 u = 4*s*(1-s). dinp may alias dout.
func (d *CPU) GeluBackward(dinp, inp, dout *Tensor) {
	n := dinp.Len()
	mustLen("GeluBackward inp", inp, n)
	mustLen("GeluBackward dout", dout, n)
	dx, x, g := Host(dinp), Host(inp), Host(dout)
	d.parallel(n, elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			u := geluScale * (v + 0.044715*v*v*v)
			e := math.Exp(min(-2*u, geluMaxExp))
			s := 1 / (1 + e)
			dg := s + 2*v*s*(e*s)*geluScale*(1+3*0.044715*v*v)
			dx[i] = float32(dg * float64(g[i]))
		}
	})
}

// SiluForward: out = x*sigmoid(x) = x/(1 + exp(-x)). out may alias inp.
func (d *CPU) SiluForward(out, inp *Tensor) {
	n := out.Len()
	mustLen("SiluForward inp", inp, n)
	o, x := Host(out), Host(inp)
	d.parallel(n, elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			o[i] = float32(v / (1 + math.Exp(-v)))
		}
	})
}

// SiluBackward: dinp = dout * s*(1 + x*(1 - s)) with s = sigmoid(x). dinp may alias dout.
func (d *CPU) SiluBackward(dinp, inp, dout *Tensor) {
	n := dinp.Len()
	mustLen("SiluBackward inp", inp, n)
	mustLen("SiluBackward dout", dout, n)
	dx, x, g := Host(dinp), Host(inp), Host(dout)
	d.parallel(n, elemGrain/4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			s := 1 / (1 + math.Exp(-v))
			dx[i] = float32(float64(g[i]) * s * (1 + v*(1-s)))
		}
	})
}
