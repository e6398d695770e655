//go:build noembed

package assets

import (
	"fmt"
	"os"
	"path/filepath"
)

// The default models of embed.go, read from $ALIGN_ASSETS (default ./assets) when the package
// is initialised. A missing file leaves its variable empty: the command that needs that model
// then fails reading it, and this message on stderr says where it was looked for.
var (
	RewardImage, ImageBase, RewardLatent = read(rewardImageFile), read(imageBaseFile), read(rewardLatentFile)
	VideoBase, RewardVideo               = read(videoBaseFile), read(rewardVideoFile)
)

func read(name string) []byte {
	dir := os.Getenv("ALIGN_ASSETS")
	if dir == "" {
		dir = "assets"
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fmt.Fprintf(os.Stderr, "align (built with -tags noembed): default model not read: %v (set ALIGN_ASSETS)\n", err)
	}
	return b
}
