// The vector loops of the CPU device's elementwise work, in Go assembly (package
// internal/gemmasm): set by gemm_amd64.go's init where the CPU has the instructions, nil
// elsewhere (other architectures, gccgo, the purego build tag), where the callers loop in
// Go. Each handles a multiple of 8 elements (the float64 sums of 4); the callers do the rest.
//
// Test: go test -run 'Gelu|Attention|Exp|Vector' ./kernels
package kernels

// Exp loops (exp_amd64.s) for GELU and the attention softmax; without them exp32 one
// element at a time.
var (
	expSumAsm       func(dst, src *float32, n int, sub float32) float32
	geluAsm         func(dst, src *float32, n int)
	geluBackwardAsm func(dx, x, dout *float32, n int)
)

// Elementwise loops (elementwise_amd64.s) for the bias and residual adds, the modulation,
// the gate and their backward, the column sums of gradients and AdamW, each rounding as the
// Go loop it replaces does (the same bits).
var (
	addAsm      func(dst, a, b *float32, n int)
	mulAddAsm   func(dst, x, s, t *float32, n int)
	mulAsm      func(dst, a, b *float32, n int)
	scaleAsm    func(dst *float32, n int, s float32)
	maxAsm      func(x *float32, n int, m float32) float32
	accumAsm    func(acc *float64, x *float32, n int)
	accumMulAsm func(acc *float64, x, y *float32, n int)
	adamwAsm    func(p, g, m, v *float32, n int, k *[10]float32)
)

// Layer normalisation loops (layernorm_amd64.s) for LayerNormForward (and its backward): eight rows' float64
// statistics at once, each in its own lane and order, and the normalising passes along a
// row; the same bits as the Go loops.
var (
	rowMeanVar8Asm   func(x *float32, C int, mv *[16]float64)
	normRowAsm       func(out, x *float32, n int, m, r float64)
	normRowAffineAsm func(out, x, w, b *float32, n int, m, r float64)
	// LayerNormModulateForward's row: the normalised row modulated.
	normModulateRowAsm func(out, x, s, t *float32, n int, m, r float64)
	// LayerNormBackward: four rows' sums of g*w and g*w*norm, then a row's input gradient.
	rowGradSums4Asm func(g, x *float32, w *float64, C int, mr, sums *[8]float64)
	gradRowAsm      func(dx, g, x *float32, w *float64, n int, m, r, meanG, meanGN float64)
)
