// align pretrain: train a DiT text-to-image (or text-to-video) model from scratch on an
// `align data prepare` dataset with the flow-matching objective, with checkpoints that
// resume exactly, an EMA model file, a JSONL log, a loss-curve PNG and sample grids. A
// video model can start from a trained image model instead (--init-from, inflation:
// diffusion/inflate.go).
//
// Test: go test ./cmd/align -run Pretrain
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// PretrainOptions are the flags of `align pretrain`.
type PretrainOptions struct {
	Data       string
	Video      bool
	ConfigFile string // --config: a model config JSON
	OutputDir  string

	// Model size (ignored with --config or when resuming, where they must not be set).
	Width, Depth, Heads, PatchSize, TubeletFrames int
	MLPRatio                                      float64
	TextLayers, TextWidth, MaxTextLength          int
	RewardDims                                    []string
	Shift                                         float64

	// InitFrom is the image model a --video run starts from: a model file, or "default"
	// for the embedded one; "" for seeded weights.
	InitFrom string

	Train                diffusion.PretrainConfig
	ResumeFromCheckpoint string
	TimeLimit            time.Duration

	modelFlags []string // model-size flags set on the command line
}

func newCmdPretrain(runF func(*PretrainOptions) error) *cobra.Command {
	opts := &PretrainOptions{Train: diffusion.DefaultPretrainConfig()}
	img := diffusion.DefaultImageConfig()
	cmd := &cobra.Command{
		Use:   "pretrain",
		Short: "Train a text-to-image or text-to-video DiT from scratch, or a video DiT from an image DiT",
		Long: `Train a DiT velocity model with the flow-matching objective on the training split of a
dataset written by ` + "`align data prepare`" + ` (the emoji) or ` + "`align data import`" + ` (your own captioned
images or clips). The output directory receives:

  model.safetensors               EMA weights with config and tokenizer (what align sample loads)
  checkpoint-<step>.safetensors   raw + EMA weights, AdamW moments, RNG, step, data position
  logs.jsonl                      step, loss, lr, grad_norm, samples/s per step
  loss.png, samples/step-N.png    loss curve and validation samples at each checkpoint
  config.json                     model and training configuration, device and precision of the run

SIGINT (Ctrl-C) finishes the current step, writes a checkpoint and exits with code 2;
--time-limit does the same and exits 0. Resume with --resume-from-checkpoint latest: the
losses continue exactly as in an uninterrupted run (on the same --device and --precision; a
resume on others continues with a warning).

--concept-balance α draws each step's samples with probability ∝ n_c^-α, n_c the number
of training samples of the sample's concept (α = 1: every concept alike, a variant
uniformly within it; 0: every sample once per epoch). The draws of step s depend on the
seed and s only. A resume may change α (and extend --max-train-steps): a finished run
continues as a second stage with balancing from its last checkpoint.

--video --init-from IMAGE_MODEL (a model file, or default for the embedded image model)
starts the video model from a trained image model: its size is the image model's (size
flags may only repeat it), the patch embedding is inflated to tubelets (the image kernel
divided by the tubelet's frames on each frame), every other weight with the same meaning
is copied, and the clip captions' new words get new ids after the image model's. The
source's path and sha256 are recorded in config.json and in every checkpoint, so a resume
needs no --init-from (and refuses a different one).` + skippedStepsHelp,
		Example: `  $ align pretrain --data data/emoji --max-train-steps 20000 -o base/
  $ align pretrain --data data/emoji -o base/ --resume-from-checkpoint latest --time-limit 2h
  $ align pretrain --data data/emoji -o base/ --resume-from-checkpoint latest --concept-balance 1 --max-train-steps 30000
  $ align pretrain --data data/emoji --video --hidden-size 256 --num-layers 6 -o video/
  $ align pretrain --data data/emoji --video --init-from default -o video/
  $ align pretrain --data data/emoji --reward-dims vq,ta,mq -o rc/
  $ align pretrain --data data/emoji --config model.json -o custom/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range []string{"hidden-size", "num-layers", "num-attention-heads", "patch-size", "tubelet-frames", "mlp-ratio",
				"text-layers", "text-width", "max-text-length", "reward-dims", "shift"} {
				if cmd.Flags().Changed(n) {
					opts.modelFlags = append(opts.modelFlags, "--"+n)
				}
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return pretrainRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	t := &opts.Train
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory (align data prepare, or align data import of your own)")
	f.BoolVar(&opts.Video, "video", false, "train a video model on the dataset's clips")
	f.StringVar(&opts.ConfigFile, "config", "", "model config JSON instead of the size flags")
	f.StringVar(&opts.InitFrom, "init-from", "", "start the --video model from this image model (a model file, or default: the embedded one)")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "align-pretrain", "directory for the model, checkpoints and logs")
	f.IntVar(&opts.Width, "hidden-size", img.Width, "transformer width C")
	f.IntVar(&opts.Depth, "num-layers", img.Depth, "DiT blocks")
	f.IntVar(&opts.Heads, "num-attention-heads", img.Heads, "attention heads")
	f.IntVar(&opts.PatchSize, "patch-size", 0, "patch size p (default 4)")
	f.IntVar(&opts.TubeletFrames, "tubelet-frames", 2, "frames per tubelet (video)")
	f.Float64Var(&opts.MLPRatio, "mlp-ratio", img.MLPRatio, "MLP hidden width / width")
	f.IntVar(&opts.TextLayers, "text-layers", img.TextLayers, "text encoder blocks")
	f.IntVar(&opts.TextWidth, "text-width", 0, "text encoder width (default: --hidden-size)")
	f.IntVar(&opts.MaxTextLength, "max-text-length", img.MaxTextLen, "tokens per caption")
	f.StringSliceVar(&opts.RewardDims, "reward-dims", nil, "reward-condition dimensions, e.g. vq,ta (empty: no reward slot)")
	f.Float64Var(&opts.Shift, "shift", img.Shift, "timestep shift (training times and the model's sampling default)")
	addTrainFlags(f, trainFlags{Loop: &t.TrainLoop, SeedDraws: "weights, data order, noise", BatchUnit: "samples per step",
		Betas: &t.AdamBetas, EMADecay: &t.EMADecay, ResumeFromCheckpoint: &opts.ResumeFromCheckpoint, TimeLimit: &opts.TimeLimit})
	f.StringVar(&t.Objective.WeightingScheme, "weighting-scheme", t.Objective.WeightingScheme, "time density: logit_normal, mode, cosmap, sigma_sqrt or none")
	f.Float64Var(&t.Objective.LogitMean, "logit-mean", t.Objective.LogitMean, "mean of the logit-normal density")
	f.Float64Var(&t.Objective.LogitStd, "logit-std", t.Objective.LogitStd, "std of the logit-normal density")
	f.Float64Var(&t.Objective.ModeScale, "mode-scale", t.Objective.ModeScale, "scale of the mode density")
	f.Float64Var(&t.Objective.CaptionDropout, "proportion-empty-prompts", t.Objective.CaptionDropout, "caption dropout for classifier-free guidance")
	f.Float64Var(&t.Objective.RewardDropout, "reward-dropout", t.Objective.RewardDropout, "per-dimension reward-condition dropout")
	f.Float64Var(&t.ConceptBalance, "concept-balance", 0, "α of the data order: sample i drawn with probability ∝ n_c^-α, n_c its concept's samples "+
		"(0: each sample once per epoch; 1: concepts alike); a resume may change it")
	f.StringArrayVar(&t.ValidationPrompts, "validation-prompt", nil, "prompt of the sample grids (repeatable; default: 8 training captions)")
	f.IntVar(&t.ValidationSteps, "validation-inference-steps", t.ValidationSteps, "denoising steps of the sample grids")
	return cmd
}

func (o *PretrainOptions) validate() error {
	if o.Data == "" {
		return flagErrorf("--data must name a dataset directory")
	}
	if o.OutputDir == "" {
		return flagErrorf("--output-dir must not be empty")
	}
	if o.ConfigFile != "" && len(o.modelFlags) > 0 {
		return flagErrorf("--config and %s: give the model size in one place", strings.Join(o.modelFlags, ", "))
	}
	if o.InitFrom != "" && !o.Video {
		return flagErrorf("--init-from inflates an image model into a video model; add --video")
	}
	if o.InitFrom != "" && o.ConfigFile != "" {
		return flagErrorf("--config and --init-from: the model's size comes from the --init-from model")
	}
	if o.ResumeFromCheckpoint != "" && (o.ConfigFile != "" || len(o.modelFlags) > 0) {
		what := "--config"
		if len(o.modelFlags) > 0 {
			what = strings.Join(o.modelFlags, ", ")
		}
		return flagErrorf("%s with --resume-from-checkpoint: a resumed run keeps the checkpoint's model", what)
	}
	if err := validateTimeLimit(o.TimeLimit); err != nil {
		return err
	}
	o.Train.Objective.Shift = o.Shift
	if err := o.Train.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// modelConfig builds the model config from --config or the size flags, for the dataset's
// sample geometry.
func (o *PretrainOptions) modelConfig(m *dataset.Manifest) (diffusion.ModelConfig, error) {
	var c diffusion.ModelConfig
	if o.ConfigFile != "" {
		b, err := os.ReadFile(o.ConfigFile)
		if err != nil {
			return c, fmt.Errorf("--config: %w", err)
		}
		// The vocabulary comes from the data: accept any value there.
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			return c, fmt.Errorf("%s: %w", o.ConfigFile, err)
		}
		if _, ok := raw["vocab_size"]; !ok {
			raw["vocab_size"] = 3
		}
		b, _ = json.Marshal(raw)
		if c, err = diffusion.ParseModelConfig(b); err != nil {
			return c, fmt.Errorf("%s: %w", o.ConfigFile, err)
		}
		if o.Video != (c.Kind == diffusion.KindVideo) {
			return c, usageError{fmt.Errorf("%s is a %s config; --video is %v", o.ConfigFile, c.Kind, o.Video)}
		}
	} else {
		c = diffusion.DefaultImageConfig()
		if o.Video {
			c = diffusion.DefaultVideoConfig()
		} else {
			c.Frames, c.TubeletFrames = 1, 1
		}
		if o.Video {
			c.TubeletFrames = o.TubeletFrames
		}
		if o.PatchSize > 0 {
			c.PatchSize = o.PatchSize
		}
		c.Width, c.Depth, c.Heads, c.MLPRatio = o.Width, o.Depth, o.Heads, o.MLPRatio
		c.TextLayers, c.TextWidth, c.TextHeads, c.MaxTextLen = o.TextLayers, o.TextWidth, o.Heads, o.MaxTextLength
		if c.TextWidth == 0 {
			c.TextWidth = o.Width
		}
		c.RewardDims = append([]string{}, o.RewardDims...)
		c.Shift = o.Shift
	}
	c.ImageSize, c.Channels = m.ImageSize, m.Channels
	if c.Kind == diffusion.KindVideo {
		c.Frames = m.Frames
	}
	c.VocabSize = max(c.VocabSize, 3)
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// initSource names --init-from with the sha256 of its bytes: the file's, or for "default"
// those of embedded, the embedded model's.
func initSource(flag string, embedded []byte) (diffusion.InitSource, error) {
	if flag == "default" {
		sum := sha256.Sum256(embedded)
		return diffusion.InitSource{Path: flag, SHA256: hex.EncodeToString(sum[:])}, nil
	}
	sum, err := generatorSHA256(flag)
	if err != nil {
		return diffusion.InitSource{}, fmt.Errorf("--init-from: %w", err)
	}
	return diffusion.InitSource{Path: flag, SHA256: sum}, nil
}

// checkInitSizeFlags refuses a size flag of set that --init-from's model fixes to another
// value; given maps each such flag to (its value, the model's).
func checkInitSizeFlags(set []string, given map[string][2]any) error {
	for _, f := range set {
		if v, ok := given[f]; ok && fmt.Sprint(v[0]) != fmt.Sprint(v[1]) {
			return flagErrorf("%s %v differs from the --init-from model's %v; an inflated model keeps the image model's size (drop %s)", f, v[0], v[1], f)
		}
	}
	return nil
}

// printInflated reports the source of an inflated run (tubeletFrames 0: a run started from a
// model of its own kind) and the words its tokenizer tok added after the source's nOld.
func printInflated(w io.Writer, source diffusion.InitSource, tubeletFrames int, tok *diffusion.Tokenizer, nOld int) {
	added := tok.Vocab[nOld:]
	shown := strings.Join(added[:min(len(added), 10)], " ")
	if len(added) > 10 {
		shown += " ..."
	}
	how := fmt.Sprintf("inflated from %s (sha256 %s): tubelets of %d frames", source.Path, source.SHA256, tubeletFrames)
	if tubeletFrames == 0 {
		how = fmt.Sprintf("started from %s (sha256 %s)", source.Path, source.SHA256)
	}
	fmt.Fprintf(w, "%s; %d new words after its %d: %s\n", how, len(added), nOld, shown)
}

// loadInitModel loads the image model of --init-from on dev (an adapter file is merged
// into its base, as for align sample) with its InitSource.
func loadInitModel(dev kernels.Device, flag string) (*diffusion.DiT, diffusion.InitSource, error) {
	source, err := initSource(flag, defaultImageModel)
	if err != nil {
		return nil, source, err
	}
	path := flag
	if flag == "default" {
		path = ""
	}
	m, name, err := loadGenerator(dev, path)
	if err != nil {
		return nil, source, fmt.Errorf("--init-from %s: %w", flag, err)
	}
	if m.Config.Kind != diffusion.KindImage {
		return nil, source, usageError{fmt.Errorf("--init-from %s is a %s model; a video model is inflated from an image model", name, m.Config.Kind)}
	}
	return m, source, nil
}

// inflatedConfig is the video config of a run inflated from an image model of config img
// on the clips of manifest m. Size flags given with --init-from must repeat img's values.
func (o *PretrainOptions) inflatedConfig(img diffusion.ModelConfig, m *dataset.Manifest) (diffusion.ModelConfig, error) {
	textWidth := o.TextWidth
	if textWidth == 0 {
		textWidth = o.Width
	}
	given := map[string][2]any{ // flag -> (its value, the image model's)
		"--hidden-size": {o.Width, img.Width}, "--num-layers": {o.Depth, img.Depth}, "--num-attention-heads": {o.Heads, img.Heads},
		"--patch-size": {o.PatchSize, img.PatchSize}, "--mlp-ratio": {o.MLPRatio, img.MLPRatio}, "--text-layers": {o.TextLayers, img.TextLayers},
		"--text-width": {textWidth, img.TextWidth}, "--max-text-length": {o.MaxTextLength, img.MaxTextLen},
		"--reward-dims": {strings.Join(o.RewardDims, ","), strings.Join(img.RewardDims, ",")}, "--shift": {o.Shift, img.Shift},
	}
	if err := checkInitSizeFlags(o.modelFlags, given); err != nil {
		return img, err
	}
	if m.ImageSize != img.ImageSize || m.Channels != img.Channels {
		return img, usageError{fmt.Errorf("--data %s: clips of %dx%d with %d channels; the --init-from model makes %dx%d with %d",
			o.Data, m.ImageSize, m.ImageSize, m.Channels, img.ImageSize, img.ImageSize, img.Channels)}
	}
	c := diffusion.InflatedConfig(img, m.Frames, o.TubeletFrames)
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// imageTrainData is the training split of the image dataset.
type imageTrainData struct {
	ds  *dataset.Dataset
	idx []int
}

func (d *imageTrainData) Len() int                    { return len(d.idx) }
func (d *imageTrainData) Caption(i int) string        { return d.ds.Items[d.idx[i]].Caption }
func (d *imageTrainData) Sample(dst []float32, i int) { d.ds.ImageFloat32(dst, d.idx[i]) }
func (d *imageTrainData) Concept(i int) string        { return d.ds.Items[d.idx[i]].Concept }

// videoTrainData is the training split of the clip dataset.
type videoTrainData struct {
	ds  *dataset.VideoDataset
	idx []int
}

func (d *videoTrainData) Len() int                    { return len(d.idx) }
func (d *videoTrainData) Caption(i int) string        { return d.ds.Clips[d.idx[i]].Caption }
func (d *videoTrainData) Sample(dst []float32, i int) { d.ds.ClipFloat32(dst, d.idx[i]) }
func (d *videoTrainData) Concept(i int) string        { return d.ds.Clips[d.idx[i]].Concept }

// checkDataGeometry refuses a dataset (at dir, manifest m) whose samples are not those the
// model of config c makes: another size, or clips of other frames.
func checkDataGeometry(dir string, m *dataset.Manifest, c diffusion.ModelConfig) error {
	frames := 1
	if c.Kind == diffusion.KindVideo {
		frames = m.Frames
	}
	if m.ImageSize != c.ImageSize || m.Channels != c.Channels || frames != c.Frames {
		return usageError{fmt.Errorf("--data %s: samples of %d frames of %dx%dx%d; the model makes %d frames of %dx%dx%d",
			dir, frames, m.Channels, m.ImageSize, m.ImageSize, c.Frames, c.Channels, c.ImageSize, c.ImageSize)}
	}
	return nil
}

// loadTrainData opens the training split of --data.
func loadTrainData(dir string, video bool) (diffusion.TrainingData, *dataset.Manifest, error) {
	if video {
		ds, err := dataset.LoadVideo(dir)
		if err != nil {
			return nil, nil, err
		}
		return &videoTrainData{ds, ds.Indices(dataset.SplitTrain)}, ds.Manifest, nil
	}
	ds, err := dataset.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	return &imageTrainData{ds, ds.Indices(dataset.SplitTrain)}, ds.Manifest, nil
}

// validationPrompts picks n captions spread evenly over the data (distinct where possible).
func validationPrompts(data diffusion.TrainingData, n int) []string {
	var out []string
	for k := 0; k < n && data.Len() > 0; k++ {
		c := data.Caption(k * data.Len() / n)
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// pretrainRecord is config.json of the output directory.
type pretrainRecord struct {
	Model   diffusion.ModelConfig    `json:"model"`
	Train   diffusion.PretrainConfig `json:"train"`
	Data    string                   `json:"data"`
	Dataset string                   `json:"dataset_version"`
	Samples int                      `json:"train_samples"`
	Vocab   int                      `json:"vocab_size"`
	Params  int                      `json:"params"`
	Resumed string                   `json:"resumed_from,omitempty"`
	Started string                   `json:"started"`
	Version string                   `json:"align_version"`
	nn.Compute
}

func pretrainRun(cmd *cobra.Command, opts *PretrainOptions) error {
	stderr := cmd.ErrOrStderr()
	data, manifest, err := loadTrainData(opts.Data, opts.Video)
	if err != nil {
		return err
	}
	if data.Len() == 0 {
		if !opts.Video && manifest.Counts.Clips > 0 {
			return fmt.Errorf("%s: no training images, %d clips\n---> HINT: add --video", opts.Data, manifest.Counts.Clips)
		}
		return fmt.Errorf("%s: no training samples", opts.Data)
	}
	pc := opts.Train
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	var tr *diffusion.Trainer
	resumed := ""
	if opts.ResumeFromCheckpoint != "" {
		if opts.InitFrom != "" { // Resume checks it against the run's record
			source, err := initSource(opts.InitFrom, defaultImageModel)
			if err != nil {
				return err
			}
			pc.InitFrom = &source
		}
		path, err := resumeCheckpoint(opts.ResumeFromCheckpoint, opts.OutputDir)
		if err != nil {
			return err
		}
		ck, mcfg, tok, err := diffusion.ReadTrainingCheckpoint(path)
		if err != nil {
			return err
		}
		warnComputeChange(stderr, ck, dev)
		if opts.Video != (mcfg.Kind == diffusion.KindVideo) {
			return usageError{fmt.Errorf("%s holds a %s model; --video is %v", path, mcfg.Kind, opts.Video)}
		}
		if err := checkDataGeometry(opts.Data, manifest, mcfg); err != nil {
			return err
		}
		pc.Objective.Shift = mcfg.Shift // training times follow the model's shift
		if len(pc.ValidationPrompts) == 0 {
			pc.ValidationPrompts = validationPrompts(data, 8)
		}
		if tr, err = diffusion.NewTrainer(dev, mcfg, tok, pc, data, opts.OutputDir); err != nil {
			return err
		}
		if err := tr.Resume(ck); err != nil {
			return err
		}
		pc.InitFrom = tr.Cfg.InitFrom
		resumed = path
		fmt.Fprintf(stderr, "resuming from %s at step %d\n", path, tr.Step)
		if tr.Resumed != nil {
			if ch := diffusion.ConfigChanges(tr.Resumed, &pc); len(ch) > 0 {
				fmt.Fprintf(stderr, "align: warning: hyper-parameters differ from the checkpoint's run: %s\n", strings.Join(ch, "; "))
			}
			if a := tr.Resumed.ConceptBalance; a != pc.ConceptBalance {
				fmt.Fprintf(stderr, "align: --concept-balance %g (the run had %g): steps %d on follow the new data order, a second stage of the run\n",
					pc.ConceptBalance, a, tr.Step+1)
			}
		}
	} else {
		var (
			mcfg   diffusion.ModelConfig
			src    *diffusion.DiT
			source diffusion.InitSource
		)
		if opts.InitFrom != "" {
			if src, source, err = loadInitModel(dev, opts.InitFrom); err != nil {
				return err
			}
			mcfg, err = opts.inflatedConfig(src.Config, manifest)
		} else {
			mcfg, err = opts.modelConfig(manifest)
		}
		if err != nil {
			return err
		}
		if cs, _ := nn.Checkpoints(opts.OutputDir); len(cs) > 0 {
			return usageError{fmt.Errorf("%s holds checkpoints of an earlier run (%s); resume it with "+
				"--resume-from-checkpoint latest, or choose another --output-dir", opts.OutputDir, filepath.Base(cs[len(cs)-1]))}
		}
		caps := make([]string, data.Len())
		for i := range caps {
			caps[i] = data.Caption(i)
		}
		var tok *diffusion.Tokenizer
		if src != nil {
			tok = src.Tokenizer.Extend(caps)
		} else if tok, err = diffusion.BuildTokenizer(caps, 1, mcfg.MaxTextLen); err != nil {
			return err
		}
		pc.Objective.Shift = mcfg.Shift
		if len(pc.ValidationPrompts) == 0 {
			pc.ValidationPrompts = validationPrompts(data, 8)
		}
		if tr, err = diffusion.NewTrainer(dev, mcfg, tok, pc, data, opts.OutputDir); err != nil {
			return err
		}
		if src != nil {
			if err := tr.InflateFrom(src, source); err != nil {
				return err
			}
			pc.InitFrom = tr.Cfg.InitFrom
			printInflated(stderr, source, mcfg.TubeletFrames, tok, src.Tokenizer.VocabSize())
		}
	}
	mc := tr.Model.Config
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	rec := pretrainRecord{Model: mc, Train: pc, Data: opts.Data, Dataset: manifest.DatasetVersion, Samples: data.Len(),
		Vocab: mc.VocabSize, Params: mc.ParamCount(), Resumed: resumed, Started: time.Now().UTC().Format(time.RFC3339), Version: version,
		Compute: nn.ComputeOf(dev)}
	if err := writeJSONFile(filepath.Join(opts.OutputDir, "config.json"), rec); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s model: width %d, depth %d, heads %d, patch %d, %d tokens/sample, %.2fM parameters; %d training samples, %d words\n",
		mc.Kind, mc.Width, mc.Depth, mc.Heads, mc.PatchSize, mc.SeqLen(), float64(mc.ParamCount())/1e6, data.Len(), mc.VocabSize)

	in := newTrainInterrupt()
	defer in.Stop()

	bar := newProgressBar(stderr, "pretrain", pc.MaxTrainSteps)
	bar.base, bar.done = tr.Step, tr.Step
	var loss runningAverage
	tr.Progress = func(e diffusion.LogEntry, _ time.Duration) {
		if !e.Skipped {
			loss.add(e.Loss)
		}
		bar.Update(e.Step, fmt.Sprintf("loss %.4f lr %.2e %.1f samples/s", loss.value, e.LR, e.SamplesPerSec))
		in.Note(bar)
	}
	tr.Notify = func(msg string) { bar.Note(msg) }
	err = tr.Run(in.ctx, opts.TimeLimit)
	bar.Finish(loss.lossNote())
	if stopped, err := runStopped(stderr, opts.OutputDir, err, diffusion.ErrInterrupted, diffusion.ErrTimeLimit); stopped || err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (step %d)\n", tr.ModelPath(), tr.Step)
	return nil
}
