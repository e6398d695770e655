// Launcher of the AdamW kernel (adamw.cu); the bias corrections are computed here in
// float64, as on the CPU device.
//
// Test: go test ./kernels/cuda -run 'Conformance/AdamW'
package cuda

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

func (d *Device) AdamW(param, grad, m, v *kernels.Tensor, h kernels.AdamWParams) {
	n := param.Len()
	mustLen("AdamW grad", grad, n)
	mustLen("AdamW m", m, n)
	mustLen("AdamW v", v, n)
	if h.Step < 1 {
		panic(fmt.Sprintf("cuda: AdamW: step %d, want >= 1", h.Step))
	}
	bc1 := float32(1 - math.Pow(float64(h.Beta1), float64(h.Step)))
	bc2 := float32(1 - math.Pow(float64(h.Beta2), float64(h.Step)))
	d.launch1("adamw", n, P(d.ptr(param)), P(d.ptr(grad)), P(d.ptr(m)), P(d.ptr(v)), I(n),
		F(h.LR), F(h.Beta1), F(h.Beta2), F(h.Eps), F(h.LR*h.WeightDecay), F(bc1), F(bc2))
}
