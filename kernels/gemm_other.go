// Kernel list of the Go SGEMM where no assembly kernel exists (not amd64, gccgo, or the
// purego build tag): only the generic Go micro-kernel of gemm_go.go is used.
//
// Test: go test -tags purego -run Gemm ./kernels

//go:build !amd64 || !gc || purego

package kernels

func asmGemmKernels() []*gemmKernel { return nil }

// transposeAsm: no register-blocked transpose; packing transposes element by element.
var transposeAsm func(dst *float32, ds int, src *float32, ss int, rows, cols int)

// copyAsm: no assembly copy; packing copies with the copy builtin.
var copyAsm func(dst *float32, ds int, src *float32, ss int, rows, cols int)

// No vector elementwise loops: bias and residual adds, modulation, gate, bias gradients and
// AdamW loop in Go.
var (
	addAsm      func(dst, a, b *float32, n int)
	mulAddAsm   func(dst, x, s, t *float32, n int)
	mulAsm      func(dst, a, b *float32, n int)
	accumAsm    func(acc *float64, x *float32, n int)
	accumMulAsm func(acc *float64, x, y *float32, n int)
	adamwAsm    func(p, g, m, v *float32, n int, k *[10]float32)
)

// No vector exp loops: GELU and the attention softmax use exp32 one element at a time.
var (
	expSumAsm       func(dst, src *float32, n int, sub float32) float32
	geluAsm         func(dst, src *float32, n int)
	geluBackwardAsm func(dx, x, dout *float32, n int)
)
