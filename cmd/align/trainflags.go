// The flags every training command shares (align pretrain, align finetune, align reward
// train): seed, batch size and steps, learning rate and its schedule, AdamW weight decay
// (and betas where the command has them), gradient clipping, EMA, checkpointing, resume and
// time limit: the fields of nn.TrainLoop and nn.AdamBetas. One function registers them
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
	Loop      *nn.TrainLoop
	SeedDraws string // what the seed draws, e.g. "weights, data order, noise"
	BatchUnit string // what TrainBatchSize counts, e.g. "samples per step"
	// Betas, where set, adds --adam-beta1, --adam-beta2 and --adam-epsilon (nil: AdamW's
	// defaults, no flags).
	Betas                *nn.AdamBetas
	EMADecay             *float64 // nil: the command keeps no EMA (no --ema-decay)
	ResumeFromCheckpoint *string
	TimeLimit            *time.Duration
}

// addTrainFlags registers the shared training flags on f.
func addTrainFlags(f *pflag.FlagSet, t trainFlags) {
	l := t.Loop
	f.Uint64Var(&l.Seed, "seed", l.Seed, "random seed of the run ("+t.SeedDraws+")")
	f.IntVar(&l.TrainBatchSize, "train-batch-size", l.TrainBatchSize, t.BatchUnit)
	f.IntVar(&l.MaxTrainSteps, "max-train-steps", l.MaxTrainSteps, "optimizer steps in all")
	f.Float64Var(&l.LearningRate, "learning-rate", l.LearningRate, "peak learning rate")
	f.StringVar(&l.LRScheduler, "lr-scheduler", l.LRScheduler, "constant, linear or cosine (after the warmup)")
	f.IntVar(&l.LRWarmupSteps, "lr-warmup-steps", l.LRWarmupSteps, "linear warmup steps")
	f.Float64Var(&l.AdamWeightDecay, "adam-weight-decay", l.AdamWeightDecay, "AdamW decoupled weight decay")
	if b := t.Betas; b != nil {
		f.Float64Var(&b.AdamBeta1, "adam-beta1", b.AdamBeta1, "AdamW beta1, the first moment's decay (0: none, as RMSprop)")
		f.Float64Var(&b.AdamBeta2, "adam-beta2", b.AdamBeta2, "AdamW beta2, the second moment's decay")
		f.Float64Var(&b.AdamEpsilon, "adam-epsilon", b.AdamEpsilon, "AdamW epsilon")
	}
	f.Float64Var(&l.MaxGradNorm, "max-grad-norm", l.MaxGradNorm, "clip the global gradient norm to this")
	if t.EMADecay != nil {
		f.Float64Var(t.EMADecay, "ema-decay", *t.EMADecay, "EMA decay of the written weights (0: no averaging)")
	}
	f.IntVar(&l.CheckpointingSteps, "checkpointing-steps", l.CheckpointingSteps, "write a checkpoint every N steps")
	f.IntVar(&l.CheckpointsTotalLimit, "checkpoints-total-limit", l.CheckpointsTotalLimit, "keep the newest N checkpoints (0: all)")
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
