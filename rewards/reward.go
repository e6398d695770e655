// Package rewards holds align's reward side. Files (each with its test beside it):
//
//	reward.go    the interfaces (Model, Differentiable, NoiseAware), Batch, Calibration, ScoreBatch
//	weights.go   per-run weight lists "vq=1,ta=2"
//	combine.go   linear, unit-direction, log-sigmoid and Pareto combiners
//	btt.go       Bradley-Terry with ties, BT and regression losses; accuracy with and without ties
//	native.go    the native vision-language reward model, forward and backward to the pixels
//	degrade.go   graded image degradations and clip corruptions
//	pairs.go     preference pairs from the emoji data, splits, the NegativeSource hook
//	negatives.go vq negatives sampled from a generator with few steps, cached per run
//	train.go     training, calibration on the validation split, evaluation
//	inflate.go   a video reward model started from a trained image reward model
//
// # Dimensions
//
// A reward model scores every sample along named dimensions, as VideoAlign's VideoReward
// (arXiv 2501.13918): "vq" visual quality, "ta" text alignment, "mq" motion quality (videos).
// Scores are kept as vectors; a run combines them with per-dimension weights given as
// "vq=1,ta=2" (ParseWeights) and a combiner (linear sum, unit direction, log-sigmoid or
// Pareto fronts), always on z-scored values so that the weights mean the same for every
// dimension.
//
// # Calibration
//
// A model ships the mean and standard deviation of each dimension's raw score on a
// validation set (Calibration); z = (r - mean)/std is what VideoAlign's inference.py
// reports as the normalised reward. Score returns raw values; ZScores normalises them.
//
// Shape legend: B samples, D dimensions, T frames, H x W pixels.
//
// Test: go test ./rewards
package rewards

import (
	"errors"
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

// Standard dimension names.
const (
	DimVQ = "vq" // visual quality: how clean the picture (or each frame) is, prompt-independent
	DimTA = "ta" // text alignment: how well the sample matches its prompt
	DimMQ = "mq" // motion quality: how smooth and coherent a clip's motion is (videos only)
)

// Batch is what a reward model scores: B images (B,3,H,W) or clips (B,T,3,H,W) as one device
// tensor with values in [-1, 1] (the generator's range, x/127.5 - 1), and one prompt per
// sample.
type Batch struct {
	Pixels  *kernels.Tensor // (B,3,H,W) or (B,T,3,H,W), in [-1, 1]
	Prompts []string        // (B)

	// Timesteps (B) are the noise levels t of Pixels = (1-t)*x0 + t*eps for NoiseAware
	// models; nil (clean samples) for every other model, which ignore it.
	Timesteps []float32

	// FPS (B) are the rates the clips' frames were sampled at, frames per second (0: not
	// known, as for frames spread over a clip; nil: none known), for a model that hands a
	// clip on as a video (a remote judge); the others ignore it.
	FPS []float64
}

// Len is the number of samples, B.
func (b Batch) Len() int {
	if b.Pixels == nil || len(b.Pixels.Shape) == 0 {
		return 0
	}
	return b.Pixels.Shape[0]
}

// IsVideo reports whether the batch holds clips (B,T,3,H,W).
func (b Batch) IsVideo() bool { return b.Pixels != nil && len(b.Pixels.Shape) == 5 }

// Check returns an error unless Pixels is (B,3,H,W) or (B,T,3,H,W) with B = len(Prompts) > 0
// and Timesteps and FPS are nil or of length B.
func (b Batch) Check() error {
	if b.Pixels == nil {
		return errors.New("rewards: batch without pixels")
	}
	s := b.Pixels.Shape
	switch {
	case len(s) == 4 && s[1] == 3, len(s) == 5 && s[2] == 3:
	default:
		return fmt.Errorf("rewards: pixels %v, want (B,3,H,W) or (B,T,3,H,W)", s)
	}
	if s[0] == 0 || s[0] != len(b.Prompts) {
		return fmt.Errorf("rewards: %d samples with %d prompts", s[0], len(b.Prompts))
	}
	if b.Timesteps != nil && len(b.Timesteps) != s[0] {
		return fmt.Errorf("rewards: %d samples with %d timesteps", s[0], len(b.Timesteps))
	}
	if b.FPS != nil && len(b.FPS) != s[0] {
		return fmt.Errorf("rewards: %d samples with %d frame rates", s[0], len(b.FPS))
	}
	return nil
}

// Model is a reward model: it scores a batch along its dimensions. Scores are raw (not
// z-scored), one row per sample, one column per dimension in the order of Dims: (B, D).
type Model interface {
	Dims() []string
	Score(b Batch) ([][]float32, error)
}

// Differentiable is a reward model that also returns the gradient of the weighted reward
// with respect to its input pixels, which gradient guidance (Flow-NRG) and reward
// fine-tuning need. weights (D) are on the raw scores:
//
//	grad = d/dPixels  sum_b sum_d weights[d] * r_d(Pixels[b], Prompts[b])
//
// grad has Pixels' shape and lives on Pixels' device; it belongs to the model and stays valid
// until the next call. To weight z-scored rewards, convert with Calibration.RawWeights.
type Differentiable interface {
	Model
	ScoreAndGrad(b Batch, weights []float64) (scores [][]float32, grad *kernels.Tensor, err error)
}

// NoiseAware marks a differentiable model that reads noisy inputs x_t together with their
// noise levels (Batch.Timesteps), as the latent reward model of Flow-NRG (VideoAlign §4.4)
// does; guidance may apply it directly to x_t instead of to a denoised estimate.
type NoiseAware interface {
	Differentiable
	NoiseAware()
}

// Calibrated is a model that carries its per-dimension score statistics.
type Calibrated interface {
	Calibration() *Calibration
}

// Calibration holds the per-dimension mean and standard deviation of raw scores on a
// validation set, stored with the model (VideoAlign's inference_config VQ_mean, VQ_std, ...).
type Calibration struct {
	Dims []string  `json:"dims"`
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
	// N is the number of samples the statistics come from (0: not calibrated).
	N int `json:"n"`
	// TieEps (D) is the tie threshold on |r_A - r_B| that maximised the accuracy with ties on
	// the validation pairs (see AccuracyWithTies); 0 when unknown.
	TieEps []float64 `json:"tie_eps,omitempty"`
	// ValPercent is the share of training concepts, in percent, that a native or latent
	// model's training kept for validation (reward train --val-percent; 0: not recorded,
	// ValPerCent before the option), whose pairs gave TieEps: reward eval --split val and
	// train read the concepts at it.
	ValPercent int `json:"val_percent,omitempty"`
}

// IdentityCalibration returns mean 0, std 1 for every dimension (z = r).
func IdentityCalibration(dims []string) *Calibration {
	c := &Calibration{Dims: append([]string(nil), dims...), Mean: make([]float64, len(dims)), Std: make([]float64, len(dims))}
	for i := range c.Std {
		c.Std[i] = 1
	}
	return c
}

// Fit sets the statistics from raw scores (B, D): mean_d and the population standard
// deviation std_d = sqrt(mean_b (r_bd - mean_d)^2); a dimension whose std is below 1e-6
// gets std 1 (it would otherwise blow z-scores up).
func (c *Calibration) Fit(scores [][]float32) error {
	D := len(c.Dims)
	if len(scores) == 0 {
		return errors.New("calibration: no scores")
	}
	mean, std := make([]float64, D), make([]float64, D)
	for i, row := range scores {
		if len(row) != D {
			return fmt.Errorf("calibration: row %d has %d scores, want %d", i, len(row), D)
		}
		for d, v := range row {
			mean[d] += float64(v)
		}
	}
	n := float64(len(scores))
	for d := range mean {
		mean[d] /= n
	}
	for _, row := range scores {
		for d, v := range row {
			e := float64(v) - mean[d]
			std[d] += e * e
		}
	}
	for d := range std {
		std[d] = math.Sqrt(std[d] / n)
		if !(std[d] >= 1e-6) {
			std[d] = 1
		}
	}
	c.Mean, c.Std, c.N = mean, std, len(scores)
	return nil
}

// Validate checks that the calibration has one finite mean and one positive finite std per
// dimension.
func (c *Calibration) Validate() error {
	D := len(c.Dims)
	if len(c.Mean) != D || len(c.Std) != D {
		return fmt.Errorf("calibration: %d dims, %d means, %d stds", D, len(c.Mean), len(c.Std))
	}
	if c.TieEps != nil && len(c.TieEps) != D {
		return fmt.Errorf("calibration: %d dims, %d tie thresholds", D, len(c.TieEps))
	}
	for d := range D {
		if math.IsNaN(c.Mean[d]) || math.IsInf(c.Mean[d], 0) || !(c.Std[d] > 0) || math.IsInf(c.Std[d], 0) {
			return fmt.Errorf("calibration: %s has mean %v, std %v", c.Dims[d], c.Mean[d], c.Std[d])
		}
	}
	return nil
}

// ZScores returns z_bd = (r_bd - mean_d)/std_d for raw scores (B, D).
func (c *Calibration) ZScores(raw [][]float32) [][]float64 {
	out := make([][]float64, len(raw))
	for b, row := range raw {
		if len(row) != len(c.Mean) {
			panic(fmt.Sprintf("rewards: ZScores: row %d has %d scores, calibration %d dims", b, len(row), len(c.Mean)))
		}
		z := make([]float64, len(row))
		for d, v := range row {
			z[d] = (float64(v) - c.Mean[d]) / c.Std[d]
		}
		out[b] = z
	}
	return out
}

// RawWeights converts weights on z-scores into weights on raw scores, w_d/std_d, so that
// sum_d w_d z_d and sum_d RawWeights_d r_d have the same gradient.
func (c *Calibration) RawWeights(w []float64) []float64 {
	out := make([]float64, len(w))
	for d := range w {
		out[d] = w[d] / c.Std[d]
	}
	return out
}

// Scores are a batch's rewards, raw and z-scored, one row per sample.
type Scores struct {
	Dims []string    // (D)
	Raw  [][]float32 // (B, D) as the model returns them
	Z    [][]float64 // (B, D) (raw - mean)/std with the model's calibration
}

// ScoreBatch scores b with m and z-scores the result with m's calibration when it has one
// (Calibrated), else with the identity (Z = Raw).
func ScoreBatch(m Model, b Batch) (*Scores, error) {
	raw, err := m.Score(b)
	if err != nil {
		return nil, err
	}
	cal := IdentityCalibration(m.Dims())
	if c, ok := m.(Calibrated); ok && c.Calibration() != nil {
		cal = c.Calibration()
	}
	if err := cal.Validate(); err != nil {
		return nil, err
	}
	return &Scores{Dims: m.Dims(), Raw: raw, Z: cal.ZScores(raw)}, nil
}

// Float64s widens raw scores (B, D) to float64.
func Float64s(raw [][]float32) [][]float64 {
	out := make([][]float64, len(raw))
	for b, row := range raw {
		out[b] = make([]float64, len(row))
		for d, v := range row {
			out[b][d] = float64(v)
		}
	}
	return out
}

// DimIndex returns the position of name in dims, or -1.
func DimIndex(dims []string, name string) int {
	for i, d := range dims {
		if d == name {
			return i
		}
	}
	return -1
}
