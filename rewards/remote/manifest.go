// The manifest of a remote reward model: a JSON file that says where the model answers
// (url), how to ask it (protocol: align's JSON, or an OpenAI-style chat endpoint with a
// judging prompt and a pattern per dimension), at which size to send the frames, and how to
// read the answer (dims; calibration). The format is described in the package documentation.
//
// Test: go test ./rewards/remote -run Manifest; fuzz: go test ./rewards/remote -run '^$' -fuzz FuzzParseManifest
package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/alignkit/align/internal/strictjson"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// ManifestFormat and ManifestVersion identify the manifest format.
const (
	ManifestFormat  = "align.remote-reward"
	ManifestVersion = 1
)

// Protocols.
const (
	ProtocolAlign = "align"       // POST {"dims", "samples": [{"prompt", "frames"}]} -> {"scores": [{dim: value}]}
	ProtocolChat  = "openai-chat" // one chat completion per sample; each dimension read from the reply

	ClipFrames = "frames" // ChatSpec.Clip: each frame an image
	ClipVideo  = "video"  // ChatSpec.Clip: the clip one MP4
)

// Manifest describes a remote reward model.
type Manifest struct {
	Format   string   `json:"format"`  // ManifestFormat
	Version  int      `json:"version"` // ManifestVersion
	Name     string   `json:"name,omitempty"`
	URL      string   `json:"url"`      // http:// or https://
	Protocol string   `json:"protocol"` // ProtocolAlign (default) or ProtocolChat
	Dims     []string `json:"dims"`
	// Headers are sent with every request; ${VAR} in a value is replaced by the environment
	// variable VAR (an API key stays out of the file).
	Headers map[string]string `json:"headers,omitempty"`
	Image   ImageSpec         `json:"image"`
	// MaxBatch is the most samples per request (align protocol; default 8).
	MaxBatch int `json:"max_batch,omitempty"`
	// Concurrency is the most requests in flight (default 4).
	Concurrency int `json:"concurrency,omitempty"`
	// TimeoutSeconds bounds each request (default 300).
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty"`
	// Retries is how many times a request is sent again after a connection error or a 429,
	// 500, 502, 503 or 504 answer, after 1, 2, 4, ... s (or the answer's Retry-After);
	// default 2, -1 for none.
	Retries int `json:"retries,omitempty"`
	// Chat is the judging request of ProtocolChat.
	Chat *ChatSpec `json:"chat,omitempty"`
	// Calibration is the per-dimension mean and std of raw scores (dims in order); nil:
	// z-scores equal raw scores.
	Calibration *rewards.Calibration `json:"calibration,omitempty"`
}

// ImageSpec is the size the frames are sent at (PNG), as an ONNX manifest's image block
// gives it, and the frames of a clip model.
type ImageSpec struct {
	onnx.Sizing
	Frames int `json:"frames,omitempty"` // > 0: the model reads clips of this many frames
}

// ChatSpec is the request of an OpenAI-style chat endpoint (vLLM, SGLang, Ollama, OpenAI):
// a user message of the frames as PNG data URLs (or a clip as one MP4 data URL, Clip
// "video") and the text Prompt with {prompt} replaced by the sample's prompt, after an
// optional system message; each dimension is the number the first group of Scores[dim]
// captures in the reply.
type ChatSpec struct {
	Model       string            `json:"model"`
	System      string            `json:"system,omitempty"`
	Prompt      string            `json:"prompt"`
	Scores      map[string]string `json:"scores"`
	MaxTokens   int               `json:"max_tokens,omitempty"`  // default 512
	Temperature float64           `json:"temperature,omitempty"` // default 0
	// Clip is how a clip model's clip is sent: ClipFrames (default), each frame an
	// image_url, or ClipVideo, one video_url of an H.264 MP4 at the rate the frames were
	// sampled at (a VLM then reads it as a video: Qwen2-VL's temporal patches and timing).
	Clip string `json:"clip,omitempty"`
	// FPS is the MP4's rate for clips whose sampling rate is not known (frames spread over a
	// clip); 0: such a clip is an error.
	FPS float64 `json:"fps,omitempty"`

	patterns map[string]*regexp.Regexp
}

// IsManifest reports whether the JSON file at path is a remote reward manifest (its format
// field), so that a .json --reward can be told from an ONNX model's manifest.
func IsManifest(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var head struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(data, &head) == nil && head.Format == ManifestFormat
}

// LoadManifest reads and validates a manifest file.
func LoadManifest(path string) (*Manifest, error) {
	m := &Manifest{}
	if err := strictjson.Load("reward manifest", path, m); err != nil {
		return nil, err
	}
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
	if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("url %q: want http://HOST[:PORT]/PATH or https://...", m.URL)
	}
	if m.Protocol == "" {
		m.Protocol = ProtocolAlign
	}
	if m.Protocol != ProtocolAlign && m.Protocol != ProtocolChat {
		bad("protocol %q: want %s or %s", m.Protocol, ProtocolAlign, ProtocolChat)
	}
	if len(m.Dims) == 0 {
		bad("dims is empty: name the model's reward dimensions, e.g. [\"vq\", \"mq\", \"ta\"]")
	}
	for i, d := range m.Dims {
		if d == "" || strings.ContainsAny(d, " ,=") || slices.Contains(m.Dims[:i], d) {
			bad("dims[%d] %q: want a distinct name without spaces, commas or '='", i, d)
		}
	}
	for k := range m.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") {
			bad("headers: %q is not a header name", k)
		}
	}
	if m.MaxBatch == 0 {
		m.MaxBatch = 8
	}
	if m.Concurrency == 0 {
		m.Concurrency = 4
	}
	if m.TimeoutSeconds == 0 {
		m.TimeoutSeconds = 300
	}
	if m.Retries == 0 {
		m.Retries = 2
	}
	if m.Retries < -1 || m.Retries > 10 {
		bad("retries must be in [1, 10], or -1 for none, got %d", m.Retries)
	}
	if m.MaxBatch < 1 || m.MaxBatch > 4096 || m.Concurrency < 1 || m.Concurrency > 256 {
		bad("max_batch must be in [1, 4096] and concurrency in [1, 256], got %d and %d", m.MaxBatch, m.Concurrency)
	}
	if !(m.TimeoutSeconds > 0) || math.IsInf(m.TimeoutSeconds, 0) {
		bad("timeout_seconds must be a positive number, got %v", m.TimeoutSeconds)
	}

	im := &m.Image
	errs = append(errs, im.Sizing.Validate()...)
	if im.Frames < 0 || im.Frames > 1024 {
		bad("image.frames must be in [0, 1024] (0: an image model), got %d", im.Frames)
	}

	switch c := m.Chat; {
	case m.Protocol == ProtocolChat && c == nil:
		bad("protocol %s needs a chat block (model, prompt, scores)", ProtocolChat)
	case m.Protocol != ProtocolChat && c != nil:
		bad("a chat block is for protocol %s", ProtocolChat)
	case c != nil:
		if c.Model == "" || !strings.Contains(c.Prompt, "{prompt}") {
			bad("chat.model is needed and chat.prompt must contain {prompt}")
		}
		if c.MaxTokens == 0 {
			c.MaxTokens = 512
		}
		if c.MaxTokens < 1 || !(c.Temperature >= 0) || math.IsInf(c.Temperature, 0) {
			bad("chat.max_tokens must be >= 1 and chat.temperature >= 0, got %d and %v", c.MaxTokens, c.Temperature)
		}
		if c.Clip == "" {
			c.Clip = ClipFrames
		}
		switch {
		case c.Clip != ClipFrames && c.Clip != ClipVideo:
			bad("chat.clip %q: want %s or %s", c.Clip, ClipFrames, ClipVideo)
		case c.Clip == ClipVideo && im.Frames == 0:
			bad("chat.clip %s sends a clip model's clips; image.frames is 0 (an image model)", ClipVideo)
		case !(c.FPS >= 0 && c.FPS <= 1000):
			bad("chat.fps must be in [0, 1000] (0: the clip's own rate), got %v", c.FPS)
		}
		c.patterns = map[string]*regexp.Regexp{}
		for _, d := range m.Dims {
			p, ok := c.Scores[d]
			if !ok {
				bad("chat.scores has no pattern for the dimension %q", d)
				continue
			}
			re, err := regexp.Compile(p)
			switch {
			case err != nil:
				bad("chat.scores[%q]: %v", d, err)
			case re.NumSubexp() < 1:
				bad("chat.scores[%q] %q: want a group capturing the number, e.g. \"Alignment Score[^0-9]*([0-9.]+)\"", d, p)
			default:
				c.patterns[d] = re
			}
		}
		for d := range c.Scores {
			if !slices.Contains(m.Dims, d) {
				bad("chat.scores names %q, which is not in dims %v", d, m.Dims)
			}
		}
	}
	if c := m.Calibration; c != nil {
		if len(c.Dims) == 0 {
			c.Dims = slices.Clone(m.Dims)
		}
		if !slices.Equal(c.Dims, m.Dims) {
			bad("calibration.dims %v differ from dims %v", c.Dims, m.Dims)
		} else if err := c.Validate(); err != nil {
			bad("calibration: %v", err)
		}
	}
	return errors.Join(errs...)
}

// Marshal writes the manifest as indented JSON (defaults filled in), as ParseManifest reads it.
func (m *Manifest) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(m, "", "  ")
	return append(data, '\n'), err
}
