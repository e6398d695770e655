//go:build cuda

// The cuBLAS wrapper of the real driver (build tag cuda): handle creation, binding to the
// device's stream, and GemmEx / GemmStridedBatchedEx with FP32 or BF16 inputs, FP32 output
// and FP32 accumulation (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 for TF32
// tensor cores). gorgonia.org/cu/blas has none of these (toolchain.md §3), hence this file.
// Device pointers cross as uintptr_t.
//
// Headers and libraries come from the CUDA 12 toolkit (/usr/local/cuda by default; elsewhere
// set CGO_CFLAGS=-I.../include and CGO_LDFLAGS=-L.../lib64).
//
// Test: make test-cuda (on a GPU)
package cuda

/*
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64 -lcublas
#include <stdint.h>
#include <cublas_v2.h>

static int align_blas_create(cublasHandle_t* h) { return (int)cublasCreate(h); }
static int align_blas_destroy(cublasHandle_t h) { return (int)cublasDestroy(h); }
static int align_blas_set_stream(cublasHandle_t h, void* s) { return (int)cublasSetStream(h, (cudaStream_t)s); }

static int align_blas_gemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                           uintptr_t a, int atype, int lda, long long sa, uintptr_t b, int btype, int ldb,
                           long long sb, float beta, uintptr_t c, int ldc, long long sc, int batch, int tf32) {
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cudaDataType_t at = atype == 1 ? CUDA_R_16BF : CUDA_R_32F, bt = btype == 1 ? CUDA_R_16BF : CUDA_R_32F;
  cublasComputeType_t ct = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  if (batch == 1)
    return (int)cublasGemmEx(h, opa, opb, m, n, k, &alpha, (const void*)a, at, lda, (const void*)b, bt, ldb,
                             &beta, (void*)c, CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT);
  return (int)cublasGemmStridedBatchedEx(h, opa, opb, m, n, k, &alpha, (const void*)a, at, lda, sa,
                                         (const void*)b, bt, ldb, sb, &beta, (void*)c, CUDA_R_32F, ldc, sc,
                                         batch, ct, CUBLAS_GEMM_DEFAULT);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// cublasStatus names the cublasStatus_t values.
var cublasStatus = map[int]string{
	1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED", 7: "CUBLAS_STATUS_INVALID_VALUE",
	8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR", 13: "CUBLAS_STATUS_EXECUTION_FAILED",
	14: "CUBLAS_STATUS_INTERNAL_ERROR", 15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR",
}

func blasErr(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	name := cublasStatus[int(rc)]
	if name == "" {
		name = fmt.Sprintf("status %d", int(rc))
	}
	return fmt.Errorf("%s: %s", op, name)
}

// cublas is a cuBLAS handle bound to one stream.
type cublas struct{ h C.cublasHandle_t }

// newCublas creates a handle on the current context and binds it to stream (a CUstream,
// which is a cudaStream_t).
func newCublas(stream unsafe.Pointer) (*cublas, error) {
	b := &cublas{}
	if err := blasErr("cublasCreate", C.align_blas_create(&b.h)); err != nil {
		return nil, err
	}
	if err := blasErr("cublasSetStream", C.align_blas_set_stream(b.h, stream)); err != nil {
		C.align_blas_destroy(b.h)
		return nil, err
	}
	return b, nil
}

func (b *cublas) close() error { return blasErr("cublasDestroy", C.align_blas_destroy(b.h)) }

func bi(v bool) C.int {
	if v {
		return 1
	}
	return 0
}

func (b *cublas) gemm(g GemmArgs) error {
	rc := C.align_blas_gemm(b.h, bi(g.TransA), bi(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha),
		C.uintptr_t(g.A), C.int(g.AType), C.int(g.LDA), C.longlong(g.StrideA),
		C.uintptr_t(g.B), C.int(g.BType), C.int(g.LDB), C.longlong(g.StrideB),
		C.float(g.Beta), C.uintptr_t(g.C), C.int(g.LDC), C.longlong(g.StrideC), C.int(g.Batch),
		bi(g.Compute == ComputeTF32))
	return blasErr("cublasGemmEx", rc)
}
