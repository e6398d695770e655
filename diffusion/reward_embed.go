// RewardEmbedder: the reward-condition slot of the DiT (algorithms.md section 6, MRaC-style):
// a sinusoidal embedding per reward dimension, concatenated, through an MLP whose last layer
// starts at zero, added to the adaLN conditioning vector.
//
// Test: go test ./diffusion -run 'RewardEmbed|DiT'

package diffusion

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// RewardEmbedScale multiplies a reward value before its sinusoidal embedding. Rewards are
// z-scores (mostly within ±3); with 64 features and period 10000 the fastest feature then
// turns by up to ±300 rad and the slowest by ±0.04 rad, so every scale of difference is seen.
const RewardEmbedScale = 100

// RewardEmbedder maps reward conditions r (B,D) to vectors (B,C):
//
//	half = Freq/2 ;  f_i = exp(-ln(10000) i/half)
//	e[b,d] = [cos(s r f), sin(s r f)]     (Freq)   s = RewardEmbedScale, when r[b,d] is a number
//	e[b,d] = null[d]                      (Freq)   when r[b,d] is NaN: dimension d dropped (∅)
//	y      = W2 SiLU(W1 concat_d e[b,d] + b1) + b2          ("mlp.0", "mlp.2")
//
// The null convention: a dropped dimension is written as NaN, and a missing condition (nil)
// drops every dimension. Each dimension has its own learned null embedding, initialised to
// zero (a vector no sinusoid can equal, since each cos/sin pair has norm 1), so training with
// per-dimension dropout gives the unconditional branches that per-dimension classifier-free
// guidance needs: v(c, r_d, ∅_{-d}).
//
// W2 and b2 start at zero, so a fresh embedder outputs exactly 0 and the slot is a no-op
// until it is trained. Backward accumulates the MLP's and the null embeddings' gradients;
// reward values get none.
type RewardEmbedder struct {
	Dims []string // e.g. ["vq", "ta"]
	Freq int      // sinusoidal features per dimension, e.g. 64
	C    int      // output width

	Null  *kernels.Tensor // (D, Freq) learned null embeddings ("null_embedding")
	DNull *kernels.Tensor // (D, Freq); nil when frozen
	FC1   *nn.Linear      // D*Freq -> C ("mlp.0")
	FC2   *nn.Linear      // C -> C, zero-initialised ("mlp.2")

	dev    kernels.Device
	B      int
	isNull []bool // (B*D) of the last Forward
	rs     buffer // (B*D) scaled reward values
	emb    buffer // (B, D*Freq)
	h      *kernels.Tensor
	s      buffer // (B,C) SiLU(h)
	ds     buffer // (B,C)
	host   []float32
}

// buffer is a device tensor that grows on demand (as nn's layers keep theirs).
type buffer struct{ t *kernels.Tensor }

func (b *buffer) get(dev kernels.Device, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if b.t == nil || b.t.Len() < n || b.t.Dev != dev {
		if b.t != nil {
			b.t.Dev.Free(b.t)
		}
		b.t = dev.New(n)
	}
	return b.t.View(0, shape...)
}

// free returns the buffer's tensor to its device.
func (b *buffer) free() {
	if b.t != nil {
		b.t.Dev.Free(b.t)
		b.t = nil
	}
}

// NewRewardEmbedder allocates the embedder; W1 is Xavier-normal from r, the rest zero.
func NewRewardEmbedder(dev kernels.Device, r nn.Rand, dims []string, freq, C int) *RewardEmbedder {
	D := len(dims)
	e := &RewardEmbedder{Dims: append([]string(nil), dims...), Freq: freq, C: C, dev: dev,
		Null: dev.New(D, freq),
		FC1:  nn.NewLinear(dev, r, D*freq, C, true),
		FC2:  nn.NewLinear(dev, nil, C, C, true)}
	e.SetTrainable(true)
	return e
}

// Params lists "null_embedding", "mlp.0.*" and "mlp.2.*".
func (e *RewardEmbedder) Params() []nn.Param {
	ps := []nn.Param{{Name: "null_embedding", W: e.Null, G: e.DNull}}
	ps = append(ps, prefix("mlp.0", e.FC1.Params())...)
	return append(ps, prefix("mlp.2", e.FC2.Params())...)
}

// SetTrainable freezes (false) or unfreezes the embedder.
func (e *RewardEmbedder) SetTrainable(on bool) {
	e.FC1.SetTrainable(on)
	e.FC2.SetTrainable(on)
	switch {
	case !on:
		e.DNull = nil
	case e.DNull == nil:
		e.DNull = e.dev.New(len(e.Dims), e.Freq)
	}
}

// Forward embeds r (B*D values, row-major (B,D), NaN = dropped; nil = all dropped) for a
// batch of B and returns (B,C).
func (e *RewardEmbedder) Forward(r []float32, B int) *kernels.Tensor {
	D, F := len(e.Dims), e.Freq
	if r != nil && len(r) != B*D {
		panic(fmt.Sprintf("diffusion: RewardEmbedder.Forward: %d reward values for %d samples of %d dimensions", len(r), B, D))
	}
	e.B = B
	e.isNull = e.isNull[:0]
	e.host = e.host[:0]
	for i := 0; i < B*D; i++ {
		v := float32(math.NaN())
		if r != nil {
			v = r[i]
		}
		null := math.IsNaN(float64(v))
		e.isNull = append(e.isNull, null)
		if null {
			v = 0
		}
		e.host = append(e.host, v*RewardEmbedScale)
	}
	emb := e.emb.get(e.dev, B, D*F)
	if B*D > 0 {
		rs := e.rs.get(e.dev, B*D)
		e.dev.CopyFromHost(rs, e.host)
		e.dev.TimestepEmbedding(emb, rs, B*D, F, 10000)
	}
	for i, null := range e.isNull {
		if null {
			d := i % D
			e.dev.Copy(emb.View(i*F, F), e.Null.View(d*F, F))
		}
	}
	e.h = e.FC1.Forward(emb)
	s := e.s.get(e.dev, B, e.C)
	e.dev.SiluForward(s, e.h)
	return e.FC2.Forward(s)
}

// Backward takes dy (B,C) and accumulates the gradients of the MLP and the null embeddings.
func (e *RewardEmbedder) Backward(dy *kernels.Tensor) {
	ds := e.FC2.Backward(dy)
	dh := e.ds.get(e.dev, e.h.Shape...)
	e.dev.SiluBackward(dh, e.h, ds)
	demb := e.FC1.Backward(dh)
	if e.DNull == nil {
		return
	}
	D, F := len(e.Dims), e.Freq
	for i, null := range e.isNull {
		if null {
			d := i % D
			e.dev.Axpy(e.DNull.View(d*F, F), 1, demb.View(i*F, F))
		}
	}
}

// RemakeRewardSlot gives m a fresh reward-condition slot for dims, drawn from r, that ignores
// the condition until taught: its output layer's weight is zero and its bias is the old slot's
// output for "no condition" (∅ in every dimension; zero without a slot), so the model computes
// exactly what it did without a condition. Pre-training trains the slot on ∅ only (no scores),
// and a video model inherits its image model's slot (vq, ta): conditioning on motion quality
// needs a slot that has mq. A slot taught by reward-cond fine-tuning (it stores condition
// maxima) is refused, as its training would be lost; so are names the config refuses.
func (m *DiT) RemakeRewardSlot(r nn.Rand, dims []string) error {
	if m.Reward != nil && slices.ContainsFunc(m.RewardConditionMax, func(v float64) bool { return !math.IsNaN(v) }) {
		return fmt.Errorf("the model's reward-condition slot (%s) has been taught (it stores condition maxima); it cannot be remade with %s",
			strings.Join(m.Config.RewardDims, ","), strings.Join(dims, ","))
	}
	cfg := m.Config
	cfg.RewardDims = slices.Clone(dims)
	if cfg.RewardFreq == 0 {
		cfg.RewardFreq = DefaultImageConfig().RewardFreq
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var null []float32 // the old slot's output for ∅, (C)
	if m.Reward != nil {
		y := m.Reward.Forward(nil, 1)
		null = make([]float32, y.Len())
		m.dev.CopyToHost(null, y)
	}
	m.Config = cfg
	m.Reward, m.RewardConditionMax = nil, nil
	if len(dims) > 0 {
		m.Reward = NewRewardEmbedder(m.dev, r, dims, cfg.RewardFreq, cfg.Width)
		if null != nil {
			m.dev.CopyFromHost(m.Reward.FC2.Bias, null)
		}
	}
	return nil
}
