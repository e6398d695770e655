//go:build cuda

// The cuBLAS wrapper of the real driver (build tag cuda): handle creation, binding to the
// device's stream, and GemmEx / GemmStridedBatchedEx with FP32 or BF16 inputs, FP32 output
// and FP32 accumulation (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 for TF32
// tensor cores). gorgonia.org/cu/blas has none of these (toolchain.md §3), hence this file.
// Device pointers cross as uintptr_t.
//
// Headers and libraries come from the CUDA 12 toolkit (/usr/local/cuda by default; elsewhere
// set CGO_CFLAGS=-I.../include and CGO_LDFLAGS=-L.../lib64). Without cublas_v2.h the file
// declares the five functions it calls itself, so that `make vet-cuda` can type-check the
// tagged code with cuda.h alone; with the header, a static assertion checks the enum values.
//
// Test: make test-cuda (on a GPU)
package cuda

/*
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64 -lcublas
#include <stdint.h>

// cuBLAS enum values used below (stable across CUDA 11 and 12).
#define ALIGN_OP_N 0                  // CUBLAS_OP_N
#define ALIGN_OP_T 1                  // CUBLAS_OP_T
#define ALIGN_R_32F 0                 // CUDA_R_32F
#define ALIGN_R_16BF 14               // CUDA_R_16BF
#define ALIGN_COMPUTE_32F 68          // CUBLAS_COMPUTE_32F
#define ALIGN_COMPUTE_32F_FAST_TF32 77 // CUBLAS_COMPUTE_32F_FAST_TF32
#define ALIGN_GEMM_DEFAULT (-1)       // CUBLAS_GEMM_DEFAULT

#if __has_include(<cublas_v2.h>)
#include <cublas_v2.h>
_Static_assert(CUBLAS_OP_N == ALIGN_OP_N && CUBLAS_OP_T == ALIGN_OP_T && CUDA_R_32F == ALIGN_R_32F &&
                   CUDA_R_16BF == ALIGN_R_16BF && CUBLAS_COMPUTE_32F == ALIGN_COMPUTE_32F &&
                   CUBLAS_COMPUTE_32F_FAST_TF32 == ALIGN_COMPUTE_32F_FAST_TF32 &&
                   CUBLAS_GEMM_DEFAULT == ALIGN_GEMM_DEFAULT,
               "cuBLAS enum values differ from the ones this wrapper assumes");
#else
// Without the toolkit (compile checks only: `make vet-cuda`), the declarations of
// cublas_v2.h that this file uses; a build that links needs the real header and library.
typedef struct cublasContext* cublasHandle_t;
typedef struct CUstream_st* cudaStream_t;
int cublasCreate_v2(cublasHandle_t* handle);
int cublasDestroy_v2(cublasHandle_t handle);
int cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream);
int cublasGemmEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,
                 const void* A, int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C,
                 int Ctype, int ldc, int computeType, int algo);
int cublasGemmStridedBatchedEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k,
                               const void* alpha, const void* A, int Atype, int lda, long long strideA,
                               const void* B, int Btype, int ldb, long long strideB, const void* beta, void* C,
                               int Ctype, int ldc, long long strideC, int batchCount, int computeType, int algo);
#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetStream cublasSetStream_v2
#endif

static int align_blas_create(cublasHandle_t* h) { return (int)cublasCreate(h); }
static int align_blas_destroy(cublasHandle_t h) { return (int)cublasDestroy(h); }
static int align_blas_set_stream(cublasHandle_t h, void* s) { return (int)cublasSetStream(h, (cudaStream_t)s); }

static int align_blas_gemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                           uintptr_t a, int atype, int lda, long long sa, uintptr_t b, int btype, int ldb,
                           long long sb, float beta, uintptr_t c, int ldc, long long sc, int batch, int tf32) {
  int opa = ta ? ALIGN_OP_T : ALIGN_OP_N, opb = tb ? ALIGN_OP_T : ALIGN_OP_N;
  int at = atype == 1 ? ALIGN_R_16BF : ALIGN_R_32F, bt = btype == 1 ? ALIGN_R_16BF : ALIGN_R_32F;
  int ct = tf32 ? ALIGN_COMPUTE_32F_FAST_TF32 : ALIGN_COMPUTE_32F;
  if (batch == 1)
    return (int)cublasGemmEx(h, opa, opb, m, n, k, &alpha, (const void*)a, at, lda, (const void*)b, bt, ldb, &beta,
                             (void*)c, ALIGN_R_32F, ldc, ct, ALIGN_GEMM_DEFAULT);
  return (int)cublasGemmStridedBatchedEx(h, opa, opb, m, n, k, &alpha, (const void*)a, at, lda, sa, (const void*)b,
                                         bt, ldb, sb, &beta, (void*)c, ALIGN_R_32F, ldc, sc, batch, ct,
                                         ALIGN_GEMM_DEFAULT);
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
