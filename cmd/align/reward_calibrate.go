// align reward calibrate: fit a reward model's z-score statistics (each dimension's mean and
// standard deviation of the raw scores, VideoAlign's inference_config) to samples the user
// chooses, and write the model with them: a native model as a new .safetensors file, an ONNX
// model as a new manifest. align score's z-scores, --weights and totals, and the weights of
// steering and pair selection, then read "how far above the usual sample of this set".
//
// Test: go test ./cmd/align -run RewardCalibrate
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/alignkit/align/rewards/remote"
)

// minSteadyCalibration is the sample count under which calibrate warns: the standard error
// of a standard deviation estimated from n samples is about std/sqrt(2n), 13% at n = 30.
const minSteadyCalibration = 30

// RewardCalibrateOptions are the flags of `align reward calibrate`: the inputs and model as
// align score reads them, the output file and --json.
type RewardCalibrateOptions struct {
	ScoreOptions
}

func newCmdRewardCalibrate(runF func(*RewardCalibrateOptions) error) *cobra.Command {
	opts := &RewardCalibrateOptions{}
	cmd := &cobra.Command{
		Use:   "calibrate [INPUT...] -o OUTPUT",
		Short: "Fit a reward model's z-scores to your samples (mean and std per dimension)",
		Long: `Score the inputs with the reward model, fit each dimension's mean and standard deviation
of the raw scores (population std; the inputs that cannot be read are left out), and write
the model with that calibration: z = (raw - mean) / std. The dimensions' z-scores are then
on one scale, so the weights of align score, sample and pairs (vq=1,ta=2) weigh them as
meant, and a z-score reads as standard deviations above the usual sample of this set
(VideoAlign's inference_config). Use samples like those you will score or steer: your
generator's outputs, or a reference set.

The inputs, prompts and clip options are those of align score. --output is a new file: for
a native model (default, default-video or FILE.safetensors) a .safetensors file with the
same weights and metadata and the new calibration; for an ONNX model a .json manifest equal
to the model's own except for its calibration, naming the .onnx file relative to where it
is written (the manifest itself is replaced when --output names it; written atomically).
The validation tie thresholds of a native model (raw units) are kept. A noise-aware latent
model is refused: its statistics span the noise levels it guides at.`,
		Example: `  $ align sample --prompts prompts.txt --num-images-per-prompt 4 -o out/ref
  $ align reward calibrate out/ref --reward default -o reward-ref.safetensors
  $ align score out/new --reward reward-ref.safetensors --weights vq=1,ta=2
  $ align reward calibrate --input list.csv --reward pickscore.onnx -o pickscore.json   # in place
  $ align reward calibrate clips/ --reward default-video --fps 0 -o video-reward-ref.safetensors --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = append(opts.Inputs, args...)
			if len(opts.Rewards) != 1 {
				return flagErrorf("--reward given %d times: calibrate one model at a time (each is written with its own statistics)", len(opts.Rewards))
			}
			opts.Reward = opts.Rewards[0]
			if err := opts.validateInputs(); err != nil {
				return err
			}
			if opts.Output == "" {
				return flagErrorf("--output is required: a .safetensors file for a native model, a .json manifest for an ONNX model")
			}
			if runF != nil {
				return runF(opts)
			}
			return rewardCalibrateRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	addInputFlags(f, &opts.ScoreOptions)
	f.StringArrayVar(&opts.Rewards, "reward", []string{"default"}, "reward model: default (embedded image model), default-video (embedded video model), FILE.safetensors (align reward train; native models), FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json")
	f.StringVarP(&opts.Output, "output", "o", "", "the calibrated model: FILE.safetensors (native) or FILE.json (an ONNX or remote model's manifest)")
	f.BoolVar(&opts.JSON, "json", false, "print the calibration as one JSON object")
	return cmd
}

// calibrationReport is what calibrate prints (--json: this object).
type calibrationReport struct {
	Reward  string           `json:"reward"`
	Output  string           `json:"output"`
	N       int              `json:"n"`      // inputs scored
	Failed  int              `json:"failed"` // inputs left out (unreadable)
	Dims    []calibrationDim `json:"dims"`
	Seconds float64          `json:"seconds"`
}

type calibrationDim struct {
	Dim  string  `json:"dim"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
	// The model's calibration before (mean 0, std 1 when it had none) and how many samples
	// it came from (0: none).
	PreviousMean float64 `json:"previous_mean"`
	PreviousStd  float64 `json:"previous_std"`
	PreviousN    int     `json:"previous_n"`
}

func rewardCalibrateRun(cmd *cobra.Command, opts *RewardCalibrateOptions) error {
	start := time.Now()
	lr, err := loadReward(cmd, &opts.ScoreOptions)
	if err != nil {
		return err
	}
	defer lr.close()
	// write saves the calibrated model; it is set up before the scoring, so that a wrong
	// output name or model kind costs no scoring run.
	var write func(cal *rewards.Calibration) error
	ext := strings.ToLower(filepath.Ext(opts.Output))
	switch m := lr.model.(type) {
	case *onnx.Model:
		if ext != ".json" {
			return flagErrorf("--output %s: an ONNX model's calibration lives in its manifest: give a .json file", opts.Output)
		}
		write = func(cal *rewards.Calibration) error { return writeCalibratedManifest(m.Manifest, cal, opts.Output) }
	case *remote.Model:
		if ext != ".json" {
			return flagErrorf("--output %s: a remote model's calibration lives in its manifest: give a .json file", opts.Output)
		}
		write = func(cal *rewards.Calibration) error {
			out := *m.Manifest
			out.Calibration = cal
			data, err := out.Marshal()
			if err != nil {
				return err
			}
			if _, err := remote.ParseManifest(data); err != nil { // what is written must load
				return fmt.Errorf("calibrated manifest for %s: %w", opts.Output, err)
			}
			return writeOutputFile(opts.Output, func(w io.Writer) error { _, err := w.Write(data); return err })
		}
	case *rewards.Native:
		if ext != ".safetensors" {
			return flagErrorf("--output %s: a native model is written as a .safetensors file", opts.Output)
		}
		c, err := rewardCheckpoint(opts.Reward)
		if err != nil {
			return err
		}
		write = func(cal *rewards.Calibration) error {
			if err := rewards.SetCalibration(c, cal); err != nil {
				return err
			}
			return c.Save(opts.Output)
		}
	case *rewards.LatentReward:
		return usageError{fmt.Errorf("--reward %s is a noise-aware latent model: its calibration spans the noise levels it guides at "+
			"(align reward train --latent fits it), which clean samples cannot stand for", opts.Reward)}
	default:
		return fmt.Errorf("--reward %s: a %T cannot be calibrated", opts.Reward, m)
	}

	set, err := newRewardSet([]*loadedReward{lr})
	if err != nil {
		return err
	}
	sc, err := scoreInputs(cmd, &opts.ScoreOptions, set)
	if err != nil {
		return err
	}
	rows := sc.rows
	var raw [][]float32
	for i := range rows {
		if !rows[i].OK() {
			continue
		}
		if slices.ContainsFunc(rows[i].Raw, func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }) {
			return fmt.Errorf("%s: the model scored it %v: a calibration needs finite scores", rows[i].Path, rows[i].Raw)
		}
		raw = append(raw, rows[i].Raw)
	}
	if len(raw) < 2 {
		return fmt.Errorf("a calibration needs at least 2 scored samples (a standard deviation); %s scored of %s", counted(len(raw), sc.noun), counted(sc.inputs, "input"))
	}
	dims := lr.model.Dims()
	prev := rewards.IdentityCalibration(dims)
	if c, ok := lr.model.(rewards.Calibrated); ok && c.Calibration() != nil {
		prev = c.Calibration()
	}
	cal := &rewards.Calibration{Dims: dims, TieEps: slices.Clone(prev.TieEps), ValPercent: prev.ValPercent}
	if err := cal.Fit(raw); err != nil {
		return err
	}
	if err := write(cal); err != nil {
		return err
	}

	stderr := cmd.ErrOrStderr()
	if sc.failed > 0 {
		for i := range rows {
			if !rows[i].OK() {
				fmt.Fprintf(stderr, "align: %d of %d inputs could not be read and are left out, e.g. %s\n", sc.failed, sc.inputs, rows[i].Err)
				break
			}
		}
	}
	if len(raw) < minSteadyCalibration {
		fmt.Fprintf(stderr, "align: warning: the statistics come from %s: a standard deviation from n samples is off by about 1/sqrt(2n) of itself (%.0f%% here); a few hundred make steadier z-scores\n",
			counted(len(raw), "sample"), 100/math.Sqrt(2*float64(len(raw))))
	}
	rep := calibrationReport{Reward: lr.describe, Output: opts.Output, N: len(raw), Failed: sc.failed, Seconds: time.Since(start).Seconds()}
	for d, dim := range dims {
		rep.Dims = append(rep.Dims, calibrationDim{Dim: dim, Mean: cal.Mean[d], Std: cal.Std[d],
			PreviousMean: prev.Mean[d], PreviousStd: prev.Std[d], PreviousN: prev.N})
	}
	fmt.Fprintf(stderr, "wrote %s: %s calibrated on %s in %s\n", opts.Output, lr.describe, counted(len(raw), "sample"), fmtDuration(time.Since(start)))
	if opts.JSON {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
	}
	return writeCalibrationTable(cmd.OutOrStdout(), &rep)
}

// rewardCheckpoint reads the file of the native model --reward names (the embedded bytes for
// default and default-video).
func rewardCheckpoint(name string) (*nn.Checkpoint, error) {
	switch name {
	case "default":
		return nn.ReadCheckpoint("embedded default reward model", defaultRewardModel)
	case defaultVideoReward:
		return nn.ReadCheckpoint("embedded default video reward model", defaultVideoRewardModel)
	}
	return nn.LoadCheckpoint(name)
}

// writeCalibratedManifest writes man with cal as its calibration to path, atomically, its
// model file named relative to path's folder (absolute where no relative path leads there).
func writeCalibratedManifest(man *onnx.Manifest, cal *rewards.Calibration, path string) error {
	out := *man
	out.Calibration = cal
	model, err := filepath.Abs(man.Path(man.Model))
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	out.Model = model
	if rel, err := filepath.Rel(dir, model); err == nil {
		out.Model = filepath.ToSlash(rel)
	}
	data, err := out.Marshal()
	if err != nil {
		return err
	}
	// What is written must load: the manifest's own checks, against the same dimensions.
	if _, err := onnx.ParseManifest(data); err != nil {
		return fmt.Errorf("calibrated manifest for %s: %w", path, err)
	}
	return writeOutputFile(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeCalibrationTable prints the new statistics beside the model's old ones.
func writeCalibrationTable(w io.Writer, r *calibrationReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "dim\tmean\tstd\tbefore: mean\tstd\tn\n")
	for _, d := range r.Dims {
		before := "(none)"
		if d.PreviousN > 0 {
			before = fmt.Sprint(d.PreviousN)
		}
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%s\n", d.Dim, d.Mean, d.Std, d.PreviousMean, d.PreviousStd, before)
	}
	return tw.Flush()
}
