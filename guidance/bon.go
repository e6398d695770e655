// Best-of-N (algorithms.md section 7): generate N candidates per output, score each clean
// sample with any reward (native or ONNX; values only) and keep the best under the run's
// combiner. The candidates of output g are samples g*N .. g*N+N-1; the combiner sees only
// its own group (lsc's per-prompt reference and pareto's fronts are taken within it).
// Ties in the utility (pareto's fronts) go to the higher linear sum of the z-scores, then
// to the lower index. Reward calls per output: N.
//
// Test: go test ./guidance -run 'BestOfN|Gather'

package guidance

import (
	"fmt"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// BoNResult is the outcome of a best-of-N selection.
type BoNResult struct {
	Selected []int           // (groups) the row kept for each output
	Utility  []float64       // (B) combined reward of every candidate
	Scores   *rewards.Scores // (B) per-dimension scores
}

// BestOfN scores x (B = groups*n candidates, group-major) and selects one per group.
func BestOfN(s *Scorer, x *kernels.Tensor, prompts []string, n int) (*BoNResult, error) {
	if n < 1 {
		return nil, fmt.Errorf("--best-of-n must be >= 1, got %d", n)
	}
	B := x.Shape[0]
	if B != len(prompts) || B%n != 0 {
		return nil, fmt.Errorf("best-of-N: %d samples, %d prompts, groups of %d", B, len(prompts), n)
	}
	u, sc, err := s.Utility(x, prompts, n)
	if err != nil {
		return nil, err
	}
	lin := rewards.Linear(sc.Z, s.Weights)
	res := &BoNResult{Utility: u, Scores: sc}
	for lo := 0; lo < B; lo += n {
		best := lo
		for b := lo + 1; b < lo+n; b++ {
			if u[b] > u[best] || (u[b] == u[best] && lin[b] > lin[best]) {
				best = b
			}
		}
		res.Selected = append(res.Selected, best)
	}
	return res, nil
}

// Gather returns a new tensor (len(rows), ...) holding rows of x in the given order.
func Gather(x *kernels.Tensor, rows []int) *kernels.Tensor {
	dev := x.Dev
	B := x.Shape[0]
	D := x.Len() / B
	out := dev.New(append([]int{len(rows)}, x.Shape[1:]...)...)
	for i, r := range rows {
		dev.Copy(out.View(i*D, D), x.View(r*D, D))
	}
	return out
}
