// Row-wise softmax of the CPU device, forward and backward. The forward pass subtracts the
// row maximum before exponentiating (numerically stable) and sums in float64. Rows are
// split over threads.
//
// Test: go test ./kernels -run Softmax
package kernels

import "math"

// SoftmaxForward: out[n,c] = exp(x[n,c] - max_c x[n,:]) / sum_c exp(x[n,c] - max_c x[n,:])
// for inp, out (N,C). A row whose entries are all -Inf (fully masked) gives zeros.
// out may alias inp.
func (d *CPU) SoftmaxForward(out, inp *Tensor, N, C int) {
	mustLen("SoftmaxForward out", out, N*C)
	mustLen("SoftmaxForward inp", inp, N*C)
	o, x := Host(out), Host(inp)
	d.parallel(N, rowGrain(C)/4, func(lo, hi int) {
		for n := lo; n < hi; n++ {
			xr, or := x[n*C:(n+1)*C], o[n*C:(n+1)*C]
			m := float32(math.Inf(-1))
			for _, v := range xr {
				if v > m {
					m = v
				}
			}
			if math.IsInf(float64(m), -1) {
				clear(or)
				continue
			}
			s := 0.0
			for c, v := range xr {
				e := math.Exp(float64(v - m))
				s += e
				or[c] = float32(e)
			}
			inv := 1 / s
			for c, v := range or {
				or[c] = float32(float64(v) * inv)
			}
		}
	})
}

// SoftmaxBackward: dinp[n,c] = out[n,c] * (dout[n,c] - sum_c' dout[n,c']*out[n,c']), the
// sum in float64; out is the forward output. dinp may alias dout or out.
func (d *CPU) SoftmaxBackward(dinp, dout, out *Tensor, N, C int) {
	mustLen("SoftmaxBackward dinp", dinp, N*C)
	mustLen("SoftmaxBackward dout", dout, N*C)
	mustLen("SoftmaxBackward out", out, N*C)
	dx, g, y := Host(dinp), Host(dout), Host(out)
	d.parallel(N, rowGrain(C), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			gr, yr, dr := g[n*C:(n+1)*C], y[n*C:(n+1)*C], dx[n*C:(n+1)*C]
			s := 0.0
			for c, v := range gr {
				s += float64(v) * float64(yr[c])
			}
			for c, v := range gr {
				dr[c] = float32(float64(yr[c]) * (float64(v) - s))
			}
		}
	})
}
