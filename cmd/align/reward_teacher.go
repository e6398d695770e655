// Teacher pairs of align reward train (--teacher-scored): the scored set's samples, read at
// the reward model's geometry, grouped by prompt (rewards/teacher.go).
//
// Test: go test ./cmd/align -run Teacher
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

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
	f, err := os.Open(o.Train.TeacherScored)
	if err != nil {
		return nil, fmt.Errorf("--teacher-scored: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("--teacher-scored: %w", err)
	}
	set, err := dpo.ReadScored(o.Train.TeacherScored)
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
		return nil, fmt.Errorf("--teacher-scored %s: %w", o.Train.TeacherScored, err)
	}
	o.Train.TeacherSHA256 = hex.EncodeToString(h.Sum(nil))
	return t, nil
}
