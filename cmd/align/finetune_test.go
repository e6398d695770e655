// Tests of `align finetune`: flag parsing and validation through runF, and end to end on a
// tiny random model with tiny PNG pairs: Flow-DPO with LoRA whose merged model align sample
// loads, its adapter file loading onto its base with the merged model's samples, resume,
// missing images reported before training, Flow-RWR and SFT on a scored set, and SIGINT
// writing a checkpoint and exiting with code 2.
//
// Test: go test ./cmd/align -run Finetune
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestNewCmdFinetuneFlags(t *testing.T) {
	tests := []flagCase[FinetuneOptions]{
		{args: []string{"--pairs", "p.jsonl", "--model", "m"}, check: func(o *FinetuneOptions) string {
			d := dpo.DefaultConfig()
			if o.Train.Method != "dpo" || o.Train.BetaDPO != 2000 || o.Train.BetaSchedule != "const" || o.Train.LoRA.Rank != 16 ||
				o.Train.LoRA.Alpha != 32 || strings.Join(o.Train.LoRA.Targets, ",") != "qkv,proj" || o.Train.LearningRate != d.LearningRate ||
				o.Ties != "keep" || o.Combine != "linear" || o.Temperature != 1 || o.RWRGroups != "prompt" || o.OutputDir != "align-finetune" {
				return "defaults"
			}
			return ""
		}},
		{args: []string{"--method", "rwr", "--scored", "s.jsonl", "--model", "m", "--temperature", "0.5", "--rwr-groups", "global",
			"--lora-rank", "4", "--lora-targets", "qkv,fc1,ada", "--beta_dpo", "2000", "--beta-schedule", "one-minus-t-sq",
			"--learning-rate", "1e-5", "--lr-warmup-steps", "3", "--gradient-accumulation-steps", "4", "--max-grad-norm", "0.5",
			"--max-train-steps", "7", "--train-batch-size", "2", "--checkpointing-steps", "3", "--merge-lora", "--seed", "9",
			"-o", "out", "--json", "--weights", "ta=1", "--combine", "lsc", "--ema-decay", "0.9"},
			check: func(o *FinetuneOptions) string {
				t := o.Train
				if t.Method != "rwr" || o.Temperature != 0.5 || o.RWRGroups != "global" || t.LoRA.Rank != 4 || t.LoRA.Alpha != 8 ||
					strings.Join(t.LoRA.Targets, ",") != "qkv,fc1,ada" || t.BetaDPO != 2000 || t.BetaSchedule != "one-minus-t-sq" ||
					t.LearningRate != 1e-5 || t.LRWarmupSteps != 3 || t.GradientAccumulationSteps != 4 || t.MaxGradNorm != 0.5 ||
					t.MaxTrainSteps != 7 || t.TrainBatchSize != 2 || t.CheckpointingSteps != 3 || !o.MergeLoRA || t.Seed != 9 ||
					o.OutputDir != "out" || !o.JSON || o.Weights != "ta=1" || o.Combine != "lsc" || t.EMADecay != 0.9 {
					return "parsed"
				}
				return ""
			}},
		{args: []string{"--method", "sft", "--scored", "s.jsonl", "--full-finetune", "--model", "m"}, check: func(o *FinetuneOptions) string {
			if !o.Train.FullFinetune || o.Train.Method != "sft" {
				return "sft"
			}
			return ""
		}},
		{args: []string{"--pairs", "p.jsonl"}, check: func(o *FinetuneOptions) string {
			if o.Model != "" { // no --model: the embedded default generator
				return "model " + o.Model
			}
			return ""
		}},
		{args: []string{"--model", "m"}, wantErr: "--method dpo trains on pairs"},
		{args: []string{"--method", "rwr", "--pairs", "p", "--model", "m"}, wantErr: "--method rwr trains on a scored set"},
		{args: []string{"--pairs", "p", "--scored", "s", "--model", "m"}, wantErr: "give one data file"},
		{args: []string{"--method", "ppo", "--pairs", "p", "--model", "m"}, wantErr: `--method "ppo"`},
		{args: []string{"--pairs", "p", "--model", "m", "--beta-schedule", "linear"}, wantErr: `--beta-schedule "linear"`},
		{args: []string{"--pairs", "p", "--model", "m", "--beta-dpo", "0"}, wantErr: "--beta-dpo must be a positive number"},
		{args: []string{"--pairs", "p", "--model", "m", "--lora-targets", "qkv,q"}, wantErr: `unknown target "q"`},
		{args: []string{"--pairs", "p", "--model", "m", "--full-finetune", "--merge-lora"}, wantErr: "--merge-lora merges LoRA adapters"},
		{args: []string{"--pairs", "p", "--model", "m", "--ties", "half"}, wantErr: `--ties "half"`},
		{args: []string{"--pairs", "p", "--model", "m", "--weighting-scheme", "cosmap"}, wantErr: "fine-tuning samples t from one of"},
		{args: []string{"--pairs", "p", "--resume-from-checkpoint", "latest", "--lora-rank", "8"}, wantErr: "a resumed run keeps the checkpoint's adapters"},
		{args: []string{"--method", "rwr", "--scored", "s", "--model", "m", "--temperature", "0"}, wantErr: "--temperature must be > 0"},
		{args: []string{"--pairs", "p", "--validation-prompt", "x", "--validation-reward", "none", "--validation-reward", "default"}, wantErr: "or none alone"},
	}
	checkFlagCases(t, "finetune", newCmdFinetune, tests)
}

// writeSolidPNG writes an 8x8 image of one colour.
func writeSolidPNG(t *testing.T, path string, c color.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// finetuneFixture writes a tiny model, six PNGs, a pairs file and a scored set.
func finetuneFixture(t *testing.T) (dir, model, pairs, scored string) {
	t.Helper()
	dir = t.TempDir()
	model = saveTinyModel(t, dir, diffusion.KindImage)
	img := filepath.Join(dir, "img")
	os.Mkdir(img, 0o755)
	var sb strings.Builder
	for i := range 6 {
		writeSolidPNG(t, filepath.Join(img, fmt.Sprintf("%d.png", i)), color.NRGBA{uint8(40 * i), uint8(255 - 40*i), 128, 255})
		fmt.Fprintf(&sb, `{"prompt":%q,"image":"img/%d.png","scores":{"vq":%g,"ta":%d}}`+"\n", []string{"red apple", "blue car"}[i%2], i, 0.1*float64(i), i%3)
	}
	scored = filepath.Join(dir, "scored.jsonl")
	os.WriteFile(scored, []byte(sb.String()), 0o644)
	pairs = filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(pairs, []byte(`{"prompt":"red apple","chosen":"img/0.png","rejected":"img/1.png"}
{"prompt":"blue car","chosen":"img/2.png","rejected":"img/3.png","labels":{"vq":"B","ta":"B"}}
{"prompt":"purple apple","chosen":"img/4.png","rejected":"img/5.png","labels":{"vq":"tie"}}
`), 0o644)
	return dir, model, pairs, scored
}

func TestFinetuneDPOEndToEnd(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	out := filepath.Join(dir, "run")
	base := []string{"finetune", "--pairs", pairs, "-o", out, "--train-batch-size", "2",
		"--checkpointing-steps", "2", "--lr-warmup-steps", "1", "--learning-rate", "1e-3"}
	var stdout, stderr bytes.Buffer
	args := append(append([]string{}, base...), "--model", model, "--lora-rank", "2", "--max-train-steps", "3", "--merge-lora", "--json")
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep finetuneReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if rep.Step != 3 || rep.Units != 3 || len(rep.Outputs) != 2 || rep.Last == nil || rep.Last.DPOMetrics == nil || rep.BaseModel != model {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range []string{"model.safetensors", "adapter.safetensors", "checkpoint-2.safetensors", "checkpoint-3.safetensors",
		"logs.jsonl", "metrics.png", "config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	for _, s := range []string{"3 pairs (labels ta,vq weighted ta=1,vq=1: 1 turned round, 1 ties kept", "LoRA rank 2 alpha 4 on qkv,proj",
		"words): purple", "finetune dpo: 3/3"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
		}
	}
	// Step 1: the policy is the reference.
	logs, _ := os.ReadFile(filepath.Join(out, "logs.jsonl"))
	var first dpo.LogEntry
	json.Unmarshal([]byte(strings.SplitN(string(logs), "\n", 2)[0]), &first)
	if first.DPOMetrics == nil || first.Inside != 0 || first.ImplicitAcc != 0 || first.Loss < 0.6931 || first.Loss > 0.6932 {
		t.Errorf("first log line %s", strings.SplitN(string(logs), "\n", 2)[0])
	}

	// The merged model samples.
	if code := Main([]string{"sample", "--model", filepath.Join(out, "model.safetensors"), "--prompt", "red apple",
		"--num-inference-steps", "2", "-o", filepath.Join(dir, "s")}, &stdout, &stderr); code != exitOK {
		t.Errorf("sample: exit %d: %s", code, stderr.String())
	}

	// A fresh run into the same directory is refused; a resume continues to 5 steps.
	stderr.Reset()
	if code := Main(append(append([]string{}, base...), "--model", model), &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "earlier run") {
		t.Errorf("fresh run over checkpoints: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	stdout.Reset()
	if code := Main(append(append([]string{}, base...), "--max-train-steps", "5", "--resume-from-checkpoint", "latest"), &stdout, &stderr); code != exitOK {
		t.Fatalf("resume: exit %d: %s", code, stderr.String())
	}
	logs, _ = os.ReadFile(filepath.Join(out, "logs.jsonl"))
	if n := strings.Count(string(logs), "\n"); n != 5 || !strings.Contains(stderr.String(), "at step 3") ||
		!strings.Contains(stderr.String(), "max_train_steps: 3 -> 5") || !strings.Contains(stdout.String(), "adapter.safetensors (step 5)") ||
		!strings.Contains(stderr.String(), "--merge-lora") || strings.Contains(stderr.String(), "warning: the run of") {
		t.Errorf("after resume: %d log lines; stdout %q; stderr %q", n, stdout.String(), stderr.String())
	}
	// config.json records the device and precision; a resume on another device says that the
	// numbers will differ from one uninterrupted run's.
	var rec nn.Compute
	if b, err := os.ReadFile(filepath.Join(out, "config.json")); err != nil || json.Unmarshal(b, &rec) != nil ||
		rec != (nn.Compute{Device: "cpu", Precision: "fp32"}) {
		t.Errorf("config.json: %+v, %v", rec, err)
	}
	stderr.Reset()
	if code := Main(append(append([]string{}, base...), "--max-train-steps", "6", "--resume-from-checkpoint", "latest",
		"--device", "cuda-emu"), &stdout, &stderr); code != exitOK ||
		!strings.Contains(stderr.String(), "warning: the run of checkpoint-5.safetensors computed on cpu in fp32, this one on cuda-emu in fp32") {
		t.Errorf("resume on cuda-emu: exit %d, %q", code, stderr.String())
	}
	// The record is the checkpoint's own: a resume that trains no further on the CPU leaves
	// checkpoint-6 a cuda-emu one (config.json, rewritten by that run, says cpu), and the
	// resume after it is told so; the checkpoint that run writes is the CPU's. The bar's
	// closing line gives a loss only where the run took a step.
	for _, c := range []struct {
		steps       string
		warn, train bool
	}{{"6", true, false}, {"7", true, true}, {"8", false, true}} {
		stderr.Reset()
		code := Main(append(append([]string{}, base...), "--max-train-steps", c.steps, "--resume-from-checkpoint", "latest"), &stdout, &stderr)
		warned, lossed := strings.Contains(stderr.String(), "warning: the run of checkpoint-"), strings.Contains(stderr.String(), ", loss ")
		if code != exitOK || warned != c.warn || lossed != c.train ||
			c.warn && !strings.Contains(stderr.String(), "computed on cuda-emu in fp32, this one on cpu in fp32") {
			t.Errorf("resume to step %s on the CPU: exit %d, warned %v (want %v), loss %v (want %v), %q",
				c.steps, code, warned, c.warn, lossed, c.train, stderr.String())
		}
	}
}

// sampleHost samples captions with m (2 Euler steps, guidance 2, seed 3) and returns the
// final samples on the host.
func sampleHost(t *testing.T, m *diffusion.DiT, captions []string) []float32 {
	t.Helper()
	x, _, err := diffusion.Sample(m, captions, diffusion.SampleOptions{NumInferenceSteps: 2, GuidanceScale: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	v := make([]float32, x.Len())
	x.Dev.CopyToHost(v, x)
	return v
}

// The adapter file of a LoRA run loads (onto its base, merged) as the --merge-lora model
// file does: the same samples; a missing or rewritten base is an error naming both files.
// A folder of w/ and l/ samples trains as the JSONL of the same pairs does: the same adapter,
// bit for bit.
func TestFinetunePairsFolder(t *testing.T) {
	dir, model, _, _ := finetuneFixture(t)
	prefs := filepath.Join(dir, "prefs")
	var jsonl strings.Builder
	for i, prompt := range []string{"red apple", "blue car"} {
		name := fmt.Sprintf("%04d", i)
		for side, img := range map[string]int{"w": 2 * i, "l": 2*i + 1} {
			b, err := os.ReadFile(filepath.Join(dir, "img", fmt.Sprintf("%d.png", img)))
			if err != nil {
				t.Fatal(err)
			}
			os.MkdirAll(filepath.Join(prefs, side), 0o755)
			os.WriteFile(filepath.Join(prefs, side, name+".png"), b, 0o644)
		}
		os.WriteFile(filepath.Join(prefs, "w", name+".txt"), []byte(prompt+"\n"), 0o644)
		fmt.Fprintf(&jsonl, `{"prompt":%q,"chosen":"prefs/w/%s.png","rejected":"prefs/l/%s.png"}`+"\n", prompt, name, name)
	}
	pairs := filepath.Join(dir, "same.jsonl")
	os.WriteFile(pairs, []byte(jsonl.String()), 0o644)
	adapter := func(data, out string) []byte {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main([]string{"finetune", "--pairs", data, "--model", model, "-o", out, "--lora-rank", "2", "--max-train-steps", "2",
			"--train-batch-size", "2", "--lr-warmup-steps", "0", "--learning-rate", "1e-2"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("--pairs %s: exit %d: %s", data, code, stderr.String())
		}
		if !strings.Contains(stderr.String(), data+": 2 pairs") {
			t.Errorf("--pairs %s: %s", data, stderr.String())
		}
		b, err := os.ReadFile(filepath.Join(out, "adapter.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !bytes.Equal(adapter(prefs, filepath.Join(dir, "from-folder")), adapter(pairs, filepath.Join(dir, "from-jsonl"))) {
		t.Error("the folder trains another adapter than the JSONL of its pairs")
	}
	// A sample without its other half stops the run before training, naming the file.
	os.Remove(filepath.Join(prefs, "l", "0001.png"))
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"finetune", "--pairs", prefs, "--model", model, "-o", filepath.Join(dir, "bad")}, &stdout, &stderr); code != exitError ||
		!strings.Contains(stderr.String(), filepath.Join(prefs, "w", "0001.png")+`: no sample named "0001"`) {
		t.Errorf("an unpaired sample: exit %d: %s", code, stderr.String())
	}
}

func TestFinetuneAdapterLoadsLikeMerged(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	base := filepath.Join(dir, "base.safetensors") // a copy: this test rewrites and removes it
	if b, err := os.ReadFile(model); err != nil || os.WriteFile(base, b, 0o644) != nil {
		t.Fatal(err)
	}
	train := func(out string, extra ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args := append([]string{"finetune", "--pairs", pairs, "--model", base, "-o", out, "--lora-rank", "2", "--max-train-steps", "2",
			"--train-batch-size", "2", "--lr-warmup-steps", "0", "--learning-rate", "1e-2"}, extra...)
		if code := Main(args, &stdout, &stderr); code != exitOK {
			t.Fatalf("finetune: exit %d: %s", code, stderr.String())
		}
		if len(extra) == 0 && (!strings.Contains(stdout.String(), "adapter.safetensors (step 2)") || strings.Contains(stdout.String(), "model.safetensors") ||
			!strings.Contains(stderr.String(), "align sample --model "+filepath.Join(out, "adapter.safetensors"))) {
			t.Errorf("without --merge-lora: stdout %q, stderr %q", stdout.String(), stderr.String())
		}
	}
	merged := filepath.Join(dir, "merged")
	train(merged, "--merge-lora")
	a, name, err := loadGenerator(testCPU, filepath.Join(merged, "adapter.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(merged, "adapter.safetensors") + " (LoRA on " + base + ")"; name != want {
		t.Errorf("name %q, want %q", name, want)
	}
	m, _, err := loadGenerator(testCPU, filepath.Join(merged, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := loadGenerator(testCPU, base)
	if a.HasLoRA() || !a.Blocks[0].Attn.QKV.Trainable() {
		t.Error("the adapter did not load as a plain model")
	}
	caps := []string{"red apple", "blue car"}
	got, want, before := sampleHost(t, a, caps), sampleHost(t, m, caps), sampleHost(t, b, caps)
	moved := 0.0
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("sample value %d: %v from the adapter, %v from the --merge-lora model", i, got[i], want[i])
		}
		moved = max(moved, math.Abs(float64(want[i]-before[i])))
	}
	if moved < 1e-4 {
		t.Fatalf("fine-tuning changed the samples by at most %g: the test would not see a missing adapter", moved)
	}

	// Without --merge-lora only the adapter is written, and align sample takes it.
	plain := filepath.Join(dir, "plain")
	train(plain)
	adapter := filepath.Join(plain, "adapter.safetensors")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"sample", "--model", adapter, "--prompt", "red apple", "--num-inference-steps", "2", "-o",
		filepath.Join(dir, "s"), "--json"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "(LoRA on "+base+")") {
		t.Fatalf("sample --model adapter: exit %d: %s %s", code, stdout.String(), stderr.String())
	}

	// A rewritten base (other weights, same architecture) and a missing one are refused.
	b.Blocks[0].Attn.Proj.Weight.Dev.Fill(b.Blocks[0].Attn.Proj.Weight, 0.5)
	if err := b.Save(base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadGenerator(testCPU, adapter); err == nil || !strings.Contains(err.Error(), adapter) ||
		!strings.Contains(err.Error(), "other base weights") || !strings.Contains(err.Error(), base) {
		t.Errorf("adapter on a rewritten base: %v", err)
	}
	os.Remove(base)
	stderr.Reset()
	if code := Main([]string{"sample", "--model", adapter, "--prompt", "red apple", "-o", filepath.Join(dir, "s")}, &stdout, &stderr); code != exitError ||
		!strings.Contains(stderr.String(), "adapter "+adapter+": its base model "+base+" does not exist") {
		t.Errorf("missing base: exit %d: %s", code, stderr.String())
	}
}

func TestFinetuneMissingImagesBeforeTraining(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	text, _ := os.ReadFile(pairs)
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, append(text, []byte(`{"prompt":"red apple","chosen":"img/0.png","rejected":"img/gone.png"}
{"prompt":"red apple","chosen":"img/9.png","rejected":"img/0.png"}
`)...), 0o644)
	out := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"finetune", "--pairs", bad, "--model", model, "-o", out, "--max-train-steps", "2"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), bad+":4: "+filepath.Join(dir, "img", "gone.png")+": no such file") ||
		!strings.Contains(stderr.String(), bad+":5: ") {
		t.Errorf("exit %d: %q", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "logs.jsonl")); err == nil {
		t.Error("training started despite missing images")
	}
	// Malformed lines: every one with file:line.
	os.WriteFile(bad, []byte("{\"prompt\":\"a\"}\nnot json\n"), 0o644)
	stderr.Reset()
	if code := Main([]string{"finetune", "--pairs", bad, "--model", model, "-o", out}, &stdout, &stderr); code != exitError ||
		!strings.Contains(stderr.String(), bad+":1:") || !strings.Contains(stderr.String(), bad+":2:") {
		t.Errorf("malformed: exit %d: %q", code, stderr.String())
	}
}

func TestFinetuneRWRAndSFT(t *testing.T) {
	dir, model, pairs, scored := finetuneFixture(t)
	for _, args := range [][]string{
		{"--method", "rwr", "--scored", scored, "--weights", "ta=1,vq=2", "--temperature", "0.5"},
		{"--method", "rwr", "--scored", scored, "--rwr-groups", "global", "--full-finetune", "--ema-decay", "0.5"},
		{"--method", "sft", "--scored", scored},
		{"--method", "sft", "--pairs", pairs, "--full-finetune"},
	} {
		out := filepath.Join(dir, strings.Join(args[:2], "")+fmt.Sprint(len(args)))
		var stdout, stderr bytes.Buffer
		all := append([]string{"finetune", "--model", model, "-o", out, "--max-train-steps", "2", "--train-batch-size", "2",
			"--lora-rank", "2"}, args...)
		if code := Main(all, &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit %d: %s", args, code, stderr.String())
			continue
		}
		want := "adapter.safetensors"
		if strings.Contains(strings.Join(args, " "), "full") {
			want = "model.safetensors"
		}
		if _, err := os.Stat(filepath.Join(out, want)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if want == "model.safetensors" {
			if _, err := diffusion.LoadDiT(testCPU, filepath.Join(out, want)); err != nil {
				t.Errorf("%v: %v", args, err)
			}
		}
	}
}

func TestFinetuneSIGINT(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	out := filepath.Join(dir, "int")
	var stdout, stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main([]string{"finetune", "--pairs", pairs, "--model", model, "-o", out, "--lora-rank", "2",
			"--max-train-steps", "100000", "--checkpointing-steps", "100000"}, &stdout, &stderr)
	}()
	waitForFirstStep(t, out)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	if code := <-done; code != exitCancel {
		t.Fatalf("exit %d, want %d: %s", code, exitCancel, stderr.String())
	}
	cs, _ := nn.Checkpoints(out)
	if len(cs) != 1 || !strings.Contains(stderr.String(), "resume with --resume-from-checkpoint latest") {
		t.Errorf("checkpoints %v; stderr %q", cs, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "adapter.safetensors")); err != nil {
		t.Error(err)
	}
}

// --model default-video fine-tunes the embedded video model; its adapter names that base, so
// align sample --video loads it onto the video model from any directory.
func TestFinetuneDefaultVideoAdapter(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.gif", "b.gif"} {
		writeTestGIF(t, filepath.Join(dir, name), 8, 10)
	}
	pairs := filepath.Join(dir, "pairs.jsonl")
	os.WriteFile(pairs, []byte(`{"prompt":"a red apple moving left","chosen":"a.gif","rejected":"b.gif"}`+"\n"), 0o644)
	out := filepath.Join(dir, "run")
	code, _, stderr := runAlign(t, "finetune", "--model", "default-video", "--pairs", pairs, "--lora-rank", "2",
		"--max-train-steps", "1", "--train-batch-size", "1", "-o", out)
	if code != exitOK {
		t.Fatalf("finetune: exit %d: %s", code, stderr)
	}
	adapter := filepath.Join(out, "adapter.safetensors")
	c, err := nn.LoadCheckpoint(adapter)
	if err != nil {
		t.Fatal(err)
	}
	if base, ok := dpo.AdapterBase(c); !ok || base != "default-video" {
		t.Errorf("adapter base %q (%v), want default-video", base, ok)
	}
	t.Chdir(t.TempDir()) // the base is found by name, not by a path
	code, stdout, stderr := runAlign(t, "sample", "--video", "--model", adapter, "--prompt", "a red apple moving left",
		"--num-inference-steps", "2", "-o", "s", "--json")
	if code != exitOK || !strings.Contains(stdout, defaultVideoModelName) {
		t.Errorf("sample with the adapter: exit %d, %s\n%s", code, stderr, stdout)
	}
}

// align pairs --video-format mp4 writes the video model's candidates as MP4, which the pairs
// file names and a Flow-DPO run reads; an image model refuses the flag.
func TestPairsVideoFormatFinetune(t *testing.T) {
	testvideo.Require(t)
	dir := t.TempDir()
	pairs := filepath.Join(dir, "pairs.jsonl")
	code, _, stderr := runAlign(t, "pairs", "--model", "default-video", "--reward", "default-video", "--prompt", "a red apple moving left",
		"--num-candidates", "2", "--num-inference-steps", "2", "--video-format", "mp4", "-o", pairs)
	if code != exitOK {
		t.Fatalf("pairs: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(pairs); err != nil || strings.Count(string(b), ".mp4") != 2 {
		t.Fatalf("pairs file: %s (%v)", b, err)
	}
	code, _, stderr = runAlign(t, "finetune", "--model", "default-video", "--pairs", pairs, "--lora-rank", "2",
		"--max-train-steps", "1", "--train-batch-size", "1", "-o", filepath.Join(dir, "run"))
	if code != exitOK {
		t.Errorf("finetune on MP4 pairs: exit %d: %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, "pairs", "--prompt", "red apple", "--video-format", "mp4", "-o", filepath.Join(dir, "img.jsonl")); code != exitUsage ||
		!strings.Contains(stderr, "--video-format sets the file format of a video model's candidates") {
		t.Errorf("image model with --video-format: exit %d, %s", code, stderr)
	}
}

// --validation-prompt: validations before the first step, at the checkpoints and at the
// end, each a grid, a line on stderr and an entry of validation.jsonl (the last in --json);
// a reward model that cannot read the model's samples fails before the first step.
func TestFinetuneValidation(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	reward := writeRewardModel(t, dir, rewards.KindImage) // 8x8, as the tiny model's samples
	out := filepath.Join(dir, "run")
	args := []string{"finetune", "--pairs", pairs, "--model", model, "-o", out, "--train-batch-size", "2", "--lora-rank", "2",
		"--max-train-steps", "3", "--checkpointing-steps", "2", "--validation-prompt", "red apple", "--validation-prompt", "blue car",
		"--num-validation-images", "1", "--validation-inference-steps", "2", "--validation-reward", reward, "--json"}
	code, stdout, stderr := runAlign(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep finetuneReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	v := rep.Validation
	if v == nil || v.Step != 3 || v.Images != 2 || len(v.WinRate) != 2 || v.Against != 0 || rep.ValidationLog != filepath.Join(out, dpo.ValidationFile) {
		t.Fatalf("last validation %+v, log %q", v, rep.ValidationLog)
	}
	for _, step := range []int{0, 2, 3} {
		if !strings.Contains(stderr, fmt.Sprintf("validation at step %d (2 images): vq z ", step)) {
			t.Errorf("stderr has no validation line for step %d:\n%s", step, stderr)
		}
		if _, err := os.Stat(filepath.Join(out, "validation", fmt.Sprintf("step-%06d.png", step))); err != nil {
			t.Error(err)
		}
	}
	if b, _ := os.ReadFile(rep.ValidationLog); strings.Count(string(b), "\n") != 3 {
		t.Errorf("validation.jsonl:\n%s", b)
	}

	// --validation-prompts adds a file's prompts after the flags'.
	list := filepath.Join(dir, "validation.txt")
	os.WriteFile(list, []byte("blue car\n\ngreen apple\n"), 0o644)
	code, _, stderr = runAlign(t, "finetune", "--pairs", pairs, "--model", model, "-o", filepath.Join(dir, "listed"), "--max-train-steps", "1",
		"--lora-rank", "2", "--validation-prompt", "red apple", "--validation-prompts", list, "--num-validation-images", "1",
		"--validation-inference-steps", "2", "--validation-reward", reward)
	if code != exitOK || !strings.Contains(stderr, "validation at step 1 (3 images)") {
		t.Errorf("--validation-prompts: exit %d, %s", code, stderr)
	}
	// The file alone (no --validation-prompt) is enough.
	code, _, stderr = runAlign(t, "finetune", "--pairs", pairs, "--model", model, "-o", filepath.Join(dir, "file-only"), "--max-train-steps", "1",
		"--lora-rank", "2", "--validation-prompts", list, "--num-validation-images", "1", "--validation-inference-steps", "2", "--validation-reward", reward)
	if code != exitOK || !strings.Contains(stderr, "validation at step 1 (2 images)") {
		t.Errorf("--validation-prompts without --validation-prompt: exit %d, %s", code, stderr)
	}
	os.WriteFile(list, []byte("\n"), 0o644)
	if code, _, stderr := runAlign(t, "finetune", "--pairs", pairs, "--model", model, "-o", filepath.Join(dir, "empty"),
		"--validation-prompts", list); code != exitUsage || !strings.Contains(stderr, "--validation-prompts: "+list+": no prompts") {
		t.Errorf("an empty --validation-prompts: exit %d, %s", code, stderr)
	}

	// The embedded reward model reads 32x32 samples, not the tiny model's 8x8: refused before
	// the first step.
	other := filepath.Join(dir, "other")
	code, _, stderr = runAlign(t, "finetune", "--pairs", pairs, "--model", model, "-o", other, "--max-train-steps", "1",
		"--validation-prompt", "red apple")
	if code != exitUsage || !strings.Contains(stderr, "--validation-reward: --reward default: the reward model reads samples of shape [3 32 32], the generator makes [3 8 8]") {
		t.Errorf("default reward on an 8x8 model: exit %d, %s", code, stderr)
	}
	if cs, _ := nn.Checkpoints(other); len(cs) > 0 {
		t.Errorf("a refused run wrote %v", cs)
	}
	if code, _, stderr := runAlign(t, "finetune", "--pairs", pairs, "--model", model, "-o", other, "--num-validation-images", "0"); code != exitUsage ||
		!strings.Contains(stderr, "--num-validation-images must be >= 1") {
		t.Errorf("--num-validation-images 0: exit %d, %s", code, stderr)
	}
}
