// Tests of the CPU adaLN-Zero operations: ModulateForward/Backward and GateForward/Backward
// against float64 references, the reference gradients against central differences, guarded
// views, aliased gradients, and identical results across thread counts.
//
// Test: go test ./kernels -run 'Modulate|Gate'
package kernels

import (
	"fmt"
	"testing"
)

func refModulate(x, shift, scale []float64, B, T, C int) []float64 {
	out := make([]float64, B*T*C)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for c := 0; c < C; c++ {
				i := (b*T+t)*C + c
				out[i] = x[i]*(1+scale[b*C+c]) + shift[b*C+c]
			}
		}
	}
	return out
}

func refModulateBackward(g, x, scale []float64, B, T, C int) (dx, dshift, dscale []float64) {
	dx, dshift, dscale = make([]float64, B*T*C), make([]float64, B*C), make([]float64, B*C)
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for c := 0; c < C; c++ {
				i := (b*T+t)*C + c
				dx[i] = g[i] * (1 + scale[b*C+c])
				dshift[b*C+c] += g[i]
				dscale[b*C+c] += g[i] * x[i]
			}
		}
	}
	return
}

func refGate(x, gate, y []float64, B, T, C int) []float64 {
	out := make([]float64, B*T*C)
	for i := range out {
		b, c := i/(T*C), i%C
		out[i] = x[i] + gate[b*C+c]*y[i]
	}
	return out
}

func refGateBackward(g, gate, y []float64, B, T, C int) (dy, dgate []float64) {
	dy, dgate = make([]float64, B*T*C), make([]float64, B*C)
	for i := range dy {
		b, c := i/(T*C), i%C
		dy[i] = gate[b*C+c] * g[i]
		dgate[b*C+c] += g[i] * y[i]
	}
	return
}

func TestModulateGateReferenceFiniteDifferences(t *testing.T) {
	B, T, C := 2, 3, 4
	x, y, g := f64s(testNormals(51, B*T*C)), f64s(testNormals(52, B*T*C)), f64s(testNormals(53, B*T*C))
	sh, sc := f64s(testNormals(54, B*C)), f64s(testNormals(55, B*C))
	dx, dsh, dsc := refModulateBackward(g, x, sc, B, T, C)
	L := func(x, sh, sc []float64) float64 { return dot64(refModulate(x, sh, sc, B, T, C), g) }
	assertClose64(t, "modulate dx", dx, fdGrad(func(v []float64) float64 { return L(v, sh, sc) }, x, 1e-5), 1e-8, 1e-7)
	assertClose64(t, "modulate dshift", dsh, fdGrad(func(v []float64) float64 { return L(x, v, sc) }, sh, 1e-5), 1e-8, 1e-7)
	assertClose64(t, "modulate dscale", dsc, fdGrad(func(v []float64) float64 { return L(x, sh, v) }, sc, 1e-5), 1e-8, 1e-7)
	dy, dgt := refGateBackward(g, sc, y, B, T, C)
	G := func(gt, y []float64) float64 { return dot64(refGate(x, gt, y, B, T, C), g) }
	assertClose64(t, "gate dy", dy, fdGrad(func(v []float64) float64 { return G(sc, v) }, y, 1e-5), 1e-8, 1e-7)
	assertClose64(t, "gate dgate", dgt, fdGrad(func(v []float64) float64 { return G(v, y) }, sc, 1e-5), 1e-8, 1e-7)
}

func TestModulateGateCPU(t *testing.T) {
	for _, sz := range [][3]int{{3, 5, 67}, {3, 301, 67}, {2, 7, 1024}} {
		B, T, C := sz[0], sz[1], sz[2]
		n := B * T * C
		x, y, g := testNormals(61, n), testNormals(62, n), testNormals(63, n)
		sh, sc, gt := testNormals(64, B*C), testNormals(65, B*C), testNormals(66, B*C)
		acc1, acc2 := testNormals(67, B*C), testNormals(68, B*C)
		wantM := refModulate(f64s(x), f64s(sh), f64s(sc), B, T, C)
		wantDX, wantDSh, wantDSc := refModulateBackward(f64s(g), f64s(x), f64s(sc), B, T, C)
		wantG := refGate(f64s(x), f64s(gt), f64s(y), B, T, C)
		wantDY, wantDG := refGateBackward(f64s(g), f64s(gt), f64s(y), B, T, C)
		for c := range wantDSh {
			wantDSh[c] += float64(acc1[c])
			wantDSc[c] += float64(acc2[c])
			wantDG[c] += float64(acc1[c])
		}
		var first []float32
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("B=%d T=%d C=%d threads=%d", B, T, C, th)
			tx, ty, out := guarded(d, x, B, T, C), guarded(d, y, B, T, C), guarded(d, nil, B, T, C)
			tsh, tsc, tgt := guarded(d, sh, B, C), guarded(d, sc, B, C), guarded(d, gt, B, C)

			d.ModulateForward(out, tx, tsh, tsc, B, T, C)
			assertClose(t, "ModulateForward "+tag, Host(out), wantM, 1e-6, 1e-6)
			d.GateForward(out, tx, tgt, ty, B, T, C)
			assertClose(t, "GateForward "+tag, Host(out), wantG, 1e-6, 1e-6)

			// Modulate backward with dx aliasing dout.
			tg := guarded(d, g, B, T, C)
			dsh, dsc := guarded(d, acc1, B, C), guarded(d, acc2, B, C)
			d.ModulateBackward(tg, dsh, dsc, tg, tx, tsc, B, T, C)
			assertClose(t, "ModulateBackward dx "+tag, Host(tg), wantDX, 1e-6, 1e-6)
			assertClose(t, "ModulateBackward dshift "+tag, Host(dsh), wantDSh, 1e-5, 1e-5)
			assertClose(t, "ModulateBackward dscale "+tag, Host(dsc), wantDSc, 1e-5, 1e-5)

			dy, dgt := guarded(d, nil, B, T, C), guarded(d, acc1, B, C)
			d.GateBackward(dy, dgt, guarded(d, g, B, T, C), tgt, ty, B, T, C)
			assertClose(t, "GateBackward dy "+tag, Host(dy), wantDY, 1e-6, 1e-6)
			assertClose(t, "GateBackward dgate "+tag, Host(dgt), wantDG, 1e-5, 1e-5)

			for _, v := range []*Tensor{tx, ty, out, tsh, tsc, tgt, tg, dsh, dsc, dy, dgt} {
				assertGuard(t, tag, v)
			}
			all := append(append(append(append([]float32(nil), Host(dsh)...), Host(dsc)...), Host(dgt)...), Host(tg)...)
			if first == nil {
				first = all
			} else {
				assertSame(t, "Modulate/Gate deterministic "+tag, all, first)
			}
		}
	}
}
