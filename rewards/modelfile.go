// The file of a reward model: weights (F32), the architecture config, the tokenizer, the
// model type and the calibration in the safetensors metadata. Native and latent models share it.
//
// Test: go test ./rewards -run 'Native|Latent'

package rewards

import (
	"encoding/json"

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
