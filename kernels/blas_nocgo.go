// OpenBLAS binding stubs for builds without cgo (CGO_ENABLED=0): OpenBLAS is never loaded
// and the CPU device uses the Go GEMM (gemm_go.go). See blas.go.
//
// Test: CGO_ENABLED=0 go test -run 'BLAS|Gemm' ./kernels

//go:build !cgo

package kernels

import "errors"

func openblasOpen(path string) (file, core string, threads int, err error) {
	return "", "", 0, errors.New("built without cgo (CGO_ENABLED=0)")
}

func openblasSetThreads(n int) {}

func openblasSgemm(transA, transB bool, m, n, k int, alpha float32, a *float32, lda int,
	b *float32, ldb int, beta float32, c *float32, ldc int) {
	panic("kernels: OpenBLAS needs cgo")
}
