// Reward as a condition, sampling side (algorithms.md section 6; MRaC, arXiv 2411.04713):
// the DiT's reward-condition slot (diffusion/reward_embed.go) takes one target value per
// dimension, NaN for a dropped dimension (∅), and classifier-free guidance over the reward
// condition steers towards the targets.
//
// --reward-condition "vq=max,ta=4.5": named dimensions get the value (a z-score, the scale
// the slot is trained on); "max" is the largest value the model saw in training when the
// caller knows it, else DefaultRewardConditionMax; dimensions not named stay ∅.
//
// Guidance, with the text condition c and the text-unconditional branch (∅, ∅_r) when the
// text guidance scale s > 1:
//
//	base          v_b = v(∅,∅_r) + s [v(c,∅_r) - v(∅,∅_r)]      (v_b = v(c,∅_r) when s <= 1)
//	joint         v^ = v_b + w [v(c,r*) - v(c,∅_r)]                          (2 or 3 passes)
//	per dimension v^ = v_b + sum_d w [v(c,r*_d,∅_{-d}) - v(c,∅_r)]  over named d (1 + D (+1) passes)
//
// With s <= 1 these are exactly the section's formulas v(c,∅_r) + w[...]. All passes run as
// one batch through the model.
//
// Test: go test ./guidance -run RewardCond

package guidance

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// DefaultRewardConditionMax is what "max" means when the model carries no training maximum:
// z = 3, about the 99.9th percentile of a standard normal, the top of the range the slot's
// sinusoidal embedding is scaled for.
const DefaultRewardConditionMax = 3.0

// ParseRewardCondition reads "name=value|max,..." against the model's reward dimensions and
// returns one target per dimension (NaN = ∅ for those not named). maxes (D) are the
// training maxima, or nil (DefaultRewardConditionMax); a NaN entry also falls back.
func ParseRewardCondition(spec string, dims []string, maxes []float64) ([]float32, error) {
	if len(dims) == 0 {
		return nil, fmt.Errorf("--reward-condition: the model has no reward-condition slot\n" +
			"---> HINT: reward conditions need a model pretrained with --reward-dims and fine-tuned to use them")
	}
	out := make([]float32, len(dims))
	for i := range out {
		out[i] = float32(math.NaN())
	}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("--reward-condition is empty: give targets such as %s=max", dims[0])
	}
	seen := make([]bool, len(dims))
	for _, entry := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(entry, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" || val == "" {
			return nil, fmt.Errorf("--reward-condition %q: entry %q is not name=value or name=max", spec, strings.TrimSpace(entry))
		}
		d := -1
		for i, dn := range dims {
			if strings.EqualFold(dn, name) {
				d = i
			}
		}
		if d < 0 {
			return nil, fmt.Errorf("--reward-condition %q: the model has no reward dimension %q (it has: %s)", spec, name, strings.Join(dims, ", "))
		}
		if seen[d] {
			return nil, fmt.Errorf("--reward-condition %q: dimension %q given twice", spec, dims[d])
		}
		seen[d] = true
		if strings.EqualFold(val, "max") {
			v := DefaultRewardConditionMax
			if maxes != nil && d < len(maxes) && !math.IsNaN(maxes[d]) {
				v = maxes[d]
			}
			out[d] = float32(v)
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		// |v| past float32's range would become Inf in the float32 condition.
		if err != nil || math.IsNaN(v) || math.Abs(v) > math.MaxFloat32 {
			return nil, fmt.Errorf("--reward-condition %q: value %q of %s is not a finite number or max", spec, val, dims[d])
		}
		out[d] = float32(v)
	}
	return out, nil
}

// RewardCFG evaluates classifier-free guidance over reward conditions (see the file header)
// as a diffusion.VelocityFunc.
type RewardCFG struct {
	Model        *diffusion.DiT
	Cond         diffusion.Prompts // (B) captions
	Target       []float32         // (D) r*, NaN = ∅
	TextScale    float64           // s
	RewardScale  float64           // w
	PerDimension bool

	passes  []rcPass
	ids     []int32
	lengths []int
	r       []float32
	ts      []float32
	xs      *kernels.Tensor
	out     *kernels.Tensor
	text    *diffusion.TextCond // ids and lengths encoded at the first evaluation
}

// rcPass is one branch of the batch: text conditional or not, and its reward condition.
type rcPass struct {
	text bool
	r    []float32 // (D)
}

// NewRewardCFG checks the target against the model and lays out the passes.
func NewRewardCFG(m *diffusion.DiT, cond diffusion.Prompts, target []float32, textScale, rewardScale float64, perDim bool) (*RewardCFG, error) {
	D := len(m.Config.RewardDims)
	if m.Reward == nil || D == 0 {
		return nil, fmt.Errorf("reward-condition guidance: the model has no reward-condition slot")
	}
	if len(target) != D {
		return nil, fmt.Errorf("reward-condition guidance: %d targets for %d dimensions", len(target), D)
	}
	if math.IsNaN(rewardScale) || math.IsInf(rewardScale, 0) || rewardScale < 0 {
		return nil, fmt.Errorf("--reward-condition-scale must be a finite number >= 0, got %v", rewardScale)
	}
	null := func() []float32 {
		r := make([]float32, D)
		for i := range r {
			r[i] = float32(math.NaN())
		}
		return r
	}
	g := &RewardCFG{Model: m, Cond: cond, Target: target, TextScale: textScale, RewardScale: rewardScale, PerDimension: perDim}
	g.passes = append(g.passes, rcPass{text: true, r: null()})
	if textScale > 1 {
		g.passes = append(g.passes, rcPass{text: false, r: null()})
	}
	named := 0
	for d, v := range target {
		if math.IsNaN(float64(v)) {
			continue
		}
		named++
		if perDim {
			r := null()
			r[d] = v
			g.passes = append(g.passes, rcPass{text: true, r: r})
		}
	}
	if named == 0 {
		return nil, fmt.Errorf("reward-condition guidance: every dimension is ∅")
	}
	if !perDim {
		g.passes = append(g.passes, rcPass{text: true, r: append([]float32(nil), target...)})
	}
	B, L := len(cond.Lengths), m.Config.MaxTextLen
	nullP := diffusion.NullPrompts(B, L)
	for _, p := range g.passes {
		src := cond
		if !p.text {
			src = nullP
		}
		g.ids = append(g.ids, src.IDs...)
		g.lengths = append(g.lengths, src.Lengths...)
		for range B {
			g.r = append(g.r, p.r...)
		}
	}
	return g, nil
}

// Passes is the number of model branches per evaluation.
func (g *RewardCFG) Passes() int { return len(g.passes) }

// Free returns the batched input's, the output's and the encoded captions' buffers to their
// device.
func (g *RewardCFG) Free() {
	freeAll(g.xs, g.out)
	g.xs, g.out = nil, nil
	if g.text != nil {
		g.text.Free()
		g.text = nil
	}
}

// Velocity implements diffusion.VelocityFunc.
func (g *RewardCFG) Velocity(x *kernels.Tensor, sigma float64) *kernels.Tensor {
	m := g.Model
	dev := m.Device()
	B, P, n := x.Shape[0], len(g.passes), x.Len()
	if g.xs == nil || g.xs.Len() != P*n {
		g.Free()
		g.xs = dev.New(append([]int{P * B}, x.Shape[1:]...)...)
		g.out = dev.New(x.Shape...)
	}
	g.ts = g.ts[:0]
	for p := range P {
		dev.Copy(g.xs.View(p*n, n), x)
		for range B {
			g.ts = append(g.ts, float32(sigma))
		}
	}
	if g.text == nil {
		g.text = m.EncodeText(g.ids, g.lengths)
	}
	v := m.ForwardText(g.xs, g.ts, g.text, g.r)
	base := v.View(0, n) // (c, ∅_r)
	next := 1
	out := g.out
	if g.TextScale > 1 {
		s := float32(g.TextScale)
		dev.Axpby(out, s, base, 1-s, v.View(n, n)) // v(∅) + s (v(c) - v(∅))
		next = 2
	} else {
		dev.Copy(out, base)
	}
	w := float32(g.RewardScale)
	for p := next; p < P; p++ {
		dev.Axpy(out, w, v.View(p*n, n))
		dev.Axpy(out, -w, base)
	}
	return out
}
