// Gradient clipping by global L2 norm, written against the Device interface so that it runs
// on any device (the sums of squares come back to the host as float64, all at once).
//
// Test: go test ./kernels -run ClipGradNorm
package kernels

import "math"

// ClipGradNorm computes the global norm = sqrt(sum_g SumSquares(g)) over grads (nil entries
// are skipped) and, when norm > maxNorm, scales every gradient by maxNorm/(norm + 1e-6).
// It returns the norm before clipping; a non-finite norm leaves the gradients untouched, so
// the caller can detect it and skip the step.
func ClipGradNorm(dev Device, grads []*Tensor, maxNorm float64) (norm float64) {
	ss := 0.0
	for _, v := range dev.SumSquaresEach(grads) {
		ss += v
	}
	norm = math.Sqrt(ss)
	if norm > maxNorm && !math.IsInf(norm, 0) {
		dev.ScaleEach(grads, float32(maxNorm/(norm+1e-6)))
	}
	return norm
}
