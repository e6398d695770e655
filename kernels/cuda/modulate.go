// Launchers of the adaLN-Zero kernels (modulate.cu): modulation and gated residual. In BF16
// mode modulate_forward and gate_backward write the BF16 copy of their output (outPair): a
// linear layer's input and output gradient.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Modulate|Gate)'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) ModulateForward(out, x, shift, scale *kernels.Tensor, B, T, C int) {
	mustLen("ModulateForward out", out, B*T*C)
	mustLen("ModulateForward x", x, B*T*C)
	mustLen("ModulateForward shift", shift, B*C)
	mustLen("ModulateForward scale", scale, B*C)
	px, psh, psc := d.rptr(x), d.rptr(shift), d.rptr(scale)
	po, ph := d.outPair(out)
	d.launch1("modulate_forward", B*T*C, P(po), P(ph), P(px), P(psh), P(psc), I(B), I(T), I(C))
}

func (d *Device) ModulateBackward(dx, dshift, dscale, dout, x, scale *kernels.Tensor, B, T, C int) {
	mustLen("ModulateBackward dx", dx, B*T*C)
	mustLen("ModulateBackward dout", dout, B*T*C)
	mustLen("ModulateBackward x", x, B*T*C)
	mustLen("ModulateBackward dshift", dshift, B*C)
	mustLen("ModulateBackward dscale", dscale, B*C)
	mustLen("ModulateBackward scale", scale, B*C)
	if B == 0 || C == 0 {
		return
	}
	d.launch("modulate_backward", colGrid(C, B), colBlock, 0, P(d.ptr(dx)), P(d.ptr(dshift)), P(d.ptr(dscale)),
		P(d.rptr(dout)), P(0), P(d.rptr(x)), P(d.rptr(scale)), P(0), P(0), I(B), I(T), I(C))
}

func (d *Device) GateForward(out, x, gate, y *kernels.Tensor, B, T, C int) {
	mustLen("GateForward out", out, B*T*C)
	mustLen("GateForward x", x, B*T*C)
	mustLen("GateForward y", y, B*T*C)
	mustLen("GateForward gate", gate, B*C)
	py, py16 := d.readPair(y)
	d.launch1("gate_forward", B*T*C, P(d.ptr(out)), P(d.rptr(x)), P(d.rptr(gate)), P(py), P(py16), I(B), I(T), I(C))
}

func (d *Device) GateBackward(dy, dgate, dout, gate, y *kernels.Tensor, B, T, C int) {
	mustLen("GateBackward dy", dy, B*T*C)
	mustLen("GateBackward dout", dout, B*T*C)
	mustLen("GateBackward y", y, B*T*C)
	mustLen("GateBackward dgate", dgate, B*C)
	mustLen("GateBackward gate", gate, B*C)
	if B == 0 || C == 0 {
		return
	}
	pdg, pdo, pg := d.ptr(dgate), d.rptr(dout), d.rptr(gate)
	py, py16 := d.readPair(y)
	pdy, ph := d.outPair(dy)
	d.launch("gate_backward", colGrid(C, B), colBlock, 0, P(pdy), P(ph), P(pdg), P(pdo), P(pg), P(py), P(py16),
		I(B), I(T), I(C))
}
