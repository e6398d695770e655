// Tests of the CPU layer normalisation: forward (out, mean, rstd) and backward (dinp,
// accumulated dweight and dbias) against a float64 reference, the reference backward against
// central differences of the reference forward, affine and no-affine, guarded views, dinp
// aliasing dout, and identical results across thread counts.
//
// Test: go test ./kernels -run LayerNorm
package kernels

import (
	"fmt"
	"math"
	"testing"
)

// refLayerNorm returns out, mean, rstd of rows of x (N,C); w, b nil means no affine.
func refLayerNorm(x, w, b []float64, N, C int, eps float64) (out, mean, rstd []float64) {
	out, mean, rstd = make([]float64, N*C), make([]float64, N), make([]float64, N)
	for n := 0; n < N; n++ {
		r := x[n*C : (n+1)*C]
		m := 0.0
		for _, v := range r {
			m += v
		}
		m /= float64(C)
		s := 0.0
		for _, v := range r {
			s += (v - m) * (v - m)
		}
		rs := 1 / math.Sqrt(s/float64(C)+eps)
		for c, v := range r {
			y := (v - m) * rs
			if w != nil {
				y = y*w[c] + b[c]
			}
			out[n*C+c] = y
		}
		mean[n], rstd[n] = m, rs
	}
	return
}

// refLayerNormBackward returns dx, dw, db (dw, db nil without affine).
func refLayerNormBackward(g, x, w []float64, N, C int, eps float64) (dx, dw, db []float64) {
	_, mean, rstd := refLayerNorm(x, nil, nil, N, C, eps)
	dx = make([]float64, N*C)
	if w != nil {
		dw, db = make([]float64, C), make([]float64, C)
	}
	for n := 0; n < N; n++ {
		a, bb := 0.0, 0.0
		for c := 0; c < C; c++ {
			norm := (x[n*C+c] - mean[n]) * rstd[n]
			gn := g[n*C+c]
			if w != nil {
				dw[c] += g[n*C+c] * norm
				db[c] += g[n*C+c]
				gn *= w[c]
			}
			a += gn
			bb += gn * norm
		}
		a /= float64(C)
		bb /= float64(C)
		for c := 0; c < C; c++ {
			norm := (x[n*C+c] - mean[n]) * rstd[n]
			gn := g[n*C+c]
			if w != nil {
				gn *= w[c]
			}
			dx[n*C+c] = (gn - a - norm*bb) * rstd[n]
		}
	}
	return
}

func TestLayerNormReferenceFiniteDifferences(t *testing.T) {
	N, C, eps := 3, 7, 1e-5
	x, w, b, g := f64s(testNormals(21, N*C)), f64s(testNormals(22, C)), f64s(testNormals(23, C)), f64s(testNormals(24, N*C))
	loss := func(x, w, b []float64) float64 {
		out, _, _ := refLayerNorm(x, w, b, N, C, eps)
		return dot64(out, g)
	}
	dx, dw, db := refLayerNormBackward(g, x, w, N, C, eps)
	assertClose64(t, "dx", dx, fdGrad(func(v []float64) float64 { return loss(v, w, b) }, x, 1e-5), 1e-7, 1e-6)
	assertClose64(t, "dw", dw, fdGrad(func(v []float64) float64 { return loss(x, v, b) }, w, 1e-5), 1e-7, 1e-6)
	assertClose64(t, "db", db, fdGrad(func(v []float64) float64 { return loss(x, w, v) }, b, 1e-5), 1e-7, 1e-6)
	dx0, _, _ := refLayerNormBackward(g, x, nil, N, C, eps)
	assertClose64(t, "dx no affine", dx0, fdGrad(func(v []float64) float64 { return loss(v, nil, nil) }, x, 1e-5), 1e-7, 1e-6)
}

func TestLayerNormCPU(t *testing.T) {
	for _, sz := range [][2]int{{37, 67}, {301, 67}, {5, 1024}} {
		N, C := sz[0], sz[1]
		const eps = 1e-5
		x := testNormals(31, N*C)
		for i := range x {
			x[i] = 3*x[i] + 0.5 // a mean and a scale away from 0 and 1
		}
		w, b, g := testNormals(32, C), testNormals(33, C), testNormals(34, N*C)
		dw0, db0 := testNormals(35, C), testNormals(36, C)
		for _, affine := range []bool{true, false} {
			var wr, br []float64
			if affine {
				wr, br = f64s(w), f64s(b)
			}
			wantY, wantM, wantR := refLayerNorm(f64s(x), wr, br, N, C, eps)
			wantDX, wantDW, wantDB := refLayerNormBackward(f64s(g), f64s(x), wr, N, C, eps)
			var first []float32
			for _, th := range threadCounts {
				d := NewCPU(th)
				tag := fmt.Sprintf("N=%d C=%d affine=%v threads=%d", N, C, affine, th)
				tx, out := guarded(d, x, N, C), guarded(d, nil, N, C)
				mean, rstd := guarded(d, nil, N), guarded(d, nil, N)
				var tw, tb, tdw, tdb *Tensor
				if affine {
					tw, tb = guarded(d, w, C), guarded(d, b, C)
					tdw, tdb = guarded(d, dw0, C), guarded(d, db0, C)
				}
				d.LayerNormForward(out, mean, rstd, tx, tw, tb, N, C, eps)
				assertClose(t, "LayerNormForward out "+tag, Host(out), wantY, 1e-5, 1e-5)
				assertClose(t, "LayerNormForward mean "+tag, Host(mean), wantM, 1e-6, 1e-6)
				assertClose(t, "LayerNormForward rstd "+tag, Host(rstd), wantR, 1e-6, 1e-6)

				// dinp aliases dout.
				tg := guarded(d, g, N, C)
				d.LayerNormBackward(tg, tdw, tdb, tg, tx, tw, mean, rstd, N, C)
				assertClose(t, "LayerNormBackward dinp "+tag, Host(tg), wantDX, 1e-5, 1e-4)
				if affine {
					want := f64s(dw0)
					for c := range want {
						want[c] += wantDW[c]
					}
					assertClose(t, "LayerNormBackward dweight "+tag, Host(tdw), want, 1e-4, 1e-5)
					want = f64s(db0)
					for c := range want {
						want[c] += wantDB[c]
					}
					assertClose(t, "LayerNormBackward dbias "+tag, Host(tdb), want, 1e-4, 1e-5)
				}
				for _, v := range []*Tensor{tx, out, mean, rstd, tg, tw, tb, tdw, tdb} {
					if v != nil {
						assertGuard(t, tag, v)
					}
				}
				all := append(append([]float32(nil), Host(out)...), Host(tg)...)
				if affine {
					all = append(append(all, Host(tdw)...), Host(tdb)...)
				}
				if first == nil {
					first = all
				} else {
					assertSame(t, "LayerNorm deterministic "+tag, all, first)
				}
			}
		}
	}
}

func TestLayerNormFrozenAffine(t *testing.T) {
	// weight set, dweight and dbias nil: only dinp is written.
	N, C := 4, 9
	d := NewCPU(2)
	x, w, b, g := testNormals(41, N*C), testNormals(42, C), testNormals(43, C), testNormals(44, N*C)
	out, mean, rstd := d.New(N, C), d.New(N), d.New(N)
	tx, tw := d.FromHost(x, N, C), d.FromHost(w, C)
	d.LayerNormForward(out, mean, rstd, tx, tw, d.FromHost(b, C), N, C, 1e-6)
	dx := d.New(N, C)
	d.LayerNormBackward(dx, nil, nil, d.FromHost(g, N, C), tx, tw, mean, rstd, N, C)
	want, _, _ := refLayerNormBackward(f64s(g), f64s(x), f64s(w), N, C, 1e-6)
	assertClose(t, "LayerNormBackward frozen affine", Host(dx), want, 1e-5, 1e-4)
}
