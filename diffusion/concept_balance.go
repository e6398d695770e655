// Concept-balanced data order (--concept-balance α): sample i is drawn with probability
//
//	p_i = n_c(i)^-α / Σ_c n_c^(1-α)
//
// where n_c is the number of training samples of concept c. A concept then receives the
// share n_c^(1-α)/Σ_c' n_c'^(1-α): α = 0 is every sample alike (the epoch permutations of
// pretrain.go, which stay the order for α = 0), α = 1 is every concept alike, a variant
// uniformly within it. A people emoji with 50 skin-tone and gender variants and an object
// with two renderings then get the same number of updates.
//
// For α > 0 the batch of step s is a function of (seed, s) alone: TrainBatchSize draws from
// Walker's alias table of p with the Philox stream (seed ^ balanceKey) at counter block
// s*2^32, so it depends on no epoch, thread or resume point, and a resumed run (or a second
// stage that switches α on at a checkpoint) continues exactly.
//
// Test: go test ./diffusion -run ConceptBalance

package diffusion

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

// ConceptData is TrainingData whose samples name their concept (dataset Item.Concept,
// Clip.Concept), which --concept-balance needs.
type ConceptData interface {
	TrainingData
	// Concept returns sample i's concept.
	Concept(i int) string
}

// balanceKey keys the balanced draws apart from the main RNG's and the epoch orders' streams.
const balanceKey = 0x9e3779b97f4a7c15

// ConceptWeights returns p_i = n_c(i)^-α / Σ_c n_c^(1-α) for the samples' concepts.
func ConceptWeights(concepts []string, alpha float64) []float64 {
	n := map[string]int{}
	for _, c := range concepts {
		n[c]++
	}
	p := make([]float64, len(concepts))
	sum := 0.0
	for i, c := range concepts {
		p[i] = math.Pow(float64(n[c]), -alpha)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// aliasTable draws index j with probability p_j by Walker's alias method in Vose's stable
// construction (M. D. Vose, "A linear algorithm for generating random numbers with a given
// distribution", IEEE TSE 17(9), 1991): pick a column k = floor(u1*n) uniformly, keep k
// with probability prob[k], else take alias[k]; the table satisfies
//
//	p_j = (prob[j] + Σ_{k: alias[k]=j} (1 - prob[k])) / n.
type aliasTable struct {
	keep  []uint64 // prob[k]*2^32: keep column k when a 32-bit word is below it
	alias []int
}

// newAliasTable builds the table of p (non-negative, summing to 1).
func newAliasTable(p []float64) *aliasTable {
	n := len(p)
	a := &aliasTable{keep: make([]uint64, n), alias: make([]int, n)}
	q := make([]float64, n) // n*p_j: a column's mass in units of 1/n
	var small, large []int
	for j, pj := range p {
		q[j] = pj * float64(n)
		a.alias[j] = j
		if q[j] < 1 {
			small = append(small, j)
		} else {
			large = append(large, j)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small, large = small[:len(small)-1], large[:len(large)-1]
		a.keep[s], a.alias[s] = uint64(math.Round(q[s]*(1<<32))), l
		q[l] -= 1 - q[s] // l fills the rest of column s
		if q[l] < 1 {
			small = append(small, l)
		} else {
			large = append(large, l)
		}
	}
	// What remains holds mass 1 up to rounding: kept whole.
	for _, j := range append(small, large...) {
		a.keep[j] = 1 << 32
	}
	return a
}

// draw returns the index for the 32-bit words w1 (the column: floor(w1*n/2^32), a bias
// below n/2^32 as in RNG.Perm) and w2 (the coin).
func (a *aliasTable) draw(w1, w2 uint32) int {
	k := int((uint64(w1) * uint64(len(a.keep))) >> 32)
	if uint64(w2) < a.keep[k] {
		return k
	}
	return a.alias[k]
}

// batch returns the B sample indices of optimizer step s (1-based) drawn from the
// alias table of p with Philox(seed ^ balanceKey) at counter block s*2^32: two words per
// sample, so one step's draws stay within its 2^32 blocks for any batch.
func (a *aliasTable) batch(seed uint64, s, B int) []int {
	r := &kernels.RNG{Seed: seed ^ balanceKey, Offset: uint64(s) << 32}
	w := r.Uint32s(2 * B)
	out := make([]int, B)
	for b := range out {
		out[b] = a.draw(w[2*b], w[2*b+1])
	}
	return out
}

// conceptBalance builds the alias table of --concept-balance alpha for data, which must
// name its concepts.
func conceptBalance(data TrainingData, alpha float64) (*aliasTable, error) {
	cd, ok := data.(ConceptData)
	if !ok {
		return nil, fmt.Errorf("--concept-balance %g: the training data names no concepts", alpha)
	}
	concepts := make([]string, cd.Len())
	for i := range concepts {
		concepts[i] = cd.Concept(i)
	}
	return newAliasTable(ConceptWeights(concepts, alpha)), nil
}
