// align finetune --method reward-cond: the training set of the reward-condition slot, either
// a scored set (--scored, scores taken as z-scores) or built from a dataset directory
// (--data) with a reward model (--reward, default the embedded one): every training image
// with its caption, plus degraded copies (low vq) and copies under another image's caption
// (low ta), each scored as it stands (dpo/rewardcond.go).
//
// Test: go test ./cmd/align -run FinetuneRewardCond
package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// condData reads or builds the training set of a reward-cond run for a model of config mc.
func condData(dev kernels.Device, opts *FinetuneOptions, mc *diffusion.ModelConfig, stderr io.Writer) (*dpo.Data, error) {
	if opts.Scored != "" {
		set, err := dpo.ReadScored(opts.Scored)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stderr, "%s: %d scored samples (%s) as reward conditions of %s\n", opts.Scored, len(set.Items),
			strings.Join(set.Dims, ", "), strings.Join(mc.RewardDims, ", "))
		return dpo.CondScoredData(set, mc)
	}
	src, manifest, err := loadTrainData(opts.Data, mc.Kind == diffusion.KindVideo)
	if err != nil {
		return nil, err
	}
	if err := checkDataGeometry(opts.Data, manifest, *mc); err != nil {
		return nil, err
	}
	var rm rewards.Model
	desc := opts.Reward
	if opts.Reward == "" || opts.Reward == "default" {
		m, err := loadDefaultReward(dev, mc.Kind == diffusion.KindVideo)
		if err != nil {
			return nil, err
		}
		rm, desc = m, "the embedded default reward model"
	} else {
		m, err := rewards.LoadNative(dev, opts.Reward)
		if err != nil {
			return nil, err
		}
		rm = m
	}
	o := dpo.DefaultCondSetOptions()
	o.Samples, o.Degraded, o.Mismatched, o.Corrupted, o.Seed = opts.CondSamples, opts.CondDegraded, opts.CondMismatched,
		opts.CondCorrupted, opts.Train.Seed
	d, st, err := dpo.BuildCondData(dev, src, filepath.Clean(opts.Data), rm, mc, o)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "%s: %d training items scored with %s\n", opts.Data, len(d.Items), desc)
	for _, k := range []string{dpo.CondClean, dpo.CondDegraded, dpo.CondMismatched, dpo.CondCorrupted} {
		if st.Count[k] == 0 {
			continue
		}
		var parts []string
		for j, n := range st.Dims {
			parts = append(parts, fmt.Sprintf("%s %+.2f", n, st.Mean[k][j]))
		}
		fmt.Fprintf(stderr, "  %-10s %6d items, mean z: %s\n", k, st.Count[k], strings.Join(parts, ", "))
	}
	var parts []string
	for j, n := range st.Dims {
		parts = append(parts, fmt.Sprintf("%s=%.2f", n, st.Max[j]))
	}
	fmt.Fprintf(stderr, "  maxima (%.2f quantile, --reward-condition DIM=max): %s\n", dpo.RewardCondMaxQuantile, strings.Join(parts, ", "))
	return d, nil
}
