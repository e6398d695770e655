// Throughput of the default image generator: sampling images/s (28 steps, batch 16, with
// classifier-free guidance) and, with BenchmarkTrainStep (objective_test.go), training
// samples/s; both as achieved GFLOP/s (ModelConfig.ForwardFLOPs) and as a fraction of the
// device's GEMM rate measured in the same run, plus the process's peak resident memory.
// Peak memory is per process: run each benchmark in its own `go test` for its own figure.
//
// Run: go test ./diffusion -run '^$' -bench Sample -benchtime 2x
package diffusion

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alignkit/align/kernels"
)

var (
	gemmRateOnce sync.Once
	gemmRate     float64
)

// benchGemmRate is the device's GEMM GFLOP/s at 1024^3, measured once per run.
func benchGemmRate() float64 {
	gemmRateOnce.Do(func() { gemmRate = kernels.GemmProbe(testDev, time.Second) })
	return gemmRate
}

// peakRSSMB is the process's peak resident set (VmHWM) in MB, or 0 where /proc is absent.
func peakRSSMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// reportThroughput adds GFLOP/s, the fraction of the GEMM rate and peak memory to b.
func reportThroughput(b *testing.B, flops, seconds float64) {
	g := flops / seconds / 1e9
	b.ReportMetric(g, "GFLOP/s")
	b.ReportMetric(g/benchGemmRate(), "frac_of_gemm")
	b.ReportMetric(peakRSSMB(), "peak_MB")
}

func BenchmarkSample(b *testing.B) {
	cfg := DefaultImageConfig()
	tok, _ := BuildTokenizer([]string{"red apple", "grinning face", "rocket"}, 1, cfg.MaxTextLen)
	cfg.VocabSize = tok.VocabSize()
	m, err := NewDiT(testDev, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Tokenizer = tok
	const B, steps = 16, 28
	prompts := make([]string, B)
	for i := range prompts {
		prompts[i] = []string{"red apple", "grinning face", "rocket"}[i%3]
	}
	benchGemmRate()
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := Sample(m, prompts, SampleOptions{NumInferenceSteps: steps, GuidanceScale: 4, Seed: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(B/sec, "images/s")
	// Each step evaluates the conditional and unconditional halves: 2*B forward passes.
	reportThroughput(b, steps*2*B*cfg.ForwardFLOPs(), sec)
}
