// Preference pairs: two samples of one prompt with a label per dimension from a file of the
// user's (human or AI feedback: align's pairs JSONL with "labels", or VideoAlign's CSV), for
// align reward train --pairs.
//
// A reward model trained on the emoji data's pairs learns what those pairs teach; the
// annotators' pairs teach what they prefer. VideoAlign trains its reward model on such pairs
// with Bradley-Terry with ties, one label per dimension (algorithms.md section 4). Here they
// make PreferenceShare of the training pairs of each dimension they label, drawn uniformly
// among the training pairs labelled in it, the pair labelled for that dimension alone (as
// every other training pair). A fixed part of the file never trains (HeldOutPreference, by a
// hash of the pair, so it does not move when lines are added or reordered) and measures, at
// the end of the run, how often the model agrees with the annotators on pairs it has not
// seen: the number a user of human feedback asks for.
//
// Test: go test ./rewards -run Preference
package rewards

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/alignkit/align/kernels"
)

// PreferencePair is one pair of a preference file: the samples' bytes (SampleShape) and a
// label per dimension of PreferenceSet.Dims (LabelNone where the file gives none), A the
// first sample.
type PreferencePair struct {
	Prompt string
	A, B   []uint8
	Labels []Label
	// Key identifies the pair for the held-out split (the prompt and the two files).
	Key string
	// Source is where the pair was read ("pairs.jsonl:12"), for messages.
	Source string
}

// PreferenceSet is a preference file's pairs, split into training and held-out ones.
type PreferenceSet struct {
	Dims    []string
	Train   []PreferencePair
	HeldOut []PreferencePair
	byDim   map[string][]int // training pairs labelled in each dimension
}

// HeldOutPreferencePerCent is the share of a preference file's pairs kept out of training
// (HeldOutPreference).
const HeldOutPreferencePerCent = 10

// HeldOutPreference reports whether the pair with key is held out: FNV-1a 64 of
// "prefs/" + key, modulo 100, below HeldOutPreferencePerCent.
func HeldOutPreference(key string) bool {
	h := fnv.New64a()
	h.Write([]byte("prefs/" + key))
	return h.Sum64()%100 < HeldOutPreferencePerCent
}

// NewPreferenceSet splits pairs into training and held-out ones. It fails when a pair's
// labels do not match dims, when a pair labels no dimension, or when no training pair is left.
func NewPreferenceSet(dims []string, pairs []PreferencePair) (*PreferenceSet, error) {
	s, err := newPreferenceSet(dims, pairs, HeldOutPreference)
	if err != nil {
		return nil, err
	}
	if len(s.Train) == 0 {
		return nil, fmt.Errorf("preference pairs: all %d pairs fall in the held-out %d%%; a file of so few pairs cannot train",
			len(pairs), HeldOutPreferencePerCent)
	}
	return s, nil
}

// NewPreferenceEvalSet is the set whose held-out pairs (the SplitPreferences evaluation)
// are every pair (all) or those NewPreferenceSet holds out, for evaluating a model.
func NewPreferenceEvalSet(dims []string, pairs []PreferencePair, all bool) (*PreferenceSet, error) {
	heldOut := HeldOutPreference
	if all {
		heldOut = func(string) bool { return true }
	}
	s, err := newPreferenceSet(dims, pairs, heldOut)
	if err != nil {
		return nil, err
	}
	if len(s.HeldOut) == 0 {
		return nil, fmt.Errorf("preference pairs: none of the %d pairs is held out", len(pairs))
	}
	return s, nil
}

// newPreferenceSet checks pairs and splits them by heldOut of their keys.
func newPreferenceSet(dims []string, pairs []PreferencePair, heldOut func(key string) bool) (*PreferenceSet, error) {
	if len(dims) == 0 {
		return nil, errors.New("preference pairs: no dimensions")
	}
	s := &PreferenceSet{Dims: dims, byDim: map[string][]int{}}
	for _, p := range pairs {
		switch {
		case len(p.Labels) != len(dims):
			return nil, fmt.Errorf("%s: %d labels for %d dimensions", p.Source, len(p.Labels), len(dims))
		case !slices.ContainsFunc(p.Labels, func(l Label) bool { return l != LabelNone }):
			return nil, fmt.Errorf("%s: the pair labels no dimension", p.Source)
		case len(p.A) == 0 || len(p.A) != len(p.B):
			return nil, fmt.Errorf("%s: samples of %d and %d bytes", p.Source, len(p.A), len(p.B))
		}
		if heldOut(p.Key) {
			s.HeldOut = append(s.HeldOut, p)
			continue
		}
		for d, l := range p.Labels {
			if l != LabelNone {
				s.byDim[dims[d]] = append(s.byDim[dims[d]], len(s.Train))
			}
		}
		s.Train = append(s.Train, p)
	}
	return s, nil
}

// NewPreferenceGen is a pair generator for evaluating a model of dims on the held-out pairs
// of prefs alone (split SplitPreferences), without a dataset; shape is the samples' ((3,S,S)
// for images, (T,3,S,S) for clips).
func NewPreferenceGen(dims []string, shape []int, prefs *PreferenceSet) *PairGen {
	return &PairGen{Cfg: PairConfig{Dims: dims, Preferences: prefs}, video: len(shape) == 4, shape: slices.Clone(shape)}
}

// Has reports whether some training pair labels dimension d.
func (s *PreferenceSet) Has(d string) bool { return len(s.byDim[d]) > 0 }

// Count is the number of training pairs labelled in dimension d.
func (s *PreferenceSet) Count(d string) int { return len(s.byDim[d]) }

// prompts lists the prompts of the training pairs (for the tokenizer's vocabulary).
func (s *PreferenceSet) prompts() []string {
	out := make([]string, len(s.Train))
	for i, p := range s.Train {
		out[i] = p.Prompt
	}
	return out
}

// preferencePair draws a training pair labelled in dimension kind, labelled for kind alone
// (regression targets NaN).
func (g *PairGen) preferencePair(kind string, r *rand.Rand) Pair {
	s := g.Cfg.Preferences
	at := s.byDim[kind]
	return preferenceAs(g.Cfg.Dims, s.Dims, s.Train[at[r.IntN(len(at))]], kind)
}

// preferenceAs is pair p (of a file labelling fileDims) labelled for dimension kind alone,
// over the model's dims.
func preferenceAs(dims, fileDims []string, p PreferencePair, kind string) Pair {
	l := p.Labels[slices.Index(fileDims, kind)]
	ls, ta, tb := kindLabels(dims, kind, l, float32(math.NaN()), float32(math.NaN()))
	note := "preference"
	if l == LabelTie {
		note = "tie-preference"
	}
	q := p.unlabelled()
	q.Kind, q.Note, q.Labels, q.TargetA, q.TargetB = kind, note, ls, ta, tb
	return q
}

// unlabelled is p's two samples as a Pair without labels.
func (p PreferencePair) unlabelled() Pair {
	return Pair{A: Sample{Index: -1, Prompt: p.Prompt, Source: "preference", Pixels: p.A},
		B: Sample{Index: -1, Prompt: p.Prompt, Source: "preference", Pixels: p.B}}
}

// preferenceEntries lists pairs (of a file labelling fileDims) once for every dimension of
// dims they label, in file order, with the index in pairs of each: the pairs of a
// SplitPreferences evaluation.
func preferenceEntries(dims, fileDims []string, pairs []PreferencePair) (entries []Pair, from []int) {
	for i, p := range pairs {
		for d, l := range p.Labels {
			if l != LabelNone && slices.Contains(dims, fileDims[d]) {
				entries, from = append(entries, preferenceAs(dims, fileDims, p, fileDims[d])), append(from, i)
			}
		}
	}
	return entries, from
}

// errNoPreferenceLabel is the error of an evaluation none of whose pairs labels a dimension
// of the model.
var errNoPreferenceLabel = errors.New("pairs: no held-out preference pair labels a dimension of the model")

// heldOutPreferences lists every held-out pair once for each of the model's dimensions it
// labels, in file order (the SplitPreferences "split" of Pairs).
func (g *PairGen) heldOutPreferences() ([]Pair, error) {
	s := g.Cfg.Preferences
	if s == nil {
		return nil, errors.New("pairs: no preference pairs (--pairs)")
	}
	out, _ := preferenceEntries(g.Cfg.Dims, s.Dims, s.HeldOut)
	if len(out) == 0 {
		return nil, errNoPreferenceLabel
	}
	return out, nil
}

// EvaluateScoredPreferences reports the agreement of a model of dims with preference pairs
// it has scored itself (any Model, e.g. an ONNX one reading the files at its own size), as
// Evaluate reports it on the SplitPreferences pairs: pairs of a file labelling fileDims,
// rA and rB (len(pairs), len(dims)) the raw scores of their samples A and B, eps the model's
// tie thresholds (nil: none).
func EvaluateScoredPreferences(dims, fileDims []string, pairs []PreferencePair, rA, rB [][]float32, eps []float64) (*EvalReport, error) {
	if len(rA) != len(pairs) || len(rB) != len(pairs) {
		return nil, fmt.Errorf("preference pairs: %d pairs, scores of %d and %d", len(pairs), len(rA), len(rB))
	}
	entries, from := preferenceEntries(dims, fileDims, pairs)
	if len(entries) == 0 {
		return nil, errNoPreferenceLabel
	}
	a, b := make([][]float32, len(entries)), make([][]float32, len(entries))
	for i, k := range from {
		if len(rA[k]) != len(dims) || len(rB[k]) != len(dims) {
			return nil, fmt.Errorf("%s: %d and %d scores for %d dimensions", pairs[k].Source, len(rA[k]), len(rB[k]), len(dims))
		}
		a[i], b[i] = rA[k], rB[k]
	}
	rep := pairReport(dims, entries, a, b, eps)
	rep.Split, rep.Pairs = SplitPreferences, len(entries)
	return rep, nil
}

// HeldOutPreferencePairs is the number of pairs of the SplitPreferences evaluation: the
// held-out preference pairs, once per labelled dimension of the model (0 without them).
func (g *PairGen) HeldOutPreferencePairs() int {
	pairs, err := g.heldOutPreferences()
	if err != nil {
		return 0
	}
	return len(pairs)
}

// DefaultPairsShare is the default of align reward train --pairs-share.
const DefaultPairsShare = 0.5

// DimOverall is the label dimension of a preference file's overall judgement of a pair
// (VideoGen-RewardBench's Overall column), against which a model's dimensions are judged
// together (OverallAccuracy) where the model has no dimension of that name.
const DimOverall = "overall"

// OverallAccuracy is the accuracy of a model's overall score, sum_d w_d z_d over its dims
// (VideoReward's Overall = VQ + MQ + TA with weights 1), against the overall labels of pairs
// (of a file labelling fileDims): the difference between A and B is
// sum_d (w_d / std_d)(r_A,d - r_B,d), the means cancelling (cal nil: z = raw). rA, rB
// (len(pairs), len(dims)) are the raw scores. ok is false where the file has no overall
// label or the model a dimension of that name.
func OverallAccuracy(dims []string, weights []float64, cal *Calibration, fileDims []string, pairs []PreferencePair, rA, rB [][]float32) (acc DimAccuracy, ok bool) {
	o := slices.Index(fileDims, DimOverall)
	if o < 0 || slices.Contains(dims, DimOverall) {
		return DimAccuracy{}, false
	}
	w := weights
	if cal != nil {
		w = cal.RawWeights(weights)
	}
	deltas, ls := make([]float64, len(pairs)), make([]Label, len(pairs))
	for i, p := range pairs {
		for d := range dims {
			deltas[i] += w[d] * (float64(rA[i][d]) - float64(rB[i][d]))
		}
		ls[i] = p.Labels[o]
	}
	acc = DeltaAccuracy(DimOverall, deltas, ls, math.NaN())
	return acc, acc.Pairs > 0
}

// ScorePreferences scores both samples of each pair with a model of gen's samples (a
// native one) on dev, in batches of batch samples: rA, rB (len(pairs), D) raw.
func ScorePreferences(dev kernels.Device, m Model, gen *PairGen, pairs []PreferencePair, batch int) (rA, rB [][]float32, err error) {
	ps := make([]Pair, len(pairs))
	for i, p := range pairs {
		ps[i] = p.unlabelled()
	}
	return ScorePairs(dev, m, gen, ps, batch)
}
