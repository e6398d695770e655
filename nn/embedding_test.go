// Tests of TokenEmbedding (lookup and gradient with repeated ids) and of deterministic
// initialisation from a seeded kernels.RNG.
//
// Test: go test ./nn -run 'TokenEmbedding|Deterministic'
package nn

import (
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestTokenEmbeddingForward(t *testing.T) {
	r := newHostRand(60)
	e := NewTokenEmbedding(testDev, r, 9, 6)
	ids := []int32{3, 0, 8, 3, 5}
	w := toHost(e.Weight)
	var want []float64
	for _, id := range ids {
		want = append(want, to64(w[int(id)*6:(int(id)+1)*6])...)
	}
	out := e.Forward(ids)
	mustShape("out", out, 5, 6)
	assertClose(t, "out", toHost(out), want, 0, 0)
}

func TestTokenEmbeddingGrad(t *testing.T) {
	r := newHostRand(61)
	e := NewTokenEmbedding(testDev, r, 9, 6)
	ids := []int32{3, 0, 8, 3, 5, 3, 7} // repeated id 3 accumulates
	gradCheck(t, func() *kernels.Tensor { return e.Forward(ids) }, func(d *kernels.Tensor) { e.Backward(d) },
		paramVars(e.Params()), gcOpts{maxElems: 54})
}

// Two models built from the same seed are bit-identical; another seed differs.
func TestDeterministicInit(t *testing.T) {
	build := func(seed uint64) []Param {
		rng := &kernels.RNG{Seed: seed}
		return append(NewDiTBlock(testDev, rng, DiTBlockConfig{C: 8, NH: 2}).Params(),
			NewTokenEmbedding(testDev, rng, 5, 8).Params()...)
	}
	a, b, c := build(7), build(7), build(8)
	differs := false
	for i := range a {
		ha, hb, hc := toHost(a[i].W), toHost(b[i].W), toHost(c[i].W)
		for j := range ha {
			if ha[j] != hb[j] {
				t.Fatalf("%s[%d] differs between two builds with one seed", a[i].Name, j)
			}
			differs = differs || ha[j] != hc[j]
		}
	}
	if !differs {
		t.Error("seeds 7 and 8 gave the same weights")
	}
	// Separate layers draw separate numbers (the generator advances).
	q, p := toHost(a[0].W), toHost(a[2].W)
	if q[0] == p[0] && q[1] == p[1] {
		t.Error("qkv and proj weights start alike")
	}
}
