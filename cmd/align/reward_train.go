// align reward train: train the native reward model with Bradley-Terry-with-ties (or BT, or
// regression) on pairs built from the emoji data, with exact resume, a JSONL log, calibration
// on the validation split and a held-out evaluation at the end.
//
// Test: go test ./cmd/align -run RewardTrain
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// RewardTrainOptions are the flags of `align reward train`.
type RewardTrainOptions struct {
	Data      string
	Video     bool
	Dims      string
	OutputDir string

	// Model size (ignored when resuming).
	Width, VisionLayers, JointLayers, Heads, PatchSize, TubeletFrames, MaxTextLength int
	MLPRatio                                                                         float64

	Train                rewards.TrainConfig
	ResumeFromCheckpoint string
	TimeLimit            time.Duration
	Threads              int
}

func newCmdRewardTrain(runF func(*RewardTrainOptions) error) *cobra.Command {
	opts := &RewardTrainOptions{Train: rewards.DefaultTrainConfig()}
	img := rewards.DefaultNativeImageConfig()
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the native multi-dimensional reward model on preference pairs",
		Long: `Train the native reward model (a small vision-language transformer with one query token
and head per dimension) on preference pairs built from the emoji dataset: text alignment
(true caption against other-tone, same-subcategory, wrong-motion and random captions), visual
quality (real images against graded blur, noise, pixelation, colour shift and JPEG), motion
quality (real clips against shuffled, jittered, flickering and frozen ones), with ties.

Each step draws fresh pairs from the training concepts (a function of --seed and the step);
the validation concepts (5% of the training ones) calibrate the scores at the end, and the
held-out concepts measure the accuracy. The output directory receives:

  model.safetensors               weights, config, tokenizer and calibration (mean, std, tie eps)
  checkpoint-<step>.safetensors   weights, AdamW moments and step (resume exactly)
  logs.jsonl                      step, loss and accuracy per dimension, lr, grad_norm, pairs/s
  eval.json                       held-out accuracy per dimension with and without ties

SIGINT finishes the current step, writes a checkpoint and exits with code 2; --time-limit does
the same and exits 0. Resume with --resume-from-checkpoint latest.`,
		Example: `  $ align reward train --data data/emoji -o reward/
  $ align reward train --data data/emoji --loss bt --max-train-steps 1000 -o reward-bt/
  $ align reward train --data data/emoji --video --dims vq,ta,mq -o reward-video/
  $ align reward train -o reward/ --resume-from-checkpoint latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.Train.Validate(); err != nil {
				return usageError{err}
			}
			if _, err := parseDims(opts.Dims, opts.Video); err != nil {
				return err
			}
			if opts.OutputDir == "" {
				return flagErrorf("--output-dir must not be empty")
			}
			if opts.Threads < 0 {
				return flagErrorf("--threads must be >= 0, got %d", opts.Threads)
			}
			if runF != nil {
				return runF(opts)
			}
			return rewardTrainRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	t := &opts.Train
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory (align data prepare)")
	f.BoolVar(&opts.Video, "video", false, "train a clip reward model (8 frames) instead of an image one")
	f.StringVar(&opts.Dims, "dims", "", "reward dimensions, comma-separated (default vq,ta; with --video vq,ta,mq)")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "reward", "directory for the model, checkpoints and logs")
	f.IntVar(&opts.Width, "hidden-size", img.Width, "transformer width")
	f.IntVar(&opts.VisionLayers, "vision-layers", img.VisionLayers, "blocks before the caption joins (vq, mq read here)")
	f.IntVar(&opts.JointLayers, "joint-layers", img.JointLayers, "blocks over image and caption (ta reads here)")
	f.IntVar(&opts.Heads, "num-attention-heads", img.Heads, "attention heads")
	f.IntVar(&opts.PatchSize, "patch-size", img.PatchSize, "patch size p")
	f.IntVar(&opts.TubeletFrames, "tubelet-frames", 2, "frames per tubelet (video)")
	f.Float64Var(&opts.MLPRatio, "mlp-ratio", img.MLPRatio, "MLP hidden width / width")
	f.IntVar(&opts.MaxTextLength, "max-text-length", img.MaxTextLen, "tokens per caption")
	f.StringVar(&t.LossType, "loss", t.LossType, "btt (Bradley-Terry with ties), bt (ties left out) or reg (MSE to target scores)")
	f.Float64Var(&t.TieK, "k", t.TieK, "Rao-Kupper tie parameter k > 1 of btt")
	f.Uint64Var(&t.Seed, "seed", 0, "random seed of the run (weights and pairs)")
	f.IntVar(&t.TrainBatchSize, "train-batch-size", t.TrainBatchSize, "pairs per step")
	f.IntVar(&t.MaxTrainSteps, "max-train-steps", t.MaxTrainSteps, "optimizer steps in all")
	f.Float64Var(&t.LearningRate, "learning-rate", t.LearningRate, "peak learning rate")
	f.StringVar(&t.LRScheduler, "lr-scheduler", t.LRScheduler, "constant, linear or cosine (after the warmup)")
	f.IntVar(&t.LRWarmupSteps, "lr-warmup-steps", t.LRWarmupSteps, "linear warmup steps")
	f.Float64Var(&t.AdamWeightDecay, "adam-weight-decay", t.AdamWeightDecay, "AdamW decoupled weight decay")
	f.Float64Var(&t.MaxGradNorm, "max-grad-norm", t.MaxGradNorm, "clip the global gradient norm to this")
	f.IntVar(&t.CheckpointingSteps, "checkpointing-steps", t.CheckpointingSteps, "write a checkpoint every N steps")
	f.IntVar(&t.CheckpointsTotalLimit, "checkpoints-total-limit", t.CheckpointsTotalLimit, "keep the newest N checkpoints (0: all)")
	f.Float64Var(&t.TieShare, "tie-share", t.TieShare, "share of pairs built as ties")
	f.Float64Var(&t.GradedShare, "graded-share", t.GradedShare, "share of quality pairs comparing two corruption levels")
	f.IntVar(&t.ValPairs, "val-pairs", t.ValPairs, "validation pairs for the calibration at the end")
	f.IntVar(&t.EvalPairs, "eval-pairs", t.EvalPairs, "held-out pairs evaluated at the end (0: skip)")
	f.StringVar(&opts.ResumeFromCheckpoint, "resume-from-checkpoint", "", "checkpoint file, or \"latest\" in --output-dir")
	f.DurationVar(&opts.TimeLimit, "time-limit", 0, "stop with a checkpoint after this long (e.g. 2h; 0: no limit)")
	f.IntVar(&opts.Threads, "threads", 0, "CPU threads (0: all)")
	return cmd
}

func (o *RewardTrainOptions) modelConfig(dims []string) rewards.NativeConfig {
	c := rewards.DefaultNativeImageConfig()
	if o.Video {
		c = rewards.DefaultNativeVideoConfig()
		c.TubeletFrames = o.TubeletFrames
	}
	c.Width, c.VisionLayers, c.JointLayers, c.Heads = o.Width, o.VisionLayers, o.JointLayers, o.Heads
	c.PatchSize, c.MLPRatio, c.MaxTextLen, c.Dims = o.PatchSize, o.MLPRatio, o.MaxTextLength, dims
	hasText := false
	for _, d := range dims {
		hasText = hasText || !rewards.PromptFree(d)
	}
	if !hasText {
		c.JointLayers = 0
	}
	return c
}

func rewardTrainRun(cmd *cobra.Command, opts *RewardTrainOptions) error {
	stderr := cmd.ErrOrStderr()
	dims, _ := parseDims(opts.Dims, opts.Video)
	tc := opts.Train
	dev, err := deviceWithThreads(cmd, opts.Threads)
	if err != nil {
		return err
	}

	var tr *rewards.Trainer
	if opts.ResumeFromCheckpoint != "" {
		path := opts.ResumeFromCheckpoint
		var err error
		if path == "latest" {
			if path, err = nn.LatestCheckpoint(opts.OutputDir); err != nil {
				return err
			}
		}
		ck, mcfg, tok, err := rewards.ReadTrainingCheckpoint(path)
		if err != nil {
			return err
		}
		if opts.Video != (mcfg.Kind == rewards.KindVideo) {
			return usageError{fmt.Errorf("%s holds a %s reward model; --video is %v", path, mcfg.Kind, opts.Video)}
		}
		if cmd.Flags().Changed("dims") && !slices.Equal(dims, mcfg.Dims) {
			return usageError{fmt.Errorf("%s has dimensions %v; --dims is %v", path, mcfg.Dims, dims)}
		}
		gen, _, err := loadPairGen(opts.Data, opts.Video, tc.PairConfig(mcfg.Dims))
		if err != nil {
			return err
		}
		if tr, err = rewards.NewTrainer(dev, mcfg, tok, tc, gen, opts.OutputDir); err != nil {
			return err
		}
		if err := tr.Resume(ck); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "resuming from %s at step %d\n", path, tr.Step)
	} else {
		if cs, _ := nn.Checkpoints(opts.OutputDir); len(cs) > 0 {
			return usageError{fmt.Errorf("%s already holds %s; resume with --resume-from-checkpoint latest or write to another --output-dir",
				opts.OutputDir, filepath.Base(cs[len(cs)-1]))}
		}
		gen, _, err := loadPairGen(opts.Data, opts.Video, tc.PairConfig(dims))
		if err != nil {
			return err
		}
		mcfg := opts.modelConfig(dims)
		tok, err := rewards.BuildTokenizer(gen, mcfg.MaxTextLen)
		if err != nil {
			return err
		}
		if tr, err = rewards.NewTrainer(dev, mcfg, tok, tc, gen, opts.OutputDir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	mc := tr.Model.Config
	nparams := 0
	for _, p := range tr.Model.Params() {
		nparams += p.W.Len()
	}
	fmt.Fprintf(stderr, "%s reward model %v: width %d, %d vision + %d joint blocks, %d tokens/sample, %.2fM parameters; "+
		"%d training %s, %d words; loss %s\n",
		mc.Kind, mc.Dims, mc.Width, mc.VisionLayers, mc.JointLayers, mc.SeqLen(), float64(nparams)/1e6,
		tr.Gen.PoolSize(rewards.SplitTrain), map[bool]string{false: "images", true: "clips"}[opts.Video], mc.VocabSize, tc.LossType)

	bar := newProgressBar(stderr, "reward train", tc.MaxTrainSteps)
	bar.base, bar.done = tr.Step, tr.Step
	smooth, n := 0.0, 0
	accs := map[string]float64{}
	tr.Progress = func(e rewards.LogEntry) {
		if !e.Skipped {
			n++
			a := min(0.98, 1-1/float64(n))
			smooth = a*smooth + (1-a)*e.Loss
			for d, v := range e.DimAcc {
				if _, ok := accs[d]; !ok {
					accs[d] = v
				}
				accs[d] = a*accs[d] + (1-a)*v
			}
		}
		var parts []string
		for _, d := range mc.Dims {
			if v, ok := accs[d]; ok {
				parts = append(parts, fmt.Sprintf("%s %.2f", d, v))
			}
		}
		bar.Update(e.Step, fmt.Sprintf("loss %.4f acc %s lr %.2e %.0f pairs/s", smooth, strings.Join(parts, " "), e.LR, e.PairsPerSec))
	}
	tr.Notify = func(msg string) { bar.Note(msg) }

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = tr.Run(ctx, opts.TimeLimit)
	bar.Finish(fmt.Sprintf("loss %.4f", smooth))
	switch {
	case errors.Is(err, rewards.ErrInterrupted):
		fmt.Fprintf(stderr, "%v; resume with --resume-from-checkpoint latest -o %s\n", err, opts.OutputDir)
		return errCancelled
	case errors.Is(err, rewards.ErrTimeLimit):
		fmt.Fprintf(stderr, "%v; resume with --resume-from-checkpoint latest -o %s\n", err, opts.OutputDir)
		return nil
	case err != nil:
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s (step %d)\n", tr.ModelPath(), tr.Step)
	if rep := tr.Eval; rep != nil {
		fmt.Fprintf(out, "held-out accuracy (%d pairs, %s):\n", rep.Pairs, filepath.Join(opts.OutputDir, "eval.json"))
		return printAccuracy(out, rep)
	}
	return nil
}
