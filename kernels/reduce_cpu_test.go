// Tests of the CPU reductions: Sum, SumSquares and SumSquaresEach against float64 references for empty,
// tiny, odd and multi-chunk sizes on guarded views, and bit-identical results across thread
// counts.
//
// Test: go test ./kernels -run 'Sum'
package kernels

import (
	"fmt"
	"math"
	"testing"
)

func TestSumAndSumSquares(t *testing.T) {
	for _, n := range []int{0, 1, 3, 37 * 67, 100003} {
		x := testNormals(141, n)
		for i := range x {
			x[i] += 0.25 // a non-zero mean so that Sum grows with n
		}
		var wantS, wantQ float64
		for _, v := range x {
			wantS += float64(v)
			wantQ += float64(v) * float64(v)
		}
		var firstS, firstQ float64
		for i, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("n=%d threads=%d", n, th)
			tx := guarded(d, x, n)
			s, q := d.Sum(tx), d.SumSquares(tx)
			assertClose64(t, "Sum "+tag, []float64{s}, []float64{wantS}, 1e-9, 1e-12)
			assertClose64(t, "SumSquares "+tag, []float64{q}, []float64{wantQ}, 1e-9, 1e-12)
			if i == 0 {
				firstS, firstQ = s, q
			} else if math.Float64bits(s) != math.Float64bits(firstS) || math.Float64bits(q) != math.Float64bits(firstQ) {
				t.Errorf("%s: Sum/SumSquares %v %v differ from 1 thread's %v %v", tag, s, q, firstS, firstQ)
			}
		}
	}
}

// TestSumSquaresEach checks that SumSquaresEach gives each tensor's SumSquares bit for bit
// and 0 for nil and empty entries.
func TestSumSquaresEach(t *testing.T) {
	d := NewCPU(2)
	xs := []*Tensor{d.FromHost(testNormals(142, 100003), 100003), nil, d.FromHost(nil, 0), d.FromHost([]float32{3, -4}, 2)}
	got := d.SumSquaresEach(xs)
	want := []float64{d.SumSquares(xs[0]), 0, 0, 25}
	if len(got) != len(want) {
		t.Fatalf("%d sums for %d tensors", len(got), len(xs))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("tensor %d: %.17g, want %.17g", i, got[i], want[i])
		}
	}
}
