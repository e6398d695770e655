// Launchers of the Philox random-number kernels (rng.cu); the stream rule is kernels/rng.go's.
//
// Test: go test ./kernels/cuda -run 'Conformance/Rand'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) RandUniform(t *kernels.Tensor, seed, offset uint64) {
	n := t.Len()
	d.launch1("rand_uniform", (n+3)/4, P(d.ptr(t)), I(n), Q(seed), Q(offset))
}

func (d *Device) RandNormal(t *kernels.Tensor, seed, offset uint64) {
	n := t.Len()
	d.launch1("rand_normal", (n+3)/4, P(d.ptr(t)), I(n), Q(seed), Q(offset))
}
