// Throughput of the default image generator: sampling images/s (28 steps, batch 16, with
// classifier-free guidance) and, with BenchmarkTrainStep (objective_test.go), training
// samples/s; and of the default video generator's sampling (BenchmarkSampleVideo: videos/s,
// 8 clips of 8 frames, 28 steps, guidance); both as achieved GFLOP/s (ModelConfig.ForwardFLOPs) and as a fraction of the
// device's GEMM rate measured in the same run, plus the peak memory of the benchmark from
// building the model to an untimed first run (internal/benchmem: Go heap and resident set).
//
// Run: go test ./diffusion -run '^$' -bench Sample -benchtime 2x (both sampling benchmarks)
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

// benchSampleB and benchSampleSteps are the sampling benchmarks' batch and Euler steps (with
// guidance 4, the conditional and unconditional halves as one batch); benchVideoB is the
// video benchmark's batch.
const benchSampleB, benchSampleSteps, benchVideoB = 16, 28, 8

// newBenchSampler builds the default image model (or video model) on dev and returns one
// sampling run of B prompts (seed i) and the model's config.
func newBenchSampler(b *testing.B, dev kernels.Device, video bool, B int) (sample func(i int), cfg ModelConfig) {
	captions := []string{"red apple", "grinning face", "rocket"}
	cfg = DefaultImageConfig()
	if video {
		captions = []string{"a red apple moving right", "a rocket moving up", "a grinning face bouncing"}
		cfg = DefaultVideoConfig()
	}
	tok, _ := BuildTokenizer(captions, 1, cfg.MaxTextLen)
	cfg.VocabSize = tok.VocabSize()
	m, err := NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Tokenizer = tok
	prompts := make([]string, B)
	for i := range prompts {
		prompts[i] = captions[i%len(captions)]
	}
	return func(i int) {
		opts := SampleOptions{NumInferenceSteps: benchSampleSteps, GuidanceScale: 4, Seed: uint64(i)}
		if _, _, err := Sample(m, prompts, opts); err != nil {
			b.Fatal(err)
		}
	}, cfg
}

func BenchmarkSample(b *testing.B) { benchSample(b, false, benchSampleB, "images/s") }

func BenchmarkSampleVideo(b *testing.B) { benchSample(b, true, benchVideoB, "videos/s") }

// benchSample times sampling runs of B prompts of the default image or video model.
func benchSample(b *testing.B, video bool, B int, unit string) {
	dev := benchdev.Device(b, testDev)
	benchGemmRate(dev)
	mem := benchmem.Start()
	sample, cfg := newBenchSampler(b, dev, video, B)
	sample(0) // untimed; ends the memory's stretch, whose sampler would slow the timed runs
	usage := mem.Stop()
	b.ResetTimer()
	for i := range b.N {
		sample(i + 1)
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(B)/sec, unit)
	// Each step evaluates the conditional and unconditional halves: 2*B forward passes, the
	// captions encoded once.
	reportThroughput(b, float64(B)*cfg.SampleFLOPs(benchSampleSteps, 2), sec)
	usage.Report(b, "")
}
