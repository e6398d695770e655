// Elementwise operations of the CPU device: Add, Axpy, Axpby, Scale, Mul, AddRowScaled,
// AddBias and BiasBackward. Every output element depends on its own inputs only (BiasBackward
// sums each column in row order), so results do not depend on the number of threads.
//
// Test: go test ./kernels -run 'Elementwise|AddRowScaled|Bias'
package kernels

// elemGrain is the smallest number of elements worth a goroutine in streaming loops.
const elemGrain = 1 << 14

// rowGrain is the number of rows of width cols that make one elemGrain of work.
func rowGrain(cols int) int {
	if cols <= 0 {
		return 1
	}
	return max(1, elemGrain/cols)
}

// colGrain is the number of columns worth a goroutine when each column costs rows steps.
func colGrain(rows int) int {
	if rows <= 0 {
		return 1
	}
	return max(1, elemGrain/rows)
}

// addInto sets o[i] = x[i] + y[i] over o's length, eight at a time by the vector loop where
// the CPU has one (addAsm), the rest in Go: the same bits either way. o may equal x or y.
func addInto(o, x, y []float32) {
	x, y = x[:len(o)], y[:len(o)]
	i := 0
	if n8 := len(o) &^ 7; addAsm != nil && n8 > 0 {
		addAsm(&o[0], &x[0], &y[0], n8)
		i = n8
	}
	for ; i < len(o); i++ {
		o[i] = x[i] + y[i]
	}
}

// scaleInto sets o[i] *= s, eight at a time by the vector loop where the CPU has one
// (scaleAsm), the rest in Go: the same bits either way.
func scaleInto(o []float32, s float32) {
	i := 0
	if n8 := len(o) &^ 7; scaleAsm != nil && n8 > 0 {
		scaleAsm(&o[0], n8, s)
		i = n8
	}
	for ; i < len(o); i++ {
		o[i] *= s
	}
}

// rowMax is the largest value of a non-empty row as `m := row[0]; for each later v: if v > m
// { m = v }` finds it (NaNs after the first element never win; a NaN first stays), eight at
// a time by the vector loop where the CPU has one (maxAsm). Between zeros of both signs,
// the only equal values with other bits, the vector loop may keep the other one: as a
// softmax's shift, +0 and -0 give the same bits (v - ±0 is v, or for v = ±0 a zero, whose
// exp is 1; and m + log(sum) with log(sum) = +0 is +0 either way).
func rowMax(row []float32) float32 {
	m, rest := row[0], row[1:]
	if n8 := len(rest) &^ 7; maxAsm != nil && n8 > 0 && m == m {
		m = maxAsm(&rest[0], n8, m)
		rest = rest[n8:]
	}
	for _, v := range rest {
		if v > m { // not the max builtin: its NaN and ±0 handling is several times slower
			m = v
		}
	}
	return m
}

// mulAddInto sets o[i] = x[i]*s[i] + t[i] over o's length, the product rounded to float32
// before the sum (never fused), by the vector loop where the CPU has one (mulAddAsm). o may
// equal any input.
func mulAddInto(o, x, s, t []float32) {
	x, s, t = x[:len(o)], s[:len(o)], t[:len(o)]
	i := 0
	if n8 := len(o) &^ 7; mulAddAsm != nil && n8 > 0 {
		mulAddAsm(&o[0], &x[0], &s[0], &t[0], n8)
		i = n8
	}
	for ; i < len(o); i++ {
		o[i] = float32(x[i]*s[i]) + t[i]
	}
}

// mulInto sets o[i] = a[i] * b[i] over o's length (mulAsm where the CPU has it). o may equal
// a or b.
func mulInto(o, a, b []float32) {
	a, b = a[:len(o)], b[:len(o)]
	i := 0
	if n8 := len(o) &^ 7; mulAsm != nil && n8 > 0 {
		mulAsm(&o[0], &a[0], &b[0], n8)
		i = n8
	}
	for ; i < len(o); i++ {
		o[i] = a[i] * b[i]
	}
}

// accumInto adds float64(x[j]) to acc[j] over acc's length: a step of column sums, each
// column summed in its own order (accumAsm where the CPU has it: the same sums).
func accumInto(acc []float64, x []float32) {
	x = x[:len(acc)]
	j := 0
	if n4 := len(acc) &^ 3; accumAsm != nil && n4 > 0 {
		accumAsm(&acc[0], &x[0], n4)
		j = n4
	}
	for ; j < len(acc); j++ {
		acc[j] += float64(x[j])
	}
}

// accumMulInto adds float64(x[j])*float64(y[j]) (exact) to acc[j] over acc's length
// (accumMulAsm where the CPU has it).
func accumMulInto(acc []float64, x, y []float32) {
	x, y = x[:len(acc)], y[:len(acc)]
	j := 0
	if n4 := len(acc) &^ 3; accumMulAsm != nil && n4 > 0 {
		accumMulAsm(&acc[0], &x[0], &y[0], n4)
		j = n4
	}
	for ; j < len(acc); j++ {
		acc[j] += float64(x[j]) * float64(y[j])
	}
}

// Add: out[i] = a[i] + b[i]. out may alias a or b.
func (d *CPU) Add(out, a, b *Tensor) {
	n := out.Len()
	mustLen("Add a", a, n)
	mustLen("Add b", b, n)
	o, x, y := Host(out), Host(a), Host(b)
	d.parallel(n, elemGrain, func(lo, hi int) {
		addInto(o[lo:hi], x[lo:hi], y[lo:hi])
	})
}

// Axpy: y[i] += alpha*x[i].
func (d *CPU) Axpy(y *Tensor, alpha float32, x *Tensor) {
	n := y.Len()
	mustLen("Axpy x", x, n)
	yy, xx := Host(y), Host(x)
	d.parallel(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yy[i] += alpha * xx[i]
		}
	})
}

// Axpby: out[i] = a*x[i] + b*y[i]. out may alias x or y.
func (d *CPU) Axpby(out *Tensor, a float32, x *Tensor, b float32, y *Tensor) {
	n := out.Len()
	mustLen("Axpby x", x, n)
	mustLen("Axpby y", y, n)
	o, xx, yy := Host(out), Host(x), Host(y)
	d.parallel(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = a*xx[i] + b*yy[i]
		}
	})
}

// Scale: x[i] *= alpha.
func (d *CPU) Scale(x *Tensor, alpha float32) {
	xx := Host(x)
	d.parallel(len(xx), elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xx[i] *= alpha
		}
	})
}

// Mul: out[i] = a[i] * b[i]. out may alias a or b.
func (d *CPU) Mul(out, a, b *Tensor) {
	n := out.Len()
	mustLen("Mul a", a, n)
	mustLen("Mul b", b, n)
	o, x, y := Host(out), Host(a), Host(b)
	d.parallel(n, elemGrain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			o[i] = x[i] * y[i]
		}
	})
}

// AddRowScaled: out[r,c] = x[r,c] + s[r]*y[r,c]; x, y, out (rows,cols), s (rows).
// out may alias x or y.
func (d *CPU) AddRowScaled(out, x, s, y *Tensor, rows, cols int) {
	n := rows * cols
	mustLen("AddRowScaled out", out, n)
	mustLen("AddRowScaled x", x, n)
	mustLen("AddRowScaled y", y, n)
	mustLen("AddRowScaled s", s, rows)
	o, xx, ss, yy := Host(out), Host(x), Host(s), Host(y)
	d.parallel(rows, rowGrain(cols), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			sr := ss[r]
			or, xr, yr := o[r*cols:(r+1)*cols], xx[r*cols:(r+1)*cols], yy[r*cols:(r+1)*cols]
			for c := range or {
				or[c] = xr[c] + sr*yr[c]
			}
		}
	})
}

// AddBias: out[n,c] = inp[n,c] + bias[c]; inp, out (N,C), bias (C). out may alias inp.
func (d *CPU) AddBias(out, inp, bias *Tensor, N, C int) {
	mustLen("AddBias out", out, N*C)
	mustLen("AddBias inp", inp, N*C)
	mustLen("AddBias bias", bias, C)
	o, x, b := Host(out), Host(inp), Host(bias)
	d.parallel(N, rowGrain(C), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			addInto(o[n*C:(n+1)*C], x[n*C:(n+1)*C], b)
		}
	})
}

// BiasBackward: dbias[c] += sum_n dout[n,c]; dout (N,C), dbias (C). The column sums are
// accumulated in float64 over n in order; threads split the columns.
func (d *CPU) BiasBackward(dbias, dout *Tensor, N, C int) {
	mustLen("BiasBackward dbias", dbias, C)
	mustLen("BiasBackward dout", dout, N*C)
	db, g := Host(dbias), Host(dout)
	d.parallel(C, colGrain(N), func(lo, hi int) {
		acc := make([]float64, hi-lo)
		for n := 0; n < N; n++ {
			accumInto(acc, g[n*C+lo:n*C+hi])
		}
		for j, v := range acc {
			db[lo+j] += float32(v)
		}
	})
}
