// The reward-condition maxima of a model file: for each reward dimension the largest value
// the reward-condition slot was trained on (a high quantile of the training conditions), so
// that `--reward-condition vq=max` asks for the top of the range the model has seen rather
// than a fixed z = 3 (guidance.DefaultRewardConditionMax).
//
// Stored in the safetensors __metadata__ of the model file under "reward_condition_max" as a
// JSON object of z-scores, e.g. {"ta":1.87,"vq":2.31}; dimensions missing from it fall back
// to the default (NaN here). A loaded DiT carries them (DiT.RewardConditionMax) and saves
// them again, so they survive everything that rewrites a model: fine-tuning (dpo), adapter
// files, align export safetensors (which keeps all metadata).
//
// Test: go test ./diffusion -run RewardConditionMax

package diffusion

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/alignkit/align/nn"
)

// MetaRewardConditionMax is the metadata key of the reward-condition maxima.
const MetaRewardConditionMax = "reward_condition_max"

// RewardConditionMaxMap returns maxes (one per dims entry) as the metadata's JSON object:
// name -> value, NaN and infinite entries left out; nil when none is left or maxes is nil.
func RewardConditionMaxMap(dims []string, maxes []float64) (map[string]float64, error) {
	if maxes != nil && len(dims) != len(maxes) {
		return nil, fmt.Errorf("reward-condition maxima: %d values for %d dimensions", len(maxes), len(dims))
	}
	var m map[string]float64
	for d, v := range maxes {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			if m == nil {
				m = map[string]float64{}
			}
			m[dims[d]] = v
		}
	}
	return m, nil
}

// RewardConditionMaxOf is the inverse of RewardConditionMaxMap: one value per dims entry,
// NaN where m has none.
func RewardConditionMaxOf(m map[string]float64, dims []string) []float64 {
	out := make([]float64, len(dims))
	for d, name := range dims {
		out[d] = math.NaN()
		if v, ok := m[name]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[d] = v
		}
	}
	return out
}

// SetRewardConditionMax writes maxima (one per dims entry; NaN entries are left out) into
// c's metadata; nil maxes, or none finite, write nothing.
func SetRewardConditionMax(c *nn.Checkpoint, dims []string, maxes []float64) error {
	m, err := RewardConditionMaxMap(dims, maxes)
	if err != nil || m == nil {
		return err
	}
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if c.Extra == nil {
		c.Extra = map[string]string{}
	}
	c.Extra[MetaRewardConditionMax] = string(js)
	return nil
}

// RewardConditionMaxFromMeta parses the maxima of a metadata map for dims: nil when the key
// is absent, else one value per dimension, NaN where the file has none.
func RewardConditionMaxFromMeta(meta map[string]string, dims []string) ([]float64, error) {
	js, ok := meta[MetaRewardConditionMax]
	if !ok {
		return nil, nil
	}
	var m map[string]float64
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		return nil, fmt.Errorf("metadata %q: %w", MetaRewardConditionMax, err)
	}
	return RewardConditionMaxOf(m, dims), nil
}

// maxSafetensorsHeader bounds the header read by ReadRewardConditionMax (model headers are
// tens of kilobytes).
const maxSafetensorsHeader = 64 << 20

// ReadRewardConditionMax reads the maxima of the model file at path for dims from the
// safetensors header alone (the tensors are not read): nil when the file has none.
func ReadRewardConditionMax(path string, dims []string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	if n > maxSafetensorsHeader {
		return nil, fmt.Errorf("%s: safetensors header of %d bytes", path, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(buf, &h); err != nil {
		return nil, fmt.Errorf("%s: safetensors header: %w", path, err)
	}
	out, err := RewardConditionMaxFromMeta(h.Meta, dims)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
