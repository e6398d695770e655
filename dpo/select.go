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
// single front) gives no pair. As flow_grpo's DPO (best against worst of 24 SDE samples per
// prompt) and Parrot (arXiv 2401.05675) for the Pareto variant.
//
// Test: go test ./dpo -run 'Select|Write'

package dpo

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/alignkit/align/rewards"
)

// SelectPair returns the chosen and rejected candidates among z (K, D) (see the file
// header); ok is false when the candidates are all equally good. lscQuantile is the
// per-prompt reference quantile of the lsc combiner.
func SelectPair(z [][]float64, w []float64, combine string, lscQuantile float64) (chosen, rejected int, ok bool, err error) {
	if len(z) < 2 {
		return 0, 0, false, nil
	}
	if combine == rewards.CombinePareto {
		fronts, err := rewards.ParetoFronts(z, w)
		if err != nil {
			return 0, 0, false, err
		}
		if len(fronts) < 2 {
			return 0, 0, false, nil
		}
		u := rewards.Linear(z, w)
		return argBy(fronts[0], u, true), argBy(fronts[len(fronts)-1], u, false), true, nil
	}
	var ref [][]float64
	if combine == rewards.CombineLogSigmoid {
		same := make([]string, len(z))
		if ref, err = rewards.PromptReference(z, same, lscQuantile); err != nil {
			return 0, 0, false, err
		}
	}
	u, err := rewards.Combine(combine, z, w, ref)
	if err != nil {
		return 0, 0, false, err
	}
	all := make([]int, len(z))
	for i := range all {
		all[i] = i
	}
	chosen, rejected = argBy(all, u, true), argBy(all, u, false)
	if u[chosen] == u[rejected] {
		return 0, 0, false, nil
	}
	return chosen, rejected, true, nil
}

// PromptPair selects the pair of one prompt's scored candidates (all of one prompt, in
// candidate order) with SelectPair; ok is false when they are all equally good.
func PromptPair(cands []Scored, dims []string, w []float64, combine string, lscQuantile float64) (p Pair, ok bool, err error) {
	z := make([][]float64, len(cands))
	for k, c := range cands {
		z[k] = c.Scores
	}
	c, r, ok, err := SelectPair(z, w, combine, lscQuantile)
	if !ok || err != nil {
		return Pair{}, false, err
	}
	return Pair{Prompt: cands[c].Prompt, Chosen: cands[c].Path, Rejected: cands[r].Path,
		ChosenScores: dimMap(dims, z[c]), RejectedScores: dimMap(dims, z[r]), Seed: cands[c].Seed,
		ChosenIndex: cands[c].Index, RejectedIndex: cands[r].Index}, true, nil
}

// PairsFromScored selects one pair per prompt of a scored set (prompts in order of first
// appearance), so that one scored run gives pairs for any weights and combiner without
// sampling again. noPair counts the prompts whose candidates are all equally good.
func PairsFromScored(set *ScoredSet, w []float64, combine string, lscQuantile float64) (pairs []Pair, noPair int, err error) {
	var order []string
	groups := map[string][]Scored{}
	for _, it := range set.Items {
		if _, seen := groups[it.Prompt]; !seen {
			order = append(order, it.Prompt)
		}
		groups[it.Prompt] = append(groups[it.Prompt], it)
	}
	for _, prompt := range order {
		p, ok, err := PromptPair(groups[prompt], set.Dims, w, combine, lscQuantile)
		if err != nil {
			return nil, 0, fmt.Errorf("prompt %q: %w", prompt, err)
		}
		if !ok {
			noPair++
			continue
		}
		pairs = append(pairs, p)
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
