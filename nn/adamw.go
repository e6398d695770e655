// AdamW: the optimizer over a model's []Param, with per-parameter moments on the device,
// a name rule for weight decay, and exported state for checkpoints; ZeroGrad.
//
// Test: go test ./nn -run AdamW

package nn

import (
	"fmt"
	"strings"

	"github.com/alignkit/align/kernels"
)

// AdamW is decoupled-weight-decay Adam (Loshchilov & Hutter, 2019, arXiv 1711.05101).
// Each Step updates every trainable parameter p with gradient g (kernels.AdamWParams):
//
//	p -= lr*wd*p                         (only where Decay says so)
//	m  = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g^2
//	p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
//
// Set LR before each Step for warmup or decay schedules. Frozen parameters (G nil) at
// construction time are left out.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32 // e.g. 1e-4, 0.9, 0.999, 1e-8, 0.01

	// Steps counts the updates done; the next Step uses t = Steps+1 for bias correction.
	// A checkpoint saves and restores it with the moments (State).
	Steps int

	Params []Param           // the trainable parameters, in the order given
	M, V   []*kernels.Tensor // first and second moments, shaped like each parameter
	Decay  []bool            // whether weight decay applies to each parameter
}

// AdamWConfig holds the hyper-parameters, taken as they are (a zero beta is a zero beta);
// DefaultAdamWConfig has the usual values.
type AdamWConfig struct {
	LR          float32
	Beta1       float32
	Beta2       float32
	Eps         float32
	WeightDecay float32 // 0 means none
	// Decay reports whether a parameter is decayed, from its name; nil means DecayByName.
	Decay func(name string) bool
}

// DefaultAdamWConfig returns LR 1e-4, DefaultAdamBetas, no weight decay.
func DefaultAdamWConfig() AdamWConfig {
	return (&TrainLoop{LearningRate: 1e-4}).AdamW(DefaultAdamBetas())
}

// DecayByName is the default weight-decay rule: decay every parameter except biases (last
// name component "bias") and normalisation parameters (a name component that contains
// "norm", is "ln" or starts with "ln_").
func DecayByName(name string) bool {
	parts := strings.Split(name, ".")
	if parts[len(parts)-1] == "bias" {
		return false
	}
	for _, p := range parts {
		lp := strings.ToLower(p)
		if strings.Contains(lp, "norm") || lp == "ln" || strings.HasPrefix(lp, "ln_") {
			return false
		}
	}
	return true
}

// NewAdamW allocates zero moments on dev for every parameter of ps that has a gradient.
func NewAdamW(dev kernels.Device, ps []Param, cfg AdamWConfig) *AdamW {
	o := &AdamW{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay}
	decay := cfg.Decay
	if decay == nil {
		decay = DecayByName
	}
	for _, p := range ps {
		if p.G == nil {
			continue
		}
		if !kernels.SameShape(p.W, p.G) {
			panic(fmt.Sprintf("nn: NewAdamW: %s value %v and gradient %v differ", p.Name, p.W, p.G))
		}
		o.Params = append(o.Params, p)
		o.M = append(o.M, dev.New(p.W.Shape...))
		o.V = append(o.V, dev.New(p.W.Shape...))
		o.Decay = append(o.Decay, decay(p.Name))
	}
	return o
}

// Step applies one update to every parameter with the current LR and increments Steps.
// It does not clear the gradients (ZeroGrad does).
func (o *AdamW) Step() { o.StepScaled(1) }

// StepScaled is Step with every gradient multiplied by gradScale as the update reads it
// (ClipScale's factor; the gradients themselves are not changed).
func (o *AdamW) StepScaled(gradScale float32) {
	o.Steps++
	if len(o.Params) == 0 {
		return
	}
	params, grads := make([]*kernels.Tensor, len(o.Params)), make([]*kernels.Tensor, len(o.Params))
	hs := make([]kernels.AdamWParams, len(o.Params))
	for i, p := range o.Params {
		params[i], grads[i] = p.W, p.G
		hs[i] = kernels.AdamWParams{LR: o.LR, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, Step: o.Steps, GradScale: gradScale}
		if o.Decay[i] {
			hs[i].WeightDecay = o.WeightDecay
		}
	}
	// One call for all parameters (one launch on a GPU); they share a device.
	o.Params[0].W.Dev.AdamWEach(params, grads, o.M, o.V, hs)
}

// State lists the moment tensors by name, "<param>.exp_avg" (m) and "<param>.exp_avg_sq"
// (v) (PyTorch's names), for a checkpoint to save, or to fill in place when resuming
// (restore Steps too). The tensors are the optimizer's own, not copies.
func (o *AdamW) State() []Param {
	st := make([]Param, 0, 2*len(o.Params))
	for i, p := range o.Params {
		st = append(st, Param{Name: p.Name + ".exp_avg", W: o.M[i]}, Param{Name: p.Name + ".exp_avg_sq", W: o.V[i]})
	}
	return st
}

// ZeroGrad sets every gradient of ps to zero (frozen parameters are skipped), in one
// FillEach.
func ZeroGrad(ps []Param) {
	var gs []*kernels.Tensor
	for _, p := range ps {
		if p.G != nil {
			gs = append(gs, p.G)
		}
	}
	if len(gs) > 0 {
		gs[0].Dev.FillEach(gs, 0)
	}
}

// ClipScale returns the global L2 norm of the gradients of ps and the factor that clips it
// to maxNorm (kernels.ClipScale; 1 where the norm is below, or not finite so that the caller
// skips the step). The gradients are not changed: pass the factor to AdamW.StepScaled.
// Frozen parameters are skipped.
func ClipScale(ps []Param, maxNorm float64) (norm float64, scale float32) {
	var gs []*kernels.Tensor
	for _, p := range ps {
		if p.G != nil {
			gs = append(gs, p.G)
		}
	}
	if len(gs) == 0 {
		return 0, 1
	}
	return kernels.ClipScale(gs[0].Dev, gs, maxNorm)
}
