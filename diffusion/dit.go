// DiT: the velocity model v(x_t, t, text, reward condition) of align's flow-matching
// generators, for images (B,C,H,W) and videos (B,T,C,H,W), with its explicit backward pass
// (parameter gradients and dv/dx_t, which Flow-NRG guidance needs), LoRA switches, and
// safetensors save/load with the architecture config and the tokenizer in the metadata.
//
// Forward, with L = MaxTextLen text tokens and P patch tokens per sample (config.go):
//
//	txt  = TextEncoder(ids, keyBias_text)                     (B,L,Ct)  text_encoder
//	txt  = txt Wtp^T + btp      (only when Ct != C)           (B,L,C)   text_proj
//	c    = TimestepEmbedder(t)                                 (B,C)     t_embedder (1000 t, sinusoid, MLP)
//	     + Linear(MeanPool(txt over the real tokens))                    pooled_text_proj
//	     + RewardEmbedder(r)          (models with reward dims)          reward_embedder
//	xp   = PatchEmbed(x_t)                                     (B,P,C)   x_embedder (+ fixed 3D sin-cos)
//	h    = [txt | xp]                                          (B,L+P,C) one attention sequence
//	h    = DiTBlock_k(h, c, keyBias)   k = 0..depth-1                    blocks.k (adaLN-Zero; the
//	                                   blocks' modulations in one product, nn.AdaLNStack)
//	y    = FinalLayer(h[:, L:], c)                             (B,P,F)   final_layer, F = Cin*pt*p*p
//	v    = Unpatchify(y)                                        x_t's shape
//
// keyBias (B,L+P) is -Inf at the padding positions of each caption and 0 elsewhere, so no
// token attends to padding. A fresh model predicts v = 0 (the final layer starts at zero,
// as in DiT) and ignores the reward condition (the reward MLP's last layer starts at zero).
//
// Test: go test ./diffusion -run DiT

package diffusion

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// DiT is the velocity model; see the file header for the forward pass. Parameter names:
// x_embedder.*, t_embedder.*, text_encoder.*, text_proj.* (when Ct != C),
// pooled_text_proj.*, reward_embedder.* (with reward dims), blocks.N.*, final_layer.*.
type DiT struct {
	Config    ModelConfig
	Tokenizer *Tokenizer // saved with the model; nil until set
	// RewardConditionMax is, per reward dimension, the top of the conditions the slot was
	// trained on (reward_max.go; NaN: none), saved with the model; nil for none.
	RewardConditionMax []float64

	XEmbedder      *nn.PatchEmbed       // "x_embedder"
	TEmbedder      *nn.TimestepEmbedder // "t_embedder"
	Text           *TextEncoder         // "text_encoder"
	TextProj       *nn.Linear           // "text_proj": Ct -> C; nil when Ct == C
	PooledTextProj *nn.Linear           // "pooled_text_proj": C -> C
	Reward         *RewardEmbedder      // "reward_embedder"; nil without reward dims
	Blocks         []*nn.DiTBlock       // "blocks.N"
	AdaLN          *nn.AdaLNStack       // the blocks' modulations in one product; nil after UnstackAdaLN
	Final          *nn.FinalLayer       // "final_layer"

	dev    kernels.Device
	B      int   // batch of the last Forward
	xShape []int // x_t's shape in the last Forward
	// forwardOnly: the last forward pass kept nothing for Backward: it was ForwardText (its
	// captions from a TextCond, so the text encoder holds no activations of it) or
	// ForwardNoGrad, or EncodeText ran since. Such passes run the MLPs ForwardOnly.
	forwardOnly bool

	tbuf          buffer // (B) times
	kbText        buffer // (B,L) key bias of the text encoder
	kbJoint       buffer // (B,L+P) key bias of the blocks
	mask          buffer // (B,L) 1 for real tokens, 0 for padding
	pooled        buffer // (B,C) mean of the real text tokens
	cond          buffer // (B,C) conditioning c
	seq           buffer // (B,L+P,C) joined tokens
	hText, hPatch buffer // (B,L,C), (B,P,C) the last block's output, split
	out           buffer // x_t's shape
	dy            buffer // (B,P,F)
	dseq          buffer // (B,L+P,C)
	dcond         buffer // (B,C)
	dText, dPatch buffer // (B,L,C), (B,P,C)
	dPool         buffer // (B,L,C)

	hostKB, hostKJ, hostMask []float32 // host staging of the key biases (B,L), (B,L+P) and the mask (B,L)
	hostT                    []float32 // (B) times
}

// NewDiT builds a model for cfg on dev with weights drawn from r (a nil r leaves every
// weight zero, for loading). The config must be valid.
func NewDiT(dev kernels.Device, r nn.Rand, cfg ModelConfig) (*DiT, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	C := cfg.Width
	m := &DiT{Config: cfg, dev: dev}
	m.Config.RewardDims = append([]string{}, cfg.RewardDims...)
	m.XEmbedder = nn.NewPatchEmbed(dev, r, cfg.Channels, C, cfg.TubeletFrames, cfg.PatchSize)
	m.TEmbedder = nn.NewTimestepEmbedder(dev, r, C)
	m.Text = NewTextEncoder(dev, r, cfg.VocabSize, cfg.TextWidth, cfg.TextHeads, cfg.MaxTextLen, cfg.TextLayers, cfg.MLPRatio)
	if cfg.TextWidth != C {
		m.TextProj = nn.NewLinear(dev, r, cfg.TextWidth, C, true)
	}
	m.PooledTextProj = nn.NewLinear(dev, r, C, C, true)
	if len(cfg.RewardDims) > 0 {
		m.Reward = NewRewardEmbedder(dev, r, cfg.RewardDims, cfg.RewardFreq, C)
	}
	for k := range cfg.Depth {
		b := nn.NewDiTBlock(dev, r, nn.DiTBlockConfig{C: C, NH: cfg.Heads, MLPRatio: cfg.MLPRatio})
		if k > 0 {
			b.ShareBackwardBuffers(m.Blocks[0]) // one block's gradients at a time
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.AdaLN = nn.NewAdaLNStack(dev, m.Blocks)
	F := cfg.Channels * cfg.TubeletFrames * cfg.PatchSize * cfg.PatchSize
	m.Final = nn.NewFinalLayer(dev, C, C, F, 0)
	return m, nil
}

// Device is the device the model lives on.
func (m *DiT) Device() kernels.Device { return m.dev }

// Params lists every parameter with its dotted name (see the type's doc).
func (m *DiT) Params() []nn.Param {
	ps := prefix("x_embedder", m.XEmbedder.Params())
	ps = append(ps, prefix("t_embedder", m.TEmbedder.Params())...)
	ps = append(ps, prefix("text_encoder", m.Text.Params())...)
	if m.TextProj != nil {
		ps = append(ps, prefix("text_proj", m.TextProj.Params())...)
	}
	ps = append(ps, prefix("pooled_text_proj", m.PooledTextProj.Params())...)
	if m.Reward != nil {
		ps = append(ps, prefix("reward_embedder", m.Reward.Params())...)
	}
	for i, b := range m.Blocks {
		ps = append(ps, prefix(fmt.Sprintf("blocks.%d", i), nn.BlockParams(m.AdaLN, b, i))...)
	}
	return append(ps, prefix("final_layer", m.Final.Params())...)
}

// SetTrainable freezes (false) or unfreezes every base parameter (LoRA adapters keep
// their gradients). Take Params() again afterwards.
func (m *DiT) SetTrainable(on bool) {
	m.XEmbedder.Proj.SetTrainable(on)
	for _, l := range []*nn.Linear{m.TEmbedder.FC1, m.TEmbedder.FC2, m.PooledTextProj} {
		l.SetTrainable(on)
	}
	m.Text.SetTrainable(on)
	if m.TextProj != nil {
		m.TextProj.SetTrainable(on)
	}
	if m.Reward != nil {
		m.Reward.SetTrainable(on)
	}
	for _, b := range m.Blocks {
		b.SetTrainable(on)
	}
	if m.AdaLN != nil {
		m.AdaLN.SetTrainable(on)
	}
	m.Final.SetTrainable(on)
}

// UnstackAdaLN gives every block its own modulation layer again (nn.AdaLNStack.Unstack),
// for LoRA adapters on adaLN_modulation; the blocks then compute their modulations one by
// one. Take Params() again afterwards.
func (m *DiT) UnstackAdaLN() {
	if m.AdaLN != nil {
		m.AdaLN.Unstack(m.Blocks)
		m.AdaLN = nil
	}
}

// EnableLoRA freezes the whole model and attaches rank-r adapters (A from r, B zero) to
// the attention projections (qkv, proj) of every DiT block, the Flow-DPO target. A fresh
// adapter leaves the model's output unchanged.
func (m *DiT) EnableLoRA(r nn.Rand, rank int, alpha float32) {
	m.SetTrainable(false)
	for _, b := range m.Blocks {
		b.EnableLoRA(r, rank, alpha)
	}
}

// SetLoRAEnabled switches every adapter on or off (off: the frozen base, Flow-DPO's
// reference model).
func (m *DiT) SetLoRAEnabled(on bool) {
	for _, b := range m.Blocks {
		b.SetLoRAEnabled(on)
	}
}

// MergeLoRA folds every adapter into its base weight and removes it.
func (m *DiT) MergeLoRA() {
	for _, b := range m.Blocks {
		b.MergeLoRA()
	}
}

// HasLoRA reports whether any block carries an adapter.
func (m *DiT) HasLoRA() bool {
	for _, b := range m.Blocks {
		if b.Attn.QKV.LoRA != nil || b.Attn.Proj.LoRA != nil {
			return true
		}
	}
	return false
}

// ---- forward and backward ----

// Forward computes v (x_t's shape) for x_t (B, SampleShape...), times t (B) in [0,1]
// (t = 1 is pure noise), token ids (B*MaxTextLen, each caption padded as the tokenizer
// does), caption lengths (B, each in [1, MaxTextLen]) and the reward condition r (B*D,
// NaN = dimension dropped) or nil (all dropped). It panics on shape errors. The result is
// a view of a model-owned buffer, valid until the next Forward.
func (m *DiT) Forward(xt *kernels.Tensor, t []float32, ids []int32, lengths []int, r []float32) *kernels.Tensor {
	return m.forwardIDs("Forward", xt, t, ids, lengths, r, false)
}

// ForwardNoGrad is Forward for a pass no Backward follows (a Flow-DPO reference): the same
// velocity, without keeping what Backward would read (every block runs in the first one's
// buffers, the MLPs keep no pre-activations), so Backward panics until the next Forward.
func (m *DiT) ForwardNoGrad(xt *kernels.Tensor, t []float32, ids []int32, lengths []int, r []float32) *kernels.Tensor {
	return m.forwardIDs("ForwardNoGrad", xt, t, ids, lengths, r, true)
}

// forwardIDs is Forward (forwardOnly false) and ForwardNoGrad (true), named op in errors.
func (m *DiT) forwardIDs(op string, xt *kernels.Tensor, t []float32, ids []int32, lengths []int, r []float32,
	forwardOnly bool) *kernels.Tensor {
	B := m.begin(xt, t, r, len(lengths))
	if L := m.Config.MaxTextLen; len(ids) != B*L {
		panic(fmt.Sprintf("diffusion: DiT.%s: batch %d with %d ids, want %d", op, B, len(ids), B*L))
	}
	m.setForwardOnly(forwardOnly)
	return m.forward(xt, t, m.textPath(ids, lengths), r)
}

// setForwardOnly records whether the pass starting keeps what Backward reads, and sets the
// text encoder's and the blocks' MLPs to keep their pre-activations or not; forward-only,
// every block runs in the first block's buffers (nn.DiTBlock.ShareForwardBuffers).
func (m *DiT) setForwardOnly(on bool) {
	m.forwardOnly = on
	for _, l := range m.Text.Layers {
		l.MLP.ForwardOnly = on
	}
	for k, b := range m.Blocks {
		b.MLP.ForwardOnly = on
		var src *nn.DiTBlock
		if on && k > 0 {
			src = m.Blocks[0]
		}
		b.ShareForwardBuffers(src)
	}
}

// TextCond is captions run through the model's text path once (EncodeText): the text
// tokens (B,L,C), their pooled projection (B,C) and the blocks' key bias (B,L+P) of their
// lengths, for ForwardText. A sampling run evaluates the same captions at every step;
// encoding them once leaves out the text encoder's work and the masks' uploads of every
// step but the first, with the same results. Valid while the model's weights do not change;
// Free returns its device memory.
type TextCond struct {
	B                    int
	txt, pooled, kbJoint *kernels.Tensor
}

// Free returns the encoding's buffers to the device.
func (c *TextCond) Free() {
	for _, t := range []*kernels.Tensor{c.txt, c.pooled, c.kbJoint} {
		if t != nil {
			t.Dev.Free(t)
		}
	}
	*c = TextCond{}
}

// EncodeText runs the text path for ids and lengths (as Forward takes them) into a TextCond
// of its own. It uses the text encoder as a Forward does, so Backward panics until the
// next Forward.
func (m *DiT) EncodeText(ids []int32, lengths []int) *TextCond {
	cfg, dev := &m.Config, m.dev
	B, L, P, C := len(lengths), cfg.MaxTextLen, cfg.NumPatches(), cfg.Width
	if len(ids) != B*L {
		panic(fmt.Sprintf("diffusion: DiT.EncodeText: %d ids for %d captions, want %d", len(ids), B, B*L))
	}
	m.setForwardOnly(true)
	own := m.textPath(ids, lengths)
	c := &TextCond{B: B, txt: dev.New(B, L, C), pooled: dev.New(B, C), kbJoint: dev.New(B, L+P)}
	dev.Copy(c.txt, own.txt)
	dev.Copy(c.pooled, own.pooled)
	dev.Copy(c.kbJoint, own.kbJoint)
	return c
}

// ForwardText is Forward with the captions of c (EncodeText), the same values without the
// text encoder's work. Backward panics after it (the text encoder did not run).
func (m *DiT) ForwardText(xt *kernels.Tensor, t []float32, c *TextCond, r []float32) *kernels.Tensor {
	m.begin(xt, t, r, c.B)
	m.setForwardOnly(true)
	return m.forward(xt, t, *c, r)
}

// begin checks Forward's inputs but the ids (nLengths captions) and records the batch and
// x_t's shape; it returns the batch.
func (m *DiT) begin(xt *kernels.Tensor, t []float32, r []float32, nLengths int) int {
	cfg := &m.Config
	B := xt.Shape[0]
	want := cfg.BatchShape(B)
	if len(xt.Shape) != len(want) || xt.Len() != B*cfg.SampleSize() || !slices.Equal(xt.Shape, want) {
		panic(fmt.Sprintf("diffusion: DiT.Forward: x_t %v, want shape %v", xt, want))
	}
	if len(t) != B || nLengths != B {
		panic(fmt.Sprintf("diffusion: DiT.Forward: batch %d with %d times and %d captions", B, len(t), nLengths))
	}
	if r != nil && m.Reward == nil {
		panic("diffusion: DiT.Forward: a reward condition for a model without reward dimensions")
	}
	m.B = B
	m.xShape = append(m.xShape[:0], xt.Shape...)
	return B
}

// textPath runs the text path for ids and lengths into the model's buffers: the key biases
// and mask of the lengths (uploaded; Backward reads the mask), the text tokens (through
// TextProj where the widths differ) and their masked mean through PooledTextProj. The
// tensors are the model's, valid until the next call.
func (m *DiT) textPath(ids []int32, lengths []int) TextCond {
	cfg, dev := &m.Config, m.dev
	B, L, P, C := len(lengths), cfg.MaxTextLen, cfg.NumPatches(), cfg.Width
	m.hostKB, m.hostKJ, m.hostMask = m.hostKB[:0], m.hostKJ[:0], m.hostMask[:0]
	ninf := float32(math.Inf(-1))
	for b, n := range lengths {
		if n < 1 || n > L {
			panic(fmt.Sprintf("diffusion: DiT.Forward: caption %d has length %d, want 1..%d", b, n, L))
		}
		for j := range L {
			kb, mk := float32(0), float32(1)
			if j >= n {
				kb, mk = ninf, 0
			}
			m.hostKB = append(m.hostKB, kb)
			m.hostKJ = append(m.hostKJ, kb)
			m.hostMask = append(m.hostMask, mk)
		}
		for range P {
			m.hostKJ = append(m.hostKJ, 0)
		}
	}
	kbText := m.kbText.get(dev, B, L)
	dev.CopyFromHost(kbText, m.hostKB)
	kbJoint := m.kbJoint.get(dev, B, L+P)
	dev.CopyFromHost(kbJoint, m.hostKJ)
	mask := m.mask.get(dev, B, L)
	dev.CopyFromHost(mask, m.hostMask)

	txt := m.Text.Forward(ids, kbText)
	if m.TextProj != nil {
		txt = m.TextProj.Forward(txt)
	}
	pooled := m.pooled.get(dev, B, C)
	dev.MeanPoolForward(pooled, txt, mask, B, L, C)
	return TextCond{B: B, txt: txt, pooled: m.PooledTextProj.Forward(pooled), kbJoint: kbJoint}
}

// forward is Forward after the text path: the conditioning vector, then one sequence of
// text and patch tokens through the blocks and the final layer.
func (m *DiT) forward(xt *kernels.Tensor, t []float32, text TextCond, r []float32) *kernels.Tensor {
	cfg, dev := &m.Config, m.dev
	B, L, P, C := m.B, cfg.MaxTextLen, cfg.NumPatches(), cfg.Width
	cond := m.cond.get(dev, B, C)
	dev.Add(cond, text.pooled, m.timeEmbed(t))
	if m.Reward != nil {
		dev.Add(cond, cond, m.Reward.Forward(r, B))
	}

	xp := m.XEmbedder.Forward(xt)
	h := m.seq.get(dev, B, L+P, C)
	dev.Concat(h, text.txt, xp, B, L*C, P*C)
	h = nn.ForwardBlocks(m.AdaLN, m.Blocks, h, cond, text.kbJoint)
	hText, hPatch := m.hText.get(dev, B, L, C), m.hPatch.get(dev, B, P, C)
	dev.Split(hText, hPatch, h, B, L*C, P*C)
	y := m.Final.Forward(hPatch, cond)
	out := m.out.get(dev, xt.Shape...)
	T, H := m.frames(), cfg.ImageSize
	dev.Unpatchify(out, y, B, T, cfg.Channels, H, H, cfg.TubeletFrames, cfg.PatchSize)
	return out
}

// timeEmbed uploads t and runs the timestep embedder.
func (m *DiT) timeEmbed(t []float32) *kernels.Tensor {
	tt := m.tbuf.get(m.dev, len(t))
	m.hostT = append(m.hostT[:0], t...)
	m.dev.CopyFromHost(tt, m.hostT)
	return m.TEmbedder.Forward(tt)
}

func (m *DiT) frames() int {
	if m.Config.Kind == KindVideo {
		return m.Config.Frames
	}
	return 1
}

// Backward takes dv (x_t's shape) for the last Forward, accumulates the parameter
// gradients (+=) and returns dx_t = (dv/dx_t)^T dv with x_t's shape (a model-owned buffer,
// valid until the next Backward). Times, ids and reward values get no gradient.
func (m *DiT) Backward(dv *kernels.Tensor) *kernels.Tensor { return m.backward(dv, true) }

// BackwardParams is Backward for a caller that needs the parameters' gradients alone: it
// leaves out dx_t and the patch embedding's pass where that is frozen. Both leave out every
// pass whose gradient reaches no trainable parameter: the conditioning's (the timestep,
// caption and reward embedders, the text encoder, through the adaLN stack) where they are
// frozen, as a LoRA adapter on the blocks leaves them (Flow-DPO's default).
func (m *DiT) BackwardParams(dv *kernels.Tensor) { m.backward(dv, false) }

// backward is Backward, with dx_t only where wantDx (else nil).
func (m *DiT) backward(dv *kernels.Tensor, wantDx bool) *kernels.Tensor {
	cfg := &m.Config
	dev := m.dev
	B := m.B
	if !slices.Equal(dv.Shape, m.xShape) {
		panic(fmt.Sprintf("diffusion: DiT.Backward: dv %v, want shape %v", dv, m.xShape))
	}
	if m.forwardOnly {
		panic("diffusion: DiT.Backward after ForwardText, ForwardNoGrad or EncodeText: that pass kept no activations for it")
	}
	L, P, C := cfg.MaxTextLen, cfg.NumPatches(), cfg.Width
	F := m.Final.Out
	T, H := m.frames(), cfg.ImageSize
	// Which passes feed a trainable parameter: the text encoder's (and its projection's)
	// gradient comes from the text tokens and, through the pooled caption, from the
	// conditioning, whose gradient also reaches the timestep and reward embedders.
	text := learns(m.Text.Params()) || m.TextProj != nil && learns(m.TextProj.Params())
	pooled := text || learns(m.PooledTextProj.Params())
	temb := learns(m.TEmbedder.Params())
	remb := m.Reward != nil && learns(m.Reward.Params())
	cond := pooled || temb || remb
	patch := wantDx || learns(m.XEmbedder.Params())

	dy := m.dy.get(dev, B, P, F)
	dev.Patchify(dy, dv, B, T, cfg.Channels, H, H, cfg.TubeletFrames, cfg.PatchSize)
	dhPatch, dc := m.Final.Backward(dy)
	var dcond *kernels.Tensor // nil: BackwardBlocks leaves the conditioning's gradient out
	if cond {
		dcond = m.dcond.get(dev, B, C)
		dev.Copy(dcond, dc)
	}
	dText := m.dText.get(dev, B, L, C)
	dev.Fill(dText, 0) // the final layer reads only the patch tokens
	dh := m.dseq.get(dev, B, L+P, C)
	dev.Concat(dh, dText, dhPatch, B, L*C, P*C)
	dh = nn.BackwardBlocks(m.AdaLN, m.Blocks, dh, dcond)
	var dx *kernels.Tensor
	if text || patch {
		dPatch := m.dPatch.get(dev, B, P, C)
		dev.Split(dText, dPatch, dh, B, L*C, P*C)
		if patch {
			dx = m.XEmbedder.Backward(dPatch)
		}
	}
	if temb {
		m.TEmbedder.Backward(dcond)
	}
	if remb {
		m.Reward.Backward(dcond)
	}
	if pooled {
		dPool := m.dPool.get(dev, B, L, C)
		dev.MeanPoolBackward(dPool, m.PooledTextProj.Backward(dcond), m.mask.get(dev, B, L), B, L, C)
		if text {
			dev.Add(dText, dText, dPool)
			if m.TextProj != nil {
				m.Text.Backward(m.TextProj.Backward(dText))
			} else {
				m.Text.Backward(dText)
			}
		}
	}
	return dx
}

// learns reports whether any of ps has a gradient (is trainable).
func learns(ps []nn.Param) bool {
	return slices.ContainsFunc(ps, func(p nn.Param) bool { return p.G != nil })
}

// ---- prompts ----

// Prompts are captions encoded for the model: ids (B*MaxTextLen) and lengths (B).
type Prompts struct {
	IDs     []int32
	Lengths []int
	Unknown []string // words of the captions that are not in the vocabulary (deduplicated)
}

// EncodePrompts tokenizes captions with tok; the empty caption becomes [NullID].
func EncodePrompts(tok *Tokenizer, captions []string) Prompts {
	var p Prompts
	seen := map[string]bool{}
	for _, c := range captions {
		ids, n, unk, _ := tok.Encode(c)
		p.IDs = append(p.IDs, ids...)
		p.Lengths = append(p.Lengths, n)
		for _, w := range unk {
			if !seen[w] {
				seen[w] = true
				p.Unknown = append(p.Unknown, w)
			}
		}
	}
	return p
}

// NullPrompts is B copies of the empty prompt [NullID] padded to maxLen, the
// unconditional branch of classifier-free guidance.
func NullPrompts(B, maxLen int) Prompts {
	p := Prompts{IDs: make([]int32, B*maxLen), Lengths: make([]int, B)}
	for b := range B {
		p.IDs[b*maxLen] = NullID
		p.Lengths[b] = 1
	}
	return p
}

// ---- save and load ----

// Metadata keys of a model file besides the checkpoint's own "align" entry.
const (
	metaTokenizer = "tokenizer"
	metaModelType = "model_type"
	modelTypeDiT  = "align.dit"
)

// Checkpoint returns the model's weights (F32), config, tokenizer and reward-condition
// maxima as a checkpoint.
func (m *DiT) Checkpoint() (*nn.Checkpoint, error) {
	if m.Tokenizer == nil {
		return nil, errors.New("model has no tokenizer to save with it")
	}
	if m.Tokenizer.VocabSize() != m.Config.VocabSize || m.Tokenizer.MaxLen != m.Config.MaxTextLen {
		return nil, fmt.Errorf("tokenizer (%d words, max length %d) does not match the model (vocab_size %d, max_text_len %d)",
			m.Tokenizer.VocabSize(), m.Tokenizer.MaxLen, m.Config.VocabSize, m.Config.MaxTextLen)
	}
	if m.HasLoRA() {
		return nil, errors.New("model carries LoRA adapters; merge them (MergeLoRA) or save the adapters separately")
	}
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, err
	}
	tok, err := json.Marshal(m.Tokenizer)
	if err != nil {
		return nil, err
	}
	c := &nn.Checkpoint{Tensors: nn.HostParams(m.Params(), nn.F32), Config: cfg,
		Extra: map[string]string{metaTokenizer: string(tok), metaModelType: modelTypeDiT}}
	if err := SetRewardConditionMax(c, m.Config.RewardDims, m.RewardConditionMax); err != nil {
		return nil, err
	}
	return c, nil
}

// Save writes the model to path (safetensors, atomically) with its config and tokenizer.
func (m *DiT) Save(path string) error {
	c, err := m.Checkpoint()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return c.Save(path)
}

// LoadDiT reads a model file written by Save and builds the model on dev.
func LoadDiT(dev kernels.Device, path string) (*DiT, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	return DiTFromCheckpoint(dev, c)
}

// LoadDiTFromBytes is LoadDiT for the bytes of a whole file (e.g. embedded with go:embed);
// name labels it in errors.
func LoadDiTFromBytes(dev kernels.Device, name string, buf []byte) (*DiT, error) {
	c, err := nn.ReadCheckpoint(name, buf)
	if err != nil {
		return nil, err
	}
	return DiTFromCheckpoint(dev, c)
}

// modelMax reads the reward-condition maxima of a model checkpoint of config cfg.
func modelMax(c *nn.Checkpoint, cfg *ModelConfig) ([]float64, error) {
	maxes, err := RewardConditionMaxFromMeta(c.Extra, cfg.RewardDims)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	return maxes, nil
}

// ModelMeta reads the config and tokenizer of a model checkpoint; errors name c.Path.
func ModelMeta(c *nn.Checkpoint) (ModelConfig, *Tokenizer, error) {
	src := c.Source()
	if len(c.Config) == 0 {
		return ModelConfig{}, nil, fmt.Errorf("%s: no model config in the metadata; not an align DiT model file", src)
	}
	if t := c.Extra[metaModelType]; t != "" && t != modelTypeDiT {
		return ModelConfig{}, nil, fmt.Errorf("%s: holds a %q, not a DiT model (%q)", src, t, modelTypeDiT)
	}
	cfg, err := ParseModelConfig(c.Config)
	if err != nil {
		return ModelConfig{}, nil, fmt.Errorf("%s: %w", src, err)
	}
	js, ok := c.Extra[metaTokenizer]
	if !ok {
		return ModelConfig{}, nil, fmt.Errorf("%s: no tokenizer in the metadata", src)
	}
	tok := &Tokenizer{}
	if err := json.Unmarshal([]byte(js), tok); err != nil {
		return ModelConfig{}, nil, fmt.Errorf("%s: %w", src, err)
	}
	if tok.VocabSize() != cfg.VocabSize || tok.MaxLen != cfg.MaxTextLen {
		return ModelConfig{}, nil, fmt.Errorf("%s: tokenizer (%d words, max length %d) does not match the config (vocab_size %d, max_text_len %d)",
			src, tok.VocabSize(), tok.MaxLen, cfg.VocabSize, cfg.MaxTextLen)
	}
	return cfg, tok, nil
}

// DiTFromCheckpoint builds the model described by a checkpoint's metadata and copies its
// weights in.
func DiTFromCheckpoint(dev kernels.Device, c *nn.Checkpoint) (*DiT, error) {
	cfg, tok, err := ModelMeta(c)
	if err != nil {
		return nil, err
	}
	m, err := NewDiT(dev, nil, cfg)
	if err != nil {
		return nil, err
	}
	m.Tokenizer = tok
	if m.RewardConditionMax, err = modelMax(c, &cfg); err != nil {
		return nil, err
	}
	if err := c.CopyToParams(m.Params()); err != nil {
		return nil, fmt.Errorf("weights do not match the config in the metadata: %w", err)
	}
	return m, nil
}

// LoadWeights copies the weights of a model checkpoint into m, whose config must equal
// the checkpoint's; the tokenizer and the reward-condition maxima are taken over too.
func (m *DiT) LoadWeights(c *nn.Checkpoint) error {
	cfg, tok, err := ModelMeta(c)
	if err != nil {
		return err
	}
	if !m.Config.Equal(&cfg) {
		return fmt.Errorf("%s: model config differs from this model's (%s)", c.Path, m.Config.Diff(&cfg))
	}
	maxes, err := modelMax(c, &cfg)
	if err != nil {
		return err
	}
	if err := c.CopyToParams(m.Params()); err != nil {
		return err
	}
	m.Tokenizer, m.RewardConditionMax = tok, maxes
	return nil
}

// CopyWeightsFrom copies every parameter value of src (same config) into m.
func (m *DiT) CopyWeightsFrom(src *DiT) {
	dst, s := m.Params(), src.Params()
	if len(dst) != len(s) {
		panic("diffusion: CopyWeightsFrom between different architectures")
	}
	for i := range dst {
		if dst[i].Name != s[i].Name || !slices.Equal(dst[i].W.Shape, s[i].W.Shape) {
			panic(fmt.Sprintf("diffusion: CopyWeightsFrom: %s %v vs %s %v", dst[i].Name, dst[i].W.Shape, s[i].Name, s[i].W.Shape))
		}
		m.dev.Copy(dst[i].W, s[i].W)
	}
}
