// LayerNorm over the last dimension, with or without a learned affine transform.
//
// Test: go test ./nn -run LayerNorm

package nn

import (
	"fmt"

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

// ForwardModulate normalises x (B,T,C) as Forward and writes its adaLN modulation
// out = y*(1 + scale[b]) + shift[b] (shift, scale (B,C)) into out, in one device pass
// without affine (LayerNormModulateForward); it returns y, which Backward and
// ModulateBackward use as after Forward.
func (n *LayerNorm) ForwardModulate(x, shift, scale, out *kernels.Tensor) *kernels.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != n.C {
		panic(fmt.Sprintf("nn: LayerNorm.ForwardModulate: input %v, want (B,T,%d)", x, n.C))
	}
	B, T := x.Shape[0], x.Shape[1]
	if n.Weight != nil {
		y := n.Forward(x)
		n.dev.ModulateForward(out, y, shift, scale, B, T, n.C)
		return y
	}
	y := n.out.get(n.dev, x.Shape...)
	n.dev.LayerNormModulateForward(out, y, n.mean.get(n.dev, B*T), n.rstd.get(n.dev, B*T), x, shift, scale, B, T, n.C, n.Eps)
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

// BackwardResidual is Backward for a LayerNorm without affine whose input x also feeds a
// residual branch with gradient resid (..., C): it writes resid + dx into dinp (one pass on a
// GPU, Device.LayerNormBackwardResidual). dinp must not share resid's storage.
func (n *LayerNorm) BackwardResidual(dinp, dy, resid *kernels.Tensor) {
	N := rowsOf("LayerNorm.BackwardResidual", dy, n.C)
	if n.x == nil || n.x.Len() != N*n.C {
		panic("nn: LayerNorm.BackwardResidual without a matching Forward")
	}
	if n.Weight != nil {
		panic("nn: LayerNorm.BackwardResidual of a LayerNorm with affine")
	}
	n.dev.LayerNormBackwardResidual(dinp, dy, resid, n.x, n.mean.get(n.dev, N), n.rstd.get(n.dev, N), N, n.C)
}

// scratch returns throw-away (C) gradient tensors for a frozen affine LayerNorm.
func (n *LayerNorm) scratch() (*kernels.Tensor, *kernels.Tensor) {
	if n.frozenG == nil {
		n.frozenG = n.dev.New(2, n.C)
	}
	return n.frozenG.Row(0), n.frozenG.Row(1)
}
