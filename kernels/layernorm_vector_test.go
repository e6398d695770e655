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

// layerNormBackwardGoLoop is LayerNormBackward's input gradient one row and one column at a
// time: gv = g*w (w 1 without affine), norm = (x-m)*r, each product rounded before its add.
func layerNormBackwardGoLoop(g, x, w, mean, rstd []float32, N, C int) []float32 {
	dx := make([]float32, N*C)
	for n := range N {
		m, r := float64(mean[n]), float64(rstd[n])
		wc := func(c int) float64 {
			if w == nil {
				return 1
			}
			return float64(w[c])
		}
		sumG, sumGN := 0.0, 0.0
		for c := range C {
			gv := float64(g[n*C+c]) * wc(c)
			sumG += gv
			sumGN += float64(gv * (float64(x[n*C+c]) - m) * r)
		}
		meanG, meanGN := sumG/float64(C), sumGN/float64(C)
		for c := range C {
			gv := float64(g[n*C+c]) * wc(c)
			norm := (float64(x[n*C+c]) - m) * r
			dx[n*C+c] = float32((gv - meanG - float64(norm*meanGN)) * r)
		}
	}
	return dx
}

// LayerNormBackward's input gradient gives the Go loop's bits, four rows' sums at a time,
// in place (dinp = dout) or not; its parameter gradients are checked against the reference
// in TestLayerNormCPU.
func TestLayerNormBackwardVector(t *testing.T) {
	const eps = 1e-5
	d := NewCPU(2)
	for _, C := range []int{1, 3, 4, 8, 12, 13, 256, 260} {
		for _, N := range []int{1, 3, 4, 5, 8, 9, 17} {
			x := layerNormInputs(uint64(N*1000+C), N*C, C)
			g := testNormals(uint64(C), N*C)
			for i := range g { // gradients whose sums change with the order too
				if i%7 == 3 {
					g[i] = float32(math.Ldexp(float64(g[i]), 40))
				}
			}
			w := layerNormInputs(1, C, C)
			for _, affine := range []bool{false, true} {
				var wr []float32
				var tw *Tensor
				if affine {
					wr, tw = w, guarded(d, w, C)
				}
				tx, mean, rstd := guarded(d, x, N, C), guarded(d, nil, N), guarded(d, nil, N)
				d.LayerNormForward(guarded(d, nil, N, C), mean, rstd, tx, tw, tw, N, C, eps)
				want := layerNormBackwardGoLoop(g, x, wr, Host(mean), Host(rstd), N, C)
				name := fmt.Sprintf("N=%d C=%d affine=%v", N, C, affine)

				tg, dx := guarded(d, g, N, C), guarded(d, nil, N, C)
				d.LayerNormBackward(dx, nil, nil, tg, tx, tw, mean, rstd, N, C)
				sameBits(t, name+" dinp", Host(dx), want)
				assertGuard(t, name+" dinp", dx)
				d.LayerNormBackward(tg, nil, nil, tg, tx, tw, mean, rstd, N, C) // in place
				sameBits(t, name+" dinp in place", Host(tg), want)
				assertGuard(t, name+" dinp in place", tg)
			}
		}
	}
}

// TestRowGradSumsVector compares the four-row sums with rowGradSums's float64 sums bit for
// bit.
func TestRowGradSumsVector(t *testing.T) {
	if rowGradSums4Asm == nil {
		t.Skip("no vector loops on this CPU")
	}
	for _, C := range []int{4, 8, 12, 256, 260} {
		x, g := layerNormInputs(uint64(C), 4*C, C), layerNormInputs(uint64(C+1), 4*C, C)
		w64 := make([]float64, C)
		for c, v := range testNormals(3, C) {
			w64[c] = float64(v)
		}
		mr := [8]float64{0.5, -3, 1e10, 0, 2, 1e-9, 0.25, 7}
		var sums [8]float64
		rowGradSums4Asm(&g[0], &x[0], &w64[0], C, &mr, &sums)
		for k := range 4 {
			sG, sGN := rowGradSums(g[k*C:(k+1)*C], x[k*C:(k+1)*C], w64, mr[k], mr[4+k])
			same := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b) }
			if !same(sums[k], sG) || !same(sums[4+k], sGN) {
				t.Errorf("C=%d row %d: sums %g, %g; the Go loop gives %g, %g", C, k, sums[k], sums[4+k], sG, sGN)
			}
		}
	}
}

// TestGradRowVector gives the input gradient's row loop operands whose float64 rounding
// shows in float32: meanG (just above 2^40) and norm*meanGN (just below 2^40 in magnitude)
// cancel to leave about gv - 0.5, and gv - meanG rounds gv to a grid twice as fine as gv -
// norm*meanGN would, so subtracting in the other order changes the result's last bits.
func TestGradRowVector(t *testing.T) {
	const n = 16
	g, x, dx, want := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	w64 := make([]float64, n)
	m, r, meanGN := -math.Ldexp(1, -10), 1.0, 1.0
	meanG := math.Ldexp(1, 40) + 0.5 - math.Ldexp(1, -10)
	for i := range n {
		g[i], x[i], w64[i] = 1+float32(i)/7, float32(-math.Ldexp(1, 40)), 1+float64(i)/9
	}
	for i := range n {
		gv := float64(g[i]) * w64[i]
		norm := (float64(x[i]) - m) * r
		want[i] = float32((gv - meanG - float64(norm*meanGN)) * r)
	}
	gradRow(dx, g, x, w64, m, r, meanG, meanGN)
	sameBits(t, "gradRow", dx, want)
}
