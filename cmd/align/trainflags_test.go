// Tests of the training flags shared by align pretrain, finetune and reward train: the same
// names and help in every command, each command's own defaults, --time-limit checked by all
// three, --resume-from-checkpoint latest.
//
// Test: go test ./cmd/align -run TrainFlags
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

func TestTrainFlags(t *testing.T) {
	usage := map[string]string{
		"max-train-steps":         "optimizer steps in all",
		"learning-rate":           "peak learning rate",
		"lr-scheduler":            "constant, linear or cosine (after the warmup)",
		"lr-warmup-steps":         "linear warmup steps",
		"adam-weight-decay":       "AdamW decoupled weight decay",
		"max-grad-norm":           "clip the global gradient norm to this",
		"checkpointing-steps":     "write a checkpoint every N steps",
		"checkpoints-total-limit": "keep the newest N checkpoints (0: all)",
		"resume-from-checkpoint":  `checkpoint file, or "latest" in --output-dir`,
		"time-limit":              "stop with a checkpoint after this long (e.g. 2h; 0: no limit)",
	}
	pc, fc, rc := diffusion.DefaultPretrainConfig(), dpo.DefaultConfig(), rewards.DefaultTrainConfig()
	for _, tc := range []struct {
		name     string
		cmd      *cobra.Command
		seed     string
		batch    string
		defaults map[string]any // flag -> the command's default; "ema-decay" or "adam-beta1" absent: no such flag
	}{
		{"pretrain", newCmdPretrain(nil), "random seed of the run (weights, data order, noise)", "samples per step",
			map[string]any{"learning-rate": pc.LearningRate, "lr-scheduler": pc.LRScheduler, "lr-warmup-steps": pc.LRWarmupSteps,
				"max-train-steps": pc.MaxTrainSteps, "train-batch-size": pc.TrainBatchSize, "adam-weight-decay": pc.AdamWeightDecay,
				"checkpoints-total-limit": pc.CheckpointsTotalLimit, "ema-decay": pc.EMADecay, "seed": 0, "time-limit": "0s",
				"adam-beta1": pc.AdamBeta1, "adam-beta2": pc.AdamBeta2, "adam-epsilon": pc.AdamEpsilon}},
		{"finetune", newCmdFinetune(nil), "random seed of the run (adapters, data order, times and noise)", "pairs (dpo) or samples (rwr, sft) per micro-batch",
			map[string]any{"learning-rate": fc.LearningRate, "lr-scheduler": fc.LRScheduler, "lr-warmup-steps": fc.LRWarmupSteps,
				"max-train-steps": fc.MaxTrainSteps, "train-batch-size": fc.TrainBatchSize, "adam-weight-decay": fc.AdamWeightDecay,
				"checkpoints-total-limit": fc.CheckpointsTotalLimit, "ema-decay": fc.EMADecay, "seed": 0, "time-limit": "0s",
				"adam-beta1": fc.AdamBeta1, "adam-beta2": fc.AdamBeta2, "adam-epsilon": fc.AdamEpsilon}},
		{"reward train", newCmdRewardTrain(nil), "random seed of the run (weights and pairs)", "pairs per step",
			map[string]any{"learning-rate": rc.LearningRate, "lr-scheduler": rc.LRScheduler, "lr-warmup-steps": rc.LRWarmupSteps,
				"max-train-steps": rc.MaxTrainSteps, "train-batch-size": rc.TrainBatchSize, "adam-weight-decay": rc.AdamWeightDecay,
				"checkpoints-total-limit": rc.CheckpointsTotalLimit, "seed": 0, "time-limit": "0s"}},
	} {
		f := tc.cmd.Flags()
		want := map[string]string{"seed": tc.seed, "train-batch-size": tc.batch}
		for n, u := range usage {
			want[n] = u
		}
		if _, ok := tc.defaults["ema-decay"]; ok {
			want["ema-decay"] = "EMA decay of the written weights (0: no averaging)"
		} else if f.Lookup("ema-decay") != nil {
			t.Errorf("%s: has --ema-decay", tc.name)
		}
		betas := map[string]string{"adam-beta1": "AdamW beta1, the first moment's decay (0: none, as RMSprop)",
			"adam-beta2": "AdamW beta2, the second moment's decay", "adam-epsilon": "AdamW epsilon"}
		for n, u := range betas {
			if _, ok := tc.defaults["adam-beta1"]; ok {
				want[n] = u
			} else if f.Lookup(n) != nil {
				t.Errorf("%s: has --%s", tc.name, n)
			}
		}
		for n, u := range want {
			fl := f.Lookup(n)
			if fl == nil {
				t.Errorf("%s: no --%s", tc.name, n)
				continue
			}
			if fl.Usage != u {
				t.Errorf("%s --%s: help %q, want %q", tc.name, n, fl.Usage, u)
			}
		}
		for n, d := range tc.defaults {
			if fl := f.Lookup(n); fl != nil && fl.DefValue != fmt.Sprint(d) {
				t.Errorf("%s --%s: default %s, want %v", tc.name, n, fl.DefValue, d)
			}
		}
	}

	// --time-limit is checked by every training command.
	for _, args := range [][]string{{"pretrain"}, {"finetune", "--pairs", "p.jsonl"}, {"reward", "train"}} {
		var out strings.Builder
		code := Main(append(args, "--time-limit", "-1s"), &out, &out)
		if code != exitUsage || !strings.Contains(out.String(), "--time-limit must be >= 0, got -1s") {
			t.Errorf("%v --time-limit -1s: exit %d, %q", args, code, out.String())
		}
	}
}

func TestTrainFlagsResumeCheckpoint(t *testing.T) {
	dir := t.TempDir()
	if p, err := resumeCheckpoint("run/checkpoint-5.safetensors", dir); err != nil || p != "run/checkpoint-5.safetensors" {
		t.Errorf("a file: %q, %v", p, err)
	}
	if _, err := resumeCheckpoint("latest", dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("latest in an empty directory: %v", err)
	}
	for _, s := range []int{20, 100} {
		os.WriteFile(nn.CheckpointPath(dir, s), nil, 0o644)
	}
	if p, err := resumeCheckpoint("latest", dir); err != nil || p != filepath.Join(dir, "checkpoint-100.safetensors") {
		t.Errorf("latest: %q, %v", p, err)
	}
}
