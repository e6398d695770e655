// Fine-tune guidance, sampling side (algorithms.md section 6; RLG, arXiv 2508.21016): the
// velocity of a fine-tuned model extrapolated from its base's, each with classifier-free
// guidance,
//
//	v^ = v_base + w (v_ft - v_base)
//
// w = 1 is the fine-tuned model, 0 the base, w > 1 pushes on past the fine-tuning (what a
// smaller KL coefficient would have trained), 0 < w < 1 is in between. Unlike a weight-space
// mix (dpo.MergeAdapters: W + w ΔW, one pass) it is exactly linear in the velocities, at the
// cost of the base's passes.
//
// Test: go test ./guidance -run Finetune
package guidance

import (
	"fmt"
	"math"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// FinetuneGuidance evaluates v^ for one batch of prompts; Velocity is a
// diffusion.VelocityFunc.
type FinetuneGuidance struct {
	Scale float64 // w

	base, ft *diffusion.GuidedVelocity
	out      *kernels.Tensor // (B, ...)
}

// NewFinetuneGuidance prepares v^ = v_base + scale (v_ft - v_base) for prompts, each model
// with classifier-free guidance at cfgScale. base and ft must be of one architecture.
func NewFinetuneGuidance(base, ft *diffusion.DiT, prompts diffusion.Prompts, cfgScale, scale float64) (*FinetuneGuidance, error) {
	if !base.Config.Equal(&ft.Config) {
		return nil, fmt.Errorf("fine-tune guidance: the base is another model (%s)", base.Config.Diff(&ft.Config))
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("fine-tune guidance: scale %v is not a finite number", scale)
	}
	return &FinetuneGuidance{Scale: scale, base: diffusion.NewGuidedVelocity(base, prompts, nil, cfgScale),
		ft: diffusion.NewGuidedVelocity(ft, prompts, nil, cfgScale)}, nil
}

// Velocity implements diffusion.VelocityFunc. The result is valid until the next call.
func (g *FinetuneGuidance) Velocity(x *kernels.Tensor, sigma float64) *kernels.Tensor {
	dev := x.Dev
	if g.out == nil || g.out.Len() != x.Len() {
		freeAll(g.out)
		g.out = dev.New(x.Shape...)
	}
	vb := g.base.Velocity(x, sigma) // a buffer of the base model's: the fine-tuned pass leaves it
	vf := g.ft.Velocity(x, sigma)
	w := float32(g.Scale)
	dev.Axpby(g.out, w, vf, 1-w, vb) // v_base + w (v_ft - v_base)
	return g.out
}

// Free returns the guidance's buffers to the device.
func (g *FinetuneGuidance) Free() {
	g.base.Free()
	g.ft.Free()
	freeAll(g.out)
	g.out = nil
}
