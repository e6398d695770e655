// Tests of the CPU sinusoidal timestep embedding against a float64 reference, on a guarded
// view, and the panic on an odd dimension.
//
// Test: go test ./kernels -run TimestepEmbedding
package kernels

import (
	"math"
	"testing"
)

func TestTimestepEmbedding(t *testing.T) {
	for _, sz := range [][2]int{{5, 66}, {37, 256}} {
		B, dim := sz[0], sz[1]
		ts := testUniforms(91, B, 0, 1000)
		ts[0], ts[1] = 0, 999.5
		half := dim / 2
		want := make([]float64, B*dim)
		for b := 0; b < B; b++ {
			for i := 0; i < half; i++ {
				f := math.Pow(10000, -float64(i)/float64(half))
				want[b*dim+i] = math.Cos(float64(ts[b]) * f)
				want[b*dim+half+i] = math.Sin(float64(ts[b]) * f)
			}
		}
		for _, th := range threadCounts {
			d := NewCPU(th)
			out := guarded(d, nil, B, dim)
			d.TimestepEmbedding(out, guarded(d, ts, B), B, dim, 10000)
			assertClose(t, "TimestepEmbedding", Host(out), want, 2e-7, 1e-6)
			assertGuard(t, "TimestepEmbedding", out)
		}
	}
}

func TestTimestepEmbeddingOddDimPanics(t *testing.T) {
	d := NewCPU(1)
	defer func() {
		if recover() == nil {
			t.Error("TimestepEmbedding with an odd dim did not panic")
		}
	}()
	d.TimestepEmbedding(d.New(2, 5), d.New(2), 2, 5, 10000)
}
