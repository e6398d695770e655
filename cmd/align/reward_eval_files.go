// align reward eval --preferences with a model that reads files (an ONNX model or its
// manifest): the pairs' samples are scored as align score scores them, decoded at the
// model's own input size with their pair's prompt, and the agreement with the labels is
// reported as for a native model (rewards.EvaluateScoredPreferences).
//
// Test: go test ./cmd/align -run RewardEvalPreferencesONNX
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// rewardEvalFiles evaluates the file-reading model opts.Model on the pairs of
// opts.Preferences (every pair, or the held-out ones) and returns the report and the kind of
// model.
func rewardEvalFiles(cmd *cobra.Command, opts *RewardEvalOptions) (*rewards.EvalReport, string, error) {
	f, err := readPreferenceLabels(opts.Preferences)
	if err != nil {
		return nil, "", fmt.Errorf("--preferences: %w", err)
	}
	var pairs []rewards.PreferencePair
	var files [][2]string
	for i, p := range f.pairs {
		if opts.Split == splitAll || rewards.HeldOutPreference(p.Key) {
			pairs, files = append(pairs, p), append(files, f.files[i])
		}
	}
	if len(pairs) == 0 {
		return nil, "", fmt.Errorf("--preferences %s: none of its %d pairs is held out", opts.Preferences, len(f.pairs))
	}
	// A missing file fails here, naming its pair, before any scoring.
	for i, fs := range files {
		for _, name := range fs {
			if _, err := os.Stat(name); err != nil {
				return nil, "", fmt.Errorf("--preferences %s: %w", pairs[i].Source, err)
			}
		}
	}

	set, err := loadRewardSet(cmd, &ScoreOptions{Threads: opts.Threads, rewardFlag: "--model"}, []string{opts.Model})
	if err != nil {
		return nil, "", err
	}
	defer set.close()
	dims := set.model.Dims()
	if err := checkPreferenceDims(opts.Preferences, f.dims, dims); err != nil {
		return nil, "", err
	}
	w, err := opts.overallWeights(set.model, f.dims)
	if err != nil {
		return nil, "", err
	}

	// Each sample is scored once with its pair's prompt, however many pairs share it.
	var items []scoring.Item
	at := map[[2]string]int{}
	index := func(path, prompt string) int {
		k := [2]string{path, prompt}
		i, ok := at[k]
		if !ok {
			i = len(items)
			at[k] = i
			items = append(items, scoring.Item{Index: i, Path: path, Prompt: prompt, HasPrompt: true})
		}
		return i
	}
	ia, ib := make([]int, len(pairs)), make([]int, len(pairs))
	for i, p := range pairs {
		ia[i], ib[i] = index(files[i][0], p.Prompt), index(files[i][1], p.Prompt)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	t0 := time.Now()
	bar := newProgressBar(cmd.ErrOrStderr(), "score", len(items)*len(set.members))
	rows, err := set.run(ctx, items, scoring.Scorer{BatchSize: opts.BatchSize, Strict: true}, func(done, _ int) { bar.Update(done, "") })
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", errCancelled
		}
		return nil, "", err
	}
	bar.Finish(counted(len(items), "sample"))
	rA, rB := make([][]float32, len(pairs)), make([][]float32, len(pairs))
	for i := range pairs {
		rA[i], rB[i] = rows[ia[i]].Raw, rows[ib[i]].Raw
	}
	var eps []float64
	if c, ok := set.model.(rewards.Calibrated); ok && c.Calibration() != nil && len(c.Calibration().TieEps) == len(dims) {
		eps = c.Calibration().TieEps
	}
	rep, err := rewards.EvaluateScoredPreferences(dims, f.dims, pairs, rA, rB, eps)
	if err != nil {
		return nil, "", fmt.Errorf("--preferences %s: %w", opts.Preferences, err)
	}
	if w != nil {
		appendOverall(rep, set.model, w, f.dims, pairs, rA, rB)
	}
	rep.Seconds = time.Since(t0).Seconds()
	kind := "ONNX image"
	if set.clips {
		kind = "ONNX clip"
	}
	return rep, kind, nil
}
