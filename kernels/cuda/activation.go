// Launchers of the activation kernels (activation.cu): GELU and SiLU, forward and backward.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Gelu|Silu)'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) GeluForward(out, inp *kernels.Tensor) {
	n := out.Len()
	mustLen("GeluForward inp", inp, n)
	d.launch1("gelu_forward", n, P(d.ptr(out)), P(d.ptr(inp)), I(n))
}

func (d *Device) GeluBackward(dinp, inp, dout *kernels.Tensor) {
	n := dinp.Len()
	mustLen("GeluBackward inp", inp, n)
	mustLen("GeluBackward dout", dout, n)
	d.launch1("gelu_backward", n, P(d.ptr(dinp)), P(d.ptr(inp)), P(d.ptr(dout)), I(n))
}

func (d *Device) SiluForward(out, inp *kernels.Tensor) {
	n := out.Len()
	mustLen("SiluForward inp", inp, n)
	d.launch1("silu_forward", n, P(d.ptr(out)), P(d.ptr(inp)), I(n))
}

func (d *Device) SiluBackward(dinp, inp, dout *kernels.Tensor) {
	n := dinp.Len()
	mustLen("SiluBackward inp", inp, n)
	mustLen("SiluBackward dout", dout, n)
	d.launch1("silu_backward", n, P(d.ptr(dinp)), P(d.ptr(inp)), P(d.ptr(dout)), I(n))
}
