// The flags every training command shares (align pretrain, align finetune, align reward
// train): seed, batch size and steps, learning rate and its schedule, AdamW weight decay,
// gradient clipping, EMA, checkpointing, resume and time limit. One function registers them
// so that their names, defaults and help read the same in every command; the defaults are
// each command's own (its config's).
//
// Test: go test ./cmd/align -run TrainFlags
package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/alignkit/align/nn"
)

// skippedStepsHelp ends the help of every training command: the non-finite step rule of
// nn/skipstep.go as a user meets it in the log.
var skippedStepsHelp = fmt.Sprintf(`

A step whose loss or gradient norm is NaN or infinite updates nothing; its logs.jsonl line
has "skipped": true and zeros for the non-finite numbers (the plots leave it out). %d skipped
steps in a row end the run with an error.`, nn.MaxSkippedSteps)

// trainFlags points at the fields the shared flags set; each flag's default is the value
// its field holds when addTrainFlags runs.
type trainFlags struct {
	Seed      *uint64
	SeedDraws string // what the seed draws, e.g. "weights, data order, noise"
	// TrainBatchSize counts BatchUnit, e.g. "samples per step".
	TrainBatchSize *int
	BatchUnit      string

	MaxTrainSteps         *int
	LearningRate          *float64
	LRScheduler           *string
	LRWarmupSteps         *int
	AdamWeightDecay       *float64
	MaxGradNorm           *float64
	EMADecay              *float64 // nil: the command keeps no EMA (no --ema-decay)
	CheckpointingSteps    *int
	CheckpointsTotalLimit *int
	ResumeFromCheckpoint  *string
	TimeLimit             *time.Duration
}

// addTrainFlags registers the shared training flags on f.
func addTrainFlags(f *pflag.FlagSet, t trainFlags) {
	f.Uint64Var(t.Seed, "seed", *t.Seed, "random seed of the run ("+t.SeedDraws+")")
	f.IntVar(t.TrainBatchSize, "train-batch-size", *t.TrainBatchSize, t.BatchUnit)
	f.IntVar(t.MaxTrainSteps, "max-train-steps", *t.MaxTrainSteps, "optimizer steps in all")
	f.Float64Var(t.LearningRate, "learning-rate", *t.LearningRate, "peak learning rate")
	f.StringVar(t.LRScheduler, "lr-scheduler", *t.LRScheduler, "constant, linear or cosine (after the warmup)")
	f.IntVar(t.LRWarmupSteps, "lr-warmup-steps", *t.LRWarmupSteps, "linear warmup steps")
	f.Float64Var(t.AdamWeightDecay, "adam-weight-decay", *t.AdamWeightDecay, "AdamW decoupled weight decay")
	f.Float64Var(t.MaxGradNorm, "max-grad-norm", *t.MaxGradNorm, "clip the global gradient norm to this")
	if t.EMADecay != nil {
		f.Float64Var(t.EMADecay, "ema-decay", *t.EMADecay, "EMA decay of the written weights (0: no averaging)")
	}
	f.IntVar(t.CheckpointingSteps, "checkpointing-steps", *t.CheckpointingSteps, "write a checkpoint every N steps")
	f.IntVar(t.CheckpointsTotalLimit, "checkpoints-total-limit", *t.CheckpointsTotalLimit, "keep the newest N checkpoints (0: all)")
	f.StringVar(t.ResumeFromCheckpoint, "resume-from-checkpoint", *t.ResumeFromCheckpoint, "checkpoint file, or \"latest\" in --output-dir")
	f.DurationVar(t.TimeLimit, "time-limit", *t.TimeLimit, "stop with a checkpoint after this long (e.g. 2h; 0: no limit)")
}

// validateTimeLimit checks --time-limit (the training configs do not hold it).
func validateTimeLimit(timeLimit time.Duration) error {
	if timeLimit < 0 {
		return flagErrorf("--time-limit must be >= 0, got %v", timeLimit)
	}
	return nil
}

// resumeCheckpoint resolves --resume-from-checkpoint: a checkpoint file, or "latest", the
// newest checkpoint in outputDir.
func resumeCheckpoint(flag, outputDir string) (string, error) {
	if flag == "latest" {
		return nn.LatestCheckpoint(outputDir)
	}
	return flag, nil
}
