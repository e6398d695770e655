// Package guidance steers a flow-matching sampler towards high reward at inference time,
// without changing the generator's weights (algorithms.md sections 5 to 8). Files (each
// with its test beside it):
//
//	scorer.go      a clean-sample reward (native or ONNX) as one utility per sample, with
//	               per-dimension weights and a combiner; reward calls counted
//	nrg.go         Flow-NRG: v - w t/(1-t) grad_x sum_d λ_d r_d(x_t, t, y) with a noise-aware
//	               latent reward model, after CFG, none at t = 1
//	fk.go          Feynman-Kac particle steering on the SDE sampler: potentials diff, max,
//	               add, rt; ESS; multinomial or systematic resampling; final correction
//	bon.go         best-of-N with any reward and any combiner
//	rewardcond.go  reward as a condition: --reward-condition parsing and classifier-free
//	               guidance over reward conditions, joint or per dimension
//	finetune.go    fine-tune guidance: a fine-tuned model's velocity extrapolated from its
//	               base's, v_base + w (v_ft - v_base)
//
// Everything plugs into diffusion.Sample: NRG and FK are diffusion.Guidance hooks (called
// after classifier-free guidance on every velocity evaluation), RewardCFG and
// FinetuneGuidance are SampleOptions.Velocity functions, best-of-N selects among finished
// samples.
//
// Conventions (algorithms.md section 1): t ≡ sigma in [0, 1], t = 1 is pure noise,
// x_t = (1-t) x0 + t eps, v = eps - x0, x0_hat = x_t - t v, sampling from t = 1 to 0.
// Samples are in the generator's range [-1, 1], which is what reward models read.
//
// Shape legend: B samples (B = groups * particles or candidates), D reward dimensions,
// k particles per output, N candidates per output.
//
// Device memory: NRG, FK, RewardCFG and Scorer keep buffers on the samples' device between
// calls; their Free returns them (a GPU's memory is not reclaimed by the garbage collector),
// and a buffer of the wrong size is freed when it is replaced.
//
// Test: go test ./guidance
package guidance

import "github.com/alignkit/align/kernels"

// freeAll returns the non-nil tensors to their devices.
func freeAll(ts ...*kernels.Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Dev.Free(t)
		}
	}
}
