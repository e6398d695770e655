// Tests of `align reward`: flag parsing of train and eval through injected run functions,
// the dimension list and a missing model file. Training end to end is tested in the rewards
// package (the committed dataset fixture has too few concepts for a validation split).
//
// Run: go test ./cmd/align -run Reward
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

	"github.com/spf13/cobra"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/rewards"
)

func TestNewCmdRewardTrain(t *testing.T) {
	tests := []rewardTrainCase{
		{name: "defaults", args: nil, check: func(o *RewardTrainOptions) bool {
			d := rewards.DefaultTrainConfig()
			return o.Data == "data/emoji" && o.OutputDir == "reward" && o.Train == d && o.Width == 128 && !o.Video
		}},
		{name: "flags", args: []string{"--data", "d", "--video", "--dims", "vq,mq", "--loss", "bt", "--k", "3",
			"--train-batch-size", "8", "--max-train-steps", "50", "--learning-rate", "1e-3", "--seed", "4",
			"--checkpointing-steps", "10", "--resume-from-checkpoint", "latest", "-o", "out", "--hidden-size", "64"},
			check: func(o *RewardTrainOptions) bool {
				t := o.Train
				return o.Data == "d" && o.Video && o.Dims == "vq,mq" && t.LossType == "bt" && t.TieK == 3 &&
					t.TrainBatchSize == 8 && t.MaxTrainSteps == 50 && t.LearningRate == 1e-3 && t.Seed == 4 &&
					t.CheckpointingSteps == 10 && o.ResumeFromCheckpoint == "latest" && o.OutputDir == "out" && o.Width == 64
			}},
		{name: "underscores", args: []string{"--train_batch_size", "4"}, check: func(o *RewardTrainOptions) bool { return o.Train.TrainBatchSize == 4 }},
		{name: "bad loss", args: []string{"--loss", "hinge"}, wantErr: `unknown loss "hinge"`},
		{name: "bad k", args: []string{"--k", "1"}, wantErr: "k must be > 1"},
		{name: "k 0", args: []string{"--k", "0"}, wantErr: "--k must be > 1"}, // not the loss's default
		{name: "mq without video", args: []string{"--dims", "vq,mq"}, wantErr: "mq (motion quality) needs --video"},
		{name: "unknown dim", args: []string{"--dims", "aesthetic"}, wantErr: `unknown dimension "aesthetic"`},
		{name: "repeated dim", args: []string{"--dims", "ta,ta"}, wantErr: "ta given twice"},
		{name: "batch", args: []string{"--train-batch-size", "0"}, wantErr: "--train-batch-size must be >= 1"},
		{name: "val percent", args: []string{"--val-percent", "30"}, check: func(o *RewardTrainOptions) bool { return o.Train.ValPercent == 30 }},
		{name: "val percent 0", args: []string{"--val-percent", "0"}, wantErr: "--val-percent must be in [1, 50], got 0"},
		{name: "argument", args: []string{"x"}, wantErr: "unknown command"},
		{name: "video generator", args: []string{"--latent", "--generator", "default-video", "--dims", "vq,mq"}, check: func(o *RewardTrainOptions) bool { return o.Video }},
	}
	checkRewardTrainCases(t, tests)
}

// rewardTrainCase is one row of a table-driven test of align reward train's flags: the
// arguments and either a check of the options they parse to or a part of the error.
type rewardTrainCase struct {
	name    string
	args    []string
	check   func(o *RewardTrainOptions) bool
	wantErr string
}

// checkRewardTrainCases runs align reward train with each case's arguments, its run
// function replaced by one that captures the options.
func checkRewardTrainCases(t *testing.T, tests []rewardTrainCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *RewardTrainOptions
			root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
			root.RemoveCommand(rewardSubcommand(root))
			root.AddCommand(newCmdReward(&rewardRunFuncs{train: func(o *RewardTrainOptions) error { got = o; return nil }}))
			root.SetArgs(append([]string{"reward", "train"}, tt.args...))
			err := root.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(got) {
				t.Errorf("options %+v", *got)
			}
		})
	}
}

func TestNewCmdRewardEval(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    RewardEvalOptions
		wantErr string
	}{
		{name: "defaults", args: []string{"--model", "m"}, want: RewardEvalOptions{Models: []string{"m"}, Model: "m", Data: "data/emoji", Split: "heldout",
			Pairs: 2048, BatchSize: 64, TieShare: 0.15, ValPercent: 5}},
		{name: "flags", args: []string{"--model", "m", "--split", "val", "--pairs", "10", "--seed", "3", "--json", "--batch-size", "8", "--val-percent", "40"},
			want: RewardEvalOptions{Models: []string{"m"}, Model: "m", Data: "data/emoji", Split: "val", Pairs: 10, Seed: 3, JSON: true, BatchSize: 8, TieShare: 0.15, ValPercent: 40, valPercentSet: true}},
		{name: "models", args: []string{"--model", "m", "--model", "n.onnx"}, want: RewardEvalOptions{Models: []string{"m", "n.onnx"}, Model: "m",
			Data: "data/emoji", Split: "heldout", Pairs: 2048, BatchSize: 64, TieShare: 0.15, ValPercent: 5}},
		{name: "no model", args: nil, wantErr: "--model is required"},
		{name: "empty model", args: []string{"--model", "m", "--model", ""}, wantErr: "--model is required"},
		{name: "split", args: []string{"--model", "m", "--split", "test"}, wantErr: `--split "test"`},
		{name: "pairs", args: []string{"--model", "m", "--pairs", "0"}, wantErr: "--pairs must be >= 1"},
		{name: "val percent", args: []string{"--model", "m", "--val-percent", "51"}, wantErr: "--val-percent must be in [1, 50]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *RewardEvalOptions
			cmd := newCmdReward(&rewardRunFuncs{eval: func(o *RewardEvalOptions) error { got = o; return nil }})
			cmd.SetArgs(append([]string{"eval"}, tt.args...))
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestRewardEvalMissingModel(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"reward", "eval", "--model", t.TempDir() + "/none.safetensors"}, &stdout, &stderr)
	if code != exitError || !strings.Contains(stderr.String(), "none.safetensors") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestRewardTrainRefusesUsedDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "checkpoint-5.safetensors"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main([]string{"reward", "train", "-o", dir, "--data", dir}, &stdout, &stderr)
	if code != exitUsage || !strings.Contains(stderr.String(), "already holds checkpoint-5.safetensors") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

func TestParseDims(t *testing.T) {
	if d, err := parseDims("", true); err != nil || strings.Join(d, ",") != "vq,ta,mq" {
		t.Errorf("video default %v, %v", d, err)
	}
	if d, err := parseDims(" TA , vq", false); err != nil || strings.Join(d, ",") != "ta,vq" {
		t.Errorf("%v, %v", d, err)
	}
}

// rewardSubcommand returns the root's "reward" command.
func rewardSubcommand(root interface{ Commands() []*cobra.Command }) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == "reward" {
			return c
		}
	}
	return nil
}

// tinyRewardTrainArgs are the arguments of align reward train for a tiny image reward model
// on data written to out, checkpoints every 2 steps; extra flags come last (a repeated flag
// takes its last value).
func tinyRewardTrainArgs(data, out string, extra ...string) []string {
	return append([]string{"reward", "train", "--data", data, "-o", out, "--train-batch-size", "4", "--val-pairs", "8", "--eval-pairs", "0",
		"--hidden-size", "16", "--vision-layers", "1", "--joint-layers", "1", "--num-attention-heads", "2", "--patch-size", "8",
		"--max-text-length", "8", "--checkpointing-steps", "2", "--lr-warmup-steps", "1", "--threads", "1"}, extra...)
}

// --model default evaluates the embedded image reward model like its file.
func TestRewardEvalDefault(t *testing.T) {
	data := fixtureDataset(t)
	eval := func(model string) string {
		t.Helper()
		code, stdout, stderr := runAlign(t, "reward", "eval", "--model", model, "--data", data, "--split", "train", "--pairs", "16", "--json")
		if code != exitOK {
			t.Fatalf("--model %s: exit %d: %s", model, code, stderr)
		}
		var rep rewards.EvalReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Dims) != 2 {
			t.Fatalf("--model %s: %v, %q", model, err, stdout)
		}
		rep.Seconds = 0
		b, _ := json.Marshal(rep)
		return string(b)
	}
	file := filepath.Join(t.TempDir(), "reward-image.safetensors")
	if err := os.WriteFile(file, assets.RewardImage, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := eval("default"), eval(file); got != want {
		t.Errorf("default:\n%s\nits file:\n%s", got, want)
	}
}

// rewardModelKind is a kind of reward model and the reward train flags that make it.
type rewardModelKind struct {
	name  string
	extra []string
}

// rewardModelKinds are the kinds of reward model train can make on data: video, image, and
// latent (from the blocks of a generator trained on data for the test).
func rewardModelKinds(t *testing.T, data string) []rewardModelKind {
	t.Helper()
	gen := saveRetrievalModel(t, data, diffusion.KindImage)
	return []rewardModelKind{{"video", []string{"--video"}}, {"native", nil}, {"latent", []string{"--latent", "--generator", gen, "--latent-blocks", "1"}}}
}

// A reward model's training resumed on another device says that its numbers will differ from
// one uninterrupted run's, for the native and the latent model (the record is the
// checkpoint's); resumed where it ran, it says nothing.
func TestRewardTrainResumeOtherDevice(t *testing.T) {
	data := syntheticEmojiDataset(t, 32)
	dir := t.TempDir()
	for _, c := range rewardModelKinds(t, data)[1:] { // native and latent
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			run := func(steps string, extra ...string) string {
				t.Helper()
				args := tinyRewardTrainArgs(data, out, append(append(slices.Clone(c.extra), "--max-train-steps", steps), extra...)...)
				code, _, stderr := runAlign(t, args...)
				if code != exitOK {
					t.Fatalf("%v: exit %d: %s", args, code, stderr)
				}
				return stderr
			}
			run("2")
			resume := []string{"--resume-from-checkpoint", "latest"}
			if stderr := run("4", resume...); strings.Contains(stderr, "warning: the run of") {
				t.Errorf("resumed on the same device: %s", stderr)
			}
			if stderr := run("6", append(resume, "--device", "cuda-emu")...); !strings.Contains(stderr,
				"warning: the run of checkpoint-4.safetensors computed on cpu in fp32, this one on cuda-emu in fp32") {
				t.Errorf("resumed on cuda-emu: %s", stderr)
			}
		})
	}
}
