//go:build !noembed

package assets

import _ "embed"

// RewardImage is the default image reward model (dimensions vq, ta): safetensors with its
// config, tokenizer and calibration, int8 weights with per-row scales, as written by `align
// reward train` then `align export safetensors --dtype int8`.
//
//go:embed reward-image.safetensors
var RewardImage []byte

// ImageBase is the default text-to-image generator (DiT, 32x32 RGB emoji) with its config
// and tokenizer, BF16 weights, as written by `align pretrain` then `align export safetensors`.
//
//go:embed image-base.safetensors
var ImageBase []byte

// RewardLatent is the default noise-aware latent reward model (dimensions vq, ta) for Flow-NRG
// gradient guidance of the default image generator, int8 weights with per-row scales, as
// written by `align reward train --latent` then `align export safetensors --dtype int8`.
//
//go:embed reward-latent.safetensors
var RewardLatent []byte

// VideoBase is the default text-to-video generator (DiT over tubelets, 8 frames of 32x32 RGB
// emoji clips, inflated from ImageBase) with its config and tokenizer, int8 weights with
// per-row scales, as written by `align pretrain --video` then `align export safetensors
// --dtype int8`.
//
//go:embed video-base.safetensors
var VideoBase []byte

// RewardVideo is the default video reward model (dimensions vq, ta, mq), BF16 weights, as
// written by `align reward train --video` then `align export safetensors`.
//
//go:embed reward-video.safetensors
var RewardVideo []byte
