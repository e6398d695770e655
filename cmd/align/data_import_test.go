// Tests of `align data import`: its flags; a folder walked with its sub-folders, a Hugging
// Face imagefolder folder and a CSV list imported together, each caption from the source the
// rules give, an unreadable file failing the import or left out with --skip-errors, and the
// result pretrained on; MP4 clips imported frame for frame and pretrained on with --video;
// a video reward model trained on imported GIFs.
//
// Run: go test ./cmd/align -run DataImport
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/rewards"
)

func TestDataImportFlags(t *testing.T) {
	cases := []struct {
		args  []string
		check func(o *DataImportOptions) bool
		error string
	}{
		{args: []string{"in/", "-o", "d"}, check: func(o *DataImportOptions) bool {
			return slices.Equal(o.Inputs, []string{"in/"}) && o.OutputDir == "d" && o.Resize == dataset.ResizeCrop && !o.Video && o.FPS == 0
		}},
		{args: []string{"a/", "b.csv", "-o", "d", "--video", "--fps", "8", "--resize", "pad", "--skip-errors", "--prompts", "p.jsonl"},
			check: func(o *DataImportOptions) bool {
				return len(o.Inputs) == 2 && o.Video && o.FPS == 8 && o.Resize == "pad" && o.SkipErrors && o.PromptsFile == "p.jsonl"
			}},
		{args: []string{"-o", "d"}, error: "at least one INPUT"},
		{args: []string{"in/"}, error: "--output-dir (-o) is required"},
		{args: []string{"in/", "-o", "d", "--resize", "squash"}, error: `--resize "squash": want one of crop, pad, stretch`},
		{args: []string{"in/", "-o", "d", "--fps", "8"}, error: "add --video"},
		{args: []string{"in/", "-o", "d", "--video", "--fps", "-1"}, error: "--fps and --source-fps must be within"},
		{args: []string{"in/", "-o", "d", "--num-frames", "4"}, error: "add --video"},
		{args: []string{"in/", "-o", "d", "--video", "--num-frames", "65"}, error: "--num-frames 65: want 1 to 64"},
		{args: []string{"in/", "-o", "d", "--resolution", "7"}, error: "--resolution 7: want 8 to 256"},
		{args: []string{"in/", "-o", "d", "--video", "--fps", "4", "--clips-per-video", "0"}, check: func(o *DataImportOptions) bool {
			return o.ClipsPerVideo == 0 && o.FPS == 4
		}},
		{args: []string{"in/", "-o", "d", "--video"}, check: func(o *DataImportOptions) bool { return o.ClipsPerVideo == 1 }},
		{args: []string{"in/", "-o", "d", "--clips-per-video", "2"}, error: "add --video"},
		{args: []string{"in/", "-o", "d", "--held-out-percent", "12.5"}, check: func(o *DataImportOptions) bool {
			return o.HeldOut == 12.5 && heldOutPerMyriad(o.HeldOut) == 1250
		}},
		{args: []string{"in/", "-o", "d", "--held-out-percent", "0"}, check: func(o *DataImportOptions) bool { return heldOutPerMyriad(o.HeldOut) < 0 }},
		{args: []string{"in/", "-o", "d"}, check: func(o *DataImportOptions) bool { return heldOutPerMyriad(o.HeldOut) == dataset.HeldOutPerMyriad }},
		{args: []string{"in/", "-o", "d", "--held-out-percent", "51"}, error: "--held-out-percent 51: want 0 to 50"},
		{args: []string{"in/", "-o", "d", "--video", "--clips-per-video", "2"}, error: "--clips-per-video 2 cuts windows at --fps"},
		{args: []string{"in/", "-o", "d", "--video", "--fps", "4", "--clips-per-video", "-1"}, error: "--clips-per-video -1: want 1 or more"},
	}
	for _, c := range cases {
		var got *DataImportOptions
		root := newRootCmd(&strings.Builder{}, &strings.Builder{})
		for _, cmd := range root.Commands() {
			if cmd.Name() == "data" {
				root.RemoveCommand(cmd)
			}
		}
		root.AddCommand(newCmdData(&dataRunFuncs{imprt: func(o *DataImportOptions) error { got = o; return nil }}))
		root.SetArgs(append([]string{"data", "import"}, c.args...))
		err := root.Execute()
		if c.error != "" {
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Errorf("%v: err %v, want %q", c.args, err, c.error)
			}
			continue
		}
		if err != nil || got == nil || !c.check(got) {
			t.Errorf("%v: %+v, %v", c.args, got, err)
		}
	}
}

// writeImportPNG writes a w x h image of one colour, making its folder.
func writeImportPNG(t *testing.T, path string, w, h int, c color.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	writeImportFile(t, path, "")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// writeImportFile writes text to path, making its folder.
func writeImportFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDataImportImages(t *testing.T) {
	root := t.TempDir()
	walked := filepath.Join(root, "photos")
	red := color.NRGBA{200, 10, 10, 255}
	writeImportPNG(t, filepath.Join(walked, "red-apple_2.png"), 40, 30, red)                              // caption from its name
	writeImportPNG(t, filepath.Join(walked, "fruit", "IMG_1.png"), 16, 16, color.NRGBA{250, 200, 0, 255}) // from IMG_1.txt
	writeImportFile(t, filepath.Join(walked, "fruit", "IMG_1.txt"), "a yellow\n  lemon\n")
	writeImportPNG(t, filepath.Join(walked, "fruit", "IMG_2.png"), 16, 16, color.NRGBA{0, 150, 0, 255}) // from --prompts
	writeImportPNG(t, filepath.Join(walked, "fruit", "IMG_3.png"), 16, 16, color.NRGBA{90, 0, 90, 255}) // --prompts before .txt
	writeImportFile(t, filepath.Join(walked, "fruit", "IMG_3.txt"), "not this caption")
	writeImportPNG(t, filepath.Join(walked, ".hidden", "x.png"), 8, 8, red) // skipped
	writeImportFile(t, filepath.Join(walked, "notes.md"), "not an image")   // skipped
	prompts := filepath.Join(root, "prompts.jsonl")
	writeImportFile(t, prompts, `{"path":"IMG_2.png","prompt":"a green pear"}`+"\n"+`{"path":"IMG_3","prompt":"a ripe plum"}`+"\n")

	hf := filepath.Join(root, "hf") // imagefolder: metadata.jsonl lists the files
	writeImportPNG(t, filepath.Join(hf, "train", "0.png"), 8, 8, color.NRGBA{0, 0, 255, 255})
	writeImportPNG(t, filepath.Join(hf, "train", "unlisted.png"), 8, 8, red)
	writeImportFile(t, filepath.Join(hf, "train", "0.txt"), "not this caption") // the list's caption first
	writeImportFile(t, filepath.Join(hf, "metadata.jsonl"), `{"file_name":"train/0.png","text":"a blue square"}`+"\n")

	list := filepath.Join(root, "list.csv")
	writeImportPNG(t, filepath.Join(root, "b.png"), 8, 8, color.NRGBA{0, 0, 0, 255})
	writeImportFile(t, filepath.Join(root, "broken.png"), "not a png")
	writeImportFile(t, list, "path,caption\nb.png,A Black Square\nbroken.png,broken\n")

	out := filepath.Join(root, "photos", "ds") // inside a walked input: never read as one
	args := []string{"data", "import", walked, hf, list, "--prompts", prompts, "-o", out}
	code, _, stderr := runAlign(t, args...)
	if code != exitError || !strings.Contains(stderr, filepath.Join(root, "broken.png")) {
		t.Fatalf("an unreadable file: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(out, dataset.ManifestFile)); !os.IsNotExist(err) {
		t.Fatalf("a failed import left a manifest: %v", err)
	}
	code, stdout, stderr := runAlign(t, append(args, "--skip-errors", "--json")...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep dataImportReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	wantSources := map[string]int{captionFromFileName: 1, captionFromTextFile: 1, captionFromPrompts: 2, captionFromList: 2}
	if fmt.Sprint(rep.CaptionSources) != fmt.Sprint(wantSources) || rep.Counts.Images != 6 || len(rep.Skipped) != 1 ||
		!strings.Contains(rep.Skipped[0].Path, "broken.png") {
		t.Errorf("report: sources %v, counts %+v, skipped %+v", rep.CaptionSources, rep.Counts, rep.Skipped)
	}

	d, err := dataset.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ caption, group string }
	var got []row
	for _, it := range d.Items {
		got = append(got, row{it.Caption, it.Subcategory})
	}
	want := []row{
		{"a yellow lemon", "fruit"}, {"a green pear", "fruit"}, {"a ripe plum", "fruit"},
		{"red apple", "red apple"},           // walked: fruit/ before red-apple_2.png
		{"a blue square", "train"},           // the metadata's folder of the file
		{"A Black Square", "a black square"}, // a list: no group, so the concept
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items (caption, group):\n got %v\nwant %v", got, want)
	}
	// The 40x30 red image, centre-cropped, is red in every pixel; the yellow 16x16 one is
	// enlarged to yellow everywhere.
	for i, c := range map[int]color.NRGBA{3: red, 0: {250, 200, 0, 255}} {
		im := d.Image(i)
		plane := dataset.ImageSize * dataset.ImageSize
		for _, o := range []int{0, plane / 2, plane - 1} {
			if im[o] != c.R || im[plane+o] != c.G || im[2*plane+o] != c.B {
				t.Errorf("image %d (%s) pixel %d: %d %d %d, want %v", i, d.Items[i].Caption, o, im[o], im[plane+o], im[2*plane+o], c)
			}
		}
	}

	// A second import into the same directory needs --overwrite (nothing is changed without).
	before, _ := os.ReadFile(filepath.Join(out, dataset.ManifestFile))
	code, _, stderr = runAlign(t, append(args, "--skip-errors")...)
	after, _ := os.ReadFile(filepath.Join(out, dataset.ManifestFile))
	if code != exitUsage || !strings.Contains(stderr, "already holds a dataset (import-v1, 6 images, 0 clips); --overwrite replaces it") ||
		string(before) != string(after) {
		t.Errorf("import over a dataset: exit %d, %s", code, stderr)
	}

	// The text summary, and the dataset trains.
	code, stdout, stderr = runAlign(t, append(args, "--skip-errors", "--overwrite")...)
	if code != exitOK || !strings.Contains(stdout, "captions  6 distinct; 2 from lists, 2 from --prompts, 1 from .txt files, 1 from file names") ||
		!strings.Contains(stdout, "skipped   1 unreadable") {
		t.Errorf("summary: exit %d\n%s%s", code, stdout, stderr)
	}
	run := filepath.Join(root, "run")
	if code, _, stderr := runAlign(t, tinyPretrainArgs(out, run, "2")...); code != exitOK {
		t.Fatalf("pretrain on the import: exit %d, %s", code, stderr)
	}

	if code, _, stderr := runAlign(t, "data", "prompts", out, "--video"); code != exitUsage || !strings.Contains(stderr, "is an import of images") {
		t.Errorf("data prompts --video of an image import: exit %d, %s", code, stderr)
	}

	// Six concepts leave the reward's validation split (5% of them by a hash) empty: refused
	// before any training step.
	rw := filepath.Join(root, "rw")
	code, _, stderr = runAlign(t, "reward", "train", "--data", out, "--max-train-steps", "1", "-o", rw)
	if code != exitError || !strings.Contains(stderr, "the val split has 1 captions") || !strings.Contains(stderr, "needs more concepts") {
		t.Errorf("reward train on 6 concepts: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(rw, "checkpoint-1.safetensors")); !os.IsNotExist(err) {
		t.Errorf("a checkpoint was written before the refusal: %v", err)
	}

	// Errors name what is wrong.
	writeImportFile(t, filepath.Join(walked, "fruit", "IMG_2.txt"), " \n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{walked, "-o", out, "--overwrite"}, "IMG_2.txt: empty caption file"},
		{[]string{filepath.Join(root, "empty"), "-o", out, "--overwrite"}, "empty"},
		{[]string{hf + "/metadata.jsonl", "-o", out, "--video", "--overwrite"}, "0.png"},
	} {
		os.MkdirAll(filepath.Join(root, "empty"), 0o755)
		code, _, stderr := runAlign(t, append([]string{"data", "import"}, c.args...)...)
		if code != exitError || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s; want %q", c.args, code, stderr, c.want)
		}
	}
}

// The text summary names the first 20 unreadable files and counts the rest; --json lists
// every one.
// A dataset of 40 concepts: --held-out-percent 50 holds out the concepts the hash names at
// 50%; reward train's validation split at 5% of the rest cannot give pairs and says which
// flag helps; at --val-percent 50 it trains, evaluates its held-out pairs and records the
// split, which reward eval --split val reads and a resume must keep.
func TestDataImportSplitShares(t *testing.T) {
	root := t.TempDir()
	var list strings.Builder
	list.WriteString("path,caption\n")
	held := 0
	for i := range 40 {
		name := fmt.Sprintf("%02d.png", i)
		writeImportPNG(t, filepath.Join(root, "in", name), 8, 8, color.NRGBA{uint8(6 * i), 90, 200, 255})
		caption := fmt.Sprintf("shape number %d", i)
		fmt.Fprintf(&list, "%s,%s\n", name, caption)
		if dataset.HeldOutAt(dataset.ConceptOf(caption), 5000) {
			held++
		}
	}
	writeImportFile(t, filepath.Join(root, "in", "list.csv"), list.String())
	out := filepath.Join(root, "data")
	if code, stdout, stderr := runAlign(t, "data", "import", filepath.Join(root, "in", "list.csv"), "--held-out-percent", "50", "-o", out); code != exitOK ||
		!strings.Contains(stdout, fmt.Sprintf("concepts  40: train %d, heldout %d", 40-held, held)) {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	if held < 12 || held > 28 {
		t.Fatalf("%d of 40 concepts held out at 50%%", held)
	}
	if code, stdout, stderr := runAlign(t, "data", "inspect", out); code != exitOK || !strings.Contains(stdout, fmt.Sprintf("heldout %d (50%% of the concepts held out)\n", held)) {
		t.Errorf("data inspect: exit %d\n%s%s", code, stdout, stderr)
	}
	rw := filepath.Join(root, "rw")
	code, _, stderr := runAlign(t, tinyRewardTrainArgs(out, rw, "--max-train-steps", "2")...)
	if code != exitError || !strings.Contains(stderr, "the validation concepts (5% of the training ones") || !strings.Contains(stderr, "HINT: --val-percent") {
		t.Fatalf("reward train at 5%% validation: exit %d, %s", code, stderr)
	}
	code, stdout, stderr := runAlign(t, tinyRewardTrainArgs(out, rw, "--max-train-steps", "2", "--val-percent", "50", "--eval-pairs", "16")...)
	if code != exitOK || !strings.Contains(stdout+stderr, "held-out accuracy (16 pairs") {
		t.Fatalf("reward train --val-percent 50: exit %d\n%s%s", code, stdout, stderr)
	}
	// reward eval reads the split at the model's recorded share, or at --val-percent; a
	// comparison with a model of another share says their pairs differ.
	model := filepath.Join(rw, "model.safetensors")
	for _, c := range []struct {
		args  []string
		share string
	}{{nil, "50"}, {[]string{"--val-percent", "40"}, "40"}} {
		code, stdout, stderr := runAlign(t, append([]string{"reward", "eval", "--model", model, "--data", out, "--split", "val", "--pairs", "8"}, c.args...)...)
		if code != exitOK || !strings.Contains(stdout, "val pairs (validation share "+c.share+"%, seed 0") {
			t.Errorf("reward eval --split val %v: exit %d\n%s%s", c.args, code, stdout, stderr)
		}
	}
	rw40 := filepath.Join(root, "rw40")
	if code, _, stderr := runAlign(t, tinyRewardTrainArgs(out, rw40, "--max-train-steps", "1", "--val-percent", "40")...); code != exitOK {
		t.Fatalf("reward train --val-percent 40: exit %d, %s", code, stderr)
	}
	model40 := filepath.Join(rw40, "model.safetensors")
	code, _, stderr = runAlign(t, "reward", "eval", "--model", model, "--model", model40, "--data", out, "--split", "val", "--pairs", "8")
	if code != exitOK || !strings.Contains(stderr, "note: "+model+" was calibrated on a validation share of 50%, "+model40+" of 40%: their val pairs differ") {
		t.Errorf("reward eval of two shares: exit %d, %s", code, stderr)
	}
	resume := tinyRewardTrainArgs(out, rw, "--max-train-steps", "4", "--resume-from-checkpoint", "latest", "--val-percent", "30")
	if code, _, stderr := runAlign(t, resume...); code != exitError || !strings.Contains(stderr, "validation split of 50% of the concepts, --val-percent is 30") {
		t.Errorf("resume at another split: exit %d, %s", code, stderr)
	}
}

func TestDataImportManySkipped(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "in")
	writeImportPNG(t, filepath.Join(dir, "good.png"), 8, 8, color.NRGBA{1, 2, 3, 255})
	for k := range 23 {
		writeImportFile(t, filepath.Join(dir, fmt.Sprintf("bad-%02d.png", k)), "not a png")
	}
	out := filepath.Join(t.TempDir(), "ds")
	code, stdout, stderr := runAlign(t, "data", "import", dir, "--skip-errors", "-o", out)
	if code != exitOK || !strings.Contains(stdout, "skipped   23 unreadable:") || !strings.Contains(stdout, "bad-19.png") ||
		strings.Contains(stdout, "bad-20.png") || !strings.Contains(stdout, "and 3 more (--json lists every one)") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runAlign(t, "data", "import", dir, "--skip-errors", "-o", out, "--overwrite", "--json")
	var rep dataImportReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil || len(rep.Skipped) != 23 || rep.Counts.Images != 1 {
		t.Errorf("--json: exit %d, %d skipped", code, len(rep.Skipped))
	}
}

func TestDataImportVideo(t *testing.T) {
	bin := testvideo.Require(t)
	root := t.TempDir()
	// 10 frames of 32x32, frame k of red 20k: fps 0 takes round(k*9/7) = 0 1 3 4 5 6 8 9.
	frames := filepath.Join(root, "frames")
	for k := range 10 {
		writeImportPNG(t, filepath.Join(frames, fmt.Sprintf("%03d.png", k)), 32, 32, color.NRGBA{uint8(20 * k), 60, 90, 255})
	}
	clips := filepath.Join(root, "clips")
	os.MkdirAll(clips, 0o755)
	testvideo.Encode(t, bin, filepath.Join(frames, "%03d.png"), filepath.Join(clips, "a-wave-rolling-in.mp4"), "-framerate", "10")
	testvideo.Encode(t, bin, filepath.Join(frames, "%03d.png"), filepath.Join(clips, "a-wave-rolling-out.mp4"), "-framerate", "10")
	writeImportFile(t, filepath.Join(clips, "ignored.png"), "a still image is not a clip")
	out := filepath.Join(clips, "ds") // inside its input: its preview.gif is never read as a clip
	// The two files hold the same frames: the second is left out, named, unless
	// --keep-duplicates (the rest of the test keeps both).
	inClip, outClip := filepath.Join(clips, "a-wave-rolling-in.mp4"), filepath.Join(clips, "a-wave-rolling-out.mp4")
	code, stdout, stderr := runAlign(t, "data", "import", "--video", clips, "-o", out)
	if code != exitOK || !strings.Contains(stdout, "clips       1 of 1 files") ||
		!strings.Contains(stdout, "duplicates  1 left out, equal at 32x32 to an earlier one (--keep-duplicates keeps them):\n            "+outClip+" at 0s = "+inClip+" at 0s\n") {
		t.Fatalf("duplicate clip: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runAlign(t, "data", "inspect", out); code != exitOK || !strings.Contains(stdout, "; duplicates left out: 1\n") {
		t.Errorf("data inspect after a duplicate: exit %d, %s%s", code, stdout, stderr)
	}
	if code, _, stderr := runAlign(t, "data", "import", "--video", clips, "-o", out, "--overwrite", "--keep-duplicates"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	v, err := dataset.LoadVideo(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Clips) != 2 || v.Clips[0].Caption != "a wave rolling in" || v.Clips[1].Caption != "a wave rolling out" {
		t.Fatalf("clips %+v", v.Clips)
	}
	for t0, k := range []int{0, 1, 3, 4, 5, 6, 8, 9} {
		f := v.Clip(0)[t0*dataset.ImageBytes:]
		if f[0] != uint8(20*k) || f[dataset.ImageSize*dataset.ImageSize] != 60 || f[2*dataset.ImageSize*dataset.ImageSize+100] != 90 {
			t.Errorf("frame %d: %d %d, want source frame %d (red %d)", t0, f[0], f[dataset.ImageSize*dataset.ImageSize], k, 20*k)
		}
	}
	// --fps 10 takes the first 8 frames.
	if code, _, stderr := runAlign(t, "data", "import", "--video", clips, "--fps", "10", "-o", out, "--overwrite", "--keep-duplicates"); code != exitOK {
		t.Fatalf("--fps 10: exit %d: %s", code, stderr)
	}
	if v, err = dataset.LoadVideo(out); err != nil || len(v.Clips) != 2 || v.Clip(1)[7*dataset.ImageBytes] != 140 || v.Manifest.Import.FPS != 10 {
		t.Fatalf("--fps 10: %d clips, manifest %+v, %v", len(v.Clips), v.Manifest.Import, err)
	}
	args := append(tinyPretrainArgs(out, filepath.Join(root, "run"), "2"), "--video", "--train-batch-size", "2")
	if code, _, stderr := runAlign(t, args...); code != exitOK {
		t.Fatalf("pretrain --video on the import: exit %d, %s", code, stderr)
	}
	// --num-frames 4 spreads 4 frames over the 10: round(k*9/3) = 0 3 6 9; a video model of 4
	// frames trains on them.
	if code, _, stderr := runAlign(t, "data", "import", "--video", clips, "--num-frames", "4", "-o", out, "--overwrite", "--keep-duplicates"); code != exitOK {
		t.Fatalf("--num-frames 4: exit %d: %s", code, stderr)
	}
	if v, err = dataset.LoadVideo(out); err != nil || v.NumFrames() != 4 || len(v.Clip(0)) != 4*dataset.ImageBytes {
		t.Fatalf("--num-frames 4: %v", err)
	}
	for t0, k := range []int{0, 3, 6, 9} {
		if got := v.Clip(0)[t0*dataset.ImageBytes]; got != uint8(20*k) {
			t.Errorf("--num-frames 4, frame %d: red %d, want %d (source frame %d)", t0, got, 20*k, k)
		}
	}
	args = append(tinyPretrainArgs(out, filepath.Join(root, "run4"), "2"), "--video", "--train-batch-size", "2")
	if code, _, stderr := runAlign(t, args...); code != exitOK {
		t.Fatalf("pretrain --video on 4-frame clips: exit %d, %s", code, stderr)
	}

	// Windows of 2 frames at 5 fps from each 1 s video: every 0.4 s while 0.2 s more is left,
	// so frames 0 2 and 4 6 of each; 3 windows of 1 frame at 10 fps of the 10: 0, 5 and 9.
	for _, c := range []struct {
		args   []string
		starts string
		frames []int
	}{
		{[]string{"--num-frames", "2", "--fps", "5", "--clips-per-video", "0"}, "[0 0.4 0 0.4]", []int{0, 2, 4, 6, 0, 2, 4, 6}},
		{[]string{"--num-frames", "1", "--fps", "10", "--clips-per-video", "3"}, "[0 0.5 0.9 0 0.5 0.9]", []int{0, 5, 9, 0, 5, 9}},
	} {
		code, stdout, stderr := runAlign(t, append([]string{"data", "import", "--video", clips, "-o", out, "--overwrite", "--keep-duplicates"}, c.args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d: %s", c.args, code, stderr)
		}
		if v, err = dataset.LoadVideo(out); err != nil {
			t.Fatal(err)
		}
		var starts []float64
		for _, cl := range v.Clips {
			starts = append(starts, cl.Start)
			if cl.Source != filepath.Join(clips, "a-wave-rolling-in.mp4") && cl.Source != filepath.Join(clips, "a-wave-rolling-out.mp4") {
				t.Errorf("%v: clip %d from %q", c.args, cl.Index, cl.Source)
			}
		}
		if fmt.Sprint(starts) != c.starts || !strings.Contains(stdout, fmt.Sprintf("%d of 2 files", len(starts))) {
			t.Errorf("%v: clips starting %v, want %s; summary:\n%s", c.args, starts, c.starts, stdout)
		}
		for i, k := range c.frames {
			if got := v.Pixels[i*dataset.ImageBytes]; got != uint8(20*k) {
				t.Errorf("%v: frame %d of the clips: red %d, want %d (source frame %d)", c.args, i, got, 20*k, k)
			}
		}
	}
	if code, stdout, stderr := runAlign(t, "data", "inspect", out); code != exitOK || !strings.Contains(stdout, "fps 10, up to 3 windows of each clip") {
		t.Errorf("data inspect: exit %d, %s%s", code, stdout, stderr)
	}
}

// splitCaption is a caption and the folder to put its file in.
type splitCaption struct{ caption, folder string }

// rewardSplitCaptions picks captions "<prefix> k" (searched, so that no hash value is written
// by hand) for 12 training, 4 validation and 4 held-out concepts of the reward's splits, each
// split's in two folders: what reward train needs to build pairs of every split.
func rewardSplitCaptions(prefix string) []splitCaption {
	need := map[string]int{rewards.SplitTrain: 12, rewards.SplitVal: 4, rewards.SplitHeldOut: 4}
	var out []splitCaption
	for k := 0; need[rewards.SplitTrain]+need[rewards.SplitVal]+need[rewards.SplitHeldOut] > 0; k++ {
		caption := fmt.Sprintf("%s %d", prefix, k)
		split := rewards.SplitTrain
		switch concept := dataset.ConceptOf(caption); {
		case dataset.IsHeldOut(concept):
			split = rewards.SplitHeldOut
		case rewards.ValidationConcept(concept, rewards.ValPerCent):
			split = rewards.SplitVal
		}
		if need[split] == 0 {
			continue
		}
		need[split]--
		out = append(out, splitCaption{caption, fmt.Sprintf("folder-%d", need[split]%2)})
	}
	return out
}

// A video reward model trains on imported GIFs, captions from .txt files, each split given
// three captions in two folders at least: vq, ta and mq pairs from clips without motion
// labels.
func TestDataImportVideoReward(t *testing.T) {
	root := t.TempDir()
	clips := filepath.Join(root, "clips")
	for k, c := range rewardSplitCaptions("a clip number") {
		stem := filepath.Join(clips, c.folder, fmt.Sprintf("c%d", k))
		os.MkdirAll(filepath.Dir(stem), 0o755)
		writeTestGIF(t, stem+".gif", 8+k%3, 10)
		writeImportFile(t, stem+".txt", c.caption)
	}
	out := filepath.Join(root, "ds")
	// The GIFs repeat three patterns (of 8, 9 and 10 frames): each is its own clip here.
	if code, _, stderr := runAlign(t, "data", "import", "--video", clips, "-o", out, "--keep-duplicates"); code != exitOK {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	// data prompts lists the clips' captions as they are, one per training concept.
	code, stdout, stderr := runAlign(t, "data", "prompts", out)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != exitOK || len(lines) != 16 || !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, "a clip number ") }) ||
		slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "moving") }) {
		t.Errorf("data prompts of a clip import: exit %d, %d lines\n%s%s", code, len(lines), stdout, stderr)
	}
	rw := filepath.Join(root, "rw")
	args := append(tinyRewardTrainArgs(out, rw, "--video", "--max-train-steps", "2"), "--eval-pairs", "48")
	code, _, stderr = runAlign(t, args...)
	if code != exitOK {
		t.Fatalf("reward train --video on imported clips: exit %d, %s", code, stderr)
	}
	b, err := os.ReadFile(filepath.Join(rw, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep rewards.EvalReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for k := range rep.ByNote {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, prefix := range []string{"mq/", "ta/random", "vq/"} {
		if !slices.ContainsFunc(kinds, func(k string) bool { return strings.HasPrefix(k, prefix) }) {
			t.Errorf("held-out pairs by kind %v: none of %s", kinds, prefix)
		}
	}
	if slices.Contains(kinds, "ta/motion") {
		t.Errorf("motion negatives from clips without motion labels: %v", kinds)
	}
}

// A 16x16 import: pretrain makes a 16x16 model whose samples are 16x16, reward train a 16x16
// reward model; retrieval (defined at 32x32) and a model of another size are refused.
func TestDataImportResolution(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "in")
	for k, c := range rewardSplitCaptions("a tiny thing") {
		stem := filepath.Join(in, c.folder, fmt.Sprintf("i%d", k))
		writeImportPNG(t, stem+".png", 24, 20, color.NRGBA{uint8(10 * k), 200, 50, 255})
		writeImportFile(t, stem+".txt", c.caption)
	}
	out := filepath.Join(root, "ds")
	code, stdout, stderr := runAlign(t, "data", "import", in, "--resolution", "16", "--resize", "stretch", "-o", out)
	if code != exitOK || !strings.Contains(stdout, "(import-v1, 16x16)") {
		t.Fatalf("import: exit %d\n%s%s", code, stdout, stderr)
	}
	d, err := dataset.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size() != 16 || len(d.Pixels) != d.Len()*3*16*16 {
		t.Fatalf("size %d, %d bytes for %d images", d.Size(), len(d.Pixels), d.Len())
	}
	for i, it := range d.Items { // iK.png is red 10K, green 200 everywhere
		var k int
		fmt.Sscanf(filepath.Base(it.ID), "i%d.png", &k)
		if im := d.Image(i); im[0] != uint8(10*k) || im[16*16+255] != 200 {
			t.Fatalf("%s: red %d, green %d; want %d and 200", it.ID, im[0], im[16*16+255], 10*k)
		}
	}
	if code, _, stderr := runAlign(t, "data", "import", in, "--resolution", "300", "-o", out); code != exitUsage || !strings.Contains(stderr, "--resolution 300: want 8 to 256") {
		t.Errorf("--resolution 300: exit %d, %s", code, stderr)
	}

	run := filepath.Join(root, "run")
	if code, _, stderr := runAlign(t, tinyPretrainArgs(out, run, "2")...); code != exitOK {
		t.Fatalf("pretrain: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = runAlign(t, "sample", "--model", filepath.Join(run, "model.safetensors"), "--prompt", "a tiny thing 3",
		"--num-inference-steps", "2", "-o", filepath.Join(root, "s"), "--json")
	var rep sampleReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil || len(rep.Files) != 1 {
		t.Fatalf("sample: exit %d\n%s%s", code, stdout, stderr)
	}
	f, err := os.Open(rep.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(f)
	f.Close()
	if err != nil || cfg.Width != 16 || cfg.Height != 16 {
		t.Errorf("sample %s: %dx%d, %v; want 16x16", rep.Files[0].Path, cfg.Width, cfg.Height, err)
	}

	// Best-of-N scores the samples in memory, as made: a 32x32 reward model is refused before
	// sampling.
	if code, _, stderr := runAlign(t, "sample", "--model", filepath.Join(run, "model.safetensors"), "--prompt", "a tiny thing 3",
		"--best-of-n", "2", "--reward", "default", "-o", filepath.Join(root, "bon")); code != exitUsage ||
		!strings.Contains(stderr, "the reward model reads samples of shape [3 32 32], the generator makes [3 16 16]") {
		t.Errorf("best-of-2 with a 32x32 reward: exit %d, %s", code, stderr)
	}
	rw := filepath.Join(root, "rw")
	if code, _, stderr := runAlign(t, tinyRewardTrainArgs(out, rw, "--max-train-steps", "2")...); code != exitOK {
		t.Fatalf("reward train: exit %d, %s", code, stderr)
	}
	code, stdout, stderr = runAlign(t, "reward", "eval", "--model", filepath.Join(rw, "model.safetensors"), "--data", out, "--pairs", "16", "--json")
	var ev rewards.EvalReport
	if code != exitOK || json.Unmarshal([]byte(stdout), &ev) != nil || ev.Pairs != 16 {
		t.Errorf("reward eval of the 16x16 model: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runAlign(t, "sample", "--model", filepath.Join(run, "model.safetensors"), "--prompt", "a tiny thing 3",
		"--num-inference-steps", "2", "--best-of-n", "2", "--reward", filepath.Join(rw, "model.safetensors"), "-o", filepath.Join(root, "bon"))
	if code != exitOK {
		t.Errorf("best-of-2 with the 16x16 reward: exit %d, %s", code, stderr)
	}
	// The embedded reward model reads 32x32: not these pairs.
	if code, _, stderr := runAlign(t, "reward", "eval", "--model", "default", "--data", out, "--pairs", "16"); code != exitError ||
		!strings.Contains(stderr, "samples of [3 16 16], the model reads [3 32 32]") {
		t.Errorf("reward eval of a 32x32 model on 16x16 data: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, "retrieval", "--model", filepath.Join(run, "model.safetensors"), "--data", out, "--num-prompts", "4"); code != exitError ||
		!strings.Contains(stderr, "makes 3x16x16 samples of 1 frames; the retrieval measure takes 3x32x32") {
		t.Errorf("retrieval of a 16x16 model: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runAlign(t, "retrieval", "--model", "default", "--data", out, "--num-prompts", "4"); code != exitError ||
		!strings.Contains(stderr, "holds 16x16 images; the retrieval measure's feature spaces are defined at 32x32") {
		t.Errorf("retrieval of 16x16 data: exit %d, %s", code, stderr)
	}
	// Resuming the 16x16 run on the 32x32 emoji fixture is refused before a step.
	if code, _, stderr := runAlign(t, "pretrain", "--data", fixtureDataset(t), "-o", run, "--resume-from-checkpoint", "latest",
		"--max-train-steps", "4"); code != exitUsage ||
		!strings.Contains(stderr, "samples of 1 frames of 3x32x32; the model makes 1 frames of 3x16x16") {
		t.Errorf("resume on 32x32 data: exit %d, %s", code, stderr)
	}
}

// A phone's JPEG stored sideways (EXIF orientation 6) is imported as a viewer shows it: its
// stored left half, red, is the top of the imported image.
func TestDataImportUpright(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 32))
	for y := range 32 {
		for x := range 64 {
			img.SetRGBA(x, y, map[bool]color.RGBA{true: {255, 0, 0, 255}, false: {0, 0, 255, 255}}[x < 32])
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	tiff := []byte{'I', 'I', 0x2a, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0} // orientation 6
	app1 := append([]byte{0xff, 0xe1, 0, byte(2 + 6 + len(tiff))}, append([]byte("Exif\x00\x00"), tiff...)...)
	root := t.TempDir()
	in := filepath.Join(root, "a-red-over-blue-photo.jpg")
	writeImportFile(t, in, string(b.Bytes()[:2])+string(app1)+string(b.Bytes()[2:]))
	out := filepath.Join(root, "ds")
	if code, _, stderr := runAlign(t, "data", "import", in, "--resize", "stretch", "-o", out); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d, err := dataset.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	S := dataset.ImageSize
	im, plane := d.Image(0), S*S
	top, bottom := 4*S+16, 28*S+16 // (16,4) and (16,28)
	if im[top] < 200 || im[2*plane+top] > 60 || im[bottom] > 60 || im[2*plane+bottom] < 200 {
		t.Errorf("top: red %d blue %d; bottom: red %d blue %d; want red over blue", im[top], im[2*plane+top], im[bottom], im[2*plane+bottom])
	}
}
