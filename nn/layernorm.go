// LayerNorm over the last dimension, with or without a learned affine transform.
//
// Test: go test ./nn -run LayerNorm

package nn

import (
	"fmt"
	"slices"

	"github.com/alignkit/align/kernels"
)

// LayerNorm normalises every row of x (..., C):
//
//	y = (x - mean) * rstd * weight + bias,   rstd = 1/sqrt(var + eps)  (biased variance)
//
// Without affine (the DiT blocks' norm1, norm2) weight and bias are absent: y = (x-mean)*rstd.
type LayerNorm struct {
	C   int     // e.g. 384
	Eps float32 // e.g. 1e-6

	Weight  *kernels.Tensor // (C), starts at 1; nil without affine
	Bias    *kernels.Tensor // (C), starts at 0; nil without affine
	DWeight *kernels.Tensor // (C); nil without affine or when frozen
	DBias   *kernels.Tensor // (C); nil without affine or when frozen

	dev  kernels.Device
	x    *kernels.Tensor // (N, C) input of the last Forward
	mean buffer          // (N)
	rstd buffer          // (N)
	out  buffer          // (N, C)
	dx   buffer          // (N, C)

	frozenG *kernels.Tensor // (2, C) discarded gradients of a frozen affine
}

// forwardBuffers are the buffers Forward writes (DiTBlock.ShareForwardBuffers).
func (n *LayerNorm) forwardBuffers() []*buffer { return []*buffer{&n.mean, &n.rstd, &n.out} }

// backwardBuffers are the buffers Backward writes (DiTBlock.ShareBackwardBuffers).
func (n *LayerNorm) backwardBuffers() []*buffer { return []*buffer{&n.dx} }

// NewLayerNorm allocates a LayerNorm over C channels; affine adds weight (ones) and bias
// (zeros), trainable.
func NewLayerNorm(dev kernels.Device, C int, eps float32, affine bool) *LayerNorm {
	n := &LayerNorm{C: C, Eps: eps, dev: dev}
	if affine {
		n.Weight = dev.New(C)
		dev.Fill(n.Weight, 1)
		n.Bias = dev.New(C)
		n.SetTrainable(true)
	}
	return n
}

// SetTrainable gives the affine parameters zeroed gradients (true) or freezes them.
func (n *LayerNorm) SetTrainable(on bool) {
	if n.Weight == nil {
		return
	}
	if !on {
		n.DWeight, n.DBias = nil, nil
		return
	}
	if n.DWeight == nil {
		n.DWeight, n.DBias = n.dev.New(n.C), n.dev.New(n.C)
	}
}

// Params lists "weight" and "bias", or nothing without affine.
func (n *LayerNorm) Params() []Param {
	if n.Weight == nil {
		return nil
	}
	return []Param{{Name: "weight", W: n.Weight, G: n.DWeight}, {Name: "bias", W: n.Bias, G: n.DBias}}
}

// Forward normalises x (..., C) and returns y (..., C).
func (n *LayerNorm) Forward(x *kernels.Tensor) *kernels.Tensor {
	N := rowsOf("LayerNorm.Forward", x, n.C)
	y := n.out.get(n.dev, x.Shape...)
	n.dev.LayerNormForward(y, n.mean.get(n.dev, N), n.rstd.get(n.dev, N), x, n.Weight, n.Bias, N, n.C, n.Eps)
	n.x = x
	return y
}

// Backward takes dy (..., C), accumulates dweight and dbias and returns dx (..., C).
func (n *LayerNorm) Backward(dy *kernels.Tensor) *kernels.Tensor {
	N := rowsOf("LayerNorm.Backward", dy, n.C)
	if n.x == nil || n.x.Len() != N*n.C {
		panic("nn: LayerNorm.Backward without a matching Forward")
	}
	dx := n.dx.get(n.dev, n.x.Shape...)
	dw, db := n.DWeight, n.DBias
	if n.Weight != nil && dw == nil {
		// Frozen affine: the device op still wants somewhere to accumulate.
		dw, db = n.scratch()
	}
	n.dev.LayerNormBackward(dx, dw, db, dy, n.x, n.Weight, n.mean.get(n.dev, N), n.rstd.get(n.dev, N), N, n.C)
	return dx
}

// ForwardModulate writes the adaLN modulation of x's norm, out = LN(x)*(1 + scale[b]) +
// shift[b] (x, out (B,T,C); shift, scale (B,C)), in one device pass
// (LayerNormModulateForward) that does not keep LN(x): BackwardModulate recomputes it. No
// affine only.
func (n *LayerNorm) ForwardModulate(x, shift, scale, out *kernels.Tensor) {
	if len(x.Shape) != 3 || x.Shape[2] != n.C {
		panic(fmt.Sprintf("nn: LayerNorm.ForwardModulate: input %v, want (B,T,%d)", x, n.C))
	}
	if n.Weight != nil {
		panic("nn: LayerNorm.ForwardModulate of a LayerNorm with affine")
	}
	B, T := x.Shape[0], x.Shape[1]
	n.dev.LayerNormModulateForward(out, nil, n.mean.get(n.dev, B*T), n.rstd.get(n.dev, B*T), x, shift, scale, B, T, n.C, n.Eps)
	n.x = x
}

// ForwardGateModulate is ForwardModulate of the gated residual x1 = x + gate[b]*y (x, y, x1
// (B,T,C); gate (B,C)), which it writes into x1: one device pass
// (GateLayerNormModulateForward) that does not read x1 back. BackwardModulate follows as
// after ForwardModulate(x1, ...).
func (n *LayerNorm) ForwardGateModulate(x1, x, gate, y, shift, scale, out *kernels.Tensor) {
	if len(x.Shape) != 3 || x.Shape[2] != n.C {
		panic(fmt.Sprintf("nn: LayerNorm.ForwardGateModulate: input %v, want (B,T,%d)", x, n.C))
	}
	if n.Weight != nil {
		panic("nn: LayerNorm.ForwardGateModulate of a LayerNorm with affine")
	}
	B, T := x.Shape[0], x.Shape[1]
	n.dev.GateLayerNormModulateForward(x1, out, n.mean.get(n.dev, B*T), n.rstd.get(n.dev, B*T), x, gate, y, shift, scale,
		B, T, n.C, n.Eps)
	n.x = x1
}

// BackwardModulate is ForwardModulate's backward for dout (B,T,C), the gradient of out, where
// x also feeds a residual branch with gradient resid (nil: none): it writes resid + dx into
// dinp and accumulates the gradients of shift and scale into dshift and dscale
// (LayerNormModulateBackward). dinp must not share resid's storage.
func (n *LayerNorm) BackwardModulate(dinp, dshift, dscale, dout, scale, resid *kernels.Tensor) {
	if n.x == nil || !slices.Equal(dout.Shape, n.x.Shape) {
		panic(fmt.Sprintf("nn: LayerNorm.BackwardModulate: gradient %v without a matching ForwardModulate", dout))
	}
	B, T := n.x.Shape[0], n.x.Shape[1]
	n.dev.LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, n.x, n.mean.get(n.dev, B*T), n.rstd.get(n.dev, B*T),
		scale, B, T, n.C, n.Eps)
}

// BackwardModulateGate is BackwardModulate where x is a gated residual's output, x = x0 +
// gate ⊙ y: it also forms g's backward from dinp, the gradient of x (g.dy = g.gate ⊙ dinp,
// g.dgate += sum_t dinp ⊙ g.y; LayerNormModulateGateBackward, one device pass).
func (n *LayerNorm) BackwardModulateGate(dinp, dshift, dscale, dout, scale, resid *kernels.Tensor, g gateGrad) {
	if n.x == nil || !slices.Equal(dout.Shape, n.x.Shape) {
		panic(fmt.Sprintf("nn: LayerNorm.BackwardModulateGate: gradient %v without a matching ForwardModulate", dout))
	}
	B, T := n.x.Shape[0], n.x.Shape[1]
	n.dev.LayerNormModulateGateBackward(dinp, dshift, dscale, dout, resid, n.x, n.mean.get(n.dev, B*T),
		n.rstd.get(n.dev, B*T), scale, g.dy, g.dgate, g.gate, g.y, B, T, n.C, n.Eps)
}

// scratch returns throw-away (C) gradient tensors for a frozen affine LayerNorm.
func (n *LayerNorm) scratch() (*kernels.Tensor, *kernels.Tensor) {
	if n.frozenG == nil {
		n.frozenG = n.dev.New(2, n.C)
	}
	return n.frozenG.Row(0), n.frozenG.Row(1)
}
