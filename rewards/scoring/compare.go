// Paired comparison of two generators under one reward dimension: sample i of the baseline
// and of the candidate share a prompt and a seed, so the candidate's z-score is compared with
// the baseline's pair by pair (win, tie or loss) and the mean change is the mean of the paired
// differences.
//
// Test: go test ./rewards/scoring -run Compare
package scoring

import (
	"fmt"
	"math"

	"github.com/alignkit/align/diffusion/eval"
	"github.com/alignkit/align/rewards"
)

// Paired is the comparison of n paired scores, baseline b_i and candidate c_i, on one
// dimension. With d_i = c_i - b_i, pair i is a win when d_i > TieEps, a loss when
// d_i < -TieEps and a tie otherwise (|d_i| <= TieEps; TieEps 0 is exact equality).
type Paired struct {
	N      int     `json:"n"`
	Wins   int     `json:"wins"`
	Ties   int     `json:"ties"`
	Losses int     `json:"losses"`
	TieEps float64 `json:"tie_eps"`

	// WinRate = (wins + ties/2)/n, the mean of the outcomes o_i in {0, 1/2, 1}; 0.5 when the
	// candidate is as good as the baseline.
	WinRate   float64    `json:"win_rate"`
	WinRateCI [2]float64 `json:"win_rate_ci95"`

	MeanBaseline  float64 `json:"mean_baseline"`  // mean of b_i
	MeanCandidate float64 `json:"mean_candidate"` // mean of c_i
	// MeanChange is the mean of d_i (= MeanCandidate - MeanBaseline).
	MeanChange float64    `json:"mean_change"`
	ChangeCI   [2]float64 `json:"mean_change_ci95"`
}

// ComparePaired compares candidate with baseline pair by pair. Both 95% intervals are normal
// approximations over the n paired values x_i (the outcomes o_i for the win rate, the
// differences d_i for the change):
//
//	mean ± z95 · s/√n,   s² = Σ (x_i - mean)² / (n - 1),   z95 = 1.95996
//
// the win rate's clamped to [0, 1]. Pairing removes the variation between prompts and seeds
// that both samples share. With few pairs (n < 30) the interval is optimistic (Student's t
// would be wider: 2.26 instead of 1.96 at n = 10), and when every pair has the same outcome
// it has width 0. It needs n >= 2 and finite scores.
func ComparePaired(baseline, candidate []float64, tieEps float64) (Paired, error) {
	n := len(baseline)
	switch {
	case len(candidate) != n:
		return Paired{}, fmt.Errorf("compare: %d baseline scores, %d candidate scores", n, len(candidate))
	case n < 2:
		return Paired{}, fmt.Errorf("compare: %d pairs; an interval needs at least 2", n)
	case !(tieEps >= 0) || math.IsInf(tieEps, 0):
		return Paired{}, fmt.Errorf("compare: tie threshold %v, want a finite number >= 0", tieEps)
	}
	p := Paired{N: n, TieEps: tieEps}
	outcome, diff := make([]float64, n), make([]float64, n)
	for i := range n {
		b, c := baseline[i], candidate[i]
		if math.IsNaN(b) || math.IsInf(b, 0) || math.IsNaN(c) || math.IsInf(c, 0) {
			return Paired{}, fmt.Errorf("compare: pair %d has scores %v (baseline) and %v (candidate)", i, b, c)
		}
		d := c - b
		switch {
		case d > tieEps:
			p.Wins++
			outcome[i] = 1
		case d < -tieEps:
			p.Losses++
		default:
			p.Ties++
			outcome[i] = 0.5
		}
		diff[i] = d
		p.MeanBaseline += b
		p.MeanCandidate += c
	}
	p.MeanBaseline /= float64(n)
	p.MeanCandidate /= float64(n)
	var half float64
	p.WinRate, half = meanHalfWidth(outcome)
	p.WinRateCI = [2]float64{max(0, p.WinRate-half), min(1, p.WinRate+half)}
	p.MeanChange, half = meanHalfWidth(diff)
	p.ChangeCI = [2]float64{p.MeanChange - half, p.MeanChange + half}
	return p, nil
}

// meanHalfWidth returns the mean of x (len >= 2) and the half-width z95 · s/√n of its normal
// 95% interval, s the sample standard deviation.
func meanHalfWidth(x []float64) (mean, half float64) {
	n := float64(len(x))
	for _, v := range x {
		mean += v
	}
	mean /= n
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, eval.Z95 * math.Sqrt(ss/(n-1)/n)
}

// TieEpsZ returns each dimension's tie threshold in z units: the calibration's threshold on
// raw score differences (Calibration.TieEps, fitted on the validation pairs) over the
// dimension's std, since z_A - z_B = (r_A - r_B)/std; 0 (exact equality) where the
// calibration has none.
func TieEpsZ(c *rewards.Calibration) []float64 {
	eps := make([]float64, len(c.Dims))
	for d := range eps {
		if d < len(c.TieEps) && c.TieEps[d] > 0 {
			eps[d] = c.TieEps[d] / c.Std[d]
		}
	}
	return eps
}
