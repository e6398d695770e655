// align reward eval: pairwise accuracy of a reward model per dimension, with and without
// ties, on pairs built from held-out (or validation) concepts of the emoji data, or on the
// pairs of a labelled preference file (--preferences). A noise-aware latent model is scored
// on noised pairs (one t and one eps per pair) and its accuracy is also reported per t
// bucket [0,.2), ..., [.8,1).
//
// Test: go test ./cmd/align -run RewardEval
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/rewards"
)

// RewardEvalOptions are the flags of `align reward eval`.
type RewardEvalOptions struct {
	Models      []string // --model, repeated: each evaluated on the same pairs
	Model       string   // the model being evaluated
	Data        string
	Preferences string // a labelled pairs file evaluated instead of the dataset's pairs
	Weights     string // the weights of the overall score against a file's overall labels
	Split       string
	Pairs       int
	Seed        uint64
	BatchSize   int
	TieShare    float64
	ValPercent  int
	// valPercentSet: --val-percent was given; else a model's calibration says which share
	// it was calibrated on.
	valPercentSet bool
	Threads       int
	JSON          bool
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
--split val and train read the training concepts as the model's reward train run did
(--val-percent, recorded in its calibration; 5% for a model without the record), or at
--val-percent where given.

A noise-aware latent model (align reward train --latent) scores x_t = (1-t) x0 + t eps; both
sides of a pair share t and eps, t is stratified over five buckets [0,.2), ..., [.8,1), and
the report adds the accuracy per dimension per bucket (t_buckets in --json).

--preferences FILE measures the agreement with the labels of a preference file instead (align's
pairs JSONL with "labels", or VideoAlign's CSV; e.g. human annotators'), each pair once for
every dimension it labels that the model scores; no dataset is read. --split all (its default
there) takes every pair, --split heldout the 10% that align reward train --pairs holds out.
A file that also labels "overall" (VideoGen-RewardBench's Overall column; "overall" in the
JSONL's labels) adds an overall row: the model's overall score is the sum of its z-scored
dimensions (VideoReward's Overall = VQ + MQ + TA; --weights weighs them), its accuracy
measured as the dimensions' are.
With --preferences, --model may also be an ONNX model (FILE.onnx with its manifest beside it,
or the manifest FILE.json): each sample is read at the model's own input size with its pair's
prompt, as align score reads it, and the tie thresholds are searched (or a manifest's
calibration gives them).

--model repeated evaluates each model on the same pairs, one report after another, and ends
with their accuracies side by side (--json: a list of the reports, each with its model).`,
		Example: `  $ align reward eval --model reward/model.safetensors
  $ align reward eval --model default --pairs 8192
  $ align reward eval --model reward/model.safetensors --pairs 4096 --json
  $ align reward eval --model reward/model.safetensors --split val
  $ align reward eval --model default --preferences labelled.jsonl   # does the embedded model agree with the annotators?
  $ align reward eval --model reward-human/model.safetensors --preferences labelled.jsonl --split heldout
  $ align reward eval --model pickscore.json --preferences labelled.jsonl   # an ONNX scorer against the same labels
  $ align reward eval --model default-video --preferences videogen-rewardbench.csv   # VQ, MQ, TA and Overall accuracy
  $ align reward eval --model default --model reward-human/model.safetensors --model pickscore.json --preferences labelled.jsonl   # side by side`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Preferences != "" && !cmd.Flags().Changed("split") {
				opts.Split = splitAll
			}
			opts.valPercentSet = cmd.Flags().Changed("val-percent")
			if len(opts.Models) > 0 {
				opts.Model = opts.Models[0]
			}
			switch {
			case opts.Model == "" || slices.Contains(opts.Models, ""):
				return flagErrorf("--model is required: a reward model file, or default (default-video): the embedded image (video) reward model")
			case opts.Preferences != "" && opts.Split != splitAll && opts.Split != rewards.SplitHeldOut:
				return flagErrorf("--split %q with --preferences: want all or heldout", opts.Split)
			case opts.Weights != "" && opts.Preferences == "":
				return flagErrorf("--weights weighs the model's overall score against a preference file's overall labels: give --preferences")
			case opts.Preferences == "" && opts.Split != rewards.SplitHeldOut && opts.Split != rewards.SplitVal && opts.Split != rewards.SplitTrain:
				return flagErrorf("--split %q: want heldout, val or train (all with --preferences)", opts.Split)
			case opts.Pairs < 1:
				return flagErrorf("--pairs must be >= 1, got %d", opts.Pairs)
			case opts.BatchSize < 2:
				return flagErrorf("--batch-size must be >= 2, got %d", opts.BatchSize)
			case !(opts.TieShare >= 0 && opts.TieShare < 1):
				return flagErrorf("--tie-share must be in [0, 1), got %v", opts.TieShare)
			case opts.ValPercent < 1 || opts.ValPercent > rewards.MaxValPercent:
				return flagErrorf("--val-percent must be in [1, %d], got %d", rewards.MaxValPercent, opts.ValPercent)
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
	f.StringArrayVar(&opts.Models, "model", nil, "reward model file (model.safetensors of align reward train), or default / default-video (the embedded ones); with --preferences also an ONNX model (.onnx or its manifest .json); repeat it to compare models on the same pairs")
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory (align data prepare, or align data import of your own)")
	f.StringVar(&opts.Split, "split", rewards.SplitHeldOut, "concepts to build pairs from: heldout, val or train; with --preferences all (its default) or heldout")
	f.StringVar(&opts.Weights, "weights", "", "with --preferences labelling \"overall\": weights of the z-scored dimensions in the model's overall score, e.g. vq=1,mq=1,ta=1 (default: 1 each, VideoReward's Overall)")
	f.StringVar(&opts.Preferences, "preferences", "", "labelled preference pairs (align's pairs JSONL with \"labels\", or VideoAlign's CSV) to measure the agreement with, instead of the dataset's")
	f.IntVar(&opts.Pairs, "pairs", def.EvalPairs, "number of pairs (dimensions take turns)")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the pairs (0: the set reward train evaluates with --seed 0)")
	f.IntVar(&opts.BatchSize, "batch-size", 64, "samples scored at once")
	f.Float64Var(&opts.TieShare, "tie-share", def.TieShare, "share of pairs built as ties")
	f.IntVar(&opts.ValPercent, "val-percent", def.ValPercent, "percent of the training concepts in --split val (default: the model's reward train --val-percent)")
	f.IntVar(&opts.Threads, "threads", 0, "CPU threads (0: all)")
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	return cmd
}

// modelEval is one model's report in a comparison (--model repeated; --json: a list of them).
type modelEval struct {
	Model string `json:"model"`
	Kind  string `json:"kind"`
	*rewards.EvalReport
}

func rewardEvalRun(cmd *cobra.Command, opts *RewardEvalOptions) error {
	models := opts.Models
	if len(models) == 0 {
		models = []string{opts.Model}
	}
	evals := make([]modelEval, len(models))
	for i, m := range models {
		o := *opts
		o.Model = m
		rep, kind, err := rewardEvalModel(cmd, &o)
		if err != nil {
			return err
		}
		evals[i] = modelEval{Model: m, Kind: kind, EvalReport: rep}
		if w := evals[0].ValPercent; rep.ValPercent != w {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: %s was calibrated on a validation share of %d%%, %s of %d%%: their %s pairs differ (--val-percent reads both at one)\n",
				models[0], w, m, rep.ValPercent, opts.Split)
		}
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if len(evals) == 1 {
			return enc.Encode(evals[0].EvalReport)
		}
		return enc.Encode(evals)
	}
	for i, e := range evals {
		if i > 0 {
			fmt.Fprintln(out)
		}
		if err := printEval(out, opts, e); err != nil {
			return err
		}
	}
	if len(evals) > 1 {
		fmt.Fprintln(out)
		return printComparison(out, evals)
	}
	return nil
}

// rewardEvalModel evaluates opts.Model: align's own on the dataset's pairs or a preference
// file's, an ONNX one on a preference file's.
func rewardEvalModel(cmd *cobra.Command, opts *RewardEvalOptions) (*rewards.EvalReport, string, error) {
	switch ext := strings.ToLower(filepath.Ext(opts.Model)); {
	case ext != ".onnx" && ext != ".json":
		return rewardEvalNative(cmd, opts)
	case opts.Preferences == "":
		return nil, "", usageError{fmt.Errorf("--model %s: an ONNX model is evaluated on the pairs of a labelled preference file (--preferences FILE); "+
			"the emoji data's pairs are built for align's own models", opts.Model)}
	}
	return rewardEvalFiles(cmd, opts)
}

// printEval writes one model's report (e): what was evaluated, the accuracy table, the t
// buckets.
func printEval(out io.Writer, opts *RewardEvalOptions, e modelEval) error {
	rep := e.EvalReport
	if opts.Preferences != "" {
		which := map[string]string{splitAll: "every pair", rewards.SplitHeldOut: "the pairs reward train --pairs holds out"}[opts.Split]
		fmt.Fprintf(out, "%s: %s agreement with %s of %s (%s; %.1fs)\n", e.Model, e.Kind, counted(rep.Pairs, "label"), opts.Preferences, which, rep.Seconds)
	} else {
		share := ""
		if rep.ValPercent > 0 {
			share = fmt.Sprintf("validation share %d%%, ", rep.ValPercent)
		}
		fmt.Fprintf(out, "%s: %s accuracy on %d %s pairs (%sseed %d, %.1fs)\n", e.Model, e.Kind, rep.Pairs, rep.Split, share, opts.Seed, rep.Seconds)
	}
	if err := printAccuracy(out, rep); err != nil {
		return err
	}
	return printTimeBuckets(out, rep)
}

// printComparison writes one row per model and, for each dimension any of them was
// evaluated on, its accuracy without and with ties ("-" where a model has no such row).
func printComparison(out io.Writer, evals []modelEval) error {
	var dims []string
	for _, e := range evals {
		for _, a := range e.Dims {
			if a.Pairs > 0 && !slices.Contains(dims, a.Dim) {
				dims = append(dims, a.Dim)
			}
		}
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model")
	for _, d := range dims {
		fmt.Fprintf(tw, "\t%s w/o ties\t%s with ties", d, d)
	}
	fmt.Fprintln(tw)
	for _, e := range evals {
		fmt.Fprintf(tw, "%s", e.Model)
		for _, d := range dims {
			i := slices.IndexFunc(e.Dims, func(a rewards.DimAccuracy) bool { return a.Dim == d && a.Pairs > 0 })
			if i < 0 {
				fmt.Fprintf(tw, "\t-\t-")
				continue
			}
			fmt.Fprintf(tw, "\t%s\t%s", pct(e.Dims[i].AccWithoutTies), pct(e.Dims[i].AccWithTies))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// rewardEvalNative evaluates align's own model opts.Model (a file or default) on the
// dataset's pairs or the preference file's, read at the emoji data's geometry, and returns
// the report and the kind of model.
func rewardEvalNative(cmd *cobra.Command, opts *RewardEvalOptions) (*rewards.EvalReport, string, error) {
	dev, err := deviceWithThreads(cmd, opts.Threads)
	if err != nil {
		return nil, "", err
	}
	var model rewards.Differentiable
	switch opts.Model {
	case "default", defaultVideoReward:
		model, err = loadDefaultReward(dev, opts.Model == defaultVideoReward)
	default:
		model, err = rewards.LoadModel(dev, opts.Model)
	}
	if err != nil {
		return nil, "", err
	}
	var kind string
	var shape []int
	switch m := model.(type) {
	case *rewards.LatentReward:
		kind, shape = "noise-aware latent "+m.Config.Kind(), m.Config.SampleShape()
	case *rewards.Native:
		kind, shape = m.Config.Kind, m.Config.SampleShape()
	default:
		return nil, "", fmt.Errorf("%s: no pairwise evaluation for %T", opts.Model, model)
	}
	if c, ok := model.(rewards.Calibrated); ok && !opts.valPercentSet && c.Calibration() != nil && c.Calibration().ValPercent > 0 {
		opts.ValPercent = c.Calibration().ValPercent
	}
	gen, split, err := opts.pairGen(model.Dims(), shape)
	if err != nil {
		return nil, "", err
	}
	if m, ok := model.(*rewards.LatentReward); ok {
		if opts.Preferences != "" && slices.Contains(gen.Cfg.Preferences.Dims, rewards.DimOverall) {
			fmt.Fprintf(cmd.ErrOrStderr(), "note: the overall labels of %s are not evaluated for a noise-aware model (its dimensions are, on noised pairs)\n", opts.Preferences)
		}
		rep, err := rewards.EvaluateLatent(m, gen, split, opts.Pairs, rewards.EvalSeed(opts.Seed), opts.BatchSize)
		return rep, kind, err
	}
	var w []float64
	if opts.Preferences != "" {
		if w, err = opts.overallWeights(model, gen.Cfg.Preferences.Dims); err != nil {
			return nil, "", err
		}
	}
	rep, err := rewards.Evaluate(model.(*rewards.Native), gen, split, opts.Pairs, rewards.EvalSeed(opts.Seed), opts.BatchSize)
	if err != nil || w == nil {
		return rep, kind, err
	}
	s := gen.Cfg.Preferences
	rA, rB, err := rewards.ScorePreferences(dev, model, gen, s.HeldOut, opts.BatchSize)
	if err != nil {
		return nil, "", err
	}
	appendOverall(rep, model, w, s.Dims, s.HeldOut, rA, rB)
	return rep, kind, nil
}

// overallWeights are the weights of m's overall score (the sum of its z-scored dimensions
// weighted by --weights) against the overall labels of a preference file labelling
// fileDims; nil where none is evaluated: the file has no overall labels, or m a dimension of
// that name.
func (o *RewardEvalOptions) overallWeights(m rewards.Model, fileDims []string) ([]float64, error) {
	if !slices.Contains(fileDims, rewards.DimOverall) || slices.Contains(m.Dims(), rewards.DimOverall) {
		if o.Weights != "" {
			return nil, flagErrorf("--weights weighs the model's overall score against overall labels, and %s has none", o.Preferences)
		}
		return nil, nil
	}
	w, err := rewards.ParseWeights(o.Weights, m.Dims())
	if err != nil {
		return nil, flagErrorf("--weights: %v", err)
	}
	return w, nil
}

// appendOverall appends to rep the accuracy of m's overall score with weights w against
// the overall labels of pairs (rewards.OverallAccuracy), rA and rB their raw scores.
func appendOverall(rep *rewards.EvalReport, m rewards.Model, w []float64, fileDims []string, pairs []rewards.PreferencePair, rA, rB [][]float32) {
	var cal *rewards.Calibration
	if c, ok := m.(rewards.Calibrated); ok {
		cal = c.Calibration()
	}
	if acc, ok := rewards.OverallAccuracy(m.Dims(), w, cal, fileDims, pairs, rA, rB); ok {
		rep.Dims = append(rep.Dims, acc)
	}
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

// splitAll is --split all with --preferences: every pair of the file.
const splitAll = "all"

// pairGen builds the pairs of the evaluation for a model of dims reading samples of shape
// and returns the split to evaluate: the dataset's (--data, --split), or the preference
// file's (--preferences: every pair, or the held-out ones), read at the model's shape.
func (o *RewardEvalOptions) pairGen(dims []string, shape []int) (*rewards.PairGen, string, error) {
	video := len(shape) == 4
	if o.Preferences == "" {
		tc := rewards.DefaultTrainConfig()
		tc.TieShare, tc.ValPercent = o.TieShare, o.ValPercent
		gen, _, err := loadPairGen(o.Data, video, tc.PairConfig(dims))
		if err == nil && !slices.Equal(gen.SampleShape(), shape) {
			err = fmt.Errorf("%s: samples of %v, the model reads %v", o.Data, gen.SampleShape(), shape)
		}
		return gen, o.Split, err
	}
	f, err := readPreferenceFile(o.Preferences, rewardSampleGeometry(shape))
	if err != nil {
		return nil, "", fmt.Errorf("--preferences: %w", err)
	}
	if err := checkPreferenceDims(o.Preferences, f.dims, dims); err != nil {
		return nil, "", err
	}
	s, err := rewards.NewPreferenceEvalSet(f.dims, f.pairs, o.Split == splitAll)
	if err != nil {
		return nil, "", fmt.Errorf("--preferences %s: %w", o.Preferences, err)
	}
	return rewards.NewPreferenceGen(dims, shape, s), rewards.SplitPreferences, nil
}
