// One micro-batch of preference fine-tuning through the DiT: noising, the frozen reference's
// pass, the policy's forward and backward, for Flow-DPO (pairs) and for Flow-RWR / SFT
// (weighted samples).
//
// Flow-DPO, P pairs as one batch of 2P samples (winners 0..P-1, losers P..2P-1):
//
//	t_i  ~ density (P draws from the run's RNG), eps_i ~ N(0, I) (P*D draws)
//	x_t  = (1 - t_i) x0 + t_i eps_i   for the winner AND the loser of pair i (same t_i, eps_i)
//	e_ref   = MSE(v_ref(x_t), eps - x0)     the reference: LoRA switched off, or a frozen copy
//	e_theta = MSE(v_theta(x_t), eps - x0)   then backward with dL/de_theta from DPOLoss
//
// The reference runs first and its errors are copied to the host, so a LoRA model can be its
// own reference (nn/doc.go: a forward-only pass of a layer precedes the pass whose Backward
// follows). Flow-RWR and SFT draw one t and one eps per sample and weight the per-sample
// errors; SFT is RWR with weight 1 on the winners.
//
// Test: go test ./dpo -run 'Step|Shared|Reference'

package dpo

import (
	"fmt"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Reference is the frozen model Flow-DPO compares the policy with.
type Reference interface {
	// Velocity runs the reference on a batch; the result may be a view of a model buffer,
	// valid until that model's next Forward.
	Velocity(xt *kernels.Tensor, t []float32, ids []int32, lengths []int) *kernels.Tensor
}

// LoRAReference is the policy with its adapters switched off: the frozen base.
type LoRAReference struct {
	Model  *diffusion.DiT
	Layers []*nn.Linear // the adapted layers
}

// Velocity switches the adapters off, runs the model and switches them on again.
func (r *LoRAReference) Velocity(xt *kernels.Tensor, t []float32, ids []int32, lengths []int) *kernels.Tensor {
	SetLoRAEnabled(r.Layers, false)
	defer SetLoRAEnabled(r.Layers, true)
	return r.Model.ForwardNoGrad(xt, t, ids, lengths, nil)
}

// CopyReference is a separate frozen copy of the starting weights (full fine-tuning).
type CopyReference struct{ Model *diffusion.DiT }

// Velocity runs the copy.
func (r *CopyReference) Velocity(xt *kernels.Tensor, t []float32, ids []int32, lengths []int) *kernels.Tensor {
	return r.Model.ForwardNoGrad(xt, t, ids, lengths, nil)
}

// ensure returns t if it has the shape, else a new zero tensor of it (freeing t).
func ensure(dev kernels.Device, t *kernels.Tensor, shape ...int) *kernels.Tensor {
	if t != nil {
		if slices.Equal(t.Shape, shape) {
			return t
		}
		dev.Free(t)
	}
	return dev.New(shape...)
}

// noiser draws times and noise and builds x_t and the velocity target.
type noiser struct {
	Times diffusion.Objective // the time density and shift; dropouts are not used
	dev   kernels.Device
	eps   *kernels.Tensor // (n, D)
	xt    *kernels.Tensor // x0's shape
	tgt   *kernels.Tensor // x0's shape
	tt    *kernels.Tensor // (B)
	ts32  []float32       // (B)
}

// noise fills xt and tgt for x0 (B, ...). With pairs, B = 2P and the P draws of t and eps
// are used for samples i and P+i alike; otherwise each sample has its own. It returns the
// B times.
func (s *noiser) noise(rng *kernels.RNG, x0 *kernels.Tensor, pairs bool) []float64 {
	dev := s.dev
	B := x0.Shape[0]
	D := x0.Len() / B
	n := B
	if pairs {
		if B%2 != 0 {
			panic(fmt.Sprintf("dpo: %d samples do not form pairs", B))
		}
		n = B / 2
	}
	ts := s.Times.SampleTimesteps(rng, n)
	s.eps = ensure(dev, s.eps, n, D)
	rng.Normal(s.eps)
	if pairs {
		ts = append(ts, ts...)
	}
	s.ts32 = s.ts32[:0]
	for _, t := range ts {
		s.ts32 = append(s.ts32, float32(t))
	}
	s.tt = ensure(dev, s.tt, B)
	dev.CopyFromHost(s.tt, s.ts32)
	s.xt = ensure(dev, s.xt, x0.Shape...)
	s.tgt = ensure(dev, s.tgt, x0.Shape...)
	xt, tgt, x := s.xt.Reshape(B, D), s.tgt.Reshape(B, D), x0.Reshape(B, D)
	if pairs {
		for h := range 2 {
			o := h * n * D
			diffusion.ScaleNoise(dev, xt.View(o, n, D), tgt.View(o, n, D), x.View(o, n, D), s.eps, s.tt.View(h*n, n), n, D)
		}
	} else {
		diffusion.ScaleNoise(dev, xt, tgt, x, s.eps, s.tt, B, D)
	}
	return ts
}

// PairBatch is P pairs as one batch of 2P samples.
type PairBatch struct {
	X0      *kernels.Tensor   // (2P, SampleShape...) winners, then losers, in [-1, 1]
	Prompts diffusion.Prompts // 2P captions: the P prompts twice
	Tie     []bool            // (P) or nil
}

// DPOStep runs Flow-DPO micro-batches.
type DPOStep struct {
	noiser
	Beta     float64 // --beta-dpo
	Schedule string  // BetaConst or BetaOneMinusTSq
	mseRef   *nn.MSELoss
	mse      *nn.MSELoss
	dloss    *kernels.Tensor
	host     []float32
}

// NewDPOStep returns a step runner on dev.
func NewDPOStep(dev kernels.Device, times diffusion.Objective, beta float64, schedule string) *DPOStep {
	return &DPOStep{noiser: noiser{Times: times, dev: dev}, Beta: beta, Schedule: schedule,
		mseRef: nn.NewMSELoss(dev), mse: nn.NewMSELoss(dev)}
}

// ForwardBackward draws t and eps for the pairs, runs the reference, then the policy
// forward and backward, accumulating (+=) scale times the gradient of the loss into the
// policy's parameter gradients (scale = 1/gradient_accumulation_steps). The result's loss
// and metrics are unscaled.
func (s *DPOStep) ForwardBackward(policy *diffusion.DiT, ref Reference, rng *kernels.RNG, b *PairBatch, scale float64) DPOResult {
	dev := s.dev
	B := b.X0.Shape[0]
	if len(b.Prompts.Lengths) != B || B%2 != 0 || (b.Tie != nil && len(b.Tie) != B/2) {
		panic(fmt.Sprintf("dpo: DPOStep: x0 %v with %d captions and %d tie flags", b.X0, len(b.Prompts.Lengths), len(b.Tie)))
	}
	P := B / 2
	ts := s.noise(rng, b.X0, true)
	ids, lengths := b.Prompts.IDs, b.Prompts.Lengths

	eRef := s.errors(s.mseRef, ref.Velocity(s.xt, s.ts32, ids, lengths), B)
	v := policy.Forward(s.xt, s.ts32, ids, lengths, nil)
	eModel := s.errors(s.mse, v, B)

	betas := make([]float64, P)
	for i := range P {
		betas[i] = BetaAt(s.Schedule, s.Beta, ts[i])
	}
	res := DPOLoss(eModel, eRef, betas, b.Tie)
	s.host = s.host[:0]
	for _, g := range res.DModel {
		s.host = append(s.host, float32(g*scale))
	}
	s.dloss = ensure(dev, s.dloss, B)
	dev.CopyFromHost(s.dloss, s.host)
	policy.BackwardParams(s.mse.Backward(s.dloss))
	return res
}

// errors returns the per-sample MSE of v against the target on the host.
func (s *noiser) errorsOf(l *nn.MSELoss, v *kernels.Tensor, B int, host []float32) []float64 {
	e := l.Forward(v, s.tgt)
	s.dev.CopyToHost(host[:B], e)
	out := make([]float64, B)
	for i := range out {
		out[i] = float64(host[i])
	}
	return out
}

func (s *DPOStep) errors(l *nn.MSELoss, v *kernels.Tensor, B int) []float64 {
	if cap(s.host) < B {
		s.host = make([]float32, B)
	}
	return s.errorsOf(l, v, B, s.host[:B])
}

// RWRResult is one weighted micro-batch's loss and metrics.
type RWRResult struct {
	Loss       float64   // (1/B) sum_b w_b e_b
	MSE        float64   // (1/B) sum_b e_b, unweighted
	WeightMean float64   // (1/B) sum_b w_b
	Errors     []float64 // (B) e_b
}

// RWRStep runs Flow-RWR and SFT micro-batches.
type RWRStep struct {
	noiser
	mse   *nn.MSELoss
	dloss *kernels.Tensor
	host  []float32
}

// NewRWRStep returns a step runner on dev.
func NewRWRStep(dev kernels.Device, times diffusion.Objective) *RWRStep {
	return &RWRStep{noiser: noiser{Times: times, dev: dev}, mse: nn.NewMSELoss(dev)}
}

// ForwardBackward draws one t and eps per sample of x0 (B, ...), runs the policy forward
// and backward and accumulates scale times the gradient of (1/B) sum_b w_b e_b.
func (s *RWRStep) ForwardBackward(policy *diffusion.DiT, rng *kernels.RNG, x0 *kernels.Tensor, prompts diffusion.Prompts,
	weights []float64, scale float64) RWRResult {
	B := x0.Shape[0]
	if len(prompts.Lengths) != B || len(weights) != B {
		panic(fmt.Sprintf("dpo: RWRStep: x0 %v with %d captions and %d weights", x0, len(prompts.Lengths), len(weights)))
	}
	s.noise(rng, x0, false)
	v := policy.Forward(s.xt, s.ts32, prompts.IDs, prompts.Lengths, nil)
	if cap(s.host) < B {
		s.host = make([]float32, B)
	}
	e := s.errorsOf(s.mse, v, B, s.host[:B])
	res := RWRResult{Errors: e}
	s.host = s.host[:B]
	for b := range B {
		res.Loss += weights[b] * e[b]
		res.MSE += e[b]
		res.WeightMean += weights[b]
		s.host[b] = float32(weights[b] / float64(B) * scale)
	}
	res.Loss /= float64(B)
	res.MSE /= float64(B)
	res.WeightMean /= float64(B)
	s.dloss = ensure(s.dev, s.dloss, B)
	s.dev.CopyFromHost(s.dloss, s.host)
	policy.BackwardParams(s.mse.Backward(s.dloss))
	return res
}
