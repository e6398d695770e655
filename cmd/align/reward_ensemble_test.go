// Tests of several --reward models as one (rewards.NewEnsemble): align score's columns and
// totals from a native model and an ONNX model with other dimension names, each model's
// scores as it gives them alone, an image model beside a video model scoring a clip's frames
// and averaging; best-of-N in align sample and align pairs weighing dimensions of both; the
// errors (a dimension scored twice, an image model rejecting clips, --manifest with several).
//
// Test: go test ./cmd/align -run Ensemble
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/alignkit/align/rewards/scoring"
)

// renamedONNX exports the native model to ONNX with its dimensions renamed (vq -> aes, ta ->
// clip): a second model whose dimensions an ensemble can hold beside the first's.
func renamedONNX(t *testing.T, dir, model string) string {
	t.Helper()
	man := onnx.ManifestPathFor(exportONNX(t, dir, model))
	m, err := onnx.LoadManifest(man)
	if err != nil {
		t.Fatal(err)
	}
	m.Outputs[0].Dims = []string{"aes", "clip"}
	m.Calibration.Dims = []string{"aes", "clip"}
	m.Calibration.Mean[0] = 1 // so that its z-scores differ from the native model's
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(man, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return man
}

func TestScoreEnsemble(t *testing.T) {
	dir := t.TempDir()
	model := writeRewardModel(t, dir, rewards.KindImage)
	other := renamedONNX(t, dir, model)
	in := calibrationInputs(t, dir)
	both := scoreJSONL(t, in, "--reward", model, "--reward", other, "--weights", "vq=1,clip=2")
	alone := [][]map[string]any{scoreJSONL(t, in, "--reward", model), scoreJSONL(t, in, "--reward", other)}
	if len(both) != 7 {
		t.Fatalf("%d rows, want 7", len(both))
	}
	for i, row := range both {
		for k, dims := range [][]string{{"vq", "ta"}, {"aes", "clip"}} {
			for _, d := range dims {
				for _, col := range []string{d, d + "_z"} {
					if row[col] != alone[k][i][col] {
						t.Errorf("row %d %s: %v together, %v alone", i, col, row[col], alone[k][i][col])
					}
				}
			}
		}
		// The unreadable file: one error, no scores.
		if (row["error"] != nil) != (alone[0][i]["error"] != nil) {
			t.Errorf("row %d: error %v together, %v alone", i, row["error"], alone[0][i]["error"])
		}
		if row["error"] != nil {
			continue
		}
		want := row["vq_z"].(float64) + 2*row["clip_z"].(float64)
		if got := row["total"].(float64); got-want > 1e-3 || want-got > 1e-3 {
			t.Errorf("row %d: total %v, want vq_z + 2 clip_z = %v", i, got, want)
		}
	}

	video := writeRewardModel(t, dir, rewards.KindVideo)
	checkClipsWithImageModel(t, dir, video, other)
	checkWindowsWithImageModel(t, dir, video, other)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--reward", model, "--reward", model}, `both score a dimension "vq"`},
		{[]string{"--reward", model, "--reward", video}, `both score a dimension "vq"`},
		{[]string{"--reward", model, "--reward", other, "--manifest", other}, "--manifest names the manifest of one ONNX model"},
		{[]string{"--reward", model, "--reward", other, "--weights", "vq=1,pickscore=1"}, `unknown reward dimension "pickscore" (known: vq, ta, aes, clip)`},
	} {
		code, _, stderr := runAlign(t, append([]string{"score", in}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q does not say %q", c.args, code, stderr, c.want)
		}
	}
}

// checkClipsWithImageModel scores a clip (a folder of four frames) with a video model and an
// image model together: the image model scores every frame and averages; an image model
// whose manifest rejects clips is refused.
func checkClipsWithImageModel(t *testing.T, dir, video, image string) {
	t.Helper()
	clip := filepath.Join(dir, "clips", "red-apple")
	os.MkdirAll(clip, 0o755)
	want := map[string]float64{}
	for i := range 4 {
		frame := filepath.Join(clip, strconv.Itoa(i)+".png")
		writeTestPNG(t, frame, 8, 8, uint64(5+i))
		alone := scoreJSONL(t, frame, "--reward", image, "--prompt", "red apple")[0]
		for _, d := range []string{"aes", "clip"} {
			want[d] += alone[d].(float64) / 4
		}
	}
	row := scoreJSONL(t, filepath.Dir(clip), "--reward", video, "--reward", image, "--prompt", "red apple")[0]
	for _, d := range []string{"aes", "clip"} {
		if got, ok := row[d].(float64); !ok || math.Abs(got-want[d]) > 1e-5*(1+math.Abs(want[d])) || row["mq"] == nil {
			t.Errorf("%s of a clip: %v, the mean of its frames' %v (mq %v)", d, row[d], want[d], row["mq"])
		}
	}
	m, err := onnx.LoadManifest(image)
	if err != nil {
		t.Fatal(err)
	}
	m.Image.ClipReduce = onnx.ClipReject
	data, _ := m.Marshal()
	reject := filepath.Join(filepath.Dir(image), "reject.json")
	os.WriteFile(reject, data, 0o644)
	code, _, stderr := runAlign(t, "score", filepath.Dir(clip), "--reward", video, "--reward", reject)
	if code != exitUsage || !strings.Contains(stderr, "rejects clips") {
		t.Errorf("an image model rejecting clips with a video model: exit %d, %s", code, stderr)
	}
}

// checkWindowsWithImageModel scores the windows of a clip of 12 frames (4 at 10 fps: from 0,
// 0.4 and 0.8 s) with a video model and an image model together: a row per window, the image
// model's scores the mean of the window's frames'.
func checkWindowsWithImageModel(t *testing.T, dir, video, image string) {
	t.Helper()
	clip := filepath.Join(dir, "windows", "red-apple")
	writeFrameFolder(t, clip, 0, 12)
	frame := scoreJSONL(t, clip, "--reward", image, "--prompt", "red apple") // the frames as images, in order
	rows := scoreJSONL(t, filepath.Dir(clip), "--reward", video, "--reward", image, "--prompt", "red apple",
		"--fps", "10", "--source-fps", "10", "--clips-per-video", "0")
	if len(rows) != 3 || len(frame) != 12 {
		t.Fatalf("%d rows of windows, %d of frames; want 3 and 12", len(rows), len(frame))
	}
	for j, row := range rows {
		for _, d := range []string{"aes", "clip"} {
			want := 0.0
			for k := 4 * j; k < 4*j+4; k++ {
				want += frame[k][d].(float64) / 4
			}
			if got, ok := row[d].(float64); !ok || math.Abs(got-want) > 1e-5*(1+math.Abs(want)) || row["mq"] == nil || row["start"] != 0.4*float64(j) {
				t.Errorf("window %d: %s %v (start %v, mq %v), the mean of its frames' %v", j, d, row[d], row["start"], row["mq"], want)
			}
		}
	}
}

// Rows of several models join window by window; an input whose windows differ between the
// models (one failed partway) keeps only its error; clip models of other frame counts would
// cut other windows and are refused.
func TestJoinWindowRows(t *testing.T) {
	row := func(index int, start float64, raw float32, err string) scoring.Result {
		r := scoring.Result{Item: scoring.Item{Index: index, Path: fmt.Sprint("clip", index)}, Start: start, Err: err}
		if err == "" {
			r.Raw, r.Z = []float32{raw}, []float64{float64(raw)}
		}
		return r
	}
	a := []scoring.Result{row(0, 0, 1, ""), row(0, 2, 2, ""), row(1, 0, 3, ""), row(1, 2, 4, ""), row(2, 0, 5, ""), row(3, 0, 0, "a: unreadable")}
	b := []scoring.Result{row(0, 0, 10, ""), row(0, 2, 20, ""), row(1, 0, 30, ""), row(1, 0, 0, "b: broke at 2 s"), row(2, 0, 0, "b: model"), row(3, 0, 0, "b: unreadable")}
	var got []string
	for _, r := range joinRows(a, b) {
		got = append(got, fmt.Sprintf("%d@%g %v %s", r.Index, r.Start, r.Raw, r.Err))
	}
	want := []string{"0@0 [1 10] ", "0@2 [2 20] ", "1@0 [] b: broke at 2 s", "2@0 [] b: model", "3@0 [] a: unreadable"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("joined:\n%s\nwant\n%s", strings.Join(got, "; "), strings.Join(want, "; "))
	}

	set := &rewardSet{members: []*loadedReward{{frames: 4, clips: true, describe: "a.safetensors"}, {frames: 8, clips: true, describe: "b.onnx"}}}
	_, err := set.run(context.Background(), nil, scoring.Scorer{Windows: scoring.AllWindows}, nil)
	if err == nil || !strings.Contains(err.Error(), "a.safetensors reads clips of 4 frames, b.onnx of 8: their windows differ") {
		t.Errorf("models of 4 and 8 frames: %v", err)
	}
}

// ensembleFixture writes a tiny generator, a native reward model of its size and that model
// renamed in ONNX (renamedONNX), for the tests that generate and score with both.
func ensembleFixture(t *testing.T) (dir, gen, model, other string) {
	t.Helper()
	dir = t.TempDir()
	gen = saveTinyModel(t, dir, diffusion.KindImage)
	model = writeRewardModel(t, dir, rewards.KindImage)
	return dir, gen, model, renamedONNX(t, dir, model)
}

// Best-of-N over an ensemble: the kept image's rewards name the dimensions of both models,
// and the weights of the run name dimensions of each.
func TestSampleEnsemble(t *testing.T) {
	dir, gen, model, other := ensembleFixture(t)
	code, stdout, stderr := runAlign(t, "sample", "--model", gen, "--prompt", "red apple", "--num-inference-steps", "2",
		"--best-of-n", "3", "--reward", model, "--reward", other, "--reward-weights", "ta=1,aes=0.5", "-o", filepath.Join(dir, "bon"), "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep sampleReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	s := rep.Steering
	if s == nil || s.Weights != "ta=1,aes=0.5" || !strings.Contains(s.Reward, " + ") || s.CallsPerImage != 3 || len(rep.Files) != 1 {
		t.Fatalf("steering %+v", s)
	}
	f := rep.Files[0]
	if len(f.Rewards) != 4 || f.Reward == nil {
		t.Fatalf("kept image's rewards %v", f.Rewards)
	}
	if want := f.Rewards["ta"] + 0.5*f.Rewards["aes"]; *f.Reward-want > 1e-9 || want-*f.Reward > 1e-9 {
		t.Errorf("reward %v, want ta + 0.5 aes = %v", *f.Reward, want)
	}
	// Gradient guidance needs every model noise-aware.
	code, _, stderr = runAlign(t, "sample", "--model", gen, "--prompt", "red apple", "--num-inference-steps", "2",
		"--reward-guidance-scale", "10", "--reward", model, "--reward", other, "-o", filepath.Join(dir, "nrg"))
	if code == exitOK || !strings.Contains(stderr, "noise-aware") {
		t.Errorf("Flow-NRG with an ensemble of clean models: exit %d, %s", code, stderr)
	}
}

// align pairs with two models: the scored set holds the dimensions of both, each sample's
// z-scores those align score gives its file; --rescore with both gives them again.
func TestPairsEnsemble(t *testing.T) {
	dir, gen, model, other := ensembleFixture(t)
	out := filepath.Join(dir, "scored.jsonl")
	code, _, stderr := runAlign(t, "pairs", "--prompt", "red apple", "--prompt", "blue car", "--model", gen, "--num-candidates", "3",
		"--num-inference-steps", "2", "--reward", model, "--reward", other, "--weights", "ta=1,aes=1", "--scored", "-o", out)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	set, err := dpo.ReadScored(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Items) != 6 || strings.Join(set.Dims, ",") != "aes,clip,ta,vq" {
		t.Fatalf("%d samples of dimensions %v", len(set.Items), set.Dims)
	}
	it := set.Items[4]
	row := scoreJSONL(t, it.Path, "--reward", model, "--reward", other, "--prompt", it.Prompt)[0]
	for d, dim := range set.Dims {
		if z := row[dim+"_z"].(float64); z-it.Scores[d] > 1e-6 || it.Scores[d]-z > 1e-6 {
			t.Errorf("%s: %v in the scored set, align score %v", dim, it.Scores[d], z)
		}
	}
	again := filepath.Join(dir, "again.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--from-scored", out, "--rescore", "--reward", model, "--reward", other, "--scored", "-o", again); code != exitOK {
		t.Fatalf("rescore: exit %d: %s", code, stderr)
	}
	if re, err := dpo.ReadScored(again); err != nil || !slices.EqualFunc(re.Items, set.Items, func(a, b dpo.Scored) bool { return slices.Equal(a.Scores, b.Scores) }) {
		t.Errorf("rescored with the same models: %v", err)
	}
	// The ONNX model alone scores each prompt's candidates while the next prompt's are drawn
	// (apart from --device): the same samples and its own scores of them.
	onnxOnly := filepath.Join(dir, "onnx.jsonl")
	if code, _, stderr := runAlign(t, "pairs", "--prompt", "red apple", "--prompt", "blue car", "--model", gen, "--num-candidates", "3",
		"--num-inference-steps", "2", "--reward", other, "--scored", "--images-dir", filepath.Join(dir, "onnx-images"), "-o", onnxOnly); code != exitOK {
		t.Fatalf("ONNX alone: exit %d: %s", code, stderr)
	}
	alone, err := dpo.ReadScored(onnxOnly)
	if err != nil || len(alone.Items) != len(set.Items) {
		t.Fatalf("ONNX alone: %v, %+v", err, alone)
	}
	aes := slices.Index(set.Dims, "aes")
	for i, it := range alone.Items {
		a, errA := os.ReadFile(it.Path)
		b, errB := os.ReadFile(set.Items[i].Path)
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Fatalf("candidate %d: other pixels than with both models (%v, %v)", i, errA, errB)
		}
		if d := it.Scores[0] - set.Items[i].Scores[aes]; d > 1e-6 || d < -1e-6 {
			t.Errorf("candidate %d: aes %v alone, %v beside the native model", i, it.Scores[0], set.Items[i].Scores[aes])
		}
	}
}
