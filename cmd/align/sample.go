// align sample: generate images (PNG) or short videos (animated GIF) from text prompts with
// a DiT model file, plus a grid of all of them, optionally steered towards high reward
// (package guidance): Flow-NRG gradient guidance with a noise-aware latent reward model,
// FK particle steering and best-of-N with any reward, CFG over reward conditions; and the
// progress bar that the long-running commands draw on stderr.
//
// Test: go test ./cmd/align -run Sample
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// SampleOptions are the flags of `align sample`.
type SampleOptions struct {
	Prompts            []string // --prompt, repeatable
	PromptsFile        string   // --prompts: text (one per line) or JSONL ({"prompt": ...})
	Model              string   // --model: a .safetensors model file
	Adapters           []string // --adapter PATH[=WEIGHT], repeatable: fine-tunings merged into it
	Video              bool     // --video: the model must be a video model
	NumInferenceSteps  int
	GuidanceScale      float64
	NumImagesPerPrompt int
	Seed               uint64
	Sampler            string
	Shift              float64 // 0: the model's default
	OutputDir          string
	GridScale          int
	VideoFormat        string // --video-format: gif or mp4 (a video model's clips and grid)
	BatchSize          int    // --batch-size: output images sampled together
	JSON               bool

	// Reward steering (package guidance).
	Rewards               []string // --reward (repeatable): default, FILE.safetensors, FILE.onnx or FILE.json
	RewardWeights         string   // --reward-weights vq=1,ta=0.5 (z-scored dimensions)
	Combine               string   // --combine (FK and best-of-N)
	RewardGuidanceScale   float64  // --reward-guidance-scale: Flow-NRG's w (0: off)
	RewardGuidanceStart   float64  // NRG window in t: start (1) ...
	RewardGuidanceEnd     float64  // ... down to end (0)
	Particles             int      // --particles: FK steering with k particles (1: off)
	FKLambda              float64
	FKPotential           string
	FKResampleEvery       int
	FKAdaptive            bool
	BestOfN               int     // --best-of-n (1: off)
	RewardCondition       string  // --reward-condition vq=max,ta=4.5
	RewardConditionScale  float64 // w of CFG over reward conditions
	RewardConditionPerDim bool    // per-dimension CFG (1 + D passes)
	AdapterGuidanceScale  float64 // --adapter-guidance-scale w: v_base + w (v_mix - v_base) (1: the mix)
}

// steering reports whether any reward model is needed.
func (o *SampleOptions) steering() bool {
	return o.RewardGuidanceScale > 0 || o.Particles > 1 || o.BestOfN > 1
}

// sampleFile is one written sample in the --json report.
type sampleFile struct {
	Path   string `json:"path"`
	Prompt string `json:"prompt"`
	Index  int    `json:"index"` // position in the seed's stream (prompt-major)
	Image  int    `json:"image"` // 0..num_images_per_prompt-1 for its prompt
	// Reward is the combined reward of the kept sample (FK and best-of-N), Rewards its
	// z-scored dimensions.
	Reward  *float64           `json:"reward,omitempty"`
	Rewards map[string]float64 `json:"rewards,omitempty"`
}

// steeringReport describes the reward steering of a run in the --json report.
type steeringReport struct {
	Methods         []string           `json:"methods"` // nrg, fk, best-of-n, reward-condition, adapter-guidance
	Reward          string             `json:"reward,omitempty"`
	Weights         string             `json:"weights,omitempty"`
	Combine         string             `json:"combine,omitempty"`
	RewardCalls     int                `json:"reward_calls"`             // clean-sample scorings (FK, best-of-N)
	CallsPerImage   float64            `json:"reward_calls_per_image"`   // RewardCalls / images
	GradientCalls   int                `json:"gradient_calls,omitempty"` // NRG forward+backward evaluations of each sample (one per guided step)
	GuidanceScale   float64            `json:"reward_guidance_scale,omitempty"`
	Particles       int                `json:"particles,omitempty"`
	FKLambda        float64            `json:"fk_lambda,omitempty"`
	FKPotential     string             `json:"fk_potential,omitempty"`
	Resamples       int                `json:"fk_resamples,omitempty"`
	BestOfN         int                `json:"best_of_n,omitempty"`
	RewardCondition map[string]float64 `json:"reward_condition,omitempty"`
	ConditionScale  float64            `json:"reward_condition_scale,omitempty"`
	// AdapterGuidanceScale is fine-tune guidance's w.
	AdapterGuidanceScale float64 `json:"adapter_guidance_scale,omitempty"`
}

// sampleReport is what `align sample --json` prints.
type sampleReport struct {
	Model             string          `json:"model"`
	Kind              string          `json:"kind"`
	Seed              uint64          `json:"seed"`
	Sampler           string          `json:"sampler"`
	NumInferenceSteps int             `json:"num_inference_steps"`
	GuidanceScale     float64         `json:"guidance_scale"`
	Shift             float64         `json:"shift"`
	Files             []sampleFile    `json:"files"`
	Grid              string          `json:"grid"`
	UnknownWords      []string        `json:"unknown_words,omitempty"`
	Steering          *steeringReport `json:"steering,omitempty"`
	Seconds           float64         `json:"seconds"`
}

// defaultSampleBatch is --batch-size's default: samples drawn together.
const defaultSampleBatch = 64

func newCmdSample(runF func(*SampleOptions) error) *cobra.Command {
	opts := &SampleOptions{}
	cmd := &cobra.Command{
		Use:   "sample",
		Short: "Generate images or videos from text prompts",
		Long: `Generate one PNG per image (one animated GIF per clip for video models) and a grid of
all of them in --output-dir. Sample i (prompt-major order) draws its noise from the seed's
stream i, so a seed gives the same images every time, however many are generated.

Reward steering (algorithms.md sections 5-8; --reward picks the model: default, the embedded
clean image reward, or with --reward-guidance-scale the embedded latent one; FILE.safetensors;
FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json; repeated,
several models as one, their dimensions side by side under --reward-weights, e.g. --reward
default --reward aesthetic.json):

  --reward-guidance-scale w   Flow-NRG: v - w t/(1-t) grad sum_d λ_d r_d(x_t, t) after CFG,
                              none at t = 1, inside [--reward-guidance-end, --reward-guidance-start];
                              needs a noise-aware latent reward model (paper: w = 100; on the
                              default models VQ guidance works, TA guidance lowers TA: README)
  --particles k               FK steering on the SDE sampler: k particles per image scored on
                              x0_hat, potential --fk-potential, resampled every
                              --fk-resample-every steps or when ESS < k/2 (--fk-adaptive); the
                              particle with the highest final reward is kept
  --best-of-n N               N samples per image, the best under --combine is kept
  --reward-condition vq=max   CFG over the reward-condition slot (max = the model's
                              training maximum, or z 3 when it stores none),
                              joint or --reward-condition-per-dim, scale --reward-condition-scale

--reward-weights weigh the z-scored dimensions (λ_d for NRG); sample i of particle or
candidate j draws from stream i*k+j.

Fine-tunings mixed per run: --adapter PATH=WEIGHT (repeatable) merges fine-tunings of
align finetune into --model's weights, W + Σ w_i ΔW_i, e.g. one Flow-DPO run per reward
dimension weighted as this run asks (rewarded soups; README, "Mixing fine-tunings"): a LoRA
adapter file adds (alpha/r) B A, a fine-tuned model.safetensors its task vector W_ft - W.
--adapter-guidance-scale w extrapolates in velocity instead, v_base + w (v_mix - v_base)
with each velocity CFG-guided (RLG): exactly linear, at twice the passes.`,
		Example: `  $ align sample --model base/model.safetensors --prompt "red apple" -o out/
  $ align sample --model base/model.safetensors --prompts prompts.txt --num-images-per-prompt 4 --seed 7
  $ align sample --model video/model.safetensors --video --prompt "a red apple moving left" --sampler heun
  $ align sample --model base/model.safetensors --prompt "red apple" --particles 4 --fk-lambda 10 --reward-weights vq=1,ta=1 --json
  $ align sample --model base/model.safetensors --prompt "red apple" --best-of-n 8 --combine lsc
  $ align sample --prompt "red apple" --reward-guidance-scale 100 --reward-weights vq=1
  $ align sample --model base/model.safetensors --prompt "red apple" --reward latent/model.safetensors --reward-guidance-scale 10 --reward-weights ta=1
  $ align sample --model cond/model.safetensors --prompt "red apple" --reward-condition vq=max,ta=1.5 --reward-condition-scale 3
  $ align sample --adapter dpo-vq/adapter.safetensors=0.7 --adapter dpo-ta/adapter.safetensors=0.3 --prompt "red apple"
  $ align sample --adapter sft/model.safetensors=0.5 --adapter dpo-ta/adapter.safetensors --prompt "red apple"
  $ align sample --prompts prompts.txt --precision bf16   # BF16 products: a CPU with AVX512_BF16 (align info: cpu bf16) or a GPU`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Particles > 1 && !cmd.Flags().Changed("sampler") {
				opts.Sampler = diffusion.SamplerSDE // particles need a stochastic sampler
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if k := max(opts.Particles, opts.BestOfN); k > 1 && !cmd.Flags().Changed("batch-size") {
				// The default holds about as many samples as an unsteered batch: k candidates
				// per output image cost k times the memory (a video sample's activations take
				// about 80 MB on the CPU, so 64 x 4 clips overflowed 23 GB).
				opts.BatchSize = max(1, defaultSampleBatch/k)
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
	f.StringVar(&opts.Model, "model", "", "model file (.safetensors) written by align pretrain, or default-video (default: the embedded image model)")
	f.StringArrayVar(&opts.Adapters, "adapter", nil, adapterUsage)
	f.BoolVar(&opts.Video, "video", false, "generate videos (the model must be a video model)")
	f.IntVar(&opts.NumInferenceSteps, "num-inference-steps", 28, "denoising steps")
	f.Float64Var(&opts.GuidanceScale, "guidance-scale", 4.0, "classifier-free guidance scale (<= 1 disables guidance)")
	f.IntVar(&opts.NumImagesPerPrompt, "num-images-per-prompt", 1, "samples per prompt")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed of the initial noise")
	f.StringVar(&opts.Sampler, "sampler", diffusion.SamplerEuler, "euler, heun or sde")
	f.Float64Var(&opts.Shift, "shift", 0, "timestep shift (0: the model's default)")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "samples", "directory to write the files into")
	f.IntVar(&opts.GridScale, "grid-scale", 2, "magnification of grid.png / grid.gif")
	f.StringVar(&opts.VideoFormat, "video-format", videoFormatGIF, "file format of a video model's clips and grid: gif, or mp4 (H.264 through ffmpeg, for players and video tools)")
	f.IntVar(&opts.BatchSize, "batch-size", defaultSampleBatch, "output images sampled together (with --particles or --best-of-n, times k samples; its default is then 64/k); the same images for any value where the CPU multiplies with the Go GEMM (align info: on x86-64 with AVX2)")
	f.BoolVar(&opts.JSON, "json", false, "print what was written as JSON")

	f.StringArrayVar(&opts.Rewards, "reward", []string{"default"}, "reward model for steering: default, FILE.safetensors, FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json (repeatable: several models, their dimensions side by side)")
	f.StringVar(&opts.RewardWeights, "reward-weights", "", "weights of the z-scored reward dimensions, e.g. vq=1,ta=0.5 (default: 1 each)")
	f.StringVar(&opts.Combine, "combine", rewards.CombineLinear, "how FK and best-of-N combine dimensions: "+strings.Join(rewards.Combiners, ", "))
	f.Float64Var(&opts.RewardGuidanceScale, "reward-guidance-scale", 0, "Flow-NRG strength w (0: off; the paper uses 100, too strong for a latent model trained with --teacher-scored: about 10); needs a noise-aware latent reward model")
	f.Float64Var(&opts.RewardGuidanceStart, "reward-guidance-start", 1, "Flow-NRG acts for t <= start (t = 1 is noise; never at t = 1)")
	f.Float64Var(&opts.RewardGuidanceEnd, "reward-guidance-end", 0, "Flow-NRG acts for t >= end")
	f.IntVar(&opts.Particles, "particles", 1, "FK steering: particles per image (1: off; selects --sampler sde unless given)")
	f.Float64Var(&opts.FKLambda, "fk-lambda", guidance.DefaultFKLambda, "FK steering: potential strength λ")
	f.StringVar(&opts.FKPotential, "fk-potential", guidance.PotentialDiff, "FK potential: "+strings.Join(guidance.Potentials, ", "))
	f.IntVar(&opts.FKResampleEvery, "fk-resample-every", guidance.DefaultResampleEvery, "FK steering: resample every n steps")
	f.BoolVar(&opts.FKAdaptive, "fk-adaptive", false, "FK steering: score every step, resample when the ESS falls below half the particles")
	f.IntVar(&opts.BestOfN, "best-of-n", 1, "generate N samples per image and keep the best (1: off)")
	f.StringVar(&opts.RewardCondition, "reward-condition", "", "targets for the reward-condition slot, e.g. vq=max,ta=1.5 (z-scores; max = the model's training maximum, else 3)")
	f.Float64Var(&opts.RewardConditionScale, "reward-condition-scale", 3, "classifier-free guidance scale over the reward condition")
	f.BoolVar(&opts.RewardConditionPerDim, "reward-condition-per-dim", false, "guide each named reward dimension separately (1 + D passes)")
	f.Float64Var(&opts.AdapterGuidanceScale, "adapter-guidance-scale", 1, "fine-tune guidance (RLG): the --adapter mix's velocity extrapolated from its base's, "+
		"v_base + w (v_mix - v_base), each with CFG (twice the passes); 1: the mix alone, 0: the base, > 1: past the fine-tuning")
	return cmd
}

func (o *SampleOptions) validate() error {
	if o.Model == "default-video" {
		o.Video = true // the name says the kind
	}
	if len(o.Prompts) == 0 && o.PromptsFile == "" {
		return flagErrorf("no prompts: give --prompt TEXT (repeatable) or --prompts FILE")
	}
	for i, p := range o.Prompts {
		if strings.TrimSpace(p) == "" {
			return flagErrorf("--prompt %d is empty; give the text to generate", i+1)
		}
	}
	if err := checkSampling(o.NumInferenceSteps, o.GuidanceScale, o.Shift, o.Sampler); err != nil {
		return err
	}
	if o.NumImagesPerPrompt < 1 {
		return flagErrorf("--num-images-per-prompt must be >= 1, got %d", o.NumImagesPerPrompt)
	}
	if o.BatchSize < 1 {
		return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
	}
	if o.GridScale < 1 || o.GridScale > 16 {
		return flagErrorf("--grid-scale must be in 1..16, got %d", o.GridScale)
	}
	if o.OutputDir == "" {
		return flagErrorf("--output-dir must not be empty")
	}
	if o.VideoFormat != videoFormatGIF && o.VideoFormat != videoFormatMP4 {
		return flagErrorf("--video-format %q: want gif or mp4", o.VideoFormat)
	}
	return o.validateSteering()
}

// validateSteering checks the reward-steering flags.
func (o *SampleOptions) validateSteering() error {
	switch {
	case o.Particles < 1:
		return flagErrorf("--particles must be >= 1, got %d", o.Particles)
	case o.BestOfN < 1:
		return flagErrorf("--best-of-n must be >= 1, got %d", o.BestOfN)
	case o.Particles > 1 && o.BestOfN > 1:
		return flagErrorf("--particles and --best-of-n both select among samples; use one of them")
	case o.Particles > 1 && o.Sampler != diffusion.SamplerSDE:
		return flagErrorf("--particles needs --sampler sde: with a deterministic sampler resampled particles stay identical copies")
	case !(o.RewardGuidanceScale >= 0) || math.IsInf(o.RewardGuidanceScale, 0):
		return flagErrorf("--reward-guidance-scale must be a finite number >= 0, got %v", o.RewardGuidanceScale)
	case !(o.RewardGuidanceStart >= 0 && o.RewardGuidanceStart <= 1 && o.RewardGuidanceEnd >= 0 && o.RewardGuidanceEnd <= o.RewardGuidanceStart):
		return flagErrorf("--reward-guidance-end %v and --reward-guidance-start %v: want 0 <= end <= start <= 1", o.RewardGuidanceEnd, o.RewardGuidanceStart)
	case !slices.Contains(rewards.Combiners, o.Combine):
		return flagErrorf("--combine %q: want one of %s", o.Combine, strings.Join(rewards.Combiners, ", "))
	case math.IsNaN(o.AdapterGuidanceScale) || math.IsInf(o.AdapterGuidanceScale, 0):
		return flagErrorf("--adapter-guidance-scale must be a finite number, got %v", o.AdapterGuidanceScale)
	case o.AdapterGuidanceScale != 1 && len(o.Adapters) == 0:
		return flagErrorf("--adapter-guidance-scale extrapolates the --adapter mix from its base: give --adapter")
	case o.AdapterGuidanceScale != 1 && o.RewardCondition != "":
		return flagErrorf("--adapter-guidance-scale and --reward-condition each replace the guided velocity; use one of them")
	case o.RewardCondition != "" && (!(o.RewardConditionScale >= 0) || math.IsInf(o.RewardConditionScale, 0)):
		return flagErrorf("--reward-condition-scale must be a finite number >= 0, got %v", o.RewardConditionScale)
	case len(o.Rewards) == 0 || slices.Contains(o.Rewards, ""):
		return flagErrorf("--reward is empty: give default, FILE.safetensors, FILE.onnx or FILE.json")
	}
	fk := guidance.FKOptions{Particles: o.Particles, Lambda: o.FKLambda, Potential: o.FKPotential,
		ResampleEvery: o.FKResampleEvery, Adaptive: o.FKAdaptive}
	if err := fk.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// allPrompts is the --prompt values followed by the prompts of the --prompts file (if any).
func allPrompts(given []string, file string) ([]string, error) {
	prompts := slices.Clone(given)
	if file == "" {
		return prompts, nil
	}
	ps, err := readPrompts(file)
	if err != nil {
		return nil, err
	}
	return append(prompts, ps...), nil
}

// readPrompts reads a prompts file: JSONL objects with "prompt" when the name ends in
// .jsonl, otherwise one prompt per line; blank lines are skipped.
func readPrompts(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--prompts: %w", err)
	}
	return parsePrompts(path, b, strings.HasSuffix(strings.ToLower(path), ".jsonl"))
}

// parsePrompts reads the prompts of a file's contents (readPrompts; path names it in errors).
func parsePrompts(path string, b []byte, jsonl bool) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if jsonl {
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
	prompts, err := allPrompts(opts.Prompts, opts.PromptsFile)
	if err != nil {
		return err
	}
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	adapters, err := parseAdapters(opts.Adapters)
	if err != nil {
		return err
	}
	m, modelName, err := loadGeneratorKind(dev, opts.Model, opts.Video, adapters)
	if err != nil {
		return err
	}
	var base *diffusion.DiT // fine-tune guidance's base
	if opts.AdapterGuidanceScale != 1 {
		if base, err = loadAdapterBase(dev, opts.Model, opts.Video, adapters); err != nil {
			return err
		}
	}
	var clips *clipWriter
	switch {
	case m.Config.Kind == diffusion.KindVideo:
		if clips, err = newClipWriter(opts.VideoFormat); err != nil {
			return err
		}
	case cmd.Flags().Changed("video-format"):
		return flagErrorf("--video-format sets the file format of a video model's clips; %s is an image model", modelName)
	}
	warnPromptWords(stderr, m.Tokenizer, prompts)
	var captions []string
	for _, p := range prompts {
		for range opts.NumImagesPerPrompt {
			captions = append(captions, p)
		}
	}

	st, err := newSampleSteering(cmd, opts, dev, m, base, captions)
	if err != nil {
		return err
	}
	defer st.close()
	// The images are sampled --batch-size at a time: image i (its k particles or candidates
	// i*k..i*k+k-1) draws the same noise streams in any chunk, so the chunking changes memory,
	// not the result.
	chunks := (len(captions) + opts.BatchSize - 1) / opts.BatchSize
	bar := newProgressBar(stderr, "sampling", chunks*opts.NumInferenceSteps)
	var frames [][]*image.NRGBA
	var unknown []string
	for c := range chunks {
		first, last := c*opts.BatchSize, min((c+1)*opts.BatchSize, len(captions))
		if err := st.begin(captions[first:last], first); err != nil {
			return err
		}
		so := diffusion.SampleOptions{NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale,
			Shift: opts.Shift, Seed: opts.Seed, Sampler: opts.Sampler, Velocity: st.velocity, Guidance: st.guide,
			FirstIndex: first * st.k}
		so.Progress = func(done, total int) { bar.Update(c*opts.NumInferenceSteps+done, "") }
		x, enc, err := diffusion.Sample(m, st.expanded, so)
		if err != nil {
			return err
		}
		x, err = st.finish(x)
		st.end()
		if err != nil {
			return err
		}
		frames = append(frames, diffusion.SampleFrames(x, &m.Config)...)
		dev.Free(x)
		for _, w := range enc.Unknown {
			if !slices.Contains(unknown, w) {
				unknown = append(unknown, w)
			}
		}
	}
	bar.Finish(counted(len(captions), "sample"))

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
	rep := sampleReport{Model: modelName, Kind: m.Config.Kind, Seed: opts.Seed, Sampler: opts.Sampler,
		NumInferenceSteps: opts.NumInferenceSteps, GuidanceScale: opts.GuidanceScale, Shift: opts.Shift,
		UnknownWords: unknown, Steering: st.report}
	if rep.Shift == 0 {
		rep.Shift = m.Config.Shift
	}
	for i, fr := range frames {
		ext := ".png"
		if video {
			ext = "." + opts.VideoFormat
		}
		path := filepath.Join(opts.OutputDir, fmt.Sprintf("%03d-%s%s", i, slug(captions[i]), ext))
		if video {
			err = clips.write(path, diffusion.ToImages(fr))
		} else {
			err = diffusion.WritePNG(path, fr[0])
		}
		if err != nil {
			return fail(err)
		}
		written = append(written, path)
		rep.Files = append(rep.Files, sampleFile{Path: path, Prompt: captions[i], Index: i, Image: i % opts.NumImagesPerPrompt})
		st.annotate(&rep.Files[len(rep.Files)-1], i)
	}
	cols := opts.NumImagesPerPrompt
	if len(prompts) == 1 || cols == 1 {
		cols = 0
	}
	if video {
		rep.Grid = filepath.Join(opts.OutputDir, "grid."+opts.VideoFormat)
		err = clips.write(rep.Grid, diffusion.GridFrames(frames, cols, opts.GridScale, 2))
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
	written = append(written, rep.Grid)
	if err := writeSampleIndex(opts.OutputDir, rep); err != nil {
		return fail(err)
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	kind := "image"
	if video {
		kind = "video"
	}
	fmt.Fprintf(out, "wrote %s and %s to %s\n", counted(len(rep.Files), kind), filepath.Base(rep.Grid), opts.OutputDir)
	if r := rep.Steering; r != nil {
		fmt.Fprintf(out, "steering %s: %.1f reward calls per %s", strings.Join(r.Methods, "+"), r.CallsPerImage, strings.TrimSuffix(kind, "s"))
		if r.GradientCalls > 0 {
			fmt.Fprintf(out, ", %d reward-gradient evaluations", r.GradientCalls)
		}
		fmt.Fprintf(out, ", %.1f s\n", rep.Seconds)
	}
	return nil
}

// ---- reward steering ----

// sampleSteering holds what the reward-steering flags set up for one run (the reward model,
// the report) and, for the chunk being sampled (begin), the batch of expanded captions (k
// particles or N candidates per image, image-major), the sampler hooks and the selection at
// the end.
type sampleSteering struct {
	opts     *SampleOptions
	k        int      // samples per output image
	expanded []string // (chunk images * k) captions
	velocity func(m *diffusion.DiT, prompts diffusion.Prompts) diffusion.VelocityFunc
	guide    diffusion.Guidance
	model    rewards.Model // the steering reward (nil without steering)
	nrg      *guidance.NRG
	fk       *guidance.FK
	// freeVelocity frees the chunk's velocity function (reward-condition or fine-tune
	// guidance); nil when there is none.
	freeVelocity func()
	scorer       *guidance.Scorer
	report       *steeringReport
	images       int
	utility      []float64            // (images) combined reward of the kept samples
	z            []map[string]float64 // (images)
	closeRwd     func() error         // closes the reward model
}

// newSampleSteering checks the steering flags against the model and loads the reward; the
// hooks of each chunk are made by begin (the first chunk's before anything is sampled, so a
// flag the reward refuses fails there). captions are the run's output images; base is the
// unmerged generator of fine-tune guidance (nil without it).
func newSampleSteering(cmd *cobra.Command, opts *SampleOptions, dev kernels.Device, m, base *diffusion.DiT, captions []string) (*sampleSteering, error) {
	st := &sampleSteering{opts: opts, k: max(opts.Particles, opts.BestOfN), images: len(captions), closeRwd: func() error { return nil }}
	if !opts.steering() && opts.RewardCondition == "" && base == nil {
		return st, nil
	}
	rep := &steeringReport{}
	st.report = rep
	if base != nil {
		enc := diffusion.EncodePrompts(m.Tokenizer, captions[:1])
		if _, err := guidance.NewFinetuneGuidance(base, m, enc, opts.GuidanceScale, opts.AdapterGuidanceScale); err != nil {
			return nil, err
		}
		st.velocity = func(m *diffusion.DiT, prompts diffusion.Prompts) diffusion.VelocityFunc {
			g, err := guidance.NewFinetuneGuidance(base, m, prompts, opts.GuidanceScale, opts.AdapterGuidanceScale)
			if err != nil {
				panic(err) // checked above with the same models and scale
			}
			st.freeVelocity = g.Free // its buffers are freed when the chunk ends
			return g.Velocity
		}
		rep.Methods = append(rep.Methods, "adapter-guidance")
		rep.AdapterGuidanceScale = opts.AdapterGuidanceScale
	}
	if opts.RewardCondition != "" {
		// The training maxima stored by align finetune --method reward-cond, read with the
		// model file (or its adapters).
		target, err := guidance.ParseRewardCondition(opts.RewardCondition, m.Config.RewardDims, m.RewardConditionMax)
		if err != nil {
			return nil, usageError{err}
		}
		enc := diffusion.EncodePrompts(m.Tokenizer, captions[:1])
		if _, err := guidance.NewRewardCFG(m, enc, target, opts.GuidanceScale, opts.RewardConditionScale, opts.RewardConditionPerDim); err != nil {
			return nil, usageError{err}
		}
		st.velocity = func(m *diffusion.DiT, prompts diffusion.Prompts) diffusion.VelocityFunc {
			g, err := guidance.NewRewardCFG(m, prompts, target, opts.GuidanceScale, opts.RewardConditionScale, opts.RewardConditionPerDim)
			if err != nil {
				panic(err) // checked above with the same inputs
			}
			st.freeVelocity = g.Free // its buffers are freed when the chunk ends
			return g.Velocity
		}
		rep.Methods = append(rep.Methods, "reward-condition")
		rep.RewardCondition = map[string]float64{}
		for d, v := range target {
			if !math.IsNaN(float64(v)) {
				rep.RewardCondition[m.Config.RewardDims[d]] = float64(v)
			}
		}
		rep.ConditionScale = opts.RewardConditionScale
	}
	if !opts.steering() {
		return st, nil
	}
	model, describe, closeFn, err := loadSampleRewards(cmd, opts.Rewards, opts.RewardGuidanceScale > 0, dev, m)
	if err != nil {
		return nil, err
	}
	st.closeRwd = closeFn
	st.model = model
	rep.Reward, rep.Combine = describe, opts.Combine
	if opts.RewardGuidanceScale > 0 {
		rep.Methods = append(rep.Methods, "nrg")
		rep.GuidanceScale = opts.RewardGuidanceScale
	}
	if opts.Particles > 1 || opts.BestOfN > 1 {
		if st.scorer, err = guidance.NewScorer(model, opts.RewardWeights, opts.Combine); err != nil {
			return nil, usageError{err}
		}
		if m.Config.Kind == diffusion.KindVideo {
			st.scorer.FPS = clipFPS // the rate the clips are written at
		}
	}
	if opts.Particles > 1 {
		rep.Methods = append(rep.Methods, "fk")
		rep.Particles, rep.FKLambda = opts.Particles, opts.FKLambda
	}
	if opts.BestOfN > 1 {
		rep.Methods = append(rep.Methods, "best-of-n")
		rep.BestOfN = opts.BestOfN
	}
	w, _ := rewards.ParseWeights(opts.RewardWeights, model.Dims())
	rep.Weights = rewards.FormatWeights(model.Dims(), w)
	return st, nil
}

// begin makes the expanded captions and the sampler hooks for the chunk of output images
// captions, the first of which is image first of the run: Flow-NRG on the chunk's samples,
// FK whose resampling streams are numbered from the run's image first.
func (st *sampleSteering) begin(captions []string, first int) error {
	opts := st.opts
	st.expanded = st.expanded[:0]
	for _, c := range captions {
		for range st.k {
			st.expanded = append(st.expanded, c)
		}
	}
	if st.model == nil {
		return nil
	}
	var hooks guidance.Chain
	var err error
	if opts.RewardGuidanceScale > 0 {
		st.nrg, err = guidance.NewNRG(st.model, opts.RewardWeights, opts.RewardGuidanceScale, opts.RewardGuidanceStart, opts.RewardGuidanceEnd, st.expanded)
		if err != nil {
			return usageError{err}
		}
		hooks = append(hooks, st.nrg)
	}
	if opts.Particles > 1 {
		st.fk, err = guidance.NewFK(st.scorer, st.expanded, guidance.FKOptions{Particles: opts.Particles, Lambda: opts.FKLambda,
			Potential: opts.FKPotential, ResampleEvery: opts.FKResampleEvery, Adaptive: opts.FKAdaptive, Seed: opts.Seed,
			FirstGroup: first})
		if err != nil {
			return usageError{err}
		}
		hooks = append(hooks, st.fk)
		st.report.FKPotential = st.fk.Opt.Potential
	}
	st.guide = nil
	if len(hooks) > 0 {
		st.guide = hooks
	}
	return nil
}

// end returns the device memory of the chunk's hooks (a GPU's is not reclaimed by the
// garbage collector; a run samples many chunks).
func (st *sampleSteering) end() {
	if st.nrg != nil {
		st.nrg.Free()
	}
	if st.fk != nil {
		st.fk.Free()
	}
	if st.freeVelocity != nil {
		st.freeVelocity()
		st.freeVelocity = nil
	}
}

// close frees what the run's steering holds on the device and closes the reward model.
func (st *sampleSteering) close() error {
	st.end()
	if st.scorer != nil {
		st.scorer.Free()
	}
	return st.closeRwd()
}

// finish selects one sample per image (FK: the highest final reward; best-of-N: the best
// candidate) and fills the report's counts.
func (st *sampleSteering) finish(x *kernels.Tensor) (*kernels.Tensor, error) {
	var sel []int
	var u []float64
	var sc *rewards.Scores
	switch {
	case st.fk != nil:
		res, err := st.fk.Finish(x)
		if err != nil {
			return nil, err
		}
		sel, u, sc = res.Selected, res.Utility, res.Scores
		st.report.Resamples += st.fk.Resamples
	case st.opts.BestOfN > 1:
		res, err := guidance.BestOfN(st.scorer, x, st.expanded, st.opts.BestOfN)
		if err != nil {
			return nil, err
		}
		sel, u, sc = res.Selected, res.Utility, res.Scores
	}
	if st.report != nil {
		if st.scorer != nil {
			st.report.RewardCalls = st.scorer.Samples
			st.report.CallsPerImage = float64(st.scorer.Samples) / float64(st.images)
		}
		if st.nrg != nil {
			st.report.GradientCalls = st.nrg.Calls // every chunk runs the same guided steps
		}
	}
	if sel == nil {
		return x, nil
	}
	for _, b := range sel {
		st.utility = append(st.utility, u[b])
		z := map[string]float64{}
		for d, name := range sc.Dims {
			z[name] = sc.Z[b][d]
		}
		st.z = append(st.z, z)
	}
	out := guidance.Gather(x, sel)
	x.Dev.Free(x)
	return out, nil
}

// annotate adds the kept sample's rewards to its file entry.
func (st *sampleSteering) annotate(f *sampleFile, i int) {
	if i < len(st.utility) {
		u := st.utility[i]
		f.Reward, f.Rewards = &u, st.z[i]
	}
}

// loadSampleRewards opens each of specs (loadSampleReward) and makes them one model
// (rewards.NewEnsemble), described by their descriptions joined with " + ".
func loadSampleRewards(cmd *cobra.Command, specs []string, nrg bool, dev kernels.Device, gen *diffusion.DiT) (rewards.Model, string, func() error, error) {
	var models []rewards.Model
	var descs []string
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	for _, spec := range specs {
		m, desc, closeFn, err := loadSampleReward(cmd, spec, nrg, dev, gen)
		if err != nil {
			closeAll()
			return nil, "", nil, err
		}
		models, descs, closers = append(models, m), append(descs, desc), append(closers, closeFn)
	}
	ens, err := rewards.NewEnsemble(models)
	if err != nil {
		closeAll()
		return nil, "", nil, usageError{fmt.Errorf("--reward: %w", err)}
	}
	return ens, strings.Join(descs, " + "), closeAll, nil
}

// loadSampleReward opens the reward model spec (a --reward value) on the generator's device
// (native and latent models) or through ONNX Runtime; with nrg (gradient guidance), default
// is the embedded noise-aware latent model. A clean image reward scores a video model's
// clips frame by frame.
func loadSampleReward(cmd *cobra.Command, spec string, nrg bool, dev kernels.Device, gen *diffusion.DiT) (rewards.Model, string, func() error, error) {
	none := func() error { return nil }
	video := gen.Config.Kind == diffusion.KindVideo
	native := func(m *rewards.Native, desc string) (rewards.Model, string, func() error, error) {
		// The samples are scored as the generator makes them (no resize in memory): the model
		// reads their shape, or for an image model on clips the shape of one frame.
		perFrame := video && m.Config.Kind != rewards.KindVideo
		got := gen.Config.BatchShape(1)[1:]
		if perFrame {
			got = got[1:]
		}
		if want := m.Config.SampleShape(); !slices.Equal(want, got) {
			return nil, "", nil, usageError{fmt.Errorf("--reward %s: the reward model reads samples of shape %v, the generator makes %v", spec, want, got)}
		}
		if perFrame {
			return guidance.PerFrame{Model: m}, desc + " (per frame)", none, nil
		}
		return m, desc, none, nil
	}
	latent := func(m *rewards.LatentReward, desc string) (rewards.Model, string, func() error, error) {
		m.SetTrainable(false)
		if want, got := m.Config.Generator.BatchShape(1), gen.Config.BatchShape(1); !slices.Equal(want, got) {
			return nil, "", nil, usageError{fmt.Errorf("--reward %s: the latent reward model reads samples of shape %v, the generator makes %v",
				spec, want[1:], got[1:])}
		}
		return m, desc + " (noise-aware latent)", none, nil
	}
	ext := strings.ToLower(filepath.Ext(spec))
	switch {
	case spec == "default" && nrg && video:
		return nil, "", nil, usageError{errors.New("--reward-guidance-scale on a video model needs a noise-aware latent video reward model, " +
			"and none is embedded\n---> HINT: train one with `align reward train --latent --video --data data/emoji -o reward-latent-video/` " +
			"and pass --reward reward-latent-video/model.safetensors; or steer with a score-only reward (--particles, --best-of-n)")}
	case spec == "default" && nrg:
		// Gradient guidance needs a noise-aware model: the embedded latent one.
		c, err := nn.ReadCheckpoint("embedded default latent reward model", assets.RewardLatent)
		if err != nil {
			return nil, "", nil, err
		}
		m, err := rewards.LatentFromCheckpoint(dev, c)
		if err != nil {
			return nil, "", nil, err
		}
		return latent(m, "default")
	case spec == "default" || spec == defaultVideoReward:
		m, err := loadDefaultReward(dev, video)
		if err != nil {
			return nil, "", nil, err
		}
		return native(m, "default (embedded) "+m.Config.Kind+" reward model")
	case ext == ".safetensors":
		c, err := nn.LoadCheckpoint(spec)
		if err != nil {
			return nil, "", nil, err
		}
		switch t := c.Extra["model_type"]; t {
		case rewards.ModelTypeNative:
			m, err := rewards.NativeFromCheckpoint(dev, c)
			if err != nil {
				return nil, "", nil, err
			}
			m.SetTrainable(false)
			return native(m, spec)
		case rewards.ModelTypeLatent:
			m, err := rewards.LatentFromCheckpoint(dev, c)
			if err != nil {
				return nil, "", nil, err
			}
			return latent(m, spec)
		default:
			return nil, "", nil, usageError{fmt.Errorf("--reward %s: model_type %q is not a reward model", spec, t)}
		}
	}
	lr, err := loadReward(cmd, &ScoreOptions{Reward: spec})
	if err != nil {
		return nil, "", nil, err
	}
	return lr.model, lr.describe, lr.close, nil
}

// promptWarnings is how many prompts warnPromptWords names one by one.
const promptWarnings = 3

// warnPromptWords warns about prompt words outside the model's vocabulary and beyond its
// token limit: a line for each of the first promptWarnings prompts with either, then one line
// for the rest (a prompts file of held-out concepts would print a line per prompt).
func warnPromptWords(w io.Writer, tok *diffusion.Tokenizer, prompts []string) {
	named, rest, truncated := 0, 0, 0
	var words []string
	seen := map[string]bool{}
	for _, p := range prompts {
		_, _, unk, trunc := tok.Encode(p)
		if len(unk) == 0 && trunc == 0 {
			continue
		}
		if named < promptWarnings {
			named++
			if len(unk) > 0 {
				fmt.Fprintf(w, "align: warning: prompt %q: words not in the model's vocabulary (%d words): %s\n",
					p, tok.VocabSize(), strings.Join(unk, ", "))
			}
			if trunc > 0 {
				fmt.Fprintf(w, "align: warning: prompt %q: %s beyond the model's %d-token limit left out\n", p, counted(trunc, "word"), tok.MaxLen)
			}
			continue
		}
		rest++
		if trunc > 0 {
			truncated++
		}
		for _, u := range unk {
			if !seen[u] {
				seen[u] = true
				words = append(words, u)
			}
		}
	}
	if rest == 0 {
		return
	}
	note := ""
	if len(words) > 0 {
		note = ": " + wordList(words)
	}
	if truncated > 0 {
		note += fmt.Sprintf("; %s longer than the %d-token limit", counted(truncated, "prompt"), tok.MaxLen)
	}
	more := fmt.Sprintf("%d more prompts", rest)
	if rest == 1 {
		more = "1 more prompt"
	}
	fmt.Fprintf(w, "align: warning: %s with words not in the model's vocabulary or beyond its token limit%s\n", more, note)
}

// wordList is words joined by commas, the first 12 of them and a count of the rest.
func wordList(words []string) string {
	if len(words) <= 12 {
		return strings.Join(words, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(words[:12], ", "), len(words)-12)
}
