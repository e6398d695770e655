// Preference pairs of align reward train --pairs and align reward eval --preferences: a
// labelled pairs file read at the reward model's geometry (rewards/preferences.go).
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

// preferenceFile is a labelled pairs file read: its label dimensions, its pairs (with the
// files of their samples A and B, A the chosen one) and the sha256 of its bytes.
type preferenceFile struct {
	dims   []string
	pairs  []rewards.PreferencePair
	files  [][2]string
	sha256 string
}

// readPreferenceLabels reads the pairs file at path (align's pairs JSONL or VideoAlign's CSV
// with its Overall column where it has one, dpo.ReadPairs) without its samples. Every pair must carry labels: a pair without them says
// which sample is better, not in which dimension.
func readPreferenceLabels(path string) (*preferenceFile, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder: its w/ and l/ pairs say which sample is better, not in which dimension; "+
			"a reward model needs labels per dimension (align's pairs JSONL with \"labels\", or VideoAlign's CSV)", path)
	}
	b, sum, err := readHashed(path)
	if err != nil {
		return nil, err
	}
	set, err := dpo.DecodePairs(bytes.NewReader(b), path, dpo.PairOptions{Ties: dpo.TiesKeep, Overall: true})
	if err != nil {
		return nil, err
	}
	f := &preferenceFile{dims: set.Dims, pairs: make([]rewards.PreferencePair, len(set.Pairs)), files: make([][2]string, len(set.Pairs)), sha256: sum}
	for i, p := range set.Pairs {
		if p.Labels == nil {
			return nil, fmt.Errorf("%s: no labels; a reward model learns from a label per dimension, e.g. \"labels\": {\"vq\": \"A\", \"ta\": \"tie\"}", p.Source)
		}
		q := rewards.PreferencePair{Prompt: p.Prompt, Labels: make([]rewards.Label, len(set.Dims)), Source: p.Source.String()}
		for d, dim := range set.Dims {
			q.Labels[d] = p.Labels[dim]
		}
		// The held-out split follows the pair's prompt and files as named relative to the
		// file, in either order: not its line, nor the folder the file is read from.
		files := []string{filepath.ToSlash(relTo(path, p.Chosen)), filepath.ToSlash(relTo(path, p.Rejected))}
		slices.Sort(files)
		q.Key = p.Prompt + "\x00" + files[0] + "\x00" + files[1]
		f.pairs[i], f.files[i] = q, [2]string{p.Chosen, p.Rejected}
	}
	return f, nil
}

// readPreferenceFile reads the pairs file at path (readPreferenceLabels) with its samples at
// geom (rewardSampleGeometry).
func readPreferenceFile(path string, geom *diffusion.ModelConfig) (*preferenceFile, error) {
	f, err := readPreferenceLabels(path)
	if err != nil {
		return nil, err
	}
	for i := range f.pairs {
		q := &f.pairs[i]
		if q.A, err = dpo.LoadSample(f.files[i][0], geom); err != nil {
			return nil, fmt.Errorf("%s: %w", q.Source, err)
		}
		if q.B, err = dpo.LoadSample(f.files[i][1], geom); err != nil {
			return nil, fmt.Errorf("%s: %w", q.Source, err)
		}
	}
	return f, nil
}

// checkPreferenceDims refuses a preference file (path) labelling fileDims for a model of
// dims when they have no dimension in common.
func checkPreferenceDims(path string, fileDims, dims []string) error {
	if !slices.ContainsFunc(fileDims, func(d string) bool { return slices.Contains(dims, d) }) {
		return usageError{fmt.Errorf("--preferences %s labels %v; the model's dimensions are %v", path, fileDims, dims)}
	}
	return nil
}

// readHashed reads the file at path once, so that the bytes hashed are the bytes parsed, and
// returns them with their sha256 in hex.
func readHashed(path string) ([]byte, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

// rewardSampleGeometry is the geometry a reward model's samples are read at: a sample shape
// (3,S,S) for images or (T,3,S,S) for clips.
func rewardSampleGeometry(shape []int) *diffusion.ModelConfig {
	n := len(shape)
	geom := &diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: shape[n-1], Channels: shape[n-3], Frames: 1}
	if n == 4 {
		geom.Kind, geom.Frames = diffusion.KindVideo, shape[0]
	}
	return geom
}

// dataSampleShape is the sample shape of the dataset at dir (its manifest's size; clips of
// its frames for video): what a reward model trained on it reads.
func dataSampleShape(dir string, video bool) ([]int, error) {
	m, err := dataset.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if video {
		return []int{m.Frames, m.Channels, m.ImageSize, m.ImageSize}, nil
	}
	return []int{m.Channels, m.ImageSize, m.ImageSize}, nil
}

// loadPreferences reads --pairs (nil, nil without it) and records its sha256 in opts.Train,
// so that checkpoints hold it and a resume compares it.
func (o *RewardTrainOptions) loadPreferences() (*rewards.PreferenceSet, error) {
	if o.Train.Pairs == "" {
		return nil, nil
	}
	shape, err := dataSampleShape(o.Data, o.Video)
	if err != nil {
		return nil, err
	}
	f, err := readPreferenceFile(o.Train.Pairs, rewardSampleGeometry(shape))
	if err != nil {
		return nil, fmt.Errorf("--pairs: %w", err)
	}
	s, err := rewards.NewPreferenceSet(f.dims, f.pairs)
	if err != nil {
		return nil, fmt.Errorf("--pairs %s: %w", o.Train.Pairs, err)
	}
	o.Train.PairsSHA256 = f.sha256
	return s, nil
}
