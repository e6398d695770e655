// Declarations of the layer normalisation loops in layernorm_amd64.s (AVX2, written by hand)
// for the CPU device's LayerNormForward. A row's statistics are float64 sums that the scalar
// Go adds one column after the other, a chain of dependent adds that leaves the CPU waiting
// on each; RowMeanVar8AVX2 puts eight rows in the lanes of two registers instead, each lane
// adding its row's columns in the Go loop's order, so the sums are the same bits. The
// normalising passes go along a row, four columns a step, every operation rounded as the Go
// expression does (never fused).
//
// The caller checks CPU support (AVX2) and that C or n is a multiple of 4.
//
// Test: go test -run 'LayerNorm' ./kernels

//go:build amd64 && gc && !purego

package gemmasm

// RowMeanVar8AVX2 reads eight rows of C floats at x, x+C, ..., x+7C (C a positive multiple
// of 4) and sets, for row k,
//
//	mv[k]   = m = (sum_c float64(x_c)) / float64(C)
//	mv[8+k] = sum_c (float64(x_c) - m)^2
//
// each sum over c in order from 0.
//
//go:noescape
func RowMeanVar8AVX2(x *float32, C int, mv *[16]float64)

// NormRowAVX2 sets out[i] = float32((float64(x[i]) - m) * r) for i < n (n a multiple of 4).
// out may equal x.
//
//go:noescape
func NormRowAVX2(out, x *float32, n int, m, r float64)

// NormRowAffineAVX2 sets out[i] = float32((float64(x[i])-m)*r*float64(p[i]) + float64(q[i]))
// for i < n (n a multiple of 4), the products from the left: p is the weight, q the bias.
// out may equal x.
//
//go:noescape
func NormRowAffineAVX2(out, x, p, q *float32, n int, m, r float64)

// NormModulateRowAVX2 sets out[i] = float32((float64(x[i])-m)*r)*p[i] + q[i] for i < n (n a
// multiple of 4), the float32 product rounded before the add: LayerNormModulateForward's row,
// the normalised value modulated by p = 1 + scale and q = shift. out may equal x.
//
//go:noescape
func NormModulateRowAVX2(out, x, p, q *float32, n int, m, r float64)

// RowGradSums4AVX2 reads four rows of C floats of dout and of x (row k at dout+kC, x+kC; C a
// positive multiple of 4), the float64 weights w (C) and mr = {m_0..m_3, r_0..r_3}, and sets,
// with gv = float64(dout_c)*w_c,
//
//	sums[k]   = sum_c gv
//	sums[4+k] = sum_c (gv*(float64(x_c) - m_k))*r_k
//
// each sum over c in order from 0, each product rounded before it is added: LayerNormBackward's
// row sums, a row in each lane.
//
//go:noescape
func RowGradSums4AVX2(dout, x *float32, w *float64, C int, mr, sums *[8]float64)

// GradRowAVX2 sets, with gv = float64(dout[i])*w[i] and norm =
// (float64(x[i]) - m)*r,
//
//	dx[i] = float32(((gv - meanG) - norm*meanGN) * r)
//
// for i < n (n a multiple of 4), every operation rounded in that order: LayerNormBackward's
// input gradient. dx may equal dout.
//
//go:noescape
func GradRowAVX2(dx, dout, x *float32, w *float64, n int, m, r, meanG, meanGN float64)
