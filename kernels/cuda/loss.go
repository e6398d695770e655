// Launchers of the loss kernels (loss.cu): per-sample mean squared error.
//
// Test: go test ./kernels/cuda -run 'Conformance/MSE'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) MSEForward(loss, pred, target *kernels.Tensor, B, D int) {
	mustLen("MSEForward loss", loss, B)
	mustLen("MSEForward pred", pred, B*D)
	mustLen("MSEForward target", target, B*D)
	if B == 0 {
		return
	}
	if D == 0 {
		d.Fill(loss, 0)
		return
	}
	d.launch("mse_forward", Dim3{B, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(d.ptr(loss)), P(d.ptr(pred)), P(d.ptr(target)), I(B), I(D))
}

func (d *Device) MSEBackward(dpred, dloss, pred, target *kernels.Tensor, B, D int) {
	mustLen("MSEBackward dpred", dpred, B*D)
	mustLen("MSEBackward dloss", dloss, B)
	mustLen("MSEBackward pred", pred, B*D)
	mustLen("MSEBackward target", target, B*D)
	d.launch1("mse_backward", B*D, P(d.ptr(dpred)), P(d.ptr(dloss)), P(d.ptr(pred)), P(d.ptr(target)), I(B), I(D))
}
