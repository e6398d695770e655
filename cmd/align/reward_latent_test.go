// Tests of `align reward train --latent` flags and of the per-t-bucket table that
// `align reward eval` prints for a noise-aware latent model. Latent training end to end is
// tested in the rewards package (TestLatentTrainResumeExact).
//
// Run: go test ./cmd/align -run 'RewardLatent|TimeBuckets'
package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards"
)

func TestNewCmdRewardLatentTrain(t *testing.T) {
	tests := []rewardTrainCase{
		{name: "defaults", args: nil, check: func(o *RewardTrainOptions) bool {
			return !o.Latent && o.Generator == "" && o.LatentBlocks == rewards.DefaultLatentBlocks && o.HeadHidden == 0 && o.WordScale == 0 &&
				o.Train.TimestepSampling == rewards.TimestepUniform
		}},
		{name: "latent", args: []string{"--latent", "--generator", "base.safetensors", "--latent-blocks", "3", "--head-hidden", "64",
			"--latent-word-scale", "4", "--timestep-sampling", "logit_normal"}, check: func(o *RewardTrainOptions) bool {
			return o.Latent && o.Generator == "base.safetensors" && o.LatentBlocks == 3 && o.HeadHidden == 64 && o.WordScale == 4 &&
				o.Train.TimestepSampling == rewards.TimestepLogitNormal
		}},
		{name: "latent resume", args: []string{"--latent", "--resume-from-checkpoint", "latest"},
			check: func(o *RewardTrainOptions) bool { return o.Latent && o.ResumeFromCheckpoint == "latest" }},
		{name: "generator alone", args: []string{"--generator", "g.safetensors"}, wantErr: "--generator is only read with --latent"},
		{name: "blocks", args: []string{"--latent", "--generator", "g", "--latent-blocks", "0"}, wantErr: "--latent-blocks must be >= 1"},
		{name: "word scale", args: []string{"--latent", "--latent-word-scale", "-1"}, wantErr: "--latent-word-scale must be >= 0"},
		{name: "sampling", args: []string{"--timestep-sampling", "cosmap"}, wantErr: `--timestep-sampling "cosmap"`},
	}
	checkRewardTrainCases(t, tests)
}

func TestPrintTimeBuckets(t *testing.T) {
	var buf bytes.Buffer
	if err := printTimeBuckets(&buf, &rewards.EvalReport{}); err != nil || buf.Len() != 0 {
		t.Errorf("clean model: %q, %v", buf.String(), err)
	}
	rep := &rewards.EvalReport{NoiseAware: true}
	for k := range rewards.LatentEvalBuckets {
		lo := float64(k) / rewards.LatentEvalBuckets
		rep.TimeBuckets = append(rep.TimeBuckets, rewards.TimeBucket{Lo: lo, Hi: lo + 0.2, Pairs: 10, Dims: []rewards.DimAccuracy{
			{Dim: "vq", AccWithoutTies: 0.9 - lo/2, AccWithTies: 0.8}, {Dim: "ta", AccWithoutTies: 0.7, AccWithTies: 0.6}}})
	}
	if err := printTimeBuckets(&buf, rep); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1+rewards.LatentEvalBuckets || !strings.Contains(lines[0], "vq w/o ties") || !strings.Contains(lines[0], "ta with ties") ||
		!strings.HasPrefix(lines[1], "[0.0,0.2)") || !strings.Contains(lines[1], "90.00%") || !strings.HasPrefix(lines[5], "[0.8,1.0)") {
		t.Errorf("table:\n%s", buf.String())
	}
}
