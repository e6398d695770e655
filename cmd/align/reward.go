// align reward: train the native multi-dimensional reward model on preference pairs built
// from the emoji data (train) and measure its pairwise accuracy (eval).
//
// Test: go test ./cmd/align -run Reward
package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/rewards"
)

// rewardRunFuncs replace the run functions in flag tests; nil fields run the real commands.
type rewardRunFuncs struct {
	train     func(*RewardTrainOptions) error
	eval      func(*RewardEvalOptions) error
	calibrate func(*RewardCalibrateOptions) error
}

func newCmdReward(runF *rewardRunFuncs) *cobra.Command {
	if runF == nil {
		runF = &rewardRunFuncs{}
	}
	cmd := &cobra.Command{
		Use:   "reward",
		Short: "Train, evaluate and calibrate multi-dimensional reward models",
		Long: "Train the native reward model (visual quality vq, text alignment ta, motion quality mq)\n" +
			"with Bradley-Terry-with-ties on preference pairs built from the emoji dataset (and your\n" +
			"labelled pairs), measure its pairwise accuracy with and without ties on held-out concepts\n" +
			"or your labels, and fit any reward model's z-scores (native or ONNX) to your samples.",
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newCmdRewardTrain(runF.train), newCmdRewardEval(runF.eval), newCmdRewardCalibrate(runF.calibrate))
	return cmd
}

// loadPairGen loads the image set (and the clips for video) and indexes it for pairs.
func loadPairGen(dir string, video bool, pc rewards.PairConfig) (*rewards.PairGen, *dataset.Manifest, error) {
	d, err := dataset.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	var clips *dataset.VideoDataset
	if video {
		if clips, err = dataset.LoadVideo(dir); err != nil {
			return nil, nil, err
		}
	}
	g, err := rewards.NewPairGen(d, clips, pc)
	if err != nil {
		return nil, nil, err
	}
	return g, d.Manifest, nil
}

// parseDims reads a comma-separated dimension list; empty gives the defaults of the kind.
func parseDims(s string, video bool) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		if video {
			return []string{rewards.DimVQ, rewards.DimTA, rewards.DimMQ}, nil
		}
		return []string{rewards.DimVQ, rewards.DimTA}, nil
	}
	var dims []string
	for _, d := range strings.Split(s, ",") {
		d = strings.ToLower(strings.TrimSpace(d))
		switch d {
		case rewards.DimVQ, rewards.DimTA:
		case rewards.DimMQ:
			if !video {
				return nil, flagErrorf("--dims: mq (motion quality) needs --video")
			}
		default:
			return nil, flagErrorf("--dims: unknown dimension %q (known: vq, ta, mq)", d)
		}
		for _, e := range dims {
			if e == d {
				return nil, flagErrorf("--dims: %s given twice", d)
			}
		}
		dims = append(dims, d)
	}
	return dims, nil
}

// printAccuracy writes the per-dimension accuracy table.
func printAccuracy(w io.Writer, rep *rewards.EvalReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "dim\tpairs\tties\tacc w/o ties\tacc with ties\ttie eps\tacc with ties @ val eps\n")
	for _, a := range rep.Dims {
		if a.Pairs == 0 { // a dimension a preference file does not label
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.4g\t%s\n", a.Dim, a.Pairs, a.Ties, pct(a.AccWithoutTies), pct(a.AccWithTies),
			a.TieEps, pct(a.AccWithTiesAtEp))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var parts []string
	for _, k := range rewards.SortedKeys(rep.ByNote) {
		if a, ok := rep.AccByNote[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %s (%d)", k, pct(a), rep.ByNote[k]))
		}
	}
	if len(parts) > 0 {
		_, err := fmt.Fprintf(w, "by kind: %s\n", strings.Join(parts, ", "))
		return err
	}
	return nil
}

func pct(v float64) string {
	if v != v { // NaN
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*v)
}
