// Throughput of the default image generator: sampling images/s (28 steps, batch 16, with
// classifier-free guidance) and, with BenchmarkTrainStep (objective_test.go), training
// samples/s; both as achieved GFLOP/s (ModelConfig.ForwardFLOPs) and as a fraction of the
// device's GEMM rate measured in the same run, plus the peak memory of the benchmark from
// building the model to its last step (internal/benchmem: Go heap and resident set).
//
// Run: go test ./diffusion -run '^$' -bench Sample -benchtime 2x
// In BF16 (a CPU with AVX512_BF16): ALIGN_BENCH_PRECISION=bf16 (internal/benchdev).
package diffusion

import (
	"sync"
	"testing"
	"time"

	"github.com/alignkit/align/internal/benchdev"
	"github.com/alignkit/align/internal/benchmem"
	"github.com/alignkit/align/kernels"
)

var (
	gemmRateOnce sync.Once
	gemmRate     float64
)

// benchGemmRate is the device's GEMM GFLOP/s at 1024^3 (kernels.GemmProbe, the rate `align
// info` and the DiT-block benchmark use), measured once per run. The model's largest GEMMs
// are of that order (the MLP's at batch 32: 2560x256 by 256x1024), and even a 256^3 product
// reaches 0.89 of the 1024^3 rate (README, GEMM table). Call it before benchmem.Start, so
// that the probe's buffers are not counted as the model's memory.
func benchGemmRate(dev kernels.Device) float64 {
	gemmRateOnce.Do(func() { gemmRate = kernels.GemmProbe(dev, time.Second) })
	return gemmRate
}

// reportThroughput adds GFLOP/s, the GEMM rate (benchGemmRate's, measured before) and the
// fraction of it to b.
func reportThroughput(b *testing.B, flops, seconds float64) {
	g := flops / seconds / 1e9
	b.ReportMetric(g, "GFLOP/s")
	b.ReportMetric(gemmRate, "gemm_GFLOP/s")
	b.ReportMetric(g/gemmRate, "frac_of_gemm")
}

func BenchmarkSample(b *testing.B) {
	dev := benchdev.Device(b, testDev)
	benchGemmRate(dev)
	mem := benchmem.Start()
	cfg := DefaultImageConfig()
	tok, _ := BuildTokenizer([]string{"red apple", "grinning face", "rocket"}, 1, cfg.MaxTextLen)
	cfg.VocabSize = tok.VocabSize()
	m, err := NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Tokenizer = tok
	const B, steps = 16, 28
	prompts := make([]string, B)
	for i := range prompts {
		prompts[i] = []string{"red apple", "grinning face", "rocket"}[i%3]
	}
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := Sample(m, prompts, SampleOptions{NumInferenceSteps: steps, GuidanceScale: 4, Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(B/sec, "images/s")
	// Each step evaluates the conditional and unconditional halves: 2*B forward passes, the
	// captions encoded once.
	reportThroughput(b, float64(B)*cfg.SampleFLOPs(steps, 2), sec)
	mem.Stop().Report(b, "")
}
