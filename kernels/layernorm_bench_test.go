// Benchmarks of the CPU layer normalisation at the DiT size of the training runs: B=16,
// T=272 (16 text + 256 image patch tokens), C=256, as the DiT block calls it (with the
// adaLN modulation) and alone. Each reports GB/s by the bytes the pass must move (x read,
// out written, and the backward's dout read) and its ratio to Add's rate on tensors of the
// same size, measured in the same run: a streaming kernel with no arithmetic to speak of.
//
// Bench: go test ./kernels -run '^$' -bench LayerNorm -benchtime 50x
package kernels

import (
	"math/rand/v2"
	"testing"
	"time"
)

func BenchmarkLayerNorm(b *testing.B) {
	const B, T, C = 16, 272, 256
	const N, eps = B * T, 1e-6
	d := NewCPU(0)
	rng := rand.New(rand.NewPCG(3, 4))
	randn := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	x, dout := d.FromHost(randn(N*C), N, C), d.FromHost(randn(N*C), N, C)
	shift, scale := d.FromHost(randn(B*C), B, C), d.FromHost(randn(B*C), B, C)
	w, bias := d.FromHost(randn(C), C), d.FromHost(randn(C), C)
	out, dx, mean, rstd := d.New(N, C), d.New(N, C), d.New(N), d.New(N)
	dshift, dscale := d.New(B, C), d.New(B, C)
	const bytes = 4 * N * C

	// addRate is Add's GB/s over three tensors of N*C values (two read, one written).
	addRate := func() float64 {
		const reps = 50
		start := time.Now()
		for range reps {
			d.Add(out, x, dout)
		}
		return 3 * bytes * reps / time.Since(start).Seconds() / 1e9
	}
	report := func(b *testing.B, moved float64) {
		sec := b.Elapsed().Seconds() / float64(b.N)
		rate := moved / sec / 1e9
		b.ReportMetric(sec*1e6, "us/op")
		b.ReportMetric(rate, "GB/s")
		b.ReportMetric(rate/addRate(), "of_add_rate")
	}
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			d.LayerNormForward(out, mean, rstd, x, nil, nil, N, C, eps)
		}
		report(b, 2*bytes)
	})
	b.Run("forward-affine", func(b *testing.B) {
		for b.Loop() {
			d.LayerNormForward(out, mean, rstd, x, w, bias, N, C, eps)
		}
		report(b, 2*bytes)
	})
	b.Run("forward-modulate", func(b *testing.B) {
		for b.Loop() {
			d.LayerNormModulateForward(out, nil, mean, rstd, x, shift, scale, B, T, C, eps)
		}
		report(b, 2*bytes)
	})
	b.Run("backward-modulate", func(b *testing.B) {
		for b.Loop() {
			d.LayerNormModulateBackward(dx, dshift, dscale, dout, nil, x, mean, rstd, scale, B, T, C, eps)
		}
		report(b, 3*bytes)
	})
}
