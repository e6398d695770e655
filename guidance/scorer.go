// Scorer: a clean-sample reward model turned into one utility per sample, for particle
// steering (fk.go) and best-of-N (bon.go). Samples are clamped to [-1, 1] (as writing them
// as images does), scored along every dimension, z-scored with the model's calibration and
// combined per group with the run's weights (rewards.Combine: linear, unit-direction,
// lsc with a per-group reference quantile, pareto). Each scored sample counts as one reward
// call, the unit of algorithms.md section 7's table.
//
// PerFrame lets an image reward score clips: every frame with its clip's prompt, averaged.
//
// Test: go test ./guidance -run 'Scorer|PerFrame'

package guidance

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// DefaultLSCQuantile is the per-group reference quantile of the lsc combiner.
const DefaultLSCQuantile = 0.85

// Scorer scores clean samples with a reward model and combines the dimensions.
type Scorer struct {
	Model       rewards.Model
	Weights     []float64 // (D) weights of the z-scored dimensions
	Combine     string    // one of rewards.Combiners
	LSCQuantile float64   // lsc: reference quantile within a group
	// FPS is the clips' playback rate (0: not known), for a model that takes a clip as a
	// video (rewards.Batch.FPS).
	FPS float64

	Calls   int // model invocations (batches)
	Samples int // samples scored: the reward calls of the run

	buf  *kernels.Tensor
	host []float32
}

// NewScorer checks the weights spec ("vq=1,ta=2"; empty: 1 each) against the model's
// dimensions and the combiner name ("" is linear).
func NewScorer(m rewards.Model, weights, combine string) (*Scorer, error) {
	if m == nil {
		return nil, fmt.Errorf("guidance: no reward model")
	}
	w, err := rewards.ParseWeights(weights, m.Dims())
	if err != nil {
		return nil, fmt.Errorf("--reward-weights: %w", err)
	}
	if combine == "" {
		combine = rewards.CombineLinear
	}
	if !slices.Contains(rewards.Combiners, combine) {
		return nil, fmt.Errorf("--combine %q: want one of %s", combine, strings.Join(rewards.Combiners, ", "))
	}
	return &Scorer{Model: m, Weights: w, Combine: combine, LSCQuantile: DefaultLSCQuantile}, nil
}

// clamped returns x clipped to [-1, 1] in a scorer-owned tensor on x's device.
func (s *Scorer) clamped(x *kernels.Tensor) *kernels.Tensor {
	dev := x.Dev
	if s.buf == nil || s.buf.Dev != dev || s.buf.Len() < x.Len() {
		s.Free()
		s.buf = dev.New(x.Len())
	}
	s.host = slices.Grow(s.host[:0], x.Len())[:x.Len()]
	dev.CopyToHost(s.host, x)
	for i, v := range s.host {
		s.host[i] = max(-1, min(1, v))
	}
	out := s.buf.View(0, x.Shape...)
	dev.CopyFromHost(out, s.host)
	return out
}

// Free returns the buffer of the clamped samples to its device.
func (s *Scorer) Free() {
	freeAll(s.buf)
	s.buf = nil
}

// Utility scores x (B, ...) with one prompt per sample and returns one utility per sample,
// combined within consecutive groups of size group (group must divide B), and the scores.
// Higher is better for every combiner; pareto gives -(front index within the group).
func (s *Scorer) Utility(x *kernels.Tensor, prompts []string, group int) ([]float64, *rewards.Scores, error) {
	B := x.Shape[0]
	if group < 1 || B%group != 0 {
		return nil, nil, fmt.Errorf("guidance: %d samples in groups of %d", B, group)
	}
	b := rewards.Batch{Pixels: s.clamped(x), Prompts: prompts}
	if s.FPS > 0 {
		b.FPS = slices.Repeat([]float64{s.FPS}, B)
	}
	sc, err := rewards.ScoreBatch(s.Model, b)
	if err != nil {
		return nil, nil, err
	}
	s.Calls++
	s.Samples += B
	u := make([]float64, 0, B)
	for g := 0; g < B; g += group {
		z := sc.Z[g : g+group]
		var ref [][]float64
		if s.Combine == rewards.CombineLogSigmoid {
			if ref, err = rewards.PromptReference(z, prompts[g:g+group], s.LSCQuantile); err != nil {
				return nil, nil, err
			}
		}
		ug, err := rewards.Combine(s.Combine, z, s.Weights, ref)
		if err != nil {
			return nil, nil, err
		}
		u = append(u, ug...)
	}
	for b, v := range u {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("guidance: reward of sample %d is %v", b, v)
		}
	}
	return u, sc, nil
}

// PerFrame scores clips (B,T,3,H,W) with an image reward model: each frame is scored with
// its clip's prompt and the scores are averaged over the T frames. Images pass through.
type PerFrame struct {
	rewards.Model
}

// Score implements rewards.Model.
func (p PerFrame) Score(b rewards.Batch) ([][]float32, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	if !b.IsVideo() {
		return p.Model.Score(b)
	}
	s := b.Pixels.Shape
	B, T := s[0], s[1]
	prompts := make([]string, 0, B*T)
	for _, pr := range b.Prompts {
		for range T {
			prompts = append(prompts, pr)
		}
	}
	raw, err := p.Model.Score(rewards.Batch{Pixels: b.Pixels.Reshape(B*T, s[2], s[3], s[4]), Prompts: prompts})
	if err != nil {
		return nil, err
	}
	out := make([][]float32, B)
	for i := range out {
		out[i] = make([]float32, len(raw[i*T]))
		for t := range T {
			for d, v := range raw[i*T+t] {
				out[i][d] += v / float32(T)
			}
		}
	}
	return out, nil
}

// Calibration forwards the image model's calibration (nil when it has none).
func (p PerFrame) Calibration() *rewards.Calibration {
	if c, ok := p.Model.(rewards.Calibrated); ok {
		return c.Calibration()
	}
	return nil
}
