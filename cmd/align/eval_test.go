// Tests of `align eval` and of the samples.json that align sample writes: flags and their
// modes, pairing two sample runs (kinds, seeds, counts, prompts, order), end to end with a
// tiny generator and tiny reward models (a set against itself and against an identical
// rerun: win rate exactly 0.5 and no change; against another guidance scale: the counts and
// means that align score's z-scores give by hand; a moved directory; eval sampling first;
// video clips), and bad input named in the error.
//
// Test: go test ./cmd/align -run Eval
package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

func TestNewCmdEvalFlags(t *testing.T) {
	got, err := runWithStub(t, "eval", newCmdEval, []string{"--baseline", "a", "--candidate", "b"})
	want := EvalOptions{Baseline: "a", Candidate: "b", NumImagesPerPrompt: 1, NumInferenceSteps: 28, GuidanceScale: 4,
		OutputDir: "eval", Reward: "default", BatchSize: 16}
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("directories: %+v, %v\nwant %+v", got, err, want)
	}

	got, err = runWithStub(t, "eval", newCmdEval, []string{"--baseline-model", "default", "--candidate-model", "dpo.safetensors",
		"--prompts", "p.txt", "--seed", "3", "--num-inference-steps", "5", "--guidance_scale", "2", "--output-dir", "o",
		"--judge", "j.onnx", "--json", "-o", "r.json"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Baseline != filepath.Join("o", "baseline") || got.Candidate != filepath.Join("o", "candidate") || got.Judge != "j.onnx" ||
		!got.JSON || got.Output != "r.json" || !reflect.DeepEqual(got.samplingFlags, []string{"--seed", "--num-inference-steps", "--guidance-scale", "--output-dir"}) {
		t.Errorf("sampling: %+v", got)
	}
	for k, model := range []string{"", "dpo.safetensors"} {
		so := got.sample[k]
		if so == nil || so.Model != model || so.PromptsFile != "p.txt" || so.Seed != 3 || so.NumInferenceSteps != 5 || so.GuidanceScale != 2 ||
			so.NumImagesPerPrompt != 1 || so.OutputDir != []string{got.Baseline, got.Candidate}[k] || so.Sampler != diffusion.SamplerEuler ||
			so.steering() || so.GridScale != 2 {
			t.Errorf("sample options %d: %+v", k, so)
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "nothing to compare"},
		{[]string{"--baseline", "a"}, "--baseline and --candidate go together"},
		{[]string{"--baseline", "a", "--candidate", "b", "--prompts", "p.txt"}, "not both"},
		{[]string{"--baseline-model", "default", "--prompts", "p.txt"}, "--baseline-model, --candidate-model and --prompts go together"},
		{[]string{"--baseline", "a", "--candidate", "b", "--seed", "1", "--video"}, "--video, --seed only apply when eval samples"},
		{[]string{"--baseline", "a", "--candidate", "b", "--reward", ""}, "--reward is empty"},
		{[]string{"--baseline", "a", "--candidate", "b", "--batch-size", "0"}, "--batch-size must be >= 1"},
		{[]string{"--baseline-model", "default", "--candidate-model", "m", "--prompts", "p", "--num-inference-steps", "0"}, "--num-inference-steps must be >= 1"},
		{[]string{"--baseline-model", "default", "--candidate-model", "m", "--prompts", "p", "--output-dir", ""}, "--output-dir must not be empty"},
		{[]string{"--baseline", "a", "--candidate", "b", "extra"}, "unknown command"},
	} {
		if _, err := runWithStub(t, "eval", newCmdEval, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}

	// The sampling flags start from align sample's defaults (all but --output-dir, the last:
	// eval's holds both sides).
	ef, sf := newCmdEval(nil).Flags(), newCmdSample(nil).Flags()
	for _, name := range evalSamplingFlags[:len(evalSamplingFlags)-1] {
		if e, s := ef.Lookup(name).DefValue, sf.Lookup(name).DefValue; e != s {
			t.Errorf("--%s: eval's default %s, sample's %s", name, e, s)
		}
	}
}

func TestMatchSamples(t *testing.T) {
	file := func(i, image int, prompt string) sampleFile {
		return sampleFile{Path: filepath.Join("d", slug(prompt)+".png"), Prompt: prompt, Index: i, Image: image}
	}
	set := func(files ...sampleFile) *sampleReport {
		return &sampleReport{Kind: diffusion.KindImage, Seed: 3, Files: files}
	}
	base := set(file(0, 0, "red apple"), file(1, 1, "red apple"), file(2, 0, "blue car"), file(3, 1, "blue car"))

	pairs, err := matchSamples("B", base, "C", set(base.Files...))
	if err != nil || len(pairs) != 4 || !reflect.DeepEqual(pairs[2], samplePair{base.Files[2], base.Files[2]}) {
		t.Errorf("same samples: %v, %v", pairs, err)
	}
	// A prompt listed twice pairs occurrence by occurrence.
	twice := set(file(0, 0, "red apple"), file(1, 0, "red apple"))
	if pairs, err := matchSamples("B", twice, "C", set(twice.Files...)); err != nil || len(pairs) != 2 || pairs[1].cand.Index != 1 {
		t.Errorf("repeated prompt: %v, %v", pairs, err)
	}

	video := set(base.Files...)
	video.Kind = diffusion.KindVideo
	seed := set(base.Files...)
	seed.Seed = 4
	for _, c := range []struct {
		name string
		cand *sampleReport
		want string
	}{
		{"kind", video, "image samples against video samples"},
		{"seed", seed, "--seed 3 against --seed 4"},
		{"fewer", set(file(0, 0, "red apple"), file(1, 0, "blue car")),
			`baseline sample red-apple.png (prompt "red apple", image 1) has no candidate sample (4 baseline samples, 2 candidate)`},
		{"more", set(append(base.Files, file(4, 0, "green apple"))...),
			`candidate sample green-apple.png (prompt "green apple", image 0) has no baseline sample (4 baseline samples, 5 candidate)`},
		{"prompts", set(file(0, 0, "red apple"), file(1, 1, "red apple"), file(2, 0, "blue cars"), file(3, 1, "blue car")),
			`baseline sample blue-car.png (prompt "blue car", image 0) has no candidate sample`},
		{"order", set(file(0, 0, "blue car"), file(1, 1, "blue car"), file(2, 0, "red apple"), file(3, 1, "red apple")),
			`sample red-apple.png (prompt "red apple", image 0) is number 0 of the baseline and 2 of the candidate`},
	} {
		_, err := matchSamples("out/base", base, "out/dpo", c.cand)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "baseline out/base and candidate out/dpo do not pair up") {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
}

// evalFixture writes a tiny image generator, a prompts file, a reward model without tie
// thresholds and a judge (the same network) with thresholds 0.05 and 0.1 on raw scores
// (0.1 and 0.2 in z units at std 0.5), and samples the generator with align sample into
// base/ and, with the same flags plus extra, into each further named directory.
func evalFixture(t *testing.T, extra map[string][]string) (dir, model, prompts, reward, judge string) {
	t.Helper()
	dir = t.TempDir()
	model = saveTinyModel(t, dir, diffusion.KindImage)
	reward = writeRewardModel(t, dir, rewards.KindImage)
	m, err := rewards.LoadNative(kernels.NewCPU(1), reward)
	if err != nil {
		t.Fatal(err)
	}
	m.Calib.TieEps = []float64{0.05, 0.1}
	judge = filepath.Join(dir, "judge.safetensors")
	if err := m.Save(judge); err != nil {
		t.Fatal(err)
	}
	prompts = filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("red apple\nblue car\n"), 0o644)
	extra["base"] = nil
	for name, args := range extra {
		code, _, stderr := runAlign(t, append([]string{"sample", "--model", model, "--prompts", prompts, "--num-images-per-prompt", "2",
			"--num-inference-steps", "2", "--seed", "3", "-o", filepath.Join(dir, name)}, args...)...)
		if code != exitOK {
			t.Fatalf("sample %s: exit %d, %s", name, code, stderr)
		}
	}
	return dir, model, prompts, reward, judge
}

func runEval(t *testing.T, args ...string) evalReport {
	t.Helper()
	code, stdout, stderr := runAlign(t, append([]string{"eval", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("eval %v: exit %d, %s", args, code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("eval --json: %v\n%s", err, stdout)
	}
	return rep
}

// checkNoChange: every dimension of every model ties on every pair.
func checkNoChange(t *testing.T, what string, rep evalReport, pairs int) {
	t.Helper()
	if len(rep.Models) == 0 || rep.Pairs != pairs {
		t.Fatalf("%s: %d pairs, %d models", what, rep.Pairs, len(rep.Models))
	}
	for _, m := range rep.Models {
		for _, d := range m.Dims {
			if d.N != pairs || d.Ties != pairs || d.WinRate != 0.5 || d.WinRateCI != [2]float64{0.5, 0.5} ||
				d.MeanChange != 0 || d.ChangeCI != [2]float64{0, 0} || d.MeanBaseline != d.MeanCandidate {
				t.Errorf("%s: %s %s: %+v, want %d ties, win rate 0.5, change 0", what, m.Role, d.Dim, d.Paired, pairs)
			}
		}
	}
}

func TestEvalEndToEnd(t *testing.T) {
	dir, _, _, reward, judge := evalFixture(t, map[string][]string{"rerun": nil, "cfg1": {"--guidance-scale", "1"}})
	base, rerun, cfg1 := filepath.Join(dir, "base"), filepath.Join(dir, "rerun"), filepath.Join(dir, "cfg1")

	// samples.json lists the files relative to its directory.
	idx, err := os.ReadFile(filepath.Join(base, sampleIndexFile))
	if err != nil {
		t.Fatal(err)
	}
	var raw sampleReport
	if err := json.Unmarshal(idx, &raw); err != nil || len(raw.Files) != 4 || raw.Files[3].Path != "003-blue-car.png" ||
		raw.Files[3].Prompt != "blue car" || raw.Files[3].Image != 1 || raw.Grid != "grid.png" || raw.Seed != 3 || raw.NumInferenceSteps != 2 {
		t.Fatalf("samples.json %+v, %v", raw, err)
	}

	// A set against itself and against an identical rerun: no change under either model.
	self := runEval(t, "--baseline", base, "--candidate", base, "--reward", reward, "--judge", judge)
	checkNoChange(t, "itself", self, 4)
	if self.Prompts != 2 || self.Seed != 3 || self.Kind != diffusion.KindImage || self.Baseline.Model != self.Candidate.Model ||
		len(self.Models) != 2 || self.Models[0].Role != "reward" || self.Models[1].Role != "judge" {
		t.Errorf("report %+v", self)
	}
	// The reward model has no tie thresholds (exact ties); the judge's are 0.05/0.5 and 0.1/0.5.
	for d, want := range []float64{0.1, 0.2} {
		if r, j := self.Models[0].Dims[d], self.Models[1].Dims[d]; r.TieRule != tieExact || r.TieEps != 0 ||
			j.TieRule != tieCalibrated || math.Abs(j.TieEps-want) > 1e-12 {
			t.Errorf("dimension %d: reward %s %v, judge %s %v (want %v)", d, r.TieRule, r.TieEps, j.TieRule, j.TieEps, want)
		}
	}
	checkNoChange(t, "rerun", runEval(t, "--baseline", base, "--candidate", rerun, "--reward", reward), 4)

	// Against guidance scale 1: the counts and means from align score's z-scores of both sets.
	zscores := func(d string) [][]float64 {
		code, stdout, stderr := runAlign(t, "score", filepath.Join(d, "00*.png"), "--reward", reward, "--json") // not grid.png
		if code != exitOK {
			t.Fatalf("score %s: %s", d, stderr)
		}
		var out [][]float64
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Fatal(err)
			}
			out = append(out, []float64{obj["vq_z"].(float64), obj["ta_z"].(float64)})
		}
		return out
	}
	zb, zc := zscores(base), zscores(cfg1)
	out := filepath.Join(dir, "reports", "cfg1.json")
	os.MkdirAll(filepath.Dir(out), 0o755)
	code, stdout, stderr := runAlign(t, "eval", "--baseline", base, "--candidate", cfg1, "--reward", reward, "--json", "--output", out)
	if code != exitOK {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if file, err := os.ReadFile(out); err != nil || string(file) != stdout {
		t.Errorf("--output %s differs from --json (%v)", out, err)
	}
	if !strings.Contains(stderr, "score reward: 8/8") || !strings.Contains(stderr, "wrote "+out) {
		t.Errorf("stderr %q", stderr)
	}
	if rep.Candidate.GuidanceScale != 1 || rep.Baseline.GuidanceScale != 4 || len(rep.Models) != 1 {
		t.Errorf("report %+v", rep)
	}
	changed := false
	for d, dim := range []string{"vq", "ta"} {
		var w, ti, l int
		var mb, mc float64
		for i := range zb {
			switch diff := zc[i][d] - zb[i][d]; {
			case diff > 0:
				w++
			case diff < 0:
				l++
			default:
				ti++
			}
			mb += zb[i][d] / 4
			mc += zc[i][d] / 4
		}
		got := rep.Models[0].Dims[d]
		if got.Dim != dim || got.Wins != w || got.Ties != ti || got.Losses != l || got.WinRate != (float64(w)+float64(ti)/2)/4 ||
			math.Abs(got.MeanBaseline-mb) > 1e-9 || math.Abs(got.MeanCandidate-mc) > 1e-9 || math.Abs(got.MeanChange-(mc-mb)) > 1e-9 {
			t.Errorf("%s: %+v; by hand from align score: %d/%d/%d, means %v -> %v", dim, got, w, ti, l, mb, mc)
		}
		changed = changed || got.MeanChange != 0
	}
	if !changed {
		t.Error("guidance scale 1 against 4 changed no score: the comparison is not exercised")
	}

	// The table names both sets, the pairs and each model's tie rule.
	code, stdout, stderr = runAlign(t, "eval", "--baseline", base, "--candidate", cfg1, "--reward", reward, "--judge", judge)
	if code != exitOK {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	for _, s := range []string{"baseline   " + base, "4 image pairs of 2 prompts, seed 3", "win rate", "Δz = 0 (exact", "|Δz| <= 0.2 (calibrated)",
		"judge: " + judge, "reward: " + reward} {
		if !strings.Contains(stdout, s) {
			t.Errorf("table lacks %q:\n%s", s, stdout)
		}
	}
	if !strings.Contains(stdout, "reward  vq ") || !strings.Contains(stdout, "judge   ta ") {
		t.Errorf("table rows:\n%s", stdout)
	}

	// A moved directory still reads: samples.json holds relative paths.
	moved := filepath.Join(dir, "moved")
	if err := os.Rename(rerun, moved); err != nil {
		t.Fatal(err)
	}
	checkNoChange(t, "moved", runEval(t, "--baseline", base, "--candidate", moved, "--reward", reward), 4)
}

func TestEvalSamplesFirst(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	reward := writeRewardModel(t, dir, rewards.KindImage)
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("red apple\nblue car\n"), 0o644)
	out := filepath.Join(dir, "eval")
	code, stdout, stderr := runAlign(t, "eval", "--baseline-model", model, "--candidate-model", model, "--prompts", prompts,
		"--num-inference-steps", "2", "--seed", "7", "--output-dir", out, "--reward", reward, "--json")
	if code != exitOK {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	var rep evalReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not only the report: %v\n%s", err, stdout)
	}
	checkNoChange(t, "same model", rep, 2)
	if rep.Seed != 7 || rep.Baseline.Dir != filepath.Join(out, "baseline") || rep.Candidate.NumInferenceSteps != 2 {
		t.Errorf("report %+v", rep)
	}
	for _, s := range []string{"sampling the baseline into " + filepath.Join(out, "baseline"), "sampling the candidate", "wrote 2 images", "sampling: 2/2"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q: %s", s, stderr)
		}
	}
	for _, side := range []string{"baseline", "candidate"} {
		if _, err := os.Stat(filepath.Join(out, side, "001-blue-car.png")); err != nil {
			t.Error(err)
		}
	}

	// A judge that cannot be used fails before anything is sampled.
	video := writeRewardModel(t, dir, rewards.KindVideo)
	for _, judge := range []string{"judge.txt", video} {
		out := filepath.Join(dir, "refused")
		code, _, stderr := runAlign(t, "eval", "--baseline-model", model, "--candidate-model", model, "--prompts", prompts,
			"--num-inference-steps", "2", "--output-dir", out, "--reward", reward, "--judge", judge)
		if _, err := os.Stat(out); code != exitUsage || !strings.Contains(stderr, "--judge "+judge) || err == nil {
			t.Errorf("--judge %s: exit %d, %q, output directory %v", judge, code, stderr, err)
		}
	}
}

func TestEvalBadInput(t *testing.T) {
	dir, _, _, reward, _ := evalFixture(t, map[string][]string{"seed4": {"--seed", "4"}, "bad": nil})
	base, bad := filepath.Join(dir, "base"), filepath.Join(dir, "bad")
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	corrupt := filepath.Join(bad, "001-red-apple.png")
	os.WriteFile(corrupt, []byte("not a png"), 0o644)
	missing := filepath.Join(bad, "002-blue-car.png")

	// One pair only: a samples.json listing one of base's images.
	one := filepath.Join(dir, "one")
	os.Mkdir(one, 0o755)
	png, _ := os.ReadFile(filepath.Join(base, "000-red-apple.png"))
	os.WriteFile(filepath.Join(one, "000-red-apple.png"), png, 0o644)
	if err := writeSampleIndex(one, sampleReport{Kind: diffusion.KindImage, Grid: filepath.Join(one, "grid.png"),
		Files: []sampleFile{{Path: filepath.Join(one, "000-red-apple.png"), Prompt: "red apple"}}}); err != nil {
		t.Fatal(err)
	}
	video := writeRewardModel(t, dir, rewards.KindVideo)

	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no samples.json", []string{"--baseline", base, "--candidate", empty}, exitError,
			[]string{filepath.Join(empty, sampleIndexFile), "HINT", "not an output directory of align sample"}},
		{"seeds", []string{"--baseline", base, "--candidate", filepath.Join(dir, "seed4")}, exitError,
			[]string{"baseline " + base + " and candidate " + filepath.Join(dir, "seed4"), "--seed 3 against --seed 4"}},
		{"one pair", []string{"--baseline", one, "--candidate", one}, exitError, []string{"hold 1 pair of samples"}},
		{"corrupt image", []string{"--baseline", base, "--candidate", bad}, exitError, []string{"--reward " + reward, corrupt}},
		{"unknown reward", []string{"--baseline", base, "--candidate", base, "--reward", "r.txt"}, exitUsage,
			[]string{"--reward r.txt: want default, a .safetensors"}},
		{"unknown judge", []string{"--baseline", base, "--candidate", base, "--judge", "j.bin"}, exitUsage,
			[]string{"--judge j.bin: want default, a .safetensors"}},
		{"missing reward", []string{"--baseline", base, "--candidate", base, "--reward", filepath.Join(dir, "none.safetensors")}, exitError,
			[]string{filepath.Join(dir, "none.safetensors")}},
		{"video judge", []string{"--baseline", base, "--candidate", base, "--judge", video}, exitUsage,
			[]string{"--judge " + video + " reads clips, the samples are images"}},
	}
	for _, c := range cases {
		code, stdout, stderr := runAlign(t, append([]string{"eval", "--reward", reward}, c.args...)...)
		if code != c.code || stdout != "" {
			t.Errorf("%s: exit %d (want %d), stdout %q", c.name, code, c.code, stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q lacks %q", c.name, stderr, w)
			}
		}
	}
	// A sample file that is gone is named too.
	os.WriteFile(corrupt, png, 0o644)
	os.Remove(missing)
	code, _, stderr := runAlign(t, "eval", "--baseline", base, "--candidate", bad, "--reward", reward)
	if code != exitError || !strings.Contains(stderr, missing) {
		t.Errorf("missing image: exit %d, %q", code, stderr)
	}
}

func TestEvalVideo(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindVideo)
	reward := writeRewardModel(t, dir, rewards.KindVideo)
	prompts := filepath.Join(dir, "prompts.txt")
	os.WriteFile(prompts, []byte("red apple moving left\nblue car\n"), 0o644)
	out := filepath.Join(dir, "eval")
	rep := runEval(t, "--baseline-model", model, "--candidate-model", model, "--video", "--prompts", prompts,
		"--num-inference-steps", "2", "--output-dir", out, "--reward", reward)
	checkNoChange(t, "video", rep, 2)
	if rep.Kind != diffusion.KindVideo || len(rep.Models[0].Dims) != 3 || rep.Models[0].Dims[2].Dim != rewards.DimMQ {
		t.Errorf("report %+v", rep)
	}
	// An image reward model does not read the clips.
	image := writeRewardModel(t, dir, rewards.KindImage)
	code, _, stderr := runAlign(t, "eval", "--baseline", rep.Baseline.Dir, "--candidate", rep.Candidate.Dir, "--reward", image)
	if code != exitUsage || !strings.Contains(stderr, "--reward "+image+" reads images, the samples are videos") {
		t.Errorf("image reward on clips: exit %d, %q", code, stderr)
	}
}
