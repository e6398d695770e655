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
