// Declarations of the vector elementwise loops in elementwise_amd64.s (AVX2, written by
// hand): the CPU device's bias adds, residual adds, modulations and gates, eight floats a
// step. Each rounds as the scalar Go it replaces (a multiply and an add rounded one after the
// other, never fused), so the results are the same bit for bit.
//
// The caller checks CPU support (AVX2) and that n is a multiple of 8. dst may equal any
// input (each element is read before it is written).
//
// Test: go test -run 'Vector' ./kernels

//go:build amd64 && gc && !purego

package gemmasm

// AddAVX2 sets dst[i] = a[i] + b[i] for i < n.
//
//go:noescape
func AddAVX2(dst, a, b *float32, n int)

// MulAddAVX2 sets dst[i] = x[i]*s[i] + t[i] for i < n, the product rounded before the sum.
//
//go:noescape
func MulAddAVX2(dst, x, s, t *float32, n int)
