// Combiners: turning per-dimension rewards (z-scored, (B, D)) and per-run weights into one
// utility per sample, or into Pareto fronts.
//
// Test: go test ./rewards -run 'Combine|Linear|Unit|LogSigmoid|Pareto|Reference'
package rewards

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

// Combiner names, as --combine takes them.
const (
	CombineLinear        = "linear"
	CombineUnitDirection = "unit-direction"
	CombineLogSigmoid    = "lsc"
	CombinePareto        = "pareto"
)

// Combiners lists the combiner names.
var Combiners = []string{CombineLinear, CombineUnitDirection, CombineLogSigmoid, CombinePareto}

// Linear is the weighted sum u_b = sum_d w_d z_bd (Flow-NRG's λ_d, VideoReward's Overall with
// w = 1).
func Linear(z [][]float64, w []float64) []float64 {
	u := make([]float64, len(z))
	for b, row := range z {
		mustLen("Linear", row, w)
		for d, v := range row {
			u[b] += w[d] * v
		}
	}
	return u
}

// UnitDirection normalises weights to a unit preference direction v = w/||w||_2 (DPA,
// Wang et al. 2024, arXiv 2402.18571). It fails for an all-zero w.
func UnitDirection(w []float64) ([]float64, error) {
	n := 0.0
	for _, v := range w {
		n += v * v
	}
	n = math.Sqrt(n)
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) {
		return nil, fmt.Errorf("unit direction of weights %v: norm %v", w, n)
	}
	v := make([]float64, len(w))
	for d := range w {
		v[d] = w[d] / n
	}
	return v, nil
}

// Directional is u_b = v^T z_b with v = UnitDirection(w): the projection of the z-scored
// reward vector on the preference direction. Only z-scored rewards make the angle meaningful.
func Directional(z [][]float64, w []float64) ([]float64, error) {
	v, err := UnitDirection(w)
	if err != nil {
		return nil, err
	}
	return Linear(z, v), nil
}

// LogSigmoid is log σ(x) = -log(1 + e^{-x}), computed without overflow.
func LogSigmoid(x float64) float64 {
	if x < 0 {
		return x - math.Log1p(math.Exp(x))
	}
	return -math.Log1p(math.Exp(-x))
}

// LogSigmoidTerms returns u_bd = log σ(z_bd - ref_bd), the log-probability that sample b beats
// its reference in dimension d (Wang et al., "Transforming and Combining Rewards for
// Aligning Large Language Models", ICML 2024, arXiv 2402.00742). ref has z's shape; it is a
// per-prompt reference such as PromptReference.
func LogSigmoidTerms(z, ref [][]float64) [][]float64 {
	if len(ref) != len(z) {
		panic(fmt.Sprintf("rewards: LogSigmoidTerms: %d samples, %d references", len(z), len(ref)))
	}
	out := make([][]float64, len(z))
	for b, row := range z {
		mustLen("LogSigmoidTerms", row, ref[b])
		out[b] = make([]float64, len(row))
		for d, v := range row {
			out[b][d] = LogSigmoid(v - ref[b][d])
		}
	}
	return out
}

// LogSigmoidSum is u_b = sum_d w_d log σ(z_bd - ref_bd). With w = 1 it is the log of the
// probability of being better than the reference in every dimension at once ("good in all"):
// diminishing returns once a dimension is past its reference, which discourages hacking one
// dimension at the expense of the others.
func LogSigmoidSum(z, ref [][]float64, w []float64) []float64 {
	return Linear(LogSigmoidTerms(z, ref), w)
}

// PromptReference returns, for every sample, the q-quantile (0 <= q <= 1, linear
// interpolation between order statistics) of each dimension over the samples that share its
// prompt: the per-prompt reference r_ref,d of the log-sigmoid transform (the paper uses a
// high quantile of base-model samples, e.g. q = 0.85).
func PromptReference(z [][]float64, prompts []string, q float64) ([][]float64, error) {
	if len(prompts) != len(z) {
		return nil, fmt.Errorf("prompt reference: %d samples, %d prompts", len(z), len(prompts))
	}
	if !(q >= 0 && q <= 1) {
		return nil, fmt.Errorf("prompt reference: quantile %v outside [0, 1]", q)
	}
	groups := map[string][]int{}
	for b, p := range prompts {
		groups[p] = append(groups[p], b)
	}
	ref := make([][]float64, len(z))
	for _, idx := range groups {
		D := len(z[idx[0]])
		vals := make([]float64, len(idx))
		r := make([]float64, D)
		for d := range D {
			for i, b := range idx {
				mustLen("PromptReference", z[b], r)
				vals[i] = z[b][d]
			}
			r[d] = Quantile(vals, q)
		}
		for _, b := range idx {
			ref[b] = slices.Clone(r)
		}
	}
	return ref, nil
}

// Quantile returns the q-quantile of vals (sorted in place) with linear interpolation:
// position h = q*(n-1), value x[floor h] + (h - floor h)(x[floor h + 1] - x[floor h])
// (numpy's default "linear" method).
func Quantile(vals []float64, q float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	sort.Float64s(vals)
	h := q * float64(len(vals)-1)
	lo := int(math.Floor(h))
	if lo >= len(vals)-1 {
		return vals[len(vals)-1]
	}
	return vals[lo] + (h-float64(lo))*(vals[lo+1]-vals[lo])
}

// ParetoFronts sorts samples into non-dominated fronts (Deb et al. 2002, NSGA-II's fast
// non-dominated sort, O(N^2 D)), as Parrot (Lee et al., ECCV 2024, arXiv 2401.05675) selects
// its updates. Only dimensions with w_d != 0 count, oriented by the sign of w_d: with
// a_bd = sign(w_d) z_bd, sample i dominates j when a_i >= a_j in every counted dimension and
// a_i > a_j in at least one. Front 0 is the non-dominated set; front k is non-dominated
// once fronts 0..k-1 are removed. Every sample is in exactly one front; indices within a
// front are ascending. Equal vectors share a front.
func ParetoFronts(z [][]float64, w []float64) ([][]int, error) {
	var dims []int
	for d, v := range w {
		if v != 0 {
			dims = append(dims, d)
		}
	}
	if len(dims) == 0 {
		return nil, errors.New("pareto fronts: all weights are zero")
	}
	N := len(z)
	a := make([][]float64, N)
	for i, row := range z {
		mustLen("ParetoFronts", row, w)
		a[i] = make([]float64, len(dims))
		for k, d := range dims {
			a[i][k] = math.Copysign(1, w[d]) * row[d]
		}
	}
	dominates := func(i, j int) bool {
		strict := false
		for k := range dims {
			if a[i][k] < a[j][k] {
				return false
			}
			if a[i][k] > a[j][k] {
				strict = true
			}
		}
		return strict
	}
	dominatedBy := make([]int, N) // how many samples dominate i
	beats := make([][]int, N)     // the samples i dominates
	for i := range N {
		for j := i + 1; j < N; j++ {
			switch {
			case dominates(i, j):
				beats[i] = append(beats[i], j)
				dominatedBy[j]++
			case dominates(j, i):
				beats[j] = append(beats[j], i)
				dominatedBy[i]++
			}
		}
	}
	var fronts [][]int
	var cur []int
	for i := range N {
		if dominatedBy[i] == 0 {
			cur = append(cur, i)
		}
	}
	for len(cur) > 0 {
		fronts = append(fronts, cur)
		var next []int
		for _, i := range cur {
			for _, j := range beats[i] {
				dominatedBy[j]--
				if dominatedBy[j] == 0 {
					next = append(next, j)
				}
			}
		}
		sort.Ints(next)
		cur = next
	}
	return fronts, nil
}

// ParetoRanks returns each sample's front index (0 = non-dominated).
func ParetoRanks(z [][]float64, w []float64) ([]int, error) {
	fronts, err := ParetoFronts(z, w)
	if err != nil {
		return nil, err
	}
	rank := make([]int, len(z))
	for k, f := range fronts {
		for _, i := range f {
			rank[i] = k
		}
	}
	return rank, nil
}

// Combine applies the named combiner to z-scored rewards z (B, D) with weights w (D):
//
//	linear          u = sum_d w_d z_d
//	unit-direction  u = v^T z, v = w/||w||
//	lsc             u = sum_d w_d log σ(z_d - ref_d); ref (B, D) per prompt (PromptReference)
//	pareto          u = -(front index): 0 for the non-dominated set, -1 for the next front...
//
// ref is read only by lsc. Higher u is better for every combiner; pareto's ties within a
// front are left to the caller (for example broken by the linear sum).
func Combine(kind string, z [][]float64, w []float64, ref [][]float64) ([]float64, error) {
	switch kind {
	case CombineLinear:
		return Linear(z, w), nil
	case CombineUnitDirection:
		return Directional(z, w)
	case CombineLogSigmoid:
		if ref == nil {
			return nil, errors.New("combine lsc: no per-prompt reference")
		}
		return LogSigmoidSum(z, ref, w), nil
	case CombinePareto:
		rank, err := ParetoRanks(z, w)
		if err != nil {
			return nil, err
		}
		u := make([]float64, len(rank))
		for i, r := range rank {
			u[i] = -float64(r)
		}
		return u, nil
	}
	return nil, fmt.Errorf("unknown combiner %q (known: %v)", kind, Combiners)
}

func mustLen(op string, row, w []float64) {
	if len(row) != len(w) {
		panic(fmt.Sprintf("rewards: %s: %d values for %d dimensions", op, len(row), len(w)))
	}
}
