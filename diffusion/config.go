// ModelConfig: the architecture of a DiT velocity model (dit.go), stored as JSON in the
// metadata of every model file so that a file always rebuilds the model it was saved from.
//
// Test: go test ./diffusion -run Config

package diffusion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Model kinds.
const (
	KindImage = "image"
	KindVideo = "video"
)

// ModelConfig sizes a DiT. The JSON names follow diffusers' transformer configs where one
// exists (sample_size, in_channels, patch_size, num_layers, num_attention_heads).
//
// Sequence per sample: MaxTextLen text tokens, then P = (Frames/TubeletFrames) *
// (ImageSize/PatchSize)^2 patch tokens, all of width Width.
type ModelConfig struct {
	Kind          string `json:"kind"`           // "image" or "video"
	ImageSize     int    `json:"sample_size"`    // H = W, e.g. 32
	Channels      int    `json:"in_channels"`    // e.g. 3 (RGB)
	Frames        int    `json:"num_frames"`     // T: 1 for images, e.g. 8 for video
	PatchSize     int    `json:"patch_size"`     // p, e.g. 2
	TubeletFrames int    `json:"tubelet_frames"` // pt: frames per tubelet, 1 for images

	Width    int     `json:"hidden_size"`         // C, e.g. 256
	Depth    int     `json:"num_layers"`          // DiT blocks, e.g. 6
	Heads    int     `json:"num_attention_heads"` // NH, e.g. 4 (C/NH per head)
	MLPRatio float64 `json:"mlp_ratio"`           // MLP hidden = MLPRatio*C, e.g. 4

	TextLayers int `json:"text_layers"`  // pre-LN blocks of the text encoder, e.g. 2
	TextWidth  int `json:"text_width"`   // text encoder width; projected to C when different
	TextHeads  int `json:"text_heads"`   // text encoder heads
	MaxTextLen int `json:"max_text_len"` // tokens per caption (the tokenizer's MaxLen), e.g. 16
	VocabSize  int `json:"vocab_size"`   // tokenizer vocabulary, special tokens included
	RewardFreq int `json:"reward_freq"`  // sinusoidal features per reward dimension, e.g. 64

	// RewardDims names the reward-condition dimensions, e.g. ["vq","ta"]; empty means the
	// model has no reward slot.
	RewardDims []string `json:"reward_dims"`
	// Shift is the default SD3 timestep shift for sampling.
	Shift float64 `json:"shift"`
}

// DefaultImageConfig is the architecture of the default text-to-image model (32x32 RGB,
// 4x4 patches: 64 patch tokens + 16 text tokens, 9.5M parameters with the emoji
// vocabulary). Patches of 2x2 (272 tokens) cost about 3x as much per step on the CPU. The
// vocabulary size is set from the tokenizer when the model is built for training.
func DefaultImageConfig() ModelConfig {
	return ModelConfig{Kind: KindImage, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 256, Depth: 6, Heads: 4, MLPRatio: 4,
		TextLayers: 2, TextWidth: 256, TextHeads: 4, MaxTextLen: 16, VocabSize: 3, RewardFreq: 64,
		RewardDims: []string{}, Shift: 1}
}

// DefaultVideoConfig is the architecture of the default short-video model (8 frames of
// 32x32 RGB, tubelets of 2 frames and 4x4 pixels).
func DefaultVideoConfig() ModelConfig {
	c := DefaultImageConfig()
	c.Kind, c.Frames, c.TubeletFrames, c.PatchSize = KindVideo, 8, 2, 4
	return c
}

var rewardDimName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Validate checks the config and returns every problem found, joined.
func (c *ModelConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Kind {
	case KindImage:
		if c.Frames != 1 {
			bad("num_frames is %d; an image model has 1", c.Frames)
		}
		if c.TubeletFrames != 1 {
			bad("tubelet_frames is %d; an image model has 1", c.TubeletFrames)
		}
	case KindVideo:
		if c.Frames < 1 {
			bad("num_frames must be >= 1, got %d", c.Frames)
		}
		if c.TubeletFrames < 1 {
			bad("tubelet_frames must be >= 1, got %d", c.TubeletFrames)
		} else if c.Frames >= 1 && c.Frames%c.TubeletFrames != 0 {
			bad("num_frames %d is not a multiple of tubelet_frames %d", c.Frames, c.TubeletFrames)
		}
	default:
		bad("kind is %q, want %q or %q", c.Kind, KindImage, KindVideo)
	}
	if c.ImageSize < 1 {
		bad("sample_size must be >= 1, got %d", c.ImageSize)
	}
	if c.Channels < 1 {
		bad("in_channels must be >= 1, got %d", c.Channels)
	}
	if c.PatchSize < 1 {
		bad("patch_size must be >= 1, got %d", c.PatchSize)
	} else if c.ImageSize >= 1 && c.ImageSize%c.PatchSize != 0 {
		bad("sample_size %d is not a multiple of patch_size %d", c.ImageSize, c.PatchSize)
	}
	if c.Width < 4 || c.Width%4 != 0 {
		bad("hidden_size must be a positive multiple of 4 (position table), got %d", c.Width)
	}
	if c.Depth < 1 {
		bad("num_layers must be >= 1, got %d", c.Depth)
	}
	if c.Heads < 1 {
		bad("num_attention_heads must be >= 1, got %d", c.Heads)
	} else if c.Width > 0 && c.Width%c.Heads != 0 {
		bad("num_attention_heads %d does not divide hidden_size %d", c.Heads, c.Width)
	}
	if !(c.MLPRatio > 0) || math.IsInf(c.MLPRatio, 0) || int(c.MLPRatio*float64(c.Width)) < 1 {
		bad("mlp_ratio must be a positive number, got %v", c.MLPRatio)
	}
	if c.TextLayers < 0 {
		bad("text_layers must be >= 0, got %d", c.TextLayers)
	}
	if c.TextWidth < 2 || c.TextWidth%2 != 0 {
		bad("text_width must be a positive even number (position table), got %d", c.TextWidth)
	}
	if c.TextHeads < 1 {
		bad("text_heads must be >= 1, got %d", c.TextHeads)
	} else if c.TextWidth > 0 && c.TextWidth%c.TextHeads != 0 {
		bad("text_heads %d does not divide text_width %d", c.TextHeads, c.TextWidth)
	}
	if c.MaxTextLen < 1 {
		bad("max_text_len must be >= 1, got %d", c.MaxTextLen)
	}
	if c.VocabSize < len(specialTokens) {
		bad("vocab_size must be >= %d (the special tokens), got %d", len(specialTokens), c.VocabSize)
	}
	if len(c.RewardDims) > 0 && (c.RewardFreq < 2 || c.RewardFreq%2 != 0) {
		bad("reward_freq must be a positive even number, got %d", c.RewardFreq)
	}
	seen := map[string]bool{}
	for _, d := range c.RewardDims {
		if !rewardDimName.MatchString(d) {
			bad("reward dimension %q: names are lower-case letters, digits and _, starting with a letter", d)
		}
		if seen[d] {
			bad("reward dimension %q appears twice", d)
		}
		seen[d] = true
	}
	if !(c.Shift > 0) || math.IsInf(c.Shift, 0) {
		bad("shift must be a positive number, got %v", c.Shift)
	}
	if len(errs) > 0 {
		return fmt.Errorf("model config: %w", errors.Join(errs...))
	}
	return nil
}

// SampleShape is the shape of one sample: (C,H,W) for images, (T,C,H,W) for videos.
func (c ModelConfig) SampleShape() []int {
	if c.Kind == KindVideo {
		return []int{c.Frames, c.Channels, c.ImageSize, c.ImageSize}
	}
	return []int{c.Channels, c.ImageSize, c.ImageSize}
}

// SampleSize is the number of values of one sample, the product of SampleShape.
func (c ModelConfig) SampleSize() int {
	n := 1
	for _, d := range c.SampleShape() {
		n *= d
	}
	return n
}

// BatchShape is (B, SampleShape...).
func (c ModelConfig) BatchShape(B int) []int { return append([]int{B}, c.SampleShape()...) }

// NumPatches is P, the patch (tubelet) tokens per sample.
func (c ModelConfig) NumPatches() int {
	g := c.ImageSize / c.PatchSize
	return (c.Frames / c.TubeletFrames) * g * g
}

// SeqLen is the length of the joined attention sequence, MaxTextLen + P.
func (c ModelConfig) SeqLen() int { return c.MaxTextLen + c.NumPatches() }

// MarshalJSON writes the config with the reward dimensions as a list, never null.
func (c ModelConfig) MarshalJSON() ([]byte, error) {
	type plain ModelConfig
	p := plain(c)
	if p.RewardDims == nil {
		p.RewardDims = []string{}
	}
	return json.Marshal(p)
}

// ParseModelConfig decodes a config from JSON, refusing unknown fields, and validates it.
func ParseModelConfig(b []byte) (ModelConfig, error) {
	var c ModelConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return ModelConfig{}, fmt.Errorf("model config: %w", err)
	}
	if c.RewardDims == nil {
		c.RewardDims = []string{}
	}
	if err := c.Validate(); err != nil {
		return ModelConfig{}, err
	}
	return c, nil
}

// Equal reports whether two configs describe the same architecture.
func (c *ModelConfig) Equal(o *ModelConfig) bool {
	return c.Diff(o) == ""
}

// Diff lists the fields in which o differs from c, as "name: a vs b".
func (c *ModelConfig) Diff(o *ModelConfig) string {
	var ma, mb map[string]any
	ja, _ := json.Marshal(c)
	jb, _ := json.Marshal(o)
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	var out []string
	for k, va := range ma {
		if vb := mb[k]; fmt.Sprint(va) != fmt.Sprint(vb) {
			out = append(out, fmt.Sprintf("%s: %v vs %v", k, va, vb))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// ParamCount is the number of parameters of a DiT with this config.
func (c ModelConfig) ParamCount() int {
	C, Ct, H := c.Width, c.TextWidth, int(c.MLPRatio*float64(c.Width))
	Ht := int(c.MLPRatio * float64(c.TextWidth))
	F := c.Channels * c.TubeletFrames * c.PatchSize * c.PatchSize
	n := F*C + C             // x_embedder
	n += 256*C + C + C*C + C // t_embedder
	n += c.VocabSize * Ct    // token embedding
	n += c.TextLayers * (4*Ct + 3*Ct*Ct + 3*Ct + Ct*Ct + Ct + 2*Ct*Ht + Ht + Ct)
	n += 2 * Ct // final norm
	if Ct != C {
		n += Ct*C + C // text_proj
	}
	n += C*C + C // pooled_text_proj
	if D := len(c.RewardDims); D > 0 {
		n += D*c.RewardFreq + D*c.RewardFreq*C + C + C*C + C
	}
	n += c.Depth * (3*C*C + 3*C + C*C + C + 2*C*H + H + C + 6*C*C + 6*C)
	n += C*F + F + 2*C*C + 2*C // final layer
	return n
}

// ForwardFLOPs counts the matrix-multiply flops (2 per multiply-add) of one sample's forward
// pass; a training step costs about three times this (backward = 2x forward). With P patch
// tokens of F features, Lt text tokens, T = Lt + P, hidden sizes H = MLPRatio*C and
// Ht = MLPRatio*Ct:
//
//	patch embedding 2*P*F*C;  timestep MLP 2*(256*C + C*C);  pooled text 2*C*C
//	text block      2*Lt*(4*Ct^2 + 2*Ct*Ht) + 4*Lt^2*Ct   (+ 2*Lt*Ct*C projection if Ct != C)
//	DiT block       2*T*(4*C^2 + 2*C*H) + 4*T^2*C + 2*C*6C (adaLN)
//	final layer     2*C*2C + 2*P*C*F
//	reward slot     2*(D*RewardFreq*C + C*C) when there are D reward dimensions
func (c ModelConfig) ForwardFLOPs() float64 {
	C := float64(c.Width)
	H := c.MLPRatio * C
	P, Lt := float64(c.NumPatches()), float64(c.MaxTextLen)
	T := Lt + P
	F := float64(c.Channels * c.TubeletFrames * c.PatchSize * c.PatchSize)
	f := 2*P*F*C + 2*(256*C+C*C) + c.TextFLOPs()
	f += float64(c.Depth) * (2*T*(4*C*C+2*C*H) + 4*T*T*C + 2*C*6*C)
	f += 2*C*2*C + 2*P*C*F
	if D := float64(len(c.RewardDims)); D > 0 {
		f += 2 * (D*float64(c.RewardFreq)*C + C*C)
	}
	return f
}

// TextFLOPs is the part of ForwardFLOPs that depends on the captions alone (the text
// blocks, the projection, the pooled text's): a sampling run encodes its captions once
// (DiT.EncodeText), so its flops are steps*(ForwardFLOPs - TextFLOPs) + TextFLOPs a
// sample and branch (SampleFLOPs).
func (c ModelConfig) TextFLOPs() float64 {
	C, Ct := float64(c.Width), float64(c.TextWidth)
	Ht, Lt := c.MLPRatio*Ct, float64(c.MaxTextLen)
	f := float64(c.TextLayers)*(2*Lt*(4*Ct*Ct+2*Ct*Ht)+4*Lt*Lt*Ct) + 2*C*C
	if c.TextWidth != c.Width {
		f += 2 * Lt * Ct * C
	}
	return f
}

// SampleFLOPs counts a sampling run's matrix-multiply flops for n model evaluations of a
// sample per step (2 with classifier-free guidance) over steps steps, the captions encoded
// once per run.
func (c ModelConfig) SampleFLOPs(steps, n int) float64 {
	return float64(n) * (float64(steps)*(c.ForwardFLOPs()-c.TextFLOPs()) + c.TextFLOPs())
}
