// LatentReward: the noise-aware latent reward model of Flow-NRG (VideoAlign §4.4, App. B.2;
// algorithms.md section 5). It reads noisy samples x_t = (1-t)*x0 + t*eps together with their
// noise level t and the prompt, and is built from the first K blocks of a pretrained generator
// (diffusion.DiT) plus one small head per reward dimension:
//
//	txt   = TextEncoder(ids) [Wtp] (+ s E_w[ids])        (B,L,C)   copied from the generator
//	c     = TimestepEmbedder(t) + Linear(MeanPool(txt))  (B,C)     copied (+ the reward slot's ∅)
//	h     = [txt | PatchEmbed(x_t)]                      (B,L+P,C) copied x_embedder
//	h     = DiTBlock_k(h, c)   k = 0..K-1                          the generator's first K blocks
//	f     = [MeanPool(h patches) | MeanPool(h caption)]  (B,2C)
//	r_d   = W2_d GELU(W1_d LN_d(f) + b1_d) + b2_d        (B)       one head per dimension
//
// With word_embedding_scale s > 0 the caption tokens also get a word vector of their own,
// s E_w[ids] with E_w (V,C) zero at the start (the model begins as the generator's cut): the
// generator's word vectors are small next to its sin-cos position code (row norms about 1.5
// against 11.3 in the embedded image model), so a one-word difference such as the skin tone
// reaches the blocks faintly; E_w adds each word where image and caption meet. AdamW moves
// each entry by about the learning rate per step whatever the gradient's size, so s sets
// how fast the word vectors grow.
//
// Guidance needs d/dx_t sum_d w_d r_d (ScoreAndGrad), one forward and backward through K
// blocks: no decoder, no pass through the whole generator. Trained with Bradley-Terry (with
// ties) on preference pairs whose two sides share ONE t and ONE eps (latent_train.go); a
// model trained on clean samples only is not noise-aware, and guidance must refuse it
// (RequireNoiseAware): VideoAlign's ablation measured a clean-latent reward model below no
// guidance at all.
//
// The file records model_type "align.reward.latent" (the native model writes
// "align.reward.native"), the config with the generator's architecture and K, the tokenizer
// (the generator's: the text encoder is the generator's) and the calibration.
//
// Test: go test ./rewards -run Latent
package rewards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// ModelTypeLatent is the model_type of a noise-aware latent reward model file.
const ModelTypeLatent = "align.reward.latent"

// DefaultLatentBlocks is K, the generator blocks the latent model keeps by default.
const DefaultLatentBlocks = 2

// LatentConfig sizes a latent reward model.
type LatentConfig struct {
	// Generator is the architecture of the generator the model was cut from; its num_layers
	// is the generator's depth, of which the model keeps the first Blocks.
	Generator diffusion.ModelConfig `json:"generator"`
	Blocks    int                   `json:"latent_blocks"` // K, 1..Generator.Depth
	// HeadHidden is the hidden width of each dimension's MLP head (0: the generator's width).
	HeadHidden int `json:"head_hidden"`
	// WordScale s > 0 adds s E_w[ids] to the caption tokens (see the file header); 0: none.
	WordScale float64  `json:"word_embedding_scale,omitempty"`
	Dims      []string `json:"dims"`             // reward dimensions in output order
	Source    string   `json:"source,omitempty"` // the generator file it was initialised from
}

// latentConfigJSON decodes the generator part with diffusion.ParseModelConfig (strict).
type latentConfigJSON struct {
	Generator  json.RawMessage `json:"generator"`
	Blocks     int             `json:"latent_blocks"`
	HeadHidden int             `json:"head_hidden"`
	WordScale  float64         `json:"word_embedding_scale,omitempty"`
	Dims       []string        `json:"dims"`
	Source     string          `json:"source,omitempty"`
}

// ParseLatentConfig decodes and validates a latent model config.
func ParseLatentConfig(b []byte) (LatentConfig, error) {
	var raw latentConfigJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return LatentConfig{}, fmt.Errorf("latent reward model config: %w", err)
	}
	g, err := diffusion.ParseModelConfig(raw.Generator)
	if err != nil {
		return LatentConfig{}, fmt.Errorf("latent reward model config: generator: %w", err)
	}
	c := LatentConfig{Generator: g, Blocks: raw.Blocks, HeadHidden: raw.HeadHidden, WordScale: raw.WordScale, Dims: raw.Dims, Source: raw.Source}
	return c, c.Validate()
}

// Validate checks the config.
func (c *LatentConfig) Validate() error {
	var errs []error
	if err := c.Generator.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Blocks < 1 || c.Blocks > c.Generator.Depth {
		errs = append(errs, fmt.Errorf("latent_blocks must be in 1..%d (the generator's depth), got %d", c.Generator.Depth, c.Blocks))
	}
	if c.HeadHidden < 0 {
		errs = append(errs, fmt.Errorf("head_hidden must be >= 0, got %d", c.HeadHidden))
	}
	if !(c.WordScale >= 0) || math.IsInf(c.WordScale, 0) {
		errs = append(errs, fmt.Errorf("word_embedding_scale must be a number >= 0, got %v", c.WordScale))
	}
	if c.Generator.Channels != 3 {
		errs = append(errs, fmt.Errorf("the generator has %d channels; reward batches are RGB (3)", c.Generator.Channels))
	}
	if len(c.Dims) == 0 {
		errs = append(errs, errors.New("no reward dimensions"))
	}
	seen := map[string]bool{}
	for _, d := range c.Dims {
		if d == "" || seen[d] {
			errs = append(errs, fmt.Errorf("reward dimension %q is empty or repeated", d))
		}
		seen[d] = true
		if d == DimMQ && c.Generator.Kind != diffusion.KindVideo {
			errs = append(errs, errors.New("dimension mq needs a video generator"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("latent reward model config: %w", errors.Join(errs...))
	}
	return nil
}

// hidden is the head width.
func (c *LatentConfig) hidden() int {
	if c.HeadHidden > 0 {
		return c.HeadHidden
	}
	return c.Generator.Width
}

// SampleShape is (3,H,W) for an image generator and (T,3,H,W) for a video one.
func (c *LatentConfig) SampleShape() []int { return c.Generator.SampleShape() }

// Kind is "image" or "video".
func (c *LatentConfig) Kind() string { return c.Generator.Kind }

// latentHead is one dimension's readout: LN (2C) -> Linear (2C -> H) -> GELU -> Linear (H -> 1).
type latentHead struct {
	Norm *nn.LayerNorm // affine, "norm"
	FC1  *nn.Linear    // "fc1"
	FC2  *nn.Linear    // "fc2", N(0, 0.02^2) at initialisation
	h    *kernels.Tensor
	g    devBuf // (B,H) GELU(h)
	dh   devBuf // (B,H)
}

func (hd *latentHead) params() []nn.Param {
	ps := pref("norm", hd.Norm.Params())
	ps = append(ps, pref("fc1", hd.FC1.Params())...)
	return append(ps, pref("fc2", hd.FC2.Params())...)
}

func (hd *latentHead) forward(dev kernels.Device, f *kernels.Tensor) *kernels.Tensor {
	hd.h = hd.FC1.Forward(hd.Norm.Forward(f))
	g := hd.g.get(dev, hd.h.Shape...)
	dev.GeluForward(g, hd.h)
	return hd.FC2.Forward(g)
}

func (hd *latentHead) backward(dev kernels.Device, dy *kernels.Tensor) *kernels.Tensor {
	dg := hd.FC2.Backward(dy)
	dh := hd.dh.get(dev, hd.h.Shape...)
	dev.GeluBackward(dh, hd.h, dg)
	return hd.Norm.Backward(hd.FC1.Backward(dh))
}

// LatentReward is the noise-aware latent reward model; see the file header. Parameter names
// follow the generator's for the copied parts (x_embedder.*, t_embedder.*, text_encoder.*,
// text_proj.*, pooled_text_proj.*, reward_embedder.*, blocks.N.*) and heads.<dim>.* for
// the heads.
type LatentReward struct {
	Config    LatentConfig
	Tokenizer *diffusion.Tokenizer
	Calib     *Calibration // nil until calibrated

	XEmbedder      *nn.PatchEmbed            // "x_embedder"
	TEmbedder      *nn.TimestepEmbedder      // "t_embedder"
	Text           *diffusion.TextEncoder    // "text_encoder"
	TextProj       *nn.Linear                // "text_proj"; nil when the text width is C
	PooledTextProj *nn.Linear                // "pooled_text_proj"
	Reward         *diffusion.RewardEmbedder // "reward_embedder", always fed ∅; nil without reward dims
	Words          *nn.TokenEmbedding        // "word_embedding", E_w; nil without it
	Blocks         []*nn.DiTBlock            // "blocks.N", N < K
	AdaLN          *nn.AdaLNStack            // the blocks' modulations ("blocks.N.adaLN_modulation.1")
	heads          []*latentHead             // "heads.<dim>"

	dev       kernels.Device
	trainable bool
	B         int

	hostKB, hostKJ, hostMask, hostT, hostOut []float32
	tbuf, kbText, kbJoint, mask              devBuf
	pooled, cond, seq, hText, hPatch         devBuf
	fPatch, fText, feat                      devBuf
	dfeat, dfPatch, dfText, dr               devBuf
	dhText, dhPatch, dseq, dcond, dPool      devBuf
	dText, dPatch                            devBuf
	txtW, dWords                             devBuf // txt + s E_w[ids], s dtxt
}

// NewLatent builds a model for cfg and tok (the generator's tokenizer) with the backbone
// drawn from r like a fresh generator (nil r: zeros, for loading) and heads drawn from r.
func NewLatent(dev kernels.Device, r nn.Rand, cfg LatentConfig, tok *diffusion.Tokenizer) (*LatentReward, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := cfg.Generator
	if tok == nil {
		return nil, errors.New("latent reward model: no tokenizer")
	}
	if tok.VocabSize() != g.VocabSize || tok.MaxLen != g.MaxTextLen {
		return nil, fmt.Errorf("latent reward model: tokenizer (%d words, max length %d) does not match the generator (vocab_size %d, max_text_len %d)",
			tok.VocabSize(), tok.MaxLen, g.VocabSize, g.MaxTextLen)
	}
	cfg.Dims = slices.Clone(cfg.Dims)
	cfg.Generator.RewardDims = slices.Clone(g.RewardDims)
	C := g.Width
	m := &LatentReward{Config: cfg, Tokenizer: tok, dev: dev,
		XEmbedder:      nn.NewPatchEmbed(dev, r, g.Channels, C, g.TubeletFrames, g.PatchSize),
		TEmbedder:      nn.NewTimestepEmbedder(dev, r, C),
		Text:           diffusion.NewTextEncoder(dev, r, g.VocabSize, g.TextWidth, g.TextHeads, g.MaxTextLen, g.TextLayers, g.MLPRatio),
		PooledTextProj: nn.NewLinear(dev, r, C, C, true)}
	if g.TextWidth != C {
		m.TextProj = nn.NewLinear(dev, r, g.TextWidth, C, true)
	}
	if len(g.RewardDims) > 0 {
		m.Reward = diffusion.NewRewardEmbedder(dev, r, g.RewardDims, g.RewardFreq, C)
	}
	for range cfg.Blocks {
		m.Blocks = append(m.Blocks, nn.NewDiTBlock(dev, r, nn.DiTBlockConfig{C: C, NH: g.Heads, MLPRatio: g.MLPRatio}))
	}
	m.AdaLN = nn.NewAdaLNStack(dev, m.Blocks)
	if cfg.WordScale > 0 {
		m.Words = nn.NewTokenEmbedding(dev, nil, g.VocabSize, C) // zeros: see the file header
	}
	H := cfg.hidden()
	for range cfg.Dims {
		hd := &latentHead{Norm: nn.NewLayerNorm(dev, 2*C, 1e-5, true),
			FC1: nn.NewLinear(dev, r, 2*C, H, true), FC2: nn.NewLinear(dev, nil, H, 1, true)}
		hd.FC2.InitNormal(r, nn.DefaultEmbeddingStd)
		m.heads = append(m.heads, hd)
	}
	m.SetTrainable(true)
	return m, nil
}

// NewLatentFromGenerator cuts a latent reward model from gen: its patch embedding, timestep
// embedder, text encoder (and projections, and the reward slot) and its first cfg.Blocks
// blocks are copied; the heads are drawn from r. cfg.Generator is set to gen's config;
// cfg.Source names the generator file.
func NewLatentFromGenerator(dev kernels.Device, r nn.Rand, gen *diffusion.DiT, cfg LatentConfig) (*LatentReward, error) {
	if gen.Tokenizer == nil {
		return nil, errors.New("latent reward model: the generator has no tokenizer")
	}
	cfg.Generator = gen.Config
	m, err := NewLatent(dev, r, cfg, gen.Tokenizer)
	if err != nil {
		return nil, err
	}
	src := map[string]nn.Param{}
	for _, p := range gen.Params() {
		src[p.Name] = p
	}
	for _, p := range m.backboneParams() {
		s, ok := src[p.Name]
		if !ok || !slices.Equal(s.W.Shape, p.W.Shape) {
			return nil, fmt.Errorf("latent reward model: generator parameter %s missing or of another shape", p.Name)
		}
		hs := make([]float32, s.W.Len())
		s.W.Dev.CopyToHost(hs, s.W)
		dev.CopyFromHost(p.W, hs)
	}
	return m, nil
}

// backboneParams lists the parameters copied from the generator, with its names.
func (m *LatentReward) backboneParams() []nn.Param {
	ps := pref("x_embedder", m.XEmbedder.Params())
	ps = append(ps, pref("t_embedder", m.TEmbedder.Params())...)
	ps = append(ps, pref("text_encoder", m.Text.Params())...)
	if m.TextProj != nil {
		ps = append(ps, pref("text_proj", m.TextProj.Params())...)
	}
	ps = append(ps, pref("pooled_text_proj", m.PooledTextProj.Params())...)
	if m.Reward != nil {
		ps = append(ps, pref("reward_embedder", m.Reward.Params())...)
	}
	for i, b := range m.Blocks {
		ps = append(ps, pref(fmt.Sprintf("blocks.%d", i), nn.BlockParams(m.AdaLN, b, i))...)
	}
	return ps
}

// Params lists every parameter with its file name.
func (m *LatentReward) Params() []nn.Param {
	ps := m.backboneParams()
	if m.Words != nil {
		ps = append(ps, pref("word_embedding", m.Words.Params())...)
	}
	for d, hd := range m.heads {
		ps = append(ps, pref("heads."+m.Config.Dims[d], hd.params())...)
	}
	return ps
}

// SetTrainable gives every parameter a zeroed gradient (true) or freezes them all (false:
// scoring and guidance then compute only the gradient with respect to x_t).
func (m *LatentReward) SetTrainable(on bool) {
	m.trainable = on
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
	if m.Words != nil {
		m.Words.SetTrainable(on)
	}
	for _, b := range m.Blocks {
		b.SetTrainable(on)
	}
	m.AdaLN.SetTrainable(on)
	for _, hd := range m.heads {
		hd.Norm.SetTrainable(on)
		hd.FC1.SetTrainable(on)
		hd.FC2.SetTrainable(on)
	}
}

// Dims returns the dimension names in score order.
func (m *LatentReward) Dims() []string { return slices.Clone(m.Config.Dims) }

// Calibration returns the stored calibration, or the identity (z = r) when there is none.
func (m *LatentReward) Calibration() *Calibration {
	if m.Calib == nil {
		return IdentityCalibration(m.Config.Dims)
	}
	return m.Calib
}

// NoiseAware marks the model as reading x_t with its noise level (NoiseAware).
func (m *LatentReward) NoiseAware() {}

// Device is the device the model lives on.
func (m *LatentReward) Device() kernels.Device { return m.dev }

// Forward scores x_t (B, SampleShape...) at noise levels t (B, in [0,1]; t = 1 is pure noise)
// with prompts (B) and returns the raw scores (B, D). It caches what Backward needs and
// panics on shape errors.
func (m *LatentReward) Forward(xt *kernels.Tensor, t []float32, prompts []string) [][]float32 {
	g := &m.Config.Generator
	dev := m.dev
	B := xt.Shape[0]
	if want := g.BatchShape(B); !slices.Equal(xt.Shape, want) {
		panic(fmt.Sprintf("rewards: LatentReward.Forward: x_t %v, want shape %v", xt, want))
	}
	if len(t) != B || len(prompts) != B {
		panic(fmt.Sprintf("rewards: LatentReward.Forward: %d samples, %d times, %d prompts", B, len(t), len(prompts)))
	}
	L, P, C, D := g.MaxTextLen, g.NumPatches(), g.Width, len(m.Config.Dims)
	m.B = B
	enc := diffusion.EncodePrompts(m.Tokenizer, prompts)

	// Key biases and the caption mask, as the generator builds them.
	ninf := float32(math.Inf(-1))
	m.hostKB, m.hostKJ, m.hostMask = m.hostKB[:0], m.hostKJ[:0], m.hostMask[:0]
	for _, n := range enc.Lengths {
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
	kbText, kbJoint, mask := m.kbText.get(dev, B, L), m.kbJoint.get(dev, B, L+P), m.mask.get(dev, B, L)
	dev.CopyFromHost(kbText, m.hostKB)
	dev.CopyFromHost(kbJoint, m.hostKJ)
	dev.CopyFromHost(mask, m.hostMask)

	// Caption tokens and the conditioning vector c.
	txt := m.Text.Forward(enc.IDs, kbText)
	if m.TextProj != nil {
		txt = m.TextProj.Forward(txt)
	}
	if m.Words != nil {
		w := m.Words.Forward(enc.IDs) // the table's own buffer, not read by its Backward
		dev.Scale(w, float32(m.Config.WordScale))
		tw := m.txtW.get(dev, B, L, C)
		dev.Add(tw, txt, w)
		txt = tw
	}
	pooled := m.pooled.get(dev, B, C)
	dev.MeanPoolForward(pooled, txt, mask, B, L, C)
	tt := m.tbuf.get(dev, B)
	m.hostT = append(m.hostT[:0], t...)
	dev.CopyFromHost(tt, m.hostT)
	cond := m.cond.get(dev, B, C)
	dev.Add(cond, m.PooledTextProj.Forward(pooled), m.TEmbedder.Forward(tt))
	if m.Reward != nil {
		dev.Add(cond, cond, m.Reward.Forward(nil, B))
	}

	// The first K blocks over [caption | patches].
	xp := m.XEmbedder.Forward(xt)
	h := m.seq.get(dev, B, L+P, C)
	dev.Concat(h, txt, xp, B, L*C, P*C)
	h = nn.ForwardBlocks(m.AdaLN, m.Blocks, h, cond, kbJoint)
	hText, hPatch := m.hText.get(dev, B, L, C), m.hPatch.get(dev, B, P, C)
	dev.Split(hText, hPatch, h, B, L*C, P*C)

	// Pooled features and the heads.
	fp, ft := m.fPatch.get(dev, B, C), m.fText.get(dev, B, C)
	dev.MeanPoolForward(fp, hPatch, nil, B, P, C)
	dev.MeanPoolForward(ft, hText, mask, B, L, C)
	f := m.feat.get(dev, B, 2*C)
	dev.Concat(f, fp, ft, B, C, C)
	out := zeros(B, D)
	m.hostOut = slices.Grow(m.hostOut[:0], B)[:B]
	for d, hd := range m.heads {
		dev.CopyToHost(m.hostOut, hd.forward(dev, f))
		for b := range B {
			out[b][d] = m.hostOut[b]
		}
	}
	return out
}

// Backward takes dscores (B, D) for the last Forward, accumulates the parameter gradients
// (when trainable) and returns the gradient with respect to x_t (its shape; a model-owned
// buffer valid until the next Backward). Times and prompts get no gradient.
func (m *LatentReward) Backward(dscores [][]float32) *kernels.Tensor {
	g := &m.Config.Generator
	dev := m.dev
	B := m.B
	L, P, C, D := g.MaxTextLen, g.NumPatches(), g.Width, len(m.Config.Dims)
	if len(dscores) != B {
		panic(fmt.Sprintf("rewards: LatentReward.Backward: %d score gradients for a batch of %d", len(dscores), B))
	}
	df := m.dfeat.get(dev, B, 2*C)
	dev.Fill(df, 0)
	col := slices.Grow(m.hostOut[:0], B)[:B]
	for d, hd := range m.heads {
		for b := range B {
			if len(dscores[b]) != D {
				panic(fmt.Sprintf("rewards: LatentReward.Backward: row %d has %d values, want %d", b, len(dscores[b]), D))
			}
			col[b] = dscores[b][d]
		}
		dr := m.dr.get(dev, B, 1)
		dev.CopyFromHost(dr, col)
		dev.Add(df, df, hd.backward(dev, dr))
	}
	dfp, dft := m.dfPatch.get(dev, B, C), m.dfText.get(dev, B, C)
	dev.Split(dfp, dft, df, B, C, C)
	mask := m.mask.get(dev, B, L)
	dhp, dht := m.dhPatch.get(dev, B, P, C), m.dhText.get(dev, B, L, C)
	dev.MeanPoolBackward(dhp, dfp, nil, B, P, C)
	dev.MeanPoolBackward(dht, dft, mask, B, L, C)
	dh := m.dseq.get(dev, B, L+P, C)
	dev.Concat(dh, dht, dhp, B, L*C, P*C)
	dcond := m.dcond.get(dev, B, C)
	dev.Fill(dcond, 0)
	dh = nn.BackwardBlocks(m.AdaLN, m.Blocks, dh, dcond)
	dText, dPatch := m.dText.get(dev, B, L, C), m.dPatch.get(dev, B, P, C)
	dev.Split(dText, dPatch, dh, B, L*C, P*C)
	dx := m.XEmbedder.Backward(dPatch)
	if !m.trainable {
		return dx // the conditioning path does not reach x_t
	}
	m.TEmbedder.Backward(dcond)
	if m.Reward != nil {
		m.Reward.Backward(dcond)
	}
	dPool := m.dPool.get(dev, B, L, C)
	dev.MeanPoolBackward(dPool, m.PooledTextProj.Backward(dcond), mask, B, L, C)
	dev.Add(dText, dText, dPool)
	if m.Words != nil {
		dw := m.dWords.get(dev, B, L, C)
		dev.Copy(dw, dText)
		dev.Scale(dw, float32(m.Config.WordScale))
		m.Words.Backward(dw)
	}
	if m.TextProj != nil {
		m.Text.Backward(m.TextProj.Backward(dText))
	} else {
		m.Text.Backward(dText)
	}
	return dx
}

// timesteps returns b's noise levels, zeros (clean samples) when it has none.
func (m *LatentReward) timesteps(b Batch) []float32 {
	if b.Timesteps != nil {
		return b.Timesteps
	}
	return make([]float32, b.Len())
}

func (m *LatentReward) checkBatch(b Batch) error {
	if err := b.Check(); err != nil {
		return err
	}
	want := m.Config.Generator.BatchShape(b.Len())
	if !slices.Equal(b.Pixels.Shape, want) {
		return fmt.Errorf("latent reward model (%s): x_t %v, want %v", m.Config.Kind(), b.Pixels.Shape, want)
	}
	if b.Pixels.Dev != m.dev {
		return fmt.Errorf("latent reward model on %s: x_t on %s", m.dev.Name(), b.Pixels.Dev.Name())
	}
	for i, t := range b.Timesteps {
		if !(t >= 0 && t <= 1) {
			return fmt.Errorf("latent reward model: timestep %d is %v, want [0, 1]", i, t)
		}
	}
	return nil
}

// Score implements Model: b.Pixels is x_t at b.Timesteps (nil: t = 0, clean samples).
func (m *LatentReward) Score(b Batch) ([][]float32, error) {
	if err := m.checkBatch(b); err != nil {
		return nil, err
	}
	return m.Forward(b.Pixels, m.timesteps(b), b.Prompts), nil
}

// ScoreAndGrad implements Differentiable: the scores and d/dx_t sum_b sum_d w_d r_bd, the
// gradient Flow-NRG adds to the velocity (scaled by -w t/(1-t)). Trainable parameters
// accumulate their gradients too; LoadLatent returns a frozen model.
func (m *LatentReward) ScoreAndGrad(b Batch, weights []float64) ([][]float32, *kernels.Tensor, error) {
	if err := m.checkBatch(b); err != nil {
		return nil, nil, err
	}
	D := len(m.Config.Dims)
	if len(weights) != D {
		return nil, nil, fmt.Errorf("latent reward model: %d weights for %d dimensions (%v)", len(weights), D, m.Config.Dims)
	}
	scores := m.Forward(b.Pixels, m.timesteps(b), b.Prompts)
	ds := zeros(len(scores), D)
	for i := range ds {
		for d := range D {
			ds[i][d] = float32(weights[d])
		}
	}
	return scores, m.Backward(ds), nil
}

// ---- save and load ----

// Checkpoint returns the model's weights (F32), config, tokenizer and calibration.
func (m *LatentReward) Checkpoint() (*nn.Checkpoint, error) {
	return modelCheckpoint(m.Config, m.Tokenizer, m.Calib, ModelTypeLatent, m.Params())
}

// Save writes the model to path (safetensors, atomically).
func (m *LatentReward) Save(path string) error {
	c, err := m.Checkpoint()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return c.Save(path)
}

// LoadLatent reads a latent model file (or a training checkpoint) and builds the model on
// dev, frozen for scoring and guidance.
func LoadLatent(dev kernels.Device, path string) (*LatentReward, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	m, err := LatentFromCheckpoint(dev, c)
	if err != nil {
		return nil, err
	}
	m.SetTrainable(false)
	return m, nil
}

// LatentFromCheckpoint builds the model a checkpoint describes and copies its weights in
// (trainable).
func LatentFromCheckpoint(dev kernels.Device, c *nn.Checkpoint) (*LatentReward, error) {
	src := c.Source()
	if t := c.Extra[metaModelType]; t != ModelTypeLatent {
		return nil, fmt.Errorf("%s: model_type %q, want %q (a noise-aware latent reward model)", src, t, ModelTypeLatent)
	}
	cfg, err := ParseLatentConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	tok, err := modelTokenizer(c, src)
	if err != nil {
		return nil, err
	}
	m, err := NewLatent(dev, nil, cfg, tok)
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

// ModelTypeOf returns the model_type recorded in a checkpoint's metadata ("" when none).
func ModelTypeOf(c *nn.Checkpoint) string { return c.Extra[metaModelType] }

// LoadModel reads a reward model file of either kind: a native (clean) model or a
// noise-aware latent one, by its model_type; the model is frozen.
func LoadModel(dev kernels.Device, path string) (Differentiable, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	switch t := ModelTypeOf(c); t {
	case ModelTypeLatent:
		m, err := LatentFromCheckpoint(dev, c)
		if err != nil {
			return nil, err
		}
		m.SetTrainable(false)
		return m, nil
	case ModelTypeNative:
		m, err := NativeFromCheckpoint(dev, c)
		if err != nil {
			return nil, err
		}
		m.SetTrainable(false)
		return m, nil
	default:
		return nil, fmt.Errorf("%s: model_type %q is not a reward model (%q or %q)", path, t, ModelTypeNative, ModelTypeLatent)
	}
}

// ErrNotNoiseAware is wrapped by RequireNoiseAware's error.
var ErrNotNoiseAware = errors.New("reward model is not noise-aware")

// RequireNoiseAware returns m as a NoiseAware model, or an error naming the model (name)
// that explains why a clean reward model cannot guide noisy samples and how to train a
// latent one.
func RequireNoiseAware(m Model, name string) (NoiseAware, error) {
	if na, ok := m.(NoiseAware); ok {
		return na, nil
	}
	return nil, fmt.Errorf("%s: %w: it was trained on clean samples, and its gradient at noisy x_t misleads Flow-NRG "+
		"(VideoAlign App. E: a clean-latent reward model guides worse than no guidance)\n"+
		"HINT: train a noise-aware latent reward model from the generator: "+
		"align reward train --latent --generator <generator.safetensors> -o reward-latent/", name, ErrNotNoiseAware)
}

var (
	_ NoiseAware = (*LatentReward)(nil)
	_ Calibrated = (*LatentReward)(nil)
)
