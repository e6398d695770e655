// Tests of MSELoss: per-sample values against a float64 reference and the gradient against
// finite differences.
//
// Test: go test ./nn -run MSE
package nn

import (
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestMSEForward(t *testing.T) {
	r := newHostRand(70)
	pred, target := r.tensor(1, 3, 2, 5), r.tensor(1, 3, 2, 5)
	l := NewMSELoss(testDev)
	p, q := toHost(pred), toHost(target)
	want := make([]float64, 3)
	for b := 0; b < 3; b++ {
		for d := 0; d < 10; d++ {
			e := float64(p[b*10+d]) - float64(q[b*10+d])
			want[b] += e * e / 10
		}
	}
	assertClose(t, "loss", toHost(l.Forward(pred, target)), want, 1e-6, 1e-5)
}

func TestMSEGrad(t *testing.T) {
	r := newHostRand(71)
	pred, target := r.tensor(1, 3, 2, 5), r.tensor(1, 3, 2, 5)
	l := NewMSELoss(testDev)
	var dpred *kernels.Tensor
	gradCheck(t, func() *kernels.Tensor { return l.Forward(pred, target) },
		func(d *kernels.Tensor) { dpred = l.Backward(d) },
		[]gcVar{{"pred", pred, func() *kernels.Tensor { return dpred }}}, gcOpts{h: 3e-3})
}
