// Tests of the vector elementwise loops (internal/gemmasm/elementwise_amd64.s, where the CPU
// has AVX2): the device's Add, AddBias, ModulateForward, GateForward, BiasBackward,
// ModulateBackward, GateBackward and AdamW
// give the scalar Go loop's bits exactly, on every length around the vector steps, with
// special values (infinities, NaN, subnormals, signed zeros, products that round differently
// fused), at unaligned offsets and in place.
//
// Test: go test ./kernels -run Vector
package kernels

import (
	"fmt"
	"math"
	"testing"
)

// vectorInputs are n values drawn from seed with special values sprinkled in.
func vectorInputs(seed uint64, n int) []float32 {
	x := testNormals(seed, n)
	special := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(1), math.Float32frombits(0x80000001), float32(math.Copysign(0, -1)), 0,
		math.MaxFloat32, 1 + 1.0/(1<<23), 3}
	for i := range x {
		if i%5 == 2 {
			x[i] = special[(i/5+int(seed))%len(special)]
		}
	}
	return x
}

// sameBits reports the first element where got and want (the Go loop's, or one thread's)
// differ in their bits (any NaN matches any NaN: x86 and Go keep different payloads).
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			t.Errorf("%s: element %d is %g (%#08x), want %g (%#08x)", name, i, g, math.Float32bits(g), w, math.Float32bits(w))
			return
		}
	}
}

func TestVectorElementwise(t *testing.T) {
	if addAsm == nil {
		t.Log("no vector loops on this CPU: the Go loops checked against themselves")
	}
	d := NewCPU(2)
	for _, C := range []int{1, 7, 8, 9, 15, 16, 17, 33, 256} {
		const B, T = 2, 3
		n := B * T * C
		x, y := vectorInputs(1, n), vectorInputs(2, n)
		sh, sc := vectorInputs(3, B*C), vectorInputs(4, B*C)
		name := fmt.Sprintf("C=%d", C)
		add, bias, mod, gate := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range add {
			b, c := i/(T*C), i%C
			add[i] = x[i] + y[i]
			bias[i] = x[i] + sh[i%(B*C)%C]
			mod[i] = float32(x[i]*float32(1+sc[b*C+c])) + sh[b*C+c]
			gate[i] = x[i] + float32(sc[b*C+c]*y[i])
		}
		tx, ty := guarded(d, x, n), guarded(d, y, n)
		tsh, tsc := guarded(d, sh, B*C), guarded(d, sc, B*C)
		out := guarded(d, nil, n)
		d.Add(out, tx, ty)
		sameBits(t, "Add "+name, Host(out), add)
		d.AddBias(out, tx, tsh.View(0, C), B*T, C)
		sameBits(t, "AddBias "+name, Host(out), bias)
		d.ModulateForward(out, tx, tsh, tsc, B, T, C)
		sameBits(t, "ModulateForward "+name, Host(out), mod)
		d.GateForward(out, tx, tsc, ty, B, T, C)
		sameBits(t, "GateForward "+name, Host(out), gate)
		// In place: out is x.
		d.GateForward(tx, tx, tsc, ty, B, T, C)
		sameBits(t, "GateForward in place "+name, Host(tx), gate)
	}
}

// The column sums (BiasBackward; ModulateBackward's and GateBackward's, with their
// elementwise products, in place where allowed) and AdamW against the Go loops.
func TestVectorBackwardAndAdamW(t *testing.T) {
	d := NewCPU(2)
	for _, C := range []int{1, 3, 4, 5, 8, 9, 37, 256} {
		const N = 6
		dout, db0 := vectorInputs(5, N*C), vectorInputs(6, C)
		want := make([]float32, C)
		for c := range C {
			acc := 0.0
			for n := range N {
				acc += float64(dout[n*C+c])
			}
			want[c] = db0[c] + float32(acc)
		}
		db := guarded(d, db0, C)
		d.BiasBackward(db, guarded(d, dout, N*C), N, C)
		sameBits(t, fmt.Sprintf("BiasBackward C=%d", C), Host(db), want)
	}
	for _, C := range []int{1, 4, 5, 9, 37} {
		const B, T = 2, 5
		n := B * T * C
		dout, x, sc := vectorInputs(11, n), vectorInputs(12, n), vectorInputs(13, B*C)
		dsh0, dsc0 := vectorInputs(14, B*C), vectorInputs(15, B*C)
		wdx, wdsh, wdsc, wdy, wdg := make([]float32, n), make([]float32, B*C), make([]float32, B*C), make([]float32, n), make([]float32, B*C)
		for b := range B {
			for c := range C {
				var sh, sx float64
				for t := range T {
					i := (b*T+t)*C + c
					sh += float64(dout[i])
					sx += float64(dout[i]) * float64(x[i])
					wdx[i] = dout[i] * (1 + sc[b*C+c])
					wdy[i] = sc[b*C+c] * dout[i]
				}
				wdsh[b*C+c] = dsh0[b*C+c] + float32(sh)
				wdsc[b*C+c] = dsc0[b*C+c] + float32(sx)
				wdg[b*C+c] = dsc0[b*C+c] + float32(sx)
			}
		}
		name := fmt.Sprintf("C=%d", C)
		tdout, tx, tsc := guarded(d, dout, n), guarded(d, x, n), guarded(d, sc, B*C)
		dx, dsh, dsc := guarded(d, nil, n), guarded(d, dsh0, B*C), guarded(d, dsc0, B*C)
		d.ModulateBackward(dx, dsh, dsc, tdout, tx, tsc, B, T, C)
		sameBits(t, "ModulateBackward dx "+name, Host(dx), wdx)
		sameBits(t, "ModulateBackward dshift "+name, Host(dsh), wdsh)
		sameBits(t, "ModulateBackward dscale "+name, Host(dsc), wdsc)
		dg := guarded(d, dsc0, B*C)
		d.GateBackward(tdout, dg, tdout, tsc, tx, B, T, C) // dy in place of dout
		sameBits(t, "GateBackward dy "+name, Host(tdout), wdy)
		sameBits(t, "GateBackward dgate "+name, Host(dg), wdg)
	}
	for _, n := range []int{1, 7, 8, 9, 17, 1003, 40000} {
		p0, g, m0, v0 := vectorInputs(7, n), vectorInputs(8, n), testNormals(9, n), testNormals(10, n)
		for i := range v0 {
			v0[i] = float32(math.Abs(float64(v0[i])))
		}
		h := AdamWParams{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 3, GradScale: 0.7}
		b1, b2 := h.Beta1, h.Beta2
		bc1 := float32(1 - math.Pow(float64(b1), float64(h.Step)))
		bc2 := float32(1 - math.Pow(float64(b2), float64(h.Step)))
		decay, scale := h.LR*h.WeightDecay, h.Scale()
		wp, wm, wv := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range n { // the update as AdamW writes it, every product rounded on its own
			gi := g[i] * scale
			mi := float32(b1*m0[i]) + float32((1-b1)*gi)
			vi := float32(b2*v0[i]) + float32(float32((1-b2)*gi)*gi)
			pi := p0[i] - float32(decay*p0[i])
			den := float32(math.Sqrt(float64(vi/bc2))) + h.Eps
			wp[i], wm[i], wv[i] = pi-float32(h.LR*(mi/bc1))/den, mi, vi
		}
		p, m, v := guarded(d, p0, n), guarded(d, m0, n), guarded(d, v0, n)
		d.AdamW(p, guarded(d, g, n), m, v, h)
		name := fmt.Sprintf("AdamW n=%d", n)
		sameBits(t, name+" param", Host(p), wp)
		sameBits(t, name+" m", Host(m), wm)
		sameBits(t, name+" v", Host(v), wv)
	}
}

// TestVectorScaleMax: scaleInto gives the Go loop's bits at every length, and rowMax the Go
// loop's maximum with NaNs, infinities and the maximum at every position (either zero
// where the maximum is a zero of both signs; a NaN first stays NaN).
func TestVectorScaleMax(t *testing.T) {
	if scaleAsm == nil || maxAsm == nil {
		t.Skip("no vector loops on this CPU")
	}
	x := testUniforms(71, 64, -3, 3)
	for n := 0; n <= 40; n++ {
		got, want := append([]float32(nil), x[:n]...), append([]float32(nil), x[:n]...)
		scaleInto(got, 0.37)
		for i := range want {
			want[i] *= 0.37
		}
		sameBits(t, fmt.Sprintf("scale n=%d", n), got, want)
	}
	goMax := func(row []float32) float32 {
		m := row[0]
		for _, v := range row[1:] {
			if v > m {
				m = v
			}
		}
		return m
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for n := 1; n <= 40; n++ {
		for pos := 0; pos < n; pos++ {
			for _, special := range []float32{9, nan, inf, -inf, 0} {
				row := append([]float32(nil), x[:n]...)
				if special == 0 {
					for i := range row {
						row[i] = -1
					}
					row[(pos+1)%n] = float32(math.Copysign(0, -1))
				}
				row[pos] = special
				got, want := rowMax(row), goMax(row)
				if math.Float32bits(got) != math.Float32bits(want) && !(got == 0 && want == 0) && !(got != got && want != want) {
					t.Fatalf("rowMax n=%d, %v at %d: %v, want %v", n, special, pos, got, want)
				}
			}
		}
	}
}
