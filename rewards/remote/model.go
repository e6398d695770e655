// The remote model: frames resized and sent as PNG, the answers read (package doc).
//
// Test: go test ./rewards/remote
package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// Model is a reward model answering over HTTP. It implements rewards.Model and
// rewards.Calibrated (not Differentiable: no gradient comes back, so it steers best-of-N and
// particle sampling, not Flow-NRG).
type Model struct {
	Manifest *Manifest
	client   *http.Client
	headers  http.Header
	backoff  time.Duration // the first wait before a retry, doubled after each
}

// Load reads the manifest at path. Nothing is sent until the first Score.
func Load(path string) (*Model, error) {
	m, err := LoadManifest(path)
	if err != nil {
		return nil, err
	}
	return New(m)
}

// New is the model of a validated manifest; ${VAR} in header values is read from the
// environment now, and an unset VAR is an error.
func New(m *Manifest) (*Model, error) {
	h := http.Header{}
	for k, v := range m.Headers {
		var missing []string
		h.Set(k, os.Expand(v, func(name string) string {
			val, ok := os.LookupEnv(name)
			if !ok {
				missing = append(missing, name)
			}
			return val
		}))
		if len(missing) > 0 {
			return nil, fmt.Errorf("reward manifest: header %s names $%s, which is not set", k, strings.Join(missing, ", $"))
		}
	}
	h.Set("Content-Type", "application/json")
	return &Model{Manifest: m, headers: h, backoff: time.Second,
		client: &http.Client{Timeout: time.Duration(m.TimeoutSeconds * float64(time.Second))}}, nil
}

// Dims are the manifest's dimensions.
func (mod *Model) Dims() []string { return slices.Clone(mod.Manifest.Dims) }

// Calibration is the manifest's (nil: z-scores are the raw scores).
func (mod *Model) Calibration() *rewards.Calibration { return mod.Manifest.Calibration }

// Geometry is the size the frames are sent at, for align score's decoding.
func (mod *Model) Geometry() onnx.Geometry { return mod.Manifest.Image.Geometry() }

// Frames is the clip length a clip model reads (0 for an image model).
func (mod *Model) Frames() int { return mod.Manifest.Image.Frames }

// RejectsClips reports whether an image model's manifest refuses clips (clip_reduce reject).
func (mod *Model) RejectsClips() bool { return mod.Manifest.Image.ClipReduce == onnx.ClipReject }

// IsClip reports whether the model reads clips.
func (mod *Model) IsClip() bool { return mod.Manifest.Image.Frames > 0 }

// Close releases idle connections.
func (mod *Model) Close() error {
	mod.client.CloseIdleConnections()
	return nil
}

// sample is one scoring request's sample: its prompt and its frames as base64 PNG, or (a
// clip sent as a video: chat.clip video) the clip as a base64 MP4.
type sample struct {
	Prompt string   `json:"prompt"`
	Frames []string `json:"frames"`
	video  string
}

// Score sends the batch's samples, each frame resized to the manifest's size and PNG-encoded,
// and returns their scores in dims order. An image model given clips scores every frame and
// averages them per clip (unless its manifest says clip_reduce reject).
func (mod *Model) Score(b rewards.Batch) ([][]float32, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	im := &mod.Manifest.Image
	s := b.Pixels.Shape
	B, T, H, W := s[0], 1, s[2], s[3]
	if b.IsVideo() {
		T, H, W = s[1], s[3], s[4]
	}
	switch {
	case mod.IsClip() && !b.IsVideo():
		return nil, fmt.Errorf("remote reward model: the model reads clips of %d frames, got images", im.Frames)
	case mod.IsClip() && T != im.Frames:
		return nil, fmt.Errorf("remote reward model: clips of %d frames, the model reads %d", T, im.Frames)
	case !mod.IsClip() && b.IsVideo() && im.ClipReduce == onnx.ClipReject:
		return nil, errors.New("remote reward model: an image model given clips (clip_reduce is reject)")
	}
	host := make([]float32, b.Pixels.Len())
	b.Pixels.Dev.CopyToHost(host, b.Pixels)
	fitted, err := fitFrames(host, B*T, H, W, im.Geometry())
	if err != nil {
		return nil, err
	}
	if c := mod.Manifest.Chat; c != nil && c.Clip == ClipVideo {
		samples := make([]sample, B)
		for i := range samples {
			fps := c.FPS
			if b.FPS != nil && b.FPS[i] > 0 {
				fps = b.FPS[i]
			}
			if fps == 0 {
				return nil, fmt.Errorf("remote reward model: chat.clip %s encodes a clip at the rate its frames were sampled at, and these clips have none "+
					"(frames spread over a clip); give chat.fps in the manifest, or sample at --fps", ClipVideo)
			}
			if samples[i].video, err = encodeMP4(fitted[i*T:(i+1)*T], fps); err != nil {
				return nil, err
			}
			samples[i].Prompt = b.Prompts[i]
		}
		return mod.scoreSamples(samples)
	}
	frames := make([]string, len(fitted))
	for k, img := range fitted {
		if frames[k], err = encodePNG(img); err != nil {
			return nil, err
		}
	}
	perSample := T
	if !mod.IsClip() {
		perSample = 1 // an image model: every frame is a sample
	}
	samples := make([]sample, len(frames)/perSample)
	for i := range samples {
		samples[i] = sample{Prompt: b.Prompts[i*perSample/T], Frames: frames[i*perSample : (i+1)*perSample]}
	}
	rows, err := mod.scoreSamples(samples)
	if err != nil || len(rows) == B {
		return rows, err
	}
	out := make([][]float32, B) // the mean of each clip's frames
	for i := range out {
		out[i] = make([]float32, len(mod.Manifest.Dims))
		for t := range T {
			for d, v := range rows[i*T+t] {
				out[i][d] += v / float32(T)
			}
		}
	}
	return out, nil
}

// fitFrames resizes each of the n frames (3,H,W) in [-1, 1] of host with g into an 8-bit
// image.
func fitFrames(host []float32, n, H, W int, g onnx.Geometry) ([]image.Image, error) {
	fitted := make([]float32, 3*g.Height*g.Width)
	out := make([]image.Image, n)
	for k := range out {
		if err := g.Apply(fitted, host[k*3*H*W:(k+1)*3*H*W], 3, H, W); err != nil {
			return nil, err
		}
		img := image.NewNRGBA(image.Rect(0, 0, g.Width, g.Height))
		plane := g.Height * g.Width
		for i := range plane {
			for c := range 3 {
				v := math.Round((float64(fitted[c*plane+i]) + 1) * 127.5)
				img.Pix[4*i+c] = uint8(min(max(v, 0), 255))
			}
			img.Pix[4*i+3] = 255
		}
		out[k] = img
	}
	return out, nil
}

// encodePNG is img as base64 PNG.
func encodePNG(img image.Image) (string, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// encodeMP4 is frames as a base64 H.264 MP4 at fps (ffmpeg.WriteMP4, through a temporary
// file: the index goes at the front, which needs a file to seek in).
func encodeMP4(frames []image.Image, fps float64) (string, error) {
	bin, err := ffmpeg.Find()
	if err != nil {
		return "", fmt.Errorf("remote reward model: chat.clip %s: %w", ClipVideo, err)
	}
	dir, err := os.MkdirTemp("", "align-clip-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "clip.mp4")
	if err := ffmpeg.WriteMP4(bin, path, frames, fps); err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(data), nil
}

// scoreSamples sends samples (in requests of MaxBatch with the align protocol, one each
// with the chat protocol), Concurrency requests at a time, and returns a row per sample.
func (mod *Model) scoreSamples(samples []sample) ([][]float32, error) {
	m := mod.Manifest
	per := m.MaxBatch
	if m.Protocol == ProtocolChat {
		per = 1
	}
	rows := make([][]float32, len(samples))
	errs := make([]error, len(samples))
	sem := make(chan struct{}, m.Concurrency)
	var wg sync.WaitGroup
	for lo := 0; lo < len(samples); lo += per {
		hi := min(lo+per, len(samples))
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			var r [][]float32
			var err error
			if m.Protocol == ProtocolChat {
				var row []float32
				row, err = mod.chat(samples[lo])
				r = [][]float32{row}
			} else {
				r, err = mod.align(samples[lo:hi])
			}
			if err != nil {
				errs[lo] = fmt.Errorf("remote reward model %s: %w", m.URL, err)
				return
			}
			copy(rows[lo:hi], r)
		}()
	}
	wg.Wait()
	return rows, errors.Join(errs...)
}

// post sends body as JSON to the model's url and decodes the 200 answer into out; another
// status is an error carrying the start of the answer. A connection error or a 429, 500,
// 502, 503 or 504 answer is tried again Manifest.Retries times.
func (mod *Model) post(body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		ans, wait, err := mod.send(data)
		if err == nil {
			if err := json.Unmarshal(ans, out); err != nil {
				return fmt.Errorf("the answer is not the JSON expected (%v): %s", err, snippet(ans))
			}
			return nil
		}
		if wait < 0 || attempt >= max(mod.Manifest.Retries, 0) { // -1: none
			if attempt > 0 {
				err = fmt.Errorf("%w (after %d tries)", err, attempt+1)
			}
			return err
		}
		time.Sleep(max(wait, mod.backoff<<attempt))
	}
}

// send posts data once and returns the 200 answer; on an error, wait >= 0 says it may be
// tried again after that long (the answer's Retry-After seconds, else 0), < 0 that it may not.
func (mod *Model) send(data []byte) (ans []byte, wait time.Duration, err error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, mod.Manifest.URL, bytes.NewReader(data))
	if err != nil {
		return nil, -1, err
	}
	req.Header = mod.headers.Clone()
	resp, err := mod.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	const maxAnswer = 64 << 20
	ans, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode == http.StatusOK {
		return ans, 0, nil
	}
	err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(ans))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, time.Duration(min(max(secs, 0), 60)) * time.Second, err
	}
	return nil, -1, err
}

// snippet is the start of an answer, for errors.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}

// align asks for samples' scores with align's protocol: POST {"dims": [...], "samples":
// [{"prompt": "...", "frames": ["<base64 PNG>", ...]}]}, answer {"scores": [{"vq": 1.5, ...}]}
// with a number for every dimension of every sample, in order.
func (mod *Model) align(samples []sample) ([][]float32, error) {
	var ans struct {
		Scores []map[string]*float64 `json:"scores"`
	}
	if err := mod.post(map[string]any{"dims": mod.Manifest.Dims, "samples": samples}, &ans); err != nil {
		return nil, err
	}
	if len(ans.Scores) != len(samples) {
		return nil, fmt.Errorf("%d samples sent, %d scores answered", len(samples), len(ans.Scores))
	}
	rows := make([][]float32, len(samples))
	for i, sc := range ans.Scores {
		rows[i] = make([]float32, len(mod.Manifest.Dims))
		for d, dim := range mod.Manifest.Dims {
			v := sc[dim]
			if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
				return nil, fmt.Errorf("score %d of the answer has no number for %q", i, dim)
			}
			rows[i][d] = float32(*v)
		}
	}
	return rows, nil
}

// chat asks an OpenAI-style chat endpoint to judge one sample and reads each dimension from
// the reply with its pattern.
func (mod *Model) chat(s sample) ([]float32, error) {
	c := mod.Manifest.Chat
	content := make([]map[string]any, 0, len(s.Frames)+1)
	for _, f := range s.Frames {
		content = append(content, map[string]any{"type": "image_url", "image_url": map[string]string{"url": "data:image/png;base64," + f}})
	}
	if s.video != "" {
		content = append(content, map[string]any{"type": "video_url", "video_url": map[string]string{"url": "data:video/mp4;base64," + s.video}})
	}
	content = append(content, map[string]any{"type": "text", "text": strings.ReplaceAll(c.Prompt, "{prompt}", s.Prompt)})
	messages := []map[string]any{}
	if c.System != "" {
		messages = append(messages, map[string]any{"role": "system", "content": c.System})
	}
	messages = append(messages, map[string]any{"role": "user", "content": content})
	var ans struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	body := map[string]any{"model": c.Model, "messages": messages, "max_tokens": c.MaxTokens, "temperature": c.Temperature}
	if err := mod.post(body, &ans); err != nil {
		return nil, err
	}
	if len(ans.Choices) == 0 {
		return nil, errors.New("the chat answer has no choices")
	}
	return readScores(ans.Choices[0].Message.Content, mod.Manifest.Dims, c.patterns)
}

// readScores reads each dimension of dims from reply: the number the first group of its
// pattern captures at the pattern's first match.
func readScores(reply string, dims []string, patterns map[string]*regexp.Regexp) ([]float32, error) {
	row := make([]float32, len(dims))
	for d, dim := range dims {
		sub := patterns[dim].FindStringSubmatch(reply)
		if sub == nil {
			return nil, fmt.Errorf("the reply gives no %s (pattern %q): %s", dim, patterns[dim], snippet([]byte(reply)))
		}
		v, err := strconv.ParseFloat(strings.TrimRight(sub[1], "."), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("the reply's %s %q is not a number: %s", dim, sub[1], snippet([]byte(reply)))
		}
		row[d] = float32(v)
	}
	return row, nil
}
