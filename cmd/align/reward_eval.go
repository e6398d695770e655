// align reward eval: pairwise accuracy of a reward model per dimension, with and without
// ties, on pairs built from held-out (or validation) concepts of the emoji data. A
// noise-aware latent model is scored on noised pairs (one t and one eps per pair) and its
// accuracy is also reported per t bucket [0,.2), ..., [.8,1).
//
// Test: go test ./cmd/align -run RewardEval
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

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
runs are comparable; --seed 0 gives the set that reward train evaluates at its end.

A noise-aware latent model (align reward train --latent) scores x_t = (1-t) x0 + t eps; both
sides of a pair share t and eps, t is stratified over five buckets [0,.2), ..., [.8,1), and
the report adds the accuracy per dimension per bucket (t_buckets in --json).`,
		Example: `  $ align reward eval --model reward/model.safetensors
  $ align reward eval --model default --pairs 8192
  $ align reward eval --model reward/model.safetensors --pairs 4096 --json
  $ align reward eval --model reward/model.safetensors --split val`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Model == "":
				return flagErrorf("--model is required: a reward model file, or default (default-video): the embedded image (video) reward model")
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
	f.StringVar(&opts.Model, "model", "", "reward model file (model.safetensors of align reward train), or default / default-video (the embedded ones)")
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
	var model rewards.Differentiable
	switch opts.Model {
	case "default", defaultVideoReward:
		model, err = loadDefaultReward(dev, opts.Model == defaultVideoReward)
	default:
		model, err = rewards.LoadModel(dev, opts.Model)
	}
	if err != nil {
		return err
	}
	tc := rewards.DefaultTrainConfig()
	tc.TieShare = opts.TieShare
	kind := ""
	var rep *rewards.EvalReport
	switch m := model.(type) {
	case *rewards.LatentReward:
		kind = "noise-aware latent " + m.Config.Kind()
		gen, _, err := loadPairGen(opts.Data, m.Config.Kind() == rewards.KindVideo, tc.PairConfig(m.Dims()))
		if err != nil {
			return err
		}
		if rep, err = rewards.EvaluateLatent(m, gen, opts.Split, opts.Pairs, rewards.EvalSeed(opts.Seed), opts.BatchSize); err != nil {
			return err
		}
	case *rewards.Native:
		kind = m.Config.Kind
		gen, _, err := loadPairGen(opts.Data, m.Config.Kind == rewards.KindVideo, tc.PairConfig(m.Dims()))
		if err != nil {
			return err
		}
		if rep, err = rewards.Evaluate(m, gen, opts.Split, opts.Pairs, rewards.EvalSeed(opts.Seed), opts.BatchSize); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: no pairwise evaluation for %T", opts.Model, model)
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "%s: %s accuracy on %d %s pairs (seed %d, %.1fs)\n", opts.Model, kind, rep.Pairs, rep.Split, opts.Seed, rep.Seconds)
	if err := printAccuracy(out, rep); err != nil {
		return err
	}
	return printTimeBuckets(out, rep)
}

// printTimeBuckets writes the accuracy per t bucket of a latent model's report (nothing for
// a clean model): per dimension, without ties and tie-calibrated with ties.
func printTimeBuckets(w io.Writer, rep *rewards.EvalReport) error {
	if len(rep.TimeBuckets) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "t bucket\tpairs")
	for _, a := range rep.TimeBuckets[0].Dims {
		fmt.Fprintf(tw, "\t%s w/o ties\t%s with ties", a.Dim, a.Dim)
	}
	fmt.Fprintln(tw)
	row := func(name string, b rewards.TimeBucket) {
		fmt.Fprintf(tw, "%s\t%d", name, b.Pairs)
		for _, a := range b.Dims {
			fmt.Fprintf(tw, "\t%s\t%s", pct(a.AccWithoutTies), pct(a.AccWithTies))
		}
		fmt.Fprintln(tw)
	}
	for _, b := range rep.TimeBuckets {
		row(fmt.Sprintf("[%.1f,%.1f)", b.Lo, b.Hi), b)
	}
	if rep.LowNoise != nil {
		row(fmt.Sprintf("t <= %.1f", rep.LowNoise.Hi), *rep.LowNoise)
	}
	return tw.Flush()
}
