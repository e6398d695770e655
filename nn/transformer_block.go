// TransformerBlock: the plain pre-LN transformer block (GPT-2, CLIP's text encoder) with a
// key padding mask, the building block of the generator's text encoder.
//
//	inputs x (B,T,C), keyBias (B,T) or none (0 keeps a key, -Inf masks it)
//	x1  = x  + Attn(LN1(x), keyBias)
//	out = x1 + MLP(LN2(x1))
//
// LN1 and LN2 have a learned affine transform (eps 1e-5, PyTorch's default); Attn is
// SelfAttention (qkv and proj with bias, NH heads); MLP is fc2(gelu_tanh(fc1(u))) with
// hidden width MLPRatio*C. Parameter names: norm1.*, attn.qkv.*, attn.proj.*, norm2.*,
// mlp.fc1.*, mlp.fc2.* (the "norm" components keep them out of weight decay).
//
// Backward: dx1 = dout + LN2'(MLP'(dout)), dx = dx1 + LN1'(Attn'(dx1)).
//
// Test: go test ./nn -run TransformerBlock

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// TransformerBlockConfig sizes a TransformerBlock.
type TransformerBlockConfig struct {
	C        int     // width, e.g. 256
	NH       int     // heads, e.g. 4
	MLPRatio float64 // hidden = MLPRatio*C; 0 means 4
	Eps      float32 // LayerNorm eps; 0 means 1e-5
}

// TransformerBlock is one pre-LN block; see the file header for the formula.
type TransformerBlock struct {
	C, NH, Hidden int // e.g. 256, 4, 1024

	Norm1 *LayerNorm     // affine
	Attn  *SelfAttention // C, NH
	Norm2 *LayerNorm     // affine
	MLP   *MLP           // C -> Hidden -> C

	dev  kernels.Device
	B, T int // shape of the last Forward
	out  buffer
	x1   buffer // (B,T,C)
	dx1  buffer // (B,T,C)
	dx   buffer // (B,T,C)
}

// NewTransformerBlock allocates a block with Xavier-normal weights drawn from r, zero biases
// and unit LayerNorm weights.
func NewTransformerBlock(dev kernels.Device, r Rand, cfg TransformerBlockConfig) *TransformerBlock {
	if cfg.MLPRatio == 0 {
		cfg.MLPRatio = 4
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-5
	}
	hidden := int(cfg.MLPRatio * float64(cfg.C))
	if hidden <= 0 {
		panic(fmt.Sprintf("nn: NewTransformerBlock: hidden width %d", hidden))
	}
	return &TransformerBlock{C: cfg.C, NH: cfg.NH, Hidden: hidden, dev: dev,
		Norm1: NewLayerNorm(dev, cfg.C, cfg.Eps, true),
		Attn:  NewSelfAttention(dev, r, cfg.C, cfg.NH),
		Norm2: NewLayerNorm(dev, cfg.C, cfg.Eps, true),
		MLP:   NewMLP(dev, r, cfg.C, hidden)}
}

// Params lists "norm1.*", "attn.*", "norm2.*" and "mlp.*".
func (b *TransformerBlock) Params() []Param {
	ps := prefixed("norm1", b.Norm1.Params())
	ps = append(ps, prefixed("attn", b.Attn.Params())...)
	ps = append(ps, prefixed("norm2", b.Norm2.Params())...)
	return append(ps, prefixed("mlp", b.MLP.Params())...)
}

// SetTrainable freezes (false) or unfreezes every parameter of the block.
func (b *TransformerBlock) SetTrainable(on bool) {
	b.Norm1.SetTrainable(on)
	b.Attn.SetTrainable(on)
	b.Norm2.SetTrainable(on)
	b.MLP.SetTrainable(on)
}

// Forward maps x (B,T,C) with the optional key padding bias keyBias (B,T) to out (B,T,C).
func (b *TransformerBlock) Forward(x, keyBias *kernels.Tensor) *kernels.Tensor {
	if len(x.Shape) != 3 || x.Shape[2] != b.C {
		panic(fmt.Sprintf("nn: TransformerBlock.Forward: input %v, want (B,T,%d)", x, b.C))
	}
	B, T, C := x.Shape[0], x.Shape[1], b.C
	b.B, b.T = B, T
	x1 := b.x1.get(b.dev, B, T, C)
	b.dev.Add(x1, x, b.Attn.Forward(b.Norm1.Forward(x), keyBias))
	out := b.out.get(b.dev, B, T, C)
	b.dev.Add(out, x1, b.MLP.Forward(b.Norm2.Forward(x1)))
	return out
}

// Backward takes dout (B,T,C), accumulates the parameter gradients and returns dx (B,T,C).
func (b *TransformerBlock) Backward(dout *kernels.Tensor) *kernels.Tensor {
	B, T, C := b.B, b.T, b.C
	mustShape("TransformerBlock.Backward", dout, B, T, C)
	dx1 := b.dx1.get(b.dev, B, T, C)
	b.dev.Add(dx1, dout, b.Norm2.Backward(b.MLP.Backward(dout)))
	dx := b.dx.get(b.dev, B, T, C)
	b.dev.Add(dx, dx1, b.Norm1.Backward(b.Attn.Backward(dx1)))
	return dx
}
