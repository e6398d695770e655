// Single-threaded GEMM on host slices with explicit leading dimensions, for use inside
// operations that are already parallel (attention runs one per head).
package kernels

// sgemmSerial computes C = alpha*op(A)*op(B) + beta*C, row-major, with leading dimensions
// lda, ldb, ldc (elements between consecutive rows as stored). beta == 0 ignores C.
func sgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var x, y float32
				if transA {
					x = a[p*lda+i]
				} else {
					x = a[i*lda+p]
				}
				if transB {
					y = b[j*ldb+p]
				} else {
					y = b[p*ldb+j]
				}
				s += x * y
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}
