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

// TestAdamWEach checks that AdamWEach gives each parameter AdamW's values bit for bit, with
// a weight decay of its own, and refuses lists of different lengths.
func TestAdamWEach(t *testing.T) {
	d := NewCPU(2)
	sizes := []int{5, 0, 1003}
	var ps, gs, ms, vs, ps1, ms1, vs1 []*Tensor
	var hs []AdamWParams
	for i, n := range sizes {
		p0, g := testNormals(uint64(170+i), n), testNormals(uint64(180+i), n)
		ps, gs = append(ps, d.FromHost(p0, n)), append(gs, d.FromHost(g, n))
		ms, vs = append(ms, d.New(n)), append(vs, d.New(n))
		ps1, ms1, vs1 = append(ps1, d.FromHost(p0, n)), append(ms1, d.New(n)), append(vs1, d.New(n))
		hs = append(hs, AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1 * float32(i), Step: 1})
	}
	for step := 1; step <= 2; step++ {
		for i := range hs {
			hs[i].Step = step
			d.AdamW(ps1[i], gs[i], ms1[i], vs1[i], hs[i])
		}
		d.AdamWEach(ps, gs, ms, vs, hs)
	}
	for i := range sizes {
		for _, pair := range [][2]*Tensor{{ps[i], ps1[i]}, {ms[i], ms1[i]}, {vs[i], vs1[i]}} {
			for j, v := range Host(pair[0]) {
				if v != Host(pair[1])[j] {
					t.Fatalf("tensor %d element %d: AdamWEach %g, AdamW %g", i, j, v, Host(pair[1])[j])
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("AdamWEach with fewer gradients than parameters did not panic")
		}
	}()
	d.AdamWEach(ps, gs[:2], ms, vs, hs)
}
