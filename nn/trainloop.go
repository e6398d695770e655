// TrainLoop: the hyper-parameters every training loop of align shares (pre-training,
// fine-tuning, reward-model training), their checks and the learning-rate schedule; and
// AdamBetas, AdamW's moment hyper-parameters where a command exposes them. Each trainer's
// config embeds them, so config.json keeps one flat object with diffusers' names.
//
// Test: go test ./nn -run 'TrainLoop|ScheduledLR|AdamBetas'

package nn

import (
	"fmt"
	"math"
	"slices"
)

// LR schedules (--lr-scheduler), all after a linear warmup.
const (
	LRConstant = "constant"
	LRLinear   = "linear"
	LRCosine   = "cosine"
)

// LRSchedulers lists the accepted --lr-scheduler values.
var LRSchedulers = []string{LRConstant, LRLinear, LRCosine}

// TrainLoop holds the hyper-parameters of a training loop (diffusers' flag names).
type TrainLoop struct {
	Seed                  uint64  `json:"seed"`
	TrainBatchSize        int     `json:"train_batch_size"`
	MaxTrainSteps         int     `json:"max_train_steps"`
	LearningRate          float64 `json:"learning_rate"`
	LRScheduler           string  `json:"lr_scheduler"`
	LRWarmupSteps         int     `json:"lr_warmup_steps"`
	AdamWeightDecay       float64 `json:"adam_weight_decay"`
	MaxGradNorm           float64 `json:"max_grad_norm"`
	CheckpointingSteps    int     `json:"checkpointing_steps"`
	CheckpointsTotalLimit int     `json:"checkpoints_total_limit"` // 0 keeps all
}

// Validate checks the hyper-parameters; errors name the flags.
func (c *TrainLoop) Validate() error {
	switch {
	case c.TrainBatchSize < 1:
		return fmt.Errorf("--train-batch-size must be >= 1, got %d", c.TrainBatchSize)
	case c.MaxTrainSteps < 1:
		return fmt.Errorf("--max-train-steps must be >= 1, got %d", c.MaxTrainSteps)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("--learning-rate must be a positive number, got %v", c.LearningRate)
	case !slices.Contains(LRSchedulers, c.LRScheduler):
		return fmt.Errorf("--lr-scheduler %q: want one of %v", c.LRScheduler, LRSchedulers)
	case c.LRWarmupSteps < 0:
		return fmt.Errorf("--lr-warmup-steps must be >= 0, got %d", c.LRWarmupSteps)
	case !(c.AdamWeightDecay >= 0) || math.IsInf(c.AdamWeightDecay, 0):
		return fmt.Errorf("--adam-weight-decay must be a number >= 0, got %v", c.AdamWeightDecay)
	case !(c.MaxGradNorm > 0):
		return fmt.Errorf("--max-grad-norm must be > 0, got %v", c.MaxGradNorm)
	case c.CheckpointingSteps < 1:
		return fmt.Errorf("--checkpointing-steps must be >= 1, got %d", c.CheckpointingSteps)
	case c.CheckpointsTotalLimit < 0:
		return fmt.Errorf("--checkpoints-total-limit must be >= 0, got %d", c.CheckpointsTotalLimit)
	}
	return nil
}

// LR returns the learning rate of optimizer step s (1-based): ScheduledLR of the loop.
func (c *TrainLoop) LR(s int) float64 {
	return ScheduledLR(c.LearningRate, c.LRScheduler, c.LRWarmupSteps, c.MaxTrainSteps, s)
}

// AdamW returns the optimizer's hyper-parameters: the loop's peak learning rate and weight
// decay with betas b.
func (c *TrainLoop) AdamW(b AdamBetas) AdamWConfig {
	return AdamWConfig{LR: float32(c.LearningRate), Beta1: float32(b.AdamBeta1), Beta2: float32(b.AdamBeta2),
		Eps: float32(b.AdamEpsilon), WeightDecay: float32(c.AdamWeightDecay)}
}

// ScheduledLR is the learning rate of optimizer step s (1-based) of a run of total steps with
// peak rate lr: a linear warmup lr*s/warmup for s < warmup, then the scheduler over the
// remaining steps, p = (s - warmup)/(total - warmup) capped at 1:
//
//	constant  lr        linear  lr (1 - p)        cosine  lr (1 + cos(pi p))/2
func ScheduledLR(lr float64, scheduler string, warmup, total, s int) float64 {
	if warmup > 0 && s < warmup {
		return lr * float64(s) / float64(warmup)
	}
	span := total - warmup
	if span <= 0 {
		return lr
	}
	p := math.Min(1, float64(s-warmup)/float64(span))
	switch scheduler {
	case LRLinear:
		return lr * (1 - p)
	case LRCosine:
		return lr * 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return lr
}

// AdamBetas are AdamW's moment decay rates and epsilon (--adam-beta1, --adam-beta2,
// --adam-epsilon).
type AdamBetas struct {
	AdamBeta1   float64 `json:"adam_beta1"`
	AdamBeta2   float64 `json:"adam_beta2"`
	AdamEpsilon float64 `json:"adam_epsilon"`
}

// DefaultAdamBetas returns 0.9, 0.999 and 1e-8 (PyTorch's and diffusers' defaults).
func DefaultAdamBetas() AdamBetas {
	return AdamBetas{AdamBeta1: 0.9, AdamBeta2: 0.999, AdamEpsilon: 1e-8}
}

// Validate checks the ranges: betas in [0, 1), epsilon > 0.
func (b *AdamBetas) Validate() error {
	switch {
	case !(b.AdamBeta1 >= 0 && b.AdamBeta1 < 1) || !(b.AdamBeta2 >= 0 && b.AdamBeta2 < 1):
		return fmt.Errorf("--adam-beta1 and --adam-beta2 must be in [0, 1), got %v, %v", b.AdamBeta1, b.AdamBeta2)
	case !(b.AdamEpsilon > 0) || math.IsInf(b.AdamEpsilon, 0):
		return fmt.Errorf("--adam-epsilon must be a positive number, got %v", b.AdamEpsilon)
	}
	return nil
}
