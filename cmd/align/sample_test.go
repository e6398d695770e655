// Tests of `align sample`: flag parsing and validation through runF, and end to end with a
// tiny randomly initialised image and video model saved to a temporary directory (files,
// --json, unknown-word warnings, --video mismatch, no files left on failure).
//
// Test: go test ./cmd/align -run Sample
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// runWithStub runs `align <name> args...` with the command's run function replaced by one
// that captures the parsed options.
func runWithStub[T any](t *testing.T, name string, newCmd func(func(*T) error) *cobra.Command, args []string) (*T, error) {
	t.Helper()
	var got *T
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	for _, c := range root.Commands() {
		if c.Name() == name {
			root.RemoveCommand(c)
		}
	}
	root.AddCommand(newCmd(func(o *T) error { got = o; return nil }))
	root.SetArgs(append([]string{name}, args...))
	err := root.Execute()
	return got, err
}

// flagCase is one row of a table-driven flag test: the arguments and either the options
// they parse to (want, or check, which names what is wrong) or a part of the error.
type flagCase[T any] struct {
	args    []string
	want    T
	check   func(o *T) string
	wantErr string
}

// checkFlagCases runs each case through runWithStub and compares the outcome.
func checkFlagCases[T any](t *testing.T, name string, newCmd func(func(*T) error) *cobra.Command, tests []flagCase[T]) {
	t.Helper()
	for _, tt := range tests {
		got, err := runWithStub(t, name, newCmd, tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %v: err = %v, want it to contain %q", name, tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", name, tt.args, err)
			continue
		}
		if tt.check != nil {
			if what := tt.check(got); what != "" {
				t.Errorf("%s %v: wrong %s: %+v", name, tt.args, what, *got)
			}
		} else if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%s %v:\n got  %+v\n want %+v", name, tt.args, *got, tt.want)
		}
	}
}

func TestNewCmdSampleFlags(t *testing.T) {
	def := SampleOptions{NumInferenceSteps: 28, GuidanceScale: 4, NumImagesPerPrompt: 1, Sampler: "euler",
		OutputDir: "samples", GridScale: 2, VideoFormat: "gif", BatchSize: 64, Rewards: []string{"default"}, Combine: "linear", RewardGuidanceStart: 1,
		Particles: 1, FKLambda: 10, FKPotential: "diff", FKResampleEvery: 5, BestOfN: 1, RewardConditionScale: 3, AdapterGuidanceScale: 1}
	with := func(edit func(o *SampleOptions)) SampleOptions {
		o := def
		edit(&o)
		return o
	}
	tests := []flagCase[SampleOptions]{
		{args: []string{"--prompt", "red apple"}, want: with(func(o *SampleOptions) { o.Prompts = []string{"red apple"} })},
		{args: []string{"--prompt", "a, b", "--prompt", "c", "--model", "m.safetensors", "--video", "--num_inference_steps", "10",
			"--guidance-scale", "0", "--num-images-per-prompt", "3", "--seed", "7", "--sampler", "sde", "--shift", "3",
			"-o", "out", "--json"},
			want: with(func(o *SampleOptions) {
				o.Prompts, o.Model, o.Video, o.NumInferenceSteps = []string{"a, b", "c"}, "m.safetensors", true, 10
				o.GuidanceScale, o.NumImagesPerPrompt, o.Seed, o.Sampler, o.Shift = 0, 3, 7, "sde", 3
				o.OutputDir, o.JSON = "out", true
			})},
		{args: []string{"--prompt", "x", "--video-format", "mp4"}, want: with(func(o *SampleOptions) { o.Prompts, o.VideoFormat = []string{"x"}, "mp4" })},
		{args: []string{"--prompts", "p.txt"}, want: with(func(o *SampleOptions) { o.PromptsFile = "p.txt" })},
		{args: []string{"--prompt", "x", "--particles", "4", "--fk-lambda", "2", "--fk-potential", "max", "--fk-adaptive",
			"--reward", "r.onnx", "--reward-weights", "vq=1,ta=2", "--combine", "lsc"},
			want: with(func(o *SampleOptions) {
				o.Prompts, o.Particles, o.FKLambda, o.FKPotential, o.FKAdaptive = []string{"x"}, 4, 2, "max", true
				o.Sampler, o.Rewards, o.RewardWeights, o.Combine = "sde", []string{"r.onnx"}, "vq=1,ta=2", "lsc"
				o.BatchSize = 16 // k = 4 candidates per output image: 64/4 by default
			})},
		{args: []string{"--prompt", "x", "--best-of-n", "5", "--batch-size", "64"},
			want: with(func(o *SampleOptions) { o.Prompts, o.BestOfN = []string{"x"}, 5 })}, // an explicit value stays
		{args: []string{"--prompt", "x", "--reward-guidance-scale", "100", "--reward-guidance-start", "0.9", "--reward-guidance-end", "0.1",
			"--best-of-n", "3", "--reward-condition", "vq=max", "--reward-condition-scale", "2", "--reward-condition-per-dim"},
			want: with(func(o *SampleOptions) {
				o.Prompts, o.RewardGuidanceScale, o.RewardGuidanceStart, o.RewardGuidanceEnd = []string{"x"}, 100, 0.9, 0.1
				o.BestOfN, o.RewardCondition, o.RewardConditionScale, o.RewardConditionPerDim = 3, "vq=max", 2, true
				o.BatchSize = 21
			})},
		{args: []string{"--prompt", "x", "--particles", "-2"}, wantErr: "--particles must be >= 1, got -2"},
		{args: []string{"--prompt", "x", "--particles", "2", "--sampler", "euler"}, wantErr: "--particles needs --sampler sde"},
		{args: []string{"--prompt", "x", "--particles", "2", "--best-of-n", "2"}, wantErr: "use one of them"},
		{args: []string{"--prompt", "x", "--best-of-n", "0"}, wantErr: "--best-of-n must be >= 1"},
		{args: []string{"--prompt", "x", "--particles", "2", "--fk-potential", "best"}, wantErr: `--fk-potential "best"`},
		{args: []string{"--prompt", "x", "--particles", "2", "--fk-resample-every", "0"}, wantErr: "--fk-resample-every"},
		{args: []string{"--prompt", "x", "--reward-guidance-scale", "-1"}, wantErr: "--reward-guidance-scale must be"},
		{args: []string{"--prompt", "x", "--reward-guidance-end", "0.8", "--reward-guidance-start", "0.5"}, wantErr: "want 0 <= end <= start <= 1"},
		{args: []string{"--prompt", "x", "--combine", "max"}, wantErr: `--combine "max"`},
		{args: nil, wantErr: "no prompts"},
		{args: []string{"--prompt", "x", "--video-format", "avi"}, wantErr: `--video-format "avi": want gif or mp4`},
		{args: []string{"--prompt", "  "}, wantErr: "--prompt 1 is empty"},
		{args: []string{"--prompt", "x", "--num-inference-steps", "0"}, wantErr: "--num-inference-steps must be >= 1"},
		{args: []string{"--prompt", "x", "--guidance-scale", "-1"}, wantErr: "--guidance-scale must be a finite number >= 0"},
		{args: []string{"--prompt", "x", "--guidance-scale", "NaN"}, wantErr: "--guidance-scale must be a finite number >= 0"},
		{args: []string{"--prompt", "x", "--shift", "Inf"}, wantErr: "--shift must be a finite number > 0"},
		{args: []string{"--prompt", "x", "--num-images-per-prompt", "0"}, wantErr: "--num-images-per-prompt must be >= 1"},
		{args: []string{"--prompt", "x", "--sampler", "ddim"}, wantErr: `--sampler "ddim"`},
		{args: []string{"--prompt", "x", "--shift", "-1"}, wantErr: "--shift must be a finite number > 0"},
		{args: []string{"--prompt", "x", "--seed", "-1"}, wantErr: "invalid argument"},
		{args: []string{"--prompt", "x", "extra"}, wantErr: "unknown command"},
	}
	checkFlagCases(t, "sample", newCmdSample, tests)
}

func TestReadPrompts(t *testing.T) {
	dir := t.TempDir()
	txt := filepath.Join(dir, "p.txt")
	os.WriteFile(txt, []byte("red apple\r\n\n  a cat  \n"), 0o644)
	if got, err := readPrompts(txt); err != nil || !reflect.DeepEqual(got, []string{"red apple", "a cat"}) {
		t.Errorf("text: %q %v", got, err)
	}
	jl := filepath.Join(dir, "p.JSONL")
	os.WriteFile(jl, []byte(`{"prompt": "red apple", "id": 3}`+"\n\n"+`{"prompt": "a cat"}`+"\n"), 0o644)
	if got, err := readPrompts(jl); err != nil || !reflect.DeepEqual(got, []string{"red apple", "a cat"}) {
		t.Errorf("jsonl: %q %v", got, err)
	}
	for _, c := range []struct{ data, want string }{
		{"\n \n", "p.jsonl: no prompts in the file"},
		{`{"prompt": "a"}` + "\n" + `{"text": "b"}`, `p.jsonl:2: no "prompt"`},
		{`{"prompt": " "}`, `p.jsonl:1: no "prompt"`},
		{`{"prompt": "a"`, "p.jsonl:1: unexpected end of JSON input"},
	} {
		if _, err := parsePrompts("p.jsonl", []byte(c.data), true); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.data, err, c.want)
		}
	}
	if _, err := readPrompts(filepath.Join(dir, "none.txt")); err == nil || !strings.Contains(err.Error(), "--prompts: open") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParsePrompts: accepted prompts are non-empty after trimming; a refused file names
// itself (and the line, for a bad record).
// Fuzz: go test ./cmd/align -run '^$' -fuzz FuzzParsePrompts -fuzztime 30s
func FuzzParsePrompts(f *testing.F) {
	f.Add([]byte("red apple\n\n a cat\n"), false)
	f.Add([]byte(`{"prompt": "red apple"}`+"\n"+`{"prompt": ""}`), true)
	f.Add([]byte(`{"prompt": "a\u0000b"}`), true)
	f.Fuzz(func(t *testing.T, data []byte, jsonl bool) {
		got, err := parsePrompts("p", data, jsonl)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "p:") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("accepted without prompts")
		}
		for i, p := range got {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("prompt %d is blank: %q", i, p)
			}
		}
	})
}

// saveTinyModel writes a tiny randomly initialised model of the given kind and returns its path.
func saveTinyModel(t *testing.T, dir, kind string) string {
	t.Helper()
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "green apple moving left", "blue car"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := diffusion.ModelConfig{Kind: kind, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2, MaxTextLen: 4,
		VocabSize: tok.VocabSize(), RewardDims: []string{}, Shift: 1}
	if kind == diffusion.KindVideo {
		cfg.Frames, cfg.TubeletFrames = 4, 2
	}
	path := filepath.Join(dir, kind+".safetensors")
	saveRandomModel(t, path, cfg, tok, 1)
	return path
}

// saveRandomModel saves a DiT of cfg with tokenizer tok to path, every weight drawn from
// N(0, 0.2^2) with seed: a "trained" model (a fresh one's zero-initialised gates and output
// layer would return every sample's initial noise).
func saveRandomModel(t *testing.T, path string, cfg diffusion.ModelConfig, tok *diffusion.Tokenizer, seed uint64) {
	t.Helper()
	m, err := diffusion.NewDiT(kernels.NewCPU(0), &kernels.RNG{Seed: seed}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tok
	r := rand.New(rand.NewPCG(seed, seed))
	for _, p := range m.Params() {
		v := make([]float32, p.W.Len())
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.2)
		}
		p.W.Dev.CopyFromHost(p.W, v)
	}
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
}

func TestSampleEndToEnd(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	args := []string{"sample", "--model", model, "--prompt", "red apple", "--prompt", "purple car",
		"--num-images-per-prompt", "2", "--num-inference-steps", "3", "--seed", "5", "-o", out, "--json"}
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep sampleReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if len(rep.Files) != 4 || rep.Files[3].Prompt != "purple car" || rep.Files[3].Image != 1 || rep.Grid != filepath.Join(out, "grid.png") {
		t.Fatalf("report %+v", rep)
	}
	for _, f := range append([]string{rep.Grid}, rep.Files[0].Path, rep.Files[3].Path) {
		if _, err := os.Stat(f); err != nil {
			t.Error(err)
		}
	}
	if filepath.Base(rep.Files[2].Path) != "002-purple-car.png" {
		t.Errorf("file name %s", rep.Files[2].Path)
	}
	if !strings.Contains(stderr.String(), "purple") || !strings.Contains(stderr.String(), "warning") {
		t.Errorf("no unknown-word warning on stderr: %q", stderr.String())
	}
	if !strings.Contains(stderr.String(), "sampling: 3/3") {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}

	// Same seed, same bytes.
	first, _ := os.ReadFile(rep.Files[0].Path)
	stdout.Reset()
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatal(stderr.String())
	}
	again, _ := os.ReadFile(rep.Files[0].Path)
	if !bytes.Equal(first, again) {
		t.Error("same seed gave a different image")
	}

	// A model of the other kind is refused either way.
	if code := Main([]string{"sample", "--model", model, "--video", "--prompt", "red apple", "-o", out}, &stdout, &stderr); code != exitUsage {
		t.Errorf("--video with an image model: exit %d", code)
	}
	// Without --model: the embedded default image model; --video has no default yet.
	stdout.Reset()
	stderr.Reset()
	def := filepath.Join(dir, "default")
	if code := Main([]string{"sample", "--prompt", "red apple", "--num-inference-steps", "2", "-o", def, "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("default model: exit %d, %q", code, stderr.String())
	}
	var drep sampleReport
	if err := json.Unmarshal(stdout.Bytes(), &drep); err != nil || !strings.Contains(drep.Model, "embedded") || len(drep.Files) != 1 {
		t.Errorf("default model report %+v (%v)", drep, err)
	}
	stdout.Reset()
	if code := Main([]string{"sample", "--prompt", "red apple", "--num-inference-steps", "2", "-o", def}, &stdout, &stderr); code != exitOK ||
		!strings.Contains(stdout.String(), "wrote 1 image and grid.png") {
		t.Errorf("one image: exit %d, stdout %q", code, stdout.String())
	}
	// --video without --model: the embedded video model, one GIF per clip.
	stderr.Reset()
	stdout.Reset()
	vid := filepath.Join(dir, "default-video")
	if code := Main([]string{"sample", "--video", "--prompt", "a red apple moving left", "--num-inference-steps", "2", "-o", vid, "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("--video without --model: exit %d, %q", code, stderr.String())
	}
	var vrep sampleReport
	if err := json.Unmarshal(stdout.Bytes(), &vrep); err != nil || vrep.Model != defaultVideoModelName || len(vrep.Files) != 1 ||
		!strings.HasSuffix(vrep.Files[0].Path, ".gif") {
		t.Errorf("default video model report %+v (%v)", vrep, err)
	}
}

func TestSampleVideoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindVideo)
	prompts := filepath.Join(dir, "p.jsonl")
	os.WriteFile(prompts, []byte(`{"prompt":"red apple moving left"}`+"\n\n"+`{"prompt":"blue car"}`+"\n"), 0o644)
	out := filepath.Join(dir, "vid")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"sample", "--model", model, "--video", "--prompts", prompts, "--num-inference-steps", "2",
		"--sampler", "heun", "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"000-red-apple-moving-left.gif", "001-blue-car.gif", "grid.gif"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "wrote 2 videos") {
		t.Errorf("stdout %q", stdout.String())
	}
	if code := Main([]string{"sample", "--model", model, "--prompt", "blue car", "-o", out}, &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "add --video") {
		t.Errorf("video model without --video: exit %d, %q", code, stderr.String())
	}
}

func TestSampleFailureLeavesNoFiles(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	// The output "directory" is a file: nothing can be written, and nothing is.
	blocked := filepath.Join(dir, "blocked")
	os.WriteFile(blocked, []byte("x"), 0o644)
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "1", "-o", blocked},
		&stdout, &stderr); code != exitError {
		t.Errorf("exit %d", code)
	}
	// A grid that cannot be written (a directory in its place) removes the images already written.
	out := filepath.Join(dir, "out")
	os.MkdirAll(filepath.Join(out, "grid.png"), 0o755)
	os.WriteFile(filepath.Join(out, "grid.png", "keep"), []byte("x"), 0o644)
	if code := Main([]string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "1", "-o", out},
		&stdout, &stderr); code != exitError {
		t.Errorf("exit %d", code)
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 1 || ents[0].Name() != "grid.png" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("after a failed run the output holds %v", names)
	}
	// Corrupt and missing model files are named in the error.
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("not a model"), 0o644)
	stderr.Reset()
	Main([]string{"sample", "--model", bad, "--prompt", "x", "-o", out}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), bad) {
		t.Errorf("corrupt model: %q", stderr.String())
	}
	stderr.Reset()
	Main([]string{"sample", "--prompts", filepath.Join(dir, "none.txt"), "--model", model, "-o", out}, &stdout, &stderr)
	if !strings.Contains(stderr.String(), "none.txt") {
		t.Errorf("missing prompts file: %q", stderr.String())
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{"Red Apple!": "red-apple", "  a -- b ": "a-b", "😀": "prompt",
		"woman vampire, light skin tone": "woman-vampire-light-skin-tone"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q, want %q", in, got, want)
		}
	}
}

// Reward steering end to end with a tiny native reward model: FK particles and best-of-N
// report their reward calls per image, a fixed seed gives the same files, and the errors
// for Flow-NRG without a noise-aware model, a weight for a missing dimension and a reward
// condition for a model without the slot.
func TestSampleSteering(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	reward := writeRewardModel(t, dir, "image")
	// run samples with the native reward model unless extra names its own (--reward is
	// repeatable: two would be an ensemble).
	run := func(out string, extra ...string) (sampleReport, string, int) {
		args := []string{"sample", "--model", model, "--prompt", "red apple", "--prompt", "blue car",
			"--num-inference-steps", "4", "--seed", "3", "-o", filepath.Join(dir, out), "--json"}
		if !slices.Contains(extra, "--reward") {
			args = append(args, "--reward", reward)
		}
		return sampleJSON(t, append(args, extra...))
	}
	// FK: evaluations at step 2 of 0..3 plus the final scoring, 3 particles: 6 calls per image.
	rep, errs, code := run("fk", "--particles", "3", "--fk-resample-every", "2", "--reward-weights", "vq=1,ta=1")
	if code != exitOK {
		t.Fatalf("fk: exit %d: %s", code, errs)
	}
	s := rep.Steering
	if s == nil || len(rep.Files) != 2 || s.CallsPerImage != 6 || s.RewardCalls != 12 || s.Resamples != 2 || rep.Sampler != "sde" ||
		rep.Files[0].Reward == nil || len(rep.Files[0].Rewards) != 2 {
		t.Fatalf("fk report %+v steering %+v", rep, s)
	}
	again, _, _ := run("fk2", "--particles", "3", "--fk-resample-every", "2", "--reward-weights", "vq=1,ta=1")
	for i := range rep.Files {
		a, _ := os.ReadFile(rep.Files[i].Path)
		b, _ := os.ReadFile(again.Files[i].Path)
		if !bytes.Equal(a, b) || *rep.Files[i].Reward != *again.Files[i].Reward {
			t.Fatalf("file %d differs between runs with the same seed", i)
		}
	}
	rep, errs, code = run("bon", "--best-of-n", "3", "--combine", "pareto")
	if code != exitOK || rep.Steering.CallsPerImage != 3 || rep.Steering.Methods[0] != "best-of-n" || len(rep.Files) != 2 {
		t.Fatalf("best-of-n: exit %d %s %+v", code, errs, rep.Steering)
	}
	// Flow-NRG with a latent reward model cut from the generator: every step but t = 1.
	latent := saveTinyLatent(t, dir, model)
	rep, errs, code = run("nrg", "--reward", latent, "--reward-guidance-scale", "100", "--reward-weights", "ta=1")
	if code != exitOK || rep.Steering.GradientCalls != 3 || rep.Steering.Methods[0] != "nrg" || rep.Steering.Weights != "ta=1" {
		t.Fatalf("nrg: exit %d %s %+v", code, errs, rep.Steering)
	}
	rep, errs, code = run("nrgfk", "--reward", latent, "--reward-guidance-scale", "10", "--particles", "2", "--fk-adaptive")
	if code != exitOK || rep.Steering.GradientCalls != 3 || len(rep.Steering.Methods) != 2 || rep.Steering.CallsPerImage != 2*4 {
		t.Fatalf("nrg+fk: exit %d %s %+v", code, errs, rep.Steering)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--reward-guidance-scale", "100"}, "not noise-aware"},
		{[]string{"--reward-guidance-scale", "100", "--reward", "default"}, "the latent reward model reads samples of shape"},
		{[]string{"--best-of-n", "2", "--reward-weights", "mq=1"}, `unknown reward dimension "mq"`},
		{[]string{"--reward-condition", "vq=max"}, "no reward-condition slot"},
	} {
		if _, errs, code := run("bad", c.args...); code == exitOK || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, errs, c.want)
		}
	}
}

// --batch-size changes how many images are sampled together, not the images: plain sampling,
// FK (resampling streams numbered by image), best-of-N and Flow-NRG with FK give the same
// files, rewards and counts at 1, 4 (chunks of 4 and 2) and 64 (one chunk).
func TestSampleBatchSize(t *testing.T) {
	if !kernels.BatchInvariant() {
		t.Skip("OpenBLAS multiplies here: a row's result depends on the batch (kernels.BatchInvariant)")
	}
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	reward := writeRewardModel(t, dir, "image")
	latent := saveTinyLatent(t, dir, model)
	for name, extra := range map[string][]string{
		"plain":  nil,
		"fk":     {"--reward", reward, "--particles", "3", "--fk-resample-every", "2"},
		"bon":    {"--reward", reward, "--best-of-n", "3"},
		"nrg-fk": {"--reward", latent, "--reward-guidance-scale", "10", "--particles", "2", "--fk-adaptive"},
	} {
		var runs []sampleReport
		for _, bs := range []string{"1", "4", "64"} {
			rep, errs, code := sampleJSON(t, append([]string{"sample", "--model", model, "--prompt", "red apple", "--prompt", "blue car",
				"--prompt", "green apple", "--num-images-per-prompt", "2", "--num-inference-steps", "4", "--seed", "3", "--batch-size", bs,
				"-o", filepath.Join(dir, name+"-"+bs), "--json"}, extra...))
			if code != exitOK || len(rep.Files) != 6 {
				t.Fatalf("%s, --batch-size %s: exit %d: %s", name, bs, code, errs)
			}
			runs = append(runs, rep)
		}
		for _, r := range runs[1:] {
			for i := range r.Files {
				a, _ := os.ReadFile(runs[0].Files[i].Path)
				b, _ := os.ReadFile(r.Files[i].Path)
				if len(a) == 0 || !bytes.Equal(a, b) || fmt.Sprint(runs[0].Files[i].Rewards) != fmt.Sprint(r.Files[i].Rewards) {
					t.Errorf("%s: image %d differs between --batch-size 1 and another", name, i)
				}
			}
			if s0, s := runs[0].Steering, r.Steering; s0 != nil && (s0.RewardCalls != s.RewardCalls || s0.Resamples != s.Resamples ||
				s0.GradientCalls != s.GradientCalls) {
				t.Errorf("%s: steering %+v against %+v", name, s, s0)
			}
		}
	}
	if _, errs, code := sampleJSON(t, []string{"sample", "--model", model, "--prompt", "x", "--batch-size", "0", "-o", filepath.Join(dir, "bad")}); code != exitUsage ||
		!strings.Contains(errs, "--batch-size must be >= 1") {
		t.Errorf("--batch-size 0: exit %d: %s", code, errs)
	}
}

// saveTinyLatent writes a latent (vq, ta) reward model cut from the first block of the
// generator file model into dir and returns its path.
func saveTinyLatent(t *testing.T, dir, model string) string {
	t.Helper()
	gen, err := diffusion.LoadDiT(kernels.NewCPU(1), model)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := rewards.NewLatentFromGenerator(kernels.NewCPU(1), &kernels.RNG{Seed: 4}, gen, rewards.LatentConfig{Blocks: 1, HeadHidden: 8, Dims: []string{"vq", "ta"}, Source: model})
	if err != nil {
		t.Fatal(err)
	}
	latent := filepath.Join(dir, "latent.safetensors")
	if err := lm.Save(latent); err != nil {
		t.Fatal(err)
	}
	return latent
}

// Video: FK and best-of-N with a clip reward (vq, ta, mq) and with an image reward scored
// frame by frame.
func TestSampleSteeringVideo(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindVideo)
	for _, c := range []struct{ reward, weights string }{
		{writeRewardModel(t, dir, "video"), "vq=1,mq=1,ta=1"},
		{writeRewardModel(t, dir, "image"), "vq=1"},
	} {
		for _, mode := range [][]string{{"--particles", "2", "--fk-resample-every", "1"}, {"--best-of-n", "2", "--combine", "lsc"}} {
			var stdout, stderr bytes.Buffer
			args := append([]string{"sample", "--model", model, "--video", "--prompt", "red apple", "--num-inference-steps", "3",
				"--reward", c.reward, "--reward-weights", c.weights, "-o", filepath.Join(dir, "out"), "--json"}, mode...)
			if code := Main(args, &stdout, &stderr); code != exitOK {
				t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
			}
			var rep sampleReport
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Steering == nil || len(rep.Files) != 1 {
				t.Fatalf("%v: %v %+v", args, err, rep)
			}
		}
	}
}

// The embedded latent reward model guides the embedded generator when --reward is default and
// --reward-guidance-scale is set: one gradient per step (none at t = 1), and the guidance
// changes the image.
func TestSampleDefaultLatentGuidance(t *testing.T) {
	dir := t.TempDir()
	run := func(out string, extra ...string) (sampleReport, string, int) {
		return sampleJSON(t, append([]string{"sample", "--prompt", "red apple", "--num-inference-steps", "3", "--seed", "5",
			"-o", filepath.Join(dir, out), "--json"}, extra...))
	}
	rep, errs, code := run("nrg", "--reward-guidance-scale", "100", "--reward-weights", "vq=1")
	if code != exitOK || rep.Steering == nil || rep.Steering.GradientCalls != 2 || !strings.Contains(rep.Steering.Reward, "latent") {
		t.Fatalf("default latent guidance: exit %d %s %+v", code, errs, rep.Steering)
	}
	if _, errs, code := run("plain"); code != exitOK {
		t.Fatalf("unguided: exit %d %s", code, errs)
	}
	guided, err := os.ReadFile(rep.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := os.ReadFile(filepath.Join(dir, "plain", filepath.Base(rep.Files[0].Path)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(guided, plain) {
		t.Error("guidance by the default latent model left the image unchanged")
	}
}

// sampleJSON runs align with args (a sample command with --json) and returns its report,
// stderr and exit code.
func sampleJSON(t *testing.T, args []string) (sampleReport, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(args, &stdout, &stderr)
	var rep sampleReport
	if code == exitOK {
		if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
			t.Fatalf("--json: %v\n%s", err, stdout.String())
		}
	}
	return rep, stderr.String(), code
}

func TestSampleVideoDefaultReward(t *testing.T) {
	// A video model reads --reward default as the embedded video reward model (vq, ta, mq);
	// gradient guidance refuses it (no latent video model is embedded) with a hint.
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"sample", "--video", "--prompt", "a red apple moving left", "--num-inference-steps", "2",
		"--best-of-n", "2", "--reward-weights", "mq=1", "-o", filepath.Join(dir, "bon"), "--json"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("best-of-n: exit %d, %q", code, stderr.String())
	}
	var rep sampleReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || rep.Steering == nil ||
		!strings.Contains(rep.Steering.Reward, "video reward model") || rep.Steering.Weights != "mq=1" {
		t.Errorf("report %+v (%v)", rep.Steering, err)
	}
	stderr.Reset()
	out := filepath.Join(dir, "nrg")
	if code := Main([]string{"sample", "--video", "--prompt", "a red apple moving left", "--reward-guidance-scale", "10", "-o", out},
		&stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "align reward train --latent --video") {
		t.Errorf("nrg with default reward: exit %d, %q", code, stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s written by a refused run (%v)", out, err)
	}
}

// Prompt-word warnings: a line for each of the first three prompts with unknown words or
// too many, then one line for the rest, its unknown words listed once each.
func TestWarnPromptWords(t *testing.T) {
	tok, err := diffusion.BuildTokenizer([]string{"red apple car"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	warnPromptWords(&b, tok, []string{"red apple", "red zebra", "blue car", "red apple car red apple", "zebra", "green apple", "zebra car", "red"})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		`align: warning: prompt "red zebra": words not in the model's vocabulary (` + fmt.Sprint(tok.VocabSize()) + ` words): zebra`,
		`align: warning: prompt "blue car": words not in the model's vocabulary (` + fmt.Sprint(tok.VocabSize()) + ` words): blue`,
		`align: warning: prompt "red apple car red apple": 1 word beyond the model's 4-token limit left out`,
		`align: warning: 3 more prompts with words not in the model's vocabulary or beyond its token limit: zebra, green`,
	}
	if !slices.Equal(lines, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	b.Reset()
	warnPromptWords(&b, tok, []string{"red apple", "car"})
	if b.Len() != 0 {
		t.Errorf("known words warned: %q", b.String())
	}
}

// --video-format mp4 writes each clip and the grid as MP4, enlarged to 256 pixels a side,
// 0.12 s a frame, whose frames read back at the model's size (the box filter of align score)
// are those of the GIF of the same seed to within the two encoders' losses; the folder
// scores by samples.json's prompts; an image model or an unknown format is refused.
func TestSampleVideoFormat(t *testing.T) {
	testvideo.Require(t)
	dir := t.TempDir()
	args := []string{"sample", "--video", "--prompt", "a red apple moving left", "--prompt", "rocket moving up", "--num-inference-steps", "2"}
	gifDir, mp4Dir := filepath.Join(dir, "gif"), filepath.Join(dir, "mp4")
	if code, _, stderr := runAlign(t, append(args, "-o", gifDir)...); code != exitOK {
		t.Fatalf("gif: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runAlign(t, append(args, "-o", mp4Dir, "--video-format", "mp4")...)
	if code != exitOK || !strings.Contains(stdout, "wrote 2 videos and grid.mp4") {
		t.Fatalf("mp4: exit %d, %s%s", code, stdout, stderr)
	}
	for _, name := range []string{"000-a-red-apple-moving-left", "001-rocket-moving-up"} {
		mp4 := filepath.Join(mp4Dir, name+".mp4")
		got, err := scoring.LoadClipFrames(mp4, 0, 8, 1/0.12)
		if err != nil {
			t.Fatal(err)
		}
		want, err := scoring.LoadClipFrames(filepath.Join(gifDir, name+".gif"), 0, 8, 1/0.12)
		if err != nil {
			t.Fatal(err)
		}
		if b := got[0].Bounds(); b.Dx() != 256 || b.Dy() != 256 {
			t.Errorf("%s: frames of %v, want 256x256", mp4, b)
		}
		// In levels of 255: the GIF's palette and H.264 at CRF 18 each lose a few (3.5 and 2.1
		// here; without the enlargement, 6.3 and 4.2).
		if sum, n := levelDiff(got, want); sum/float64(n) > 5 {
			t.Errorf("%s: mean |MP4 - GIF| %.2f levels", name, sum/float64(n))
		}
	}
	rows := scoreJSONL(t, mp4Dir, "--reward", "default-video")
	if len(rows) != 2 || rows[1]["prompt"] != "rocket moving up" || rows[1]["error"] != nil {
		t.Errorf("scoring the mp4 folder: %v", rows)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "--prompt", "red apple", "--video-format", "mp4", "-o", dir}, "--video-format sets the file format of a video model's clips; default (embedded image-base) is an image model"},
		{append(args, "--video-format", "webm", "-o", dir), `--video-format "webm": want gif or mp4`},
	} {
		if code, _, stderr := runAlign(t, c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, stderr)
		}
	}
	t.Setenv("ALIGN_FFMPEG", filepath.Join(dir, "none"))
	if code, _, stderr := runAlign(t, append(args, "--video-format", "mp4", "-o", filepath.Join(dir, "x"))...); code != exitError ||
		!strings.Contains(stderr, "--video-format mp4: $ALIGN_FFMPEG") {
		t.Errorf("no ffmpeg: exit %d, %q", code, stderr)
	} else if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Error("no ffmpeg: the output folder was made")
	}
}
