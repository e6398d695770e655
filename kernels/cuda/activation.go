// Launchers of the activation kernels (activation.cu): GELU and SiLU, forward and backward.
// In BF16 mode the GELU kernels write the BF16 copy of their output (outPair), the next
// linear layer's input or output gradient.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Gelu|Silu)'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) GeluForward(out, inp *kernels.Tensor) {
	n := out.Len()
	mustLen("GeluForward inp", inp, n)
	pi := d.rptr(inp)
	po, ph := d.outPair(out)
	d.launch1("gelu_forward", n, P(po), P(ph), P(pi), I(n))
}

func (d *Device) GeluBackward(dinp, inp, dout *kernels.Tensor) {
	n := dinp.Len()
	mustLen("GeluBackward inp", inp, n)
	mustLen("GeluBackward dout", dout, n)
	pi, pdo := d.rptr(inp), d.rptr(dout)
	pdi, ph := d.outPair(dinp)
	d.launch1("gelu_backward", n, P(pdi), P(ph), P(pi), P(pdo), I(n))
}

func (d *Device) SiluForward(out, inp *kernels.Tensor) {
	n := out.Len()
	mustLen("SiluForward inp", inp, n)
	pi := d.rptr(inp)
	po, ph := d.outPair(out)
	d.launch1("silu_forward", n, P(po), P(ph), P(pi), I(n))
}

func (d *Device) SiluBackward(dinp, inp, dout *kernels.Tensor) {
	n := dinp.Len()
	mustLen("SiluBackward inp", inp, n)
	mustLen("SiluBackward dout", dout, n)
	d.launch1("silu_backward", n, P(d.ptr(dinp)), P(d.ptr(inp)), P(d.ptr(dout)), I(n))
}
