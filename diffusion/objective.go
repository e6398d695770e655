// The flow-matching training objective (rectified flow, algorithms.md section 1) and one
// training step's forward and backward pass through the DiT.
//
//	t      ~ density(weighting_scheme)   then the SD3 shift: t = shift*u / (1 + (shift-1)*u)
//	x_t    = (1 - t) x0 + t eps          eps ~ N(0, I)
//	target = eps - x0
//	loss_b = mean_d (v_theta(x_t, t, caption, r)_d - target_d)^2      per sample (kernels MSE)
//	loss   = (1/B) sum_b w(t_b) loss_b
//
// Densities and weights use diffusers' --weighting_scheme names:
//
//	logit_normal  u = sigmoid(n), n ~ N(logit_mean, logit_std^2)               w = 1
//	mode          u = 1 - v - mode_scale (cos^2(pi v/2) - 1 + v), v ~ U(0,1)    w = 1
//	cosmap        u ~ U(0,1)                                                     w = 2 / (pi (1 - 2t + 2t^2))
//	sigma_sqrt    u ~ U(0,1)                                                     w = t^-2
//	none          u ~ U(0,1)                                                     w = 1
//
// For classifier-free guidance a caption is replaced by the empty prompt [NullID] with
// probability CaptionDropout, and each reward-condition dimension by ∅ (NaN) with
// probability RewardDropout. Every random number comes from the run's kernels.RNG in a
// fixed order per step (B time draws, B caption draws, B*D reward draws when a reward
// condition is given, then the noise), so a run is reproducible from its seed and a
// resumed run continues the same stream.
//
// Test: go test ./diffusion -run Objective

package diffusion

import (
	"fmt"
	"math"
	"slices"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Weighting schemes (diffusers' names).
const (
	WeightingLogitNormal = "logit_normal"
	WeightingMode        = "mode"
	WeightingCosmap      = "cosmap"
	WeightingSigmaSqrt   = "sigma_sqrt"
	WeightingNone        = "none"
)

// WeightingSchemes lists the accepted --weighting-scheme values.
var WeightingSchemes = []string{WeightingLogitNormal, WeightingMode, WeightingCosmap, WeightingSigmaSqrt, WeightingNone}

// Objective holds the hyper-parameters of the flow-matching loss.
type Objective struct {
	WeightingScheme string  `json:"weighting_scheme"` // default logit_normal
	LogitMean       float64 `json:"logit_mean"`       // 0
	LogitStd        float64 `json:"logit_std"`        // 1
	ModeScale       float64 `json:"mode_scale"`       // 1.29 (diffusers' default)
	Shift           float64 `json:"shift"`            // training timestep shift; 1 = none
	CaptionDropout  float64 `json:"caption_dropout"`  // probability of the empty prompt, e.g. 0.1
	RewardDropout   float64 `json:"reward_dropout"`   // probability of dropping each reward dimension
}

// DefaultObjective is logit-normal(0, 1) times, no shift, 10% caption dropout, 10% reward
// dropout per dimension.
func DefaultObjective() Objective {
	return Objective{WeightingScheme: WeightingLogitNormal, LogitMean: 0, LogitStd: 1, ModeScale: 1.29, Shift: 1,
		CaptionDropout: 0.1, RewardDropout: 0.1}
}

// Validate checks the hyper-parameters.
func (o *Objective) Validate() error {
	if !slices.Contains(WeightingSchemes, o.WeightingScheme) {
		return fmt.Errorf("--weighting-scheme %q: want one of %v", o.WeightingScheme, WeightingSchemes)
	}
	if !(o.LogitStd > 0) || math.IsInf(o.LogitStd, 0) || math.IsNaN(o.LogitMean) || math.IsInf(o.LogitMean, 0) {
		return fmt.Errorf("--logit-mean %v / --logit-std %v: want a finite mean and a positive std", o.LogitMean, o.LogitStd)
	}
	if !(o.Shift > 0) || math.IsInf(o.Shift, 0) {
		return fmt.Errorf("shift must be a positive number, got %v", o.Shift)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"caption dropout", o.CaptionDropout}, {"reward dropout", o.RewardDropout}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%s must be in [0, 1], got %v", p.name, p.v)
		}
	}
	return nil
}

// SampleTimesteps draws B training times in (0,1) from the scheme's density (B draws from
// rng), then applies the shift.
func (o *Objective) SampleTimesteps(rng *kernels.RNG, B int) []float64 {
	var u []float64
	switch o.WeightingScheme {
	case WeightingLogitNormal:
		u = rng.Normals(B)
		for i, n := range u {
			u[i] = 1 / (1 + math.Exp(-(o.LogitMean + o.LogitStd*n)))
		}
	case WeightingMode:
		u = rng.Float64s(B)
		for i, v := range u {
			c := math.Cos(math.Pi * v / 2)
			u[i] = 1 - v - o.ModeScale*(c*c-1+v)
		}
	default:
		u = rng.Float64s(B)
	}
	for i := range u {
		u[i] = ShiftSigma(min(max(u[i], 1e-6), 1-1e-6), o.Shift)
	}
	return u
}

// LossWeights returns w(t) for each time (the scheme's loss weighting).
func (o *Objective) LossWeights(ts []float64) []float64 {
	w := make([]float64, len(ts))
	for i, t := range ts {
		switch o.WeightingScheme {
		case WeightingSigmaSqrt:
			w[i] = 1 / (t * t)
		case WeightingCosmap:
			w[i] = 2 / (math.Pi * (1 - 2*t + 2*t*t))
		default:
			w[i] = 1
		}
	}
	return w
}

// DropCaptions returns a copy of p in which each caption is replaced by the empty prompt
// with probability prob (B draws from rng, taken even when prob is 0), and the dropped flags.
func DropCaptions(rng *kernels.RNG, p Prompts, maxLen int, prob float64) (Prompts, []bool) {
	B := len(p.Lengths)
	out := Prompts{IDs: slices.Clone(p.IDs), Lengths: slices.Clone(p.Lengths)}
	dropped := make([]bool, B)
	for b, u := range rng.Float64s(B) {
		if u < prob {
			dropped[b] = true
			row := out.IDs[b*maxLen : (b+1)*maxLen]
			clear(row)
			row[0] = NullID
			out.Lengths[b] = 1
		}
	}
	return out, dropped
}

// DropRewards returns a copy of r (B*D) with each value replaced by NaN (∅) with
// probability prob (len(r) draws from rng). A nil r stays nil and draws nothing.
func DropRewards(rng *kernels.RNG, r []float32, prob float64) []float32 {
	if r == nil {
		return nil
	}
	out := slices.Clone(r)
	for i, u := range rng.Float64s(len(r)) {
		if u < prob {
			out[i] = float32(math.NaN())
		}
	}
	return out
}

// Batch is one training batch.
type Batch struct {
	X0      *kernels.Tensor // (B, SampleShape...) clean samples in [-1, 1]
	Prompts Prompts         // B captions
	Reward  []float32       // (B*D) reward condition or nil (all ∅)
}

// StepResult reports one training step's loss.
type StepResult struct {
	Loss      float64   // (1/B) sum_b w_b loss_b
	PerSample []float32 // (B) unweighted per-sample MSE
	Timesteps []float64 // (B) the times drawn
}

// TrainStep runs the objective's forward and backward passes with reusable buffers.
type TrainStep struct {
	Objective
	dev    kernels.Device
	eps    buffer
	xt     buffer
	target buffer
	dloss  buffer
	ts     []float32
	mse    *nn.MSELoss
}

// NewTrainStep returns a step runner for the objective on dev.
func NewTrainStep(dev kernels.Device, o Objective) *TrainStep {
	return &TrainStep{Objective: o, dev: dev, mse: nn.NewMSELoss(dev)}
}

// ForwardBackward draws t, the caption and reward dropout and eps from rng, runs the model
// forward and backward, and accumulates (+=) the parameter gradients of the loss. The
// caller zeroes the gradients before the first micro-batch of an optimizer step.
func (s *TrainStep) ForwardBackward(m *DiT, rng *kernels.RNG, b *Batch) StepResult {
	return s.ForwardBackwardScaled(m, rng, b, 1)
}

// ForwardBackwardScaled is ForwardBackward accumulating scale times the gradient (e.g.
// 1/gradient_accumulation_steps); the reported loss is not scaled.
func (s *TrainStep) ForwardBackwardScaled(m *DiT, rng *kernels.RNG, b *Batch, scale float64) StepResult {
	dev := s.dev
	cfg := &m.Config
	B := b.X0.Shape[0]
	D := cfg.SampleSize()
	if b.X0.Len() != B*D || len(b.Prompts.Lengths) != B {
		panic(fmt.Sprintf("diffusion: TrainStep: x0 %v and %d captions for a %v model", b.X0, len(b.Prompts.Lengths), cfg.SampleShape()))
	}
	ts := s.SampleTimesteps(rng, B)
	prompts, _ := DropCaptions(rng, b.Prompts, cfg.MaxTextLen, s.CaptionDropout)
	reward := DropRewards(rng, b.Reward, s.RewardDropout)
	eps := s.eps.get(dev, b.X0.Shape...)
	rng.Normal(eps)

	s.ts = s.ts[:0]
	for _, t := range ts {
		s.ts = append(s.ts, float32(t))
	}
	tt := s.dloss.get(dev, B) // staging for the times, then the loss weights
	dev.CopyFromHost(tt, s.ts)
	xt := s.xt.get(dev, b.X0.Shape...)
	target := s.target.get(dev, b.X0.Shape...)
	ScaleNoise(dev, xt.Reshape(B, D), target.Reshape(B, D), b.X0.Reshape(B, D), eps.Reshape(B, D), tt, B, D)

	v := m.Forward(xt, s.ts, prompts.IDs, prompts.Lengths, reward)
	losses := s.mse.Forward(v, target)
	per := make([]float32, B)
	dev.CopyToHost(per, losses)
	w := s.LossWeights(ts)
	res := StepResult{PerSample: per, Timesteps: ts}
	dl := make([]float32, B)
	for i := range per {
		res.Loss += w[i] * float64(per[i])
		dl[i] = float32(w[i] / float64(B) * scale)
	}
	res.Loss /= float64(B)
	dloss := s.dloss.get(dev, B)
	dev.CopyFromHost(dloss, dl)
	m.BackwardParams(s.mse.Backward(dloss))
	return res
}
