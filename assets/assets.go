// Package assets embeds the default models, so every command works on a fresh machine
// without downloading weights. Each file's provenance (command, code version, data, log,
// measured quality) is in assets/README.md; the data licences are in assets/NOTICE.
//
// Test: go test ./assets
package assets

import _ "embed"

// RewardImage is the default image reward model (dimensions vq, ta): safetensors with its
// config, tokenizer and calibration, as written by `align reward train`.
//
//go:embed reward-image.safetensors
var RewardImage []byte

// ImageBase is the default text-to-image generator (DiT, 32x32 RGB emoji) with its config
// and tokenizer, BF16 weights, as written by `align pretrain` then `align export safetensors`.
//
//go:embed image-base.safetensors
var ImageBase []byte

// RewardLatent is the default noise-aware latent reward model (dimensions vq, ta) for Flow-NRG
// gradient guidance of the default image generator, BF16 weights, as written by `align reward
// train --latent` then `align export safetensors`.
//
//go:embed reward-latent.safetensors
var RewardLatent []byte
