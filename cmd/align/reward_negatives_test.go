// Tests of the generated negatives of `align reward train`: flag parsing, and a 2-step run
// with --negatives generator on a small synthetic emoji set (the committed fixture has no
// validation concept to calibrate on) with a tiny random generator: the pool is sampled and
// cached, a resume reuses it, and a resume with another generator or without the flag is
// refused.
//
// Run: go test ./cmd/align -run RewardTrain
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestRewardTrainNegativesFlags(t *testing.T) {
	parse := func(args ...string) (*RewardTrainOptions, error) {
		var got *RewardTrainOptions
		root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
		root.RemoveCommand(rewardSubcommand(root))
		root.AddCommand(newCmdReward(&rewardRunFuncs{train: func(o *RewardTrainOptions) error { got = o; return nil }}))
		root.SetArgs(append([]string{"reward", "train"}, args...))
		return got, root.Execute()
	}
	o, err := parse()
	if err != nil || o.Train.Negatives != "" || o.Train.NegativeShare != 0.25 || o.Train.NegativesPerLevel != 0 || o.NegativesGenerator != "" {
		t.Fatalf("defaults: %+v, %v", o, err)
	}
	o, err = parse("--negatives", "generator", "--negatives-generator", "g.safetensors", "--negative-share", "0.5", "--negatives-per-level", "10")
	if err != nil || o.Train.Negatives != rewards.NegativesGenerator || o.NegativesGenerator != "g.safetensors" ||
		o.Train.NegativeShare != 0.5 || o.Train.NegativesPerLevel != 10 {
		t.Fatalf("flags: %+v, %v", o, err)
	}
	if o, err = parse("--negatives", "none"); err != nil || o.Train.Negatives != "" {
		t.Fatalf("--negatives none: %+v, %v", o, err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--negatives", "diffusion"}, `--negatives "diffusion": want generator`},
		{[]string{"--negatives", "generator", "--video"}, "image reward models only"},
		{[]string{"--negatives", "generator", "--latent"}, "not available with --latent"},
		{[]string{"--negatives-generator", "g.safetensors"}, "--negatives-generator is only read with --negatives generator"},
		{[]string{"--negatives", "generator", "--negative-share", "0"}, "--negative-share 0 with --negatives generator"},
		{[]string{"--negatives", "generator", "--negative-share", "1.5"}, "--negative-share must be in [0, 1]"},
		{[]string{"--negatives", "generator", "--negatives-per-level", "-1"}, "--negatives-per-level must be >= 0"},
	} {
		if _, err := parse(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}

// negativesDataset writes a synthetic emoji set of 16 concepts, 12 for training and 4 for
// validation (rewards.ValidationConcept) in two subcategories each, one Twemoji drawing per
// concept (a disc of its own colour), and no held-out concept.
func negativesDataset(t *testing.T) string {
	t.Helper()
	return syntheticEmojiDataset(t, 0)
}

// syntheticEmojiDataset writes the emoji set of negativesDataset with clips clips.
func syntheticEmojiDataset(t *testing.T, clips int) string {
	t.Helper()
	type entry struct {
		Name          string `json:"name"`
		Unified       string `json:"unified"`
		Image         string `json:"image"`
		Category      string `json:"category"`
		Subcategory   string `json:"subcategory"`
		SortOrder     int    `json:"sort_order"`
		HasImgTwitter bool   `json:"has_img_twitter"`
	}
	var entries []entry
	imgs := map[string][]byte{}
	train, val := 0, 0
	for k := 0; train < 12 || val < 4; k++ {
		u := fmt.Sprintf("1F%03X", 0x300+k)
		isVal := rewards.ValidationConcept(u, rewards.ValPerCent)
		switch {
		case dataset.IsHeldOut(u), isVal && val == 4, !isVal && train == 12:
			continue
		}
		sub := fmt.Sprintf("sub-%d", train%2)
		if isVal {
			sub = fmt.Sprintf("val-%d", val%2)
			val++
		} else {
			train++
		}
		file := strings.ToLower(u) + ".png"
		entries = append(entries, entry{Name: fmt.Sprintf("THING %c", 'a'+k%26) + fmt.Sprint(k/26), Unified: u, Image: file,
			Category: "Objects", Subcategory: sub, SortOrder: k, HasImgTwitter: true})
		im := image.NewNRGBA(image.Rect(0, 0, 64, 64))
		col := color.NRGBA{uint8(40 + 53*k%200), uint8(200 - 31*k%160), uint8(60 + 97*k%180), 255}
		for y := range 64 {
			for x := range 64 {
				if dx, dy := x-32, y-32; dx*dx+dy*dy < 24*24 {
					im.SetNRGBA(x, y, col)
				}
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, im); err != nil {
			t.Fatal(err)
		}
		imgs[file] = b.Bytes()
	}
	js, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	src := &dataset.Sources{EmojiJSON: js, Keywords: []byte("{}"), Images: map[string]map[string][]byte{dataset.SetTwitter: imgs, dataset.SetGoogle: {}}}
	dir := t.TempDir()
	if _, err := dataset.Build(context.Background(), src, dataset.Options{OutputDir: dir, VideoClips: clips}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRewardTrainNegativesEndToEnd(t *testing.T) {
	data := negativesDataset(t)
	gen := saveRetrievalModel(t, data, diffusion.KindImage)
	out := filepath.Join(t.TempDir(), "run")
	args := func(extra ...string) []string {
		return append([]string{"reward", "train", "--data", data, "-o", out, "--negatives", "generator", "--negatives-generator", gen,
			"--negative-share", "0.5", "--negatives-per-level", "5", "--train-batch-size", "4", "--val-pairs", "8", "--eval-pairs", "0",
			"--hidden-size", "16", "--vision-layers", "1", "--joint-layers", "1", "--num-attention-heads", "2", "--patch-size", "8",
			"--max-text-length", "8", "--threads", "1"}, extra...)
	}
	run := func(args []string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := Main(args, &stdout, &stderr)
		return code, stderr.String()
	}
	if code, stderr := run(args("--max-train-steps", "2")); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	} else if !strings.Contains(stderr, "negatives: sampling 9 items") {
		t.Errorf("no sampling report on stderr: %q", stderr)
	}
	// 5 training and all 4 validation items, at 4 step counts.
	if fi, err := os.Stat(filepath.Join(out, rewards.NegativesDataFile)); err != nil || fi.Size() != 9*4*dataset.ImageBytes {
		t.Fatalf("%s: %v", rewards.NegativesDataFile, err)
	}
	b, _ := os.ReadFile(gen)
	sum := sha256.Sum256(b)
	var hdr struct {
		GeneratorSHA256 string `json:"generator_sha256"`
		Levels          []int  `json:"levels"`
	}
	if js, err := os.ReadFile(filepath.Join(out, rewards.NegativesHeaderFile)); err != nil || json.Unmarshal(js, &hdr) != nil ||
		hdr.GeneratorSHA256 != hex.EncodeToString(sum[:]) || fmt.Sprint(hdr.Levels) != "[3 2 1 1]" {
		t.Fatalf("%s: %+v, %v", rewards.NegativesHeaderFile, hdr, err)
	}
	ck, err := nn.LoadCheckpoint(nn.CheckpointPath(out, 2))
	if err != nil {
		t.Fatal(err)
	}
	if st := ck.Extra["train_state"]; !strings.Contains(st, `"negatives":"generator"`) || !strings.Contains(st, hdr.GeneratorSHA256) {
		t.Errorf("train_state without the negatives: %s", st)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Fatal(err)
	}

	// A resume reuses the pool; another generator file or no --negatives is refused.
	if code, stderr := run(args("--max-train-steps", "3", "--resume-from-checkpoint", "latest")); code != exitOK || !strings.Contains(stderr, "negatives: reusing 36 generated samples") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	other := filepath.Join(t.TempDir(), "other.safetensors")
	if err := os.WriteFile(other, append(b, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	resume := append(args("--max-train-steps", "4", "--resume-from-checkpoint", "latest"), "--negatives-generator", other)
	if code, stderr := run(resume); code != exitError || !strings.Contains(stderr, "--negatives-generator has") {
		t.Errorf("resume with another generator: exit %d: %s", code, stderr)
	}
	if code, stderr := run([]string{"reward", "train", "--data", data, "-o", out, "--max-train-steps", "4", "--resume-from-checkpoint", "latest", "--eval-pairs", "0"}); code != exitError ||
		!strings.Contains(stderr, "trained with --negatives generator") {
		t.Errorf("resume without --negatives: exit %d: %s", code, stderr)
	}
}
