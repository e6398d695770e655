// Tests of the CPU AdamW step: three consecutive steps (bias corrections, decoupled weight
// decay) against a float64 reference of the formula in device.go, on guarded views and
// across thread counts, and the panic on step 0.
//
// Test: go test ./kernels -run AdamW
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func TestAdamW(t *testing.T) {
	n := 20011
	h := AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	p0 := testNormals(161, n)
	grads := [][]float32{testNormals(162, n), testNormals(163, n), testNormals(164, n)}
	// float64 reference.
	p, m, v := f64s(p0), make([]float64, n), make([]float64, n)
	lr, b1, b2, eps, wd := float64(h.LR), float64(h.Beta1), float64(h.Beta2), float64(h.Eps), float64(h.WeightDecay)
	for s, g := range grads {
		step := float64(s + 1)
		for i := range p {
			gi := float64(g[i])
			p[i] -= lr * wd * p[i]
			m[i] = b1*m[i] + (1-b1)*gi
			v[i] = b2*v[i] + (1-b2)*gi*gi
			p[i] -= lr * (m[i] / (1 - math.Pow(b1, step))) / (math.Sqrt(v[i]/(1-math.Pow(b2, step))) + eps)
		}
	}
	for _, th := range threadCounts {
		d := NewCPU(th)
		tag := fmt.Sprintf("threads=%d", th)
		tp, tm, tv := guarded(d, p0, n), guarded(d, nil, n), guarded(d, nil, n)
		for s, g := range grads {
			hs := h
			hs.Step = s + 1
			d.AdamW(tp, guarded(d, g, n), tm, tv, hs)
		}
		assertClose(t, "AdamW param "+tag, Host(tp), p, 1e-6, 1e-5)
		assertClose(t, "AdamW m "+tag, Host(tm), m, 1e-7, 1e-5)
		assertClose(t, "AdamW v "+tag, Host(tv), v, 1e-9, 1e-5)
		for _, x := range []*Tensor{tp, tm, tv} {
			assertGuard(t, tag, x)
		}
	}
}

func TestAdamWStepZeroPanics(t *testing.T) {
	d := NewCPU(1)
	defer func() {
		if recover() == nil {
			t.Error("AdamW with Step 0 did not panic")
		}
	}()
	x := d.New(3)
	d.AdamW(x, x, d.New(3), d.New(3), AdamWParams{LR: 1, Beta1: 0.9, Beta2: 0.99})
}
