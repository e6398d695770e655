// Generated visual-quality negatives of align reward train (--negatives generator): the
// pool of few-step Euler samples of --negatives-generator (rewards/negatives.go), sampled
// before the first step with a progress bar and cached in the output directory.
//
// Test: go test ./cmd/align -run RewardTrain
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// checkNegatives validates the negative flags: "none" is the empty TrainConfig.Negatives,
// and a generator pool is for native image reward models only. Other values are left to
// TrainConfig.Validate.
func (o *RewardTrainOptions) checkNegatives() error {
	t := &o.Train
	if t.Negatives == "none" {
		t.Negatives = ""
	}
	if t.Negatives != rewards.NegativesGenerator {
		if o.NegativesGenerator != "" {
			return flagErrorf("--negatives-generator is only read with --negatives generator")
		}
		return nil
	}
	switch {
	case o.Video:
		return flagErrorf("--negatives generator: image reward models only for now (there is no pool of generated clips); drop --video or --negatives")
	case o.Latent:
		return flagErrorf("--negatives generator trains the native reward model; it is not available with --latent")
	case t.NegativeShare == 0:
		return flagErrorf("--negative-share 0 with --negatives generator would sample a pool that no pair uses")
	}
	return nil
}

// hashNegativesGenerator records the sha256 of --negatives-generator (or of the embedded
// default image model) in opts.Train, so that checkpoints hold it and a resume compares it.
func (o *RewardTrainOptions) hashNegativesGenerator() error {
	if o.Train.Negatives != rewards.NegativesGenerator {
		return nil
	}
	sum, err := generatorSHA256(o.NegativesGenerator)
	if err != nil {
		return fmt.Errorf("--negatives-generator: %w", err)
	}
	o.Train.NegativesGeneratorSHA256 = sum
	return nil
}

// attachNegatives gives gen the pool of generated negatives of the run in opts.OutputDir,
// reusing its cache or sampling it (a fresh run samples a stale cache again, a resumed one
// refuses it). Ctrl-C while sampling leaves no cache and exits with code 2.
func attachNegatives(cmd *cobra.Command, dev kernels.Device, opts *RewardTrainOptions, gen *rewards.PairGen, resumed bool) error {
	tc := opts.Train
	if tc.Negatives != rewards.NegativesGenerator {
		return nil
	}
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	stderr := cmd.ErrOrStderr()
	var bar *progressBar
	cfg := rewards.GeneratorNegativesConfig{
		Generator: cmp.Or(opts.NegativesGenerator, defaultImageModelName), GeneratorSHA256: tc.NegativesGeneratorSHA256,
		Seed: tc.Seed, PerLevel: tc.NegativesPerLevel,
		Progress: func(done, total int) {
			if bar == nil {
				bar = newProgressBar(stderr, "negatives", total)
			}
			bar.Update(done, "samples")
		},
		Notify: func(msg string) { fmt.Fprintln(stderr, msg) },
	}
	load := func() (*diffusion.DiT, error) {
		m, _, err := loadGenerator(dev, opts.NegativesGenerator)
		return m, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	src, _, err := rewards.OpenGeneratorNegatives(ctx, opts.OutputDir, gen, cfg, load, !resumed)
	if bar != nil {
		bar.Finish("")
	}
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "interrupted while sampling the negatives; nothing was cached")
		return errCancelled
	case err != nil:
		return err
	}
	gen.Cfg.Negatives = src
	return nil
}
