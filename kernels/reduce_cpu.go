// Full reductions of the CPU device: Sum, SumSquares and SumSquaresEach in float64. The input is cut into
// fixed chunks of reduceChunk elements whatever the thread count; each chunk is summed on
// its own and the chunk sums are added in order, so the result is bit-identical for any
// number of threads.
//
// Test: go test ./kernels -run 'Sum'
package kernels

// reduceChunk is the fixed number of elements summed together before the ordered total.
const reduceChunk = 1 << 13

// Sum returns sum_i x[i], accumulated in float64.
func (d *CPU) Sum(x *Tensor) float64 { return d.reduce(Host(x), false) }

// SumSquares returns sum_i x[i]^2, accumulated in float64.
func (d *CPU) SumSquares(x *Tensor) float64 { return d.reduce(Host(x), true) }

// SumSquaresEach returns SumSquares of each tensor (0 for nil).
func (d *CPU) SumSquaresEach(xs []*Tensor) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		if x != nil {
			out[i] = d.SumSquares(x)
		}
	}
	return out
}

func (d *CPU) reduce(x []float32, squares bool) float64 {
	nch := (len(x) + reduceChunk - 1) / reduceChunk
	if nch <= 1 {
		return sumChunk(x, squares)
	}
	part := make([]float64, nch)
	d.parallel(nch, 4, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			part[k] = sumChunk(x[k*reduceChunk:min((k+1)*reduceChunk, len(x))], squares)
		}
	})
	s := 0.0
	for _, v := range part {
		s += v
	}
	return s
}

// sumChunk sums x (or its squares) in float64 over four interleaved lanes, combined as
// (l0+l1)+(l2+l3) and then the tail in order.
func sumChunk(x []float32, squares bool) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	if squares {
		for ; i+4 <= len(x); i += 4 {
			a, b, c, e := float64(x[i]), float64(x[i+1]), float64(x[i+2]), float64(x[i+3])
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += e * e
		}
	} else {
		for ; i+4 <= len(x); i += 4 {
			s0 += float64(x[i])
			s1 += float64(x[i+1])
			s2 += float64(x[i+2])
			s3 += float64(x[i+3])
		}
	}
	s := (s0 + s1) + (s2 + s3)
	for ; i < len(x); i++ {
		v := float64(x[i])
		if squares {
			v *= v
		}
		s += v
	}
	return s
}
