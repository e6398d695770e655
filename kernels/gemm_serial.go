// Single-threaded GEMM on host slices with explicit leading dimensions, for use inside
// operations that are already parallel (attention runs one per head). It is the Go GEMM of
// gemm_go.go on one goroutine: it never starts goroutines and never calls OpenBLAS, whose
// own threads would fight the caller's.
//
// Test: go test -run Gemm ./kernels
package kernels

// sgemmSerial computes C = alpha*op(A)*op(B) + beta*C, row-major, with leading dimensions
// lda, ldb, ldc (elements between consecutive rows as stored). beta == 0 ignores C.
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmGoKernel(gemmDefault, 1, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
