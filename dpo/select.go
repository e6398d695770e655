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
