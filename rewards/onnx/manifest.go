// The manifest: a JSON file beside an .onnx reward model that says how to feed it (image
// input name, layout, size, resize, normalisation; text input and tokenizer) and how to read
// it (output names mapped to reward dimensions; calibration). The format is described in the
// package documentation (doc.go).
//
// Test: go test ./rewards/onnx -run Manifest; fuzz: go test ./rewards/onnx -run '^$' -fuzz FuzzParseManifest -fuzztime 30s
package onnx

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alignkit/align/internal/strictjson"
	"github.com/alignkit/align/rewards"
)

// ManifestFormat and ManifestVersion identify the manifest format.
const (
	ManifestFormat  = "align.onnx-reward"
	ManifestVersion = 1
)

// Pixel layouts. N is the batch, C the 3 colour channels (RGB), T frames, H x W pixels.
const (
	LayoutNCHW  = "NCHW"
	LayoutNHWC  = "NHWC"
	LayoutNTCHW = "NTCHW"
	LayoutNCTHW = "NCTHW"
	LayoutNTHWC = "NTHWC"
)

// Layouts lists the pixel layouts; the last three are clip layouts.
var Layouts = []string{LayoutNCHW, LayoutNHWC, LayoutNTCHW, LayoutNCTHW, LayoutNTHWC}

// Resize modes: how an image of any size becomes Height x Width.
const (
	ResizeStretch = "stretch" // resize to Height x Width, aspect ratio ignored
	ResizeShorter = "shorter" // shorter side to fit, then centre crop (CLIP, ImageReward)
	ResizeLonger  = "longer"  // longer side to fit, then centre pad with PadValue (HPSv2)
	ResizeNone    = "none"    // the input must already be Height x Width
)

// Resampling filters (as PIL's, with antialiasing when downsampling).
const (
	FilterNearest  = "nearest"
	FilterBilinear = "bilinear"
	FilterBicubic  = "bicubic"
	FilterBox      = "box"
)

// Tokenizers of the text input.
const (
	TokenizerWord    = "word"     // align's word tokenizer (diffusion.Tokenizer) with Vocab
	TokenizerCLIPBPE = "clip-bpe" // CLIP's byte-level BPE (merges file, optional vocab.json)
)

// Clip reductions of image models given clips.
const (
	ClipMean   = "mean"   // score every frame, average per clip
	ClipReject = "reject" // a clip is an error
)

// Manifest describes an ONNX reward model.
type Manifest struct {
	Format  string `json:"format"`  // ManifestFormat
	Version int    `json:"version"` // ManifestVersion
	Name    string `json:"name,omitempty"`
	// Model is the .onnx file, relative to the manifest's directory (or absolute).
	Model string `json:"model"`
	// MaxBatch is the largest batch the graph accepts (some exports fix it to 1); 0: any.
	MaxBatch int `json:"max_batch,omitempty"`

	Image   ImageSpec    `json:"image"`
	Text    *TextSpec    `json:"text,omitempty"` // nil: the model reads no text
	Outputs []OutputSpec `json:"outputs"`
	// Calibration is the per-dimension mean and std of raw scores (dims in output order);
	// nil: z-scores equal raw scores.
	Calibration *rewards.Calibration `json:"calibration,omitempty"`

	dir string // the manifest's directory (set by LoadManifest)
}

// ImageSpec is the pixel input.
type ImageSpec struct {
	Input  string `json:"input"`  // the graph input's name, e.g. "pixel_values"
	Layout string `json:"layout"` // one of Layouts
	Sizing
	Frames int `json:"frames,omitempty"` // T, clip layouts only
	// FPS is the rate the model's training clips were taken at, frames per second (clip
	// layouts; 0: not known): align score warns when it samples clips otherwise.
	FPS float64 `json:"fps,omitempty"`
	// Range is the largest pixel value before normalisation: 1 (default) or 255.
	Range float64 `json:"range,omitempty"`
	// Mean and Std normalise each channel: x' = (x - mean_c)/std_c with x in [0, Range].
	// Absent: mean 0, std 1.
	Mean []float64 `json:"mean,omitempty"`
	Std  []float64 `json:"std,omitempty"`
}

// Sizing is how a frame of any size becomes the model's input size, and what an image model
// does with clips: the part of the image block an ONNX manifest and a remote model's
// (rewards/remote) share.
type Sizing struct {
	Size   int    `json:"size,omitempty"`   // shorthand for Height = Width = Size
	Height int    `json:"height,omitempty"` // H
	Width  int    `json:"width,omitempty"`  // W
	Resize string `json:"resize,omitempty"` // default "shorter"
	Filter string `json:"filter,omitempty"` // default "bicubic"
	// PadValue fills the border of ResizeLonger, in [0, 1] pixel units before normalisation.
	PadValue float64 `json:"pad_value,omitempty"`
	// ClipReduce says what an image model does with clips: "mean" (default) or "reject".
	ClipReduce string `json:"clip_reduce,omitempty"`
}

// Validate fills the defaults and returns every problem found (fields named image.*).
func (s *Sizing) Validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Size != 0 {
		if (s.Height != 0 && s.Height != s.Size) || (s.Width != 0 && s.Width != s.Size) {
			bad("image.size %d contradicts image.height %d / image.width %d", s.Size, s.Height, s.Width)
		}
		s.Height, s.Width = s.Size, s.Size
	}
	const maxSide = 8192
	if s.Height < 1 || s.Width < 1 || s.Height > maxSide || s.Width > maxSide {
		bad("image height and width must be in [1, %d], got %d x %d", maxSide, s.Height, s.Width)
	}
	if s.Resize == "" {
		s.Resize = ResizeShorter
	}
	if !slices.Contains([]string{ResizeStretch, ResizeShorter, ResizeLonger, ResizeNone}, s.Resize) {
		bad("image.resize %q: want stretch, shorter, longer or none", s.Resize)
	}
	if s.Filter == "" {
		s.Filter = FilterBicubic
	}
	if !slices.Contains([]string{FilterNearest, FilterBilinear, FilterBicubic, FilterBox}, s.Filter) {
		bad("image.filter %q: want nearest, bilinear, bicubic or box", s.Filter)
	}
	if !finite(s.PadValue) || s.PadValue < 0 || s.PadValue > 1 {
		bad("image.pad_value must be in [0, 1], got %v", s.PadValue)
	}
	if s.ClipReduce == "" {
		s.ClipReduce = ClipMean
	}
	if s.ClipReduce != ClipMean && s.ClipReduce != ClipReject {
		bad("image.clip_reduce %q: want mean or reject", s.ClipReduce)
	}
	return errs
}

// Geometry is the resize it asks for.
func (s *Sizing) Geometry() Geometry {
	return Geometry{Height: s.Height, Width: s.Width, Resize: s.Resize, Filter: s.Filter, PadValue: s.PadValue}
}

// TextSpec is the token-id input.
type TextSpec struct {
	Input     string `json:"input"`           // the graph input's name, e.g. "input_ids"
	Tokenizer string `json:"tokenizer"`       // TokenizerWord or TokenizerCLIPBPE
	MaxLen    int    `json:"max_len"`         // L: ids per prompt after padding/truncation
	DType     string `json:"dtype,omitempty"` // "int64" (default) or "int32"
	// AttentionMask names an optional second input (B,L) of the same dtype: 1 for tokens,
	// 0 for padding.
	AttentionMask string `json:"attention_mask,omitempty"`

	// word: the vocabulary (id = position; the first three are <pad>, <unk>, <null>),
	// inline or in a file (one word per line, or a JSON array).
	Vocab     []string `json:"vocab,omitempty"`
	VocabFile string   `json:"vocab_file,omitempty"` // also clip-bpe: vocab.json (token -> id)

	// clip-bpe: the merges (merges.txt, or open_clip's bpe_simple_vocab_16e6.txt[.gz]);
	// without VocabFile the vocabulary is built from the merges as open_clip does.
	MergesFile string `json:"merges_file,omitempty"`
	// PadID fills the ids after the end token (clip-bpe; default 0, as open_clip).
	PadID int `json:"pad_id,omitempty"`
}

// OutputSpec maps one graph output to reward dimensions: an output (B) or (B,1) gives one
// dimension, (B,K) gives K (an empty name skips a column).
type OutputSpec struct {
	Name string   `json:"name"`
	Dims []string `json:"dims"`
}

// LoadManifest reads and validates a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	m := &Manifest{}
	if err := strictjson.Load("reward manifest", path, m); err != nil {
		return nil, err
	}
	m.dir = filepath.Dir(path)
	return m, nil
}

// ParseManifest decodes and validates a manifest (unknown fields are errors, so a typo does
// not fall back to a default), then fills the defaults.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	if err := strictjson.Parse(data, m); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate fills the defaults and checks every field; it returns all problems found, joined.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if m.Format != ManifestFormat {
		bad("format is %q, want %q", m.Format, ManifestFormat)
	}
	if m.Version < 1 || m.Version > ManifestVersion {
		bad("version %d not supported (this program reads version %d)", m.Version, ManifestVersion)
	}
	if strings.TrimSpace(m.Model) == "" {
		bad("model (the .onnx file) is missing")
	}
	if m.MaxBatch < 0 {
		bad("max_batch must be >= 0, got %d", m.MaxBatch)
	}

	im := &m.Image
	if im.Input == "" {
		bad("image.input (the pixel input's name) is missing")
	}
	if !slices.Contains(Layouts, im.Layout) {
		bad("image.layout %q: want one of %s", im.Layout, strings.Join(Layouts, ", "))
	}
	errs = append(errs, im.Sizing.Validate()...)
	if im.IsClip() {
		if im.Frames < 1 || im.Frames > 1024 {
			bad("image.frames must be in [1, 1024] for layout %s, got %d", im.Layout, im.Frames)
		}
		if !(im.FPS >= 0 && im.FPS <= 1e4) {
			bad("image.fps must be in [0, 10000], got %v", im.FPS)
		}
	} else if im.Frames != 0 || im.FPS != 0 {
		bad("image.frames and image.fps are only for clip layouts (NTCHW, NCTHW, NTHWC), got %d and %v with %s", im.Frames, im.FPS, im.Layout)
	}
	if im.Range == 0 {
		im.Range = 1
	}
	if im.Range != 1 && im.Range != 255 {
		bad("image.range must be 1 or 255, got %v", im.Range)
	}
	if im.Mean == nil {
		im.Mean = []float64{0, 0, 0}
	}
	if im.Std == nil {
		im.Std = []float64{1, 1, 1}
	}
	if len(im.Mean) != 3 || len(im.Std) != 3 {
		bad("image.mean and image.std need 3 values (RGB), got %d and %d", len(im.Mean), len(im.Std))
	} else {
		for c := range 3 {
			if !finite(im.Mean[c]) || !finite(im.Std[c]) || !(im.Std[c] > 0) {
				bad("image channel %d: mean %v, std %v (std must be positive and finite)", c, im.Mean[c], im.Std[c])
			}
		}
	}

	if t := m.Text; t != nil {
		if t.Input == "" {
			bad("text.input (the token-id input's name) is missing; drop the text block for a model without text")
		}
		if t.MaxLen < 1 || t.MaxLen > 4096 {
			bad("text.max_len must be in [1, 4096], got %d", t.MaxLen)
		}
		if t.DType == "" {
			t.DType = "int64"
		}
		if t.DType != "int64" && t.DType != "int32" {
			bad("text.dtype %q: want int64 or int32", t.DType)
		}
		if t.AttentionMask != "" && (t.AttentionMask == t.Input || t.AttentionMask == im.Input) {
			bad("text.attention_mask %q repeats another input's name", t.AttentionMask)
		}
		if t.Input != "" && t.Input == im.Input {
			bad("text.input and image.input are both %q", t.Input)
		}
		if t.PadID < 0 {
			bad("text.pad_id must be >= 0, got %d", t.PadID)
		}
		switch t.Tokenizer {
		case TokenizerWord:
			if (len(t.Vocab) == 0) == (t.VocabFile == "") {
				bad("text: the word tokenizer needs exactly one of vocab and vocab_file")
			}
			if t.MergesFile != "" {
				bad("text.merges_file is only for the clip-bpe tokenizer")
			}
		case TokenizerCLIPBPE:
			if t.MergesFile == "" {
				bad("text: the clip-bpe tokenizer needs merges_file")
			}
			if len(t.Vocab) > 0 {
				bad("text.vocab (a word list) is only for the word tokenizer; clip-bpe takes vocab_file (vocab.json)")
			}
			if t.MaxLen < 2 {
				bad("text.max_len must be >= 2 for clip-bpe (start and end tokens)")
			}
		default:
			bad("text.tokenizer %q: want word or clip-bpe", t.Tokenizer)
		}
	}

	if len(m.Outputs) == 0 {
		bad("outputs is empty: name at least one output and its dimensions")
	}
	seenOut := map[string]bool{}
	seenDim := map[string]bool{}
	for i, o := range m.Outputs {
		if o.Name == "" {
			bad("outputs[%d].name is missing", i)
		} else if seenOut[o.Name] {
			bad("output %q is listed twice", o.Name)
		}
		seenOut[o.Name] = true
		if len(o.Dims) == 0 {
			bad("output %q maps to no dimensions", o.Name)
		}
		for _, d := range o.Dims {
			if d == "" {
				continue
			}
			if err := checkDimName(d); err != nil {
				bad("output %q: %v", o.Name, err)
			} else if seenDim[d] {
				bad("dimension %q comes from two outputs or columns", d)
			}
			seenDim[d] = true
		}
	}
	if len(seenDim) == 0 && len(m.Outputs) > 0 {
		bad("no output column is mapped to a dimension")
	}
	if c := m.Calibration; c != nil && len(errs) == 0 {
		if !slices.Equal(c.Dims, m.Dims()) {
			bad("calibration.dims %v differ from the output dimensions %v", c.Dims, m.Dims())
		} else if err := c.Validate(); err != nil {
			bad("%v", err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return nil
}

// checkDimName accepts names usable as CSV columns and in --weights lists: letters, digits,
// '_' and '-', starting with a letter, at most 64 bytes.
func checkDimName(d string) error {
	if len(d) > 64 {
		return fmt.Errorf("dimension name %.20q... is longer than 64 bytes", d)
	}
	for i, r := range d {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-')
		if !ok {
			return fmt.Errorf("dimension name %q: use letters, digits, '_' and '-', starting with a letter", d)
		}
	}
	if strings.HasSuffix(d, "_z") || d == "total" {
		return fmt.Errorf("dimension name %q clashes with the output columns (<dim>_z, total)", d)
	}
	return nil
}

// IsClip reports whether the layout carries frames.
func (s *ImageSpec) IsClip() bool {
	return s.Layout == LayoutNTCHW || s.Layout == LayoutNCTHW || s.Layout == LayoutNTHWC
}

// Dims lists the dimensions in output order (skipped columns left out).
func (m *Manifest) Dims() []string {
	var dims []string
	for _, o := range m.Outputs {
		for _, d := range o.Dims {
			if d != "" {
				dims = append(dims, d)
			}
		}
	}
	return dims
}

// Path resolves a file named in the manifest against the manifest's directory.
func (m *Manifest) Path(name string) string {
	if name == "" || filepath.IsAbs(name) || m.dir == "" {
		return name
	}
	return filepath.Join(m.dir, name)
}

// SetDir sets the directory that relative file names are resolved against.
func (m *Manifest) SetDir(dir string) { m.dir = dir }

// Marshal returns the manifest as indented JSON with a final newline.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
