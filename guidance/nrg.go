// Flow-NRG: reward guidance with a noise-aware latent reward model (VideoAlign, Liu et al.
// 2025, arXiv 2501.13918, section 4.4 and appendix B.2; algorithms.md section 5).
//
// The reward-tilted target p~ ∝ p_ref exp(r)^w gives, for rectified flow (alpha_t = 1-t,
// sigma_t = t), the guided velocity
//
//	v~ = v_cfg - w * t/(1-t) * grad_{x_t} sum_d λ_d R_d(x_t, t, y)
//
// applied after classifier-free guidance (v_cfg), never at t = 1 where t/(1-t) is infinite,
// and only inside the window end <= t <= start. R reads the noisy sample x_t and its noise
// level directly (rewards.NoiseAware): no decoding, no backpropagation through the
// generator, one small forward and backward per evaluation. A clean-sample reward on x0_hat
// does not work here (the paper's ablation: worse than no guidance, or unusable samples),
// so such a model is refused. λ_d weight the z-scored dimensions; they reach the model as
// raw-score weights λ_d/std_d. Paper default w = 100.
//
// Test: go test ./guidance -run NRG

package guidance

import (
	"errors"
	"fmt"
	"math"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// DefaultNRGScale is the paper's guidance strength w.
const DefaultNRGScale = 100

// ErrNotNoiseAware is returned for a reward model that cannot drive Flow-NRG.
var ErrNotNoiseAware = errors.New("Flow-NRG needs a noise-aware latent reward model")

// NRGFactor is t/(1-t), the rectified-flow factor between the score and the velocity;
// 0 at t >= 1 (no guidance on pure noise).
func NRGFactor(t float64) float64 {
	if t >= 1 {
		return 0
	}
	return t / (1 - t)
}

// NRG is the Flow-NRG velocity hook (a diffusion.Guidance).
type NRG struct {
	Model   rewards.NoiseAware
	Weights []float64 // (D) λ_d on raw scores (λ on z-scores divided by std_d)
	Scale   float64   // w
	Start   float64   // guidance applies for End <= t <= Start (and t < 1)
	End     float64
	Prompts []string // (B)

	Calls int // forward+backward evaluations (batched: one per guided step)

	out *kernels.Tensor
	ts  []float32
}

// NewNRG checks that m is noise-aware, parses the z-score weights spec ("vq=1,ta=0.5";
// empty: 1 each) and the window, and returns the hook for a batch with these prompts.
func NewNRG(m rewards.Model, weights string, scale, start, end float64, prompts []string) (*NRG, error) {
	if m == nil {
		return nil, errors.New("Flow-NRG: no reward model")
	}
	na, ok := m.(rewards.NoiseAware)
	if !ok {
		what := "score-only (it gives no gradient)"
		if _, diff := m.(rewards.Differentiable); diff {
			what = "differentiable but not noise-aware (it reads clean samples)"
		}
		return nil, fmt.Errorf("%w; this reward model is %s\n"+
			"---> HINT: a clean-sample reward applied to x0_hat makes guidance worse than none (VideoAlign App. E); "+
			"use it with particle steering (--particles) or best-of-N (--best-of-n), which need values only", ErrNotNoiseAware, what)
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) || scale < 0 {
		return nil, fmt.Errorf("--reward-guidance-scale must be a finite number >= 0, got %v", scale)
	}
	if !(start >= 0 && start <= 1 && end >= 0 && end <= 1) || end > start {
		return nil, fmt.Errorf("reward guidance window: want 0 <= end <= start <= 1 in t, got start %v, end %v", start, end)
	}
	w, err := rewards.ParseWeights(weights, m.Dims())
	if err != nil {
		return nil, fmt.Errorf("--reward-weights: %w", err)
	}
	if c, ok := m.(rewards.Calibrated); ok && c.Calibration() != nil {
		cal := c.Calibration()
		if err := cal.Validate(); err != nil {
			return nil, err
		}
		w = cal.RawWeights(w)
	}
	return &NRG{Model: na, Weights: w, Scale: scale, Start: start, End: end, Prompts: prompts}, nil
}

// Active reports whether the hook changes the velocity at time t.
func (g *NRG) Active(t float64) bool {
	return g.Scale != 0 && t < 1 && t <= g.Start && t >= g.End
}

// Guide implements diffusion.Guidance: v - w t/(1-t) grad_x sum_d λ_d R_d(x, t).
func (g *NRG) Guide(x, v *kernels.Tensor, step int, sigma float64) (*kernels.Tensor, error) {
	if !g.Active(sigma) {
		return v, nil
	}
	B := x.Shape[0]
	if len(g.Prompts) != B {
		return nil, fmt.Errorf("Flow-NRG: %d samples, %d prompts", B, len(g.Prompts))
	}
	g.ts = g.ts[:0]
	for range B {
		g.ts = append(g.ts, float32(sigma))
	}
	_, grad, err := g.Model.ScoreAndGrad(rewards.Batch{Pixels: x, Prompts: g.Prompts, Timesteps: g.ts}, g.Weights)
	if err != nil {
		return nil, fmt.Errorf("Flow-NRG at t = %.4g: %w", sigma, err)
	}
	g.Calls++
	if grad == nil || grad.Len() != v.Len() {
		return nil, fmt.Errorf("Flow-NRG: reward gradient of %v for a velocity of shape %v", grad, v.Shape)
	}
	dev := v.Dev
	if g.out == nil || g.out.Dev != dev || g.out.Len() < v.Len() {
		freeAll(g.out)
		g.out = dev.New(v.Len())
	}
	out := g.out.View(0, v.Shape...)
	dev.Axpby(out, 1, v, float32(-g.Scale*NRGFactor(sigma)), grad.Reshape(v.Shape...))
	return out, nil
}

// Free returns the guided velocity's buffer to its device.
func (g *NRG) Free() {
	freeAll(g.out)
	g.out = nil
}

// Chain applies several hooks in order (for example Flow-NRG, then FK steering, which then
// sees the reward-guided velocity).
type Chain []diffusion.Guidance

// Guide implements diffusion.Guidance.
func (c Chain) Guide(x, v *kernels.Tensor, step int, sigma float64) (*kernels.Tensor, error) {
	for _, g := range c {
		var err error
		if v, err = g.Guide(x, v, step, sigma); err != nil {
			return nil, err
		}
	}
	return v, nil
}
