// amd64 micro-kernels of the Go SGEMM (package internal/gemmasm, Go assembly), chosen at
// run time from the CPU features reported by golang.org/x/sys/cpu.
//
// Test: go test -run Gemm ./kernels (every kernel this CPU supports is tested).

//go:build amd64 && gc && !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"

	"github.com/alignkit/align/kernels/internal/gemmasm"
)

// transposeAsm is the register-blocked transpose used by packing (nil: none).
var transposeAsm = func() func(dst *float32, ds int, src *float32, ss int, rows, cols int) {
	if cpu.X86.HasAVX {
		return gemmasm.TransposeAVX
	}
	return nil
}()

// copyAsm is the strided 2-D copy used by packing (nil: none).
var copyAsm = func() func(dst *float32, ds int, src *float32, ss int, rows, cols int) {
	if cpu.X86.HasAVX {
		return gemmasm.CopyAVX
	}
	return nil
}()

// init picks the vector loops of vector_loops.go this CPU can run.
func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		expSumAsm, geluAsm, geluBackwardAsm = gemmasm.ExpSumAVX2, gemmasm.GeluAVX2, gemmasm.GeluBackwardAVX2
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasAVX512F {
		geluAsm, geluBackwardAsm, expSumAsm = gelu512, geluBackward512, gemmasm.ExpSumAVX512
	}
	if cpu.X86.HasAVX2 {
		addAsm, mulAsm, mulAddAsm = gemmasm.AddAVX2, gemmasm.MulAVX2, gemmasm.MulAddAVX2
		scaleAsm, maxAsm = gemmasm.ScaleAVX2, gemmasm.MaxAVX2
		accumAsm, accumMulAsm, adamwAsm = gemmasm.AccumF64AVX2, gemmasm.AccumMulF64AVX2, gemmasm.AdamWAVX2
		rowMeanVar8Asm, normRowAsm, normRowAffineAsm = gemmasm.RowMeanVar8AVX2, gemmasm.NormRowAVX2, gemmasm.NormRowAffineAVX2
		normModulateRowAsm, rowGradSums4Asm, gradRowAsm = gemmasm.NormModulateRowAVX2, gemmasm.RowGradSums4AVX2, gemmasm.GradRowAVX2
	}
}

// init picks the BF16 kernel and conversions where the CPU has AVX512_BF16 (which
// golang.org/x/sys/cpu reports only where the OS saves the AVX-512 registers).
func init() {
	if cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512BF16 {
		toBF16Asm, pairBF16Asm = gemmasm.ToBF16AVX512, gemmasm.PairBF16AVX512
		bf16GemmKernel = &gemmKernel{name: "avx512bf16-12x32", mr: 12, nr: pairPanel, kc: 384, mc: 384, nc: 640,
			bf16: &bf16Fns{fn: gemmasm.Sbgemm12x32AVX512BF16, direct: gemmasm.Sbgemm12x32DirectAVX512BF16}}
	}
}

// gelu512 is GeluAVX2's contract (n a multiple of 8) with sixteen lanes a step: GeluAVX512
// on the multiple of 16, GeluAVX2 on the last 8. Lane by lane the same operations, so
// GeluForward's bits do not depend on the vector width.
func gelu512(dst, src *float32, n int) {
	n16 := n &^ 15
	if n16 > 0 {
		gemmasm.GeluAVX512(dst, src, n16)
	}
	if n > n16 {
		gemmasm.GeluAVX2(floatAt(dst, n16), floatAt(src, n16), n-n16)
	}
}

// geluBackward512 is gelu512 for GeluBackwardAVX2.
func geluBackward512(dx, x, dout *float32, n int) {
	n16 := n &^ 15
	if n16 > 0 {
		gemmasm.GeluBackwardAVX512(dx, x, dout, n16)
	}
	if n > n16 {
		gemmasm.GeluBackwardAVX2(floatAt(dx, n16), floatAt(x, n16), floatAt(dout, n16), n-n16)
	}
}

// floatAt is &p[i] for a pointer into a slice of float32.
func floatAt(p *float32, i int) *float32 { return (*float32)(unsafe.Add(unsafe.Pointer(p), 4*i)) }

// asmGemmKernels returns the assembly kernels this CPU (and OS) can run, fastest first.
// Blocking: the A micro-panel kc*mr*4 bytes (18 KiB, 9 KiB) sits in the 32-48 KiB L1 and
// the B block kc*nc*4 bytes (~1 MiB) in a 1-2 MiB L2.
func asmGemmKernels() []*gemmKernel {
	var ks []*gemmKernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, &gemmKernel{name: "avx512-12x32", mr: 12, nr: 32, kc: 384, mc: 384, nc: 640,
			fn: gemmasm.Sgemm12x32AVX512, direct: gemmasm.Sgemm12x32DirectAVX512})
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append(ks, &gemmKernel{name: "avx2-6x16", mr: 6, nr: 16, kc: 384, mc: 384, nc: 640,
			fn: gemmasm.Sgemm6x16AVX2, direct: gemmasm.Sgemm6x16DirectAVX2})
	}
	return ks
}
