// Sinusoidal timestep embedding of the CPU device (as in DiT and diffusers'
// get_timestep_embedding with flip_sin_to_cos: cosines first), computed in float64.
//
// Test: go test ./kernels -run TimestepEmbedding
package kernels

import (
	"fmt"
	"math"
)

// TimestepEmbedding writes out (B,dim) from t (B), dim even, half = dim/2:
//
//	freq[i] = exp(-ln(maxPeriod)*i/half),  i = 0..half-1
//	out[b,:] = [cos(t[b]*freq[0..half)), sin(t[b]*freq[0..half))]
func (d *CPU) TimestepEmbedding(out, t *Tensor, B, dim int, maxPeriod float32) {
	if dim <= 0 || dim%2 != 0 {
		panic(fmt.Sprintf("kernels: TimestepEmbedding: dim = %d must be positive and even", dim))
	}
	mustLen("TimestepEmbedding out", out, B*dim)
	mustLen("TimestepEmbedding t", t, B)
	o, tt := Host(out), Host(t)
	half := dim / 2
	lnP := math.Log(float64(maxPeriod))
	d.parallel(B, rowGrain(4*dim), func(lo, hi int) {
		for b := lo; b < hi; b++ {
			tb := float64(tt[b])
			row := o[b*dim : (b+1)*dim]
			for i := 0; i < half; i++ {
				s, c := math.Sincos(tb * math.Exp(-lnP*float64(i)/float64(half)))
				row[i], row[half+i] = float32(c), float32(s)
			}
		}
	})
}
