// Tests of the Wilson interval (against the published values of Newcombe 1998, Table I) and
// of the exact top-k chance rate (by hand and by simulation).
//
// Test: go test ./diffusion/eval -run 'Wilson|Chance'
package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestWilsonPublishedValues(t *testing.T) {
	// Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I,
	// method 3 (score interval without continuity correction), 4 decimals.
	tests := []struct {
		hits, n int
		lo, hi  float64
	}{
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0, 0.1611},
		{1, 29, 0.0061, 0.1718},
		{29, 29, 0.8830, 1},
	}
	for _, tt := range tests {
		lo, hi := Wilson(tt.hits, tt.n, Z95)
		if math.Abs(lo-tt.lo) > 5e-5 || math.Abs(hi-tt.hi) > 5e-5 {
			t.Errorf("Wilson(%d, %d) = [%.5f, %.5f], want [%.4f, %.4f]", tt.hits, tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
	if lo, hi := Wilson(0, 0, Z95); lo != 0 || hi != 1 {
		t.Errorf("Wilson(0, 0) = [%v, %v], want [0, 1]", lo, hi)
	}
	r := NewRate(3, 12)
	if r.Rate != 0.25 || r.Low >= 0.25 || r.High <= 0.25 || r.Hits != 3 || r.N != 12 {
		t.Errorf("NewRate(3, 12) = %+v", r)
	}
}

func TestChanceTopK(t *testing.T) {
	tests := []struct {
		g, m, k int
		want    float64
	}{
		{10, 2, 1, 0.2},
		{10, 2, 2, 1 - 8.0/10*7.0/9}, // 1 - C(8,2)/C(10,2) = 1 - 28/45
		{10, 0, 5, 0},
		{10, 1, 10, 1},
		{10, 6, 5, 1}, // every draw of 5 holds one of the 6
		{7184, 2, 5, 1 - 7182.0/7184*7181.0/7183*7180.0/7182*7179.0/7181*7178.0/7180},
	}
	for _, tt := range tests {
		if got := ChanceTopK(tt.g, tt.m, tt.k); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("ChanceTopK(%d, %d, %d) = %v, want %v", tt.g, tt.m, tt.k, got, tt.want)
		}
	}
	// Simulation: 5 of 40 with 3 hits.
	rng := rand.New(rand.NewPCG(1, 2))
	const trials = 200000
	hit := 0
	for range trials {
		for _, i := range rng.Perm(40)[:5] {
			if i < 3 {
				hit++
				break
			}
		}
	}
	if got, want := float64(hit)/trials, ChanceTopK(40, 3, 5); math.Abs(got-want) > 0.005 {
		t.Errorf("simulated %v, ChanceTopK %v", got, want)
	}
}
