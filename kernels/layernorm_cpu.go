// Layer normalisation of the CPU device, forward and backward, with or without the affine
// weight and bias. Row statistics are accumulated in float64; rows are split over threads,
// parameter gradients over columns (each column summed over rows in order), so results do
// not depend on the number of threads.
//
// Test: go test ./kernels -run LayerNorm
package kernels

import "math"

// LayerNormForward normalises each row of inp (N,C):
//
//	mean = sum_c x/C,  var = sum_c (x-mean)^2/C,  rstd = 1/sqrt(var+eps)
//	out  = (x-mean)*rstd*weight + bias
//
// weight and bias (C) may both be nil (no affine: weight 1, bias 0). mean and rstd (N) are
// written for the backward pass. out may alias inp.
func (d *CPU) LayerNormForward(out, mean, rstd, inp, weight, bias *Tensor, N, C int, eps float32) {
	mustLen("LayerNormForward out", out, N*C)
	mustLen("LayerNormForward inp", inp, N*C)
	mustLen("LayerNormForward mean", mean, N)
	mustLen("LayerNormForward rstd", rstd, N)
	if (weight == nil) != (bias == nil) {
		panic("kernels: LayerNormForward: weight and bias must both be set or both be nil")
	}
	if weight != nil {
		mustLen("LayerNormForward weight", weight, C)
		mustLen("LayerNormForward bias", bias, C)
	}
	o, x := Host(out), Host(inp)
	w, b := host(weight), host(bias)
	d.layerNormRows(x, Host(mean), Host(rstd), N, C, eps, func(n int, m, r float64) {
		normRow(o[n*C:(n+1)*C], x[n*C:(n+1)*C], w, b, m, r)
	})
}

// layerNormRows computes the mean and rstd of each row of x (N,C) as LayerNormForward
// defines them, writes them to mu and rs, and calls norm(n, mean, rstd) to write row n's
// output; rows are split over threads. norm may overwrite row n of x.
func (d *CPU) layerNormRows(x, mu, rs []float32, N, C int, eps float32, norm func(n int, m, r float64)) {
	// finish normalises row n from its mean m and sum of squared deviations v2.
	finish := func(n int, m, v2 float64) {
		r := 1 / math.Sqrt(v2/float64(C)+float64(eps))
		norm(n, m, r)
		mu[n], rs[n] = float32(m), float32(r)
	}
	d.parallel(N, rowGrain(C), func(lo, hi int) {
		n := lo
		if rowMeanVar8Asm != nil && C > 0 && C%4 == 0 {
			var mv [16]float64 // eight rows' means, then their sums of squared deviations
			for ; n+8 <= hi; n += 8 {
				rowMeanVar8Asm(&x[n*C], C, &mv)
				for k := range 8 {
					finish(n+k, mv[k], mv[8+k])
				}
			}
		}
		for ; n < hi; n++ {
			m, v2 := rowMeanVar(x[n*C : (n+1)*C])
			finish(n, m, v2)
		}
	})
}

// rowMeanVar returns the mean m of xr and sum_c (xr[c]-m)^2, float64 sums in column order
// (rowMeanVar8Asm's eight lanes add in the same order). Each square is rounded before it is
// added, as in the vector loop: the conversion keeps the compiler from fusing the two.
func rowMeanVar(xr []float32) (m, v2 float64) {
	s := 0.0
	for _, v := range xr {
		s += float64(v)
	}
	m = s / float64(len(xr))
	for _, v := range xr {
		dv := float64(v) - m
		v2 += float64(dv * dv)
	}
	return m, v2
}

// normRow sets or = (xr-m)*r*w + b (w, b nil: no affine), in float64 rounded to float32; the
// multiple of 4 by the vector loop where the CPU has one, the rest in Go, the same bits.
// or may equal xr.
func normRow(or, xr, w, b []float32, m, r float64) {
	c0 := 0
	if normRowAsm != nil && len(xr) >= 4 {
		c0 = len(xr) &^ 3
		if w != nil {
			normRowAffineAsm(&or[0], &xr[0], &w[0], &b[0], c0, m, r)
		} else {
			normRowAsm(&or[0], &xr[0], c0, m, r)
		}
	}
	if w != nil {
		for c := c0; c < len(xr); c++ {
			or[c] = float32(float64((float64(xr[c])-m)*r*float64(w[c])) + float64(b[c])) // not fused
		}
	} else {
		for c := c0; c < len(xr); c++ {
			or[c] = float32((float64(xr[c]) - m) * r)
		}
	}
}

// normModulateRow sets or = float32((xr-m)*r)*s + t, the normalised row modulated: each
// product rounded to float32 before the add (the vector loop where the CPU has one, the rest
// in Go; the same bits), as LayerNormForward then ModulateForward round them. or may equal
// xr.
func normModulateRow(or, xr, s, t []float32, m, r float64) {
	c0 := 0
	if normModulateRowAsm != nil && len(xr) >= 4 {
		c0 = len(xr) &^ 3
		normModulateRowAsm(&or[0], &xr[0], &s[0], &t[0], c0, m, r)
	}
	for c := c0; c < len(xr); c++ {
		h := float32((float64(xr[c]) - m) * r)
		or[c] = float32(h*s[c]) + t[c]
	}
}

// LayerNormBackward, with norm = (x-mean)*rstd and g = weight*dout (g = dout without affine):
//
//	dinp    = (g - mean_c(g) - norm*mean_c(g*norm)) * rstd   (written)
//	dweight += sum_n dout*norm,  dbias += sum_n dout          (accumulated)
//
// mean and rstd are the values cached by LayerNormForward. dweight and dbias may be nil
// (no affine, or frozen affine parameters); weight nil means no affine. dinp may alias dout.
func (d *CPU) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd *Tensor, N, C int) {
	mustLen("LayerNormBackward dinp", dinp, N*C)
	mustLen("LayerNormBackward dout", dout, N*C)
	mustLen("LayerNormBackward inp", inp, N*C)
	mustLen("LayerNormBackward mean", mean, N)
	mustLen("LayerNormBackward rstd", rstd, N)
	for _, p := range []*Tensor{weight, dweight, dbias} {
		if p != nil {
			mustLen("LayerNormBackward parameter", p, C)
		}
	}
	dx, g, x, mu, rs := Host(dinp), Host(dout), Host(inp), Host(mean), Host(rstd)
	w, dw, db := host(weight), host(dweight), host(dbias)

	// Parameter gradients first, over columns, so that dinp may overwrite dout afterwards.
	if dw != nil || db != nil {
		d.parallel(C, colGrain(N), func(lo, hi int) {
			acc := make([]float64, 2*(hi-lo))
			accW, accB := acc[:hi-lo], acc[hi-lo:]
			for n := 0; n < N; n++ {
				m, r := float64(mu[n]), float64(rs[n])
				xr, gr := x[n*C+lo:n*C+hi], g[n*C+lo:n*C+hi]
				for j, v := range xr {
					gv := float64(gr[j])
					accW[j] += gv * (float64(v) - m) * r
					accB[j] += gv
				}
			}
			for j := range accW {
				if dw != nil {
					dw[lo+j] += float32(accW[j])
				}
				if db != nil {
					db[lo+j] += float32(accB[j])
				}
			}
		})
	}

	// float64(weight), or 1 without affine (gv*1 is gv exactly): one multiply either way.
	w64 := make([]float64, C)
	for c := range w64 {
		w64[c] = 1
		if w != nil {
			w64[c] = float64(w[c])
		}
	}
	// finish writes row n's dinp from its sums.
	finish := func(n int, sumG, sumGN float64) {
		m, r := float64(mu[n]), float64(rs[n])
		gradRow(dx[n*C:(n+1)*C], g[n*C:(n+1)*C], x[n*C:(n+1)*C], w64, m, r, sumG/float64(C), sumGN/float64(C))
	}
	d.parallel(N, rowGrain(C), func(lo, hi int) {
		n := lo
		if rowGradSums4Asm != nil && C > 0 && C%4 == 0 {
			var mr, sums [8]float64 // four rows' mean and rstd; their sums of g and g*norm
			for ; n+4 <= hi; n += 4 {
				for k := range 4 {
					mr[k], mr[4+k] = float64(mu[n+k]), float64(rs[n+k])
				}
				rowGradSums4Asm(&g[n*C], &x[n*C], &w64[0], C, &mr, &sums)
				for k := range 4 {
					finish(n+k, sums[k], sums[4+k])
				}
			}
		}
		for ; n < hi; n++ {
			sumG, sumGN := rowGradSums(g[n*C:(n+1)*C], x[n*C:(n+1)*C], w64, float64(mu[n]), float64(rs[n]))
			finish(n, sumG, sumGN)
		}
	})
}

// rowGradSums returns sum_c gv and sum_c gv*norm for one row, gv = g*w and norm = (x-m)*r,
// float64 sums in column order (rowGradSums4Asm's four lanes add in the same order); each
// product rounded before it is added (the conversion keeps the compiler from fusing them).
func rowGradSums(gr, xr []float32, w64 []float64, m, r float64) (sumG, sumGN float64) {
	for c, v := range xr {
		gv := float64(gr[c]) * w64[c]
		sumG += gv
		sumGN += float64(gv * (float64(v) - m) * r)
	}
	return sumG, sumGN
}

// gradRow sets dr = ((gv - meanG) - norm*meanGN) * r, gv = g*w, norm = (x-m)*r, in float64
// rounded to float32; the multiple of 4 by the vector loop where the CPU has one, the rest in
// Go, the same bits. dr may equal gr.
func gradRow(dr, gr, xr []float32, w64 []float64, m, r, meanG, meanGN float64) {
	c0 := 0
	if gradRowAsm != nil && len(xr) >= 4 {
		c0 = len(xr) &^ 3
		gradRowAsm(&dr[0], &gr[0], &xr[0], &w64[0], c0, m, r, meanG, meanGN)
	}
	for c := c0; c < len(xr); c++ {
		gv := float64(gr[c]) * w64[c]
		norm := (float64(xr[c]) - m) * r
		dr[c] = float32((gv - meanG - float64(norm*meanGN)) * r) // not fused
	}
}
