package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// The CUDA devices against the CPU at the command line: sampling (plain, and Flow-NRG with
// FK), pretraining, fine-tuning, reward training and scoring give the CPU's results. The emulation runs in
// every test run; a GPU where this test binary is built with -tags cuda
// (scripts/gpu/build.sh cmd-test) and runs on a GPU machine (scripts/gpu/run-tests.sh).

// cudaTarget is a CUDA device these tests compare with the CPU.
type cudaTarget struct {
	name string
	// exact: the emulation follows the CPU's arithmetic, so a plain sample's PNG is the
	// same file; a GPU's products sum in their own order, so its pixels are compared
	// within maxPixelDiff.
	exact bool
}

// maxPixelDiff is how far, in 8-bit levels, a pixel of a GPU's sample may be from the CPU's:
// float32 differences of 1e-6 move a value across a rounding boundary now and then.
const maxPixelDiff = 2

// cudaTargets lists the CUDA devices this binary can open: the emulation always, the GPU
// where there is one.
func cudaTargets(t *testing.T) []cudaTarget {
	t.Helper()
	var out []cudaTarget
	for _, c := range []cudaTarget{{"cuda-emu", true}, {"cuda", false}} {
		d, err := kernels.Open(c.name)
		if err != nil {
			continue
		}
		if cl, ok := d.(io.Closer); ok {
			cl.Close()
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Skip("no CUDA device, not even the emulation")
	}
	return out
}

// readPNG decodes a PNG file.
func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// pixelDiff is the largest difference between two images' 8-bit channels (non-premultiplied),
// -1 if their sizes differ.
func pixelDiff(a, b image.Image) int {
	if a.Bounds() != b.Bounds() {
		return -1
	}
	worst := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ca := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			cb := color.NRGBAModel.Convert(b.At(x, y)).(color.NRGBA)
			for i, va := range []uint8{ca.R, ca.G, ca.B, ca.A} {
				vb := []uint8{cb.R, cb.G, cb.B, cb.A}[i]
				worst = max(worst, int(max(va, vb)-min(va, vb)))
			}
		}
	}
	return worst
}

// readLogEntries reads the JSONL training log at path, which must hold steps entries.
func readLogEntries[E any](t *testing.T, path string, steps int) []E {
	t.Helper()
	logs, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []E
	for _, l := range strings.Split(strings.TrimSpace(string(logs)), "\n") {
		var e E
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("%s: %v: %s", path, err, l)
		}
		entries = append(entries, e)
	}
	if len(entries) != steps {
		t.Fatalf("%s: %d steps logged, want %d", path, len(entries), steps)
	}
	return entries
}

// closeTo reports whether b is within tol of a, relative to 1 + |a|.
func closeTo(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(a)) }

func TestSampleCUDAMatchesCPU(t *testing.T) {
	targets := cudaTargets(t)
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	latent := saveTinyLatent(t, dir, model)
	runs := map[string][]string{
		"plain": {"--sampler", "sde"},
		// Flow-NRG's gradient through the latent reward model and the generator, with FK's
		// particles resampled by the rewards.
		"nrg-fk": {"--reward", latent, "--reward-guidance-scale", "10", "--particles", "2", "--reward-weights", "ta=1"},
	}
	for name, extra := range runs {
		sample := func(dev string) sampleReport {
			args := append([]string{"--device", dev, "sample", "--model", model, "--prompt", "red apple", "--prompt", "blue car",
				"--num-inference-steps", "3", "--seed", "4", "--json", "-o", filepath.Join(dir, name, dev)}, extra...)
			rep, errs, code := sampleJSON(t, args)
			if code != exitOK {
				t.Fatalf("%s on %s: exit %d: %s", name, dev, code, errs)
			}
			return rep
		}
		cpu := sample("cpu")
		for _, c := range targets {
			rep := sample(c.name)
			if len(rep.Files) != len(cpu.Files) {
				t.Fatalf("%s on %s: %d files, the CPU %d", name, c.name, len(rep.Files), len(cpu.Files))
			}
			for i, f := range rep.Files {
				want := cpu.Files[i]
				if c.exact && name == "plain" {
					a, _ := os.ReadFile(want.Path)
					b, _ := os.ReadFile(f.Path)
					if len(a) == 0 || !bytes.Equal(a, b) {
						t.Errorf("%s on %s: %s differs from the CPU's file", name, c.name, filepath.Base(f.Path))
					}
				}
				if d := pixelDiff(readPNG(t, want.Path), readPNG(t, f.Path)); d < 0 || d > maxPixelDiff {
					t.Errorf("%s on %s: %s is %d levels from the CPU's (at most %d)", name, c.name, filepath.Base(f.Path), d, maxPixelDiff)
				}
				switch {
				case (want.Reward == nil) != (f.Reward == nil):
					t.Errorf("%s on %s: image %d has a reward %t, the CPU's %t", name, c.name, i, f.Reward != nil, want.Reward != nil)
				case want.Reward != nil && !closeTo(*want.Reward, *f.Reward, 1e-3):
					t.Errorf("%s on %s: image %d reward %v, the CPU's %v", name, c.name, i, *f.Reward, *want.Reward)
				}
			}
		}
	}
}

func TestFinetuneCUDAMatchesCPU(t *testing.T) {
	targets := cudaTargets(t)
	dir, model, pairs, _ := finetuneFixture(t)
	reward := writeRewardModel(t, dir, rewards.KindImage)
	// Each run validates too (sampling and scoring on the device at steps 0, 2 and 3), so
	// that validation's numbers are compared as well as the steps'.
	validations := map[string][]dpo.ValidationEntry{}
	finetune := func(dev, precision string) []dpo.LogEntry {
		out := filepath.Join(dir, dev+"-"+precision)
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"--device", dev, "--precision", precision, "finetune", "--pairs", pairs, "--model", model, "-o", out,
			"--lora-rank", "2", "--max-train-steps", "3", "--train-batch-size", "2", "--lr-warmup-steps", "0", "--learning-rate", "1e-2",
			"--checkpointing-steps", "2", "--validation-prompt", "red apple", "--validation-prompt", "blue car",
			"--validation-inference-steps", "3", "--validation-reward", reward},
			&stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", dev, code, stderr.String())
		}
		validations[dev+"-"+precision] = nn.ReadLog(filepath.Join(out, dpo.ValidationFile), 1<<30, func(e *dpo.ValidationEntry) int { return e.Step })
		logs, _ := os.ReadFile(filepath.Join(out, "logs.jsonl"))
		var steps []dpo.LogEntry
		for _, l := range strings.Split(strings.TrimSpace(string(logs)), "\n") {
			var e dpo.LogEntry
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.DPOMetrics == nil {
				t.Fatalf("%s: logs.jsonl: %v: %s", dev, err, l)
			}
			steps = append(steps, e)
		}
		if len(steps) != 3 {
			t.Fatalf("%s: %d steps logged, want 3", dev, len(steps))
		}
		return steps
	}
	cpu := finetune("cpu", "fp32")
	for _, c := range targets {
		// The errors to float32 rounding (2e-8 on the emulation); the loss looser: its logit is
		// beta (2000) times a difference of errors, so an error's last bits move it 1000 times
		// as much (3e-5 on the emulation; a GPU's own sums' order, about 1e-6 in the errors,
		// about 1e-3 in the loss).
		lossTol := 1e-4
		if !c.exact {
			lossTol = 1e-2
		}
		got := finetune(c.name, "fp32")
		// Validation: the same images (sampling within float32 rounding of the CPU's, as
		// TestSampleCUDAMatchesCPU finds) scored alike.
		want, have := validations["cpu-fp32"], validations[c.name+"-fp32"]
		if len(want) != 3 || len(have) != 3 {
			t.Fatalf("%s: %d validations, the CPU %d; want 3", c.name, len(have), len(want))
		}
		for i := range want {
			for b := range want[i].Z {
				for d := range want[i].Z[b] {
					if !closeTo(want[i].Z[b][d], have[i].Z[b][d], lossTol) {
						t.Errorf("validation at step %d, image %d, %s: z %v on the CPU, %v on %s", want[i].Step, b, want[i].Dims[d],
							want[i].Z[b][d], have[i].Z[b][d], c.name)
					}
				}
			}
		}
		for i, e := range got {
			w := cpu[i]
			for _, v := range []struct {
				name           string
				got, want, tol float64
			}{{"model_mse_w", e.ModelMSEW, w.ModelMSEW, 1e-5}, {"model_mse_l", e.ModelMSEL, w.ModelMSEL, 1e-5},
				{"ref_mse_w", e.RefMSEW, w.RefMSEW, 1e-5}, {"ref_mse_l", e.RefMSEL, w.RefMSEL, 1e-5}, {"loss", e.Loss, w.Loss, lossTol}} {
				if !closeTo(v.want, v.got, v.tol) {
					t.Errorf("step %d: %s %v on the CPU, %v on %s", i+1, v.name, v.want, v.got, c.name)
				}
			}
		}
		// In BF16 the first step's adapter (B = 0) leaves the policy the reference: both
		// write the same BF16 outputs (the adapter's term is zero, the bias then the base
		// product added: nn.Linear), so the loss is ln 2, as on the CPU. The later steps
		// differ from the CPU's by BF16's rounding, which the loss's beta multiplies.
		tol := 1e-12 // the emulation sums both in the same order
		if !c.exact {
			tol = 1e-3 // a GPU's bias epilogue and its beta*C may round differently
		}
		if l := finetune(c.name, "bf16")[0].Loss; math.Abs(l-math.Ln2) > tol {
			t.Errorf("%s in BF16: first loss %v, want ln 2 = %v (the policy is the reference)", c.name, l, math.Ln2)
		}
	}
}

func TestScoreCUDAMatchesCPU(t *testing.T) {
	targets := cudaTargets(t)
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	for i, name := range []string{"x.png", "y.png", "z.png"} {
		writeTestPNG(t, filepath.Join(dir, name), 8, 8, uint64(i+1))
	}
	score := func(dev string) []map[string]any {
		code, stdout, stderr := runAlign(t, "--device", dev, "score", "--input", dir, "--reward", model, "--prompt", "red apple", "--json")
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", dev, code, stderr)
		}
		var rows []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s: %v: %s", dev, err, l)
			}
			rows = append(rows, r)
		}
		return rows
	}
	cpu := score("cpu")
	if len(cpu) != 3 {
		t.Fatalf("%d rows on the CPU, want 3", len(cpu))
	}
	for _, c := range targets {
		rows := score(c.name)
		if len(rows) != len(cpu) {
			t.Fatalf("%s: %d rows, the CPU %d", c.name, len(rows), len(cpu))
		}
		for i, r := range rows {
			for _, k := range []string{rewards.DimVQ, rewards.DimTA, "total"} {
				a, okA := cpu[i][k].(float64)
				b, okB := r[k].(float64)
				if !okA || !okB || !closeTo(a, b, 1e-4) {
					t.Errorf("%s: row %d %s: %v, the CPU's %v", c.name, i, k, r[k], cpu[i][k])
				}
			}
		}
	}
}

// Pretraining a tiny model on the fixture dataset for 3 steps logs the CPU's losses (a mean
// squared error, to float32 rounding), in FP32.
func TestPretrainCUDAMatchesCPU(t *testing.T) {
	targets := cudaTargets(t)
	data := fixtureDataset(t)
	dir := t.TempDir()
	pretrain := func(dev string) []float64 {
		out := filepath.Join(dir, dev)
		var stdout, stderr bytes.Buffer
		if code := Main(append([]string{"--device", dev}, tinyPretrainArgs(data, out, "3")...), &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", dev, code, stderr.String())
		}
		var losses []float64
		for _, e := range readLogEntries[diffusion.LogEntry](t, filepath.Join(out, "logs.jsonl"), 3) {
			losses = append(losses, e.Loss)
		}
		return losses
	}
	cpu := pretrain("cpu")
	for _, c := range targets {
		for i, l := range pretrain(c.name) {
			if !closeTo(cpu[i], l, 1e-4) {
				t.Errorf("step %d: loss %v on the CPU, %v on %s", i+1, cpu[i], l, c.name)
			}
		}
	}
}

// Reward training (the image and video models, and the latent one from a generator's
// blocks) logs the CPU's losses and gradient norms step by step on the CUDA devices.
func TestRewardTrainCUDAMatchesCPU(t *testing.T) {
	targets := cudaTargets(t)
	data := syntheticEmojiDataset(t, 32)
	dir := t.TempDir()
	for _, c := range rewardModelKinds(t, data) {
		t.Run(c.name, func(t *testing.T) {
			train := func(dev string) []rewards.LogEntry {
				out := filepath.Join(dir, c.name, dev)
				args := append([]string{"--device", dev}, tinyRewardTrainArgs(data, out, append(c.extra, "--max-train-steps", "3")...)...)
				if code, _, stderr := runAlign(t, args...); code != exitOK {
					t.Fatalf("%s: exit %d: %s", dev, code, stderr)
				}
				return readLogEntries[rewards.LogEntry](t, filepath.Join(out, "logs.jsonl"), 3)
			}
			cpu := train("cpu")
			for _, target := range targets {
				for i, e := range train(target.name) {
					if !closeTo(cpu[i].Loss, e.Loss, 1e-4) || !closeTo(cpu[i].GradNorm, e.GradNorm, 1e-3) {
						t.Errorf("step %d: loss %v and gradient norm %v on the CPU, %v and %v on %s", i+1, cpu[i].Loss, cpu[i].GradNorm, e.Loss, e.GradNorm, target.name)
					}
				}
			}
		})
	}
}
