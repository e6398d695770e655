// align reward eval: pairwise accuracy of a reward model per dimension, with and without
// ties, on pairs built from held-out (or validation) concepts of the emoji data.
//
// Test: go test ./cmd/align -run RewardEval
package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/rewards"
)

// RewardEvalOptions are the flags of `align reward eval`.
type RewardEvalOptions struct {
	Model     string
	Data      string
	Split     string
	Pairs     int
	Seed      uint64
	BatchSize int
	TieShare  float64
	Threads   int
	JSON      bool
}

func newCmdRewardEval(runF func(*RewardEvalOptions) error) *cobra.Command {
	opts := &RewardEvalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure a reward model's pairwise accuracy per dimension on held-out concepts",
		Long: `Build preference pairs from the held-out concepts of the emoji data (never seen in
training) and report, per dimension, the accuracy without ties (decisive pairs, sign of
r_A - r_B), the tie-calibrated accuracy with ties (the tie threshold eps searched on these
pairs, as VideoAlign's calc_accuracy.py does), and the accuracy with ties at the model's own
validation thresholds (stored in its calibration). The pairs are a function of --seed, so
runs are comparable; --seed 0 gives the set that reward train evaluates at its end.`,
		Example: `  $ align reward eval --model reward/model.safetensors
  $ align reward eval --model reward/model.safetensors --pairs 4096 --json
  $ align reward eval --model reward/model.safetensors --split val`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Model == "":
				return flagErrorf("--model is required (no default reward model is embedded yet)")
			case opts.Split != rewards.SplitHeldOut && opts.Split != rewards.SplitVal && opts.Split != rewards.SplitTrain:
				return flagErrorf("--split %q: want heldout, val or train", opts.Split)
			case opts.Pairs < 1:
				return flagErrorf("--pairs must be >= 1, got %d", opts.Pairs)
			case opts.BatchSize < 2:
				return flagErrorf("--batch-size must be >= 2, got %d", opts.BatchSize)
			case !(opts.TieShare >= 0 && opts.TieShare < 1):
				return flagErrorf("--tie-share must be in [0, 1), got %v", opts.TieShare)
			case opts.Threads < 0:
				return flagErrorf("--threads must be >= 0, got %d", opts.Threads)
			}
			if runF != nil {
				return runF(opts)
			}
			return rewardEvalRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	def := rewards.DefaultTrainConfig()
	f.StringVar(&opts.Model, "model", "", "reward model file (model.safetensors of align reward train)")
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory (align data prepare)")
	f.StringVar(&opts.Split, "split", rewards.SplitHeldOut, "concepts to build pairs from: heldout, val or train")
	f.IntVar(&opts.Pairs, "pairs", def.EvalPairs, "number of pairs (dimensions take turns)")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the pairs (0: the set reward train evaluates with --seed 0)")
	f.IntVar(&opts.BatchSize, "batch-size", 64, "samples scored at once")
	f.Float64Var(&opts.TieShare, "tie-share", def.TieShare, "share of pairs built as ties")
	f.IntVar(&opts.Threads, "threads", 0, "CPU threads (0: all)")
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	return cmd
}

func rewardEvalRun(cmd *cobra.Command, opts *RewardEvalOptions) error {
	dev, err := deviceWithThreads(cmd, opts.Threads)
	if err != nil {
		return err
	}
	m, err := rewards.LoadNative(dev, opts.Model)
	if err != nil {
		return err
	}
	tc := rewards.DefaultTrainConfig()
	tc.TieShare = opts.TieShare
	gen, _, err := loadPairGen(opts.Data, m.Config.Kind == rewards.KindVideo, tc.PairConfig(m.Dims()))
	if err != nil {
		return err
	}
	rep, err := rewards.Evaluate(m, gen, opts.Split, opts.Pairs, rewards.EvalSeed(opts.Seed), opts.BatchSize)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "%s: %s accuracy on %d %s pairs (seed %d, %.1fs)\n", opts.Model, m.Config.Kind, rep.Pairs, rep.Split, opts.Seed, rep.Seconds)
	return printAccuracy(out, rep)
}
