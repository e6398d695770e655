// Tests of `align reward train --video --init-from`: the flag checks, a video reward model
// inflated from a tiny image reward model on a synthetic dataset with clips (the vocabulary
// keeps the image model's ids, the source's path and sha256 are in every checkpoint), its
// resume without --init-from and with another one, a size flag that differs from the image
// model's, sources that are not native image reward models (a video reward model, a
// generator, a latent reward model), and --init-from default.
//
// Run: go test ./cmd/align -run RewardTrainInitFrom
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestRewardTrainInitFromFlags(t *testing.T) {
	checkRewardTrainCases(t, []rewardTrainCase{
		{name: "init-from", args: []string{"--video", "--init-from", "default", "--hidden-size", "128"},
			check: func(o *RewardTrainOptions) bool {
				return o.InitFrom == "default" && slices.Equal(o.modelFlags, []string{"--hidden-size"})
			}},
		{name: "image", args: []string{"--init-from", "default"}, check: func(o *RewardTrainOptions) bool { return o.InitFrom == "default" && !o.Video }},
		{name: "latent", args: []string{"--video", "--latent", "--init-from", "default"}, wantErr: "--init-from and --latent"},
	})
}

func TestRewardTrainInitFrom(t *testing.T) {
	data := syntheticEmojiDataset(t, 32)
	dir := t.TempDir()
	tiny := func(out string, extra ...string) []string { return tinyRewardTrainArgs(data, out, extra...) }
	run := func(args []string) (int, string) {
		var stdout, stderr bytes.Buffer
		code := Main(args, &stdout, &stderr)
		return code, stderr.String()
	}
	imgDir := filepath.Join(dir, "img")
	if code, stderr := run(tiny(imgDir, "--max-train-steps", "2")); code != exitOK {
		t.Fatalf("image run: exit %d: %s", code, stderr)
	}
	imgPath := filepath.Join(imgDir, "model.safetensors")
	imgBytes, _ := os.ReadFile(imgPath)
	sum := sha256.Sum256(imgBytes)
	want := diffusion.InitSource{Path: imgPath, SHA256: hex.EncodeToString(sum[:])}
	img, err := rewards.LoadNative(testCPU, imgPath)
	if err != nil {
		t.Fatal(err)
	}

	// The size flags repeat the image model's: accepted.
	out := filepath.Join(dir, "vid")
	code, stderr := run(tiny(out, "--video", "--max-train-steps", "2", "--init-from", imgPath))
	if code != exitOK {
		t.Fatalf("inflated run: exit %d: %s", code, stderr)
	}
	vid, err := rewards.LoadNative(testCPU, filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n, vc := img.Tokenizer.VocabSize(), vid.Config
	if vc.Kind != rewards.KindVideo || vc.Width != 16 || vc.TubeletFrames != 2 || !slices.Equal(vc.Dims, []string{"vq", "ta", "mq"}) ||
		!slices.Equal(vid.Tokenizer.Vocab[:n], img.Tokenizer.Vocab) || !slices.Contains(vid.Tokenizer.Vocab[n:], "moving") {
		t.Errorf("inflated model %+v, new words %q", vc, vid.Tokenizer.Vocab[n:])
	}
	if !strings.Contains(stderr, fmt.Sprintf("inflated from %s (sha256 %s): tubelets of 2 frames; %d new words after its %d: ",
		imgPath, want.SHA256, vc.VocabSize-n, n)) {
		t.Errorf("stderr %q", stderr)
	}
	checkInitRecord := func(step int, want diffusion.InitSource) {
		t.Helper()
		ck, err := nn.LoadCheckpoint(nn.CheckpointPath(out, step))
		if err != nil {
			t.Fatal(err)
		}
		if st := ck.Extra["train_state"]; !strings.Contains(st, fmt.Sprintf(`"init_from":{"path":%q,"sha256":%q}`, want.Path, want.SHA256)) {
			t.Errorf("checkpoint-%d train_state %s, want init_from %+v", step, st, want)
		}
	}
	checkInitRecord(2, want)

	// A resume needs no --init-from and keeps the record; another source is refused.
	resume := []string{"reward", "train", "--data", data, "-o", out, "--video", "--train-batch-size", "4", "--val-pairs", "8",
		"--eval-pairs", "0", "--checkpointing-steps", "2", "--lr-warmup-steps", "1", "--threads", "1", "--resume-from-checkpoint", "latest"}
	if code, stderr := run(append(resume, "--max-train-steps", "4")); code != exitOK || !strings.Contains(stderr, "at step 2") {
		t.Fatalf("resume: exit %d: %s", code, stderr)
	}
	checkInitRecord(4, want)
	if code, stderr := run(append(resume, "--max-train-steps", "6", "--init-from", imgPath)); code != exitOK {
		t.Errorf("resume with the same --init-from: exit %d: %s", code, stderr)
	}
	vidPath := filepath.Join(out, "model.safetensors")
	if code, stderr := run(append(resume, "--max-train-steps", "8", "--init-from", vidPath)); code == exitOK ||
		!strings.Contains(stderr, "the run was initialised from "+imgPath) {
		t.Errorf("resume with another --init-from: exit %d, %q", code, stderr)
	}

	// A size that differs from the image model's, and sources that are not native image
	// reward models, are refused naming the file.
	args := tiny(filepath.Join(dir, "wide"), "--video", "--max-train-steps", "1", "--init-from", imgPath)
	args[slices.Index(args, "--hidden-size")+1] = "32"
	if code, stderr := run(args); code != exitUsage || !strings.Contains(stderr, "--hidden-size 32 differs from the --init-from model's 16") {
		t.Errorf("other width: exit %d, %q", code, stderr)
	}
	gen := saveRetrievalModel(t, data, diffusion.KindImage)
	g, err := diffusion.LoadDiT(testCPU, gen)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := rewards.NewLatentFromGenerator(testCPU, nil, g, rewards.LatentConfig{Blocks: 1, Dims: []string{"vq", "ta"}, Source: gen})
	if err != nil {
		t.Fatal(err)
	}
	latent := filepath.Join(dir, "latent.safetensors")
	if err := lm.Save(latent); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{vidPath, vidPath + " is a video reward model"},
		{gen, gen + `: model_type "align.dit", want "align.reward.native"`},
		{latent, latent + `: model_type "align.reward.latent", want "align.reward.native"`},
		{filepath.Join(dir, "none.safetensors"), "none.safetensors"},
	} {
		code, stderr := run(tiny(filepath.Join(dir, "bad"), "--video", "--max-train-steps", "1", "--init-from", c.path))
		if code == exitOK || !strings.Contains(stderr, c.want) {
			t.Errorf("--init-from %s: exit %d, %q, want %q", c.path, code, stderr, c.want)
		}
	}

	// An image run starts from the image model as it is: after one step at a learning rate of
	// 1e-12 its weights are the source's, its words first.
	out = filepath.Join(dir, "img2")
	imgOut := out
	prefs := writePreferenceFile(t, filepath.Join(dir, "prefs"), 20)
	if code, stderr := run(tiny(imgOut, "--max-train-steps", "1", "--learning-rate", "1e-12", "--adam-weight-decay", "0",
		"--init-from", imgPath, "--pairs", prefs)); code != exitOK ||
		!strings.Contains(stderr, fmt.Sprintf("started from %s (sha256 %s); ", imgPath, want.SHA256)) {
		t.Fatalf("image run started from an image model: exit %d: %s", code, stderr)
	}
	checkInitRecord(1, want)
	started, err := rewards.LoadNative(testCPU, filepath.Join(imgOut, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if sc := started.Config; sc.Kind != rewards.KindImage || sc.Width != 16 || !slices.Equal(started.Tokenizer.Vocab[:n], img.Tokenizer.Vocab) {
		t.Errorf("started model %+v, new words %q", sc, started.Tokenizer.Vocab[n:])
	}
	srcW := map[string][]float32{}
	for _, p := range img.Params() {
		srcW[p.Name] = kernels.Host(p.W)
	}
	for _, p := range started.Params() {
		got, s := kernels.Host(p.W), srcW[p.Name]
		if p.Name == "token_embedding.weight" {
			got = got[:len(s)]
		}
		if len(got) != len(s) {
			t.Fatalf("%s: %d values, the source %d", p.Name, len(got), len(s))
		}
		for i := range s {
			if math.Abs(float64(got[i]-s[i])) > 1e-6 {
				t.Fatalf("%s[%d] = %g, the source's %g", p.Name, i, got[i], s[i])
			}
		}
	}

	// default is the embedded image reward model (here the tiny one).
	defer func(b []byte) { defaultRewardModel = b }(defaultRewardModel)
	defaultRewardModel = imgBytes
	out = filepath.Join(dir, "def")
	if code, stderr := run([]string{"reward", "train", "--data", data, "-o", out, "--video", "--init-from", "default", "--train-batch-size", "4",
		"--val-pairs", "8", "--eval-pairs", "0", "--max-train-steps", "2", "--threads", "1"}); code != exitOK {
		t.Fatalf("--init-from default: exit %d: %s", code, stderr)
	}
	checkInitRecord(2, diffusion.InitSource{Path: "default", SHA256: want.SHA256})
}
