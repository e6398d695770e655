// The file of a reward model: weights (F32), the architecture config, the tokenizer, the
// model type and the calibration in the safetensors metadata. Native and latent models share
// it: modelCheckpoint writes it, modelTokenizer and modelCalibration read it back.
//
// Test: go test ./rewards -run 'Native|Latent'

package rewards

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/nn"
)

// modelCheckpoint packs a reward model's weights and metadata; calib may be nil.
func modelCheckpoint(config any, tok *diffusion.Tokenizer, calib *Calibration, modelType string, params []nn.Param) (*nn.Checkpoint, error) {
	cfg, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	tj, err := json.Marshal(tok)
	if err != nil {
		return nil, err
	}
	extra := map[string]string{metaTokenizer: string(tj), metaModelType: modelType}
	if calib != nil {
		if err := calib.Validate(); err != nil {
			return nil, err
		}
		cal, err := json.Marshal(calib)
		if err != nil {
			return nil, err
		}
		extra[metaCalibration] = string(cal)
	}
	return &nn.Checkpoint{Tensors: nn.HostParams(params, nn.F32), Config: cfg, Extra: extra}, nil
}

// modelTokenizer reads the tokenizer modelCheckpoint stored; errors name src.
func modelTokenizer(c *nn.Checkpoint, src string) (*diffusion.Tokenizer, error) {
	tok := &diffusion.Tokenizer{}
	if err := json.Unmarshal([]byte(c.Extra[metaTokenizer]), tok); err != nil {
		return nil, fmt.Errorf("%s: tokenizer: %w", src, err)
	}
	return tok, nil
}

// modelCalibration reads the calibration modelCheckpoint stored and checks it against the
// model's dims; nil when the file has none. Errors name src.
func modelCalibration(c *nn.Checkpoint, src string, dims []string) (*Calibration, error) {
	js, ok := c.Extra[metaCalibration]
	if !ok {
		return nil, nil
	}
	cal := &Calibration{}
	if err := json.Unmarshal([]byte(js), cal); err != nil {
		return nil, fmt.Errorf("%s: calibration: %w", src, err)
	}
	if err := cal.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if !slices.Equal(cal.Dims, dims) {
		return nil, fmt.Errorf("%s: calibration dims %v, model dims %v", src, cal.Dims, dims)
	}
	return cal, nil
}

// SetCalibration replaces the calibration in the file of a native reward model (c, as read)
// with cal, which must be valid and name the model's dimensions in order; the weights and
// every other metadata entry are kept as they are. A noise-aware latent model is refused:
// its statistics span the noise levels it guides at (CalibrateLatent), which clean samples
// cannot stand for.
func SetCalibration(c *nn.Checkpoint, cal *Calibration) error {
	src := c.Source()
	switch t := ModelTypeOf(c); t {
	case ModelTypeNative:
	case ModelTypeLatent:
		return fmt.Errorf("%s: a noise-aware latent reward model keeps the statistics of noisy samples at every noise level "+
			"(align reward train --latent fits them); clean samples cannot recalibrate it", src)
	default:
		return fmt.Errorf("%s: model_type %q is not a native reward model (%q)", src, t, ModelTypeNative)
	}
	var cfg NativeConfig
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return fmt.Errorf("%s: config: %w", src, err)
	}
	if err := cal.Validate(); err != nil {
		return err
	}
	if !slices.Equal(cal.Dims, cfg.Dims) {
		return fmt.Errorf("%s: calibration dims %v, model dims %v", src, cal.Dims, cfg.Dims)
	}
	js, err := json.Marshal(cal)
	if err != nil {
		return err
	}
	if c.Extra == nil {
		c.Extra = map[string]string{}
	}
	c.Extra[metaCalibration] = string(js)
	return nil
}
