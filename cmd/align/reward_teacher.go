// Teacher pairs of align reward train (--teacher-scored): the scored set's samples, read at
// the reward model's geometry, grouped by prompt (rewards/teacher.go).
//
// Test: go test ./cmd/align -run Teacher
package main

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/rewards"
)

// loadTeacher reads --teacher-scored (nil, nil without it) and records its sha256 in
// opts.Train, so that checkpoints hold it and a resume compares it.
func (o *RewardTrainOptions) loadTeacher() (*rewards.TeacherSet, error) {
	if o.Train.TeacherScored == "" {
		return nil, nil
	}
	path := o.Train.TeacherScored
	b, sum, err := readHashed(path)
	if err != nil {
		return nil, fmt.Errorf("--teacher-scored: %w", err)
	}
	set, err := dpo.ReadScoredJSONL(bytes.NewReader(b), path, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	shape, err := dataSampleShape(o.Data, o.Video)
	if err != nil {
		return nil, err
	}
	geom := rewardSampleGeometry(shape)
	samples := make([]rewards.TeacherSample, len(set.Items))
	for i, it := range set.Items {
		pix, err := dpo.LoadSample(it.Path, geom)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.Source, err)
		}
		samples[i] = rewards.TeacherSample{Prompt: it.Prompt, Pixels: pix, Z: it.Scores}
	}
	t, err := rewards.NewTeacherSet(set.Dims, samples, o.Train.TeacherMargin)
	if err != nil {
		return nil, fmt.Errorf("--teacher-scored %s: %w", path, err)
	}
	o.Train.TeacherSHA256 = sum
	return t, nil
}
