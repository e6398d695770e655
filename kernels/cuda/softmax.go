// Launchers of the row-wise softmax kernels (softmax.cu).
//
// Test: go test ./kernels/cuda -run 'Conformance/Softmax'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) SoftmaxForward(out, inp *kernels.Tensor, N, C int) {
	mustLen("SoftmaxForward out", out, N*C)
	mustLen("SoftmaxForward inp", inp, N*C)
	if N == 0 || C == 0 {
		return
	}
	d.launch("softmax_forward", rowGrid(N), rowBlock, 0, P(d.ptr(out)), P(d.ptr(inp)), I(N), I(C))
}

func (d *Device) SoftmaxBackward(dinp, dout, out *kernels.Tensor, N, C int) {
	mustLen("SoftmaxBackward dinp", dinp, N*C)
	mustLen("SoftmaxBackward dout", dout, N*C)
	mustLen("SoftmaxBackward out", out, N*C)
	if N == 0 || C == 0 {
		return
	}
	d.launch("softmax_backward", rowGrid(N), rowBlock, 0, P(d.ptr(dinp)), P(d.ptr(dout)), P(d.ptr(out)), I(N), I(C))
}
