// Tests of `align pretrain`: flag parsing and validation through runF, and end to end on
// a small dataset built from the dataset package's fixture: a tiny image run whose model
// `align sample` loads, a resumed run, a video run, and SIGINT writing a checkpoint and
// exiting with code 2.
//
// Test: go test ./cmd/align -run Pretrain
package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	tests := []struct {
		args    []string
		check   func(o *PretrainOptions) string
		wantErr string
	}{
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
	}
	for _, tt := range tests {
		got, err := runWithStub(t, "pretrain", newCmdPretrain, tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("pretrain %v: err = %v, want it to contain %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("pretrain %v: %v", tt.args, err)
			continue
		}
		if what := tt.check(got); what != "" {
			t.Errorf("pretrain %v: wrong %s: %+v", tt.args, what, *got)
		}
	}
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
		!strings.Contains(stderr.String(), "max_train_steps: 4 -> 6") {
		t.Errorf("after resume: %d log lines; stderr %q", n, stderr.String())
	}

	// The model samples.
	if code := Main([]string{"sample", "--model", filepath.Join(out, "model.safetensors"), "--prompt", "red apple",
		"--num-inference-steps", "2", "-o", filepath.Join(out, "s")}, &stdout, &stderr); code != exitOK {
		t.Errorf("sample: exit %d: %s", code, stderr.String())
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
	args := append(tinyPretrainArgs(data, out, "2"), "--video", "--tubelet-frames", "4", "--train-batch-size", "2")
	if code := Main(args, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "samples", "step-000002.gif")); err != nil {
		t.Error(err)
	}
	m, err := diffusion.LoadDiT(testCPU, filepath.Join(out, "model.safetensors"))
	if err != nil || m.Config.Kind != diffusion.KindVideo || m.Config.Frames != 8 {
		t.Errorf("video model: %v", err)
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
	// Wait for the first logged step: the signal handler is in place by then.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(out, "logs.jsonl")); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no step logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
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
