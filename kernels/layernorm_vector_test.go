// Tests of the layer normalisation's vector loops (internal/gemmasm/layernorm_amd64.s, where
// the CPU has AVX2): LayerNormForward gives the bits of the scalar Go loop, written out here,
// and LayerNormModulateForward's one pass those of LayerNormForward then ModulateForward, for
// every row count around the eight rows the statistics take at once, widths on and off the
// multiples of 4, with and without the affine parameters, at unaligned offsets and in place.
//
// Test: go test ./kernels -run 'LayerNorm(Modulate)?Vector|RowMeanVar'
package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// layerNormInputs are n normal values with a pair of large ones of opposite signs (±2^60
// times a normal) in every 8 columns of a row, so that a row's float64 sum keeps or loses the
// small values between them by the order it takes them in; and one row (of C values)
// constant, one holding an infinity and one a NaN.
func layerNormInputs(seed uint64, n, C int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		switch c := i % C; {
		case c%8 == 0:
			x[i] = float32(math.Ldexp(r.NormFloat64(), 60))
		case c%8 == 5 && c >= 5:
			x[i] = -x[i-5]
		default:
			x[i] = float32(r.NormFloat64())
		}
	}
	special := func(row int, fill func(xr []float32)) {
		if (row+1)*C <= n {
			fill(x[row*C : (row+1)*C])
		}
	}
	special(1, func(xr []float32) {
		for i := range xr {
			xr[i] = 3.25
		}
	})
	special(3, func(xr []float32) { xr[len(xr)/2] = float32(math.Inf(-1)) })
	special(10, func(xr []float32) { xr[0] = float32(math.NaN()) })
	return x
}

// TestRowMeanVarVector compares the eight-row statistics with rowMeanVar's float64 sums bit
// for bit (LayerNormForward's float32 outputs round most differences in their last bits away).
func TestRowMeanVarVector(t *testing.T) {
	if rowMeanVar8Asm == nil {
		t.Skip("no vector loops on this CPU")
	}
	for _, C := range []int{4, 8, 12, 256, 260} {
		x := layerNormInputs(uint64(C), 8*C, C)
		for i := range x { // the deviations' squares span 2^-120 to 2^120 too
			if i%3 == 1 {
				x[i] = float32(math.Ldexp(float64(x[i]), i%41-20))
			}
		}
		var mv [16]float64
		rowMeanVar8Asm(&x[0], C, &mv)
		for k := range 8 {
			m, v2 := rowMeanVar(x[k*C : (k+1)*C])
			if math.Float64bits(mv[k]) != math.Float64bits(m) && !(m != m && mv[k] != mv[k]) ||
				math.Float64bits(mv[8+k]) != math.Float64bits(v2) && !(v2 != v2 && mv[8+k] != mv[8+k]) {
				t.Errorf("C=%d row %d: mean %g, squared deviations %g; the Go loop gives %g, %g", C, k, mv[k], mv[8+k], m, v2)
			}
		}
	}
}

// layerNormGoLoop is LayerNormForward's arithmetic one row and one column at a time.
func layerNormGoLoop(x, w, b []float32, N, C int, eps float32) (out, mean, rstd []float32) {
	out, mean, rstd = make([]float32, N*C), make([]float32, N), make([]float32, N)
	for n := range N {
		xr := x[n*C : (n+1)*C]
		s := 0.0
		for _, v := range xr {
			s += float64(v)
		}
		m := s / float64(C)
		v2 := 0.0
		for _, v := range xr {
			dv := float64(v) - m
			v2 += float64(dv * dv)
		}
		r := 1 / math.Sqrt(v2/float64(C)+float64(eps))
		for c, v := range xr {
			if w != nil {
				out[n*C+c] = float32(float64((float64(v)-m)*r*float64(w[c])) + float64(b[c]))
			} else {
				out[n*C+c] = float32((float64(v) - m) * r)
			}
		}
		mean[n], rstd[n] = float32(m), float32(r)
	}
	return out, mean, rstd
}

func TestLayerNormVector(t *testing.T) {
	if rowMeanVar8Asm == nil {
		t.Log("no vector loops on this CPU: the Go loops checked against the test's")
	}
	const eps = 1e-5
	d := NewCPU(2)
	for _, C := range []int{1, 3, 4, 8, 12, 13, 256, 260} {
		for _, N := range []int{1, 7, 8, 9, 16, 17, 31} {
			x := layerNormInputs(uint64(N*1000+C), N*C, C)
			w, b := layerNormInputs(1, C, C), layerNormInputs(2, C, C)
			for _, affine := range []bool{false, true} {
				var wr, br []float32
				var tw, tb *Tensor
				if affine {
					wr, br = w, b
					tw, tb = guarded(d, w, C), guarded(d, b, C)
				}
				wantY, wantM, wantR := layerNormGoLoop(x, wr, br, N, C, eps)
				name := fmt.Sprintf("N=%d C=%d affine=%v", N, C, affine)

				tx, out := guarded(d, x, N, C), guarded(d, nil, N, C)
				mean, rstd := guarded(d, nil, N), guarded(d, nil, N)
				d.LayerNormForward(out, mean, rstd, tx, tw, tb, N, C, eps)
				sameBits(t, name+" out", Host(out), wantY)
				sameBits(t, name+" mean", Host(mean), wantM)
				sameBits(t, name+" rstd", Host(rstd), wantR)
				assertGuard(t, name+" out", out)

				d.LayerNormForward(tx, mean, rstd, tx, tw, tb, N, C, eps) // in place
				sameBits(t, name+" in place", Host(tx), wantY)
				assertGuard(t, name+" in place", tx)
			}
		}
	}
}

// LayerNormModulateForward without h (one pass over each row) gives the bits of
// LayerNormForward then ModulateForward (its path with h), out of place and in place.
func TestLayerNormModulateVector(t *testing.T) {
	const eps = 1e-6
	d := NewCPU(2)
	for _, C := range []int{1, 3, 4, 8, 13, 256, 260} {
		for _, bt := range [][2]int{{1, 1}, {1, 9}, {2, 8}, {3, 7}, {2, 17}} {
			B, T := bt[0], bt[1]
			N := B * T
			x := layerNormInputs(uint64(N*1000+C), N*C, C)
			shift, scale := testNormals(1, B*C), testNormals(2, B*C)
			name := fmt.Sprintf("B=%d T=%d C=%d", B, T, C)
			tsh, tsc := guarded(d, shift, B, C), guarded(d, scale, B, C)

			h, want, wantM, wantR := d.New(N, C), d.New(N, C), d.New(N), d.New(N)
			d.LayerNormModulateForward(want, h, wantM, wantR, d.FromHost(x, N, C), tsh, tsc, B, T, C, eps)

			tx, out := guarded(d, x, N, C), guarded(d, nil, N, C)
			mean, rstd := guarded(d, nil, N), guarded(d, nil, N)
			d.LayerNormModulateForward(out, nil, mean, rstd, tx, tsh, tsc, B, T, C, eps)
			sameBits(t, name+" out", Host(out), Host(want))
			sameBits(t, name+" mean", Host(mean), Host(wantM))
			sameBits(t, name+" rstd", Host(rstd), Host(wantR))
			assertGuard(t, name+" out", out)

			d.LayerNormModulateForward(tx, nil, mean, rstd, tx, tsh, tsc, B, T, C, eps) // in place
			sameBits(t, name+" in place", Host(tx), Host(want))
			assertGuard(t, name+" in place", tx)
		}
	}
}
