// Initial values of parameters: the deterministic Rand source and the normal initialiser.
//
// Test: go test ./nn

package nn

import "github.com/alignkit/align/kernels"

// Rand is the deterministic source of initial values: Normal fills t with N(0,1) draws and
// advances the generator, so successive calls give fresh numbers. *kernels.RNG (Philox
// keyed by a seed, with a running counter offset) implements it.
type Rand interface {
	Normal(t *kernels.Tensor)
}

// initNormal fills t with N(0, std^2) draws from r; a nil r leaves t as it is.
func initNormal(r Rand, t *kernels.Tensor, std float32) {
	if r == nil {
		return
	}
	r.Normal(t)
	t.Dev.Scale(t, std)
}

var _ Rand = (*kernels.RNG)(nil)
