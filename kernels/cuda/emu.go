// Go side of the CPU emulation (emu_kernels.cc): the kernel table, launches with a watchdog,
// host memory standing in for device memory, and the reference GEMM. The emulated driver
// (emudriver.go) is built on these functions.
//
// The .cu sources are embedded here: the Go build cache hashes embedded files, so editing a
// kernel rebuilds the emulation (a #include alone is not tracked; toolchain.md §5.5).
//
// Test: go test ./kernels/cuda
package cuda

/*
#cgo CXXFLAGS: -std=c++20 -O2 -Wall -Wno-unused-function
#cgo LDFLAGS: -pthread
#include <stdint.h>
#include <stdlib.h>

int emu_kernel_count(void);
const char* emu_kernel_name(int i);
const char* emu_kernel_sig(int i);
int emu_launch(const char* name, const char* sig, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
               unsigned by, unsigned bz, unsigned shmem, const uint64_t* args, int nargs, int fiber,
               long long timeout_ms, char* err, int errlen);
uintptr_t emu_alloc(size_t bytes);
int emu_free(uintptr_t p);
int emu_check_ptr(uintptr_t p, size_t bytes);
void emu_htod(uintptr_t dst, const void* src, size_t n);
void emu_dtoh(void* dst, uintptr_t src, size_t n);
void emu_dtod(uintptr_t dst, uintptr_t src, size_t n);
void emu_memset32(uintptr_t dst, unsigned v, size_t n);
void emu_gemm(int transa, int transb, int m, int n, int k, float alpha, uintptr_t a, int atype, int lda,
              long long strideA, uintptr_t b, int btype, int ldb, long long strideB, float beta, uintptr_t c,
              int ctype, int ldc, long long strideC, int batch, int compute, uintptr_t bias, uintptr_t bgrad,
              int gelu, uintptr_t aux, int ldaux);
*/
import "C"

import (
	"embed"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// kernelSources holds the .cu files (and the headers they include) as compiled into the
// emulation and into the committed PTX.
//
//go:embed *.cu *.h
var kernelSources embed.FS

// emuKernel is one entry of the emulation's kernel table.
type emuKernel struct {
	Name string
	Sig  string // one letter per parameter: p pointer, i int, u unsigned, f float, d double, q 64-bit
}

// emuKernels lists the kernels compiled into the emulation.
func emuKernels() []emuKernel {
	n := int(C.emu_kernel_count())
	ks := make([]emuKernel, n)
	for i := range ks {
		ks[i] = emuKernel{C.GoString(C.emu_kernel_name(C.int(i))), C.GoString(C.emu_kernel_sig(C.int(i)))}
	}
	return ks
}

// emuLaunch runs a kernel on the CPU in the given mode. A launch that runs longer than timeout is reported as an error and leaves the
// emulator refusing later launches.
func emuLaunch(name, sig string, grid, block Dim3, shmem int, args []uint64, mode EmuMode, timeout time.Duration) error {
	cname, csig := C.CString(name), C.CString(sig)
	defer C.free(unsafe.Pointer(cname))
	defer C.free(unsafe.Pointer(csig))
	var argp *C.uint64_t
	if len(args) > 0 {
		argp = (*C.uint64_t)(unsafe.Pointer(&args[0]))
	}
	var msg [1024]C.char
	f := C.int(mode)
	rc := C.emu_launch(cname, csig, C.uint(grid.X), C.uint(grid.Y), C.uint(grid.Z),
		C.uint(block.X), C.uint(block.Y), C.uint(block.Z), C.uint(shmem), argp, C.int(len(args)), f,
		C.longlong(timeout.Milliseconds()), &msg[0], C.int(len(msg)))
	if rc != 0 {
		return errors.New(C.GoString(&msg[0]))
	}
	return nil
}

func emuAlloc(bytes int) DevPtr { return DevPtr(C.emu_alloc(C.size_t(bytes))) }

func emuFree(p DevPtr) error {
	switch C.emu_free(C.uintptr_t(p)) {
	case 1:
		return fmt.Errorf("free of %#x, which is not an allocated block", uint64(p))
	case 2:
		return fmt.Errorf("block %#x was written past its end", uint64(p))
	}
	return nil
}

func emuCheckPtr(p DevPtr, bytes int) bool {
	return C.emu_check_ptr(C.uintptr_t(p), C.size_t(bytes)) == 1
}

func emuHtoD(dst DevPtr, src unsafe.Pointer, bytes int) {
	C.emu_htod(C.uintptr_t(dst), src, C.size_t(bytes))
}

func emuDtoH(dst unsafe.Pointer, src DevPtr, bytes int) {
	C.emu_dtoh(dst, C.uintptr_t(src), C.size_t(bytes))
}

func emuDtoD(dst, src DevPtr, bytes int) {
	C.emu_dtod(C.uintptr_t(dst), C.uintptr_t(src), C.size_t(bytes))
}

func emuMemset32(dst DevPtr, v uint32, n int) {
	C.emu_memset32(C.uintptr_t(dst), C.uint(v), C.size_t(n))
}

func b2i(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// emuGemm is the reference for Driver.Gemm (column-major, cuBLAS GemmStridedBatchedEx).
func emuGemm(g GemmArgs) {
	C.emu_gemm(b2i(g.TransA), b2i(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha),
		C.uintptr_t(g.A), C.int(g.AType), C.int(g.LDA), C.longlong(g.StrideA),
		C.uintptr_t(g.B), C.int(g.BType), C.int(g.LDB), C.longlong(g.StrideB),
		C.float(g.Beta), C.uintptr_t(g.C), C.int(g.CType), C.int(g.LDC), C.longlong(g.StrideC), C.int(g.Batch),
		C.int(g.Compute), C.uintptr_t(g.Bias), C.uintptr_t(g.BiasGrad), C.int(g.GELU), C.uintptr_t(g.Aux), C.int(g.LDAux))
}
