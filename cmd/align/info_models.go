// The embedded default models as align info lists them: what each is, its size and storage,
// and the flag value that selects it. Read from the safetensors headers, no model is built.
package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/nn"
)

// embeddedModel is one default model in align info's report.
type embeddedModel struct {
	Name       string `json:"name"`
	What       string `json:"what"`       // e.g. "video generator, 8 frames of 32x32"
	Parameters int    `json:"parameters"` // elements of the weight tensors
	DType      string `json:"dtype"`      // the dtype holding most of the bytes
	Bytes      int    `json:"bytes"`
	Selects    string `json:"selects"` // the flags that use it
	Error      string `json:"error,omitempty"`
}

// embeddedModels describes the default models of this build (a -tags noembed build reads them
// from assets/ and reports the ones it could not read).
func embeddedModels() []embeddedModel {
	list := []struct {
		name, selects string
		b             []byte
	}{
		{"image-base", "--model default (no --model)", assets.ImageBase},
		{"video-base", "--video, --model default-video", assets.VideoBase},
		{"reward-image", "--reward default (images)", assets.RewardImage},
		{"reward-latent", "--reward default with --reward-guidance-scale (images)", assets.RewardLatent},
		{"reward-video", "--reward default (video generator), --reward default-video", assets.RewardVideo},
	}
	out := make([]embeddedModel, len(list))
	for i, m := range list {
		out[i] = describeModel(m.name, m.b)
		out[i].Selects = m.selects
	}
	return out
}

// describeModel reads what a model file is from its header: the parameter count (int8 scales
// not counted), the dtype of most of its bytes, and the kind, frames and dimensions of its
// config ("config" in the "align" metadata; a latent reward model's generator config inside).
func describeModel(name string, b []byte) embeddedModel {
	m := embeddedModel{Name: name, Bytes: len(b)}
	f, err := nn.ParseSafetensors(name, b)
	if err != nil {
		m.Error = err.Error()
		return m
	}
	bytesOf := map[nn.DType]int{}
	for _, t := range f.Tensors {
		if strings.HasSuffix(t.Name, ".q_scale") {
			continue
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		m.Parameters += n
		bytesOf[t.DType] += len(t.Data)
	}
	// The dtype of most bytes; equal counts go to the first name, so the report is stable.
	for _, d := range slices.Sorted(maps.Keys(bytesOf)) {
		if m.DType == "" || bytesOf[d] > bytesOf[nn.DType(m.DType)] {
			m.DType = string(d)
		}
	}
	var meta struct {
		Config struct {
			Kind       string   `json:"kind"`
			Frames     int      `json:"num_frames"`
			Size       int      `json:"sample_size"`
			Dims       []string `json:"dims"`
			RewardDims []string `json:"reward_dims"`
			Generator  *struct {
				Kind   string `json:"kind"`
				Frames int    `json:"num_frames"`
				Size   int    `json:"sample_size"`
			} `json:"generator"`
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(f.Metadata["align"]), &meta); err != nil {
		m.Error = fmt.Sprintf("%s: metadata: %v", name, err)
		return m
	}
	c := meta.Config
	shape := func(kind string, frames, size int) string {
		if kind == "video" {
			return fmt.Sprintf("%d frames of %dx%d", frames, size, size)
		}
		return fmt.Sprintf("%dx%d", size, size)
	}
	switch t := f.Metadata["model_type"]; {
	case c.Generator != nil:
		m.What = fmt.Sprintf("noise-aware latent %s reward %s, %s", c.Generator.Kind, strings.Join(c.Dims, ","),
			shape(c.Generator.Kind, c.Generator.Frames, c.Generator.Size))
	case strings.Contains(t, "reward"):
		m.What = fmt.Sprintf("%s reward %s, %s", c.Kind, strings.Join(c.Dims, ","), shape(c.Kind, c.Frames, c.Size))
	default:
		m.What = fmt.Sprintf("%s generator, %s, reward slot %s", c.Kind, shape(c.Kind, c.Frames, c.Size), strings.Join(c.RewardDims, ","))
	}
	return m
}
