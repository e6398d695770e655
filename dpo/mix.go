// Fine-tunings of one base mixed in weight space (rewarded soups, arXiv 2306.04488):
//
//	W_mix = W + Σ_i w_i ΔW_i
//
// where ΔW_i is an adapter file's update, (alpha_i/r_i) B_i A_i on the layers it targets, or
// a fully fine-tuned model file's task vector, W_i - W on every weight. A fine-tuned model
// file qualifies when it records the weights it started from: align finetune writes
// base_model and base_model_crc32c (baseFingerprint of the starting weights) into
// model.safetensors, as into adapter files, so that W_i - W is only ever taken against
// those weights.
//
// Test: go test ./dpo -run 'LoRAMerge|Mix'

package dpo

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/nn"
)

// FinetuneBase reports whether c is a fine-tuning that can be mixed into its base (an
// adapter file, or a model file that records its base model) and returns the base model file
// it started from ("" for the embedded default image model).
func FinetuneBase(c *nn.Checkpoint) (base string, ok bool) {
	if base, ok := AdapterBase(c); ok {
		return base, true
	}
	if c.Extra[metaModelType] != modelTypeDiT || c.Extra[metaBaseCRC] == "" {
		return "", false
	}
	return c.Extra[metaBaseModel], true
}

// recordBase writes into model file c the base model it was fine-tuned from and the
// fingerprint of those weights (hex), which make it mixable by MergeAdapters.
func recordBase(c *nn.Checkpoint, baseModel, crc string) {
	c.Extra[metaBaseModel], c.Extra[metaBaseCRC] = baseModel, crc
}

// MergeAdapters merges the fine-tunings cs into m with the weights ws: W + Σ_i w_i ΔW_i,
// ΔW_i an adapter's (alpha_i/r_i) B_i A_i or a fine-tuned model file's W_i - W. Every one
// must have been trained from m's weights as they are (ApplyAdapter's checks, all made before
// any merge); m's reward-condition maxima become theirs where they have some, which must
// then agree. An adapter whose tensors fail to load leaves m partly merged: discard it on an
// error.
func MergeAdapters(m *diffusion.DiT, cs []*nn.Checkpoint, ws []float64) error {
	if len(cs) != len(ws) {
		return fmt.Errorf("dpo: %d adapters and %d weights", len(cs), len(ws))
	}
	crc := baseFingerprint(m)
	as := make([]adapter, len(cs))
	var maxFrom *adapter
	for i, c := range cs {
		a, err := checkAdapter(m, c, crc)
		if err != nil {
			return err
		}
		as[i] = a
		if a.maxes == nil {
			continue
		}
		if maxFrom != nil && !slices.EqualFunc(maxFrom.maxes, a.maxes, sameMax) {
			return fmt.Errorf("%s and %s carry different reward-condition maxima (%v, %v): fine-tunings of reward-cond runs on other data "+
				"do not mix", maxFrom.c.Path, c.Path, maxFrom.maxes, a.maxes)
		}
		maxFrom = &as[i]
	}
	mergeTaskVectors(m, as, ws) // before the adapters: W_i - W is taken against the base
	for i := range as {
		if as[i].full {
			continue
		}
		ls, err := as[i].attach(m)
		if err != nil {
			return err
		}
		for _, l := range ls {
			l.MergeLoRAWeighted(float32(ws[i]))
		}
	}
	if maxFrom != nil {
		m.RewardConditionMax = maxFrom.maxes
	}
	m.SetTrainable(true) // as a plain model file loads
	return nil
}

// mergeTaskVectors adds Σ_i w_i (W_i - W) over the fine-tuned model files among as to every
// weight W of m, summed in float64 and rounded once.
func mergeTaskVectors(m *diffusion.DiT, as []adapter, ws []float64) {
	var full []int
	for i := range as {
		if as[i].full {
			full = append(full, i)
		}
	}
	if len(full) == 0 {
		return
	}
	var w []float32
	for _, p := range m.Params() {
		w = slices.Grow(w[:0], p.W.Len())[:p.W.Len()]
		p.W.Dev.CopyToHost(w, p.W)
		for j, base := range w {
			acc := float64(base)
			for _, i := range full {
				acc += ws[i] * (float64(as[i].weights[p.Name][j]) - float64(base))
			}
			w[j] = float32(acc)
		}
		p.W.Dev.CopyFromHost(p.W, w)
	}
}

// sameMax reports whether two reward-condition maxima agree: equal, or both absent (NaN).
func sameMax(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// ErrOtherBase is the error of a fine-tuning applied to weights other than those it was
// trained from.
var ErrOtherBase = errors.New("trained on other base weights")

// adapter is a fine-tuning file checked against the model it is to be applied to: an adapter
// file, or (full) a fine-tuned model file.
type adapter struct {
	c       *nn.Checkpoint
	lora    LoRAConfig
	full    bool
	weights map[string][]float32 // full: the file's weights by parameter name
	maxes   []float64            // reward-condition maxima; nil: none
}

// checkAdapter checks that c is a fine-tuning of m, whose weights' fingerprint is crc: its
// metadata, m's config, the fingerprint it was trained from (required of model files; adapter
// files without one are not checked) and, for a model file, its tensors.
func checkAdapter(m *diffusion.DiT, c *nn.Checkpoint, crc uint32) (adapter, error) {
	a := adapter{c: c}
	path := c.Source()
	switch c.Extra[metaModelType] {
	case modelTypeLoRA:
		if err := json.Unmarshal([]byte(c.Extra[metaLoRA]), &a.lora); err != nil {
			return a, fmt.Errorf("%s: lora metadata: %w", path, err)
		}
		if err := a.lora.Validate(); err != nil {
			return a, fmt.Errorf("%s: %w", path, err)
		}
	case modelTypeDiT:
		if c.Extra[metaBaseCRC] == "" {
			return a, fmt.Errorf("%s: a model file that records no base model (%s): only a fine-tuning written by align finetune "+
				"mixes, as its difference from the weights it started from", path, metaBaseCRC)
		}
		a.full = true
	default:
		return a, fmt.Errorf("%s: neither a LoRA adapter file nor a fine-tuned model file (model_type %q)", path, c.Extra[metaModelType])
	}
	cfg, err := diffusion.ParseModelConfig(c.Config)
	if err != nil {
		return a, fmt.Errorf("%s: %w", path, err)
	}
	if !m.Config.Equal(&cfg) {
		return a, fmt.Errorf("%s: fine-tuning of another model (%s)", path, m.Config.Diff(&cfg))
	}
	if m.HasLoRA() {
		return a, fmt.Errorf("%s: the model already carries adapters", path)
	}
	if hex, ok := c.Extra[metaBaseCRC]; ok {
		want, err := strconv.ParseUint(hex, 16, 32)
		if err != nil {
			return a, fmt.Errorf("%s: metadata %s %q: %w", path, metaBaseCRC, hex, err)
		}
		if crc != uint32(want) {
			return a, fmt.Errorf("%s: %w (CRC-32C %08x, these are %08x): the base model changed after the fine-tuning",
				path, ErrOtherBase, want, crc)
		}
	}
	if a.full {
		if a.weights, err = modelWeights(m, c); err != nil {
			return a, err
		}
	}
	a.maxes, err = diffusion.RewardConditionMaxFromMeta(c.Extra, cfg.RewardDims)
	if err != nil {
		return a, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// modelWeights maps m's parameter names to model file c's tensors of the same names, which
// must be one of each shape.
func modelWeights(m *diffusion.DiT, c *nn.Checkpoint) (map[string][]float32, error) {
	ps := m.Params()
	if len(c.Tensors) != len(ps) {
		return nil, fmt.Errorf("%s: %d tensors, the model has %d parameters", c.Source(), len(c.Tensors), len(ps))
	}
	out := make(map[string][]float32, len(ps))
	for _, p := range ps {
		t := c.Tensor(p.Name)
		if t == nil || !slices.Equal(t.Shape, p.W.Shape) {
			return nil, fmt.Errorf("%s: no tensor %s of shape %v", c.Source(), p.Name, p.W.Shape)
		}
		out[p.Name] = t.Data
	}
	return out, nil
}
