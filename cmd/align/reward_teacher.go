// Teacher pairs of align reward train (--teacher-scored): the scored set's samples, read at
// the reward model's geometry, grouped by prompt (rewards/teacher.go).
//
// Test: go test ./cmd/align -run Teacher
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
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
	b, err := os.ReadFile(path) // read once: the bytes hashed are the bytes parsed
	if err != nil {
		return nil, fmt.Errorf("--teacher-scored: %w", err)
	}
	sum := sha256.Sum256(b)
	set, err := dpo.ReadScoredJSONL(bytes.NewReader(b), path, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	geom := &diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: dataset.ImageSize, Channels: dataset.Channels, Frames: 1}
	if o.Video {
		geom.Kind, geom.Frames = diffusion.KindVideo, dataset.Frames
	}
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
	o.Train.TeacherSHA256 = hex.EncodeToString(sum[:])
	return t, nil
}
