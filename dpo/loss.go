// The losses of preference fine-tuning on per-sample velocity errors, computed on the host
// (one value per sample): Flow-DPO with its beta schedules and its metrics, and the
// per-prompt softmax weights of Flow-RWR.
//
// Flow-DPO (VideoAlign, arXiv 2501.13918, Eq. 6 and App. C; Diffusion-DPO, Wallace et al.,
// arXiv 2311.12908, for the epsilon form). For pair i with winner w and loser l, both noised
// with the same t_i and the same eps_i, and per-sample mean squared errors
// e = (1/D) ||v - v(x_t, t)|| ^2 of the policy (theta) and the frozen reference (ref):
//
//	inside_i = -(beta_i/2) [ (e_theta^w - e_ref^w) - (e_theta^l - e_ref^l) ]
//	L_i      = -log sigmoid(inside_i)                                    decisive pairs
//	L_i      = -(1/2) [ log sigmoid(inside_i) + log sigmoid(-inside_i) ]  ties (kept)
//	L        = (1/P) sum_i L_i
//	implicit_acc = fraction of decisive pairs with inside_i > 0 (exactly 0 counts as wrong)
//
// beta_i = beta (const, VideoAlign's choice) or beta (1 - t_i)^2 (one-minus-t-sq, their
// Lemma B.1, which they found to over-align at high noise). A tie pair's loss is smallest
// at inside = 0 (the policy moves both samples alike); it is align's choice, the paper has
// no ties. At the start the policy is the reference, inside = 0 and L = ln 2 for every pair.
//
// Gradients (s(x) = 1/(1+e^-x)):
//
//	dL/d e_theta^w = +(beta_i/2) g_i / P,   dL/d e_theta^l = -(beta_i/2) g_i / P
//	g_i = s(-inside_i)  (decisive),   g_i = -(1/2) tanh(inside_i/2)  (tie)
//
// Flow-RWR (VideoAlign Eq. 7-9; the softmax per prompt group as Flow-GRPO's App. C.1 states
// it): weight w_i = softmax_{j in group(i)}(r_j / temperature), scaled by N/G (N samples, G
// groups; N for one global softmax) so the weights average 1 and a batch's loss
// (1/B) sum_b w_b e_b is on the flow-matching loss's scale. No (1 - t)^2 factor.
//
// Test: go test ./dpo -run 'Loss|Beta|RWR|Softmax'

package dpo

import (
	"fmt"
	"math"
	"slices"
)

// Beta schedules (--beta-schedule).
const (
	BetaConst       = "const"
	BetaOneMinusTSq = "one-minus-t-sq"
)

// BetaSchedules lists the accepted --beta-schedule values.
var BetaSchedules = []string{BetaConst, BetaOneMinusTSq}

// BetaAt returns beta_t of the schedule: beta (const) or beta (1-t)^2 (one-minus-t-sq).
func BetaAt(schedule string, beta, t float64) float64 {
	if schedule == BetaOneMinusTSq {
		return beta * (1 - t) * (1 - t)
	}
	return beta
}

// sigmoid is 1/(1+e^-x) without overflow.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// softplus is log(1+e^x) = -log sigmoid(-x) without overflow.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// DPOResult is the Flow-DPO loss of P pairs, its gradient and its metrics.
type DPOResult struct {
	Loss   float64   // (1/P) sum_i L_i
	DModel []float64 // (2P) dL/d e_theta, winners then losers
	Inside []float64 // (P)

	// Metrics: means over the P pairs (ImplicitAcc over the decisive ones).
	ImplicitAcc float64 // fraction of decisive pairs with inside > 0; 0 when there are none
	Decisive    int     // pairs that are not ties
	MeanInside  float64
	ModelMSEW   float64 // e_theta^w
	ModelMSEL   float64 // e_theta^l
	RefMSEW     float64 // e_ref^w
	RefMSEL     float64 // e_ref^l
	WDiff       float64 // e_theta^w - e_ref^w (negative: the policy fits the winners better)
	LDiff       float64 // e_theta^l - e_ref^l
	Beta        float64 // mean beta_i
}

// DPOLoss evaluates Flow-DPO (see the file header) on per-sample errors of the policy and
// the reference, eModel and eRef (2P: winners 0..P-1, then losers), with per-pair betas
// (P) and tie flags (P, or nil for no ties).
func DPOLoss(eModel, eRef, betas []float64, tie []bool) DPOResult {
	P := len(betas)
	if len(eModel) != 2*P || len(eRef) != 2*P || (tie != nil && len(tie) != P) {
		panic(fmt.Sprintf("dpo: DPOLoss: %d model and %d reference errors, %d betas, %d tie flags", len(eModel), len(eRef), P, len(tie)))
	}
	r := DPOResult{DModel: make([]float64, 2*P), Inside: make([]float64, P)}
	if P == 0 {
		return r
	}
	correct := 0
	for i := range P {
		b := betas[i]
		wd, ld := eModel[i]-eRef[i], eModel[P+i]-eRef[P+i]
		in := -(b / 2) * (wd - ld)
		r.Inside[i] = in
		var g float64
		if tie != nil && tie[i] {
			r.Loss += 0.5 * (softplus(-in) + softplus(in))
			g = -0.5 * math.Tanh(in/2)
		} else {
			r.Loss += softplus(-in)
			g = sigmoid(-in)
			r.Decisive++
			if in > 0 {
				correct++
			}
		}
		r.DModel[i] = b / 2 * g / float64(P)
		r.DModel[P+i] = -b / 2 * g / float64(P)
		r.MeanInside += in
		r.ModelMSEW += eModel[i]
		r.ModelMSEL += eModel[P+i]
		r.RefMSEW += eRef[i]
		r.RefMSEL += eRef[P+i]
		r.WDiff += wd
		r.LDiff += ld
		r.Beta += b
	}
	n := float64(P)
	r.Loss /= n
	r.MeanInside /= n
	r.ModelMSEW /= n
	r.ModelMSEL /= n
	r.RefMSEW /= n
	r.RefMSEL /= n
	r.WDiff /= n
	r.LDiff /= n
	r.Beta /= n
	if r.Decisive > 0 {
		r.ImplicitAcc = float64(correct) / float64(r.Decisive)
	}
	return r
}

// RWRWeights returns the Flow-RWR weights of rewards r (N): a softmax of r/temperature within
// each group (groups[i] names sample i's group, normally its prompt), or over all samples
// when groups is nil, scaled so that the weights average 1 (see the file header).
func RWRWeights(r []float64, groups []string, temperature float64) ([]float64, error) {
	N := len(r)
	if groups != nil && len(groups) != N {
		return nil, fmt.Errorf("rwr weights: %d rewards, %d groups", N, len(groups))
	}
	if !(temperature > 0) || math.IsInf(temperature, 0) {
		return nil, fmt.Errorf("--temperature must be a positive number, got %v", temperature)
	}
	for i, v := range r {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("rwr weights: reward %d is %v", i, v)
		}
	}
	members := map[string][]int{}
	var order []string
	for i := range N {
		g := ""
		if groups != nil {
			g = groups[i]
		}
		if _, ok := members[g]; !ok {
			order = append(order, g)
		}
		members[g] = append(members[g], i)
	}
	w := make([]float64, N)
	scale := float64(N) / float64(len(order))
	for _, g := range order {
		idx := members[g]
		mx := math.Inf(-1)
		for _, i := range idx {
			mx = math.Max(mx, r[i]/temperature)
		}
		sum := 0.0
		for _, i := range idx {
			w[i] = math.Exp(r[i]/temperature - mx)
			sum += w[i]
		}
		for _, i := range idx {
			w[i] *= scale / sum
		}
	}
	return w, nil
}

// BestOfGroups returns, for each group in order of first appearance, the index of the
// sample with the highest reward (the first one on ties): the winners that the SFT
// baseline trains on.
func BestOfGroups(r []float64, groups []string) []int {
	best := map[string]int{}
	var order []string
	for i, g := range groups {
		j, ok := best[g]
		if !ok {
			order = append(order, g)
			best[g] = i
		} else if r[i] > r[j] {
			best[g] = i
		}
	}
	out := make([]int, len(order))
	for k, g := range order {
		out[k] = best[g]
	}
	slices.Sort(out)
	return out
}
