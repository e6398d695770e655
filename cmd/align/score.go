// align score: score images or clips with a reward model (the native model, a noise-aware
// latent model at t = 0, or any ONNX model with a manifest) and write one row per input (per
// window of a clip with --clips-per-video): every dimension raw and z-scored plus the
// weighted total, as CSV, JSONL or a table.
//
// Test: go test ./cmd/align -run Score
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/alignkit/align/rewards/remote"
	"github.com/alignkit/align/rewards/scoring"
)

// defaultRewardModel and defaultVideoRewardModel are the embedded default reward models (native
// models' safetensors bytes), used by --reward default and default-video; tests swap them.
var (
	defaultRewardModel      = assets.RewardImage
	defaultVideoRewardModel = assets.RewardVideo
)

// defaultVideoReward is the --reward name of the embedded video reward model. Commands that
// know their generator (sample, pairs, eval, finetune) read "default" as it for a video model.
const defaultVideoReward = "default-video"

// rewardForKind is the --reward value name for samples of a video (or image) generator:
// "default" becomes default-video for a video model.
func rewardForKind(name string, video bool) string {
	if name == "default" && video {
		return defaultVideoReward
	}
	return name
}

// Output formats of align score.
const (
	formatCSV   = "csv"
	formatJSONL = "jsonl"
	formatTable = "table"
)

// ScoreOptions are the flags of `align score`.
type ScoreOptions struct {
	Inputs      []string // --input (repeatable) and positional arguments
	Prompt      string
	PromptsFile string
	Reward      string   // the reward model (align reward calibrate, and each of Rewards in turn)
	Rewards     []string // align score's --reward (repeatable): one model, or an ensemble
	Manifest    string
	Weights     string
	Combine     string
	LSCQuantile float64
	// WindowReduce is --window-reduce: a row per clip, its windows' mean, min or max.
	WindowReduce string
	Format       string
	JSON         bool
	Output       string
	BatchSize    int
	Workers      int
	Threads      int
	NumFrames    int
	FPS          float64
	SourceFPS    float64
	// ClipsPerVideo is --clips-per-video: windows scored per clip (1 the first, 0 every one).
	ClipsPerVideo int
	Shard         string
	Strict        bool
	ORTLibrary    string

	shardI, shardN int
	// rewardFlag is the flag that named Reward, for errors ("": --reward; align eval's --judge).
	rewardFlag string
}

func newCmdScore(runF func(*ScoreOptions) error) *cobra.Command {
	opts := &ScoreOptions{}
	cmd := &cobra.Command{
		Use:   "score [INPUT...]",
		Short: "Score images or videos with a reward model",
		Long: `Score images or clips with a reward model and write one row per input: index, path,
prompt, (num_frames, fps for clips; start for windows,) every dimension raw and z-scored
with the model's calibration (<dim>, <dim>_z), the weighted total of the z-scores
(--weights, --combine), and an error column.

Inputs (--input, repeatable, or arguments): a folder (its images; for a video reward model
its GIFs, folders of frames and video files), a glob pattern, a single file, or a .jsonl/.csv list with
a path and optionally prompt, fps, num_frames and source_fps per row. The prompt of an input
is, in this order: its list row's, the --prompts file's entry for its path, name or stem,
--prompt, the prompt align sample wrote it for (an output folder of align sample: its
samples.json, which also keeps its grid out of the inputs), or its file name
("003-red-apple.png" reads "red apple").

Clips: --num-frames frames (the model's count) are sampled at --fps frames per second from
the start, or spread over the whole clip with --fps 0. GIFs and video files (.mp4, .mov,
.webm, .mkv, .avi: read with ffmpeg, only the frames sampled decoded; make ffmpeg fetches one)
carry their timing; folders of frames need --source-fps (or a source_fps column) when --fps > 0.
--clips-per-video N cuts a clip into windows of --num-frames frames at --fps, back to back
from its start, and scores N of them spread over it (0: every window), a row each with its
start in seconds (a start column): a long video scored window by window, its frames decoded
as the model takes them. --window-reduce mean (min, max) writes a row per clip instead, its
windows' mean (and a windows column with their count).

An input that cannot be read gives a row with the error (the run goes on; --strict stops
it). The output file is written atomically. --shard i/n scores the i-th of n contiguous parts
of the input list, for a scheduler's array jobs; concatenated in shard order the outputs are
the whole list in order.`,
		Example: `  $ align score samples/ --reward reward/model.safetensors
  $ align sample --prompt "a dog's face, smiling" --num-images-per-prompt 4 -o out/dog && align score out/dog
  $ align score --input 'out/*.png' --prompt "red apple" --reward reward/model.safetensors --json
  $ align score --input list.csv --reward pickscore.onnx --weights pickscore=1 -o scores.csv
  $ align score out/ --reward default --reward aesthetic.json --weights vq=1,ta=1,aesthetic=2   # two models as one
  $ align score --input clips/ --reward video-reward/model.safetensors --fps 4 --num-frames 8 --weights vq=1,mq=1,ta=2
  $ align score 'videos/*.mp4' --reward default-video --prompts prompts.jsonl
  $ align score talk.mp4 --reward default-video --fps 4 --clips-per-video 0 -o windows.csv   # every 2 s window
  $ align score 'videos/*.mp4' --reward default-video --fps 4 --clips-per-video 8 --window-reduce min   # worst of 8 windows
  $ align score --input list.jsonl --reward reward.onnx --shard $JOB_COMPLETION_INDEX/8 -o scores-$JOB_COMPLETION_INDEX.csv`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = append(opts.Inputs, args...)
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return scoreRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	addInputFlags(f, opts)
	f.StringArrayVar(&opts.Rewards, "reward", []string{"default"}, "reward model: default (embedded image model), default-video (embedded video model), "+
		"FILE.safetensors (align reward train; a noise-aware latent model scores at t = 0), FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json; "+
		"repeat it to score with several (their dimensions side by side, weighed together by --weights)")
	f.StringVar(&opts.Weights, "weights", "", "weights of the z-scored dimensions, e.g. vq=1,ta=2 (default: 1 each)")
	f.StringVar(&opts.Combine, "combine", rewards.CombineLinear, "how the total combines dimensions: "+strings.Join(rewards.Combiners, ", "))
	f.Float64Var(&opts.LSCQuantile, "lsc-quantile", 0.85, "lsc: per-prompt reference quantile of each dimension")
	f.StringVar(&opts.WindowReduce, "window-reduce", "", "a row per clip, not per window: the "+strings.Join(scoring.Reducers, ", ")+" of its windows' scores (with --clips-per-video)")
	f.StringVar(&opts.Format, "format", "", "csv, jsonl or table (default: from the -o extension, else table)")
	f.BoolVar(&opts.JSON, "json", false, "JSONL output (same as --format jsonl)")
	f.StringVarP(&opts.Output, "output", "o", "", "output file, written atomically (default: stdout)")
	f.StringVar(&opts.Shard, "shard", "", "score part i of n of the inputs, e.g. 0/4")
	return cmd
}

// addInputFlags registers the flags that say what to score and how to read it, which
// align score and align reward calibrate share (each registers its own --reward).
func addInputFlags(f *pflag.FlagSet, opts *ScoreOptions) {
	f.StringArrayVarP(&opts.Inputs, "input", "i", nil, "folder, glob, file, or .jsonl/.csv list of inputs (repeatable)")
	f.StringVar(&opts.Prompt, "prompt", "", "prompt of every input that has none of its own")
	f.StringVar(&opts.PromptsFile, "prompts", "", "JSONL or CSV file mapping inputs (path, name or stem) to prompts")
	f.StringVar(&opts.Manifest, "manifest", "", "manifest of an ONNX reward model (default: FILE.onnx with .json)")
	f.IntVar(&opts.BatchSize, "batch-size", 16, "samples per model call")
	f.IntVar(&opts.Workers, "workers", 0, "decoding goroutines (0: one per CPU)")
	f.IntVar(&opts.Threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
	f.IntVar(&opts.NumFrames, "num-frames", 0, "frames per clip (0: the reward model's count)")
	f.Float64Var(&opts.FPS, "fps", 0, "clip sampling rate in frames per second (0: spread the frames over the whole clip)")
	f.Float64Var(&opts.SourceFPS, "source-fps", 0, "frame rate of folders of frames (needed with --fps > 0)")
	f.IntVar(&opts.ClipsPerVideo, "clips-per-video", 1, "windows of --num-frames frames at --fps scored per clip, a row each, spread over it (0: every window)")
	f.BoolVar(&opts.Strict, "strict", false, "stop at the first input that cannot be read")
	f.StringVar(&opts.ORTLibrary, "onnxruntime", "", "ONNX Runtime library (default: $"+onnx.EnvLibrary+", third_party/onnxruntime from make ort, the system's)")
}

// validateInputs checks the flags addInputFlags registers.
func (o *ScoreOptions) validateInputs() error {
	switch {
	case len(o.Inputs) == 0:
		return flagErrorf("no inputs: give a folder, glob, file or list with --input (or as arguments)")
	case o.BatchSize < 1:
		return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
	case o.Workers < 0 || o.Threads < 0 || o.NumFrames < 0:
		return flagErrorf("--workers, --threads and --num-frames must be >= 0")
	case !(o.FPS >= 0 && o.FPS <= 1e4) || !(o.SourceFPS >= 0 && o.SourceFPS <= 1e4):
		return flagErrorf("--fps and --source-fps must be in [0, 10000]")
	case o.ClipsPerVideo < 0:
		return flagErrorf("--clips-per-video %d: want 1 or more, or 0 for every window", o.ClipsPerVideo)
	case o.ClipsPerVideo != 1 && o.FPS == 0:
		return flagErrorf("--clips-per-video %d cuts windows at --fps: give the rate (--fps 0 spreads one clip over the whole video)", o.ClipsPerVideo)
	case o.Reward == "" && len(o.Rewards) == 0 || slices.Contains(o.Rewards, ""):
		return flagErrorf("--reward is empty: give default, FILE.safetensors, FILE.onnx or FILE.json")
	}
	if err := checkManifestFlag(o.Manifest, o.Rewards); err != nil {
		return err
	}
	o.shardI, o.shardN = 0, 1
	return nil
}

func (o *ScoreOptions) validate() error {
	if err := o.validateInputs(); err != nil {
		return err
	}
	if o.JSON {
		if o.Format != "" && o.Format != formatJSONL {
			return flagErrorf("--json and --format %s contradict each other", o.Format)
		}
		o.Format = formatJSONL
	}
	if o.Format == "" {
		switch strings.ToLower(filepath.Ext(o.Output)) {
		case ".csv":
			o.Format = formatCSV
		case ".jsonl", ".json":
			o.Format = formatJSONL
		case "":
			o.Format = formatTable
			if o.Output != "" {
				o.Format = formatCSV
			}
		default:
			o.Format = formatCSV
		}
	}
	switch {
	case o.Format != formatCSV && o.Format != formatJSONL && o.Format != formatTable:
		return flagErrorf("--format %q: want csv, jsonl or table", o.Format)
	case !slices.Contains(rewards.Combiners, o.Combine):
		return flagErrorf("--combine %q: want one of %s", o.Combine, strings.Join(rewards.Combiners, ", "))
	case !(o.LSCQuantile >= 0 && o.LSCQuantile <= 1):
		return flagErrorf("--lsc-quantile must be in [0, 1], got %v", o.LSCQuantile)
	case o.WindowReduce != "" && !slices.Contains(scoring.Reducers, o.WindowReduce):
		return flagErrorf("--window-reduce %q: want one of %s", o.WindowReduce, strings.Join(scoring.Reducers, ", "))
	case o.WindowReduce != "" && o.ClipsPerVideo == 1:
		return flagErrorf("--window-reduce joins the windows of a clip: give --clips-per-video (0 for every window, or N)")
	}
	if o.Shard != "" {
		i, n, err := scoring.ParseShard(o.Shard)
		if err != nil {
			return usageError{err}
		}
		o.shardI, o.shardN = i, n
	}
	return nil
}

// loadedReward is a reward model with what the scorer needs to feed it.
type loadedReward struct {
	model rewards.Model
	dev   kernels.Device
	// onCmdDevice marks a model that computes on the command's --device (a native one);
	// remote and ONNX models compute apart from it.
	onCmdDevice bool
	geometry    onnx.Geometry
	clips       bool
	frames      int
	// sampleFPS is the rate a video model's training clips were taken at (its config's, or
	// its ONNX manifest's; 0: not known).
	sampleFPS float64
	describe  string
	close     func() error
}

// loadReward opens --reward: the embedded default, a native .safetensors file, or an ONNX
// model through its manifest.
func loadReward(cmd *cobra.Command, opts *ScoreOptions) (*loadedReward, error) {
	// inProcess is a Go model of square size x size samples (frames per clip for video).
	inProcess := func(m rewards.Model, dev kernels.Device, video bool, frames, size int, desc string) *loadedReward {
		return &loadedReward{model: m, dev: dev, onCmdDevice: true, clips: video, frames: frames,
			geometry: onnx.Geometry{Height: size, Width: size, Resize: onnx.ResizeStretch, Filter: onnx.FilterBox},
			describe: desc, close: func() error { return nil }}
	}
	native := func(m *rewards.Native, dev kernels.Device, desc string) *loadedReward {
		lr := inProcess(m, dev, m.Config.Kind == rewards.KindVideo, m.Config.Frames, m.Config.ImageSize, desc)
		lr.sampleFPS = m.Config.SampleFPS
		return lr
	}
	flag := cmp.Or(opts.rewardFlag, "--reward")
	ext := strings.ToLower(filepath.Ext(opts.Reward))
	switch {
	case opts.Reward == "default" || opts.Reward == defaultVideoReward:
		dev, err := deviceFromCmd(cmd)
		if err != nil {
			return nil, err
		}
		m, err := loadDefaultReward(dev, opts.Reward == defaultVideoReward)
		if err != nil {
			return nil, err
		}
		return native(m, dev, "default (embedded) "+m.Config.Kind+" reward model"), nil
	case ext == ".safetensors":
		dev, err := deviceFromCmd(cmd)
		if err != nil {
			return nil, err
		}
		m, err := rewards.LoadModel(dev, opts.Reward)
		if err != nil {
			return nil, err
		}
		switch m := m.(type) {
		case *rewards.Native:
			return native(m, dev, opts.Reward), nil
		case *rewards.LatentReward:
			// A noise-aware model scores clean samples as x_t at t = 0 (Batch.Timesteps nil).
			g := m.Config.Generator
			return inProcess(m, dev, g.Kind == diffusion.KindVideo, g.Frames, g.ImageSize, opts.Reward+" (noise-aware, at t = 0)"), nil
		}
		return nil, fmt.Errorf("%s: reward model of type %T cannot score files", opts.Reward, m)
	case ext == ".json" && remote.IsManifest(opts.Reward):
		if opts.Manifest != "" {
			return nil, usageError{fmt.Errorf("--manifest names an ONNX model's manifest; %s is a remote model's manifest itself", opts.Reward)}
		}
		m, err := remote.Load(opts.Reward)
		if err != nil {
			return nil, err
		}
		return &loadedReward{model: m, dev: kernels.NewCPU(1), geometry: m.Geometry(), clips: m.IsClip(), frames: m.Frames(),
			describe: opts.Reward + " (remote, " + m.Manifest.URL + ")", close: m.Close}, nil
	case ext == ".onnx" || ext == ".json":
		man := opts.Manifest
		if man == "" {
			man = onnx.ManifestPathFor(opts.Reward)
		}
		if _, err := os.Stat(man); err != nil {
			return nil, fmt.Errorf("reward %s: manifest %s: %w\n---> HINT: an ONNX reward model needs a manifest (see README, \"Scoring and ONNX\"); "+
				"align export onnx writes one beside the model, scripts/export_onnx writes one for CLIP-style scorers; pass it with --manifest", opts.Reward, man, err)
		}
		m, err := onnx.Load(man, onnx.Options{Library: opts.ORTLibrary, Threads: opts.Threads})
		if err != nil {
			return nil, err
		}
		if ext == ".onnx" && opts.Manifest != "" {
			if got, want := filepath.Clean(m.Manifest.Path(m.Manifest.Model)), filepath.Clean(opts.Reward); got != want {
				m.Close()
				return nil, usageError{fmt.Errorf("%s %s but the manifest %s names the model %s", flag, want, man, got)}
			}
		}
		return &loadedReward{model: m, dev: kernels.NewCPU(1), geometry: m.Geometry(), clips: m.IsClip(), frames: m.Frames(),
			sampleFPS: m.Manifest.Image.FPS, describe: opts.Reward + " (ONNX)", close: m.Close}, nil
	}
	return nil, usageError{fmt.Errorf("%s %s: want default, a .safetensors, .onnx or .json (manifest) file", flag, opts.Reward)}
}

// loadDefaultReward builds the embedded default image (or video) reward model, frozen for
// scoring.
func loadDefaultReward(dev kernels.Device, video bool) (*rewards.Native, error) {
	b, name, train := defaultRewardModel, "embedded default reward model", "align reward train --data data/emoji -o reward/"
	if video {
		b, name, train = defaultVideoRewardModel, "embedded default video reward model", "align reward train --data data/emoji --video -o reward/"
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("no %s in this build\n"+
			"---> HINT: train one with `%s` and pass --reward reward/model.safetensors, "+
			"or pass an ONNX model with --reward FILE.onnx", strings.TrimPrefix(name, "embedded "), train)
	}
	c, err := nn.ReadCheckpoint(name, b)
	if err != nil {
		return nil, err
	}
	m, err := rewards.NativeFromCheckpoint(dev, c)
	if err != nil {
		return nil, err
	}
	m.SetTrainable(false)
	return m, nil
}

func scoreRun(cmd *cobra.Command, opts *ScoreOptions) error {
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	set, err := loadRewardSet(cmd, opts, opts.Rewards)
	if err != nil {
		return err
	}
	defer set.close()
	dims := set.model.Dims()
	w, err := rewards.ParseWeights(opts.Weights, dims)
	if err != nil {
		return usageError{fmt.Errorf("--weights: %w", err)}
	}
	sc, err := scoreInputs(cmd, opts, set)
	if err != nil {
		return err
	}
	rows, noun := sc.rows, sc.noun
	if opts.WindowReduce != "" {
		if rows, err = scoring.ReduceWindows(rows, opts.WindowReduce); err != nil {
			return err
		}
		noun = "clip"
	}
	total, err := scoring.Totals(rows, w, opts.Combine, opts.LSCQuantile)
	if err != nil {
		return err
	}
	t := &scoring.Table{Dims: dims, Clips: set.clips, Rows: rows, Total: total, Weights: w, Combine: opts.Combine,
		Windows: opts.ClipsPerVideo != 1 && opts.WindowReduce == "", Reduced: opts.WindowReduce != ""}
	write := func(out io.Writer) error {
		switch opts.Format {
		case formatCSV:
			return t.WriteCSV(out)
		case formatJSONL:
			return t.WriteJSONL(out)
		}
		return t.WriteTable(out)
	}
	if opts.Output != "" {
		if err := writeOutputFile(opts.Output, write); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s (%s, %s, total = %s of %s) in %s\n", opts.Output, counted(len(rows), "row"), opts.Format, opts.Combine,
			rewards.FormatWeights(dims, w), fmtDuration(time.Since(start)))
	} else if err := write(cmd.OutOrStdout()); err != nil {
		return err
	}
	sum := t.Summarize()
	if sum.N > 0 {
		fmt.Fprintln(stderr, sum.Line(dims, noun+"s"))
	}
	for i := range rows {
		if !rows[i].OK() {
			if sum.N == 0 { // a script reading the exit status must not take this for a result
				return fmt.Errorf("none of the %d inputs could be scored (error column), e.g. %s", sc.inputs, rows[i].Err)
			}
			fmt.Fprintf(stderr, "align: %d of %d inputs could not be scored (error column), e.g. %s\n", sc.failed, sc.inputs, rows[i].Err)
			break
		}
	}
	return nil
}

// scoredInputs are the rows of scoreInputs.
type scoredInputs struct {
	rows   []scoring.Result // one per input, or per window of a clip
	inputs int              // inputs scored (this shard's)
	failed int              // inputs with an error row: not read or not scored (wholly)
	noun   string           // what a scored row is: image, clip or window
}

// scoreInputs scores the inputs the flags name (this shard's) with every model of set (the
// windows of clips --clips-per-video asks for), a progress bar on stderr.
func scoreInputs(cmd *cobra.Command, opts *ScoreOptions, set *rewardSet) (*scoredInputs, error) {
	stderr := cmd.ErrOrStderr()
	for _, lr := range set.members {
		if opts.NumFrames > 0 && !lr.clips {
			return nil, flagErrorf("--num-frames %d: %s scores images", opts.NumFrames, lr.describe)
		}
		if lr.clips && opts.NumFrames > 0 && opts.NumFrames != lr.frames {
			return nil, flagErrorf("--num-frames %d: %s reads clips of %d frames", opts.NumFrames, lr.describe, lr.frames)
		}
	}
	if opts.ClipsPerVideo != 1 && !set.clips {
		return nil, flagErrorf("--clips-per-video %d: %s scores images", opts.ClipsPerVideo, set.describe)
	}
	for _, lr := range set.members {
		if lr.sampleFPS > 0 && opts.FPS != lr.sampleFPS {
			sampled := fmt.Sprintf("at --fps %g", opts.FPS)
			if opts.FPS == 0 {
				sampled = "spread over each clip (--fps 0)"
			}
			fmt.Fprintf(stderr, "align: warning: %s learnt from clips taken at %g fps; these are sampled %s, which shows it motion at other speeds: "+
				"give --fps %g to score clips as it saw them\n", lr.describe, lr.sampleFPS, sampled, lr.sampleFPS)
		}
	}
	lo := scoring.ListOptions{Clips: set.clips, Prompt: opts.Prompt}
	if opts.PromptsFile != "" {
		var err error
		if lo.Prompts, err = scoring.ReadPrompts(opts.PromptsFile); err != nil {
			return nil, usageError{fmt.Errorf("--prompts: %w", err)}
		}
	}
	all, err := scoring.List(opts.Inputs, lo)
	if err != nil {
		return nil, usageError{err}
	}
	items := scoring.Shard(all, opts.shardI, opts.shardN)
	out := &scoredInputs{inputs: len(items), noun: "image"}
	if set.clips {
		out.noun = "clip"
	}
	if opts.shardN > 1 {
		fmt.Fprintf(stderr, "shard %d/%d: %d of %s\n", opts.shardI, opts.shardN, len(items), counted(len(all), out.noun))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressBar(stderr, "score", len(items)*len(set.members))
	sc := scoring.Scorer{FPS: opts.FPS, SourceFPS: opts.SourceFPS, BatchSize: opts.BatchSize, Workers: opts.Workers, Strict: opts.Strict}
	progress := func(done, _ int) { bar.Update(done, "") }
	if opts.ClipsPerVideo != 1 {
		sc.Windows, out.noun = cmp.Or(opts.ClipsPerVideo, scoring.AllWindows), "window"
		progress = func(done, rows int) { bar.Update(done, counted(rows, "row")) }
	}
	start := time.Now()
	if out.rows, err = set.run(ctx, items, sc, progress); err != nil {
		if ctx.Err() != nil {
			return nil, errCancelled
		}
		return nil, err
	}
	elapsed := time.Since(start)
	scored, failed := 0, map[int]bool{} // an input's windows may share a model error
	for i := range out.rows {
		if out.rows[i].OK() {
			scored++
		} else {
			failed[out.rows[i].Index] = true
		}
	}
	out.failed = len(failed)
	bar.Finish(fmt.Sprintf("%s, %s, %.1f/s", counted(scored, out.noun), counted(out.failed, "error"), float64(scored)/max(elapsed.Seconds(), 1e-9)))
	return out, nil
}

// writeOutputFile writes a result file atomically (diffusion.WriteFileAtomic: a temporary
// file renamed into place) when path is or will be a regular file; an existing device, pipe
// or socket (-o /dev/stdout, a FIFO a scheduler reads) is written in place, never replaced.
func writeOutputFile(path string, fill func(io.Writer) error) error {
	st, err := os.Stat(path)
	if err != nil || st.Mode().IsRegular() {
		return diffusion.WriteFileAtomic(path, fill)
	}
	if st.IsDir() {
		return fmt.Errorf("write %s: is a folder", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := fill(bw); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// writeJSONFile writes v as indented JSON to path, atomically: a run's config.json, the
// index of a sample directory.
func writeJSONFile(path string, v any) error {
	return diffusion.WriteFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
