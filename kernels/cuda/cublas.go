//go:build cuda

// The cuBLAS wrapper of the real driver (build tag cuda): handle creation, binding to the
// device's stream, and GemmEx / GemmStridedBatchedEx / GemmBatchedEx with FP32 or BF16 inputs, FP32 output
// and FP32 accumulation (CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 for TF32
// tensor cores); products with a bias (GemmArgs.Bias), a bias gradient (BiasGrad) or GELU
// (GELU) go through cuBLASLt's matmul with the BIAS, BGRADB, GELU_AUX(_BIAS), GELU(_BIAS)
// (no aux matrix) or DGELU(_BGRAD) epilogue, one plan (descriptor, layouts, heuristic's
// algorithm) per epilogue and shape; their C may be BF16 (CType).
// gorgonia.org/cu/blas has none of these (toolchain.md §3), hence this file. Device pointers
// cross as uintptr_t.
//
// Headers and libraries come from the CUDA 12 toolkit (/usr/local/cuda by default; elsewhere
// set CGO_CFLAGS=-I.../include and CGO_LDFLAGS=-L.../lib64). Without cublas_v2.h the file
// declares the functions it calls itself, so that `make vet-cuda` can type-check the
// tagged code with cuda.h alone; with the header, a static assertion checks the enum values.
//
// Test: make test-cuda (on a GPU)
package cuda

/*
#cgo linux CFLAGS: -I/usr/local/cuda/include
#cgo linux LDFLAGS: -L/usr/local/cuda/lib64 -lcublas -lcublasLt
#include <stdint.h>

// cuBLAS enum values used below (stable across CUDA 11 and 12).
#define ALIGN_OP_N 0                  // CUBLAS_OP_N
#define ALIGN_OP_T 1                  // CUBLAS_OP_T
#define ALIGN_R_32F 0                 // CUDA_R_32F
#define ALIGN_R_16BF 14               // CUDA_R_16BF
#define ALIGN_COMPUTE_32F 68          // CUBLAS_COMPUTE_32F
#define ALIGN_COMPUTE_32F_FAST_TF32 77 // CUBLAS_COMPUTE_32F_FAST_TF32
#define ALIGN_GEMM_DEFAULT (-1)       // CUBLAS_GEMM_DEFAULT
// cuBLASLt enum values used below.
#define ALIGN_LT_DESC_TRANSA 3        // CUBLASLT_MATMUL_DESC_TRANSA
#define ALIGN_LT_DESC_TRANSB 4        // CUBLASLT_MATMUL_DESC_TRANSB
#define ALIGN_LT_DESC_EPILOGUE 7      // CUBLASLT_MATMUL_DESC_EPILOGUE
#define ALIGN_LT_DESC_BIAS_POINTER 8  // CUBLASLT_MATMUL_DESC_BIAS_POINTER
#define ALIGN_LT_DESC_AUX_POINTER 11  // CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER
#define ALIGN_LT_DESC_AUX_LD 12       // CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD
#define ALIGN_LT_EPILOGUE_DEFAULT 1   // CUBLASLT_EPILOGUE_DEFAULT
#define ALIGN_LT_EPILOGUE_BIAS 4      // CUBLASLT_EPILOGUE_BIAS
#define ALIGN_LT_EPILOGUE_BGRADB 512  // CUBLASLT_EPILOGUE_BGRADB
#define ALIGN_LT_EPILOGUE_GELU 32           // CUBLASLT_EPILOGUE_GELU
#define ALIGN_LT_EPILOGUE_GELU_BIAS 36      // CUBLASLT_EPILOGUE_GELU_BIAS
#define ALIGN_LT_EPILOGUE_GELU_AUX 160      // CUBLASLT_EPILOGUE_GELU_AUX
#define ALIGN_LT_EPILOGUE_GELU_AUX_BIAS 164 // CUBLASLT_EPILOGUE_GELU_AUX_BIAS
#define ALIGN_LT_EPILOGUE_DGELU 192         // CUBLASLT_EPILOGUE_DGELU
#define ALIGN_LT_EPILOGUE_DGELU_BGRAD 208   // CUBLASLT_EPILOGUE_DGELU_BGRAD
#define ALIGN_LT_PREF_MAX_WORKSPACE 1 // CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES
#define ALIGN_LT_PREF_ALIGN_A 5       // CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES (B, C, D follow)
#define ALIGN_LT_NO_ALGO (-1)         // align_lt_plan: the heuristic found no algorithm
#define ALIGN_LT_MAX_ALGOS 8          // the most candidates a plan keeps from the heuristic

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
int cublasSetWorkspace_v2(cublasHandle_t handle, void* workspace, size_t workspaceSizeInBytes);
int cublasGemmEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,
                 const void* A, int Atype, int lda, const void* B, int Btype, int ldb, const void* beta, void* C,
                 int Ctype, int ldc, int computeType, int algo);
int cublasGemmBatchedEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k, const void* alpha,
                        const void* const Aarray[], int Atype, int lda, const void* const Barray[], int Btype, int ldb,
                        const void* beta, void* const Carray[], int Ctype, int ldc, int batchCount, int computeType,
                        int algo);
int cublasGemmStridedBatchedEx(cublasHandle_t handle, int transa, int transb, int m, int n, int k,
                               const void* alpha, const void* A, int Atype, int lda, long long strideA,
                               const void* B, int Btype, int ldb, long long strideB, const void* beta, void* C,
                               int Ctype, int ldc, long long strideC, int batchCount, int computeType, int algo);
#define cublasCreate cublasCreate_v2
#define cublasDestroy cublasDestroy_v2
#define cublasSetStream cublasSetStream_v2
#define cublasSetWorkspace cublasSetWorkspace_v2
#endif

#if __has_include(<cublasLt.h>)
#include <cublasLt.h>
_Static_assert(CUBLASLT_MATMUL_DESC_TRANSA == ALIGN_LT_DESC_TRANSA && CUBLASLT_MATMUL_DESC_TRANSB == ALIGN_LT_DESC_TRANSB &&
                   CUBLASLT_MATMUL_DESC_EPILOGUE == ALIGN_LT_DESC_EPILOGUE &&
                   CUBLASLT_MATMUL_DESC_BIAS_POINTER == ALIGN_LT_DESC_BIAS_POINTER &&
                   CUBLASLT_EPILOGUE_DEFAULT == ALIGN_LT_EPILOGUE_DEFAULT &&
                   CUBLASLT_EPILOGUE_BIAS == ALIGN_LT_EPILOGUE_BIAS && CUBLASLT_EPILOGUE_BGRADB == ALIGN_LT_EPILOGUE_BGRADB &&
                   CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER == ALIGN_LT_DESC_AUX_POINTER &&
                   CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD == ALIGN_LT_DESC_AUX_LD &&
                   CUBLASLT_EPILOGUE_GELU == ALIGN_LT_EPILOGUE_GELU &&
                   CUBLASLT_EPILOGUE_GELU_BIAS == ALIGN_LT_EPILOGUE_GELU_BIAS &&
                   CUBLASLT_EPILOGUE_GELU_AUX == ALIGN_LT_EPILOGUE_GELU_AUX &&
                   CUBLASLT_EPILOGUE_GELU_AUX_BIAS == ALIGN_LT_EPILOGUE_GELU_AUX_BIAS &&
                   CUBLASLT_EPILOGUE_DGELU == ALIGN_LT_EPILOGUE_DGELU &&
                   CUBLASLT_EPILOGUE_DGELU_BGRAD == ALIGN_LT_EPILOGUE_DGELU_BGRAD &&
                   CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES == ALIGN_LT_PREF_MAX_WORKSPACE &&
                   CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES == ALIGN_LT_PREF_ALIGN_A &&
                   CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES == ALIGN_LT_PREF_ALIGN_A + 3,
               "cuBLASLt enum values differ from the ones this wrapper assumes");
#else
// The declarations of cublasLt.h that this file uses (compile checks without the toolkit).
typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque_t* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque_t* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque_t* cublasLtMatmulPreference_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  int state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;
int cublasLtCreate(cublasLtHandle_t* handle);
int cublasLtDestroy(cublasLtHandle_t handle);
int cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* desc, int computeType, int scaleType);
int cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc);
int cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, int attr, const void* buf, size_t size);
int cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* layout, int type, uint64_t rows, uint64_t cols, int64_t ld);
int cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout);
int cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* pref);
int cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref);
int cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref, int attr, const void* buf, size_t size);
int cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                   cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                   cublasLtMatmulPreference_t pref, int requested,
                                   cublasLtMatmulHeuristicResult_t* results, int* returned);
int cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                   cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta, const void* C,
                   cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t* algo,
                   void* workspace, size_t workspaceSize, cudaStream_t stream);
#endif

static int align_blas_create(cublasHandle_t* h) { return (int)cublasCreate(h); }
static int align_blas_destroy(cublasHandle_t h) { return (int)cublasDestroy(h); }
static int align_blas_set_stream(cublasHandle_t h, void* s) { return (int)cublasSetStream(h, (cudaStream_t)s); }
static int align_blas_set_workspace(cublasHandle_t h, uintptr_t ws, size_t size) {
  return (int)cublasSetWorkspace(h, (void*)ws, size);
}

// align_lt_plan is a cuBLASLt matmul of one shape with an epilogue (GemmArgs): C (m,n)
// column-major of type ctype (FP32 or BF16), A and B FP32 or BF16 as stored (ta: A is (k,m));
// the epilogue's vector (bias or bias gradient) and aux matrix (GELU's input, leading
// dimension ldaux) have C's type, as cuBLASLt has them by default.
typedef struct {
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t a, b, c;
  cublasLtMatmulAlgo_t algos[ALIGN_LT_MAX_ALGOS];  // the heuristic's candidates, its best first
  int nalgos;
  int algo;  // the candidate that runs
} align_lt_plan;

static int align_lt_create(cublasLtHandle_t* h) { return (int)cublasLtCreate(h); }
static int align_lt_destroy(cublasLtHandle_t h) { return (int)cublasLtDestroy(h); }

static void align_lt_plan_free(align_lt_plan* p) {
  if (p->desc) cublasLtMatmulDescDestroy(p->desc);
  if (p->a) cublasLtMatrixLayoutDestroy(p->a);
  if (p->b) cublasLtMatrixLayoutDestroy(p->b);
  if (p->c) cublasLtMatrixLayoutDestroy(p->c);
}

static int align_type(int t) { return t == 1 ? ALIGN_R_16BF : ALIGN_R_32F; }

// align_lt_pointers sets the epilogue's vector and aux matrix addresses (aux only where the
// epilogue has one: ldaux > 0).
static int align_lt_pointers(align_lt_plan* p, uintptr_t vec, uintptr_t aux, long long ldaux) {
  const void* vp = (const void*)vec;
  const void* ap = (const void*)aux;
  int rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_BIAS_POINTER, &vp, sizeof vp);
  if (!rc && ldaux > 0) rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_AUX_POINTER, &ap, sizeof ap);
  return rc;
}

// align_lt_plan_make fills p (zeroed by the caller) with the heuristic's first `requested`
// algorithms (at most ALIGN_LT_MAX_ALGOS; the first runs until the caller picks another)
// for epilogue epi (an ALIGN_LT_EPILOGUE_ value), operands aligned to at least ala, alb, alc
// bytes, and a vector and aux matrix at the alignments of vec's and aux's addresses (the
// heuristic reads them from the pointers); ALIGN_LT_NO_ALGO when there is none.
static int align_lt_plan_make(cublasLtHandle_t h, align_lt_plan* p, unsigned epi, int ta, int tb, int m, int n, int k,
                              int atype, int lda, int btype, int ldb, int ctype, int ldc, int tf32, size_t ws,
                              unsigned ala, unsigned alb, unsigned alc, uintptr_t vec, uintptr_t aux,
                              long long ldaux, int requested) {
  int opa = ta ? ALIGN_OP_T : ALIGN_OP_N, opb = tb ? ALIGN_OP_T : ALIGN_OP_N;
  int rc = (int)cublasLtMatmulDescCreate(&p->desc, tf32 ? ALIGN_COMPUTE_32F_FAST_TF32 : ALIGN_COMPUTE_32F, ALIGN_R_32F);
  if (!rc) rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_TRANSA, &opa, sizeof opa);
  if (!rc) rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_TRANSB, &opb, sizeof opb);
  if (!rc) rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_EPILOGUE, &epi, sizeof epi);
  if (!rc && ldaux > 0) rc = (int)cublasLtMatmulDescSetAttribute(p->desc, ALIGN_LT_DESC_AUX_LD, &ldaux, sizeof ldaux);
  if (!rc) rc = align_lt_pointers(p, vec, aux, ldaux);
  if (!rc) rc = (int)cublasLtMatrixLayoutCreate(&p->a, align_type(atype), ta ? k : m, ta ? m : k, lda);
  if (!rc) rc = (int)cublasLtMatrixLayoutCreate(&p->b, align_type(btype), tb ? n : k, tb ? k : n, ldb);
  if (!rc) rc = (int)cublasLtMatrixLayoutCreate(&p->c, align_type(ctype), m, n, ldc);
  if (rc) return rc;
  cublasLtMatmulPreference_t pref;
  if ((rc = (int)cublasLtMatmulPreferenceCreate(&pref))) return rc;
  rc = (int)cublasLtMatmulPreferenceSetAttribute(pref, ALIGN_LT_PREF_MAX_WORKSPACE, &ws, sizeof ws);
  unsigned al[4] = {ala, alb, alc, alc};  // A, B, C, D (D is C)
  for (int i = 0; i < 4 && !rc; i++)
    rc = (int)cublasLtMatmulPreferenceSetAttribute(pref, ALIGN_LT_PREF_ALIGN_A + i, &al[i], sizeof al[i]);
  cublasLtMatmulHeuristicResult_t res[ALIGN_LT_MAX_ALGOS];
  int found = 0;
  if (requested < 1) requested = 1;
  if (requested > ALIGN_LT_MAX_ALGOS) requested = ALIGN_LT_MAX_ALGOS;
  if (!rc)
    rc = (int)cublasLtMatmulAlgoGetHeuristic(h, p->desc, p->a, p->b, p->c, p->c, pref, requested, res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (rc) return rc;
  for (int i = 0; i < found; i++)
    if (res[i].state == 0) p->algos[p->nalgos++] = res[i].algo;  // CUBLAS_STATUS_SUCCESS
  if (p->nalgos < 1) return ALIGN_LT_NO_ALGO;
  p->algo = 0;
  return 0;
}

// align_lt_run runs candidate algo of p: D = epilogue(alpha A B + beta C), D at d (c for the
// product itself; scratch when timing candidates, which leaves C as it was).
static int align_lt_run(cublasLtHandle_t h, align_lt_plan* p, int algo, float alpha, uintptr_t a, uintptr_t b,
                        float beta, uintptr_t c, uintptr_t d, uintptr_t vec, uintptr_t aux, long long ldaux,
                        uintptr_t ws, size_t wsSize, void* stream) {
  int rc = align_lt_pointers(p, vec, aux, ldaux);
  if (rc) return rc;
  return (int)cublasLtMatmul(h, p->desc, &alpha, (const void*)a, p->a, (const void*)b, p->b, &beta, (const void*)c,
                             p->c, (void*)d, p->c, &p->algos[algo], (void*)ws, wsSize, (cudaStream_t)stream);
}

static int align_blas_gemm(cublasHandle_t h, int ta, int tb, int m, int n, int k, float alpha,
                           uintptr_t a, int atype, int lda, long long sa, uintptr_t b, int btype, int ldb,
                           long long sb, float beta, uintptr_t c, int ldc, long long sc, int batch, int tf32,
                           int ptrs) {
  int opa = ta ? ALIGN_OP_T : ALIGN_OP_N, opb = tb ? ALIGN_OP_T : ALIGN_OP_N;
  int at = atype == 1 ? ALIGN_R_16BF : ALIGN_R_32F, bt = btype == 1 ? ALIGN_R_16BF : ALIGN_R_32F;
  int ct = tf32 ? ALIGN_COMPUTE_32F_FAST_TF32 : ALIGN_COMPUTE_32F;
  if (ptrs)  // a, b, c: device arrays of batch addresses
    return (int)cublasGemmBatchedEx(h, opa, opb, m, n, k, &alpha, (const void* const*)a, at, lda,
                                    (const void* const*)b, bt, ldb, &beta, (void* const*)c, ALIGN_R_32F, ldc, batch,
                                    ct, ALIGN_GEMM_DEFAULT);
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
	"errors"
	"fmt"
	"math"
	"unsafe"

	"gorgonia.org/cu"
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

// ltWorkspace is cuBLASLt's workspace, and cuBLAS's (cublasSetWorkspace): 32 MiB, what
// NVIDIA advises for Hopper.
const ltWorkspace = 32 << 20

// ltKey is what a cuBLASLt plan depends on: the epilogue, shape, types, leading dimensions
// and the alignments of the operands, the epilogue's vector and aux matrix (the heuristic's
// algorithm may need them).
type ltKey struct {
	epi                           uint32
	ta, tb                        bool
	m, n, k, lda, ldb, ldc, ldaux int
	at, bt, ct                    DataType
	tf32                          bool
	ala, alb, alc, alVec, alAux   uint32
}

// cublas is a cuBLAS handle bound to one stream, and a cuBLASLt handle (nil where cuBLASLt
// failed to start: products with a bias then return ErrNoEpilogue) with its plans.
type cublas struct {
	h        C.cublasHandle_t
	lt       C.cublasLtHandle_t
	stream   unsafe.Pointer // cuStream's CUstream, a cudaStream_t
	cuStream cu.Stream
	ws       cu.DevicePtr
	plans    map[ltKey]*C.align_lt_plan // nil: no algorithm for that key
	// tune > 1: a new plan times the heuristic's first tune algorithms (at most
	// ALIGN_LT_MAX_ALGOS) and keeps the fastest, and products without an epilogue run
	// through cuBLASLt too, so that they are tuned as well (SetGemmTuning).
	tune int
}

// newCublas creates a handle on the current context and binds it to s.
func newCublas(s cu.Stream) (*cublas, error) {
	stream := unsafe.Pointer(s.C())
	b := &cublas{stream: stream, cuStream: s, plans: map[ltKey]*C.align_lt_plan{}}
	if err := blasErr("cublasCreate", C.align_blas_create(&b.h)); err != nil {
		return nil, err
	}
	if err := blasErr("cublasSetStream", C.align_blas_set_stream(b.h, stream)); err != nil {
		C.align_blas_destroy(b.h)
		return nil, err
	}
	if C.align_lt_create(&b.lt) != 0 {
		b.lt = nil
	} else if ws, err := cu.MemAlloc(ltWorkspace); err != nil {
		C.align_lt_destroy(b.lt)
		b.lt = nil
	} else {
		b.ws = ws
		// The plain products (cublasGemmEx) use the same 32 MiB rather than cuBLAS's own
		// default pool: one stream runs both, one product at a time. Without it they keep the
		// default, so a failure here is not an error.
		C.align_blas_set_workspace(b.h, C.uintptr_t(ws), C.size_t(ltWorkspace))
	}
	return b, nil
}

func (b *cublas) close() error {
	for _, p := range b.plans {
		if p != nil {
			C.align_lt_plan_free(p)
		}
	}
	b.plans = nil
	var first error
	if b.lt != nil {
		first = blasErr("cublasLtDestroy", C.align_lt_destroy(b.lt))
		if err := cu.MemFree(b.ws); err != nil && first == nil {
			first = err
		}
	}
	if err := blasErr("cublasDestroy", C.align_blas_destroy(b.h)); err != nil && first == nil {
		first = err
	}
	return first
}

func bi(v bool) C.int {
	if v {
		return 1
	}
	return 0
}

func (b *cublas) gemm(g GemmArgs) error {
	if g.epilogue() || g.CType != Float32 {
		return b.gemmEpilogue(g)
	}
	if b.tune > 1 && g.Batch == 1 && !g.Ptrs {
		if err := b.gemmEpilogue(g); !errors.Is(err, ErrNoEpilogue) {
			return err
		}
	}
	rc := C.align_blas_gemm(b.h, bi(g.TransA), bi(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha),
		C.uintptr_t(g.A), C.int(g.AType), C.int(g.LDA), C.longlong(g.StrideA),
		C.uintptr_t(g.B), C.int(g.BType), C.int(g.LDB), C.longlong(g.StrideB),
		C.float(g.Beta), C.uintptr_t(g.C), C.int(g.LDC), C.longlong(g.StrideC), C.int(g.Batch),
		bi(g.Compute == ComputeTF32), bi(g.Ptrs))
	return blasErr("cublasGemmEx", rc)
}

// alignment is the largest power of two up to 256 that divides p.
func alignment(p DevPtr) uint32 {
	a := uint32(256)
	for a > 1 && uint64(p)%uint64(a) != 0 {
		a >>= 1
	}
	return a
}

// gemmEpilogue runs a product with a bias (BIAS), a bias gradient (BGRADB), GELU
// (GELU_AUX(_BIAS), GELU(_BIAS) without an aux matrix, DGELU(_BGRAD)) or a BF16 C (DEFAULT)
// through cuBLASLt, making the plan on first use.
// ErrNoEpilogue where cuBLASLt is missing, has no algorithm for the product or does not
// support it at run time: the device then computes the epilogue's part itself.
func (b *cublas) gemmEpilogue(g GemmArgs) error {
	var epi C.uint
	vec := g.Bias
	switch {
	case g.GELU == GeluForward && g.Aux == 0 && g.Bias != 0:
		epi = C.ALIGN_LT_EPILOGUE_GELU_BIAS
	case g.GELU == GeluForward && g.Aux == 0:
		epi = C.ALIGN_LT_EPILOGUE_GELU
	case g.GELU == GeluForward && g.Bias != 0:
		epi = C.ALIGN_LT_EPILOGUE_GELU_AUX_BIAS
	case g.GELU == GeluForward:
		epi = C.ALIGN_LT_EPILOGUE_GELU_AUX
	case g.GELU == GeluBackward && g.BiasGrad != 0:
		epi, vec = C.ALIGN_LT_EPILOGUE_DGELU_BGRAD, g.BiasGrad
	case g.GELU == GeluBackward:
		epi = C.ALIGN_LT_EPILOGUE_DGELU
	case g.BiasGrad != 0:
		epi, vec = C.ALIGN_LT_EPILOGUE_BGRADB, g.BiasGrad
	case g.Bias != 0:
		epi = C.ALIGN_LT_EPILOGUE_BIAS
	default:
		epi = C.ALIGN_LT_EPILOGUE_DEFAULT
	}
	ldaux := 0 // no aux matrix: its attributes stay unset
	if g.GELU != GeluNone && g.Aux != 0 {
		ldaux = g.LDAux
	}
	if b.lt == nil || g.Batch != 1 || g.Ptrs || (g.Bias != 0 && (g.Beta != 0 || g.BiasGrad != 0)) ||
		(g.CType != Float32 && g.Beta != 0 && epi != C.ALIGN_LT_EPILOGUE_DEFAULT) ||
		(g.GELU != GeluNone && (g.Beta != 0 || ldaux%8 != 0)) {
		return ErrNoEpilogue
	}
	key := ltKey{epi: uint32(epi), ta: g.TransA, tb: g.TransB, m: g.M, n: g.N, k: g.K, lda: g.LDA, ldb: g.LDB, ldc: g.LDC,
		ldaux: ldaux, at: g.AType, bt: g.BType, ct: g.CType, tf32: g.Compute == ComputeTF32,
		ala: alignment(g.A), alb: alignment(g.B), alc: alignment(g.C), alVec: alignment(vec), alAux: alignment(g.Aux)}
	p, ok := b.plans[key]
	if !ok {
		p = new(C.align_lt_plan)
		rc := C.align_lt_plan_make(b.lt, p, epi, bi(g.TransA), bi(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K),
			C.int(g.AType), C.int(g.LDA), C.int(g.BType), C.int(g.LDB), C.int(g.CType), C.int(g.LDC), bi(key.tf32),
			C.size_t(ltWorkspace), C.uint(key.ala), C.uint(key.alb), C.uint(key.alc), C.uintptr_t(vec),
			C.uintptr_t(g.Aux), C.longlong(ldaux), C.int(b.tune))
		if rc == 0 && p.nalgos > 1 {
			p.algo = C.int(b.fastest(p, g, epi, vec, ldaux))
		}
		if rc != 0 {
			C.align_lt_plan_free(p)
			if rc != C.ALIGN_LT_NO_ALGO && rc != 15 && rc != 7 { // CUBLAS_STATUS_NOT_SUPPORTED, _INVALID_VALUE
				return blasErr("cublasLt plan", rc)
			}
			p = nil
		}
		b.plans[key] = p
	}
	if p == nil {
		return ErrNoEpilogue
	}
	rc := C.align_lt_run(b.lt, p, p.algo, C.float(g.Alpha), C.uintptr_t(g.A), C.uintptr_t(g.B), C.float(g.Beta),
		C.uintptr_t(g.C), C.uintptr_t(g.C), C.uintptr_t(vec), C.uintptr_t(g.Aux), C.longlong(ldaux), C.uintptr_t(b.ws),
		C.size_t(ltWorkspace), b.stream)
	if rc == 15 || rc == 7 { // NOT_SUPPORTED, INVALID_VALUE: this combination refused at run time
		C.align_lt_plan_free(p)
		b.plans[key] = nil // the device's own kernels from now on (the profile names show which ran)
		return ErrNoEpilogue
	}
	return blasErr("cublasLtMatmul", rc)
}

// tuneRepeats is how many times each candidate algorithm runs in its timing (after one
// untimed run): DiT-B's products take 10 to 100 µs, so a candidate costs at most about
// 0.4 ms, a plan of 8 candidates a few ms, once per shape.
const tuneRepeats = 3

// fastest times each of p's candidate algorithms on g's operands and returns the index of
// the fastest (0, the heuristic's own choice, where timing fails). The candidates write
// into scratch (D, and the epilogue's outputs: the bias gradient of BGRADB and DGELU_BGRAD,
// GELU's pre-activation) and read C where beta is not 0, so g's outputs keep their values.
// A candidate that fails to run is skipped.
func (b *cublas) fastest(p *C.align_lt_plan, g GemmArgs, epi C.uint, vec DevPtr, ldaux int) int {
	var scratch []cu.DevicePtr
	defer func() {
		for _, s := range scratch {
			cu.MemFree(s)
		}
	}()
	alloc := func(bytes int) (DevPtr, bool) {
		s, err := cu.MemAlloc(int64(max(bytes, 1)))
		if err != nil {
			return 0, false
		}
		scratch = append(scratch, s)
		return DevPtr(s), true
	}
	// Sizes as FP32, enough for either type: D is (M, N) column-major with leading
	// dimension LDC, the bias gradient has M or N entries, the aux matrix N columns of LDAux.
	d, ok := alloc(4 * g.LDC * g.N)
	if !ok {
		return 0
	}
	vecOut, auxOut := vec, g.Aux
	if epi == C.ALIGN_LT_EPILOGUE_BGRADB || epi == C.ALIGN_LT_EPILOGUE_DGELU_BGRAD {
		if vecOut, ok = alloc(4 * max(g.M, g.N)); !ok {
			return 0
		}
	}
	if epi == C.ALIGN_LT_EPILOGUE_GELU_AUX || epi == C.ALIGN_LT_EPILOGUE_GELU_AUX_BIAS {
		if auxOut, ok = alloc(4 * ldaux * g.N); !ok {
			return 0
		}
	}
	start, err := cu.MakeEvent(cu.DefaultEvent)
	if err != nil {
		return 0
	}
	defer cu.DestroyEvent(&start)
	end, err := cu.MakeEvent(cu.DefaultEvent)
	if err != nil {
		return 0
	}
	defer cu.DestroyEvent(&end)
	run := func(algo int) bool {
		return C.align_lt_run(b.lt, p, C.int(algo), C.float(g.Alpha), C.uintptr_t(g.A), C.uintptr_t(g.B), C.float(g.Beta),
			C.uintptr_t(g.C), C.uintptr_t(d), C.uintptr_t(vecOut), C.uintptr_t(auxOut), C.longlong(ldaux),
			C.uintptr_t(b.ws), C.size_t(ltWorkspace), b.stream) == 0
	}
	best, bestMs := 0, math.Inf(1)
	for algo := range int(p.nalgos) {
		if !run(algo) {
			continue
		}
		ok := start.Record(b.cuStream) == nil
		for range tuneRepeats {
			ok = ok && run(algo)
		}
		ok = ok && end.Record(b.cuStream) == nil && end.Synchronize() == nil
		if !ok {
			continue
		}
		if ms, err := start.Elapsed(end); err == nil && ms < bestMs {
			best, bestMs = algo, ms
		}
	}
	return best
}
