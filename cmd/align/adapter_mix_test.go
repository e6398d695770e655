// Tests of --adapter: LoRA adapters and fully fine-tuned model files of one base mixed by
// weight in align sample and align export safetensors. Weight 1 alone is the fine-tuning's
// model, weight 0 the base; a mix's weights are the base plus the weighted updates (checked
// by linearity on the exported files); a mix samples (align sample, align pairs) as its
// exported file does; fine-tune guidance at 0 and 1 samples the base and the mix; bad
// weights, model files that record no base and fine-tunings of other weights are refused
// with the flag named.
//
// Test: go test ./cmd/align -run AdapterMix
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestAdapterMix(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != want {
			t.Fatalf("align %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	// Two adapters of the base: other targets, seeds and ranks.
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, r := range []struct{ out, seed, rank, targets string }{{a, "1", "2", "qkv,proj"}, {b, "2", "3", "proj,fc1,fc2"}} {
		run(exitOK, "finetune", "--pairs", pairs, "--model", model, "-o", r.out, "--lora-rank", r.rank, "--lora-targets", r.targets,
			"--seed", r.seed, "--max-train-steps", "2", "--train-batch-size", "2", "--lr-warmup-steps", "0", "--learning-rate", "1e-2")
	}
	a, b = filepath.Join(a, "adapter.safetensors"), filepath.Join(b, "adapter.safetensors")

	// Exported mixes, and the reference files: the base, and each adapter at weight 1 alone.
	export := func(name string, args ...string) map[string][]float32 {
		t.Helper()
		return exportWeights(t, filepath.Join(dir, name+".safetensors"), args...)
	}
	base := export("base", "--model", model)
	onlyA, onlyB := export("only-a", "--adapter", a), export("only-b", "--model", model, "--adapter", b+"=1")
	mix := export("mix", "--adapter", a+"=0.5", "--adapter", b+"=-1.5")
	zero := export("zero", "--adapter", a+"=0")
	movedA, movedB := 0, 0
	for name, w0 := range base {
		for i, v := range w0 {
			da, db := float64(onlyA[name][i]-v), float64(onlyB[name][i]-v)
			want := float64(v) + 0.5*da - 1.5*db
			if got := float64(mix[name][i]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("%s[%d]: the mix has %v, base + 0.5 ΔA - 1.5 ΔB is %v", name, i, got, want)
			}
			if zero[name][i] != v {
				t.Fatalf("%s[%d]: weight 0 gives %v, the base %v", name, i, zero[name][i], v)
			}
			if da != 0 {
				movedA++
			}
			if db != 0 {
				movedB++
			}
		}
	}
	if movedA == 0 || movedB == 0 {
		t.Fatalf("the adapters moved %d and %d weights: the test would not see a weight ignored", movedA, movedB)
	}
	c, err := nn.LoadCheckpoint(filepath.Join(dir, "mix.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []adapterWeight
	if err := json.Unmarshal([]byte(c.Extra[metaMergedAdapters]), &listed); err != nil || len(listed) != 2 ||
		listed[0] != (adapterWeight{a, 0.5}) || listed[1] != (adapterWeight{b, -1.5}) {
		t.Errorf("merged_adapters metadata %q (%v)", c.Extra[metaMergedAdapters], err)
	}

	// align sample: --adapter A is --model A (the same merge, the same bits), a mix samples as
	// its exported file, and the report names the mix.
	sample := func(name string, args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, "samples-"+name)
		stdout, _ := run(exitOK, append([]string{"sample", "--prompt", "red apple", "--prompt", "blue car", "--num-inference-steps", "2",
			"--seed", "4", "-o", out, "--json"}, args...)...)
		if name == "mix" && !strings.Contains(stdout, "0.5 x "+a+" + -1.5 x "+b) {
			t.Errorf("the report does not name the mix: %s", stdout)
		}
		grid, err := os.ReadFile(filepath.Join(out, "grid.png"))
		if err != nil {
			t.Fatal(err)
		}
		return grid
	}
	if !bytes.Equal(sample("adapter-flag", "--model", model, "--adapter", a), sample("adapter-model", "--model", a)) {
		t.Error("--adapter A samples other images than --model A")
	}
	mixed := sample("mix", "--adapter", a+"=0.5", "--adapter", b+"=-1.5")
	if !bytes.Equal(mixed, sample("mix-file", "--model", filepath.Join(dir, "mix.safetensors"))) {
		t.Error("the mix samples other images than its exported file")
	}
	baseGrid := sample("base", "--model", model)
	if bytes.Equal(mixed, baseGrid) {
		t.Error("the mix samples the base's images: the test would not see the adapters ignored")
	}

	// Fine-tune guidance: scale 0 is the base, bit for bit, 1 the mix; 2 is reported and
	// differs from both.
	if !bytes.Equal(sample("rlg-0", "--adapter", a+"=0.5", "--adapter", b+"=-1.5", "--adapter-guidance-scale", "0"), baseGrid) {
		t.Error("--adapter-guidance-scale 0 samples other images than the base")
	}
	if !bytes.Equal(sample("rlg-1", "--adapter", a+"=0.5", "--adapter", b+"=-1.5", "--adapter-guidance-scale", "1"), mixed) {
		t.Error("--adapter-guidance-scale 1 samples other images than the mix")
	}
	stdout, _ := run(exitOK, "sample", "--prompt", "red apple", "--num-inference-steps", "2", "--seed", "4", "-o", filepath.Join(dir, "rlg-2"),
		"--json", "--adapter", a, "--adapter-guidance-scale", "2")
	var rep sampleReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.Steering == nil ||
		len(rep.Steering.Methods) != 1 || rep.Steering.Methods[0] != "adapter-guidance" || rep.Steering.AdapterGuidanceScale != 2 {
		t.Errorf("--adapter-guidance-scale 2: report %s (%v)", stdout, err)
	}
	twice, err := os.ReadFile(filepath.Join(dir, "rlg-2", "grid.png"))
	if err != nil || bytes.Equal(twice, sample("rlg-a", "--adapter", a)) || bytes.Equal(twice, baseGrid) {
		t.Errorf("--adapter-guidance-scale 2 samples the base's or the adapter's images (%v)", err)
	}

	// align pairs: the mix's candidates are its exported file's.
	reward := writeRewardModel(t, dir, rewards.KindImage)
	candidates := func(name string, args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, "pairs-"+name+".jsonl")
		run(exitOK, append([]string{"pairs", "--prompt", "red apple", "--reward", reward, "--num-candidates", "2", "--num-inference-steps", "2",
			"--seed", "4", "--scored", "-o", out}, args...)...)
		var all []byte
		for i := range 2 {
			b, err := os.ReadFile(filepath.Join(dir, "pairs-"+name+"-images", fmt.Sprintf("000000-%02d-red-apple.png", i)))
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}
	if !bytes.Equal(candidates("mix", "--adapter", a+"=0.5", "--adapter", b+"=-1.5"),
		candidates("mix-file", "--model", filepath.Join(dir, "mix.safetensors"))) {
		t.Error("align pairs --adapter: the mix's candidates differ from its exported file's")
	}

	// Refused: a weight that is not a finite number, a model file as an adapter, an adapter on
	// other weights (here the mix), and a missing file.
	for _, c := range []struct {
		code int
		args []string
		want []string
	}{
		{exitUsage, []string{"--adapter", a + "=half"}, []string{`--adapter "` + a + `=half"`, "finite number"}},
		{exitUsage, []string{"--adapter", a + "=NaN"}, []string{"finite number"}},
		{exitUsage, []string{"--adapter", "=1"}, []string{"no file"}},
		{exitUsage, []string{"--adapter-guidance-scale", "2"}, []string{"give --adapter"}},
		{exitUsage, []string{"--adapter", a, "--adapter-guidance-scale", "2", "--reward-condition", "vq=1"}, []string{"use one of them"}},
		{exitUsage, []string{"--adapter", a, "--adapter-guidance-scale", "Inf"}, []string{"finite number"}},
		{exitUsage, []string{"--adapter", model}, []string{"--adapter " + model + ": neither a LoRA adapter file nor a model file of align finetune"}},
		{exitError, []string{"--model", filepath.Join(dir, "mix.safetensors"), "--adapter", a}, []string{"--adapter: " + a, "other base weights",
			a + " on " + model, "--model is " + filepath.Join(dir, "mix.safetensors")}},
		{exitError, []string{"--adapter", filepath.Join(dir, "gone.safetensors")}, []string{"--adapter: load open", "gone.safetensors"}},
	} {
		_, stderr := run(c.code, append([]string{"sample", "--prompt", "red apple", "--num-inference-steps", "1", "-o", filepath.Join(dir, "bad")}, c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: %q does not say %q", c.args, stderr, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); err == nil {
		t.Error("a refused run wrote its output directory")
	}
}

// exportWeights runs align export safetensors --dtype f32 -o out with args and returns the
// file's tensors by name.
func exportWeights(t *testing.T, out string, args ...string) map[string][]float32 {
	t.Helper()
	if code, _, stderr := runAlign(t, append([]string{"export", "safetensors", "--dtype", "f32", "-o", out}, args...)...); code != exitOK {
		t.Fatalf("export %v: exit %d: %s", args, code, stderr)
	}
	return weightsOf(t, out)
}

// weightsOf is the model file's tensors by name.
func weightsOf(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	w := map[string][]float32{}
	for _, x := range c.Tensors {
		w[x.Name] = x.Data
	}
	return w
}

// A full fine-tuning's model.safetensors mixes as its task vector, W_ft - W, alone (weight 1
// is the file, bit for bit) and with an adapter; one of other weights is refused.
func TestAdapterMixFullFinetune(t *testing.T) {
	dir, model, pairs, _ := finetuneFixture(t)
	run := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != want {
			t.Fatalf("align %s: exit %d, want %d: %s", strings.Join(args, " "), code, want, stderr.String())
		}
		return stderr.String()
	}
	full, a := filepath.Join(dir, "full"), filepath.Join(dir, "a")
	for _, r := range [][]string{{"-o", full, "--full-finetune"}, {"-o", a, "--lora-rank", "2"}} {
		run(exitOK, append([]string{"finetune", "--pairs", pairs, "--model", model, "--max-train-steps", "2", "--train-batch-size", "2",
			"--lr-warmup-steps", "0", "--learning-rate", "1e-2"}, r...)...)
	}
	full, a = filepath.Join(full, "model.safetensors"), filepath.Join(a, "adapter.safetensors")
	export := func(name string, args ...string) map[string][]float32 {
		t.Helper()
		return exportWeights(t, filepath.Join(dir, name+".safetensors"), args...)
	}
	base, ft := weightsOf(t, model), weightsOf(t, full)
	if !reflect.DeepEqual(export("only-full", "--adapter", full), ft) {
		t.Error("--adapter FULL (its base from the file) exports other weights than FULL")
	}
	onlyA := export("only-a", "--adapter", a)
	mix := export("mix", "--model", model, "--adapter", full+"=0.5", "--adapter", a+"=2")
	moved := 0
	for name, w0 := range base {
		for i, v := range w0 {
			dft, da := float64(ft[name][i])-float64(v), float64(onlyA[name][i])-float64(v)
			want := float64(v) + 0.5*dft + 2*da
			if got := float64(mix[name][i]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("%s[%d]: the mix has %v, base + 0.5 ΔFULL + 2 ΔA is %v", name, i, got, want)
			}
			if dft != 0 {
				moved++
			}
		}
	}
	if moved == 0 {
		t.Fatal("the full fine-tuning moved no weight: the test would not see it ignored")
	}
	sample := func(name string, args ...string) []byte {
		t.Helper()
		out := filepath.Join(dir, "samples-"+name)
		run(exitOK, append([]string{"sample", "--prompt", "red apple", "--num-inference-steps", "2", "--seed", "4", "-o", out}, args...)...)
		grid, err := os.ReadFile(filepath.Join(out, "grid.png"))
		if err != nil {
			t.Fatal(err)
		}
		return grid
	}
	if !bytes.Equal(sample("adapter", "--adapter", full), sample("model", "--model", full)) {
		t.Error("--adapter FULL samples other images than --model FULL")
	}
	stderr := run(exitError, "sample", "--prompt", "red apple", "-o", filepath.Join(dir, "bad"), "--model", full, "--adapter", full)
	for _, w := range []string{"--adapter: " + full, "other base weights", full + " on " + model} {
		if !strings.Contains(stderr, w) {
			t.Errorf("a full fine-tuning on its own weights: %q does not say %q", stderr, w)
		}
	}
}

// writeRandomAdapter writes an adapter file of the model file base (rank 4 on qkv and proj,
// A and B drawn at random, B from N(0, 5^2): an adapter that moves the samples far) to out.
func writeRandomAdapter(t *testing.T, base, out string, seed uint64) {
	t.Helper()
	m, err := diffusion.LoadDiT(testCPU, base)
	if err != nil {
		t.Fatal(err)
	}
	c := dpo.LoRAConfig{Rank: 4, Alpha: 4, Targets: []string{dpo.TargetQKV, dpo.TargetProj}}
	r := &kernels.RNG{Seed: seed}
	for _, l := range dpo.EnableLoRA(m, r, c) {
		b := make([]float32, l.LoRA.B.Len())
		for i, v := range r.Normals(len(b)) {
			b[i] = float32(5 * v)
		}
		testCPU.CopyFromHost(l.LoRA.B, b)
	}
	ck, err := dpo.AdapterCheckpoint(m, c, base)
	if err != nil {
		t.Fatal(err)
	}
	if err := ck.Save(out); err != nil {
		t.Fatal(err)
	}
}

// align retrieval measures a mix as its exported file, and reports the adapters.
func TestAdapterMixRetrieval(t *testing.T) {
	data := buildFixtureDataset(t)
	model := saveRetrievalModel(t, data, diffusion.KindImage)
	dir := t.TempDir()
	adapter, mix := filepath.Join(dir, "adapter.safetensors"), filepath.Join(dir, "mix.safetensors")
	writeRandomAdapter(t, model, adapter, 7)
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"export", "safetensors", "--adapter", adapter + "=0.5", "--dtype", "f32", "-o", mix}, &stdout, &stderr); code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr.String())
	}
	args := []string{"--data", data, "--num-prompts", "5", "--num-inference-steps", "2", "--seed", "3"}
	got, _ := runRetrieval(t, append(args, "--model", model, "--adapter", adapter+"=0.5")...)
	want, _ := runRetrieval(t, append(args, "--model", mix)...)
	base, _ := runRetrieval(t, append(args, "--model", model)...)
	if len(got.Adapters) != 1 || got.Adapters[0] != (adapterWeight{adapter, 0.5}) {
		t.Errorf("report's adapters %+v", got.Adapters)
	}
	if !reflect.DeepEqual(got.Images.Prompts, want.Images.Prompts) {
		t.Error("the mix's neighbours differ from its exported file's")
	}
	if reflect.DeepEqual(got.Images.Prompts, base.Images.Prompts) {
		t.Error("the mix's neighbours are the base's: the test would not see the adapter ignored")
	}
	// Without --model the adapter names the base, and a refusal names the mix.
	stderr.Reset()
	if code := Main(append([]string{"retrieval", "--video", "--adapter", adapter}, args...), &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "--video given but "+model+" + 1 x "+adapter+" is an image model") {
		t.Errorf("--video with an image adapter: exit %d, %q", code, stderr.String())
	}
}

// parseAdapters accepts a value only as a non-empty path with a finite weight, 1 without
// "=", and the path and weight put back together are the value's.
func FuzzParseAdapters(f *testing.F) {
	for _, s := range []string{"a.safetensors", "a=0.5", "dir=x/a.safetensors=-1e3", "=1", "a=", "a=NaN", "a=+Inf", "a=0x1p-2", "a==1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		as, err := parseAdapters([]string{s})
		if err != nil {
			return
		}
		a := as[0]
		if a.Path == "" || math.IsNaN(a.Weight) || math.IsInf(a.Weight, 0) {
			t.Fatalf("%q parsed as %+v", s, a)
		}
		if !strings.Contains(s, "=") {
			if a.Path != s || a.Weight != 1 {
				t.Fatalf("%q parsed as %+v", s, a)
			}
			return
		}
		if !strings.HasPrefix(s, a.Path+"=") {
			t.Fatalf("%q parsed as %+v", s, a)
		}
		w, err := strconv.ParseFloat(s[len(a.Path)+1:], 64)
		if err != nil || w != a.Weight {
			t.Fatalf("%q parsed as %+v", s, a)
		}
	})
}
