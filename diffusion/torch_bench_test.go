// Peer benchmark on the CPU: the default image model's training step (batch 32: forward,
// backward, clipping, AdamW) and sampling run (28 Euler steps with guidance 4, batch 16) in
// align and in PyTorch eager (scripts/bench/dit_torch.py --device cpu: the same architecture,
// its parameter count checked against ModelConfig.ParamCount) on the same cores in one run,
// in fp32 and, where the CPU has AVX512_BF16, in bf16 (align's --precision bf16;
// torch.autocast to bfloat16 around the forward passes). Reported per variant: align's and
// PyTorch's samples/s and images/s and "<variant>_train_x", "<variant>_sample_x", align's
// rate over PyTorch's (> 1: align is faster). Both sides report the median of their repeats.
//
// The interpreter is benchdev.Torch's ($ALIGN_TORCH_PYTHON, else make torch-cpu's); without
// an importable torch the benchmark skips. dpo's BenchmarkTorchCPUFinetune does the same for
// a Flow-DPO step.
//
// Run: go test ./diffusion -run '^$' -bench TorchCPU -benchtime 1x
package diffusion

import (
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/internal/benchdev"
)

func BenchmarkTorchCPU(b *testing.B) {
	py := benchdev.Torch(b, "..")
	const trainB, repeats = 32, 5
	names, variants := benchdev.Variants(testDev)
	type rates struct{ train, sample float64 }
	ours := map[string]rates{}
	var cfg ModelConfig
	for range b.N {
		for _, v := range names {
			step, m, _ := newBenchTrainStep(b, variants[v], DefaultImageConfig(), trainB)
			cfg = m.Config
			train := benchdev.Median(step, 3, repeats)
			sample, _ := newBenchSampler(b, variants[v], false, benchSampleB)
			i := 0
			run := func() { sample(i); i++ }
			ours[v] = rates{trainB / train, benchSampleB / benchdev.Median(run, 1, max(1, repeats/2))}
		}
	}
	tm := benchdev.TorchModel{Width: cfg.Width, Depth: cfg.Depth, Heads: cfg.Heads, MLPRatio: cfg.MLPRatio,
		Patch: cfg.PatchSize, ImageSize: cfg.ImageSize, Channels: cfg.Channels, TextLen: cfg.MaxTextLen,
		TextWidth: cfg.TextWidth, TextHeads: cfg.TextHeads, Layers: cfg.TextLayers, Vocab: cfg.VocabSize}
	it := strconv.Itoa
	args := append(tm.Args(), "--train-batch", it(trainB), "--sample-batch", it(benchSampleB),
		"--steps", it(benchSampleSteps), "--guidance", "4", "--repeats", it(repeats), "--variants", strings.Join(names, ","))
	var peer struct {
		Framework string `json:"framework"`
		Params    int    `json:"params"`
		Variants  map[string]struct {
			Train  float64 `json:"train_samples_per_s"`
			Sample float64 `json:"images_per_s"`
		} `json:"variants"`
	}
	benchdev.TorchScript(b, py, "..", args, &peer)
	if peer.Params != cfg.ParamCount() {
		b.Fatalf("PyTorch's model has %d parameters, align's %d: not the same model", peer.Params, cfg.ParamCount())
	}
	b.Logf("%s, %d parameters on both sides", peer.Framework, peer.Params)
	for _, v := range names {
		p := peer.Variants[v]
		b.ReportMetric(ours[v].train, v+"_align_samples/s")
		b.ReportMetric(p.Train, v+"_torch_samples/s")
		b.ReportMetric(ours[v].train/p.Train, v+"_train_x")
		b.ReportMetric(ours[v].sample, v+"_align_images/s")
		b.ReportMetric(p.Sample, v+"_torch_images/s")
		b.ReportMetric(ours[v].sample/p.Sample, v+"_sample_x")
	}
}
