// Activations of the CPU device: GELU (tanh approximation, as in GPT-2 and DiT) and SiLU,
// forward and backward. GELU runs over the MLP's hidden activations, the widest tensors of a
// transformer block, so it is computed in float32: eight elements at a time with the vector
// exp loops of internal/gemmasm where the CPU has AVX2+FMA, with exp32 for the rest (and
// everywhere else). SiLU is computed per element in float64.
//
// Test: go test ./kernels -run 'Gelu|Silu'
package kernels

import "math"

// geluScale32 is sqrt(2/pi).
const geluScale32 = 0.7978845608028654

// geluMaxExp caps the exponent in the logistic form of GELU so that e*s below never
// becomes Inf*0; at the cap the output is already below 1e-33 in magnitude.
const geluMaxExp = 80

// GeluForward: out = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))), evaluated in
// float32 as x*s with s = 0.5*(1 + tanh u) = 1/(1 + exp(-2u)) (one exp, no branches).
// out may alias inp. Error against the float64 formula: below 1e-6 absolute + relative.
func (d *CPU) GeluForward(out, inp *Tensor) {
	n := out.Len()
	mustLen("GeluForward inp", inp, n)
	o, x := Host(out), Host(inp)
	d.parallel(geluBlocks(n), elemGrain/4/geluBlock, func(lo, hi int) {
		lo, hi = lo*geluBlock, min(hi*geluBlock, n)
		geluForward(o[lo:hi], x[lo:hi])
	})
}

// geluBlock is the vector loops' step: the GELU passes split their work over threads in
// blocks of it, so that the vector loop and exp32 (whose results differ in the last bit now
// and then) take the same elements, only the last n%8, whatever the number of threads.
const geluBlock = 8

// geluBlocks is the number of geluBlock blocks that cover n elements.
func geluBlocks(n int) int { return (n + geluBlock - 1) / geluBlock }

// geluForward is GeluForward on host slices of equal length.
func geluForward(o, x []float32) {
	const c0, c1 = float32(geluScale32), float32(geluScale32 * 0.044715)
	x = x[:len(o)]
	if n8 := len(o) &^ 7; geluAsm != nil && n8 > 0 {
		geluAsm(&o[0], &x[0], n8)
		o, x = o[n8:], x[n8:]
	}
	for i, v := range x {
		u := v * (c0 + c1*v*v)
		o[i] = v / (1 + exp32(min(-2*u, geluMaxExp)))
	}
}

// GeluBackward: dinp = dout * gelu'(x) with, for u = sqrt(2/pi)*(x + 0.044715*x^3),
// gelu'(x) = 0.5*(1 + tanh u) + 0.5*x*(1 - tanh^2 u)*sqrt(2/pi)*(1 + 3*0.044715*x^2),
// evaluated in float32 with s = 0.5*(1 + tanh u) = 1/(1 + e), e = exp(-2u), 1 - s = e*s
// and 1 - tanh^2 u = 4*s*(1-s). dinp may alias dout.
func (d *CPU) GeluBackward(dinp, inp, dout *Tensor) {
	n := dinp.Len()
	mustLen("GeluBackward inp", inp, n)
	mustLen("GeluBackward dout", dout, n)
	dx, x, g := Host(dinp), Host(inp), Host(dout)
	d.parallel(geluBlocks(n), elemGrain/4/geluBlock, func(lo, hi int) {
		lo, hi = lo*geluBlock, min(hi*geluBlock, n)
		geluBackward(dx[lo:hi], x[lo:hi], g[lo:hi])
	})
}

// geluBackward is GeluBackward on host slices of equal length.
func geluBackward(dx, x, g []float32) {
	const c0, c1 = float32(geluScale32), float32(geluScale32 * 0.044715)
	const d0, d1 = float32(2 * geluScale32), float32(2 * geluScale32 * 3 * 0.044715)
	x, g = x[:len(dx)], g[:len(dx)]
	if n8 := len(dx) &^ 7; geluBackwardAsm != nil && n8 > 0 {
		geluBackwardAsm(&dx[0], &x[0], &g[0], n8)
		dx, x, g = dx[n8:], x[n8:], g[n8:]
	}
	for i, v := range x {
		u := v * (c0 + c1*v*v)
		e := exp32(min(-2*u, geluMaxExp))
		s := 1 / (1 + e)
		dg := s + v*s*(e*s)*(d0+d1*v*v)
		dx[i] = dg * g[i]
	}
}

// exp32 is exp(x) in float32 for x <= 88, relative error about 2e-7: the table-driven
// algorithm described at attnExpRow. Below -87 it returns 0 (no denormals, which would
// slow the products that follow); NaN stays NaN. The vector loops of internal/gemmasm
// (exp_amd64.go) follow the same rules.
func exp32(x float32) float32 {
	const (
		scale = 64 / math.Ln2
		round = 12582912 // 1.5*2^23
		ln2hi = 0.693359375 / 64
		ln2lo = -2.12194440e-4 / 64
	)
	if x < -87 {
		return 0
	}
	t := x*scale + round
	n := t - round
	r := x - n*ln2hi - n*ln2lo
	k := math.Float32bits(t) - 0x4b400000
	return (1 + r*(1+r*(0.5+r*(1.0/6)))) * math.Float32frombits(attnExp2Table[k&63]+(k>>6)<<23)
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
