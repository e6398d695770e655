// Samplers of the flow-matching ODE and SDE over the scheduler (flowmatch_euler.go,
// flowmatch_sde.go): Euler, Heun and the stochastic step, with classifier-free guidance in
// one batch of 2B and seeded initial noise, diffusers' names for the options.
//
// With sigmas 1 = s_0 > s_1 > ... > s_N = 0 (SetTimesteps with the shift) and v(x, s) the
// guided velocity:
//
//	euler   x <- x + (s_{i+1} - s_i) v(x, s_i)
//	heun    x' = x + dt v1, v1 = v(x, s_i);  x <- x + dt (v1 + v(x', s_{i+1}))/2
//	        (the last step, to s_N = 0, is an Euler step: 2N-1 evaluations in all)
//	sde     x <- mean + std xi (SDEStep, noise level a); the last step is an Euler step so
//	        the output carries no fresh noise
//
// Classifier-free guidance (guidance_scale s > 1): the conditional and unconditional halves
// (caption, reward condition) and (empty prompt, all reward dimensions ∅) run as one batch
// of 2B and v = v_uncond + s (v_cond - v_uncond). s <= 1 runs the conditional branch only.
//
// Guidance (SampleOptions.Guidance) is called on every velocity evaluation, after
// classifier-free guidance, with the current sample and its velocity; it returns the
// velocity to step with (reward-gradient guidance) and may rewrite rows of both (particle
// resampling). SampleOptions.Velocity replaces the batched CFG evaluation itself (CFG over
// reward conditions). Both live in package guidance.
//
// Seeds: sample i of a run draws from its own Philox stream, key seed and counter blocks
// starting at i*2^32 (its initial noise first, then the SDE noise of each step), so an image
// depends only on (seed, i) and not on how many are generated together.
//
// Test: go test ./diffusion -run Sample

package diffusion

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/alignkit/align/kernels"
)

// Sampler names (--sampler).
const (
	SamplerEuler = "euler"
	SamplerHeun  = "heun"
	SamplerSDE   = "sde"
)

// Samplers lists the accepted --sampler values.
var Samplers = []string{SamplerEuler, SamplerHeun, SamplerSDE}

// SampleOptions are the knobs of a sampling run (diffusers' pipeline names).
type SampleOptions struct {
	NumInferenceSteps int     // default 28
	GuidanceScale     float64 // classifier-free guidance; <= 1 disables it
	Shift             float64 // SD3 timestep shift; 0 takes the model config's
	Seed              uint64  // initial noise (and SDE noise) of sample i: Philox(seed) from block i*2^32
	FirstIndex        int     // index of the first sample in its run's stream numbering
	Sampler           string  // euler (default), heun or sde
	NoiseLevel        float64 // the SDE's a; 0 means 0.7
	// Reward is the reward condition of each sample (B*D, NaN = ∅), or nil (all ∅).
	Reward []float32
	// Latents, when set, is the initial noise x_1 (B, SampleShape...) instead of the seed's.
	Latents *kernels.Tensor
	// Progress, when set, is called after each step with (steps done, steps).
	Progress func(done, total int)
	// Velocity, when set, builds the velocity function from the model and the encoded
	// prompts instead of NewGuidedVelocity (GuidanceScale and Reward are then its business).
	Velocity func(m *DiT, prompts Prompts) VelocityFunc
	// Guidance, when set, adjusts every velocity evaluation after classifier-free guidance.
	Guidance Guidance
}

// Guidance adjusts the guided velocity v of x (B, SampleShape...) at sigma = Sigmas[step]
// (for Heun's second evaluation, step is the index of its sigma too). It returns the
// velocity to step with, which may be v itself; it may also rewrite rows of x and v in
// place, as particle resampling does. An error stops the guidance: later evaluations use
// the plain velocity and Sample returns the first error.
type Guidance interface {
	Guide(x, v *kernels.Tensor, step int, sigma float64) (*kernels.Tensor, error)
}

// DefaultSampleOptions: 28 Euler steps, guidance 4.0, the model's shift, seed 0.
func DefaultSampleOptions() SampleOptions {
	return SampleOptions{NumInferenceSteps: 28, GuidanceScale: 4, Sampler: SamplerEuler}
}

// Validate checks the options (model-independent parts).
func (o *SampleOptions) Validate() error {
	if o.NumInferenceSteps < 1 {
		return fmt.Errorf("--num-inference-steps must be >= 1, got %d", o.NumInferenceSteps)
	}
	if o.GuidanceScale < 0 || math.IsNaN(o.GuidanceScale) || math.IsInf(o.GuidanceScale, 0) {
		return fmt.Errorf("--guidance-scale must be a finite number >= 0, got %v", o.GuidanceScale)
	}
	if o.Shift < 0 || math.IsNaN(o.Shift) || math.IsInf(o.Shift, 0) {
		return fmt.Errorf("--shift must be a finite number > 0 (or 0 for the model's default), got %v", o.Shift)
	}
	if o.Sampler == "" {
		o.Sampler = SamplerEuler
	}
	if !slices.Contains(Samplers, o.Sampler) {
		return fmt.Errorf("--sampler %q: want one of %s", o.Sampler, strings.Join(Samplers, ", "))
	}
	if o.NoiseLevel < 0 || math.IsNaN(o.NoiseLevel) {
		return fmt.Errorf("SDE noise level must be >= 0, got %v", o.NoiseLevel)
	}
	return nil
}

// VelocityFunc returns the (guided) velocity for x (B, SampleShape...) at time sigma. The
// result may be a view of a model buffer, valid until the next call.
type VelocityFunc func(x *kernels.Tensor, sigma float64) *kernels.Tensor

// GuidedVelocity evaluates a DiT with classifier-free guidance (see the file header).
type GuidedVelocity struct {
	Model         *DiT
	Cond          Prompts   // B captions
	Reward        []float32 // (B*D) or nil
	GuidanceScale float64

	both   Prompts   // cond then uncond captions (2B)
	rBoth  []float32 // cond then ∅ rewards (2B*D)
	x2     buffer    // (2B, ...)
	out    buffer    // (B, ...)
	ts     []float32
	hasCFG bool
	text   *TextCond // the captions encoded at the first step (Cond, or both with CFG)
}

// NewGuidedVelocity prepares the batched conditional/unconditional evaluation.
func NewGuidedVelocity(m *DiT, cond Prompts, reward []float32, scale float64) *GuidedVelocity {
	g := &GuidedVelocity{Model: m, Cond: cond, Reward: reward, GuidanceScale: scale, hasCFG: scale > 1}
	B, L := len(cond.Lengths), m.Config.MaxTextLen
	if g.hasCFG {
		null := NullPrompts(B, L)
		g.both = Prompts{IDs: append(slices.Clone(cond.IDs), null.IDs...), Lengths: append(slices.Clone(cond.Lengths), null.Lengths...)}
		if reward != nil {
			g.rBoth = append(slices.Clone(reward), make([]float32, len(reward))...)
			for i := len(reward); i < len(g.rBoth); i++ {
				g.rBoth[i] = float32(math.NaN())
			}
		}
	}
	return g
}

// Free returns the evaluation's buffers to the device (device memory is not reclaimed by
// the garbage collector).
func (g *GuidedVelocity) Free() {
	g.x2.free()
	g.out.free()
	if g.text != nil {
		g.text.Free()
		g.text = nil
	}
}

// Velocity implements VelocityFunc.
func (g *GuidedVelocity) Velocity(x *kernels.Tensor, sigma float64) *kernels.Tensor {
	m, dev := g.Model, g.Model.dev
	B := x.Shape[0]
	g.ts = g.ts[:0]
	if !g.hasCFG {
		for range B {
			g.ts = append(g.ts, float32(sigma))
		}
		if g.text == nil {
			g.text = m.EncodeText(g.Cond.IDs, g.Cond.Lengths)
		}
		return m.ForwardText(x, g.ts, g.text, g.Reward)
	}
	for range 2 * B {
		g.ts = append(g.ts, float32(sigma))
	}
	n := x.Len()
	x2 := g.x2.get(dev, append([]int{2 * B}, x.Shape[1:]...)...)
	dev.Copy(x2.View(0, n), x)
	dev.Copy(x2.View(n, n), x)
	if g.text == nil {
		g.text = m.EncodeText(g.both.IDs, g.both.Lengths)
	}
	v2 := m.ForwardText(x2, g.ts, g.text, g.rBoth)
	out := g.out.get(dev, x.Shape...)
	s := float32(g.GuidanceScale)
	dev.Axpby(out, s, v2.View(0, n), 1-s, v2.View(n, n)) // v_u + s (v_c - v_u)
	return out
}

// sampleStreams returns the RNG of each sample (see the file header).
func sampleStreams(seed uint64, first, B int) []*kernels.RNG {
	rs := make([]*kernels.RNG, B)
	for i := range rs {
		rs[i] = &kernels.RNG{Seed: seed, Offset: uint64(first+i) << 32}
	}
	return rs
}

// InitialNoise draws x_1 (B, SampleShape...) for samples first..first+B-1 of seed.
func InitialNoise(dev kernels.Device, cfg *ModelConfig, B int, seed uint64, first int) *kernels.Tensor {
	x := dev.New(cfg.BatchShape(B)...)
	D := cfg.SampleSize()
	for i, r := range sampleStreams(seed, first, B) {
		r.Normal(x.View(i*D, D))
	}
	return x
}

// Denoise integrates x (B, ...) in place from sigma 1 to 0 with the scheduler's sigmas and
// the named sampler; streams (one per sample, continued after the initial noise) feed the
// SDE noise. progress may be nil.
func Denoise(dev kernels.Device, sched *FlowMatchEulerScheduler, x *kernels.Tensor, vel VelocityFunc,
	sampler string, noiseLevel float64, streams []*kernels.RNG, progress func(done, total int)) {
	N := len(sched.Timesteps)
	B := x.Shape[0]
	D := x.Len() / B
	var v1, xp, noise, prev *kernels.Tensor
	switch sampler {
	case SamplerHeun:
		v1, xp = dev.New(x.Shape...), dev.New(x.Shape...)
		defer dev.Free(v1)
		defer dev.Free(xp)
	case SamplerSDE:
		noise, prev = dev.New(x.Shape...), dev.New(x.Shape...)
		defer dev.Free(noise)
		defer dev.Free(prev)
	}
	for i := range N {
		sigma, next := sched.Sigmas[i], sched.Sigmas[i+1]
		dt := float32(next - sigma)
		v := vel(x, sigma)
		switch {
		case sampler == SamplerHeun && next > 0:
			dev.Copy(v1, v)
			dev.Axpby(xp, 1, x, dt, v1)
			v2 := vel(xp, next)
			dev.Axpy(x, dt/2, v1)
			dev.Axpy(x, dt/2, v2)
		case sampler == SamplerSDE && next > 0:
			for b, r := range streams {
				r.Normal(noise.View(b*D, D))
			}
			sched.SDEStep(dev, prev, x, v, noise, i, noiseLevel)
			dev.Copy(x, prev)
		default:
			sched.Step(dev, x, v, i)
		}
		if progress != nil {
			progress(i+1, N)
		}
	}
}

// Sample generates one sample per caption with model m and returns them (B,
// SampleShape...) in the model's range ([-1, 1] for data prepared as align's datasets
// are), together with the encoded prompts (whose Unknown lists out-of-vocabulary words).
func Sample(m *DiT, captions []string, o SampleOptions) (*kernels.Tensor, Prompts, error) {
	if err := o.Validate(); err != nil {
		return nil, Prompts{}, err
	}
	if m.Tokenizer == nil {
		return nil, Prompts{}, fmt.Errorf("model has no tokenizer")
	}
	B := len(captions)
	if B == 0 {
		return nil, Prompts{}, fmt.Errorf("no prompts to sample")
	}
	if o.Reward != nil {
		if m.Reward == nil {
			return nil, Prompts{}, fmt.Errorf("the model has no reward-condition slot")
		}
		if len(o.Reward) != B*len(m.Config.RewardDims) {
			return nil, Prompts{}, fmt.Errorf("%d reward values for %d samples of %d dimensions", len(o.Reward), B, len(m.Config.RewardDims))
		}
	}
	shift := o.Shift
	if shift == 0 {
		shift = m.Config.Shift
	}
	sched, err := NewFlowMatchEulerScheduler(shift)
	if err != nil {
		return nil, Prompts{}, err
	}
	if err := sched.SetTimesteps(o.NumInferenceSteps); err != nil {
		return nil, Prompts{}, err
	}
	noiseLevel := o.NoiseLevel
	if noiseLevel == 0 {
		noiseLevel = 0.7
	}
	dev := m.dev
	prompts := EncodePrompts(m.Tokenizer, captions)
	streams := sampleStreams(o.Seed, o.FirstIndex, B)
	x := dev.New(m.Config.BatchShape(B)...)
	D := m.Config.SampleSize()
	if o.Latents != nil {
		if !slices.Equal(o.Latents.Shape, x.Shape) {
			return nil, Prompts{}, fmt.Errorf("latents %v, want shape %v", o.Latents.Shape, x.Shape)
		}
		dev.Copy(x, o.Latents)
		for _, r := range streams {
			r.Offset += uint64(D+3) / 4 // the SDE noise continues where seeded noise would
		}
	} else {
		for i, r := range streams {
			r.Normal(x.View(i*D, D))
		}
	}
	var vel VelocityFunc
	if o.Velocity != nil {
		vel = o.Velocity(m, prompts)
	} else {
		g := NewGuidedVelocity(m, prompts, o.Reward, o.GuidanceScale)
		defer g.Free()
		vel = g.Velocity
	}
	var gerr error
	if o.Guidance != nil {
		base := vel
		vel = func(x *kernels.Tensor, sigma float64) *kernels.Tensor {
			v := base(x, sigma)
			if gerr != nil {
				return v
			}
			step := slices.Index(sched.Sigmas, sigma)
			out, err := o.Guidance.Guide(x, v, step, sigma)
			if err != nil {
				gerr = err
				return v
			}
			return out
		}
	}
	Denoise(dev, sched, x, vel, o.Sampler, noiseLevel, streams, o.Progress)
	if gerr != nil {
		dev.Free(x)
		return nil, Prompts{}, gerr
	}
	return x, prompts, nil
}
