// Building preference data from scored candidates (align pairs): the pair of one prompt's
// candidates, and the JSONL writers whose output ReadPairs and ReadScored read back.
//
// The pair of a prompt's K candidates with z-scores z (K, D) and weights w:
//
//	linear, unit-direction, lsc   u = rewards.Combine(...); chosen = argmax u, rejected = argmin u
//	pareto                        chosen from the first Pareto front, rejected from the last
//	                              (rewards.ParetoFronts), each picked by the linear sum within
//	                              its front (the best of the first, the worst of the last)
//
// (first index on ties). A prompt whose candidates are all equally good (equal u, or a
// single front) gives no pair. Options (Selection): k pairs per prompt, the i-th best against
// the i-th worst, and a minimum utility margin. As flow_grpo's DPO (best against worst of 24 SDE samples per
// prompt) and Parrot (arXiv 2401.05675) for the Pareto variant.
//
// Test: go test ./dpo -run 'Select|Write'

package dpo

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"

	"github.com/alignkit/align/rewards"
)

// Selection is how the pairs of one prompt's candidates are chosen.
type Selection struct {
	Weights     []float64 // one per dimension (rewards.ParseWeights)
	Combine     string    // rewards.Combiners
	LSCQuantile float64   // lsc: the per-prompt reference quantile
	// PairsPerPrompt k > 1 pairs the i-th best candidate with the i-th worst, i < k, with
	// distinct candidates (at most K/2 pairs of K): more pairs from the same samples. Scalar
	// combiners only. 0 means 1.
	PairsPerPrompt int
	// MinMargin drops a pair whose combined utilities differ by less (u_chosen - u_rejected <
	// MinMargin; the linear sum for pareto): its label is the least certain. 0 keeps every
	// decisive pair.
	MinMargin float64
}

// SelectPairs returns the (chosen, rejected) candidates among z (K, D) (see the file header
// and Selection); none when the candidates are all equally good.
func SelectPairs(z [][]float64, s Selection) ([][2]int, error) {
	k := max(s.PairsPerPrompt, 1)
	if len(z) < 2 {
		return nil, nil
	}
	keep := func(u []float64, c, r int) bool { return u[c] > u[r] && u[c]-u[r] >= s.MinMargin }
	if s.Combine == rewards.CombinePareto {
		if k > 1 {
			return nil, fmt.Errorf("%d pairs per prompt: the pareto combiner gives one (first front against last)", k)
		}
		fronts, err := rewards.ParetoFronts(z, s.Weights)
		if err != nil {
			return nil, err
		}
		if len(fronts) < 2 {
			return nil, nil
		}
		u := rewards.Linear(z, s.Weights)
		c, r := argBy(fronts[0], u, true), argBy(fronts[len(fronts)-1], u, false)
		if u[c]-u[r] < s.MinMargin {
			return nil, nil
		}
		return [][2]int{{c, r}}, nil
	}
	var ref [][]float64
	if s.Combine == rewards.CombineLogSigmoid {
		var err error
		if ref, err = rewards.PromptReference(z, make([]string, len(z)), s.LSCQuantile); err != nil {
			return nil, err
		}
	}
	u, err := rewards.Combine(s.Combine, z, s.Weights, ref)
	if err != nil {
		return nil, err
	}
	// best: by u descending, worst: ascending, the first index first on ties in both. The
	// i-th pair is (best[i], worst[i]) for i < K/2: a candidate could only be in two pairs
	// within a group of equal u, whose pairs are not decisive and are dropped.
	best, worst := make([]int, len(z)), make([]int, len(z))
	for i := range best {
		best[i], worst[i] = i, i
	}
	slices.SortStableFunc(best, func(a, b int) int { return cmp.Compare(u[b], u[a]) })
	slices.SortStableFunc(worst, func(a, b int) int { return cmp.Compare(u[a], u[b]) })
	var pairs [][2]int
	for i := 0; i < k && i < len(z)/2; i++ {
		if c, r := best[i], worst[i]; keep(u, c, r) {
			pairs = append(pairs, [2]int{c, r})
		}
	}
	return pairs, nil
}

// PromptPairs selects the pairs of one prompt's scored candidates (all of one prompt, in
// candidate order) with SelectPairs; none when they are all equally good.
func PromptPairs(cands []Scored, dims []string, s Selection) ([]Pair, error) {
	z := make([][]float64, len(cands))
	for k, c := range cands {
		z[k] = c.Scores
	}
	sel, err := SelectPairs(z, s)
	if err != nil {
		return nil, err
	}
	pairs := make([]Pair, len(sel))
	for i, cr := range sel {
		c, r := cr[0], cr[1]
		pairs[i] = Pair{Prompt: cands[c].Prompt, Chosen: cands[c].Path, Rejected: cands[r].Path,
			ChosenScores: dimMap(dims, z[c]), RejectedScores: dimMap(dims, z[r]), Seed: cands[c].Seed,
			ChosenIndex: cands[c].Index, RejectedIndex: cands[r].Index}
	}
	return pairs, nil
}

// PairsFromScored selects the pairs of every prompt of a scored set (prompts in order of
// first appearance), so that one scored run gives pairs for any selection without sampling
// again. noPair counts the prompts that give none.
func PairsFromScored(set *ScoredSet, s Selection) (pairs []Pair, noPair int, err error) {
	var order []string
	groups := map[string][]Scored{}
	for _, it := range set.Items {
		if _, seen := groups[it.Prompt]; !seen {
			order = append(order, it.Prompt)
		}
		groups[it.Prompt] = append(groups[it.Prompt], it)
	}
	for _, prompt := range order {
		ps, err := PromptPairs(groups[prompt], set.Dims, s)
		if err != nil {
			return nil, 0, fmt.Errorf("prompt %q: %w", prompt, err)
		}
		if len(ps) == 0 {
			noPair++
		}
		pairs = append(pairs, ps...)
	}
	return pairs, noPair, nil
}

// dimMap names the values of one sample's dimensions.
func dimMap(dims []string, v []float64) map[string]float64 {
	m := make(map[string]float64, len(dims))
	for d, name := range dims {
		m[name] = v[d]
	}
	return m
}

// argBy returns the member of idx with the largest (max) or smallest u, the first on ties.
func argBy(idx []int, u []float64, max bool) int {
	best := idx[0]
	for _, i := range idx[1:] {
		if max && u[i] > u[best] || !max && u[i] < u[best] {
			best = i
		}
	}
	return best
}

// relPath writes p relative to dir when it can, with forward slashes.
func relPath(dir, p string) string {
	if dir != "" {
		if r, err := filepath.Rel(dir, p); err == nil {
			return filepath.ToSlash(r)
		}
	}
	return filepath.ToSlash(p)
}

// WritePairsJSONL writes pairs in the pairs JSONL format, their paths relative to dir (the
// directory of the file being written; "" keeps them as they are).
func WritePairsJSONL(w io.Writer, pairs []Pair, dir string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, p := range pairs {
		prompt, chosen, rejected := p.Prompt, relPath(dir, p.Chosen), relPath(dir, p.Rejected)
		l := pairLine{Prompt: &prompt, Chosen: &chosen, Rejected: &rejected, ChosenScores: p.ChosenScores,
			RejectedScores: p.RejectedScores, Seed: p.Seed, ChosenIndex: p.ChosenIndex, RejectedIndex: p.RejectedIndex}
		if len(p.Labels) > 0 {
			l.Labels = map[string]string{}
			for d, lab := range p.Labels {
				l.Labels[d] = lab.String()
			}
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

// WriteScoredJSONL writes a scored set in its JSONL format, paths relative to dir.
func WriteScoredJSONL(w io.Writer, set *ScoredSet, dir string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range set.Items {
		if len(it.Scores) != len(set.Dims) {
			return fmt.Errorf("scored sample %s: %d scores for %d dimensions", it.Path, len(it.Scores), len(set.Dims))
		}
		prompt, path := it.Prompt, relPath(dir, it.Path)
		l := scoredLine{Prompt: &prompt, Image: &path, Scores: map[string]float64{}, Seed: it.Seed, Index: it.Index}
		for d, name := range set.Dims {
			l.Scores[name] = it.Scores[d]
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}
