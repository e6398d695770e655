// Test: go test ./dpo -run Validation
package dpo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/kernels/cuda"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// pixelReward scores a sample by its mean pixel ("bright") and its mean squared pixel
// ("contrast"): a deterministic function of the pixels alone.
type pixelReward struct{}

func (pixelReward) Dims() []string { return []string{"bright", "contrast"} }

func (pixelReward) Score(b rewards.Batch) ([][]float32, error) {
	x := hostOf(b.Pixels)
	B := b.Len()
	n := len(x) / B
	out := make([][]float32, B)
	for i := range B {
		var s, s2 float64
		for _, v := range x[i*n : (i+1)*n] {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		out[i] = []float32{float32(s / float64(n)), float32(s2 / float64(n))}
	}
	return out, nil
}

func tinyValidation(t *testing.T, prompts ...string) *Validation {
	t.Helper()
	sc, err := guidance.NewScorer(pixelReward{}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	o := diffusion.DefaultSampleOptions()
	o.NumInferenceSteps = 4
	return &Validation{Prompts: prompts, NumImages: 2, Options: o, Scorer: sc, Reward: "pixels"}
}

func TestWinRates(t *testing.T) {
	base := [][]float64{{0, 1}, {0, 1}, {0, 1}, {0, 1}}
	z := [][]float64{{1, 1}, {-1, 2}, {0, 0}, {0.5, 1}}
	// bright: wins, loses, ties, wins = 2.5 of 4; contrast: ties, wins, loses, ties = 2 of 4.
	got, err := winRates(z, base)
	if err != nil || !slices.Equal(got, []float64{0.625, 0.5}) {
		t.Errorf("win rates %v (%v), want [0.625 0.5]", got, err)
	}
	if _, err := winRates(z[:3], base); err == nil {
		t.Error("3 images against 4 accepted")
	}
}

// A run with validation logs the same losses and writes the same files as one without; its
// validations come before the first step and at every checkpoint, score the policy as it is
// written (EMA values), and a run interrupted between validations and resumed logs the same
// validations as the straight one.
func TestValidationRun(t *testing.T) {
	cfg := tinyConfig(MethodDPO, resumeSteps)
	cfg.EMADecay = 0.5
	D := tinyModel(t, 1).Config.SampleSize()
	data := memPairs(5, D)
	prompts := []string{"red apple", "blue car"}

	plainDir, valDir := t.TempDir(), t.TempDir()
	plain, err := NewTrainer(testDev, tinyModel(t, 1), cfg, data, plainDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := runTo(t, plain, 0); err != nil {
		t.Fatal(err)
	}
	a, _ := NewTrainer(testDev, tinyModel(t, 1), cfg, data, valDir)
	a.Validation = tinyValidation(t, prompts...)
	var notes []string
	a.Notify = func(msg string) { notes = append(notes, msg) }
	if err := runTo(t, a, 0); err != nil {
		t.Fatal(err)
	}
	for i := range plain.Log {
		if plain.Log[i].Loss != a.Log[i].Loss || plain.Log[i].GradNorm != a.Log[i].GradNorm {
			t.Errorf("step %d: loss %v without validation, %v with", i+1, plain.Log[i].Loss, a.Log[i].Loss)
		}
	}
	for _, f := range []string{"adapter.safetensors", "checkpoint-6.safetensors"} {
		fa, _ := os.ReadFile(filepath.Join(plainDir, f))
		fb, _ := os.ReadFile(filepath.Join(valDir, f))
		if len(fa) == 0 || !bytes.Equal(fa, fb) {
			t.Errorf("%s differs with validation", f)
		}
	}

	var steps []int
	for _, e := range a.ValLog {
		steps = append(steps, e.Step)
		if _, err := os.Stat(filepath.Join(valDir, e.Grid)); err != nil || e.Images != 4 || len(e.Z) != 4 {
			t.Errorf("step %d: grid %s (%v), %d images, %d rows of z", e.Step, e.Grid, err, e.Images, len(e.Z))
		}
		if (e.WinRate == nil) != (e.Step == 0) || e.Against != 0 {
			t.Errorf("step %d: win rates %v against step %d", e.Step, e.WinRate, e.Against)
		}
	}
	if !slices.Equal(steps, []int{0, 2, 4, 6}) {
		t.Fatalf("validations at steps %v, want [0 2 4 6]", steps)
	}
	if !slices.ContainsFunc(notes, func(n string) bool {
		return strings.HasPrefix(n, "validation at step 6 (4 images): bright z ") && strings.Contains(n, "against step 0")
	}) {
		t.Errorf("no summary line for step 6 in %q", notes)
	}
	if got := nnReadValidation(t, valDir); len(got) != 4 {
		t.Errorf("validation.jsonl holds %d entries, want 4", len(got))
	}
	if _, err := os.Stat(filepath.Join(valDir, ValidationPlotFile)); err != nil {
		t.Error(err)
	}

	// The policy as written: the exported (EMA) model's samples score as the last validation.
	m, _, err := a.exportModel()
	if err != nil {
		t.Fatal(err)
	}
	v := a.Validation
	x, _, err := diffusion.Sample(m, v.captions(), v.Options)
	if err != nil {
		t.Fatal(err)
	}
	_, sc, err := v.Scorer.Utility(x, v.captions(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if last := a.ValLog[len(a.ValLog)-1]; !slices.EqualFunc(sc.Z, last.Z, slices.Equal) {
		t.Errorf("the exported model scores %v, the last validation %v", sc.Z, last.Z)
	}

	// Interrupted at step 3 (a checkpoint without a validation) and resumed: the same log.
	bDir := t.TempDir()
	b, _ := NewTrainer(testDev, tinyModel(t, 1), cfg, data, bDir)
	b.Validation = tinyValidation(t, prompts...)
	if err := runTo(t, b, 3); !errors.Is(err, diffusion.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	c, err := ResumeTrainer(testDev, b.CheckpointPath(3), cfg, data, bDir)
	if err != nil {
		t.Fatal(err)
	}
	c.Validation = tinyValidation(t, prompts...)
	if err := runTo(t, c, 0); err != nil {
		t.Fatal(err)
	}
	resumed := nnReadValidation(t, bDir)
	if len(resumed) != len(a.ValLog) {
		t.Fatalf("resumed run: %d validations, straight %d", len(resumed), len(a.ValLog))
	}
	for i, e := range resumed {
		if w := a.ValLog[i]; e.Step != w.Step || !slices.EqualFunc(e.Z, w.Z, slices.Equal) || !slices.Equal(e.WinRate, w.WinRate) {
			t.Errorf("validation %d: resumed step %d %v, straight step %d %v", i, e.Step, e.WinRate, w.Step, w.WinRate)
		}
	}

	// Resuming with another reward model or other prompts is refused: the win rates would
	// pair other scores or other images.
	e, err := ResumeTrainer(testDev, b.CheckpointPath(4), cfg, data, bDir)
	if err != nil {
		t.Fatal(err)
	}
	e.Validation = tinyValidation(t, prompts...)
	e.Validation.Reward = "another model"
	if err := runTo(t, e, 0); err == nil || !strings.Contains(err.Error(), "same --validation-reward") {
		t.Errorf("resume with another validation reward: %v", err)
	}
	d, err := ResumeTrainer(testDev, b.CheckpointPath(4), cfg, data, bDir)
	if err != nil {
		t.Fatal(err)
	}
	d.Validation = tinyValidation(t, "green apple", "blue car")
	if err := runTo(t, d, 0); err == nil || !strings.Contains(err.Error(), "same --validation-prompt") {
		t.Errorf("resume with other validation prompts: %v", err)
	}
	// The refused resumes rewrote nothing: the logs still run to step 6.
	if n, m := len(nn.ReadLog(nn.LogPath(bDir), 1<<30, logStep)), len(nnReadValidation(t, bDir)); n != resumeSteps || m != 4 {
		t.Errorf("after the refused resumes: %d log lines, %d validations; want %d and 4", n, m, resumeSteps)
	}
}

func nnReadValidation(t *testing.T, dir string) []ValidationEntry {
	t.Helper()
	return nn.ReadLog(filepath.Join(dir, ValidationFile), 1<<30, validationStep)
}

// On the CUDA device (emulated) in BF16, where weights keep BF16 copies and activations are
// stored in BF16 alone, validation leaves the run's numbers as they were too: the EMA values
// swapped in and out, a forward-only sampling run between the steps.
func TestValidationLeavesDeviceRun(t *testing.T) {
	run := func(validate bool) []LogEntry {
		ed := cuda.NewEmulated()
		defer ed.Close()
		ed.SetGemmPrecision(cuda.GemmBF16)
		cfg := tinyConfig(MethodDPO, 3)
		cfg.EMADecay = 0.5
		m := tinyModelOn(t, ed, 1)
		tr, err := NewTrainer(ed, m, cfg, memPairs(5, m.Config.SampleSize()), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if validate {
			tr.Validation = tinyValidation(t, "red apple")
			defer tr.Validation.Scorer.Free()
		}
		if err := runTo(t, tr, 0); err != nil {
			t.Fatal(err)
		}
		if validate && len(tr.ValLog) != 3 {
			t.Errorf("%d validations, want 3 (steps 0, 2, 3)", len(tr.ValLog))
		}
		return tr.Log
	}
	plain, validated := run(false), run(true)
	for i := range plain {
		if plain[i].Loss != validated[i].Loss || plain[i].GradNorm != validated[i].GradNorm {
			t.Errorf("step %d: loss %v, grad norm %v without validation; %v, %v with", i+1,
				plain[i].Loss, plain[i].GradNorm, validated[i].Loss, validated[i].GradNorm)
		}
	}
}
