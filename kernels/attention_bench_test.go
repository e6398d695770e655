// Benchmarks of the CPU attention at the DiT size of the training runs: B=16, T=272
// (16 text + 256 image patch tokens), NH=4, HS=64, with a few padded text tokens masked.
//
// Bench: go test ./kernels -run '^$' -bench Attention -benchtime 20x
package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// BenchmarkAttention reports ms per call and GFLOP/s counting the matrix products only:
// the forward does Q K^T and P V, 4*B*NH*T*T*HS flops; the backward recomputes Q K^T and
// does P^T dO, dO V^T, dS K and dS^T Q, 10*B*NH*T*T*HS flops (masked keys counted too).
func BenchmarkAttention(b *testing.B) {
	const B, T, NH, HS, textLen = 16, 272, 4, 64, 16
	d := NewCPU(0)
	rng := rand.New(rand.NewPCG(1, 2))
	randn := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	bias := make([]float32, B*T)
	for bb := range B {
		for j := textLen - bb%5; j < textLen; j++ { // 0 to 4 padded text tokens
			bias[bb*T+j] = float32(math.Inf(-1))
		}
	}
	qkv := d.FromHost(randn(B*T*3*NH*HS), B, T, 3, NH, HS)
	dout := d.FromHost(randn(B*T*NH*HS), B, T, NH, HS)
	keyBias := d.FromHost(bias, B, T)
	out, lse, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.New(B, T, 3, NH, HS)
	unit := float64(B * NH * T * T * HS)

	report := func(b *testing.B, flops float64) {
		sec := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(sec*1e3, "ms/op")
		b.ReportMetric(flops/sec/1e9, "GFLOP/s")
	}
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			d.AttentionForward(out, lse, qkv, keyBias, B, T, NH, HS)
		}
		report(b, 4*unit)
	})
	b.Run("forward+backward", func(b *testing.B) {
		for b.Loop() {
			d.AttentionForward(out, lse, qkv, keyBias, B, T, NH, HS)
			d.AttentionBackward(dqkv, dout, out, lse, qkv, keyBias, B, T, NH, HS)
		}
		report(b, 14*unit)
	})
}
