// Proportions with their 95% Wilson score interval, and the exact chance rate of a top-k
// retrieval hit.
//
// Test: go test ./diffusion/eval -run 'Wilson|Chance'

package eval

import "math"

// Z95 is the two-sided 95% normal quantile.
const Z95 = 1.959963984540054

// Rate is a proportion hits/n with its 95% Wilson score interval [Low, High].
type Rate struct {
	Hits int     `json:"hits"`
	N    int     `json:"n"`
	Rate float64 `json:"rate"`
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// NewRate is hits/n with its 95% Wilson interval; n = 0 gives the rate 0 and the
// interval [0, 1].
func NewRate(hits, n int) Rate {
	r := Rate{Hits: hits, N: n, Low: 0, High: 1}
	if n > 0 {
		r.Rate = float64(hits) / float64(n)
		r.Low, r.High = Wilson(hits, n, Z95)
	}
	return r
}

// Wilson is the Wilson score interval of hits successes in n trials at normal quantile z
// (Wilson 1927; Brown, Cai and DasGupta 2001, "Interval Estimation for a Binomial
// Proportion"):
//
//	centre = (p + z²/2n) / (1 + z²/n)
//	half   = z / (1 + z²/n) · sqrt(p(1-p)/n + z²/4n²),   p = hits/n
//
// Unlike the normal (Wald) interval it stays inside [0, 1] and is not empty at 0 or n hits.
// n = 0 gives [0, 1].
func Wilson(hits, n int, z float64) (lo, hi float64) {
	if n <= 0 {
		return 0, 1
	}
	nf := float64(n)
	p := float64(hits) / nf
	z2 := z * z
	den := 1 + z2/nf
	centre := (p + z2/(2*nf)) / den
	half := z / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Max(0, centre-half), math.Min(1, centre+half)
}

// ChanceTopK is the probability that k gallery entries drawn uniformly without replacement
// from a gallery of g include at least one of the m entries that count as a hit:
//
//	1 - C(g-m, k) / C(g, k) = 1 - Π_{i=0}^{k-1} (g-m-i) / (g-i)
//
// It is the hit rate of a retrieval that ignores the query (the chance level of top-k).
func ChanceTopK(g, m, k int) float64 {
	if m <= 0 || k <= 0 || g <= 0 {
		return 0
	}
	if m+k > g {
		return 1
	}
	miss := 1.0
	for i := range k {
		miss *= float64(g-m-i) / float64(g-i)
	}
	return 1 - miss
}
