// TextEncoder: the generator's small caption encoder, token embedding plus a fixed
// sinusoidal position code, a few pre-LN transformer blocks with the key padding mask, and a
// final LayerNorm. Its tokens join the patch tokens of the DiT (dit.go).
//
// Test: go test ./diffusion -run DiT (the whole model's gradient check covers it)

package diffusion

import (
	"fmt"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// TextEncoder maps token ids (B,L) to tokens (B,L,C):
//
//	h_0 = E[ids] + pos                     E (V,C) learned; pos = PosEmbed1D(C, 0..L-1), fixed
//	h_k = Block_k(h_{k-1}, keyBias)        pre-LN blocks (nn.TransformerBlock), k = 1..layers
//	out = LN(h_layers)                     affine LayerNorm ("final_norm")
//
// keyBias (B,L) is 0 for the real tokens of a caption and -Inf for padding. Padding
// positions still compute outputs (they attend to the real tokens) but no later layer reads
// them: they are masked as keys everywhere and left out of the pooled text vector.
type TextEncoder struct {
	V, C, NH, L int // vocabulary, width, heads, tokens per caption; e.g. 900, 256, 4, 16

	Embed     *nn.TokenEmbedding     // "token_embedding"
	Layers    []*nn.TransformerBlock // "layers.N"
	FinalNorm *nn.LayerNorm          // "final_norm"

	dev kernels.Device
	pos *kernels.Tensor // (L*C) fixed position table
	B   int             // batch of the last Forward
	h0  *kernels.Tensor // (B,L,C)
	h0b buffer          // storage of h0, grown on demand (the smaller one freed)
}

// NewTextEncoder allocates an encoder with weights drawn from r.
func NewTextEncoder(dev kernels.Device, r nn.Rand, V, C, NH, L, layers int, mlpRatio float64) *TextEncoder {
	e := &TextEncoder{V: V, C: C, NH: NH, L: L, dev: dev,
		Embed:     nn.NewTokenEmbedding(dev, r, V, C),
		FinalNorm: nn.NewLayerNorm(dev, C, 1e-5, true)}
	for range layers {
		e.Layers = append(e.Layers, nn.NewTransformerBlock(dev, r, nn.TransformerBlockConfig{C: C, NH: NH, MLPRatio: mlpRatio}))
	}
	pos := make([]float64, L)
	for i := range pos {
		pos[i] = float64(i)
	}
	e.pos = dev.FromHost(nn.PosEmbed1D(C, pos), L*C)
	return e
}

// Params lists "token_embedding.weight", "layers.N.*" and "final_norm.*".
func (e *TextEncoder) Params() []nn.Param {
	ps := []nn.Param{{Name: "token_embedding.weight", W: e.Embed.Weight, G: e.Embed.DWeight}}
	for i, b := range e.Layers {
		ps = append(ps, prefix(fmt.Sprintf("layers.%d", i), b.Params())...)
	}
	return append(ps, prefix("final_norm", e.FinalNorm.Params())...)
}

// SetTrainable freezes (false) or unfreezes every parameter.
func (e *TextEncoder) SetTrainable(on bool) {
	e.Embed.SetTrainable(on)
	for _, b := range e.Layers {
		b.SetTrainable(on)
	}
	e.FinalNorm.SetTrainable(on)
}

// Forward encodes ids (B*L, row-major (B,L)) with keyBias (B,L) and returns (B,L,C).
func (e *TextEncoder) Forward(ids []int32, keyBias *kernels.Tensor) *kernels.Tensor {
	if len(ids)%e.L != 0 {
		panic(fmt.Sprintf("diffusion: TextEncoder.Forward: %d ids are not a multiple of %d", len(ids), e.L))
	}
	B := len(ids) / e.L
	e.B = B
	emb := e.Embed.Forward(ids)
	e.h0 = e.h0b.get(e.dev, B, e.L, e.C)
	e.dev.AddBias(e.h0, emb, e.pos, B, e.L*e.C)
	h := e.h0
	for _, b := range e.Layers {
		h = b.Forward(h, keyBias)
	}
	return e.FinalNorm.Forward(h)
}

// Backward takes dout (B,L,C) and accumulates the parameter gradients (ids get none).
func (e *TextEncoder) Backward(dout *kernels.Tensor) {
	d := e.FinalNorm.Backward(dout)
	for i := len(e.Layers) - 1; i >= 0; i-- {
		d = e.Layers[i].Backward(d)
	}
	e.Embed.Backward(d)
}

// prefix returns ps with every name turned into p + "." + name.
func prefix(p string, ps []nn.Param) []nn.Param {
	out := make([]nn.Param, len(ps))
	for i, q := range ps {
		out[i] = nn.Param{Name: p + "." + q.Name, W: q.W, G: q.G}
	}
	return out
}
