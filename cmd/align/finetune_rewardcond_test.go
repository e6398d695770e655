// align finetune --method reward-cond on a scored set, then align sample reading the stored
// maxima for --reward-condition vq=max; Flow-DPO and Flow-RWR keeping a model's maxima; flag
// checks.
//
// Test: go test ./cmd/align -run FinetuneRewardCond
package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
)

// saveCondModel writes saveTinyModel's model with the reward dimensions vq and ta.
func saveCondModel(t *testing.T, dir string) string {
	t.Helper()
	m, err := diffusion.LoadDiT(testCPU, saveTinyModel(t, dir, diffusion.KindImage))
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config
	cfg.RewardDims, cfg.RewardFreq = []string{"vq", "ta"}, 4
	c, err := diffusion.NewDiT(testCPU, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Tokenizer = m.Tokenizer
	byName := map[string]int{}
	for i, p := range m.Params() {
		byName[p.Name] = i
	}
	src := m.Params()
	for _, p := range c.Params() {
		if i, ok := byName[p.Name]; ok {
			testCPU.Copy(p.W, src[i].W)
		}
	}
	path := filepath.Join(dir, "cond-base.safetensors")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// saveCondModelWithMax writes saveCondModel's model with reward-condition maxima (vq, ta).
func saveCondModelWithMax(t *testing.T, dir string, maxes []float64) string {
	t.Helper()
	m, err := diffusion.LoadDiT(testCPU, saveCondModel(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	m.RewardConditionMax = maxes
	path := filepath.Join(dir, "cond-max.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// sampleRewardCondition runs align sample --reward-condition spec on model and returns the
// condition it used per dimension.
func sampleRewardCondition(t *testing.T, model, spec, out string) map[string]float64 {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "2", "--reward-condition", spec,
		"-o", out, "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("sample: exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Steering struct {
			RewardCondition map[string]float64 `json:"reward_condition"`
		} `json:"steering"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Steering.RewardCondition
}

// Flow-DPO (LoRA adapter, no merge) and Flow-RWR (full) of a model with reward-condition
// maxima keep them: vq=max still means the base's maximum, through the adapter file too.
func TestFinetuneKeepsRewardConditionMax(t *testing.T) {
	dir, _, pairs, scored := finetuneFixture(t)
	model := saveCondModelWithMax(t, dir, []float64{1.25, math.NaN()})
	for _, tc := range []struct {
		args []string
		file string
	}{
		{[]string{"--method", "dpo", "--pairs", pairs, "--lora-rank", "2"}, "adapter.safetensors"},
		{[]string{"--method", "rwr", "--scored", scored, "--full-finetune"}, "model.safetensors"},
	} {
		out := filepath.Join(dir, tc.args[1])
		var stdout, stderr bytes.Buffer
		args := append([]string{"finetune", "--model", model, "-o", out, "--max-train-steps", "2", "--train-batch-size", "2"}, tc.args...)
		if code := Main(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr.String())
		}
		path := filepath.Join(out, tc.file)
		if got, err := diffusion.ReadRewardConditionMax(path, []string{"vq", "ta"}); err != nil || len(got) != 2 || got[0] != 1.25 || !math.IsNaN(got[1]) {
			t.Errorf("%v: %s maxima %v (%v), want [1.25 NaN]", tc.args, tc.file, got, err)
		}
		var rec finetuneRecord
		js, _ := os.ReadFile(filepath.Join(out, "config.json"))
		if err := json.Unmarshal(js, &rec); err != nil || len(rec.CondMax) != 1 || rec.CondMax["vq"] != 1.25 {
			t.Errorf("%v: config.json %s (%v)", tc.args, js, err)
		}
		if got := sampleRewardCondition(t, path, "vq=max", filepath.Join(out, "samples")); got["vq"] != 1.25 {
			t.Errorf("%v: sample used %v, want vq 1.25", tc.args, got)
		}
	}
}

func TestFinetuneRewardCondEndToEnd(t *testing.T) {
	dir, _, _, scored := finetuneFixture(t)
	model := saveCondModel(t, dir)
	for _, extra := range [][]string{{"--lora-rank", "2"}, {"--full-finetune", "--reward-dropout", "0.3"}} {
		out := filepath.Join(dir, "cond"+extra[0])
		var stdout, stderr bytes.Buffer
		args := append([]string{"finetune", "--method", "reward-cond", "--scored", scored, "--model", model, "-o", out,
			"--max-train-steps", "3", "--train-batch-size", "2"}, extra...)
		if code := Main(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("%v: exit %d: %s", extra, code, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(out, "adapter.safetensors")); err == nil {
			t.Errorf("%v: adapter.safetensors written", extra)
		}
		path := filepath.Join(out, "model.safetensors")
		maxes, err := diffusion.ReadRewardConditionMax(path, []string{"vq", "ta"})
		if err != nil {
			t.Fatal(err)
		}
		// Scored set: vq = 0, 0.1, ..., 0.5 (0.99 quantile 0.495), ta = 0,1,2,0,1,2 (2).
		if math.Abs(maxes[0]-0.495) > 1e-6 || maxes[1] != 2 {
			t.Errorf("%v: stored maxima %v, want [0.495 2]", extra, maxes)
		}
		var rec finetuneRecord
		js, _ := os.ReadFile(filepath.Join(out, "config.json"))
		if err := json.Unmarshal(js, &rec); err != nil || rec.Train.Timesteps.WeightingScheme != diffusion.WeightingLogitNormal ||
			rec.Train.Timesteps.CaptionDropout != 0.1 || rec.CondMax["ta"] != 2 {
			t.Errorf("%v: config.json %s (%v)", extra, js, err)
		}
		// align sample resolves vq=max to the stored maximum.
		if v := sampleRewardCondition(t, path, "vq=max", filepath.Join(out, "samples"))["vq"]; math.Abs(v-0.495) > 1e-6 {
			t.Errorf("%v: sample used vq=%v, want the stored 0.495", extra, v)
		}
	}
}

func TestFinetuneRewardCondFlags(t *testing.T) {
	dir, model, pairs, scored := finetuneFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "dpo", "--pairs", pairs, "--reward-dropout", "0.2"}, "only with --method reward-cond"},
		{[]string{"--method", "rwr", "--scored", scored, "--data", dir}, "only with --method reward-cond"},
		{[]string{"--method", "dpo", "--pairs", pairs, "--reward-dims", "vq"}, "only with --method reward-cond"},
		{[]string{"--method", "sft", "--pairs", pairs, "--cond-corrupted", "2"}, "only with --method reward-cond"},
		{[]string{"--method", "reward-cond", "--pairs", pairs}, "not --pairs"},
		{[]string{"--method", "reward-cond"}, "give --data DIR"},
		{[]string{"--method", "reward-cond", "--scored", scored, "--data", dir}, "give --data DIR"},
		{[]string{"--method", "reward-cond", "--scored", scored, "--model", model}, "no reward-condition slot"},
	} {
		var stdout, stderr bytes.Buffer
		Main(append([]string{"finetune", "-o", filepath.Join(dir, "x"), "--max-train-steps", "1"}, tc.args...), &stdout, &stderr)
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// --reward-dims remakes an untaught slot (or adds one to a model without): the written model
// conditions on the new dimensions; a taught slot is refused, and so is a resume that asks
// for other dimensions than its checkpoint's.
func TestFinetuneRewardCondRemakeSlot(t *testing.T) {
	dir, plain, _, scored := finetuneFixture(t)
	// run fine-tunes model fully (model "": resumes out's run).
	run := func(model, out string, extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		args := []string{"finetune", "--method", "reward-cond", "--scored", scored, "-o", out, "--max-train-steps", "2", "--train-batch-size", "2"}
		if model != "" {
			args = append(args, "--model", model, "--full-finetune")
		}
		return Main(append(args, extra...), &stdout, &stderr), stderr.String()
	}
	for _, tc := range []struct {
		name, model string
	}{{"untaught vq,ta slot", saveCondModel(t, dir)}, {"no slot", plain}} {
		out := filepath.Join(dir, "remade-"+strings.ReplaceAll(tc.name, " ", "-"))
		code, stderr := run(tc.model, out, "--reward-dims", "ta")
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr)
		}
		if !strings.Contains(stderr, "reward-condition slot remade with dimensions ta") {
			t.Errorf("%s: stderr lacks the remake line: %s", tc.name, stderr)
		}
		m, err := diffusion.LoadDiT(testCPU, filepath.Join(out, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Config.RewardDims; len(got) != 1 || got[0] != "ta" || m.Reward == nil {
			t.Errorf("%s: model conditions on %v, want [ta]", tc.name, got)
		}
		if v := sampleRewardCondition(t, filepath.Join(out, "model.safetensors"), "ta=max", filepath.Join(out, "samples"))["ta"]; v != 2 {
			t.Errorf("%s: sample used ta=%v, want the stored 2", tc.name, v)
		}
		// Resuming with other dimensions is refused.
		if code, stderr := run("", out, "--resume-from-checkpoint", "latest", "--reward-dims", "vq,ta"); code != exitUsage ||
			!strings.Contains(stderr, "a resumed run keeps its slot") {
			t.Errorf("%s: resume with other --reward-dims: exit %d, %s", tc.name, code, stderr)
		}
	}
	// The output above has a taught ta slot: remaking it would lose that.
	taught := filepath.Join(dir, "remade-untaught-vq,ta-slot", "model.safetensors")
	if code, stderr := run(taught, filepath.Join(dir, "again"), "--reward-dims", "vq,ta"); code != exitUsage ||
		!strings.Contains(stderr, "has been taught") {
		t.Errorf("taught slot: exit %d, %s", code, stderr)
	}
	if code, stderr := run(plain, filepath.Join(dir, "bad"), "--reward-dims", "VQ"); code != exitUsage ||
		!strings.Contains(stderr, `reward dimension "VQ"`) {
		t.Errorf("bad name: exit %d, %s", code, stderr)
	}
}
