// Gradient clipping by global L2 norm, written against the Device interface so that it runs
// on any device (the sums of squares come back to the host as float64, all at once).
//
// Test: go test ./kernels -run ClipScale
package kernels

import "math"

// ClipScale computes the global norm = sqrt(sum_g SumSquares(g)) over grads (nil entries are
// skipped) and the factor that clips it: maxNorm/(norm + 1e-6) where norm > maxNorm, else 1
// (a non-finite norm gives 1 too: the caller detects it and skips the step). The gradients
// are left as they are: the optimizer multiplies them by the factor as it reads them
// (AdamWParams.GradScale), which saves a pass that would read and write every gradient.
func ClipScale(dev Device, grads []*Tensor, maxNorm float64) (norm float64, scale float32) {
	ss := 0.0
	for _, v := range dev.SumSquaresEach(grads) {
		ss += v
	}
	norm = math.Sqrt(ss)
	if norm > maxNorm && !math.IsInf(norm, 0) {
		return norm, float32(maxNorm / (norm + 1e-6))
	}
	return norm, 1
}
