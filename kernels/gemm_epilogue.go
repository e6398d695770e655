// The Go GEMM's epilogue: a linear layer's bias and GELU applied to each band of C's rows as
// soon as its last k block is done, while the band is in the cache, instead of in passes of
// their own over the whole output afterwards (the CPU device's Linear and LinearGelu). Each
// element gets the arithmetic of AddBias then GeluForward, so the results are the same bits.
//
// Test: go test ./kernels -run 'LinearEpilogue'
package kernels

// gemmEpilogue sets C[i][j] += bias[j] where bias is set, then, with gelu, G[i][j] =
// GELU(C[i][j]) (G may be C itself). i0, j0 place the C it is applied to (a rectangle of the
// parallel split) inside the whole product.
type gemmEpilogue struct {
	bias   []float32 // (n), or nil
	gelu   bool
	g      []float32 // GELU's output, rows ldg apart, in the whole product's coordinates
	ldg    int
	i0, j0 int
}

// at returns e for the part of C whose first element is row i0, column j0 of e's C; nil
// stays nil.
func (e *gemmEpilogue) at(i0, j0 int) *gemmEpilogue {
	if e == nil {
		return nil
	}
	r := *e
	r.i0, r.j0 = e.i0+i0, e.j0+j0
	return &r
}

// apply runs e on rows [i, i+rows) and columns [j, j+cols) of c (rows ldc apart).
func (e *gemmEpilogue) apply(c []float32, ldc, i, j, rows, cols int) {
	if e == nil {
		return
	}
	for r := i; r < i+rows; r++ {
		cr := c[r*ldc+j : r*ldc+j+cols]
		if e.bias != nil {
			addInto(cr, cr, e.bias[e.j0+j:e.j0+j+cols])
		}
		if e.gelu {
			geluForward(e.g[(e.i0+r)*e.ldg+e.j0+j:][:cols], cr)
		}
	}
}

// geluFusable reports whether GELU may run in kern's epilogue on rows of n columns with the
// bits of GeluForward: its vector loop (geluAsm) and exp32 differ in the last bit now and
// then, and GeluForward gives every element to the loop but the last n*rows % 8, so the
// epilogue's row pieces must start and end on multiples of 8 (the kernel's nr and nc, and
// n).
func geluFusable(kern *gemmKernel, n int) bool {
	return geluAsm == nil || (n%geluBlock == 0 && kern.nr%geluBlock == 0 && kern.nc%geluBlock == 0)
}

// linearEpilogue runs y = x wᵀ + bias and, where g is set, g = GELU(y) (g may be y), with the
// bias and GELU in the Go GEMM's epilogue (BF16 or FP32, as the device multiplies); it does
// nothing and reports false where OpenBLAS multiplies or GELU is not fusable.
func (d *CPU) linearEpilogue(y, g, x, w, bias *Tensor, N, in, out int) bool {
	kern := d.goKernel()
	if (useOpenBLAS() && !d.bf16) || (g != nil && !geluFusable(kern, out)) {
		return false
	}
	hx := gemmOperand("Linear x", x, N*in, true)
	hw := gemmOperand("Linear w", w, out*in, true)
	hy := gemmOperand("Linear y", y, N*out, true)
	epi := &gemmEpilogue{}
	if bias != nil {
		mustLen("Linear bias", bias, out)
		epi.bias = Host(bias)
	}
	if g != nil {
		mustLen("LinearGelu g", g, N*out)
		epi.gelu, epi.g, epi.ldg = true, Host(g), out
	}
	gemmGoEpilogue(kern, d.threads, false, true, N, out, in, 1, hx, max(in, 1), hw, max(in, 1), 0, hy, max(out, 1), epi)
	return true
}
