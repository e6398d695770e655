// DiTBlock: the diffusion-transformer block with adaLN-Zero conditioning (Peebles & Xie,
// "Scalable Diffusion Models with Transformers", arXiv 2212.09748), over one joined
// sequence of text and image tokens.
//
// Exact definition (reproduced by the JAX golden script; all products ⊙ are elementwise,
// (B,C) vectors broadcast over the T tokens of their sample):
//
//	inputs  x (B,T,C) tokens, c (B,Dc) conditioning, keyBias (B,T) or none
//	mod  = SiLU(c) Wada^T + bada                     (B,6C), Wada (6C,Dc), bada (6C)
//	       chunk k = mod[:, k*C:(k+1)*C], in order k = 0..5:
//	       shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp
//	h    = LN(x)                                     LN: no affine, eps 1e-6, biased variance
//	x1   = x  + gate_msa ⊙ Attn(h*(1+scale_msa) + shift_msa, keyBias)
//	h2   = LN(x1)
//	out  = x1 + gate_mlp ⊙ MLP(h2*(1+scale_mlp) + shift_mlp)
//
//	Attn(u) = proj(MHA(qkv(u)))  qkv: Linear(C,3C) with bias, columns [q | k | v], each
//	          NH heads of HS = C/NH (head n = columns [n*HS,(n+1)*HS) of q, k, v);
//	          MHA = softmax(q k^T/sqrt(HS) + keyBias) v per head, no causal mask, heads
//	          concatenated in order; proj: Linear(C,C) with bias.
//	MLP(u)  = fc2(gelu_tanh(fc1(u)))  fc1: Linear(C, mlp_ratio*C), fc2: Linear(mlp_ratio*C, C),
//	          gelu_tanh(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))).
//	Linear(x) = x W^T + b with W (out,in) (PyTorch's layout).
//
// adaLN-Zero: Wada and bada start at zero, so every gate is zero and a fresh block is the
// identity (out = x). Parameter names (DiT's): attn.qkv.{weight,bias}, attn.proj.*,
// mlp.fc1.*, mlp.fc2.*, adaLN_modulation.1.{weight,bias}.
//
// Backward returns dx (B,T,C) and dc (B,Dc): the conditioning receives gradient too.
//
// Test: go test ./nn -run DiTBlock

package nn

import (
	"fmt"
	"slices"

	"github.com/alignkit/align/kernels"
)

// DiTBlockConfig sizes a DiTBlock.
type DiTBlockConfig struct {
	C        int     // width, e.g. 384
	NH       int     // heads, e.g. 6
	Dc       int     // conditioning width; 0 means C
	MLPRatio float64 // hidden = MLPRatio*C; 0 means 4
	Eps      float32 // LayerNorm eps; 0 means 1e-6
}

// DiTBlock is one adaLN-Zero transformer block; see the file header for the formula.
type DiTBlock struct {
	C, NH, Dc, Hidden int // e.g. 384, 6, 384, 1536

	Norm1 *LayerNorm     // no affine
	Attn  *SelfAttention // C, NH
	Norm2 *LayerNorm     // no affine
	MLP   *MLP           // C -> Hidden -> C
	// Ada: Dc -> 6C, zero-initialised ("adaLN_modulation.1"); nil where an AdaLNStack holds
	// the block's modulation weights (ForwardMods, BackwardMods).
	Ada *Linear

	dev  kernels.Device
	B, T int             // shape of the last Forward
	mod  *kernels.Tensor // (6,B,C) modulation of the last Forward (d.mods.out or the caller's)
	a    *kernels.Tensor // (B,T,C) attention output (owned by Attn)
	m    *kernels.Tensor // (B,T,C) MLP output (owned by MLP)

	mods modulation // Forward's: the six chunks (6,B,C) from c
	hm   buffer     // (B,T,C) modulate(h, shift_msa, scale_msa)
	x1   buffer     // (B,T,C)
	hm2  buffer     // (B,T,C) modulate(h2, shift_mlp, scale_mlp)
	out  buffer     // (B,T,C)

	dmods buffer // (6,B,C)
	dtmp  buffer // (B,T,C) gradient scratch (dm, then da)
	dx1   buffer // (B,T,C)
	dx    buffer // (B,T,C)
}

// NewDiTBlock allocates a block: attention and MLP weights Xavier-normal from r, biases
// zero, adaLN modulation zero (so the block starts as the identity).
func NewDiTBlock(dev kernels.Device, r Rand, cfg DiTBlockConfig) *DiTBlock {
	if cfg.Dc == 0 {
		cfg.Dc = cfg.C
	}
	if cfg.MLPRatio == 0 {
		cfg.MLPRatio = 4
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-6
	}
	hidden := int(cfg.MLPRatio * float64(cfg.C))
	if hidden <= 0 {
		panic(fmt.Sprintf("nn: NewDiTBlock: hidden width %d", hidden))
	}
	d := &DiTBlock{C: cfg.C, NH: cfg.NH, Dc: cfg.Dc, Hidden: hidden, dev: dev,
		Norm1: NewLayerNorm(dev, cfg.C, cfg.Eps, false),
		Attn:  NewSelfAttention(dev, r, cfg.C, cfg.NH),
		Norm2: NewLayerNorm(dev, cfg.C, cfg.Eps, false),
		MLP:   NewMLP(dev, r, cfg.C, hidden),
		Ada:   NewLinear(dev, nil, cfg.Dc, 6*cfg.C, true)}
	// The attention's and the MLP's outputs are read by the gates only, and the input
	// gradients of qkv and fc1 by the LayerNorms' backward only, whose kernels read a BF16
	// copy as well as FP32 values.
	d.Attn.Proj.halfOut, d.MLP.FC2.halfOut = true, true
	d.Attn.QKV.halfDx, d.MLP.FC1.halfDx = true, true
	return d
}

// ShareForwardBuffers runs the block's forward passes in src's buffers (its norms', attention's
// and MLP's with them), or with src nil in its own again. In a forward pass no backward
// follows, a block's buffers are dead once the next block has read what it needs of them:
// its output (the next block's input, read by that block's norms, in place of which that
// block's own output is then formed), and its residual and MLP output (read as the next
// block's first norm forms that output). So every block of a stack can run in the first
// one's buffers, one block's activations kept instead of all (DiT.ForwardText,
// DiT.ForwardNoGrad); a backward needs each block's own.
func (d *DiTBlock) ShareForwardBuffers(src *DiTBlock) { d.share(src, (*DiTBlock).forwardBuffers) }

// ShareBackwardBuffers runs the block's backward passes in src's buffers (its norms',
// attention's and MLP's with them), or with src nil in its own again. A block's backward
// buffers are dead once the block before has read its input gradient (the output gradient
// of the block before, read by that block's output gate and second norm), its gradient
// scratch written last by the block after's first norm (the block before's output gate, which
// the block before reads first); so every block of a stack can run its backward in the first
// one's buffers (DiT shares them from the start): one block's gradients kept instead of all.
func (d *DiTBlock) ShareBackwardBuffers(src *DiTBlock) { d.share(src, (*DiTBlock).backwardBuffers) }

// share points the buffers list gives of d at those of src (nil: d's own again).
func (d *DiTBlock) share(src *DiTBlock, list func(*DiTBlock) []*buffer) {
	var from []*buffer
	if src != nil {
		from = list(src)
	}
	shareBuffers(list(d), from)
}

// backwardBuffers are the buffers backwardMods and Backward write, in a fixed order.
func (d *DiTBlock) backwardBuffers() []*buffer {
	return slices.Concat([]*buffer{&d.dmods, &d.dtmp, &d.dx1, &d.dx}, d.Norm1.backwardBuffers(),
		d.Norm2.backwardBuffers(), d.Attn.backwardBuffers(), d.MLP.backwardBuffers())
}

// forwardBuffers are the buffers ForwardMods writes, in a fixed order.
func (d *DiTBlock) forwardBuffers() []*buffer {
	return slices.Concat([]*buffer{&d.hm, &d.x1, &d.hm2, &d.out}, d.Norm1.forwardBuffers(),
		d.Norm2.forwardBuffers(), d.Attn.forwardBuffers(), d.MLP.forwardBuffers())
}

// Params lists "attn.*", "mlp.*" and "adaLN_modulation.1.*" (the last not where an
// AdaLNStack holds them).
func (d *DiTBlock) Params() []Param {
	ps := prefixed("attn", d.Attn.Params())
	ps = append(ps, prefixed("mlp", d.MLP.Params())...)
	if d.Ada == nil {
		return ps
	}
	return append(ps, prefixed("adaLN_modulation.1", d.Ada.Params())...)
}

// chunk returns modulation chunk k (0 shift_msa ... 5 gate_mlp) of mods (6,B,C) as (B,C).
func (d *DiTBlock) chunk(mods *kernels.Tensor, k int) *kernels.Tensor {
	return mods.View(k*d.B*d.C, d.B, d.C)
}

// Forward maps x (B,T,C), conditioning c (B,Dc) and the optional key padding bias
// keyBias (B,T) to out (B,T,C).
func (d *DiTBlock) Forward(x, c, keyBias *kernels.Tensor) *kernels.Tensor {
	if d.Ada == nil {
		panic("nn: DiTBlock.Forward of a block whose modulation an AdaLNStack holds (ForwardMods)")
	}
	mustShape("DiTBlock.Forward conditioning", c, x.Dim(0), d.Dc)
	return d.ForwardMods(x, d.mods.forward(d.Ada, c, 6, d.C), keyBias)
}

// ForwardMods is Forward with the modulation given: mods (6,B,C) holds the six chunks of
// SiLU(c) Wada^T + bada in order, each a contiguous (B,C) (AdaLNStack computes those of a
// whole stack of blocks in one product). mods must stay unchanged until BackwardMods.
func (d *DiTBlock) ForwardMods(x, mods, keyBias *kernels.Tensor) *kernels.Tensor {
	return d.forwardMods(x, nil, mods, keyBias).form(d.dev)
}

// gatedOut is a block's output not formed yet: out = x1 + gate ⊙ m, which the next block's
// first LayerNorm forms as it reads it (GateLayerNormModulateForward), storing it in out, so
// that it is not read back (ForwardBlocks); form forms it on its own (GateForward).
type gatedOut struct{ out, x1, gate, m *kernels.Tensor }

func (g gatedOut) form(dev kernels.Device) *kernels.Tensor {
	dev.GateForward(g.out, g.x1, g.gate, g.m, g.out.Dim(0), g.out.Dim(1), g.out.Dim(2))
	return g.out
}

// forwardMods is ForwardMods with the input x (B,T,C), or where prev is not nil the previous
// block's output to be formed, and its own output left to form.
func (d *DiTBlock) forwardMods(x *kernels.Tensor, prev *gatedOut, mods, keyBias *kernels.Tensor) gatedOut {
	if prev != nil {
		x = prev.out
	}
	if len(x.Shape) != 3 || x.Shape[2] != d.C {
		panic(fmt.Sprintf("nn: DiTBlock.Forward: input %v, want (B,T,%d)", x, d.C))
	}
	B, T, C := x.Shape[0], x.Shape[1], d.C
	mustShape("DiTBlock.Forward modulation", mods, 6, B, C)
	d.B, d.T, d.mod = B, T, mods
	dev := d.dev

	hm := d.hm.get(dev, B, T, C)
	kernels.StoreHalf(dev, hm) // read by qkv's products only
	if prev != nil {           // x = the previous block's x1 + gate_mlp ⊙ m, formed in this pass
		d.Norm1.ForwardGateModulate(x, prev.x1, prev.gate, prev.m, d.chunk(mods, 0), d.chunk(mods, 1), hm)
	} else {
		d.Norm1.ForwardModulate(x, d.chunk(mods, 0), d.chunk(mods, 1), hm)
	}
	d.a = d.Attn.Forward(hm, keyBias)
	x1 := d.x1.get(dev, B, T, C)
	hm2 := d.hm2.get(dev, B, T, C)
	kernels.StoreHalf(dev, hm2) // read by fc1's products only
	// x1 = x + gate_msa ⊙ a, and LN(x1) modulated, in one pass.
	d.Norm2.ForwardGateModulate(x1, x, d.chunk(mods, 2), d.a, d.chunk(mods, 3), d.chunk(mods, 4), hm2)
	d.m = d.MLP.Forward(hm2)
	return gatedOut{out: d.out.get(dev, B, T, C), x1: x1, gate: d.chunk(mods, 5), m: d.m}
}

// Backward takes dout (B,T,C) and returns dx (B,T,C) and dc (B,Dc).
func (d *DiTBlock) Backward(dout *kernels.Tensor) (dx, dc *kernels.Tensor) {
	if d.Ada == nil || d.mods.c == nil {
		panic("nn: DiTBlock.Backward without a matching Forward (BackwardMods after ForwardMods)")
	}
	dmods := d.dmods.get(d.dev, 6, d.B, d.C)
	d.dev.Fill(dmods, 0)
	dx = d.BackwardMods(dout, dmods)
	return dx, d.mods.backward(d.Ada, dmods)
}

// BackwardMods is Backward for ForwardMods: it returns dx (B,T,C) and adds the modulation's
// gradient (6,B,C) to dmods (the modulate and gate backward ops accumulate; the caller zeroes
// it, a stack all its blocks' at once).
func (d *DiTBlock) BackwardMods(dout, dmods *kernels.Tensor) (dx *kernels.Tensor) {
	return d.backwardMods(dout, dmods, false, nil)
}

// gateGrad is the backward of a gated residual out = x + gate ⊙ y for out's gradient dout:
// dy = gate ⊙ dout (written), dgate += sum_t dout ⊙ y, which the norm backward that writes
// dout forms in the same pass (LayerNorm.BackwardModulateGate).
type gateGrad struct{ dy, dgate, gate, y *kernels.Tensor }

// outGate is the backward of the block's output, out = x1 + gate_mlp ⊙ m, with dm in dtmp,
// kept in BF16 alone (read by fc2's and then the projection's products only).
func (d *DiTBlock) outGate(dmods *kernels.Tensor) gateGrad {
	dm := d.dtmp.get(d.dev, d.B, d.T, d.C)
	kernels.StoreHalf(d.dev, dm)
	return gateGrad{dy: dm, dgate: d.chunk(dmods, 5), gate: d.chunk(d.mod, 5), y: d.m}
}

// backwardMods is BackwardMods where, with formed, the output gate's backward (outGate) is
// done already (the next block's first norm formed it: BackwardBlocks), and where prev is
// not nil the first norm's backward also forms prev, the output gate's backward of the block
// before, from dx.
func (d *DiTBlock) backwardMods(dout, dmods *kernels.Tensor, formed bool, prev *gateGrad) (dx *kernels.Tensor) {
	B, T, C := d.B, d.T, d.C
	mustShape("DiTBlock.Backward", dout, B, T, C)
	mustShape("DiTBlock.Backward modulation gradient", dmods, 6, B, C)
	dev, mods := d.dev, d.mod

	// out = x1 + gate_mlp ⊙ m
	g := d.outGate(dmods)
	if !formed {
		dev.GateBackward(g.dy, g.dgate, dout, g.gate, g.y, B, T, C)
	}
	dhm2 := d.MLP.Backward(g.dy)
	// dx1 = dout + LN2's input gradient; x1 = x + gate_msa ⊙ a, so da = gate_msa ⊙ dx1 (in
	// dtmp, free again), formed in the same pass.
	dx1, da := d.dx1.get(dev, B, T, C), d.dtmp.get(dev, B, T, C)
	d.Norm2.BackwardModulateGate(dx1, d.chunk(dmods, 3), d.chunk(dmods, 4), dhm2, d.chunk(mods, 4), dout,
		gateGrad{dy: da, dgate: d.chunk(dmods, 2), gate: d.chunk(mods, 2), y: d.a})
	dhm := d.Attn.Backward(da)
	dx = d.dx.get(dev, B, T, C)
	if prev != nil {
		d.Norm1.BackwardModulateGate(dx, d.chunk(dmods, 0), d.chunk(dmods, 1), dhm, d.chunk(mods, 1), dx1, *prev)
	} else {
		d.Norm1.BackwardModulate(dx, d.chunk(dmods, 0), d.chunk(dmods, 1), dhm, d.chunk(mods, 1), dx1)
	}
	return dx
}

// SetTrainable freezes (false) or unfreezes every base parameter of the block (LoRA
// adapters keep their gradients).
func (d *DiTBlock) SetTrainable(on bool) {
	d.Attn.SetTrainable(on)
	d.MLP.SetTrainable(on)
	if d.Ada != nil {
		d.Ada.SetTrainable(on)
	}
}

// EnableLoRA freezes the block and attaches rank-r adapters to the attention's qkv and
// output projections, the usual Flow-DPO target (VideoAlign: r 64, alpha 128 on q/k/v/o).
func (d *DiTBlock) EnableLoRA(r Rand, rank int, alpha float32) {
	d.SetTrainable(false)
	d.Attn.EnableLoRA(r, rank, alpha)
}

// SetLoRAEnabled switches the block's adapters on or off.
func (d *DiTBlock) SetLoRAEnabled(on bool) { d.Attn.SetLoRAEnabled(on) }

// MergeLoRA folds the block's adapters into the attention weights and removes them.
func (d *DiTBlock) MergeLoRA() { d.Attn.MergeLoRA() }
