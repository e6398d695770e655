// Native reward model: a small vision-language transformer over image patches (or video
// tubelets) and caption tokens with one learned query token and one linear head per reward
// dimension; forward, backward (to the input pixels, for guidance), and safetensors save/load
// with the config, tokenizer and calibration in the metadata.
//
// Test: go test ./rewards -run Native
package rewards

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Model kinds of NativeConfig.
const (
	KindImage = "image"
	KindVideo = "video"
)

// NativeConfig sizes a native reward model. JSON names follow the generator's
// diffusion.ModelConfig where the meaning is the same.
type NativeConfig struct {
	Kind          string `json:"kind"`           // "image" or "video"
	ImageSize     int    `json:"sample_size"`    // H = W, e.g. 32
	Channels      int    `json:"in_channels"`    // 3 (RGB)
	Frames        int    `json:"num_frames"`     // T: 1 for images, e.g. 8 for clips
	PatchSize     int    `json:"patch_size"`     // p, e.g. 4
	TubeletFrames int    `json:"tubelet_frames"` // pt: 1 for images, e.g. 2 for clips

	Width        int     `json:"hidden_size"`         // C, e.g. 128
	VisionLayers int     `json:"vision_layers"`       // blocks that do not see the caption, e.g. 2
	JointLayers  int     `json:"joint_layers"`        // blocks over image and caption, e.g. 2
	Heads        int     `json:"num_attention_heads"` // NH, e.g. 4
	MLPRatio     float64 `json:"mlp_ratio"`           // e.g. 4

	MaxTextLen int `json:"max_text_len"` // L, the tokenizer's MaxLen, e.g. 16
	VocabSize  int `json:"vocab_size"`   // the tokenizer's vocabulary, special tokens included

	// Dims names the reward dimensions in output order, e.g. ["vq","ta"] or ["vq","ta","mq"].
	Dims []string `json:"dims"`

	// SampleFPS is the rate the training clips' frames were taken at, frames per second (an
	// imported dataset's --fps; 0: not known, or spread over each clip). Motion is judged at
	// a speed: clips scored at another rate show it other motion (align score warns).
	SampleFPS float64 `json:"sample_fps,omitempty"`
}

// DefaultNativeImageConfig is the default image reward model: 32x32 RGB, 4x4 patches (64
// tokens), width 128, 2 vision + 2 joint blocks, dimensions vq and ta. The vocabulary size
// is set from the tokenizer.
func DefaultNativeImageConfig() NativeConfig {
	return NativeConfig{Kind: KindImage, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 128, VisionLayers: 2, JointLayers: 2, Heads: 4, MLPRatio: 4,
		MaxTextLen: 16, VocabSize: 3, Dims: []string{DimVQ, DimTA}}
}

// DefaultNativeVideoConfig is the default clip reward model: 8 frames of 32x32 RGB in 2x4x4
// tubelets (256 tokens), dimensions vq, ta and mq.
func DefaultNativeVideoConfig() NativeConfig {
	c := DefaultNativeImageConfig()
	c.Kind, c.Frames, c.TubeletFrames = KindVideo, 8, 2
	c.Dims = []string{DimVQ, DimTA, DimMQ}
	return c
}

// PromptFree reports whether dimension name is read before the caption joins the sequence
// (visual and motion quality), so that its score cannot depend on the prompt.
func PromptFree(name string) bool { return name == DimVQ || name == DimMQ }

// Validate checks the config and returns every problem found, joined.
func (c *NativeConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Kind {
	case KindImage:
		if c.Frames != 1 || c.TubeletFrames != 1 || c.SampleFPS != 0 {
			bad("an image model has num_frames 1, tubelet_frames 1 and no sample_fps, got %d, %d and %v", c.Frames, c.TubeletFrames, c.SampleFPS)
		}
	case KindVideo:
		if c.Frames < 1 || c.TubeletFrames < 1 || c.Frames%c.TubeletFrames != 0 {
			bad("num_frames %d must be a positive multiple of tubelet_frames %d", c.Frames, c.TubeletFrames)
		}
		if !(c.SampleFPS >= 0 && c.SampleFPS <= 1e4) {
			bad("sample_fps must be in [0, 10000], got %v", c.SampleFPS)
		}
	default:
		bad("kind is %q, want %q or %q", c.Kind, KindImage, KindVideo)
	}
	if c.Channels != 3 {
		bad("in_channels must be 3 (RGB), got %d", c.Channels)
	}
	if c.PatchSize < 1 || c.ImageSize < 1 || c.ImageSize%c.PatchSize != 0 {
		bad("sample_size %d must be a positive multiple of patch_size %d", c.ImageSize, c.PatchSize)
	}
	if c.Width < 4 || c.Width%4 != 0 {
		bad("hidden_size must be a positive multiple of 4 (position tables), got %d", c.Width)
	}
	if c.Heads < 1 || c.Width%c.Heads != 0 {
		bad("num_attention_heads %d must divide hidden_size %d", c.Heads, c.Width)
	}
	if !(c.MLPRatio > 0) || math.IsInf(c.MLPRatio, 0) || int(c.MLPRatio*float64(c.Width)) < 1 {
		bad("mlp_ratio must be a positive number, got %v", c.MLPRatio)
	}
	if c.MaxTextLen < 1 {
		bad("max_text_len must be >= 1, got %d", c.MaxTextLen)
	}
	if c.VocabSize < 3 {
		bad("vocab_size must be >= 3 (the special tokens), got %d", c.VocabSize)
	}
	if len(c.Dims) == 0 {
		bad("no reward dimensions")
	}
	free, joint := 0, 0
	seen := map[string]bool{}
	for _, d := range c.Dims {
		if d == "" || seen[d] {
			bad("reward dimension %q is empty or repeated", d)
		}
		seen[d] = true
		if d == DimMQ && c.Kind != KindVideo {
			bad("dimension mq needs a video model")
		}
		if PromptFree(d) {
			free++
		} else {
			joint++
		}
	}
	if c.VisionLayers < 0 || c.JointLayers < 0 {
		bad("vision_layers and joint_layers must be >= 0, got %d and %d", c.VisionLayers, c.JointLayers)
	}
	if free > 0 && c.VisionLayers < 1 {
		bad("prompt-free dimensions need vision_layers >= 1")
	}
	if joint > 0 && c.JointLayers < 1 {
		bad("text-dependent dimensions need joint_layers >= 1")
	}
	if joint == 0 && c.JointLayers > 0 {
		bad("joint_layers %d without a text-dependent dimension would never be trained", c.JointLayers)
	}
	if len(errs) > 0 {
		return fmt.Errorf("reward model config: %w", errors.Join(errs...))
	}
	return nil
}

// NumPatches is P, the patch (tubelet) tokens per sample.
func (c *NativeConfig) NumPatches() int {
	g := c.ImageSize / c.PatchSize
	return (c.Frames / c.TubeletFrames) * g * g
}

// SeqLen is S = D + L + P: the reward query tokens, the caption and the patches.
func (c *NativeConfig) SeqLen() int { return len(c.Dims) + c.MaxTextLen + c.NumPatches() }

// SampleShape is (3,H,W) for images and (T,3,H,W) for clips.
func (c *NativeConfig) SampleShape() []int {
	if c.Kind == KindVideo {
		return []int{c.Frames, c.Channels, c.ImageSize, c.ImageSize}
	}
	return []int{c.Channels, c.ImageSize, c.ImageSize}
}

// Native is the native multi-dimensional reward model. Per sample, with D dimensions,
// caption tokens L and patch tokens P (S = D + L + P):
//
//	h0 = [q_1..q_D | E[ids] + pos1D | PatchEmbed(x) (with pos3D)]    (S, C)
//	h1 = VisionBlocks(h0, text keys masked)      caption invisible: VQ, MQ are prompt-free
//	h2 = JointBlocks(h1, padding keys masked)    image and caption attend to each other
//	r_d = w_d · LN_v(h1[d]) + b_d    for prompt-free d (vq, mq)
//	r_d = w_d · LN_f(h2[d]) + b_d    for the other dimensions (ta)
//
// q_d are learned query tokens, one per dimension; blocks are plain pre-LN transformer
// blocks (nn.TransformerBlock) with a key padding bias.
//
// Why per-dimension query tokens rather than mean pooling with per-dimension MLPs:
// VideoReward (VideoAlign, arXiv 2501.13918, §3.2 and Table 6) reads each dimension at its
// own special token and finds separate tokens slightly better than a shared one; a query
// token lets each dimension attend to the evidence it needs (local blur for vq, the object
// for ta, frame-to-frame change for mq) instead of one average. VideoReward places the VQ and
// MQ tokens before the prompt in a causal model so that they never see it; a bidirectional
// model gets the same property from the two stages: during the vision stage every caption
// key is masked, so h1 (and with it vq, mq) does not depend on the prompt at all, and their
// guidance gradient is the same for every prompt.
type Native struct {
	Config    NativeConfig
	Tokenizer *diffusion.Tokenizer
	Calib     *Calibration // nil until calibrated

	Patch         *nn.PatchEmbed         // "patch_embed"
	Text          *nn.TokenEmbedding     // "token_embedding"
	Queries       *kernels.Tensor        // (D, C) "reward_tokens"
	DQueries      *kernels.Tensor        // (D, C); nil when frozen
	Vision        []*nn.TransformerBlock // "vision_blocks.N"
	Joint         []*nn.TransformerBlock // "joint_blocks.N"
	VisionNorm    *nn.LayerNorm          // "vision_norm"
	FinalNorm     *nn.LayerNorm          // "final_norm"
	Heads         []*nn.Linear           // C -> 1 per dimension, "heads.<dim>"
	promptFree    []bool                 // (D)
	anyFree, any2 bool                   // some dimension reads h1 / h2

	dev     kernels.Device
	textPos *kernels.Tensor // (L*C) fixed
	B       int             // batch of the last Forward
	xShape  []int

	hostKB1, hostKB2 []float32
	kb1, kb2         devBuf // (B,S)
	txt, q, rest, h0 devBuf
	rt1, rt2         devBuf // (B,D,C) query rows of h1, h2
	q1, q2           devBuf // (D,B,C) normalised query rows, dimension-major
	dq1, dq2         devBuf // (D,B,C)
	dn, drest, dh    devBuf
	dadd, dtxt, dxp  devBuf
	drt, zeroRest    devBuf
	dr               devBuf // (B,1)
	hostOut          []float32
}

// NewNative builds a model with weights drawn from r (nil: zeros) for the tokenizer tok,
// whose size must match cfg (VocabSize and MaxTextLen are taken from tok when cfg has 0).
func NewNative(dev kernels.Device, r nn.Rand, cfg NativeConfig, tok *diffusion.Tokenizer) (*Native, error) {
	if tok == nil {
		return nil, errors.New("reward model: no tokenizer")
	}
	if cfg.VocabSize == 0 {
		cfg.VocabSize = tok.VocabSize()
	}
	if cfg.MaxTextLen == 0 {
		cfg.MaxTextLen = tok.MaxLen
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if tok.VocabSize() != cfg.VocabSize || tok.MaxLen != cfg.MaxTextLen {
		return nil, fmt.Errorf("reward model: tokenizer (%d words, max length %d) does not match the config (vocab_size %d, max_text_len %d)",
			tok.VocabSize(), tok.MaxLen, cfg.VocabSize, cfg.MaxTextLen)
	}
	cfg.Dims = slices.Clone(cfg.Dims)
	C, D, L := cfg.Width, len(cfg.Dims), cfg.MaxTextLen
	m := &Native{Config: cfg, Tokenizer: tok, dev: dev,
		Patch:      nn.NewPatchEmbed(dev, r, cfg.Channels, C, cfg.TubeletFrames, cfg.PatchSize),
		Text:       nn.NewTokenEmbedding(dev, r, cfg.VocabSize, C),
		Queries:    dev.New(D, C),
		VisionNorm: nn.NewLayerNorm(dev, C, 1e-5, true),
		FinalNorm:  nn.NewLayerNorm(dev, C, 1e-5, true)}
	if r != nil {
		// Word vectors start at the scale of the fixed sin-cos position code (entries in
		// [-1, 1]) rather than GPT-2's 0.02: at 0.02 the words are drowned by their positions
		// and text alignment does not train in thousands of steps (measured: batch accuracy
		// 0.52 after 900 steps at 0.02, 0.66 after 300 at 1).
		initStd(r, m.Text.Weight, textEmbedStd)
		initStd(r, m.Queries, nn.DefaultEmbeddingStd)
	}
	bc := nn.TransformerBlockConfig{C: C, NH: cfg.Heads, MLPRatio: cfg.MLPRatio}
	for range cfg.VisionLayers {
		m.Vision = append(m.Vision, nn.NewTransformerBlock(dev, r, bc))
	}
	for range cfg.JointLayers {
		m.Joint = append(m.Joint, nn.NewTransformerBlock(dev, r, bc))
	}
	for _, d := range cfg.Dims {
		h := nn.NewLinear(dev, nil, C, 1, true)
		h.InitNormal(r, nn.DefaultEmbeddingStd)
		m.Heads = append(m.Heads, h)
		free := PromptFree(d)
		m.promptFree = append(m.promptFree, free)
		m.anyFree = m.anyFree || free
		m.any2 = m.any2 || !free
	}
	pos := make([]float64, L)
	for i := range pos {
		pos[i] = float64(i)
	}
	m.textPos = dev.FromHost(nn.PosEmbed1D(C, pos), L*C)
	m.SetTrainable(true)
	return m, nil
}

// Dims returns the dimension names in score order.
func (m *Native) Dims() []string { return slices.Clone(m.Config.Dims) }

// Calibration returns the stored calibration, or the identity (z = r) when there is none.
func (m *Native) Calibration() *Calibration {
	if m.Calib == nil {
		return IdentityCalibration(m.Config.Dims)
	}
	return m.Calib
}

// Params lists every parameter with its file name.
func (m *Native) Params() []nn.Param {
	ps := pref("patch_embed", m.Patch.Params())
	ps = append(ps, nn.Param{Name: "token_embedding.weight", W: m.Text.Weight, G: m.Text.DWeight})
	ps = append(ps, nn.Param{Name: "reward_tokens", W: m.Queries, G: m.DQueries})
	for i, b := range m.Vision {
		ps = append(ps, pref(fmt.Sprintf("vision_blocks.%d", i), b.Params())...)
	}
	for i, b := range m.Joint {
		ps = append(ps, pref(fmt.Sprintf("joint_blocks.%d", i), b.Params())...)
	}
	ps = append(ps, pref("vision_norm", m.VisionNorm.Params())...)
	ps = append(ps, pref("final_norm", m.FinalNorm.Params())...)
	for d, h := range m.Heads {
		ps = append(ps, pref("heads."+m.Config.Dims[d], h.Params())...)
	}
	return ps
}

// SetTrainable gives every parameter a zeroed gradient (true) or freezes them all (false:
// scoring and guidance then skip the parameter gradients).
func (m *Native) SetTrainable(on bool) {
	m.Patch.Proj.SetTrainable(on)
	m.Text.SetTrainable(on)
	switch {
	case !on:
		m.DQueries = nil
	case m.DQueries == nil:
		m.DQueries = m.dev.New(m.Queries.Shape...)
	}
	for _, b := range append(slices.Clone(m.Vision), m.Joint...) {
		b.SetTrainable(on)
	}
	m.VisionNorm.SetTrainable(on)
	m.FinalNorm.SetTrainable(on)
	for _, h := range m.Heads {
		h.SetTrainable(on)
	}
}

// Encode tokenizes prompts into ids (B*L) and lengths (B).
func (m *Native) Encode(prompts []string) (ids []int32, lengths []int) {
	for _, p := range prompts {
		id, n, _, _ := m.Tokenizer.Encode(p)
		ids = append(ids, id...)
		lengths = append(lengths, n)
	}
	return ids, lengths
}

// Forward scores pixels (B, SampleShape...) in [-1, 1] with prompts (B) and returns the raw
// scores (B, D). It caches what Backward needs; it panics on shape errors.
func (m *Native) Forward(pixels *kernels.Tensor, prompts []string) [][]float32 {
	cfg := &m.Config
	B := pixels.Shape[0]
	if want := append([]int{B}, cfg.SampleShape()...); !slices.Equal(pixels.Shape, want) {
		panic(fmt.Sprintf("rewards: Native.Forward: pixels %v, want shape %v", pixels, want))
	}
	if len(prompts) != B {
		panic(fmt.Sprintf("rewards: Native.Forward: %d samples, %d prompts", B, len(prompts)))
	}
	dev := m.dev
	C, D, L, P := cfg.Width, len(cfg.Dims), cfg.MaxTextLen, cfg.NumPatches()
	S := D + L + P
	m.B = B
	m.xShape = slices.Clone(pixels.Shape)
	ids, lengths := m.Encode(prompts)

	// Key biases: vision stage masks every caption key, the joint stage only the padding.
	ninf := float32(math.Inf(-1))
	m.hostKB1, m.hostKB2 = m.hostKB1[:0], m.hostKB2[:0]
	for b := range B {
		for range D {
			m.hostKB1, m.hostKB2 = append(m.hostKB1, 0), append(m.hostKB2, 0)
		}
		for j := range L {
			k2 := float32(0)
			if j >= lengths[b] {
				k2 = ninf
			}
			m.hostKB1, m.hostKB2 = append(m.hostKB1, ninf), append(m.hostKB2, k2)
		}
		for range P {
			m.hostKB1, m.hostKB2 = append(m.hostKB1, 0), append(m.hostKB2, 0)
		}
	}
	kb1, kb2 := m.kb1.get(dev, B, S), m.kb2.get(dev, B, S)
	dev.CopyFromHost(kb1, m.hostKB1)
	dev.CopyFromHost(kb2, m.hostKB2)

	// The sequence [queries | caption | patches].
	xp := m.Patch.Forward(pixels) // (B,P,C)
	emb := m.Text.Forward(ids)    // (B*L,C)
	txt := m.txt.get(dev, B, L, C)
	dev.AddBias(txt, emb, m.textPos, B, L*C)
	q := m.q.get(dev, B, D*C)
	dev.Fill(q, 0)
	dev.AddBias(q, q, m.Queries, B, D*C)
	rest := m.rest.get(dev, B, (L+P)*C)
	dev.Concat(rest, txt, xp, B, L*C, P*C)
	h := m.h0.get(dev, B, S, C)
	dev.Concat(h, q, rest, B, D*C, (L+P)*C)

	for _, blk := range m.Vision {
		h = blk.Forward(h, kb1)
	}
	var q1, q2 *kernels.Tensor
	if m.anyFree {
		q1 = m.readout(h, m.VisionNorm, &m.rt1, &m.q1)
	}
	for _, blk := range m.Joint {
		h = blk.Forward(h, kb2)
	}
	if m.any2 {
		q2 = m.readout(h, m.FinalNorm, &m.rt2, &m.q2)
	}

	out := make([][]float32, B)
	flat := make([]float32, B*D)
	for b := range out {
		out[b] = flat[b*D : (b+1)*D : (b+1)*D]
	}
	m.hostOut = slices.Grow(m.hostOut[:0], B)[:B]
	for d, head := range m.Heads {
		src := q2
		if m.promptFree[d] {
			src = q1
		}
		y := head.Forward(src.Row(d)) // (B,1)
		dev.CopyToHost(m.hostOut, y)
		for b := range B {
			out[b][d] = m.hostOut[b]
		}
	}
	return out
}

// readout normalises the D query rows of h (B,S,C) and returns them dimension-major (D,B,C).
func (m *Native) readout(h *kernels.Tensor, norm *nn.LayerNorm, rt, qd *devBuf) *kernels.Tensor {
	dev := m.dev
	B, C, D := m.B, m.Config.Width, len(m.Config.Dims)
	S := h.Shape[1]
	r := rt.get(dev, B, D, C)
	rest := m.drest.get(dev, B, (S-D)*C) // scratch; overwritten by Backward later
	dev.Split(r, rest, h, B, D*C, (S-D)*C)
	n := norm.Forward(r) // (B,D,C)
	out := qd.get(dev, D, B, C)
	dev.Permute(out, n, []int{B, D, C}, []int{1, 0, 2})
	return out
}

// Backward takes dscores (B, D), the gradient of a loss with respect to the last Forward's
// scores, accumulates the parameter gradients (when trainable) and returns the gradient
// with respect to the pixels (their shape; a model-owned buffer valid until the next
// Backward).
func (m *Native) Backward(dscores [][]float32) *kernels.Tensor {
	cfg := &m.Config
	dev := m.dev
	B, C, D, L, P := m.B, cfg.Width, len(cfg.Dims), cfg.MaxTextLen, cfg.NumPatches()
	S := D + L + P
	if len(dscores) != B {
		panic(fmt.Sprintf("rewards: Native.Backward: %d score gradients for a batch of %d", len(dscores), B))
	}
	var dq1, dq2 *kernels.Tensor
	if m.anyFree {
		dq1 = m.dq1.get(dev, D, B, C)
		dev.Fill(dq1, 0)
	}
	if m.any2 {
		dq2 = m.dq2.get(dev, D, B, C)
		dev.Fill(dq2, 0)
	}
	col := slices.Grow(m.hostOut[:0], B)[:B]
	for d, head := range m.Heads {
		for b := range B {
			if len(dscores[b]) != D {
				panic(fmt.Sprintf("rewards: Native.Backward: row %d has %d values, want %d", b, len(dscores[b]), D))
			}
			col[b] = dscores[b][d]
		}
		dr := m.dr.get(dev, B, 1)
		dev.CopyFromHost(dr, col)
		dx := head.Backward(dr) // (B,C)
		dst := dq2
		if m.promptFree[d] {
			dst = dq1
		}
		dev.Copy(dst.Row(d), dx)
	}

	zero := m.zeroRest.get(dev, B, (L+P)*C)
	dev.Fill(zero, 0)
	dh := m.dh.get(dev, B, S, C)
	if m.any2 {
		dev.Concat(dh, m.unread(dq2, m.FinalNorm), zero, B, D*C, (L+P)*C)
	} else {
		dev.Fill(dh, 0)
	}
	for i := len(m.Joint) - 1; i >= 0; i-- {
		dh = m.Joint[i].Backward(dh)
	}
	if m.anyFree {
		add := m.dadd.get(dev, B, S, C)
		dev.Concat(add, m.unread(dq1, m.VisionNorm), zero, B, D*C, (L+P)*C)
		dev.Add(add, add, dh)
		dh = add
	}
	for i := len(m.Vision) - 1; i >= 0; i-- {
		dh = m.Vision[i].Backward(dh)
	}

	drt := m.drt.get(dev, B, D*C)
	drest := m.drest.get(dev, B, (L+P)*C)
	dev.Split(drt, drest, dh, B, D*C, (L+P)*C)
	if m.DQueries != nil {
		dev.BiasBackward(m.DQueries, drt, B, D*C)
	}
	dtxt, dxp := m.dtxt.get(dev, B, L*C), m.dxp.get(dev, B, P, C)
	dev.Split(dtxt, dxp, drest, B, L*C, P*C)
	m.Text.Backward(dtxt)
	return m.Patch.Backward(dxp)
}

// unread is the backward of readout: dq (D,B,C) to the query rows' gradient (B,D*C).
func (m *Native) unread(dq *kernels.Tensor, norm *nn.LayerNorm) *kernels.Tensor {
	B, C, D := m.B, m.Config.Width, len(m.Config.Dims)
	dn := m.dn.get(m.dev, B, D, C)
	m.dev.Permute(dn, dq, []int{D, B, C}, []int{1, 0, 2})
	return norm.Backward(dn)
}

// Score implements Model.
func (m *Native) Score(b Batch) ([][]float32, error) {
	if err := m.checkBatch(b); err != nil {
		return nil, err
	}
	return m.Forward(b.Pixels, b.Prompts), nil
}

// ScoreAndGrad implements Differentiable: the scores and d/dPixels sum_b sum_d w_d r_bd.
// Trainable parameters accumulate their gradients too; freeze the model (SetTrainable(false),
// as LoadNative does) when only the pixel gradient is wanted.
func (m *Native) ScoreAndGrad(b Batch, weights []float64) ([][]float32, *kernels.Tensor, error) {
	if err := m.checkBatch(b); err != nil {
		return nil, nil, err
	}
	D := len(m.Config.Dims)
	if len(weights) != D {
		return nil, nil, fmt.Errorf("reward model: %d weights for %d dimensions (%v)", len(weights), D, m.Config.Dims)
	}
	scores := m.Forward(b.Pixels, b.Prompts)
	ds := zeros(len(scores), D)
	for i := range ds {
		for d := range D {
			ds[i][d] = float32(weights[d])
		}
	}
	return scores, m.Backward(ds), nil
}

func (m *Native) checkBatch(b Batch) error {
	if err := b.Check(); err != nil {
		return err
	}
	want := append([]int{b.Len()}, m.Config.SampleShape()...)
	if !slices.Equal(b.Pixels.Shape, want) {
		return fmt.Errorf("reward model (%s): pixels %v, want %v", m.Config.Kind, b.Pixels.Shape, want)
	}
	if b.Pixels.Dev != m.dev {
		return fmt.Errorf("reward model on %s: pixels on %s", m.dev.Name(), b.Pixels.Dev.Name())
	}
	return nil
}

// ---- save and load ----

// Metadata keys of a reward model file besides the checkpoint's own "align" entry.
const (
	metaTokenizer   = "tokenizer"
	metaModelType   = "model_type"
	metaCalibration = "calibration"
	// ModelTypeNative is the model_type of a native reward model file.
	ModelTypeNative = "align.reward.native"
)

// Checkpoint returns the model's weights (F32), config, tokenizer and calibration.
func (m *Native) Checkpoint() (*nn.Checkpoint, error) {
	return modelCheckpoint(m.Config, m.Tokenizer, m.Calib, ModelTypeNative, m.Params())
}

// Save writes the model to path (safetensors, atomically).
func (m *Native) Save(path string) error {
	c, err := m.Checkpoint()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return c.Save(path)
}

// LoadNative reads a model file (or a training checkpoint) and builds the model on dev,
// frozen for scoring.
func LoadNative(dev kernels.Device, path string) (*Native, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	m, err := NativeFromCheckpoint(dev, c)
	if err != nil {
		return nil, err
	}
	m.SetTrainable(false)
	return m, nil
}

// NativeFromCheckpoint builds the model a checkpoint describes and copies its weights in
// (trainable).
func NativeFromCheckpoint(dev kernels.Device, c *nn.Checkpoint) (*Native, error) {
	src := c.Source()
	if t := c.Extra[metaModelType]; t != ModelTypeNative {
		return nil, fmt.Errorf("%s: model_type %q, want %q (a native reward model)", src, t, ModelTypeNative)
	}
	var cfg NativeConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return nil, fmt.Errorf("%s: reward model config: %w", src, err)
	}
	tok, err := modelTokenizer(c, src)
	if err != nil {
		return nil, err
	}
	m, err := NewNative(dev, nil, cfg, tok)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if m.Calib, err = modelCalibration(c, src, cfg.Dims); err != nil {
		return nil, err
	}
	if err := c.CopyToParams(m.Params()); err != nil {
		return nil, fmt.Errorf("weights do not match the config in the metadata: %w", err)
	}
	return m, nil
}

// ---- helpers ----

// textEmbedStd is the standard deviation of the initial word vectors.
const textEmbedStd = 1.0

// initStd redraws t from N(0, std^2).
func initStd(r nn.Rand, t *kernels.Tensor, std float32) {
	r.Normal(t)
	t.Dev.Scale(t, std)
}

// devBuf is a model-owned device buffer that grows on demand (as nn's layer buffers).
type devBuf struct{ t *kernels.Tensor }

func (b *devBuf) get(dev kernels.Device, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if b.t == nil || b.t.Len() < n {
		if b.t != nil {
			b.t.Dev.Free(b.t)
		}
		b.t = dev.New(n)
	}
	return b.t.View(0, shape...)
}

func pref(p string, ps []nn.Param) []nn.Param {
	out := make([]nn.Param, len(ps))
	for i, q := range ps {
		out[i] = nn.Param{Name: p + "." + q.Name, W: q.W, G: q.G}
	}
	return out
}

var (
	_ Differentiable = (*Native)(nil)
	_ Calibrated     = (*Native)(nil)
)
