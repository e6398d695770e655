// Teacher pairs: two generated samples of one prompt, labelled by a teacher reward model's
// z-scores of them (a scored set written by `align pairs --scored`).
//
// Real-data pairs teach a reward model to tell a true caption from a wrong one and a clean
// image from a degraded one; they never ask it to rank two samples of one prompt, which is
// what pair selection and reward guidance need. A model trained on real-data pairs alone can
// rank such samples almost independently of another model trained the same way (align eval
// agreement: within-prompt correlation near 0 for the latent model's TA against the clean
// one's). Teacher pairs train that ranking directly: for dimension d with teacher z-scores
// z_A, z_B of samples A and B of one prompt,
//
//	label_d = A  if z_A,d - z_B,d >  margin
//	          B  if z_A,d - z_B,d < -margin
//	          tie otherwise
//
// VideoAlign trains its noise-aware reward model on the preference pairs of generated
// videos the clean one learns from (algorithms.md section 5); with AI feedback, the teacher
// plays the annotators. Only training pairs are drawn from the teacher: calibration and the
// held-out evaluation stay on real data, comparable with any other run.
//
// Test: go test ./rewards -run Teacher
package rewards

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// TeacherSample is a generated sample with a teacher's z-scores.
type TeacherSample struct {
	Prompt string
	Pixels []uint8   // (SampleShape) bytes
	Z      []float64 // per TeacherSet.Dims
}

// TeacherSet is generated samples grouped by prompt, each group of at least two.
type TeacherSet struct {
	Dims   []string
	Groups [][]TeacherSample
	// Margin is the z-score difference at or below which a dimension is a tie.
	Margin float64
}

// Defaults of align reward train --teacher-scored: the share of a scored dimension's
// training pairs drawn from the teacher, and the tie margin in z-score units.
const (
	DefaultTeacherShare  = 0.5
	DefaultTeacherMargin = 0.1
)

// NewTeacherSet groups samples by prompt (in order of first appearance), leaving out prompts
// with a single sample; it fails when no group is left or a sample's scores do not match dims.
func NewTeacherSet(dims []string, samples []TeacherSample, margin float64) (*TeacherSet, error) {
	if len(dims) == 0 {
		return nil, errors.New("teacher: no dimensions")
	}
	if !(margin >= 0) || math.IsInf(margin, 0) {
		return nil, fmt.Errorf("teacher: tie margin must be a finite number >= 0, got %v", margin)
	}
	at := map[string]int{}
	var groups [][]TeacherSample
	for i, s := range samples {
		if len(s.Z) != len(dims) {
			return nil, fmt.Errorf("teacher: sample %d has %d scores for %d dimensions", i, len(s.Z), len(dims))
		}
		g, ok := at[s.Prompt]
		if !ok {
			g = len(groups)
			at[s.Prompt] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], s)
	}
	groups = slices.DeleteFunc(groups, func(g []TeacherSample) bool { return len(g) < 2 })
	if len(groups) == 0 {
		return nil, errors.New("teacher: no prompt has two samples to compare")
	}
	return &TeacherSet{Dims: dims, Groups: groups, Margin: margin}, nil
}

// Has reports whether the teacher scores dimension d.
func (s *TeacherSet) Has(d string) bool { return slices.Contains(s.Dims, d) }

// Label is the teacher's label of dimension d for samples a and b.
func (s *TeacherSet) Label(d string, a, b TeacherSample) Label {
	i := slices.Index(s.Dims, d)
	switch diff := a.Z[i] - b.Z[i]; {
	case diff > s.Margin:
		return LabelA
	case diff < -s.Margin:
		return LabelB
	}
	return LabelTie
}

// teacherPair draws a prompt group and two distinct samples of it, labelled for dimension
// kind by the teacher (the only labelled dimension; regression targets NaN).
func (g *PairGen) teacherPair(kind string, r *rand.Rand) Pair {
	t := g.Cfg.Teacher
	grp := t.Groups[r.IntN(len(t.Groups))]
	i := r.IntN(len(grp))
	j := r.IntN(len(grp) - 1)
	if j >= i {
		j++
	}
	a, b := grp[i], grp[j]
	l := t.Label(kind, a, b)
	ls, ta, tb := g.labels(kind, l, float32(math.NaN()), float32(math.NaN()))
	note := "teacher"
	if l == LabelTie {
		note = "tie-teacher"
	}
	return Pair{Note: note, A: Sample{Index: -1, Prompt: a.Prompt, Source: "teacher", Pixels: a.Pixels},
		B: Sample{Index: -1, Prompt: b.Prompt, Source: "teacher", Pixels: b.Pixels}, Labels: ls, TargetA: ta, TargetB: tb}
}
