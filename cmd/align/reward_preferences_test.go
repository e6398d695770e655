package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/rewards"
)

// writePreferenceFile writes n labelled pairs of random 32x32 PNGs into dir as pairs.jsonl
// (vq A, B or tie by turns; ta A), with extra lines appended, and returns its path.
func writePreferenceFile(t *testing.T, dir string, n int, extra ...string) string {
	t.Helper()
	var lines []string
	for i := range n {
		a, b := fmt.Sprintf("img/%d-a.png", i), fmt.Sprintf("img/%d-b.png", i)
		os.MkdirAll(filepath.Join(dir, "img"), 0o755)
		writeTestPNG(t, filepath.Join(dir, a), 32, 32, uint64(2*i))
		writeTestPNG(t, filepath.Join(dir, b), 32, 32, uint64(2*i+1))
		lines = append(lines, fmt.Sprintf(`{"prompt":"red apple %d","chosen":%q,"rejected":%q,"labels":{"vq":%q,"ta":"A"}}`,
			i%5, a, b, []string{"A", "B", "tie"}[i%3]))
	}
	path := filepath.Join(dir, "pairs.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(append(lines, extra...), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// align reward train --pairs: the file's pairs train (the start-of-run line counts them), its
// held-out part is evaluated (eval-preferences.json and stdout), a resume with another file
// is refused, and bad files and flags fail naming the file, line or flag.
func TestRewardTrainPreferences(t *testing.T) {
	data := syntheticEmojiDataset(t, 32)
	dir := t.TempDir()
	pairs := writePreferenceFile(t, dir, 60)
	out := filepath.Join(dir, "rm")
	args := func(extra ...string) []string {
		return tinyRewardTrainArgs(data, out, append([]string{"--max-train-steps", "2"}, extra...)...)
	}
	code, stdout, stderr := runAlign(t, args("--pairs", pairs)...)
	if code != exitOK || !strings.Contains(stderr, "preference pairs: share 0.5 of the training pairs of vq (") ||
		!strings.Contains(stderr, "held out") || !strings.Contains(stdout, "held-out preference pairs of "+pairs) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var rep rewards.EvalReport
	if b, err := os.ReadFile(filepath.Join(out, "eval-preferences.json")); err != nil || json.Unmarshal(b, &rep) != nil ||
		rep.Split != rewards.SplitPreferences || rep.Pairs == 0 || len(rep.Dims) != 2 {
		t.Errorf("eval-preferences.json: %+v, %v", rep, err)
	}

	// align reward eval --preferences gives the same report for the trained model on the
	// held-out pairs (no dataset read; in the batches of the run's evaluation, 2 x
	// --train-batch-size, as OpenBLAS rounds other batches otherwise), and counts every pair
	// with --split all.
	model := filepath.Join(out, "model.safetensors")
	code, stdout, stderr = runAlign(t, "reward", "eval", "--model", model, "--preferences", pairs, "--split", "heldout", "--batch-size", "8", "--json")
	var got rewards.EvalReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &got) != nil {
		t.Fatalf("reward eval --preferences: exit %d, %s%s", code, stdout, stderr)
	}
	got.Seconds, rep.Seconds = 0, 0
	if a, b := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", rep); a != b {
		t.Errorf("reward eval --preferences --split heldout:\n%s\nreward train's eval-preferences.json:\n%s", a, b)
	}
	if code, stdout, _ := runAlign(t, "reward", "eval", "--model", model, "--preferences", pairs); code != exitOK ||
		!strings.Contains(stdout, "agreement with 120 labels of "+pairs+" (every pair;") {
		t.Errorf("--split all: exit %d, %s", code, stdout)
	}
	if code, _, stderr := runAlign(t, "reward", "eval", "--model", model, "--preferences", pairs, "--split", "val"); code != exitUsage ||
		!strings.Contains(stderr, `--split "val" with --preferences: want all or heldout`) {
		t.Errorf("--split val: exit %d, %s", code, stderr)
	}

	// A resume with another file (here: one pair more) is refused; with the same, it goes on.
	other := writePreferenceFile(t, filepath.Join(dir, "other"), 61)
	if code, _, stderr := runAlign(t, args("--pairs", other, "--max-train-steps", "4", "--resume-from-checkpoint", "latest")...); code == exitOK ||
		!strings.Contains(stderr, "resume with the same --pairs file") {
		t.Errorf("resume with another file: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, args("--pairs", pairs, "--max-train-steps", "4", "--resume-from-checkpoint", "latest")...); code != exitOK {
		t.Errorf("resume with the same file: exit %d, %s", code, stderr)
	}

	// A latent model learns from them too, and is evaluated on them noised.
	latentOut := filepath.Join(dir, "latent")
	gen := saveRetrievalModel(t, data, diffusion.KindImage)
	code, _, stderr = runAlign(t, tinyRewardTrainArgs(data, latentOut, "--max-train-steps", "2", "--latent", "--generator", gen,
		"--latent-blocks", "1", "--pairs", pairs)...)
	var latentRep rewards.EvalReport
	if b, err := os.ReadFile(filepath.Join(latentOut, "eval-preferences.json")); code != exitOK || err != nil || json.Unmarshal(b, &latentRep) != nil ||
		!latentRep.NoiseAware || latentRep.Pairs != rep.Pairs || len(latentRep.TimeBuckets) == 0 {
		t.Errorf("latent run: exit %d, report %+v, %s", code, latentRep, stderr)
	}

	unlabelled := writePreferenceFile(t, filepath.Join(dir, "u"), 3, `{"prompt":"x","chosen":"img/0-a.png","rejected":"img/0-b.png"}`)
	mqOnly := filepath.Join(dir, "u", "mq.jsonl")
	os.WriteFile(mqOnly, []byte(`{"prompt":"x","chosen":"img/0-a.png","rejected":"img/0-b.png","labels":{"mq":"A"}}`+"\n"), 0o644)
	for _, c := range []struct {
		extra []string
		code  int
		want  string
	}{
		{[]string{"--pairs", unlabelled}, exitError, unlabelled + ":4: no labels"},
		{[]string{"--pairs", filepath.Join(dir, "none.jsonl")}, exitError, "--pairs: open " + filepath.Join(dir, "none.jsonl")},
		{[]string{"--pairs", dir}, exitError, "--pairs: " + dir + " is a folder: its w/ and l/ pairs say which sample is better"},
		{[]string{"--pairs-share", "0.3"}, exitUsage, "--pairs-share needs --pairs"},
		{[]string{"--pairs", pairs, "--pairs-share", "1.5"}, exitUsage, "--pairs-share must be in [0, 1]"},
		{[]string{"--pairs", pairs, "--loss", "reg"}, exitUsage, "--pairs gives labels"},
	} {
		code, _, stderr := runAlign(t, tinyRewardTrainArgs(data, filepath.Join(dir, "bad"), append([]string{"--max-train-steps", "1"}, c.extra...)...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q, want %d and %q", c.extra, code, stderr, c.code, c.want)
		}
	}
	// A file whose labels the model does not score: the pair labels mq only, and is not held
	// out, or the set would be empty first.
	if rewards.HeldOutPreference("x\x00img/0-a.png\x00img/0-b.png") {
		t.Fatal("the mq-only pair is held out; change its prompt")
	}
	if code, _, stderr := runAlign(t, tinyRewardTrainArgs(data, filepath.Join(dir, "mq"), "--max-train-steps", "1", "--pairs", mqOnly)...); code != exitUsage ||
		!strings.Contains(stderr, "labels [mq] in its training pairs; the model's dimensions are [vq ta]") {
		t.Errorf("mq labels for a vq, ta model: exit %d, %q", code, stderr)
	}
}

// align reward eval --preferences with an ONNX model: the embedded model exported to ONNX
// agrees with the labels as the embedded model does (every pair and the held-out ones; two
// lines share files the other way round and with another prompt), its manifest names it as
// well, and the errors name the flag, file or pair.
func TestRewardEvalPreferencesONNX(t *testing.T) {
	dir := t.TempDir()
	onnxModel := exportONNX(t, dir, "default")
	pairs := writePreferenceFile(t, dir, 40,
		`{"prompt":"red apple 1","chosen":"img/1-b.png","rejected":"img/0-a.png","labels":{"vq":"B","ta":"tie"}}`,
		`{"prompt":"blue car","chosen":"img/0-a.png","rejected":"img/1-b.png","labels":{"ta":"A"}}`)
	eval := func(model string, extra ...string) (rep rewards.EvalReport) {
		t.Helper()
		code, stdout, stderr := runAlign(t, append([]string{"reward", "eval", "--model", model, "--preferences", pairs, "--json"}, extra...)...)
		if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("reward eval --model %s %v: exit %d\n%s%s", model, extra, code, stdout, stderr)
		}
		return rep
	}
	for _, split := range []string{"all", "heldout"} {
		want, got := eval("default", "--split", split), eval(onnxModel, "--split", split)
		if got.Split != want.Split || got.Pairs != want.Pairs || fmt.Sprint(got.ByNote) != fmt.Sprint(want.ByNote) ||
			fmt.Sprint(got.AccByNote) != fmt.Sprint(want.AccByNote) || len(got.Dims) != len(want.Dims) {
			t.Fatalf("--split %s: ONNX %+v\nnative %+v", split, got, want)
		}
		// The scores agree to float rounding (3.8e-6 at export), not to the bit: the accuracies
		// are the same, the searched thresholds midpoints of nearly equal |Δ|.
		for d, w := range want.Dims {
			g := got.Dims[d]
			if g.Pairs != w.Pairs || g.Ties != w.Ties || g.AccWithoutTies != w.AccWithoutTies || g.AccWithTies != w.AccWithTies ||
				fmt.Sprint(g.AccWithTiesAtEp) != fmt.Sprint(w.AccWithTiesAtEp) || math.Abs(g.TieEps-w.TieEps) > 1e-4*(1+w.TieEps) {
				t.Errorf("--split %s, %s: ONNX %+v\nnative %+v", split, w.Dim, g, w)
			}
		}
		if split == "all" && (got.Pairs != 2*40+2+1 || got.Dims[1].Ties != 1) {
			t.Errorf("--split all: %d labels, %d ta ties; want 83 and 1", got.Pairs, got.Dims[1].Ties)
		}
	}
	// --model repeated: each report as on its own, in order, with its model; the text ends
	// with a row per model.
	code, stdout, stderr := runAlign(t, "reward", "eval", "--model", "default", "--model", onnxModel, "--preferences", pairs, "--json")
	var both []struct {
		Model string `json:"model"`
		Kind  string `json:"kind"`
		rewards.EvalReport
	}
	if code != exitOK || json.Unmarshal([]byte(stdout), &both) != nil || len(both) != 2 {
		t.Fatalf("two models: exit %d\n%s%s", code, stdout, stderr)
	}
	for i, c := range []struct{ model, kind string }{{"default", "image"}, {onnxModel, "ONNX image"}} {
		one := eval(c.model)
		one.Seconds, both[i].Seconds = 0, 0
		if both[i].Model != c.model || both[i].Kind != c.kind || fmt.Sprint(both[i].EvalReport) != fmt.Sprint(one) {
			t.Errorf("model %d: %s (%s) %+v\nwant %s (%s) %+v", i, both[i].Model, both[i].Kind, both[i].EvalReport, c.model, c.kind, one)
		}
	}
	code, stdout, stderr = runAlign(t, "reward", "eval", "--model", "default", "--model", onnxModel, "--preferences", pairs)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-3:]
	vq := pct(both[0].Dims[0].AccWithoutTies)
	if code != exitOK || !strings.HasPrefix(last[0], "model") || !strings.Contains(last[0], "ta with ties") ||
		!strings.HasPrefix(last[1], "default ") || !strings.HasPrefix(last[2], onnxModel+" ") || !strings.Contains(last[1], vq) {
		t.Errorf("two models, text: exit %d\n%s%s", code, stdout, stderr)
	}

	manifest := strings.TrimSuffix(onnxModel, ".onnx") + ".json"
	if code, stdout, _ := runAlign(t, "reward", "eval", "--model", manifest, "--preferences", pairs); code != exitOK ||
		!strings.Contains(stdout, manifest+": ONNX image agreement with 83 labels of "+pairs+" (every pair;") {
		t.Errorf("manifest as --model: exit %d, %s", code, stdout)
	}

	missing := writePreferenceFile(t, filepath.Join(dir, "m"), 2, `{"prompt":"x","chosen":"img/0-a.png","rejected":"img/9-b.png","labels":{"vq":"A"}}`)
	mqOnly := filepath.Join(dir, "mq.jsonl")
	os.WriteFile(mqOnly, []byte(`{"prompt":"x","chosen":"img/0-a.png","rejected":"img/0-b.png","labels":{"mq":"A"}}`+"\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--model", onnxModel}, exitUsage, "--model " + onnxModel + ": an ONNX model is evaluated on the pairs of a labelled preference file (--preferences FILE)"},
		{[]string{"--model", onnxModel, "--preferences", missing}, exitError, missing + ":3: stat " + filepath.Join(dir, "m", "img", "9-b.png")},
		{[]string{"--model", onnxModel, "--preferences", mqOnly}, exitUsage, "--preferences " + mqOnly + " labels [mq]; the model's dimensions are [vq ta]"},
		{[]string{"--model", filepath.Join(dir, "none.onnx"), "--preferences", pairs}, exitError, "manifest " + filepath.Join(dir, "none.json")},
	} {
		if code, _, stderr := runAlign(t, append([]string{"reward", "eval"}, c.args...)...); code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q, want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// A VideoAlign CSV naming MP4 files (VideoGen-RewardBench's layout) is evaluated with the
// embedded video model, and an export of it to ONNX, as the same CSV naming the GIFs the
// videos were losslessly made from.
func TestRewardEvalPreferencesVideoFiles(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	var gifRows, mp4Rows []string
	labels := []string{"A,B,same", "B,A,A", "same,same,B", "A,A,A", "B,B,same", "A,same,B"}
	for i := range 6 {
		name := func(side, ext string) string { return fmt.Sprintf("%d-%s.%s", i, side, ext) }
		for k, side := range []string{"a", "b"} {
			g := filepath.Join(dir, name(side, "gif"))
			writeTestGIF(t, g, 8+2*i+k, 10)
			testvideo.Encode(t, bin, g, filepath.Join(dir, name(side, "mp4")))
		}
		prompt := []string{"a red apple moving left", "a dog face moving up"}[i%2]
		gifRows = append(gifRows, fmt.Sprintf("%s,%s,%s,%s", name("a", "gif"), name("b", "gif"), prompt, labels[i]))
		mp4Rows = append(mp4Rows, fmt.Sprintf("%s,%s,%s,%s", name("a", "mp4"), name("b", "mp4"), prompt, labels[i]))
	}
	write := func(name string, rows []string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("path_A,path_B,prompt,VQ,MQ,TA\n"+strings.Join(rows, "\n")+"\n"), 0o644)
		return p
	}
	gifCSV, mp4CSV := write("gif.csv", gifRows), write("mp4.csv", mp4Rows)
	eval := func(model, csv string) string {
		t.Helper()
		code, stdout, stderr := runAlign(t, "reward", "eval", "--model", model, "--preferences", csv, "--json")
		var rep rewards.EvalReport
		if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("reward eval --model %s --preferences %s: exit %d\n%s%s", model, csv, code, stdout, stderr)
		}
		if rep.Pairs != 18 {
			t.Errorf("%s: %d labels, want 18", csv, rep.Pairs)
		}
		rep.Seconds = 0
		return fmt.Sprintf("%+v", rep)
	}
	if a, b := eval("default-video", mp4CSV), eval("default-video", gifCSV); a != b {
		t.Errorf("native, MP4:\n%s\nGIF:\n%s", a, b)
	}
	onnxModel := exportONNX(t, dir, "default-video")
	if a, b := eval(onnxModel, mp4CSV), eval(onnxModel, gifCSV); a != b {
		t.Errorf("ONNX, MP4:\n%s\nGIF:\n%s", a, b)
	}
}

// An Overall column (VideoGen-RewardBench's) is evaluated against the sum of the model's
// z-scores, as align score computes them, by the native model and its ONNX export alike;
// --weights vq=1,ta=0 with the Overall labels equal to the VQ ones gives the vq row's
// accuracies; --weights without overall labels or without --preferences is refused.
func TestRewardEvalPreferencesOverall(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "img"), 0o755)
	ls := []string{"A", "B", "same"}
	var rows, sameRows, list []string
	for i := range 30 {
		a, b := fmt.Sprintf("img/%d-a.png", i), fmt.Sprintf("img/%d-b.png", i)
		writeTestPNG(t, filepath.Join(dir, a), 32, 32, uint64(3*i))
		writeTestPNG(t, filepath.Join(dir, b), 32, 32, uint64(3*i+1))
		prompt := fmt.Sprintf("red apple %d", i%4)
		vq, ta, overall := ls[i%3], ls[(i/3)%3], ls[(i*7/5)%3]
		rows = append(rows, fmt.Sprintf("%s,%s,%s,%s,%s,%s", a, b, prompt, vq, ta, overall))
		sameRows = append(sameRows, fmt.Sprintf("%s,%s,%s,%s,%s,%s", a, b, prompt, vq, ta, vq))
		list = append(list, fmt.Sprintf(`{"path":%q,"prompt":%q}`, a, prompt), fmt.Sprintf(`{"path":%q,"prompt":%q}`, b, prompt))
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o644)
		return p
	}
	csv := write("bench.csv", "path_A,path_B,prompt,VQ,TA,Overall\n"+strings.Join(rows, "\n")+"\n")
	same := write("same.csv", "path_A,path_B,prompt,VQ,TA,Overall\n"+strings.Join(sameRows, "\n")+"\n")
	eval := func(model, file string, extra ...string) rewards.EvalReport {
		t.Helper()
		code, stdout, stderr := runAlign(t, append([]string{"reward", "eval", "--model", model, "--preferences", file, "--json"}, extra...)...)
		var rep rewards.EvalReport
		if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("reward eval --model %s %v: exit %d\n%s%s", model, extra, code, stdout, stderr)
		}
		return rep
	}
	rep := eval("default", csv)
	if len(rep.Dims) != 3 || rep.Dims[2].Dim != rewards.DimOverall || rep.Dims[2].Pairs != 30 || rep.Dims[2].Ties != 10 {
		t.Fatalf("dims %+v", rep.Dims)
	}
	// The expected decisive accuracy from align score's z-scores.
	z := map[string]float64{}
	for _, r := range scoreJSONL(t, write("list.jsonl", strings.Join(list, "\n")+"\n")) {
		z[filepath.ToSlash(strings.TrimPrefix(r["path"].(string), dir+string(filepath.Separator)))] = r["vq_z"].(float64) + r["ta_z"].(float64)
	}
	right, decisive := 0, 0
	for _, row := range rows {
		f := strings.Split(row, ",")
		if f[5] == "same" {
			continue
		}
		decisive++
		if d := z[f[0]] - z[f[1]]; (f[5] == "A") == (d > 0) && d != 0 {
			right++
		}
	}
	if got, want := rep.Dims[2].AccWithoutTies, float64(right)/float64(decisive); math.Abs(got-want) > 1e-12 {
		t.Errorf("overall without ties %v, from align score's z-scores %v (%d of %d)", got, want, right, decisive)
	}
	if onnxRep := eval(exportONNX(t, dir, "default"), csv); len(onnxRep.Dims) != 3 || onnxRep.Dims[2].AccWithoutTies != rep.Dims[2].AccWithoutTies ||
		onnxRep.Dims[2].AccWithTies != rep.Dims[2].AccWithTies {
		t.Errorf("ONNX overall %+v, native %+v", onnxRep.Dims[2:], rep.Dims[2:])
	}
	rep = eval("default", same, "--weights", "vq=1,ta=0")
	if o, v := rep.Dims[2], rep.Dims[0]; o.AccWithoutTies != v.AccWithoutTies || o.AccWithTies != v.AccWithTies || o.Pairs != v.Pairs {
		t.Errorf("overall = vq labels with vq alone weighed: overall %+v, vq %+v", o, v)
	}

	noOverall := write("plain.csv", "path_A,path_B,prompt,VQ\nimg/0-a.png,img/0-b.png,x,A\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--model", "default", "--weights", "vq=1"}, "--weights weighs the model's overall score against a preference file's overall labels: give --preferences"},
		{[]string{"--model", "default", "--preferences", noOverall, "--weights", "vq=1"}, "--weights weighs the model's overall score against overall labels, and " + noOverall + " has none"},
		{[]string{"--model", "default", "--preferences", csv, "--weights", "mq=1"}, "--weights: "},
	} {
		if code, _, stderr := runAlign(t, append([]string{"reward", "eval"}, c.args...)...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q", c.args, code, stderr)
		}
	}
}
