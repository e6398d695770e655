// Declarations of the vector exp loops in exp_amd64.s (AVX2+FMA, written by hand). They
// evaluate exp(x) as 2^n * p(r) with n = round(x/ln2), r = x - n*ln2 (ln2 split in two
// parts) and p the degree-7 polynomial of Cephes' expf (relative error about 2e-7), after
// clamping x to [-87, hi]; n goes straight into the exponent bits. Below -87 the result is
// 0 (never a denormal); NaN stays NaN.
//
// The caller checks CPU support (AVX2 and FMA; AVX-512F for the AVX512 loops) and that n is
// a multiple of 8 (16 for the AVX512 GELU loops).
//
// Test: go test -run 'Gelu|Attention|Exp' ./kernels

//go:build amd64 && gc && !purego

package gemmasm

// ExpSumAVX2 sets dst[i] = exp(src[i] - sub) for i < n (x above 88 taken as 88) and
// returns the sum of the results. dst may equal src.
//
//go:noescape
func ExpSumAVX2(dst, src *float32, n int, sub float32) float32

// GeluAVX2 sets dst[i] = x/(1 + exp(-2u)), u = sqrt(2/pi)*(x + 0.044715*x^3), x = src[i],
// with the exponent capped at 80, for i < n: the tanh-approximated GELU. dst may
// equal src.
//
//go:noescape
func GeluAVX2(dst, src *float32, n int)

// GeluBackwardAVX2 sets dx[i] = dout[i]*gelu'(x[i]) for i < n, with e = exp(-2u) as in
// GeluAVX2, s = 1/(1+e) and gelu'(x) = s + 2*sqrt(2/pi)*x*s*(e*s)*(1 + 3*0.044715*x^2).
// dx may equal x or dout.
//
//go:noescape
func GeluBackwardAVX2(dx, x, dout *float32, n int)

// GeluAVX512 is GeluAVX2 on sixteen lanes (AVX-512F, n a multiple of 16): the same
// operations on each element, so the same bits.
//
//go:noescape
func GeluAVX512(dst, src *float32, n int)

// GeluBackwardAVX512 is GeluBackwardAVX2 on sixteen lanes (AVX-512F, n a multiple of 16),
// the same bits.
//
//go:noescape
func GeluBackwardAVX512(dx, x, dout *float32, n int)

// ExpSumAVX512 is ExpSumAVX2 with sixteen exps a step (AVX-512F; n a multiple of 8), the
// sum taken in ExpSumAVX2's order: the same bits.
//
//go:noescape
func ExpSumAVX512(dst, src *float32, n int, sub float32) float32
