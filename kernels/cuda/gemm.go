// Matrix products of the CUDA device through the driver's cuBLAS-style GEMM. The device's
// tensors are row-major and cuBLAS is column-major: a row-major (r,c) matrix is the
// column-major (c,r) matrix, so C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T, i.e.
// cuBLAS gets B as its first operand and A as its second, with m and n swapped. With
// GemmBF16 the operands are first rounded to bfloat16 by the f32_to_bf16 kernel into scratch,
// where the product is large enough to pay for that (bf16Pays); smaller ones run in TF32.
//
// Test: go test ./kernels/cuda -run 'Conformance/Gemm'
package cuda

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// operand is a product's input: the storage and element offset its values lie at, and
// where valid their BF16 copy (halfCopy). Its FP32 address (f32) is taken only where the
// product reads FP32 values, which may have to be restored from the copy first.
type operand struct {
	bf16 DevPtr
	s    *storage
	off  int
}

// f32 returns the address of x's FP32 values (0 for an empty operand), restored from the
// BF16 copy where its producer wrote only that.
func (d *Device) f32(x operand) DevPtr {
	if x.s == nil {
		return 0
	}
	d.freshF32(x.s)
	return x.s.ptr + DevPtr(4*x.off)
}

// gemmOperand returns the input t after checking that it holds n elements (exactly n when
// exact); a nil tensor stands for an empty operand.
func (d *Device) gemmOperand(op string, t *kernels.Tensor, n int, exact bool) operand {
	if t == nil && n == 0 {
		return operand{}
	}
	d.checkOperand(op, t, n, exact)
	s := d.storageOf(t)
	return operand{bf16: d.halfAt(s, t.Offset, n), s: s, off: t.Offset}
}

// gemmOutput returns the address of the product's output t (n elements, exactly n when
// exact): wptr's where beta is 0 and the product writes all of t.
func (d *Device) gemmOutput(op string, t *kernels.Tensor, n int, exact bool, beta float32) DevPtr {
	if t == nil && n == 0 {
		return 0
	}
	d.checkOperand(op, t, n, exact)
	if beta == 0 && t.Len() == n {
		return d.wptr(t)
	}
	return d.ptr(t)
}

func (d *Device) checkOperand(op string, t *kernels.Tensor, n int, exact bool) {
	if t == nil {
		panic(fmt.Sprintf("cuda: %s: nil tensor where %d elements were expected", op, n))
	}
	if exact {
		mustLen(op, t, n)
	} else if t.Len() < n {
		panic(fmt.Sprintf("cuda: %s: %v has %d elements, need at least %d", op, t, t.Len(), n))
	}
}

func (d *Device) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b *kernels.Tensor, beta float32, c *kernels.Tensor) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("cuda: Gemm with negative size m=%d n=%d k=%d", m, n, k))
	}
	pa := d.gemmOperand("Gemm A", a, m*k, true)
	pb := d.gemmOperand("Gemm B", b, k*n, true)
	if beta != 0 && m*n > 0 && k > 0 && d.takeZero(c) {
		beta = 0 // C's zeros were pending: the product overwrites it
	}
	if m*n > 0 && k > 0 && d.gemmHalf(transA, transB, m, n, k, alpha, pa, pb, beta, c) {
		return
	}
	pc := d.gemmOutput("Gemm C", c, m*n, true, beta)
	d.gemm(transA, transB, m, n, k, alpha, pa, 0, pb, 0, beta, pc, 0, 1, epilogue{})
}

// gemmHalf runs Gemm with C in BF16 where c is read by products only (StoreHalf) and the
// product runs on BF16 inputs: C's values go to its BF16 copy alone, as linearHalf writes
// y, and with beta != 0 they are read from there too (C = alpha A B + beta C in FP32, then
// rounded), where the copy holds them. A LoRA adapter's output is so summed: its term first,
// the base product added (nn.Linear). It reports whether it ran.
func (d *Device) gemmHalf(transA, transB bool, m, n, k int, alpha float32, a, b operand, beta float32, c *kernels.Tensor) bool {
	if d.noHalfOutputs || c.Len() != m*n || !d.halfOnly(c) || !d.runsBF16(m, n, k, 1, a, m*k, b, k*n) {
		return false
	}
	if beta != 0 && d.halfIn(c, m*n) == 0 {
		return false // C's values are not in its BF16 copy
	}
	c16, _ := d.halfPair(c, nil, true)
	if c16 == 0 {
		return false
	}
	ran := d.tryGemm(transA, transB, m, n, k, alpha, a, b, beta, c16, epilogue{half: true})
	if !ran && beta != 0 {
		return false // the copy keeps C's values: the FP32 product's ptr restores them
	}
	d.endHalfPair(ran, c, nil)
	return ran
}

// Linear runs the product with the bias in its epilogue (GemmArgs.Bias): y (N,out) as
// cuBLAS sees it is the column-major (out,N) matrix, and the bias a vector of its rows.
func (d *Device) Linear(y, x, w, bias *kernels.Tensor, N, in, out int) {
	if N < 0 || in < 0 || out < 0 {
		panic(fmt.Sprintf("cuda: Linear with negative size N=%d in=%d out=%d", N, in, out))
	}
	px := d.gemmOperand("Linear x", x, N*in, true)
	pw := d.gemmOperand("Linear w", w, out*in, true)
	d.checkOperand("Linear y", y, N*out, true)
	if bias != nil {
		mustLen("Linear bias", bias, out)
	}
	if bias != nil && N > 0 && out > 0 && d.linearHalf(y, bias, px, pw, N, in, out) {
		return
	}
	d.linearF32(y, bias, px, pw, N, in, out)
}

// linearF32 runs Linear with y's FP32 values written.
func (d *Device) linearF32(y, bias *kernels.Tensor, px, pw operand, N, in, out int) {
	d.gemm(false, true, N, out, in, 1, px, 0, pw, 0, 0, d.wptr(y), 0, 1, epilogue{bias: d.rptr(bias)})
}

// linearHalf runs Linear with a BF16 output, where y is read by products only (StoreHalf),
// the product runs on BF16 inputs and the driver has the bias epilogue for BF16 (C and the
// bias BF16, as cuBLASLt has them): y's values then go to its BF16 copy alone, and the next
// product reads them without a conversion. It reports whether it ran.
func (d *Device) linearHalf(y, bias *kernels.Tensor, px, pw operand, N, in, out int) bool {
	c16, _ := d.halfPair(y, nil, !d.noHalfOutputs && d.runsBF16(N, out, in, 1, px, N*in, pw, out*in))
	if c16 == 0 {
		return false
	}
	b16, release := d.bf16Of(bias, 0, out)
	defer release()
	ran := d.tryGemm(false, true, N, out, in, 1, px, pw, 0, c16, epilogue{bias: b16, half: true})
	d.endHalfPair(ran, y, nil)
	return ran
}

// LinearBackward runs dx's product, then the weight gradient's (linearWeightGrad). Where dx
// is read by products only (StoreHalf), the product runs on BF16 inputs and the driver can,
// dx is written as BF16 alone (as linearHalf writes y).
func (d *Device) LinearBackward(dx, dw, dbias, dy, x, w *kernels.Tensor, N, in, out int) {
	if N < 0 || in < 0 || out < 0 {
		panic(fmt.Sprintf("cuda: LinearBackward with negative size N=%d in=%d out=%d", N, in, out))
	}
	pdy := d.gemmOperand("LinearBackward dy", dy, N*out, true)
	pw := d.gemmOperand("LinearBackward w", w, out*in, true)
	d.checkOperand("LinearBackward dx", dx, N*in, true)
	ran := false
	if N > 0 && in > 0 {
		c16, _ := d.halfPair(dx, nil, !d.noHalfOutputs && d.runsBF16(N, in, out, 1, pdy, N*out, pw, out*in))
		if c16 != 0 {
			ran = d.tryGemm(false, false, N, in, out, 1, pdy, pw, 0, c16, epilogue{half: true})
			d.endHalfPair(ran, dx, nil)
		}
	}
	if !ran {
		d.gemm(false, false, N, in, out, 1, pdy, 0, pw, 0, 0, d.wptr(dx), 0, 1, epilogue{})
	}
	d.linearWeightGrad(dw, dbias, dy, x, N, in, out)
}

// linearWeightGrad is LinearBackward's dw += dyᵀ·x, with dbias += the column sums of dy in
// the product's epilogue (GemmArgs.BiasGrad, into scratch, then added to dbias, which
// accumulates): dy (N,out) is the product's first operand, transposed, so the column sums of
// cuBLAS's op(B) are the sums over the N rows. Where the driver has no such epilogue,
// BiasBackward sums them.
//
// Where dw's or dbias's zeros are pending (FillEach after ZeroGrad: lazyZero), the product
// overwrites dw (beta 0) and the epilogue writes dbias itself, so neither is read, nor
// filled with zeros first, nor added to.
func (d *Device) linearWeightGrad(dw, dbias, dy, x *kernels.Tensor, N, in, out int) {
	var sums DevPtr // the epilogue's bias gradient, 0 where bias_backward sums it
	direct := false // sums is dbias itself
	if dw != nil {
		pdy := d.gemmOperand("LinearBackward dy", dy, N*out, true) // the dx product may have left dy's BF16 copy
		px := d.gemmOperand("LinearBackward x", x, N*in, true)
		beta := float32(1)
		if out*in > 0 && N > 0 && d.takeZero(dw) {
			beta = 0
		}
		pdw := d.gemmOutput("LinearBackward dw", dw, out*in, true, beta)
		if dbias != nil && N > 0 && out > 0 && !d.noBiasGradEpilogue {
			mustLen("LinearBackward dbias", dbias, out)
			if d.takeZero(dbias) {
				sums, direct = d.wptr(dbias), true
			} else {
				var release func()
				sums, release = d.scratch(4 * out)
				defer release()
			}
		}
		if !d.gemm(true, false, out, in, N, 1, pdy, 0, px, 0, beta, pdw, 0, 1, epilogue{biasGrad: sums}) {
			if direct {
				d.Fill(dbias, 0) // the zeros the epilogue was to overwrite
			}
			sums = 0
		}
	}
	switch {
	case sums != 0 && !direct:
		pdb := d.ptr(dbias)
		d.addBias(pdb, pdb, sums, 1, out)
	case sums == 0 && dbias != nil:
		d.BiasBackward(dbias, dy, N, out)
	}
}

// LinearGelu runs the product with GELU in its epilogue (GemmArgs.GELU = GeluForward: g is
// C, h the epilogue's aux matrix, the bias added before GELU). In BF16 mode, where g and h
// are both read by products only (StoreHalf) and the product runs on BF16 inputs, C, aux and
// the bias are BF16: g and h are then written to their BF16 copies alone, at half the bytes,
// and nothing converts g for the next layer. With h nil the epilogue keeps no aux matrix
// (GELU_BIAS: a forward without a backward writes g alone). Where the driver has no such
// epilogue (or with noGeluEpilogue): Linear, then GeluForward (in place into g where h is
// nil).
func (d *Device) LinearGelu(g, h, x, w, bias *kernels.Tensor, N, in, out int) {
	if N < 0 || in < 0 || out < 0 {
		panic(fmt.Sprintf("cuda: LinearGelu with negative size N=%d in=%d out=%d", N, in, out))
	}
	px := d.gemmOperand("LinearGelu x", x, N*in, true)
	pw := d.gemmOperand("LinearGelu w", w, out*in, true)
	d.checkOperand("LinearGelu g", g, N*out, true)
	if h != nil {
		d.checkOperand("LinearGelu h", h, N*out, true)
	}
	if bias != nil {
		mustLen("LinearGelu bias", bias, out)
	}
	if N > 0 && out > 0 && !d.noGeluEpilogue {
		var ran bool
		if c16, aux16 := d.halfPair(g, h, !d.noHalfOutputs && d.runsBF16(N, out, in, 1, px, N*in, pw, out*in)); c16 != 0 {
			var b16 DevPtr
			if bias != nil {
				var release func()
				b16, release = d.bf16Of(bias, 0, out)
				defer release()
			}
			ran = d.tryGemm(false, true, N, out, in, 1, px, pw, 0, c16,
				epilogue{bias: b16, gelu: GeluForward, aux: aux16, half: true})
			d.endHalfPair(ran, g, h)
		} else {
			var aux DevPtr
			if h != nil {
				aux = d.wptr(h)
			}
			ran = d.tryGemm(false, true, N, out, in, 1, px, pw, 0, d.wptr(g),
				epilogue{bias: d.rptr(bias), gelu: GeluForward, aux: aux})
		}
		if ran {
			return
		}
	}
	if h == nil {
		h = g
	}
	d.linearF32(h, bias, px, pw, N, in, out) // gelu_forward reads h's FP32 values
	d.GeluForward(g, h)
}

// GeluLinearBackward runs dh's product with gelu' in its epilogue (GemmArgs.GELU =
// GeluBackward, h the aux matrix, dbiasH's sums in the DGELU_BGRAD epilogue, into scratch,
// then added), then the weight gradient's (linearWeightGrad). In BF16 mode, where dh is read
// by products only, h's BF16 copy holds its values (LinearGelu's BF16 epilogue) and the
// product runs on BF16 inputs, C, aux and the sums are BF16. Without the epilogue: dh's
// product, gelu_backward in place and BiasBackward.
func (d *Device) GeluLinearBackward(dh, dbiasH, dw, dbias, dy, x, w, h *kernels.Tensor, N, in, out int) {
	if N < 0 || in < 0 || out < 0 {
		panic(fmt.Sprintf("cuda: GeluLinearBackward with negative size N=%d in=%d out=%d", N, in, out))
	}
	pdy := d.gemmOperand("GeluLinearBackward dy", dy, N*out, true)
	pw := d.gemmOperand("GeluLinearBackward w", w, out*in, true)
	d.checkOperand("GeluLinearBackward dh", dh, N*in, true)
	d.checkOperand("GeluLinearBackward h", h, N*in, true)
	if dbiasH != nil {
		mustLen("GeluLinearBackward dbiasH", dbiasH, in)
	}
	ran := N == 0 || in == 0
	if !ran && !d.noGeluEpilogue {
		c16, _ := d.halfPair(dh, nil, !d.noHalfOutputs && d.runsBF16(N, in, out, 1, pdy, N*out, pw, out*in) && d.halfIn(h, N*in) != 0)
		var sums DevPtr
		direct := false // the FP32 sums are written into dbiasH, whose zeros were pending
		switch {
		case dbiasH != nil && c16 == 0 && d.takeZero(dbiasH):
			sums, direct = d.wptr(dbiasH), true
		case dbiasH != nil:
			var release func()
			sums, release = d.scratch(8 * in) // room for BF16 sums' FP32 values after them
			defer release()
		}
		if c16 != 0 {
			ran = d.tryGemm(false, false, N, in, out, 1, pdy, pw, 0, c16,
				epilogue{biasGrad: sums, gelu: GeluBackward, aux: d.halfIn(h, N*in), half: true})
			d.endHalfPair(ran, dh, nil)
			switch { // the BF16 sums to FP32: into dbiasH where its zeros are pending, else after them
			case ran && sums != 0 && d.takeZero(dbiasH):
				d.launch1("bf16_to_f32", in, P(d.wptr(dbiasH)), P(sums), I(in))
				sums = 0
			case ran && sums != 0:
				d.launch1("bf16_to_f32", in, P(sums+DevPtr(4*in)), P(sums), I(in))
				sums += DevPtr(4 * in)
			}
		} else {
			ran = d.tryGemm(false, false, N, in, out, 1, pdy, pw, 0, d.wptr(dh),
				epilogue{biasGrad: sums, gelu: GeluBackward, aux: d.rptr(h)})
		}
		if ran && sums != 0 && !direct {
			pdb := d.ptr(dbiasH)
			d.addBias(pdb, pdb, sums, 1, in)
		}
		if !ran && direct {
			d.Fill(dbiasH, 0) // the zeros the epilogue was to overwrite
		}
	}
	if !ran { // gelu_backward in place writes the FP32 values, which bias_backward sums, and the BF16 copy
		pdh := d.wptr(dh)
		d.gemm(false, false, N, in, out, 1, pdy, 0, pw, 0, 0, pdh, 0, 1, epilogue{})
		ph := d.rptr(h)
		d.launch1("gelu_backward", N*in, P(pdh), P(d.halfOut(dh)), P(ph), P(pdh), I(N*in))
		if dbiasH != nil {
			d.BiasBackward(dbiasH, dh, N, in)
		}
	}
	d.linearWeightGrad(dw, dbias, dy, x, N, in, out)
}

// halfPair returns the BF16 addresses at which a product writes c and aux (nil: none) as its
// output when half (the product runs on BF16 inputs) and both are read by products only
// (StoreHalf), marked as their storages' copies (markHalf); else 0, 0. endHalfPair settles
// them after the product.
func (d *Device) halfPair(c, aux *kernels.Tensor, half bool) (c16, aux16 DevPtr) {
	if !half || !d.halfOnly(c) || (aux != nil && !d.halfOnly(aux)) {
		return 0, 0
	}
	c16 = d.markHalf(d.storageOf(c), c.Offset, c.Len())
	if aux != nil {
		aux16 = d.markHalf(d.storageOf(aux), aux.Offset, aux.Len())
	}
	if c16 == 0 || (aux != nil && aux16 == 0) {
		d.endHalfPair(false, c, aux)
		return 0, 0
	}
	return c16, aux16
}

// endHalfPair leaves c and aux (nil: none) with their values in the BF16 copies alone where
// the product ran, and drops the copies halfPair marked where it did not.
func (d *Device) endHalfPair(ran bool, c, aux *kernels.Tensor) {
	for _, t := range []*kernels.Tensor{c, aux} {
		if t == nil {
			continue
		}
		s := d.storageOf(t)
		if ran {
			s.f32Stale = true
		} else {
			s.half.valid = false
		}
	}
}

func (d *Device) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a *kernels.Tensor, strideA int,
	b *kernels.Tensor, strideB int, beta float32, c *kernels.Tensor, strideC int, batch int) {
	if m < 0 || n < 0 || k < 0 || batch < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic(fmt.Sprintf("cuda: GemmStridedBatched with negative size m=%d n=%d k=%d batch=%d strides %d,%d,%d",
			m, n, k, batch, strideA, strideB, strideC))
	}
	if batch == 0 || m == 0 || n == 0 {
		return
	}
	if batch > 1 && strideC < m*n {
		panic(fmt.Sprintf("cuda: GemmStridedBatched: strideC %d < m*n = %d makes the outputs overlap", strideC, m*n))
	}
	last := batch - 1
	pa := d.gemmOperand("GemmStridedBatched A", a, span(last, strideA, m*k), false)
	pb := d.gemmOperand("GemmStridedBatched B", b, span(last, strideB, k*n), false)
	pc := d.gemmOutput("GemmStridedBatched C", c, span(last, strideC, m*n), false, beta)
	d.gemm(transA, transB, m, n, k, alpha, pa, strideA, pb, strideB, beta, pc, strideC, batch, epilogue{})
}

// span is the number of elements a strided batch needs: last*stride + size (0 if size is 0).
func span(last, stride, size int) int {
	if size == 0 {
		return 0
	}
	return last*stride + size
}

// epilogue is what a product adds in cuBLASLt's epilogue (0: nothing): bias, added to every
// row of C (n values; batch 1 and beta 0 only), or biasGrad, which receives the sums over k
// of every row of op(A) (m values, batch 1): with A = dy and transA, the column sums of dy,
// the bias gradient beside a linear layer's weight gradient dy^T x. gelu with aux (an (m,n)
// matrix like C) is GemmArgs's GELU epilogue (tryGemm; there biasGrad receives the sums of
// C's n columns). half: C, aux, bias and biasGrad are BF16 (the product runs in BF16).
type epilogue struct {
	bias, biasGrad DevPtr
	gelu           GeluEpilogue
	aux            DevPtr
	half           bool
}

// gemm maps a row-major strided batch onto the column-major driver GEMM (gemmArgs). Where the
// driver has no epilogue for this product (ErrNoEpilogue), a bias is added by add_bias; a bias
// gradient is not written, and gemm returns false (else true): the caller sums it.
func (d *Device) gemm(transA, transB bool, m, n, k int, alpha float32, a operand, strideA int,
	b operand, strideB int, beta float32, c DevPtr, strideC int, batch int, epi epilogue) bool {
	if m == 0 || n == 0 || batch == 0 {
		return epi.biasGrad == 0
	}
	g, release := d.gemmArgs(transA, transB, m, n, k, alpha, a, strideA, b, strideB, beta, c, strideC, batch)
	defer release()
	g.Bias, g.BiasGrad = epi.bias, epi.biasGrad
	err := d.drv.Gemm(g)
	ran := true
	if g.epilogue() && errors.Is(err, ErrNoEpilogue) {
		g.Bias, g.BiasGrad, ran = 0, 0, false
		if err = d.drv.Gemm(g); err == nil && epi.bias != 0 {
			d.addBias(c, c, epi.bias, m, n)
		}
	}
	must("Gemm", err)
	return ran || epi.biasGrad == 0
}

// tryGemm runs the row-major product c (m,n) = op(a) op(b) with epi's epilogue (alpha 1,
// beta 0, batch 1; a GELU epilogue's aux rows as long as c's); false, having run nothing,
// where the driver has no such epilogue. With epi.half the product must run in BF16
// (runsBF16).
func (d *Device) tryGemm(transA, transB bool, m, n, k int, alpha float32, a, b operand, beta float32, c DevPtr, epi epilogue) bool {
	g, release := d.gemmArgs(transA, transB, m, n, k, alpha, a, 0, b, 0, beta, c, 0, 1)
	defer release()
	if epi.half {
		if g.AType != BFloat16 {
			panic("cuda: tryGemm: BF16 outputs for a product that does not run in BF16")
		}
		g.CType = BFloat16
	}
	g.Bias, g.BiasGrad, g.GELU, g.Aux = epi.bias, epi.biasGrad, epi.gelu, epi.aux
	if epi.aux != 0 {
		g.LDAux = n
	}
	err := d.drv.Gemm(g)
	if errors.Is(err, ErrNoEpilogue) {
		return false
	}
	must("Gemm", err)
	return true
}

// gemmArgs maps a row-major strided batch onto the column-major driver GEMM's arguments, its
// operands in BF16 where runsBF16 (release hands back their conversions' scratch).
func (d *Device) gemmArgs(transA, transB bool, m, n, k int, alpha float32, a operand, strideA int,
	b operand, strideB int, beta float32, c DevPtr, strideC int, batch int) (GemmArgs, func()) {
	lda, ldb := k, n // row-major leading dimensions of A and B as stored
	if transA {
		lda = m
	}
	if transB {
		ldb = k
	}
	g := GemmArgs{
		TransA: transB, TransB: transA, M: n, N: m, K: k, Alpha: alpha,
		AType: Float32, LDA: max(ldb, 1), StrideA: int64(strideB),
		BType: Float32, LDB: max(lda, 1), StrideB: int64(strideA),
		Beta: beta, C: c, LDC: max(n, 1), StrideC: int64(strideC), Batch: batch,
	}
	na, nb := span(batch-1, strideA, m*k), span(batch-1, strideB, k*n)
	if !d.runsBF16(m, n, k, batch, a, na, b, nb) { // FP32, or TF32 in the TF32 mode and for BF16 mode's small products
		g.A, g.B = d.f32(b), d.f32(a)
		if d.prec != GemmFP32 {
			g.Compute = ComputeTF32
		}
		return g, func() {}
	}
	pa, relA := d.bf16Operand(a, na)
	pb, relB := d.bf16Operand(b, nb)
	g.A, g.AType, g.B, g.BType = pb, BFloat16, pa, BFloat16
	return g, func() { relA(); relB() }
}

// runsBF16 reports whether a product of operands a (na elements) and b (nb) runs on BF16
// inputs: in BF16 mode, where that pays (bf16Pays).
func (d *Device) runsBF16(m, n, k, batch int, a operand, na int, b operand, nb int) bool {
	if d.prec != GemmBF16 {
		return false
	}
	var ops bf16Operands
	for _, x := range []struct {
		op operand
		n  int
	}{{a, na}, {b, nb}} {
		switch c := d.toConvert(x.op, x.n); {
		case c > 0:
			ops.convert, ops.converts = ops.convert+c, ops.converts+1
		case x.op.s != nil && x.op.s.f32Stale: // kept in BF16 alone: TF32 would restore it
			ops.restore, ops.restores = ops.restore+x.n, ops.restores+1
		default:
			ops.copied += x.n
		}
	}
	return d.bf16Pays(m, n, k, batch, ops)
}

// toConvert is the number of elements of operand x (n of them) a BF16 product converts, as
// far as its choice of BF16 is concerned: 0 where a kernel left their BF16 copy, and for a
// weight (KeepHalf), whose conversion is paid once for many products.
func (d *Device) toConvert(x operand, n int) int {
	if x.bf16 != 0 || x.s != nil && x.s.keepHalf && !d.noHalves {
		return 0
	}
	return n
}

// bf16Operand returns the BF16 values of operand x (n elements): its copy, or a conversion
// into the copy's block of its storage, kept for later reads (into scratch for memory that is
// not a tensor's, and with noHalves). With checkHalves a copy is compared with a fresh
// conversion.
func (d *Device) bf16Operand(x operand, n int) (DevPtr, func()) {
	if x.bf16 != 0 {
		d.halfReads++
		if d.checkHalves {
			d.verifyHalf(x, n)
		}
		return x.bf16, func() {}
	}
	p := d.f32(x)
	if x.s != nil && !d.noHalves {
		if q := d.markHalf(x.s, x.off, n); q != 0 {
			d.launch1("f32_to_bf16", n, P(q), P(p), I(n))
			return q, func() {}
		}
	}
	return d.toBF16(p, n)
}

// verifyHalf panics unless x's BF16 copy equals the conversion of its FP32 values (where it
// has any: a copy its producer wrote alone is the values).
func (d *Device) verifyHalf(x operand, n int) {
	if x.s.f32Stale {
		return
	}
	q, release := d.toBF16(d.f32(x), n)
	defer release()
	want, got := make([]uint16, n), make([]uint16, n)
	must("verifyHalf", d.drv.DtoH(unsafe.Pointer(&want[0]), q, 2*n))
	must("verifyHalf", d.drv.DtoH(unsafe.Pointer(&got[0]), x.bf16, 2*n))
	for i := range want {
		if want[i] != got[i] {
			panic(fmt.Sprintf("cuda: stale BF16 copy: element %d is %#04x, its FP32 value rounds to %#04x", i, got[i], want[i]))
		}
	}
}

// gemmPtrs is gemm over a batch of row-major matrices at arbitrary addresses with row
// strides lda, ldb, ldc (A_i at as[i], ...), A and B of element type typ, C FP32: the
// addresses go to the device as three pointer arrays in scratch. FP32 inputs multiply in
// FP32, or TF32 in the TF32 and BF16 modes (attention's products, which bf16Pays rules out
// converting one by one; its forward converts them itself where it can).
func (d *Device) gemmPtrs(typ DataType, transA, transB bool, m, n, k int, alpha float32, as []DevPtr, lda int,
	bs []DevPtr, ldb int, beta float32, cs []DevPtr, ldc int) {
	batch := len(as)
	if len(bs) != batch || len(cs) != batch {
		panic(fmt.Sprintf("cuda: gemmPtrs: %d, %d and %d matrices", len(as), len(bs), len(cs)))
	}
	if m == 0 || n == 0 || batch == 0 {
		return
	}
	words := make([]uint64, 0, 3*batch)
	for _, l := range [][]DevPtr{bs, as, cs} { // cuBLAS's A is our B (gemm's mapping)
		for _, p := range l {
			words = append(words, uint64(p))
		}
	}
	table, release := d.scratch(8 * len(words))
	defer release()
	must("gemmPtrs table", d.drv.HtoD(table, unsafe.Pointer(&words[0]), 8*len(words)))
	g := GemmArgs{
		TransA: transB, TransB: transA, M: n, N: m, K: k, Alpha: alpha,
		A: table, AType: typ, LDA: ldb,
		B: table + DevPtr(8*batch), BType: typ, LDB: lda,
		Beta: beta, C: table + DevPtr(16*batch), LDC: ldc, Batch: batch, Ptrs: true,
	}
	if typ == Float32 && d.prec != GemmFP32 {
		g.Compute = ComputeTF32
	}
	must("Gemm", d.drv.Gemm(g))
}

// bf16MinIntensity is the fewest flops per converted element at which a product in
// GemmBF16 mode converts its operands and runs on BF16 tensor cores rather than in TF32.
// Converting costs about 6 bytes of memory traffic per element beyond the product's own
// reads (4 read, 2 written), about 1.7 ps at 3.5 TB/s; BF16 saves 1/R_tf32 - 1/R_bf16, about
// 1.3e-15 s per flop (an H200 ran DiT-B's MLP product at 310 and 516 TFLOP/s through cuBLAS),
// so the conversion pays from about 1300 flops per element. DiT-B's linear layers have
// 1200 to 5000 (the attention projection's weight gradient 770), its attention products
// (T = 272, 64 per head) at most 272: converting the score matrices cost a BF16 training step
// more than their faster products saved.
const bf16MinIntensity = 1024

// bf16LaunchElems is a conversion's launch in converted elements: the GPU spends about 2 µs
// on a launch whatever its size (an estimate), as long as converting about 1.2 million
// elements takes at 1.7 ps each. It keeps products of a few hundred MFLOP (a text encoder's,
// a timestep embedding's) off conversions that cost more than BF16 saves them.
const bf16LaunchElems = 1.2e6

// bf16Operands is what running a product in BF16 rather than TF32 changes about its
// operands' elements: convert of them converted to BF16 in converts launches, copied read
// from BF16 copies (or weights that keep one, KeepHalf) in 2 bytes instead of 4, and restore
// kept in BF16 alone, whose FP32 values TF32 would restore in restores launches.
type bf16Operands struct{ convert, converts, copied, restore, restores int }

// bf16Pays reports whether a batch of (m,n,k) products on operands ops is worth running in
// BF16: with nothing to convert, always; else where the gain, 2mnk*batch flops, a third of
// bf16Intensity per copied element (2 of a conversion's 6 bytes: what a product limited by
// its weights' reads saves) and the restorations TF32 would need, is at least the cost of
// the conversions, bf16Intensity per element and bf16LaunchElems of them per launch (a
// restoration costs the same). Tests set bf16Intensity to 0: BF16 always.
func (d *Device) bf16Pays(m, n, k, batch int, ops bf16Operands) bool {
	if ops.convert == 0 {
		return true
	}
	I := d.bf16Intensity
	gain := 2*float64(m)*float64(n)*float64(k)*float64(batch) + I/3*float64(ops.copied) +
		I*(float64(ops.restore)+bf16LaunchElems*float64(ops.restores))
	return gain >= I*(float64(ops.convert)+bf16LaunchElems*float64(ops.converts))
}

// toBF16 converts n floats at p into bfloat16 scratch.
func (d *Device) toBF16(p DevPtr, n int) (DevPtr, func()) {
	q, release := d.scratch(2 * max(n, 1))
	d.launch1("f32_to_bf16", n, P(q), P(p), I(n))
	return q, release
}
