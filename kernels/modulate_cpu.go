// adaLN-Zero operations of the CPU device (DiT, Peebles & Xie 2023): modulation of a
// normalised activation by per-sample shift and scale, and the gated residual.
// Forward passes split rows (b,t) over threads; backward passes split the (b,c) columns,
// each summed over t in order, so results do not depend on the number of threads.
//
// Test: go test ./kernels -run 'Modulate|Gate'
package kernels

// forEachBC calls fn(b, c0, c1) for the pieces of the flattened (b,c) range [lo,hi) of a
// (B,C) array that lie in one row b, in order.
func forEachBC(lo, hi, C int, fn func(b, c0, c1 int)) {
	for j := lo; j < hi; {
		b := j / C
		c0 := j - b*C
		c1 := min(C, c0+hi-j)
		fn(b, c0, c1)
		j += c1 - c0
	}
}

// ModulateForward: out[b,t,c] = x[b,t,c]*(1 + scale[b,c]) + shift[b,c]; x, out (B,T,C),
// shift, scale (B,C). out may alias x.
func (d *CPU) ModulateForward(out, x, shift, scale *Tensor, B, T, C int) {
	mustLen("ModulateForward out", out, B*T*C)
	mustLen("ModulateForward x", x, B*T*C)
	mustLen("ModulateForward shift", shift, B*C)
	mustLen("ModulateForward scale", scale, B*C)
	o, xx, sh, sc := Host(out), Host(x), Host(shift), Host(scale)
	d.parallel(B*T, rowGrain(C), func(lo, hi int) {
		sc1, b1 := make([]float32, C), -1 // 1 + scale of sample b1
		for r := lo; r < hi; r++ {
			if b := r / T; b != b1 {
				for c, v := range sc[b*C : (b+1)*C] {
					sc1[c] = 1 + v
				}
				b1 = b
			}
			mulAddInto(o[r*C:(r+1)*C], xx[r*C:(r+1)*C], sc1, sh[b1*C:(b1+1)*C])
		}
	})
}

// LayerNormModulateForward is LayerNormForward (no affine) into h, then ModulateForward of h
// into out; with h nil, the two in one pass over each row (normModulateRow), the same bits.
func (d *CPU) LayerNormModulateForward(out, h, mean, rstd, x, shift, scale *Tensor, B, T, C int, eps float32) {
	if h != nil {
		d.LayerNormForward(h, mean, rstd, x, nil, nil, B*T, C, eps)
		d.ModulateForward(out, h, shift, scale, B, T, C)
		return
	}
	mustLen("LayerNormModulateForward out", out, B*T*C)
	mustLen("LayerNormModulateForward x", x, B*T*C)
	mustLen("LayerNormModulateForward mean", mean, B*T)
	mustLen("LayerNormModulateForward rstd", rstd, B*T)
	mustLen("LayerNormModulateForward shift", shift, B*C)
	mustLen("LayerNormModulateForward scale", scale, B*C)
	o, xx, sh := Host(out), Host(x), Host(shift)
	sc1 := make([]float32, B*C) // 1 + scale, as ModulateForward rounds it
	for i, v := range Host(scale) {
		sc1[i] = 1 + v
	}
	d.layerNormRows(xx, Host(mean), Host(rstd), B*T, C, eps, func(n int, m, r float64) {
		b := n / T
		normModulateRow(o[n*C:(n+1)*C], xx[n*C:(n+1)*C], sc1[b*C:(b+1)*C], sh[b*C:(b+1)*C], m, r)
	})
}

// GateLayerNormModulateForward is GateForward into x1, then LayerNormModulateForward of x1.
func (d *CPU) GateLayerNormModulateForward(x1, out, mean, rstd, x, gate, y, shift, scale *Tensor, B, T, C int, eps float32) {
	d.GateForward(x1, x, gate, y, B, T, C)
	d.LayerNormModulateForward(out, nil, mean, rstd, x1, shift, scale, B, T, C, eps)
}

// LayerNormModulateBackward recomputes h with LayerNormForward (the same values as the
// forward's) into dinp, then runs ModulateBackward from h into dinp (each element read before
// it is written), LayerNormBackward in place and, with resid, Add(dinp, resid, dinp). Only a
// dinp sharing dout's storage takes scratch for h.
func (d *CPU) LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale *Tensor,
	B, T, C int, eps float32) {
	N := B * T
	h := dinp
	if dinp.Mem == dout.Mem {
		h = d.New(N, C)
	}
	d.LayerNormForward(h, d.New(N), d.New(N), x, nil, nil, N, C, eps)
	d.ModulateBackward(dinp, dshift, dscale, dout, h, scale, B, T, C)
	d.LayerNormBackward(dinp, nil, nil, dinp, x, nil, mean, rstd, N, C)
	if resid != nil {
		d.Add(dinp, resid, dinp)
	}
}

// LayerNormModulateGateBackward is LayerNormModulateBackward, then GateBackward of its dinp.
func (d *CPU) LayerNormModulateGateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, dy, dgate, gate,
	y *Tensor, B, T, C int, eps float32) {
	d.LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, B, T, C, eps)
	d.GateBackward(dy, dgate, dinp, gate, y, B, T, C)
}

// ModulateBackward, for out = x*(1+scale) + shift:
//
//	dx[b,t,c] = dout[b,t,c]*(1 + scale[b,c])           (written)
//	dshift[b,c] += sum_t dout[b,t,c]                    (accumulated, float64 sums)
//	dscale[b,c] += sum_t dout[b,t,c]*x[b,t,c]           (accumulated, float64 sums)
//
// dx may alias dout.
func (d *CPU) ModulateBackward(dx, dshift, dscale, dout, x, scale *Tensor, B, T, C int) {
	mustLen("ModulateBackward dx", dx, B*T*C)
	mustLen("ModulateBackward dout", dout, B*T*C)
	mustLen("ModulateBackward x", x, B*T*C)
	mustLen("ModulateBackward dshift", dshift, B*C)
	mustLen("ModulateBackward dscale", dscale, B*C)
	mustLen("ModulateBackward scale", scale, B*C)
	dxx, dsh, dsc, g, xx, sc := Host(dx), Host(dshift), Host(dscale), Host(dout), Host(x), Host(scale)
	d.parallel(B*C, colGrain(T), func(lo, hi int) {
		acc, sc1 := make([]float64, 2*(hi-lo)), make([]float32, hi-lo)
		forEachBC(lo, hi, C, func(b, c0, c1 int) {
			w := c1 - c0
			aSh, aSc := acc[:w], acc[w:2*w]
			clear(aSh)
			clear(aSc)
			sc1 := sc1[:w] // 1 + scale
			for j, v := range sc[b*C+c0 : b*C+c1] {
				sc1[j] = 1 + v
			}
			for t := 0; t < T; t++ {
				base := (b*T+t)*C + c0
				gr, xr, dr := g[base:base+w], xx[base:base+w], dxx[base:base+w]
				accumInto(aSh, gr)
				accumMulInto(aSc, gr, xr)
				mulInto(dr, gr, sc1) // after gr's reads: dx may alias dout
			}
			for j := 0; j < w; j++ {
				dsh[b*C+c0+j] += float32(aSh[j])
				dsc[b*C+c0+j] += float32(aSc[j])
			}
		})
	})
}

// GateForward: out[b,t,c] = x[b,t,c] + gate[b,c]*y[b,t,c] (the gated residual of
// adaLN-Zero); x, y, out (B,T,C), gate (B,C). out may alias x or y.
func (d *CPU) GateForward(out, x, gate, y *Tensor, B, T, C int) {
	mustLen("GateForward out", out, B*T*C)
	mustLen("GateForward x", x, B*T*C)
	mustLen("GateForward y", y, B*T*C)
	mustLen("GateForward gate", gate, B*C)
	o, xx, gt, yy := Host(out), Host(x), Host(gate), Host(y)
	d.parallel(B*T, rowGrain(C), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			b := r / T
			mulAddInto(o[r*C:(r+1)*C], yy[r*C:(r+1)*C], gt[b*C:(b+1)*C], xx[r*C:(r+1)*C]) // x + gate*y
		}
	})
}

// GateBackward, for out = x + gate*y:
//
//	dy[b,t,c] = gate[b,c]*dout[b,t,c]                   (written)
//	dgate[b,c] += sum_t dout[b,t,c]*y[b,t,c]            (accumulated, float64 sums)
//
// dx = dout is left to the caller. dy may alias dout.
func (d *CPU) GateBackward(dy, dgate, dout, gate, y *Tensor, B, T, C int) {
	mustLen("GateBackward dy", dy, B*T*C)
	mustLen("GateBackward dout", dout, B*T*C)
	mustLen("GateBackward y", y, B*T*C)
	mustLen("GateBackward dgate", dgate, B*C)
	mustLen("GateBackward gate", gate, B*C)
	dyy, dg, g, gt, yy := Host(dy), Host(dgate), Host(dout), Host(gate), Host(y)
	d.parallel(B*C, colGrain(T), func(lo, hi int) {
		acc := make([]float64, hi-lo)
		forEachBC(lo, hi, C, func(b, c0, c1 int) {
			w := c1 - c0
			a := acc[:w]
			clear(a)
			gb := gt[b*C+c0 : b*C+c1]
			for t := 0; t < T; t++ {
				base := (b*T+t)*C + c0
				gr, yr, dr := g[base:base+w], yy[base:base+w], dyy[base:base+w]
				accumMulInto(a, gr, yr)
				mulInto(dr, gb, gr) // after gr's read: dy may alias dout
			}
			for j := 0; j < w; j++ {
				dg[b*C+c0+j] += float32(a[j])
			}
		})
	})
}
