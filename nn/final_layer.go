// FinalLayer: the DiT output head, an adaLN-modulated LayerNorm followed by a Linear
// projection to the patch features (DiT's FinalLayer).
//
//	mod = SiLU(c) Wada^T + bada        (B,2C), chunks in order: shift, scale (chunk k = columns [kC,(k+1)C))
//	y   = Linear(LN(x)*(1+scale) + shift)   LN without affine, eps 1e-6; Linear: C -> Out, bias
//
// As in DiT, both the modulation and the projection start at zero, so a fresh model predicts
// zero velocity. Parameter names: linear.{weight,bias}, adaLN_modulation.1.{weight,bias}.
//
// Test: go test ./nn -run FinalLayer

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// FinalLayer maps tokens x (B,T,C) and conditioning c (B,Dc) to y (B,T,Out); see the file
// header for the formula. Backward returns dx (B,T,C) and dc (B,Dc).
type FinalLayer struct {
	C, Dc, Out int // e.g. 384, 384, 16 (= p*p*channels)

	Norm   *LayerNorm // no affine ("norm_final")
	Linear *Linear    // C -> Out, zero-initialised
	Ada    *Linear    // Dc -> 2C, zero-initialised ("adaLN_modulation.1")

	dev  kernels.Device
	B, T int
	mods modulation // (2,B,C) shift, scale from c
	hm   buffer     // (B,T,C) modulated
	dms  buffer     // (2,B,C)
	dx   buffer     // (B,T,C)
}

// NewFinalLayer allocates the head with zero weights (DiT's initialisation); eps 0 means 1e-6.
func NewFinalLayer(dev kernels.Device, C, Dc, out int, eps float32) *FinalLayer {
	if eps == 0 {
		eps = 1e-6
	}
	return &FinalLayer{C: C, Dc: Dc, Out: out, dev: dev,
		Norm:   NewLayerNorm(dev, C, eps, false),
		Linear: NewLinear(dev, nil, C, out, true),
		Ada:    NewLinear(dev, nil, Dc, 2*C, true)}
}

// Params lists "linear.*" and "adaLN_modulation.1.*".
func (f *FinalLayer) Params() []Param {
	return append(prefixed("linear", f.Linear.Params()), prefixed("adaLN_modulation.1", f.Ada.Params())...)
}

// SetTrainable freezes (false) or unfreezes the head's parameters.
func (f *FinalLayer) SetTrainable(on bool) {
	f.Linear.SetTrainable(on)
	f.Ada.SetTrainable(on)
}

// Forward maps x (B,T,C) and c (B,Dc) to y (B,T,Out).
func (f *FinalLayer) Forward(x, c *kernels.Tensor) *kernels.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != f.C {
		panic(fmt.Sprintf("nn: FinalLayer.Forward: input %v, want (B,T,%d)", x, f.C))
	}
	B, T, C := x.Shape[0], x.Shape[1], f.C
	mustShape("FinalLayer.Forward conditioning", c, B, f.Dc)
	f.B, f.T = B, T
	dev := f.dev
	mods := f.mods.forward(f.Ada, c, 2, C)
	hm := f.hm.get(dev, B, T, C)
	kernels.StoreHalf(dev, hm) // read by the linear layer's products only
	f.Norm.ForwardModulate(x, mods.View(0, B, C), mods.View(B*C, B, C), hm)
	return f.Linear.Forward(hm)
}

// Backward takes dy (B,T,Out) and returns dx (B,T,C) and dc (B,Dc).
func (f *FinalLayer) Backward(dy *kernels.Tensor) (dx, dc *kernels.Tensor) {
	B, T, C := f.B, f.T, f.C
	mustShape("FinalLayer.Backward", dy, B, T, f.Out)
	dev := f.dev
	mods := f.mods.out
	dms := f.dms.get(dev, 2, B, C)
	dev.Fill(dms, 0)
	dhm := f.Linear.Backward(dy)
	dx = f.dx.get(dev, B, T, C)
	f.Norm.BackwardModulate(dx, dms.View(0, B, C), dms.View(B*C, B, C), dhm, mods.View(B*C, B, C), nil)
	return dx, f.mods.backward(f.Ada, dms)
}
