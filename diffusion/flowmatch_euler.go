// Flow-matching (rectified-flow) scheduler: the sigma schedule with the SD3 timestep shift,
// the noising rule and the Euler step, with diffusers' names.
//
// Conventions (algorithms.md section 1): t ≡ sigma in [0,1], sigma = 1 is pure noise;
//
//	x_sigma = (1 - sigma)*x0 + sigma*eps      (ScaleNoise)
//	v       = eps - x0                        (the model's target)
//	x0_hat  = x_sigma - sigma*v               (PredictX0)
//	Euler:    prev_sample = sample + (sigma_next - sigma)*v
//
// Test: go test ./diffusion -run FlowMatch

package diffusion

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

// FlowMatchEulerScheduler holds the inference schedule. Sigmas has NumInferenceSteps+1
// entries falling from 1 to exactly 0; Timesteps[i] = Sigmas[i]*NumTrainTimesteps is what
// the model receives as its time input.
type FlowMatchEulerScheduler struct {
	NumTrainTimesteps int       // 1000, as in diffusers
	Shift             float64   // SD3 shift: sigma' = shift*sigma / (1 + (shift-1)*sigma)
	Sigmas            []float64 // (N+1): 1 ... 0
	Timesteps         []float64 // (N): Sigmas[:N] * NumTrainTimesteps
}

// NewFlowMatchEulerScheduler returns a scheduler with the given shift (1 = no shift).
func NewFlowMatchEulerScheduler(shift float64) (*FlowMatchEulerScheduler, error) {
	if !(shift > 0) || math.IsInf(shift, 0) {
		return nil, fmt.Errorf("scheduler: shift must be a positive number, got %v", shift)
	}
	return &FlowMatchEulerScheduler{NumTrainTimesteps: 1000, Shift: shift}, nil
}

// ShiftSigma applies the SD3 timestep shift; shift > 1 spends more steps at high noise.
func ShiftSigma(sigma, shift float64) float64 {
	return shift * sigma / (1 + (shift-1)*sigma)
}

// SetTimesteps makes the schedule for numInferenceSteps steps: sigmas evenly spaced from
// 1 to 0, then shifted. Unlike diffusers, whose last sigma before the appended 0 is
// 1/NumTrainTimesteps, every step here is a full 1/N stretch of the unshifted time.
func (s *FlowMatchEulerScheduler) SetTimesteps(numInferenceSteps int) error {
	if numInferenceSteps < 1 {
		return fmt.Errorf("scheduler: --num-inference-steps must be >= 1, got %d", numInferenceSteps)
	}
	n := numInferenceSteps
	s.Sigmas = make([]float64, n+1)
	s.Timesteps = make([]float64, n)
	for i := 0; i <= n; i++ {
		s.Sigmas[i] = ShiftSigma(1-float64(i)/float64(n), s.Shift)
	}
	s.Sigmas[n] = 0
	for i := 0; i < n; i++ {
		s.Timesteps[i] = s.Sigmas[i] * float64(s.NumTrainTimesteps)
	}
	return nil
}

// Step is one Euler step, in place: sample += (sigma[i+1] - sigma[i]) * modelOutput.
func (s *FlowMatchEulerScheduler) Step(dev kernels.Device, sample, modelOutput *kernels.Tensor, i int) {
	dev.Axpy(sample, float32(s.Sigmas[i+1]-s.Sigmas[i]), modelOutput)
}

// ScaleNoise writes the noised sample x_sigma = sample + sigma*(noise - sample) with one
// sigma per row: sample, noise, out (B,D), sigmas (B). It also writes the velocity
// target v = noise - sample into target when target is not nil.
func ScaleNoise(dev kernels.Device, out, target, sample, noise, sigmas *kernels.Tensor, B, D int) {
	v := target
	if v == nil {
		v = dev.New(B, D)
		defer dev.Free(v)
	}
	dev.Axpby(v, 1, noise, -1, sample)
	dev.AddRowScaled(out, sample, sigmas, v, B, D)
}

// PredictX0 writes the clean-sample estimate x0_hat = sample - sigma*modelOutput.
func PredictX0(dev kernels.Device, out, sample, modelOutput *kernels.Tensor, sigma float64) {
	dev.Axpby(out, 1, sample, float32(-sigma), modelOutput)
}
