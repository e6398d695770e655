package dpo

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"slices"
)

// DimAgreement is how two scorings of the same samples (A and B, e.g. the training reward
// and a held-out judge) agree on one dimension within prompts: the only comparisons pair
// selection, best-of-N and particle steering make. Scores of different prompts never
// meet, so each prompt's scores are centred on their own mean first.
type DimAgreement struct {
	Dim     string `json:"dim"`
	Prompts int    `json:"prompts"` // prompts with at least two shared samples
	Samples int    `json:"samples"`
	// Corr is the Pearson correlation of the per-prompt centred scores,
	// sum(xa*xb) / sqrt(sum(xa^2) sum(xb^2)) over all samples (NaN without spread).
	Corr float64 `json:"corr"`
	// Concordance is the share of within-prompt sample pairs that A and B order alike, among
	// the Pairs pairs where neither scores the two equal.
	Concordance float64 `json:"concordance"`
	Pairs       int     `json:"pairs"`
	// BestWorst is the share of prompts in which B scores A's best sample above A's worst
	// (ties in B count half; prompts where A scores all alike are left out).
	BestWorst float64 `json:"best_worst"`
}

// Agreement compares two scored sets of the same samples (matched by file path) on each
// dimension both carry. A sample of one set missing from the other is left out; the same
// file under two prompts is an error.
func Agreement(a, b *ScoredSet) ([]DimAgreement, error) {
	key := func(p string) string {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
		return filepath.Clean(p)
	}
	inB := map[string]int{}
	for i, it := range b.Items {
		inB[key(it.Path)] = i
	}
	type shared struct{ ia, ib int }
	byPrompt := map[string][]shared{}
	var prompts []string
	for i, it := range a.Items {
		j, ok := inB[key(it.Path)]
		if !ok {
			continue
		}
		if b.Items[j].Prompt != it.Prompt {
			return nil, fmt.Errorf("%s: prompt %q in one set, %q in the other", it.Path, it.Prompt, b.Items[j].Prompt)
		}
		if _, seen := byPrompt[it.Prompt]; !seen {
			prompts = append(prompts, it.Prompt)
		}
		byPrompt[it.Prompt] = append(byPrompt[it.Prompt], shared{i, j})
	}
	var out []DimAgreement
	for da, dim := range a.Dims {
		db := slices.Index(b.Dims, dim)
		if db < 0 {
			continue
		}
		r := DimAgreement{Dim: dim}
		var sxy, sxx, syy float64
		concordant, bestWorst, bwPrompts := 0.0, 0.0, 0
		for _, p := range prompts {
			s := byPrompt[p]
			if len(s) < 2 {
				continue
			}
			r.Prompts++
			r.Samples += len(s)
			xa, xb := make([]float64, len(s)), make([]float64, len(s))
			for k, sh := range s {
				xa[k], xb[k] = a.Items[sh.ia].Scores[da], b.Items[sh.ib].Scores[db]
			}
			ma, mb := mean(xa), mean(xb)
			for k := range s {
				x, y := xa[k]-ma, xb[k]-mb
				sxy, sxx, syy = sxy+x*y, sxx+x*x, syy+y*y
			}
			for i := range s {
				for j := i + 1; j < len(s); j++ {
					oa, ob := cmp.Compare(xa[i], xa[j]), cmp.Compare(xb[i], xb[j])
					if oa != 0 && ob != 0 {
						r.Pairs++
						if oa == ob {
							concordant++
						}
					}
				}
			}
			best, worst := 0, 0
			for k := range s {
				if xa[k] > xa[best] {
					best = k
				}
				if xa[k] < xa[worst] {
					worst = k
				}
			}
			if xa[best] == xa[worst] {
				continue
			}
			bwPrompts++
			switch cmp.Compare(xb[best], xb[worst]) {
			case 1:
				bestWorst++
			case 0:
				bestWorst += 0.5
			}
		}
		r.Corr = sxy / math.Sqrt(sxx*syy)
		r.Concordance = concordant / float64(r.Pairs)
		r.BestWorst = bestWorst / float64(bwPrompts)
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no dimension in common: %v and %v", a.Dims, b.Dims)
	}
	return out, nil
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}
