// Tests of `align pretrain`: flag parsing and validation through runF, and end to end on
// a small dataset built from the dataset package's fixture: a tiny image run whose model
// `align sample` loads, a resumed run, a video run, a video run inflated from an image
// model (--init-from) and its resume, and SIGINT writing a checkpoint and exiting with
// code 2.
//
// Test: go test ./cmd/align -run Pretrain
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

func TestNewCmdPretrainFlags(t *testing.T) {
	tests := []flagCase[PretrainOptions]{
		{args: nil, check: func(o *PretrainOptions) string {
			d := diffusion.DefaultPretrainConfig()
			if o.Data != "data/emoji" || o.Train.TrainBatchSize != d.TrainBatchSize || o.Train.LearningRate != d.LearningRate ||
				o.Width != 256 || o.Train.Objective.WeightingScheme != "logit_normal" || len(o.modelFlags) != 0 {
				return "defaults"
			}
			return ""
		}},
		{args: []string{"--data", "d", "--video", "--hidden-size", "64", "--num-layers", "2", "--reward-dims", "vq,ta", "--train_batch_size", "8",
			"--max-train-steps", "100", "--learning-rate", "1e-3", "--lr-scheduler", "cosine", "--ema-decay", "0.99",
			"--checkpointing-steps", "10", "--resume-from-checkpoint", "", "--seed", "3", "--time-limit", "1h30m",
			"--proportion-empty-prompts", "0.2", "--validation-prompt", "a", "-o", "out"},
			check: func(o *PretrainOptions) string {
				if !o.Video || o.Width != 64 || o.Depth != 2 || strings.Join(o.RewardDims, ",") != "vq,ta" || o.Train.TrainBatchSize != 8 ||
					o.Train.MaxTrainSteps != 100 || o.Train.LRScheduler != "cosine" || o.Train.EMADecay != 0.99 || o.Train.Seed != 3 ||
					o.TimeLimit != 90*time.Minute || o.Train.Objective.CaptionDropout != 0.2 || o.OutputDir != "out" ||
					strings.Join(o.modelFlags, " ") != "--hidden-size --num-layers --reward-dims" || len(o.Train.ValidationPrompts) != 1 {
					return "parsed"
				}
				return ""
			}},
		{args: []string{"--config", "m.json", "--hidden-size", "64"}, wantErr: "--config and --hidden-size"},
		{args: []string{"--resume-from-checkpoint", "latest", "--num-layers", "3"}, wantErr: "a resumed run keeps the checkpoint's model"},
		{args: []string{"--lr-scheduler", "step"}, wantErr: `--lr-scheduler "step"`},
		{args: []string{"--learning-rate", "0"}, wantErr: "--learning-rate must be a positive number"},
		{args: []string{"--weighting-scheme", "uniform"}, wantErr: `--weighting-scheme "uniform"`},
		{args: []string{"--ema-decay", "1"}, wantErr: "--ema-decay must be in [0, 1)"},
		{args: []string{"--time-limit", "-1s"}, wantErr: "--time-limit must be >= 0"},
		{args: []string{"--train-batch-size", "0"}, wantErr: "--train-batch-size must be >= 1"},
		{args: []string{"--shift", "0"}, wantErr: "shift must be a positive number"},
		{args: []string{"--video", "--init-from", "default", "--tubelet-frames", "4"}, check: func(o *PretrainOptions) string {
			if o.InitFrom != "default" || o.TubeletFrames != 4 || len(o.modelFlags) != 1 {
				return "--init-from"
			}
			return ""
		}},
		{args: []string{"--concept-balance", "0.5"}, check: func(o *PretrainOptions) string {
			if o.Train.ConceptBalance != 0.5 {
				return "--concept-balance"
			}
			return ""
		}},
		{args: []string{"--concept-balance", "2"}, wantErr: "--concept-balance must be in [0, 1]"},
		{args: []string{"--init-from", "default"}, wantErr: "--init-from inflates an image model into a video model; add --video"},
		{args: []string{"--video", "--init-from", "default", "--config", "m.json"}, wantErr: "--config and --init-from"},
	}
	checkFlagCases(t, "pretrain", newCmdPretrain, tests)
}

// fixtureDataset builds a dataset with a few clips from the dataset package's fixture emoji.
func fixtureDataset(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := dataset.SourcesFromDir(filepath.Join("..", "..", "diffusion", "dataset", "testdata", "fixture"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Build(context.Background(), src, dataset.Options{OutputDir: dir, VideoClips: 6, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tinyPretrainArgs is a model and run small enough for a test.
func tinyPretrainArgs(data, out string, steps string) []string {
	return []string{"pretrain", "--data", data, "-o", out, "--hidden-size", "16", "--num-layers", "1", "--num-attention-heads", "2", "--patch-size", "8",
		"--text-layers", "1", "--max-text-length", "8", "--train-batch-size", "4", "--max-train-steps", steps,
		"--checkpointing-steps", "2", "--validation-inference-steps", "2", "--lr-warmup-steps", "1"}
}

func TestPretrainEndToEnd(t *testing.T) {
	data := fixtureDataset(t)
	out := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	if code := Main(tinyPretrainArgs(data, out, "4"), &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, f := range []string{"model.safetensors", "checkpoint-2.safetensors", "checkpoint-4.safetensors", "logs.jsonl",
		"loss.png", "config.json", "samples/step-000002.png", "samples/step-000004.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "model.safetensors (step 4)") || !strings.Contains(stderr.String(), "pretrain: 4/4") {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}

	// A fresh run into the same directory is refused.
	stderr.Reset()
	if code := Main(tinyPretrainArgs(data, out, "4"), &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "earlier run") {
		t.Errorf("fresh run over checkpoints: exit %d, %q", code, stderr.String())
	}

	// Resume to 6 steps: the log continues.
	stderr.Reset()
	args := append(tinyPretrainArgs(data, out, "6")[:5], "--max-train-steps", "6", "--checkpointing-steps", "2",
		"--validation-inference-steps", "2", "--lr-warmup-steps", "1", "--train-batch-size", "4", "--resume-from-checkpoint", "latest")
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("resume: exit %d: %s", code, stderr.String())
	}
	logs, _ := os.ReadFile(filepath.Join(out, "logs.jsonl"))
	if n := strings.Count(string(logs), "\n"); n != 6 || !strings.Contains(stderr.String(), "at step 4") ||
		!strings.Contains(stderr.String(), "max_train_steps: 4 -> 6") || strings.Contains(stderr.String(), "warning: the run of") {
		t.Errorf("after resume: %d log lines; stderr %q", n, stderr.String())
	}
	var rec nn.Compute
	if b, err := os.ReadFile(filepath.Join(out, "config.json")); err != nil || json.Unmarshal(b, &rec) != nil ||
		rec != (nn.Compute{Device: "cpu", Precision: "fp32"}) {
		t.Errorf("config.json: %+v, %v", rec, err)
	}

	// The model samples.
	if code := Main([]string{"sample", "--model", filepath.Join(out, "model.safetensors"), "--prompt", "red apple",
		"--num-inference-steps", "2", "-o", filepath.Join(out, "s")}, &stdout, &stderr); code != exitOK {
		t.Errorf("sample: exit %d: %s", code, stderr.String())
	}
	// A second stage: the finished run continues to 8 steps with concepts drawn alike; the
	// changed α is reported and recorded in config.json and the checkpoint.
	stderr.Reset()
	stage2 := append(slices.Clone(args), "--concept-balance", "1", "--max-train-steps", "8")
	if code := Main(stage2, &stdout, &stderr); code != exitOK {
		t.Fatalf("second stage: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "concept_balance: 0 -> 1; max_train_steps: 6 -> 8") ||
		!strings.Contains(stderr.String(), "--concept-balance 1 (the run had 0): steps 7 on follow the new data order") {
		t.Errorf("second stage: stderr %q", stderr.String())
	}
	if rec := readPretrainRecord(t, out); rec.Train.ConceptBalance != 1 || rec.Train.MaxTrainSteps != 8 {
		t.Errorf("config.json records α %v, %d steps", rec.Train.ConceptBalance, rec.Train.MaxTrainSteps)
	}
	ck, _, _, err := diffusion.ReadTrainingCheckpoint(filepath.Join(out, "checkpoint-8.safetensors"))
	if err != nil || !strings.Contains(ck.Extra["train_state"], `"concept_balance":1`) {
		t.Errorf("checkpoint-8: %v", err)
	}
	// A resume with model flags or the wrong kind is refused.
	if code := Main(append(args, "--video"), &stdout, &stderr); code != exitUsage {
		t.Errorf("resume with --video: exit %d", code)
	}
}

func TestPretrainVideoEndToEnd(t *testing.T) {
	data := fixtureDataset(t)
	out := filepath.Join(t.TempDir(), "vid")
	var stdout, stderr bytes.Buffer
	args := append(tinyPretrainArgs(data, out, "2"), "--video", "--tubelet-frames", "4", "--train-batch-size", "2", "--concept-balance", "1")
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if rec := readPretrainRecord(t, out); rec.Train.ConceptBalance != 1 { // clips are drawn by their concepts too
		t.Errorf("config.json records α %v", rec.Train.ConceptBalance)
	}
	if _, err := os.Stat(filepath.Join(out, "samples", "step-000002.gif")); err != nil {
		t.Error(err)
	}
	m, err := diffusion.LoadDiT(testCPU, filepath.Join(out, "model.safetensors"))
	if err != nil || m.Config.Kind != diffusion.KindVideo || m.Config.Frames != 8 {
		t.Errorf("video model: %v", err)
	}
}

// readPretrainRecord reads config.json of a pretrain output directory.
func readPretrainRecord(t *testing.T, dir string) pretrainRecord {
	t.Helper()
	var rec pretrainRecord
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestPretrainInitFrom(t *testing.T) {
	data := fixtureDataset(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	imgDir := filepath.Join(dir, "img")
	if code := Main(tinyPretrainArgs(data, imgDir, "2"), &stdout, &stderr); code != exitOK {
		t.Fatalf("image run: exit %d: %s", code, stderr.String())
	}
	imgPath := filepath.Join(imgDir, "model.safetensors")
	imgBytes, _ := os.ReadFile(imgPath)
	sum := sha256.Sum256(imgBytes)
	img, err := diffusion.LoadDiT(testCPU, imgPath)
	if err != nil {
		t.Fatal(err)
	}

	// The size flags repeat the image model's: accepted. --tubelet-frames is the video's own.
	out := filepath.Join(dir, "vid")
	video := func(out, steps string, extra ...string) []string {
		return append(tinyPretrainArgs(data, out, steps), append([]string{"--video", "--tubelet-frames", "4", "--train-batch-size", "2"}, extra...)...)
	}
	stderr.Reset()
	if code := Main(video(out, "2", "--init-from", imgPath), &stdout, &stderr); code != exitOK {
		t.Fatalf("inflated run: exit %d: %s", code, stderr.String())
	}
	vid, err := diffusion.LoadDiT(testCPU, filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n, vc := img.Tokenizer.VocabSize(), vid.Config
	if vc.Width != 16 || vc.Frames != 8 || vc.TubeletFrames != 4 || vc.VocabSize <= n ||
		!slices.Equal(vid.Tokenizer.Vocab[:n], img.Tokenizer.Vocab) || !slices.Contains(vid.Tokenizer.Vocab[n:], "moving") {
		t.Errorf("inflated model %+v, new words %q", vc, vid.Tokenizer.Vocab[n:])
	}
	if !strings.Contains(stderr.String(), fmt.Sprintf("inflated from %s (sha256 %x): tubelets of 4 frames; %d new words after its %d: ",
		imgPath, sum, vc.VocabSize-n, n)) {
		t.Errorf("stderr %q", stderr.String())
	}
	want := diffusion.InitSource{Path: imgPath, SHA256: hex.EncodeToString(sum[:])}
	if rec := readPretrainRecord(t, out); rec.Train.InitFrom == nil || *rec.Train.InitFrom != want || rec.Model.Kind != diffusion.KindVideo {
		t.Errorf("config.json records init %+v for a %s model, want %+v", rec.Train.InitFrom, rec.Model.Kind, want)
	}

	// A resume needs no --init-from and keeps the record; another source is refused.
	stderr.Reset()
	resume := []string{"pretrain", "--data", data, "-o", out, "--video", "--train-batch-size", "2", "--max-train-steps", "4",
		"--checkpointing-steps", "2", "--validation-inference-steps", "2", "--lr-warmup-steps", "1", "--resume-from-checkpoint", "latest"}
	if code := Main(resume, &stdout, &stderr); code != exitOK {
		t.Fatalf("resume %q: exit %d: %s", resume, code, stderr.String())
	}
	if rec := readPretrainRecord(t, out); rec.Train.InitFrom == nil || *rec.Train.InitFrom != want || rec.Resumed == "" {
		t.Errorf("after resume config.json records init %+v, resumed from %q", rec.Train.InitFrom, rec.Resumed)
	}
	if strings.Contains(stderr.String(), "init_from") {
		t.Errorf("resume reports a changed init: %q", stderr.String())
	}
	stderr.Reset()
	if code := Main(append(resume, "--init-from", filepath.Join(out, "model.safetensors")), &stdout, &stderr); code == exitOK ||
		!strings.Contains(stderr.String(), "initialised from "+imgPath) {
		t.Errorf("resume with another --init-from: exit %d, %q", code, stderr.String())
	}

	// Sizes that differ from the image model's, and a video model as the source, are refused.
	stderr.Reset()
	args := video(filepath.Join(dir, "wide"), "1", "--init-from", imgPath)
	args[slices.Index(args, "--hidden-size")+1] = "32"
	if code := Main(args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "--hidden-size 32 differs from the --init-from model's 16") {
		t.Errorf("other width: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(video(filepath.Join(dir, "v2"), "1", "--init-from", filepath.Join(out, "model.safetensors")), &stdout, &stderr); code != exitUsage ||
		!strings.Contains(stderr.String(), "is a video model") {
		t.Errorf("video source: exit %d, %q", code, stderr.String())
	}

	// default is the embedded image model (here the tiny one).
	defer func(b []byte) { defaultImageModel = b }(defaultImageModel)
	defaultImageModel = imgBytes
	out = filepath.Join(dir, "def")
	stderr.Reset()
	if code := Main(video(out, "1", "--init-from", "default"), &stdout, &stderr); code != exitOK {
		t.Fatalf("--init-from default: exit %d: %s", code, stderr.String())
	}
	if rec := readPretrainRecord(t, out); rec.Train.InitFrom == nil || *rec.Train.InitFrom != (diffusion.InitSource{Path: "default", SHA256: want.SHA256}) {
		t.Errorf("--init-from default recorded as %+v", rec.Train.InitFrom)
	}
}

func TestPretrainSIGINT(t *testing.T) {
	data := fixtureDataset(t)
	out := filepath.Join(t.TempDir(), "int")
	var stdout, stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main(append(tinyPretrainArgs(data, out, "100000"), "--checkpointing-steps", "100000"), &stdout, &stderr)
	}()
	waitForFirstStep(t, out)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	code := <-done
	if code != exitCancel {
		t.Fatalf("exit %d, want %d: %s", code, exitCancel, stderr.String())
	}
	cs, _ := nn.Checkpoints(out)
	if len(cs) != 1 || !strings.Contains(stderr.String(), "resume with --resume-from-checkpoint latest") {
		t.Errorf("checkpoints %v; stderr %q", cs, stderr.String())
	}
}

var testCPU = kernels.NewCPU(0)

func TestPretrainConfigFile(t *testing.T) {
	data := fixtureDataset(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "model.json")
	os.WriteFile(cfgPath, []byte(`{"kind":"image","sample_size":32,"in_channels":3,"num_frames":1,"patch_size":8,
		"tubelet_frames":1,"hidden_size":16,"num_layers":1,"num_attention_heads":2,"mlp_ratio":2,"text_layers":0,
		"text_width":8,"text_heads":2,"max_text_len":6,"reward_freq":4,"reward_dims":["vq"],"shift":2}`), 0o644)
	out := filepath.Join(dir, "run")
	var stdout, stderr bytes.Buffer
	args := []string{"pretrain", "--data", data, "-o", out, "--config", cfgPath, "--train-batch-size", "2",
		"--max-train-steps", "1", "--validation-inference-steps", "1"}
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	m, err := diffusion.LoadDiT(testCPU, filepath.Join(out, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if !strings.Contains(string(rec), `"shift": 2`) || strings.Contains(string(rec), `"shift": 1`) {
		t.Errorf("training shift does not follow the config's: %s", rec)
	}
	if c := m.Config; c.Width != 16 || c.TextWidth != 8 || c.MaxTextLen != 6 || c.Shift != 2 || len(c.RewardDims) != 1 || m.Reward == nil {
		t.Errorf("config from file: %+v", c)
	}
	stderr.Reset()
	if code := Main(append(args, "--video"), &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "image config") {
		t.Errorf("--video with an image config: exit %d, %q", code, stderr.String())
	}
	os.WriteFile(cfgPath, []byte(`{"kind":"image","hidden_size":15}`), 0o644)
	stderr.Reset()
	if code := Main(args, &stdout, &stderr); code == exitOK || !strings.Contains(stderr.String(), cfgPath) {
		t.Errorf("invalid config: exit %d, %q", code, stderr.String())
	}
}
