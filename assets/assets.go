// Package assets embeds the default models, so every command works on a fresh machine
// without downloading weights. Each file's provenance (command, code version, data, log,
// measured quality) is in assets/README.md; the data licences are in assets/NOTICE.
//
// A binary built with -tags noembed (files.go) leaves them out, 37 MB less, and reads them at
// start-up from the folder $ALIGN_ASSETS (default ./assets): for copying a binary to a machine
// that already has a checkout.
//
// Test: go test ./assets
package assets

// The default models' file names, in this folder.
const (
	rewardImageFile  = "reward-image.safetensors"
	imageBaseFile    = "image-base.safetensors"
	rewardLatentFile = "reward-latent.safetensors"
	videoBaseFile    = "video-base.safetensors"
	rewardVideoFile  = "reward-video.safetensors"
)
