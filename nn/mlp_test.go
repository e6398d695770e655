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

// ForwardOnly gives Forward's output bit for bit without allocating or keeping the
// pre-activation h (fc1's output buffer), and Backward after it panics; a plain Forward
// after it keeps h again, and its Backward runs.
func TestMLPForwardOnly(t *testing.T) {
	r := newHostRand(31)
	m := NewMLP(testDev, r, 12, 20)
	r.Normal(m.FC1.Bias)
	x := r.tensor(1, 2, 7, 12)
	m.ForwardOnly = true
	got := append([]float32(nil), kernels.Host(m.Forward(x))...)
	if m.h != nil || m.FC1.out.t != nil {
		t.Fatal("a ForwardOnly Forward kept or allocated the pre-activation h")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Backward after a ForwardOnly Forward did not panic")
			}
		}()
		m.Backward(r.tensor(1, 2, 7, 12))
	}()
	m.ForwardOnly = false
	want := kernels.Host(m.Forward(x))
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("element %d: %g with ForwardOnly, %g without", i, got[i], want[i])
		}
	}
	m.Backward(r.tensor(1, 2, 7, 12))
}
