// align sample: generate images (PNG) or short videos (animated GIF) from text prompts with
// a DiT model file, plus a grid of all of them; and the progress bar that the long-running
// commands draw on stderr.
//
// Test: go test ./cmd/align -run Sample
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// SampleOptions are the flags of `align sample`.
type SampleOptions struct {
	Prompts            []string // --prompt, repeatable
	PromptsFile        string   // --prompts: text (one per line) or JSONL ({"prompt": ...})
	Model              string   // --model: a .safetensors model file
	Video              bool     // --video: the model must be a video model
	NumInferenceSteps  int
	GuidanceScale      float64
	NumImagesPerPrompt int
	Seed               uint64
	Sampler            string
	Shift              float64 // 0: the model's default
	OutputDir          string
	GridScale          int
	JSON               bool
}

// sampleFile is one written sample in the --json report.
type sampleFile struct {
	Path   string `json:"path"`
	Prompt string `json:"prompt"`
	Index  int    `json:"index"` // position in the seed's stream (prompt-major)
	Image  int    `json:"image"` // 0..num_images_per_prompt-1 for its prompt
}

// sampleReport is what `align sample --json` prints.
type sampleReport struct {
	Model             string       `json:"model"`
	Kind              string       `json:"kind"`
	Seed              uint64       `json:"seed"`
	Sampler           string       `json:"sampler"`
	NumInferenceSteps int          `json:"num_inference_steps"`
	GuidanceScale     float64      `json:"guidance_scale"`
	Shift             float64      `json:"shift"`
	Files             []sampleFile `json:"files"`
	Grid              string       `json:"grid"`
	UnknownWords      []string     `json:"unknown_words,omitempty"`
	Seconds           float64      `json:"seconds"`
}

func newCmdSample(runF func(*SampleOptions) error) *cobra.Command {
	opts := &SampleOptions{}
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Generate images or videos from text prompts",
		Long: `Generate one PNG per image (one animated GIF per clip for video models) and a grid of
all of them in --output-dir. Sample i (prompt-major order) draws its noise from the seed's
stream i, so a seed gives the same images every time, however many are generated.`,
		Example: `  $ align sample --model base/model.safetensors --prompt "red apple" -o out/
  $ align sample --model base/model.safetensors --prompts prompts.txt --num-images-per-prompt 4 --seed 7
  $ align sample --model video/model.safetensors --video --prompt "a red apple moving left" --sampler heun`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return sampleRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.Prompts, "prompt", nil, "text prompt (repeatable)")
	f.StringVar(&opts.PromptsFile, "prompts", "", "file of prompts: one per line, or JSONL with a \"prompt\" field")
	f.StringVar(&opts.Model, "model", "", "model file (.safetensors) written by align pretrain")
	f.BoolVar(&opts.Video, "video", false, "generate videos (the model must be a video model)")
	f.IntVar(&opts.NumInferenceSteps, "num-inference-steps", 28, "denoising steps")
	f.Float64Var(&opts.GuidanceScale, "guidance-scale", 4.0, "classifier-free guidance scale (<= 1 disables guidance)")
	f.IntVar(&opts.NumImagesPerPrompt, "num-images-per-prompt", 1, "samples per prompt")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed of the initial noise")
	f.StringVar(&opts.Sampler, "sampler", diffusion.SamplerEuler, "euler, heun or sde")
	f.Float64Var(&opts.Shift, "shift", 0, "timestep shift (0: the model's default)")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "samples", "directory to write the files into")
	f.IntVar(&opts.GridScale, "grid-scale", 2, "magnification of grid.png / grid.gif")
	f.BoolVar(&opts.JSON, "json", false, "print what was written as JSON")
	return cmd
}

func (o *SampleOptions) validate() error {
	if len(o.Prompts) == 0 && o.PromptsFile == "" {
		return flagErrorf("no prompts: give --prompt TEXT (repeatable) or --prompts FILE")
	}
	for i, p := range o.Prompts {
		if strings.TrimSpace(p) == "" {
			return flagErrorf("--prompt %d is empty; give the text to generate", i+1)
		}
	}
	if o.NumInferenceSteps < 1 {
		return flagErrorf("--num-inference-steps must be >= 1, got %d", o.NumInferenceSteps)
	}
	if o.GuidanceScale < 0 {
		return flagErrorf("--guidance-scale must be >= 0, got %v", o.GuidanceScale)
	}
	if o.NumImagesPerPrompt < 1 {
		return flagErrorf("--num-images-per-prompt must be >= 1, got %d", o.NumImagesPerPrompt)
	}
	if !slices.Contains(diffusion.Samplers, o.Sampler) {
		return flagErrorf("--sampler %q: want one of %s", o.Sampler, strings.Join(diffusion.Samplers, ", "))
	}
	if o.Shift < 0 {
		return flagErrorf("--shift must be > 0 (or 0 for the model's default), got %v", o.Shift)
	}
	if o.GridScale < 1 || o.GridScale > 16 {
		return flagErrorf("--grid-scale must be in 1..16, got %d", o.GridScale)
	}
	if o.OutputDir == "" {
		return flagErrorf("--output-dir must not be empty")
	}
	return nil
}

// readPrompts reads a prompts file: JSONL objects with "prompt" when the name ends in
// .jsonl, otherwise one prompt per line; blank lines are skipped.
func readPrompts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--prompts: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if strings.HasSuffix(strings.ToLower(path), ".jsonl") {
			var rec struct {
				Prompt *string `json:"prompt"`
			}
			if err := json.Unmarshal([]byte(text), &rec); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			if rec.Prompt == nil || strings.TrimSpace(*rec.Prompt) == "" {
				return nil, fmt.Errorf("%s:%d: no \"prompt\" or an empty one", path, line)
			}
			text = *rec.Prompt
		}
		out = append(out, text)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prompts in the file", path)
	}
	return out, nil
}

// errNoDefaultModel is returned when --model is not given.
var errNoDefaultModel = errors.New("no default model is embedded in this build yet; pass --model PATH\n" +
	"---> HINT: train one with `align pretrain --data data/emoji -o base/` and use base/model.safetensors")

// loadSampleModel loads --model on dev and checks it against --video.
func loadSampleModel(dev kernels.Device, path string, video bool) (*diffusion.DiT, error) {
	if path == "" {
		return nil, errNoDefaultModel
	}
	m, err := diffusion.LoadDiT(dev, path)
	if err != nil {
		return nil, err
	}
	switch {
	case video && m.Config.Kind != diffusion.KindVideo:
		return nil, usageError{fmt.Errorf("--video given but %s is an %s model", path, m.Config.Kind)}
	case !video && m.Config.Kind == diffusion.KindVideo:
		return nil, usageError{fmt.Errorf("%s is a video model; add --video", path)}
	}
	return m, nil
}

// slug turns a prompt into a short file-name part: lower-case letters and digits joined by
// '-', at most 40 bytes.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 40 {
				break
			}
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "prompt"
	}
	return b.String()
}

func sampleRun(cmd *cobra.Command, opts *SampleOptions) error {
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	prompts := slices.Clone(opts.Prompts)
	if opts.PromptsFile != "" {
		ps, err := readPrompts(opts.PromptsFile)
		if err != nil {
			return err
		}
		prompts = append(prompts, ps...)
	}
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	m, err := loadSampleModel(dev, opts.Model, opts.Video)
	if err != nil {
		return err
	}
	for _, p := range prompts {
		_, _, unk, trunc := m.Tokenizer.Encode(p)
		if len(unk) > 0 {
			fmt.Fprintf(stderr, "align: warning: prompt %q: words not in the model's vocabulary (%d words): %s\n",
				p, m.Tokenizer.VocabSize(), strings.Join(unk, ", "))
		}
		if trunc > 0 {
			fmt.Fprintf(stderr, "align: warning: prompt %q: %d words beyond the model's %d-token limit are ignored\n",
				p, trunc, m.Tokenizer.MaxLen)
		}
	}
	var captions []string
	for _, p := range prompts {
		for range opts.NumImagesPerPrompt {
			captions = append(captions, p)
		}
	}

	so := diffusion.SampleOptions{NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale,
		Shift: opts.Shift, Seed: opts.Seed, Sampler: opts.Sampler}
	bar := newProgressBar(stderr, "sampling", opts.NumInferenceSteps)
	so.Progress = func(done, total int) { bar.Update(done, "") }
	x, enc, err := diffusion.Sample(m, captions, so)
	if err != nil {
		return err
	}
	bar.Finish(fmt.Sprintf("%d samples", len(captions)))
	frames := diffusion.SampleFrames(x, &m.Config)

	// Write everything; on failure remove what this run wrote.
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	video := m.Config.Kind == diffusion.KindVideo
	var written []string
	fail := func(err error) error {
		for _, p := range written {
			os.Remove(p)
		}
		return err
	}
	rep := sampleReport{Model: opts.Model, Kind: m.Config.Kind, Seed: opts.Seed, Sampler: opts.Sampler,
		NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale, Shift: opts.Shift,
		UnknownWords: enc.Unknown}
	if rep.Shift == 0 {
		rep.Shift = m.Config.Shift
	}
	for i, fr := range frames {
		ext := ".png"
		if video {
			ext = ".gif"
		}
		path := filepath.Join(opts.OutputDir, fmt.Sprintf("%03d-%s%s", i, slug(captions[i]), ext))
		if video {
			err = diffusion.WriteGIF(path, diffusion.ToImages(fr), 12)
		} else {
			err = diffusion.WritePNG(path, fr[0])
		}
		if err != nil {
			return fail(err)
		}
		written = append(written, path)
		rep.Files = append(rep.Files, sampleFile{Path: path, Prompt: captions[i], Index: i, Image: i % opts.NumImagesPerPrompt})
	}
	cols := opts.NumImagesPerPrompt
	if len(prompts) == 1 || cols == 1 {
		cols = 0
	}
	if video {
		rep.Grid = filepath.Join(opts.OutputDir, "grid.gif")
		err = diffusion.WriteGIF(rep.Grid, diffusion.GridFrames(frames, cols, opts.GridScale, 2), 12)
	} else {
		firsts := make([]image.Image, len(frames))
		for i, fr := range frames {
			firsts[i] = fr[0]
		}
		rep.Grid = filepath.Join(opts.OutputDir, "grid.png")
		err = diffusion.WritePNG(rep.Grid, diffusion.Grid(firsts, cols, opts.GridScale, 2))
	}
	if err != nil {
		return fail(err)
	}
	rep.Seconds = time.Since(start).Seconds()
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	kind := "images"
	if video {
		kind = "videos"
	}
	fmt.Fprintf(out, "wrote %d %s and %s to %s\n", len(rep.Files), kind, filepath.Base(rep.Grid), opts.OutputDir)
	return nil
}

// ---- progress bar ----

// progressBar draws "label [=====>    ] done/total elapsed<eta extra" on a terminal,
// redrawn in place; on anything else (a file, a pipe, a test buffer) it prints a plain line
// at most every 30 seconds and at the end.
type progressBar struct {
	w      io.Writer
	tty    bool
	label  string
	total  int
	start  time.Time
	last   time.Time
	every  time.Duration
	base   int // units done before this run (a resumed run): the rate counts only the rest
	done   int
	closed bool
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progressBar{w: w, tty: tty, label: label, total: max(total, 1), start: now, last: now, every: 30 * time.Second}
}

func fmtDuration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// Update reports done of total units with an extra note (e.g. the loss).
func (p *progressBar) Update(done int, extra string) {
	p.done = done
	now := time.Now()
	if !p.tty && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	el := now.Sub(p.start)
	eta := "--:--"
	if done > p.base {
		eta = fmtDuration(time.Duration(float64(el) / float64(done-p.base) * float64(p.total-done)))
	}
	if extra != "" {
		extra = " " + extra
	}
	if p.tty {
		const width = 24
		fill := width * done / p.total
		bar := strings.Repeat("=", fill)
		if fill < width {
			bar += ">" + strings.Repeat(" ", width-fill-1)
		}
		fmt.Fprintf(p.w, "\r%s [%s] %d/%d %s<%s%s\x1b[K", p.label, bar, done, p.total, fmtDuration(el), eta, extra)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d %s<%s%s\n", p.label, done, p.total, fmtDuration(el), eta, extra)
}

// Note prints a message line without breaking the bar (it is redrawn on the next Update).
func (p *progressBar) Note(msg string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s\n", msg)
		p.last = time.Time{}
		return
	}
	fmt.Fprintln(p.w, msg)
}

// Finish ends the bar with a summary line.
func (p *progressBar) Finish(extra string) {
	if p.closed {
		return
	}
	p.closed = true
	if extra != "" {
		extra = ", " + extra
	}
	prefix := ""
	if p.tty {
		prefix = "\r\x1b[K"
	}
	fmt.Fprintf(p.w, "%s%s: %d/%d in %s%s\n", prefix, p.label, p.done, p.total, fmtDuration(time.Since(p.start)), extra)
}
