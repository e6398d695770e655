// Tests of the LoRA adapter: a zero B leaves the base output, a disabled adapter is the
// frozen base, merging gives the same output, the base stays frozen, and the gradients of
// A, B and x match finite differences.
//
// Test: go test ./nn -run LoRA
package nn

import (
	"fmt"
	"testing"

	"github.com/alignkit/align/kernels"
)

func newLoRALinear(seed uint64) (*Linear, *hostRand) {
	r := newHostRand(seed)
	l := NewLinear(testDev, r, 12, 7, true)
	testDev.CopyFromHost(l.Bias, r.values(7, 1))
	l.EnableLoRA(r, 3, 6)
	return l, r
}

func TestLoRAZeroBIsBase(t *testing.T) {
	l, r := newLoRALinear(10)
	x := r.tensor(1, 2, 5, 12)
	want := linearRef(toHost(x), toHost(l.Weight), toHost(l.Bias), 10, 12, 7)
	assertClose(t, "fresh adapter", toHost(l.Forward(x)), want, 1e-5, 1e-5)
}

func TestLoRAFreezesBase(t *testing.T) {
	l, _ := newLoRALinear(11)
	names := map[string]bool{}
	for _, p := range l.Params() {
		names[p.Name] = p.G != nil
	}
	want := map[string]bool{"weight": false, "bias": false, "lora_A.weight": true, "lora_B.weight": true}
	for n, g := range want {
		if got, ok := names[n]; !ok || got != g {
			t.Errorf("param %s: present %v trainable %v, want trainable %v", n, ok, got, g)
		}
	}
}

func TestLoRADisabledAndMerged(t *testing.T) {
	l, r := newLoRALinear(12)
	r.Normal(l.LoRA.B) // a trained adapter
	x := r.tensor(1, 2, 5, 12)
	base := linearRef(toHost(x), toHost(l.Weight), toHost(l.Bias), 10, 12, 7)

	wm := mergedWeightRef(l, 1)
	merged := linearRef(toHost(x), wm, toHost(l.Bias), 10, 12, 7)

	assertClose(t, "enabled", toHost(l.Forward(x)), merged, 1e-5, 1e-5)
	l.SetLoRAEnabled(false)
	assertClose(t, "disabled = base", toHost(l.Forward(x)), base, 1e-5, 1e-5)
	l.SetLoRAEnabled(true)
	unmerged := toHost(l.Forward(x))
	l.MergeLoRA()
	if l.LoRA != nil {
		t.Fatal("adapter still attached after MergeLoRA")
	}
	assertClose(t, "merged = unmerged", toHost(l.Forward(x)), to64(unmerged), 1e-5, 1e-5)
}

// mergedWeightRef is W + w (alpha/r) B A of l's adapter, in float64.
func mergedWeightRef(l *Linear, w float64) []float32 {
	wt, a, b := toHost(l.Weight), toHost(l.LoRA.A), toHost(l.LoRA.B)
	s := w * float64(l.LoRA.Scale())
	out := make([]float32, len(wt))
	for o := 0; o < l.Out; o++ {
		for i := 0; i < l.In; i++ {
			v := float64(wt[o*l.In+i])
			for k := 0; k < l.LoRA.Rank; k++ {
				v += s * float64(b[o*l.LoRA.Rank+k]) * float64(a[k*l.In+i])
			}
			out[o*l.In+i] = float32(v)
		}
	}
	return out
}

// A weighted merge adds w times the adapter's update: half of it, none, and its negative.
func TestLoRAMergeWeighted(t *testing.T) {
	for _, w := range []float32{0.5, 0, -2} {
		l, r := newLoRALinear(13)
		r.Normal(l.LoRA.B)
		want := mergedWeightRef(l, float64(w))
		l.MergeLoRAWeighted(w)
		if l.LoRA != nil {
			t.Fatal("adapter still attached after MergeLoRAWeighted")
		}
		assertClose(t, fmt.Sprintf("weight %g", w), toHost(l.Weight), to64(want), 1e-6, 1e-6)
	}
}

func TestLoRAGrad(t *testing.T) {
	l, r := newLoRALinear(13)
	r.Normal(l.LoRA.B) // nonzero B, so dA is not trivially zero
	x := r.tensor(1, 2, 5, 12)
	var dx *kernels.Tensor
	vars := append(paramVars(l.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
	if len(vars) != 3 {
		t.Fatalf("want lora_A, lora_B and x checked, got %d tensors", len(vars))
	}
	w0 := toHost(l.Weight)
	gradCheck(t, func() *kernels.Tensor { return l.Forward(x) },
		func(d *kernels.Tensor) { dx = l.Backward(d) }, vars, gcOpts{})
	assertClose(t, "frozen weight unchanged", toHost(l.Weight), to64(w0), 0, 0)
}

// A disabled adapter gets no gradient and the base's input gradient is dy W.
func TestLoRADisabledBackward(t *testing.T) {
	l, r := newLoRALinear(14)
	r.Normal(l.LoRA.B)
	l.SetLoRAEnabled(false)
	x, dy := r.tensor(1, 4, 12), r.tensor(1, 4, 7)
	l.Forward(x)
	l.Backward(dy)
	for _, p := range l.LoRA.Params() {
		for i, v := range toHost(p.G) {
			if v != 0 {
				t.Fatalf("%s[%d] = %g after a disabled pass", p.Name, i, v)
			}
		}
	}
}
