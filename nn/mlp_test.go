// Tests of MLP: gradients of every parameter and of the input against finite differences.
//
// Test: go test ./nn -run MLP
package nn

import (
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestMLPGrad(t *testing.T) {
	r := newHostRand(30)
	m := NewMLP(testDev, r, 12, 20)
	r.Normal(m.FC1.Bias)
	x := r.tensor(1, 2, 7, 12)
	var dx *kernels.Tensor
	vars := append(paramVars(m.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
	if len(vars) != 5 {
		t.Fatalf("%d tensors to check, want 5", len(vars))
	}
	gradCheck(t, func() *kernels.Tensor { return m.Forward(x) },
		func(d *kernels.Tensor) { dx = m.Backward(d) }, vars, gcOpts{h: 3e-3})
}

func TestMLPParamNames(t *testing.T) {
	m := NewMLP(testDev, nil, 4, 8)
	want := []string{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
	ps := m.Params()
	if len(ps) != len(want) {
		t.Fatalf("got %d params", len(ps))
	}
	for i, p := range ps {
		if p.Name != want[i] {
			t.Errorf("param %d: %q, want %q", i, p.Name, want[i])
		}
	}
}
