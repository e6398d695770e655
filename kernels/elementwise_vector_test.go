// Tests of the vector elementwise loops (internal/gemmasm/elementwise_amd64.s, where the CPU
// has AVX2): the device's Add, AddBias, ModulateForward and GateForward give the scalar Go
// loop's bits exactly, on every length around the eight-float steps, with special values
// (infinities, NaN, subnormals, signed zeros, products that round differently fused), at
// unaligned offsets and in place.
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

// sameBits reports the first element where got and want differ in their bits (any NaN
// matches any NaN: x86 and Go keep different payloads).
func sameBits(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		g, w := got[i], want[i]
		if math.Float32bits(g) != math.Float32bits(w) && !(g != g && w != w) {
			t.Errorf("%s: element %d is %g (%#08x), the Go loop gives %g (%#08x)", name, i, g, math.Float32bits(g), w, math.Float32bits(w))
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
