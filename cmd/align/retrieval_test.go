// Tests of `align retrieval`: flag parsing and validation through runF, and end to end on the
// committed fixture dataset with tiny randomly initialised 32x32 image and video models (the
// report's shape, determinism, batch-size independence, grids, and the refusals).
//
// Test: go test ./cmd/align -run Retrieval
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/diffusion/eval"
)

func TestNewCmdRetrievalFlags(t *testing.T) {
	def := RetrievalOptions{Data: "data/emoji", NumPrompts: 200, TopK: 5, NumInferenceSteps: 28, GuidanceScale: 4,
		Sampler: "euler", BatchSize: 25, GridScale: 2}
	with := func(edit func(o *RetrievalOptions)) RetrievalOptions {
		o := def
		edit(&o)
		return o
	}
	tests := []flagCase[RetrievalOptions]{
		{args: nil, want: def},
		{args: []string{"--model", "m.safetensors", "--data", "d", "--video", "--num_prompts", "100", "--top-k", "10",
			"--num-inference-steps", "20", "--guidance-scale", "0", "--sampler", "heun", "--shift", "3", "--seed", "7",
			"--batch-size", "8", "--save-grid", "g.png", "--grid-scale", "3", "--json"},
			want: with(func(o *RetrievalOptions) {
				o.Model, o.Data, o.Video, o.NumPrompts, o.TopK = "m.safetensors", "d", true, 100, 10
				o.NumInferenceSteps, o.GuidanceScale, o.Sampler, o.Shift, o.Seed = 20, 0, "heun", 3, 7
				o.BatchSize, o.SaveGrid, o.GridScale, o.JSON = 8, "g.png", 3, true
			})},
		{args: []string{"--data", ""}, wantErr: "--data must not be empty"},
		{args: []string{"--num-prompts", "0"}, wantErr: "--num-prompts must be >= 1"},
		{args: []string{"--top-k", "0"}, wantErr: "--top-k must be in 1..100"},
		{args: []string{"--num-inference-steps", "0"}, wantErr: "--num-inference-steps must be >= 1"},
		{args: []string{"--guidance-scale", "-1"}, wantErr: "--guidance-scale must be a finite number >= 0"},
		{args: []string{"--sampler", "ddim"}, wantErr: `--sampler "ddim"`},
		{args: []string{"--shift", "-2"}, wantErr: "--shift must be a finite number > 0"},
		{args: []string{"--batch-size", "0"}, wantErr: "--batch-size must be >= 1"},
		{args: []string{"--grid-scale", "17"}, wantErr: "--grid-scale must be in 1..16"},
		{args: []string{"extra"}, wantErr: "unknown command"},
	}
	checkFlagCases(t, "retrieval", newCmdRetrieval, tests)
}

// saveRetrievalModel writes a tiny random model of the data's size (32x32, 8 frames for
// video) whose vocabulary covers the dataset's captions.
func saveRetrievalModel(t *testing.T, data, kind string) string {
	t.Helper()
	d, err := dataset.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	var captions []string
	for _, it := range d.Items {
		captions = append(captions, it.Caption, dataset.VideoCaption(it.Name, dataset.MoveUpLeft))
	}
	tok, err := diffusion.BuildTokenizer(captions, 1, 12)
	if err != nil {
		t.Fatal(err)
	}
	cfg := diffusion.ModelConfig{Kind: kind, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 8, TubeletFrames: 1,
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2, MaxTextLen: 12,
		VocabSize: tok.VocabSize(), RewardDims: []string{}, Shift: 1}
	if kind == diffusion.KindVideo {
		cfg.Frames, cfg.TubeletFrames = 8, 4
	}
	path := filepath.Join(t.TempDir(), kind+".safetensors")
	saveRandomModel(t, path, cfg, tok, 2)
	return path
}

func runRetrieval(t *testing.T, args ...string) (retrievalReport, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Main(append([]string{"retrieval", "--json"}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("retrieval %v: exit %d: %s", args, code, stderr.String())
	}
	var rep retrievalReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	return rep, stderr.String()
}

func TestRetrievalImageEndToEnd(t *testing.T) {
	data := buildFixtureDataset(t)
	model := saveRetrievalModel(t, data, diffusion.KindImage)
	grid := filepath.Join(t.TempDir(), "nn.png")
	args := []string{"--model", model, "--data", data, "--num-prompts", "5", "--num-inference-steps", "2", "--seed", "3"}
	rep, stderr := runRetrieval(t, append(args, "--save-grid", grid)...)
	r := rep.Images
	if r == nil || rep.Video != nil || rep.Kind != diffusion.KindImage || len(r.Prompts) != 5 || r.TopK != 5 {
		t.Fatalf("report %+v", rep)
	}
	// 2 spaces x 2 identities x 3 conditions x (top-1, top-5).
	if len(r.Rows) != 24 || r.Primary.Space != eval.SpacePixel || r.Primary.Identity != eval.IdentityEmoji ||
		r.Primary.Condition != eval.CondSamples || r.Primary.TopK != 5 || r.Primary.N != 5 {
		t.Errorf("rows %d, primary %+v", len(r.Rows), r.Primary)
	}
	if r.Gallery != 22 { // the fixture's 28 images less the 6 held out
		t.Errorf("gallery %d", r.Gallery)
	}
	for _, p := range r.Prompts {
		if len(p.Neighbours) != 5 || p.Real == "" || !strings.HasPrefix(p.Real, strings.ToLower(p.Unified)) {
			t.Errorf("prompt %+v", p)
		}
	}
	if !strings.Contains(stderr, "report the measure with at least 100") || !strings.Contains(stderr, "sampling: 2/2") {
		t.Errorf("stderr %q", stderr)
	}
	if st, err := os.Stat(grid); err != nil || st.Size() == 0 || rep.Grid != grid {
		t.Errorf("grid: %v", err)
	}

	// The same seed gives the same report, whatever the batch size.
	again, _ := runRetrieval(t, append(args, "--batch-size", "2")...)
	again.Seconds, rep.Seconds, rep.Grid = 0, 0, ""
	if !reflect.DeepEqual(again, rep) {
		t.Errorf("a rerun with --batch-size 2 differs:\n%+v\n%+v", again.Images.Prompts, rep.Images.Prompts)
	}
	other, _ := runRetrieval(t, "--model", model, "--data", data, "--num-prompts", "5", "--num-inference-steps", "2", "--seed", "4")
	if reflect.DeepEqual(other.Images.Prompts, rep.Images.Prompts) {
		t.Error("another seed gave the same prompts and neighbours")
	}

	// The table.
	var stdout, errb bytes.Buffer
	if code := Main(append([]string{"retrieval"}, args...), &stdout, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"SPACE", "leave-one-out", "pool8", "primary (pixel32, emoji, top-5)", "gallery: 22 distinct training images (of 22)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}

	// Refusals: a video expectation, too many prompts, a model of another size.
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{append(slices.Clone(args), "--video"), exitUsage, "is an image model"},
		{[]string{"--model", model, "--data", data, "--num-prompts", "8"}, exitUsage, "has 7 concepts"},
		{[]string{"--model", saveTinyModel(t, t.TempDir(), diffusion.KindImage), "--data", data}, exitError, "the retrieval measure takes 3x32x32"},
		{[]string{"--data", data, "--video"}, exitUsage, "the training clips have 7 concepts"}, // the embedded video model
	} {
		stdout.Reset()
		errb.Reset()
		if code := Main(append([]string{"retrieval"}, tt.args...), &stdout, &errb); code != tt.code || !strings.Contains(errb.String(), tt.msg) {
			t.Errorf("retrieval %v: exit %d, %q; want %d and %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
}

func TestRetrievalVideoEndToEnd(t *testing.T) {
	data := buildFixtureDataset(t)
	model := saveRetrievalModel(t, data, diffusion.KindVideo)
	grid := filepath.Join(t.TempDir(), "clips.gif")
	rep, _ := runRetrieval(t, "--model", model, "--data", data, "--num-prompts", "4", "--num-inference-steps", "2",
		"--save-grid", grid)
	r := rep.Video
	if r == nil || rep.Images != nil || rep.Kind != diffusion.KindVideo || len(r.Clips) != 4 || len(r.Rows) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for i, c := range r.Clips {
		if c.Motion != eval.Directions[i] || !strings.HasSuffix(c.Caption, c.Motion.Phrase()) {
			t.Errorf("clip %d: %+v", i, c)
		}
	}
	// The dataset's own clips move the way their captions say.
	if d := r.Rows[2]; d.Condition != eval.CondDataset || d.Hits != 4 || d.Chance != 0.125 {
		t.Errorf("dataset row %+v", d)
	}
	if _, err := os.Stat(grid); err != nil {
		t.Error(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"retrieval", "--model", model, "--data", data, "--num-prompts", "4", "--num-inference-steps", "1"},
		&stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "samples by direction: left") {
		t.Errorf("exit %d, table %q", code, stdout.String())
	}
}
