// Declarations of the vector elementwise loops in elementwise_amd64.s (AVX2, written by
// hand): the CPU device's bias adds, residual adds, modulations, gates, bias gradients and
// AdamW, eight floats a step. Each rounds as the scalar Go it replaces (every multiply and add
// rounded one after the other, never fused), so the results are the same bit for bit.
//
// The caller checks CPU support (AVX2) and that n is a multiple of 8 (of 4 for the float64
// sums, Accum*F64AVX2). dst may equal any input (each element is read before it is written).
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

// AccumF64AVX2 sets acc[i] += float64(x[i]) for i < n (n a multiple of 4): a column sum's
// step, each column's sum in its own order.
//
//go:noescape
func AccumF64AVX2(acc *float64, x *float32, n int)

// AccumMulF64AVX2 sets acc[i] += float64(x[i])*float64(y[i]) for i < n (n a multiple of 4;
// the product is exact in float64).
//
//go:noescape
func AccumMulF64AVX2(acc *float64, x, y *float32, n int)

// MulAVX2 sets dst[i] = a[i] * b[i] for i < n.
//
//go:noescape
func MulAVX2(dst, a, b *float32, n int)

// AdamWAVX2 runs the CPU device's AdamW update on p = param, g = grad, m and v for i < n,
// with k = {scale, b1, 1-b1, b2, 1-b2, decay, bc2, eps, lr, bc1} as the scalar update has
// them (float32):
//
//	gi = g*scale;  m = b1*m + (1-b1)*gi;  v = b2*v + ((1-b2)*gi)*gi
//	p = (p - decay*p) - (lr*(m/bc1)) / (sqrt(v/bc2) + eps)
//
// (sqrt correctly rounded to float32, as float32(math.Sqrt(float64(x))) is).
//
//go:noescape
func AdamWAVX2(param, grad, m, v *float32, n int, k *[10]float32)

// ScaleAVX2 sets dst[i] *= s for i < n.
//
//go:noescape
func ScaleAVX2(dst *float32, n int, s float32)

// MaxAVX2 returns the largest of m and x[0:n] as the Go loop `if v > m { m = v }` over them
// finds it, for a m that is not NaN: NaN elements never win; between zeros of both signs
// (the only equal values it can tell apart) either may be returned.
//
//go:noescape
func MaxAVX2(x *float32, n int, m float32) float32
