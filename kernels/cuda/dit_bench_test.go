// The DiT workload of the GPU benchmark BenchmarkDiTBase (bench_model_gpu_test.go): a
// training step (forward, backward, clipping, AdamW) and a sampling run (Euler steps with
// classifier-free guidance) of a model on any device, and the PyTorch peer
// (scripts/bench/dit_torch.py) run as a subprocess with the same sizes; and the same model
// fine-tuned by Flow-DPO (newDPOTrainer). The workload is device-independent, so the
// ordinary suite runs it once at a tiny size on the CPU device, and checks that every flag
// passed to the script exists there.
//
// Test: go test ./kernels/cuda -run DiTBench
package cuda

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// ditBaseConfig is DiT-B/2's transformer (width 768, 12 blocks of 12 heads, 2x2 patches)
// on 32x32 RGB: 256 patch + 16 text tokens, with the default 2-layer text encoder of
// width 256; 132M parameters (ModelConfig.ParamCount) with the benchmark's vocabulary.
func ditBaseConfig() diffusion.ModelConfig {
	c := diffusion.DefaultImageConfig()
	c.Width, c.Depth, c.Heads, c.PatchSize = 768, 12, 12, 2
	return c
}

// denseBF16Peak is the dense BF16 tensor-core peak in TFLOP/s of the GPU a device names
// (NVIDIA's datasheets, boost clock), 0 for one not listed: the reference of the training
// step's goal (30% of it).
func denseBF16Peak(name string) float64 {
	switch {
	case strings.Contains(name, "H200"):
		return 989
	case strings.Contains(name, "H100") && strings.Contains(name, "PCIe"):
		return 756
	case strings.Contains(name, "H100") && strings.Contains(name, "NVL"):
		return 835
	case strings.Contains(name, "H100"): // SXM
		return 989
	case strings.Contains(name, "A100"):
		return 312
	}
	return 0
}

// Sizes of BenchmarkDiTBase (and of the PyTorch run and BenchmarkHostCost).
const (
	ditTrainBatch  = 32
	ditSampleBatch = 16
	ditSteps       = 28
)

var ditBenchCaptions = []string{"red apple", "grinning face", "rocket", "green apple moving left", "blue car"}

// ditWorkload is one model with a training batch and sampling prompts on one device.
type ditWorkload struct {
	cfg     diffusion.ModelConfig
	m       *diffusion.DiT
	batch   *diffusion.Batch
	step    *diffusion.TrainStep
	opt     *nn.AdamW
	rng     *kernels.RNG
	prompts []string
}

// newBenchModel builds cfg on dev with the captions' vocabulary, its weights drawn from seed 1.
func newBenchModel(dev kernels.Device, cfg diffusion.ModelConfig) (*diffusion.DiT, error) {
	tok, err := diffusion.BuildTokenizer(ditBenchCaptions, 1, cfg.MaxTextLen)
	if err != nil {
		return nil, err
	}
	cfg.VocabSize = tok.VocabSize()
	m, err := diffusion.NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		return nil, err
	}
	m.Tokenizer = tok
	return m, nil
}

// newDiTWorkload builds cfg (vocabulary from the captions) on dev with a training batch of
// trainB and sampleB sampling prompts.
func newDiTWorkload(dev kernels.Device, cfg diffusion.ModelConfig, trainB, sampleB int) (*ditWorkload, error) {
	m, err := newBenchModel(dev, cfg)
	if err != nil {
		return nil, err
	}
	cfg, tok := m.Config, m.Tokenizer
	w := &ditWorkload{cfg: cfg, m: m, step: diffusion.NewTrainStep(dev, diffusion.DefaultObjective()), rng: &kernels.RNG{Seed: 2}}
	w.opt = nn.NewAdamW(dev, m.Params(), nn.DefaultAdamWConfig())
	caps := make([]string, trainB)
	for i := range caps {
		caps[i] = ditBenchCaptions[i%len(ditBenchCaptions)]
	}
	x0 := uniforms(3, trainB*cfg.SampleSize(), -1, 1)
	w.batch = &diffusion.Batch{X0: dev.FromHost(x0, cfg.BatchShape(trainB)...), Prompts: diffusion.EncodePrompts(tok, caps)}
	for i := range sampleB {
		w.prompts = append(w.prompts, ditBenchCaptions[i%len(ditBenchCaptions)])
	}
	return w, nil
}

// trainStep is one optimizer step; it returns the loss.
func (w *ditWorkload) trainStep() float64 {
	ps := w.m.Params()
	nn.ZeroGrad(ps)
	res := w.step.ForwardBackward(w.m, w.rng, w.batch)
	_, clip := nn.ClipScale(ps, 1)
	w.opt.StepScaled(clip)
	return res.Loss
}

// sample generates one image per prompt with steps Euler steps and guidance 4.
func (w *ditWorkload) sample(steps int, seed uint64) error {
	x, _, err := diffusion.Sample(w.m, w.prompts, diffusion.SampleOptions{NumInferenceSteps: steps, GuidanceScale: 4, Seed: seed})
	if err != nil {
		return err
	}
	w.m.Device().Free(x)
	return nil
}

// newDPOTrainer builds cfg on dev (vocabulary from the captions) as a Flow-DPO trainer with
// align finetune's defaults (dpo.DefaultConfig: 8 pairs a step, a LoRA adapter of rank 16 on
// every block's qkv and proj), or fine-tuning every weight (full), over 32 pairs of random
// samples; its output directory dir is written only by checkpoints.
func newDPOTrainer(dev kernels.Device, cfg diffusion.ModelConfig, full bool, dir string) (*dpo.Trainer, error) {
	m, err := newBenchModel(dev, cfg)
	if err != nil {
		return nil, err
	}
	cfg = m.Config
	const pairs = 32
	r := rand.New(rand.NewPCG(4, 5))
	data := &dpo.Data{Store: &dpo.Store{}}
	for i := range 2 * pairs {
		b := make([]uint8, cfg.SampleSize())
		for j := range b {
			b[j] = uint8(r.IntN(256))
		}
		data.Store.Paths = append(data.Store.Paths, fmt.Sprintf("%d.png", i))
		data.Store.Data = append(data.Store.Data, b)
	}
	for i := range pairs {
		data.Pairs = append(data.Pairs, dpo.PairItem{Prompt: ditBenchCaptions[i%len(ditBenchCaptions)], Chosen: 2 * i, Rejected: 2*i + 1})
	}
	c := dpo.DefaultConfig()
	c.Seed, c.FullFinetune = 1, full
	return dpo.NewTrainer(dev, m, c, data, dir)
}

// torchScript is the PyTorch peer, relative to this package's directory (go test's
// working directory).
const torchScript = "../../scripts/bench/dit_torch.py"

// torchArgs are the script's flags for cfg and the benchmark's sizes.
func torchArgs(cfg diffusion.ModelConfig, trainB, sampleB, steps, repeats int) []string {
	it := strconv.Itoa
	return []string{torchScript, "--width", it(cfg.Width), "--depth", it(cfg.Depth), "--heads", it(cfg.Heads),
		"--mlp-ratio", strconv.FormatFloat(cfg.MLPRatio, 'g', -1, 64), "--patch", it(cfg.PatchSize),
		"--image-size", it(cfg.ImageSize), "--channels", it(cfg.Channels), "--text-len", it(cfg.MaxTextLen),
		"--text-width", it(cfg.TextWidth), "--text-heads", it(cfg.TextHeads), "--text-layers", it(cfg.TextLayers),
		"--vocab", it(cfg.VocabSize), "--train-batch", it(trainB), "--sample-batch", it(sampleB),
		"--steps", it(steps), "--guidance", "4", "--repeats", it(repeats), "--variants", "fp32,tf32,bf16"}
}

// torchDPOArgs are the script's flags for its Flow-DPO steps (newDPOTrainer's: align
// finetune's defaults), in BF16.
func torchDPOArgs(cfg diffusion.ModelConfig, repeats int) []string {
	c := dpo.DefaultConfig()
	args := torchArgs(cfg, ditTrainBatch, ditSampleBatch, ditSteps, repeats)
	args = append(args[:len(args)-2], "--variants", "bf16", "--dpo-pairs", strconv.Itoa(c.TrainBatchSize),
		"--lora-rank", strconv.Itoa(c.LoRA.Rank), "--beta-dpo", strconv.FormatFloat(c.BetaDPO, 'g', -1, 64))
	return args
}

// torchBatch1Args are the script's flags for sampling one image at a time in BF16, without
// the training step.
func torchBatch1Args(cfg diffusion.ModelConfig, repeats int) []string {
	args := torchArgs(cfg, ditTrainBatch, 1, ditSteps, repeats)
	return append(args[:len(args)-2], "--variants", "bf16", "--sample-only")
}

// torchVariant is the script's result for one precision.
type torchVariant struct {
	TrainS           float64 `json:"train_s"`
	TrainSamplesPerS float64 `json:"train_samples_per_s"`
	SampleS          float64 `json:"sample_s"`
	ImagesPerS       float64 `json:"images_per_s"`
	DPOS             float64 `json:"dpo_s"` // with --dpo-pairs
	DPOPairsPerS     float64 `json:"dpo_pairs_per_s"`
}

// torchResult is the script's JSON line.
type torchResult struct {
	Framework string                  `json:"framework"`
	Device    string                  `json:"device"`
	Params    int                     `json:"params"`
	PeakGiB   float64                 `json:"peak_gib"`
	Variants  map[string]torchVariant `json:"variants"`
}

// torchPython returns the interpreter ($ALIGN_PYTHON, else python3) if it has PyTorch
// with CUDA, or an error saying why not.
func torchPython() (string, error) {
	py := os.Getenv("ALIGN_PYTHON")
	if py == "" {
		py = "python3"
	}
	out, err := exec.Command(py, "-c", "import sys, torch; print(torch.__version__); sys.exit(0 if torch.cuda.is_available() else 3)").CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			msg = "torch " + msg + " sees no CUDA device"
		} else if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("no PyTorch with CUDA in %s (set ALIGN_PYTHON): %s", py, msg)
	}
	return py, nil
}

// runTorch runs the script and decodes its last output line.
func runTorch(py string, args []string) (*torchResult, error) {
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, fmt.Errorf("%s: %v\n%s", torchScript, err, ee.Stderr)
		}
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r torchResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil {
		return nil, fmt.Errorf("%s printed %q: %w", torchScript, lines[len(lines)-1], err)
	}
	return &r, nil
}

func TestDiTBenchWorkload(t *testing.T) {
	cfg := diffusion.DefaultImageConfig()
	cfg.Width, cfg.Depth, cfg.Heads, cfg.TextWidth, cfg.TextHeads, cfg.TextLayers = 32, 1, 2, 16, 2, 1
	w, err := newDiTWorkload(kernels.NewCPU(0), cfg, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	if l := w.trainStep(); !(l > 0) || math.IsInf(l, 0) {
		t.Errorf("loss %v", l)
	}
	if w.opt.Steps != 1 {
		t.Errorf("%d optimizer steps", w.opt.Steps)
	}
	if err := w.sample(2, 1); err != nil {
		t.Fatal(err)
	}
	// The Flow-DPO step of BenchmarkDiTBase's finetune runs, LoRA and full.
	for _, full := range []bool{false, true} {
		tr, err := newDPOTrainer(kernels.NewCPU(0), cfg, full, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if e := tr.TrainOneStep(); e.Step != 1 || !(e.Loss > 0) || math.IsInf(e.Loss, 0) {
			t.Errorf("Flow-DPO step (full %v): %+v", full, e)
		}
	}
	// The PyTorch script accepts every flag the benchmark passes.
	src, err := os.ReadFile(filepath.FromSlash(torchScript))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`add_argument\("(--[a-z0-9-]+)"`).FindAllStringSubmatch(string(src), -1) {
		known[m[1]] = true
	}
	for _, a := range slices.Concat(torchArgs(w.cfg, 3, 2, 2, 1), torchDPOArgs(w.cfg, 1), torchBatch1Args(w.cfg, 1)) {
		if strings.HasPrefix(a, "--") && !known[a] {
			t.Errorf("%s has no flag %s", torchScript, a)
		}
	}
	// align finetune's LoRA alpha is the script's: 2*rank.
	if c := dpo.DefaultLoRAConfig(); c.Alpha != 2*float64(c.Rank) {
		t.Errorf("LoRA alpha %v for rank %d: the PyTorch peer's adapters use 2*rank", c.Alpha, c.Rank)
	}
}

func TestDiTBenchPeak(t *testing.T) {
	for name, want := range map[string]float64{
		"NVIDIA H200": 989, "NVIDIA H100 80GB HBM3": 989, "NVIDIA H100 PCIe": 756, "NVIDIA H100 NVL": 835,
		"NVIDIA A100-SXM4-80GB": 312, "NVIDIA L4": 0, "emulated": 0,
	} {
		if got := denseBF16Peak(name); got != want {
			t.Errorf("denseBF16Peak(%q) = %g, want %g", name, got, want)
		}
	}
}
