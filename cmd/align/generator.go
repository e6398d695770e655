// The generator a command works on: --model PATH, or the embedded default image model when
// no path is given (there is no default video model yet).
package main

import (
	"errors"
	"fmt"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// defaultImageModel is the embedded default generator's file; tests swap it.
var defaultImageModel = assets.ImageBase

// errNoDefaultVideoModel is returned for --video without --model.
var errNoDefaultVideoModel = errors.New("no default video model is embedded yet; pass --model PATH\n" +
	"---> HINT: train one with `align pretrain --data data/emoji --video -o video/` and use video/model.safetensors")

// loadGenerator loads the model at path, or the embedded default image model for "", on
// dev. It returns the model and a name for reports.
func loadGenerator(dev kernels.Device, path string) (*diffusion.DiT, string, error) {
	if path == "" {
		m, err := diffusion.LoadDiTFromBytes(dev, "embedded default image model", defaultImageModel)
		return m, "default (embedded image-base)", err
	}
	m, err := diffusion.LoadDiT(dev, path)
	return m, path, err
}

// loadGeneratorKind is loadGenerator for commands with --video: the model's kind must match.
func loadGeneratorKind(dev kernels.Device, path string, video bool) (*diffusion.DiT, string, error) {
	if path == "" && video {
		return nil, "", usageError{errNoDefaultVideoModel}
	}
	m, name, err := loadGenerator(dev, path)
	if err != nil {
		return nil, "", err
	}
	switch {
	case video && m.Config.Kind != diffusion.KindVideo:
		return nil, "", usageError{fmt.Errorf("--video given but %s is an %s model", name, m.Config.Kind)}
	case !video && m.Config.Kind == diffusion.KindVideo:
		return nil, "", usageError{fmt.Errorf("%s is a video model; add --video", name)}
	}
	return m, name, nil
}
