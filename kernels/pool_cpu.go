// Masked mean pooling over the sequence of the CPU device, forward and backward (pooled
// text features for adaLN conditioning and reward heads). Sums are taken in float64 over t
// in order, so results do not depend on the number of threads.
//
// Test: go test ./kernels -run MeanPool
package kernels

// poolDenominators returns sum_t mask[b,t] for each b (T when mask is nil).
func poolDenominators(mask []float32, B, T int) []float64 {
	den := make([]float64, B)
	for b := range den {
		if mask == nil {
			den[b] = float64(T)
			continue
		}
		for _, m := range mask[b*T : (b+1)*T] {
			den[b] += float64(m)
		}
	}
	return den
}

// MeanPoolForward: out[b,c] = sum_t m[b,t]*x[b,t,c] / sum_t m[b,t]; inp (B,T,C), out (B,C),
// mask (B,T) of 0/1 or nil for all ones. A row with no valid token (sum_t m = 0) gives zeros.
func (d *CPU) MeanPoolForward(out, inp, mask *Tensor, B, T, C int) {
	mustLen("MeanPoolForward out", out, B*C)
	mustLen("MeanPoolForward inp", inp, B*T*C)
	if mask != nil {
		mustLen("MeanPoolForward mask", mask, B*T)
	}
	o, x, m := Host(out), Host(inp), host(mask)
	den := poolDenominators(m, B, T)
	d.parallel(B*C, colGrain(T), func(lo, hi int) {
		acc := make([]float64, hi-lo)
		forEachBC(lo, hi, C, func(b, c0, c1 int) {
			a := acc[:c1-c0]
			clear(a)
			for t := 0; t < T; t++ {
				w := 1.0
				if m != nil {
					if w = float64(m[b*T+t]); w == 0 {
						continue
					}
				}
				base := (b*T+t)*C + c0
				for j, v := range x[base : base+c1-c0] {
					a[j] += w * float64(v)
				}
			}
			inv := 0.0
			if den[b] != 0 {
				inv = 1 / den[b]
			}
			for j, v := range a {
				o[b*C+c0+j] = float32(v * inv)
			}
		})
	})
}

// MeanPoolBackward: dinp[b,t,c] = m[b,t]*dout[b,c] / sum_t m[b,t] (written; zeros for a row
// with no valid token); dout (B,C), dinp (B,T,C).
func (d *CPU) MeanPoolBackward(dinp, dout, mask *Tensor, B, T, C int) {
	mustLen("MeanPoolBackward dinp", dinp, B*T*C)
	mustLen("MeanPoolBackward dout", dout, B*C)
	if mask != nil {
		mustLen("MeanPoolBackward mask", mask, B*T)
	}
	dx, g, m := Host(dinp), Host(dout), host(mask)
	den := poolDenominators(m, B, T)
	d.parallel(B*T, rowGrain(C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b := r / T
			w := 0.0
			if den[b] != 0 {
				w = 1 / den[b]
				if m != nil {
					w *= float64(m[r])
				}
			}
			dr, gb := dx[r*C:(r+1)*C], g[b*C:(b+1)*C]
			for c, v := range gb {
				dr[c] = float32(w * float64(v))
			}
		}
	})
}
