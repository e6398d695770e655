// The stochastic (SDE) step of the flow-matching sampler, with its closed-form Gaussian
// transition. Particle methods (FK steering) need it: a deterministic ODE sampler makes
// resampled copies of a particle identical for ever after.
//
// For sigma = Sigmas[i] -> sigma' = Sigmas[i+1], dt = sigma' - sigma < 0, noise level a
// (flow_grpo's SDE, algorithms.md section 7):
//
//	s    = a*sqrt(sigma/(1-sigma))        (at sigma = 1 the denominator uses 1 - Sigmas[1])
//	mean = x*(1 + s^2/(2 sigma)*dt) + v*(1 + s^2*(1-sigma)/(2 sigma))*dt
//	x'   = mean + s*sqrt(-dt)*xi,  xi ~ N(0, I)
//
// a = 0 gives back the Euler step.
//
// Test: go test ./diffusion -run SDE

package diffusion

import (
	"math"

	"github.com/alignkit/align/kernels"
)

// SDETransition returns the coefficients of step i: mean = cx*x + cv*v, and std.
func (s *FlowMatchEulerScheduler) SDETransition(i int, noiseLevel float64) (cx, cv, std float64) {
	sigma, next := s.Sigmas[i], s.Sigmas[i+1]
	dt := next - sigma
	den := 1 - sigma
	if sigma >= 1 {
		den = 1 - s.Sigmas[1]
	}
	if den <= 0 { // a one-step schedule: 1 -> 0 has no interior sigma to borrow
		return 1, dt, 0
	}
	st := noiseLevel * math.Sqrt(sigma/den)
	cx = 1 + st*st/(2*sigma)*dt
	cv = (1 + st*st*(1-sigma)/(2*sigma)) * dt
	return cx, cv, st * math.Sqrt(-dt)
}

// SDEStep writes prev = mean + std*noise for step i and returns std. noise is a N(0,1)
// tensor of the sample's shape drawn by the caller (so the caller's RNG owns the stream).
func (s *FlowMatchEulerScheduler) SDEStep(dev kernels.Device, prev, sample, modelOutput, noise *kernels.Tensor,
	i int, noiseLevel float64) (std float64) {
	cx, cv, std := s.SDETransition(i, noiseLevel)
	dev.Axpby(prev, float32(cx), sample, float32(cv), modelOutput)
	if std > 0 {
		dev.Axpy(prev, float32(std), noise)
	}
	return std
}

// GaussianLogProb returns, for each of the B rows of x (B,D), the log density of x under
// N(mean, std^2 I): sum_d -(x-mean)^2/(2 std^2) - log std - log(2 pi)/2. It copies both
// tensors to the host (B*D values), which is cheap next to a model evaluation.
func GaussianLogProb(dev kernels.Device, x, mean *kernels.Tensor, std float64, B, D int) []float64 {
	hx := make([]float32, B*D)
	hm := make([]float32, B*D)
	dev.CopyToHost(hx, x)
	dev.CopyToHost(hm, mean)
	out := make([]float64, B)
	norm := -math.Log(std) - 0.5*math.Log(2*math.Pi)
	for b := range B {
		var ss float64
		for d := range D {
			r := float64(hx[b*D+d]) - float64(hm[b*D+d])
			ss += r * r
		}
		out[b] = -ss/(2*std*std) + float64(D)*norm
	}
	return out
}
