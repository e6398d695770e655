// Peer benchmark on the CPU: the default image model's training step (batch 32: forward,
// backward, clipping, AdamW) and sampling run (28 Euler steps with guidance 4, batch 16) in
// align and in PyTorch eager (scripts/bench/dit_torch.py --device cpu: the same architecture,
// its parameter count checked against ModelConfig.ParamCount) on the same cores in one run,
// in fp32 and, where the CPU has AVX512_BF16, in bf16 (align's --precision bf16;
// torch.autocast to bfloat16 around the forward passes). Reported per variant: align's and
// PyTorch's samples/s and images/s and "<variant>_train_x", "<variant>_sample_x", align's
// rate over PyTorch's (> 1: align is faster). Both sides report the median of their repeats.
//
// The interpreter is $ALIGN_TORCH_PYTHON, else third_party/torch/bin/python (make torch-cpu),
// else python3; without an importable torch the benchmark skips.
//
// Run: go test ./diffusion -run '^$' -bench TorchCPU -benchtime 1x
package diffusion

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alignkit/align/kernels"
)

// torchPython is the interpreter with PyTorch for the peer benchmark, or "" and why not.
func torchPython() (string, string) {
	py := os.Getenv("ALIGN_TORCH_PYTHON")
	if py == "" {
		py = filepath.Join("..", "third_party", "torch", "bin", "python")
		if _, err := os.Stat(py); err != nil {
			py = "python3"
		}
	}
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		return "", "torch not importable by " + py + " (make torch-cpu, or set ALIGN_TORCH_PYTHON)"
	}
	return py, ""
}

// medianSeconds is the median of n timed calls of f after warmup untimed ones.
func medianSeconds(f func(), warmup, n int) float64 {
	for range warmup {
		f()
	}
	ts := make([]float64, n)
	for i := range ts {
		t0 := time.Now()
		f()
		ts[i] = time.Since(t0).Seconds()
	}
	slices.Sort(ts)
	return ts[n/2]
}

func BenchmarkTorchCPU(b *testing.B) {
	py, why := torchPython()
	if py == "" {
		b.Skip(why)
	}
	const trainB, repeats = 32, 5
	variants := map[string]kernels.Device{"fp32": testDev}
	names := []string{"fp32"}
	if bf := kernels.NewCPU(0); bf.SetGemmBF16(true) == nil {
		variants["bf16"] = bf
		names = append(names, "bf16")
	}
	type rates struct{ train, sample float64 }
	ours := map[string]rates{}
	var cfg ModelConfig
	for range b.N {
		for _, v := range names {
			step, m, _ := newBenchTrainStep(b, variants[v], DefaultImageConfig(), trainB)
			cfg = m.Config
			train := medianSeconds(step, 3, repeats)
			sample, _ := newBenchSampler(b, variants[v])
			i := 0
			run := func() { sample(i); i++ }
			ours[v] = rates{trainB / train, benchSampleB / medianSeconds(run, 1, max(1, repeats/2))}
		}
	}
	it := strconv.Itoa
	args := []string{filepath.Join("..", "scripts", "bench", "dit_torch.py"), "--device", "cpu",
		"--width", it(cfg.Width), "--depth", it(cfg.Depth), "--heads", it(cfg.Heads), "--mlp-ratio", strconv.FormatFloat(cfg.MLPRatio, 'g', -1, 64),
		"--patch", it(cfg.PatchSize), "--image-size", it(cfg.ImageSize), "--channels", it(cfg.Channels),
		"--text-len", it(cfg.MaxTextLen), "--text-width", it(cfg.TextWidth), "--text-heads", it(cfg.TextHeads),
		"--text-layers", it(cfg.TextLayers), "--vocab", it(cfg.VocabSize), "--train-batch", it(trainB),
		"--sample-batch", it(benchSampleB), "--steps", it(benchSampleSteps), "--guidance", "4",
		"--repeats", it(repeats), "--variants", names[0]}
	if len(names) > 1 {
		args[len(args)-1] += "," + names[1]
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		b.Fatalf("%s %v: %v", py, args, err)
	}
	var peer struct {
		Framework string `json:"framework"`
		Params    int    `json:"params"`
		Variants  map[string]struct {
			Train  float64 `json:"train_samples_per_s"`
			Sample float64 `json:"images_per_s"`
		} `json:"variants"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &peer); err != nil {
		b.Fatalf("dit_torch.py printed %q: %v", out, err)
	}
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
