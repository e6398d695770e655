// cgo half of the OpenBLAS binding (see blas.go): dlopen the library, resolve four symbols
// with dlsym, and call them through small C trampolines (cgo cannot call a C function
// pointer directly). Nothing is linked at build time except libdl.
//
// Test: go test -run 'BLAS|Gemm' ./kernels

//go:build cgo

package kernels

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// CBLAS constants (cblas.h): CblasRowMajor, CblasNoTrans, CblasTrans.
enum { ALIGN_ROW_MAJOR = 101, ALIGN_NO_TRANS = 111, ALIGN_TRANS = 112 };

typedef void (*align_sgemm_fn)(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef char *(*align_corename_fn)(void);
typedef void (*align_set_threads_fn)(int);
typedef int (*align_get_threads_fn)(void);

static align_sgemm_fn align_sgemm_p;
static align_corename_fn align_corename_p;
static align_set_threads_fn align_set_threads_p;
static align_get_threads_fn align_get_threads_p;

// align_blas_open loads path and resolves the symbols; it returns NULL on success or a
// message (valid until the next dl* call) on failure.
static const char *align_blas_open(const char *path) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) return dlerror();
	void *s = dlsym(h, "cblas_sgemm");
	void *c = dlsym(h, "openblas_get_corename");
	void *st = dlsym(h, "openblas_set_num_threads");
	void *gt = dlsym(h, "openblas_get_num_threads");
	if (s == NULL || c == NULL || st == NULL || gt == NULL) {
		dlclose(h);
		return "library lacks cblas_sgemm or openblas_{get_corename,set_num_threads,get_num_threads}";
	}
	align_sgemm_p = (align_sgemm_fn)s;
	align_corename_p = (align_corename_fn)c;
	align_set_threads_p = (align_set_threads_fn)st;
	align_get_threads_p = (align_get_threads_fn)gt;
	return NULL;
}

// align_blas_file is the file the library was loaded from.
static const char *align_blas_file(void) {
	Dl_info info;
	if (dladdr((void *)align_sgemm_p, &info) != 0 && info.dli_fname != NULL) return info.dli_fname;
	return "";
}

static const char *align_blas_corename(void) {
	const char *s = align_corename_p();
	return s == NULL ? "" : s;
}
static void align_blas_set_threads(int n) { align_set_threads_p(n); }
static int align_blas_get_threads(void) { return align_get_threads_p(); }

static void align_blas_sgemm(int transA, int transB, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc) {
	align_sgemm_p(ALIGN_ROW_MAJOR, transA ? ALIGN_TRANS : ALIGN_NO_TRANS, transB ? ALIGN_TRANS : ALIGN_NO_TRANS,
		m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
*/
import "C"

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// openblasThreads caches the thread count last given to OpenBLAS (0 = unknown).
var openblasThreads atomic.Int64

// openblasOpen loads the library at path (a file or a soname) and returns the file it came
// from, its core name and its thread count. Called once, under blasOnce.
func openblasOpen(path string) (file, core string, threads int, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if msg := C.align_blas_open(cpath); msg != nil {
		return "", "", 0, errors.New(C.GoString(msg))
	}
	file = C.GoString(C.align_blas_file())
	if file == "" {
		file = path
	}
	threads = int(C.align_blas_get_threads())
	openblasThreads.Store(int64(threads))
	return file, C.GoString(C.align_blas_corename()), threads, nil
}

// openblasSetThreads makes OpenBLAS use n threads (a cheap no-op when unchanged).
func openblasSetThreads(n int) {
	if n < 1 {
		n = 1
	}
	if openblasThreads.Load() == int64(n) {
		return
	}
	openblasThreads.Store(int64(n))
	C.align_blas_set_threads(C.int(n))
}

// openblasSgemm calls cblas_sgemm in row-major order. The caller checked the sizes
// (checkGemmArgs) and that they fit in 32 bits.
func openblasSgemm(transA, transB bool, m, n, k int, alpha float32, a *float32, lda int,
	b *float32, ldb int, beta float32, c *float32, ldc int) {
	ta, tb := C.int(0), C.int(0)
	if transA {
		ta = 1
	}
	if transB {
		tb = 1
	}
	C.align_blas_sgemm(ta, tb, C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(a)), C.int(lda), (*C.float)(unsafe.Pointer(b)), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(c)), C.int(ldc))
}
