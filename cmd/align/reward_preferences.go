// Preference pairs of align reward train (--pairs): a labelled pairs file read at the
// reward model's geometry, its pairs split into training and held-out ones
// (rewards/preferences.go).
//
// Test: go test ./cmd/align -run Preference
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/rewards"
)

// loadPreferences reads --pairs (nil, nil without it) and records its sha256 in opts.Train,
// so that checkpoints hold it and a resume compares it. Every pair must carry labels: a
// pair without them says which sample is better, not in which dimension.
func (o *RewardTrainOptions) loadPreferences() (*rewards.PreferenceSet, error) {
	if o.Train.Pairs == "" {
		return nil, nil
	}
	path := o.Train.Pairs
	b, err := os.ReadFile(path) // read once: the bytes hashed are the bytes parsed
	if err != nil {
		return nil, fmt.Errorf("--pairs: %w", err)
	}
	sum := sha256.Sum256(b)
	set, err := dpo.DecodePairs(bytes.NewReader(b), path, dpo.PairOptions{Ties: dpo.TiesKeep})
	if err != nil {
		return nil, err
	}
	geom := &diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: dataset.ImageSize, Channels: dataset.Channels, Frames: 1}
	if o.Video {
		geom.Kind, geom.Frames = diffusion.KindVideo, dataset.Frames
	}
	pairs := make([]rewards.PreferencePair, len(set.Pairs))
	for i, p := range set.Pairs {
		if p.Labels == nil {
			return nil, fmt.Errorf("%s: no labels; a reward model learns from a label per dimension, e.g. \"labels\": {\"vq\": \"A\", \"ta\": \"tie\"}", p.Source)
		}
		q := rewards.PreferencePair{Prompt: p.Prompt, Labels: make([]rewards.Label, len(set.Dims)), Source: p.Source.String()}
		for d, dim := range set.Dims {
			q.Labels[d] = p.Labels[dim]
		}
		if q.A, err = dpo.LoadSample(p.Chosen, geom); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Source, err)
		}
		if q.B, err = dpo.LoadSample(p.Rejected, geom); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Source, err)
		}
		// The held-out split follows the pair's prompt and files as the file names them, in
		// either order: not its line, nor the folder the file is read from.
		files := []string{filepath.ToSlash(relTo(path, p.Chosen)), filepath.ToSlash(relTo(path, p.Rejected))}
		slices.Sort(files)
		q.Key = p.Prompt + "\x00" + files[0] + "\x00" + files[1]
		pairs[i] = q
	}
	s, err := rewards.NewPreferenceSet(set.Dims, pairs)
	if err != nil {
		return nil, fmt.Errorf("--pairs %s: %w", path, err)
	}
	o.Train.PairsSHA256 = hex.EncodeToString(sum[:])
	return s, nil
}
