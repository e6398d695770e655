// align reward train: train the native reward model with Bradley-Terry-with-ties (or BT, or
// regression) on pairs built from the emoji data, with exact resume, a JSONL log, calibration
// on the validation split and a held-out evaluation at the end. With --latent it trains the
// noise-aware latent reward model of Flow-NRG instead, cut from the first blocks of
// --generator, on pairs whose sides share one noise level t and one noise draw. A model can
// start from a trained image reward model instead (--init-from; a video model inflated from
// it: rewards/inflate.go), and learn a labelled preference file's pairs too (--pairs:
// reward_preferences.go, rewards/preferences.go).
//
// Test: go test ./cmd/align -run RewardTrain
package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// RewardTrainOptions are the flags of `align reward train`.
type RewardTrainOptions struct {
	Data      string
	Video     bool
	Dims      string
	OutputDir string

	// Model size (ignored when resuming).
	Width, VisionLayers, JointLayers, Heads, PatchSize, TubeletFrames, MaxTextLength int
	MLPRatio                                                                         float64

	// InitFrom is the image reward model the run starts from (inflated for --video): a native
	// image reward model file, or "default" for the embedded one; "" for seeded weights.
	InitFrom string

	// Noise-aware latent model (--latent): the generator file it starts from, the blocks it
	// keeps, the hidden width of its heads (0: the generator's width) and the scale of its
	// word embedding (0: none).
	Latent       bool
	Generator    string
	LatentBlocks int
	HeadHidden   int
	WordScale    float64

	// NegativesGenerator is the generator file of --negatives generator ("": the embedded
	// default image model).
	NegativesGenerator string

	// teacher is the set of --teacher-scored (loadTeacher), preferences the pairs of --pairs
	// (loadPreferences).
	teacher     *rewards.TeacherSet
	preferences *rewards.PreferenceSet

	Train                rewards.TrainConfig
	ConceptPart          string // --concept-part i/n: train on one part of the training concepts
	ResumeFromCheckpoint string
	TimeLimit            time.Duration
	Threads              int

	modelFlags []string // model-size flags set on the command line
}

func newCmdRewardTrain(runF func(*RewardTrainOptions) error) *cobra.Command {
	opts := &RewardTrainOptions{Train: rewards.DefaultTrainConfig()}
	img := rewards.DefaultNativeImageConfig()
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the native multi-dimensional reward model on preference pairs",
		Long: `Train the native reward model (a small vision-language transformer with one query token
and head per dimension) on preference pairs built from the emoji dataset: text alignment
(true caption against other-tone, same-subcategory, wrong-motion and random captions), visual
quality (real images against graded blur, noise, pixelation, colour shift and JPEG), motion
quality (real clips against shuffled, jittered, flickering and frozen ones), with ties.

Each step draws fresh pairs from the training concepts (a function of --seed and the step);
the validation concepts (5% of the training ones, --val-percent) calibrate the scores at the
end, and the held-out concepts (the dataset's) measure the accuracy. The output directory
receives:

  model.safetensors               weights, config, tokenizer and calibration (mean, std, tie eps)
  checkpoint-<step>.safetensors   weights, AdamW moments and step (resume exactly)
  logs.jsonl                      step, loss and accuracy per dimension, lr, grad_norm, pairs/s
  eval.json                       held-out accuracy per dimension with and without ties
  eval-preferences.json           with --pairs: the same on the file's held-out pairs

--pairs FILE trains on the annotators' pairs too (human or AI feedback): align's pairs JSONL
with a label per dimension ({"prompt","chosen","rejected","labels":{"vq":"A","ta":"tie"}},
A the chosen sample) or VideoAlign's CSV (path_A, path_B, prompt, VQ, MQ, TA). Its pairs make
--pairs-share (default 0.5) of the training pairs of each dimension they label, each drawn
for one dimension; 10% of them (by a hash of the prompt and the two files, so the same
pairs whatever the line order) never train and give eval-preferences.json: how often the
model agrees with the labels of pairs it has not seen. Their prompts join the vocabulary;
labels of dimensions the model does not score are left out.

SIGINT finishes the current step, writes a checkpoint and exits with code 2; --time-limit does
the same and exits 0. Resume with --resume-from-checkpoint latest.

--latent trains the noise-aware latent reward model that Flow-NRG guidance needs: the patch
embedding, timestep embedder, text encoder and first --latent-blocks DiT blocks of the
--generator file, then one MLP head per dimension over the mean patch and caption tokens
(--latent-word-scale s adds s times a word vector of the model's own, zero at the start, to
each caption token), scoring x_t = (1-t) x0 + t eps at its noise level t. Both sides of a
pair share one t (--timestep-sampling uniform or logit_normal) and one eps; eval.json then
also reports the accuracy per t bucket and at t <= 0.5.

--negatives generator adds the generator's own failure modes to the visual-quality pairs:
--negative-share of the decisive vq pairs compare a real image with a sample of
--negatives-generator (default: the embedded image model) for its caption, drawn with 1, 2,
4 or 8 Euler steps (levels 3, 2, 1, 1) at align sample's guidance 4. The samples are drawn
once before training, --negatives-per-level items per split (0: every item) at each step
count, with a progress bar, from --seed and independent of batching, and cached in the
output directory (negatives.u8, negatives.json with the generator's sha256); a resumed run
reuses them and refuses a cache that does not match. Image reward models only.

--video --init-from IMAGE_REWARD_MODEL (a native image reward model file, or default for the
embedded one) starts the video reward model from a trained image reward model: its size is
the image model's (size flags may only repeat it), the patch embedding is inflated to
tubelets (the image kernel divided by the tubelet's frames on each frame), every other
weight with the same meaning is copied, the query tokens and heads of the image model's
dimensions (vq, ta) carry over while a new one (mq) starts from the seeded draws of a fresh
model, and the clip captions' new words get new ids after the image model's. The source's
path and sha256 are recorded in every checkpoint, so a resume needs no --init-from (and
refuses a different one). Without --video, --init-from starts an image reward model from the
trained one as it is (its size, its weights, its words with the new ones appended): to teach
a trained model an annotator's --pairs in fewer steps than a model from scratch needs.` + skippedStepsHelp,
		Example: `  $ align reward train --data data/emoji -o reward/
  $ align reward train --data data/emoji --loss bt --max-train-steps 1000 -o reward-bt/
  $ align reward train --data data/emoji --video --dims vq,ta,mq -o reward-video/
  $ align reward train --data data/emoji --video --init-from default -o reward-video/
  $ align reward train --data data/emoji --concept-part 1/2 --seed 1 -o judge/   # disjoint judge of a 0/2 model
  $ align reward train --data data/emoji --image-set google --seed 1 -o judge/   # judge of a twitter model: same concepts, other images
  $ align reward train --data data/emoji --ta-image-share 0.5 --ta-image-negatives hard -o reward/   # ta also ranks images under one caption
  $ align reward train --data data/emoji --pairs labelled.jsonl -o reward-human/   # learn the annotators' preferences too
  $ align reward train --data data/emoji --init-from default --pairs labelled.jsonl --max-train-steps 500 -o reward-human/   # from the embedded model
  $ align reward train -o reward/ --resume-from-checkpoint latest
  $ align reward train --latent --generator base/model.safetensors --latent-blocks 2 -o reward-latent/
  $ align reward train --latent --latent-blocks 4 --latent-word-scale 8 --ta-image-share 0.5 -o reward-latent/   # the embedded latent model's recipe
  $ align reward train --latent --teacher-scored scored.jsonl -o reward-latent/   # also rank samples of one prompt as the scorer of scored.jsonl does
  $ align reward train --data data/emoji --negatives generator --negative-share 0.25 --negatives-per-level 2000 -o reward-gen/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Generator == "default-video" {
				opts.Video = true // the name says the kind
			}
			for _, n := range []string{"hidden-size", "vision-layers", "joint-layers", "num-attention-heads", "patch-size", "mlp-ratio", "max-text-length"} {
				if cmd.Flags().Changed(n) {
					opts.modelFlags = append(opts.modelFlags, "--"+n)
				}
			}
			if opts.ConceptPart != "" {
				i, n, err := scoring.ParseShard(opts.ConceptPart)
				if err != nil {
					return flagErrorf("--concept-part: %v", err)
				}
				opts.Train.ConceptPart, opts.Train.ConceptParts = i, n
			}
			if err := opts.checkNegatives(); err != nil {
				return err
			}
			if t := &opts.Train; t.TeacherScored != "" {
				if !cmd.Flags().Changed("teacher-share") {
					t.TeacherShare = rewards.DefaultTeacherShare
				}
				if !cmd.Flags().Changed("teacher-margin") {
					t.TeacherMargin = rewards.DefaultTeacherMargin
				}
			} else if cmd.Flags().Changed("teacher-share") || cmd.Flags().Changed("teacher-margin") {
				return flagErrorf("--teacher-share and --teacher-margin need --teacher-scored")
			}
			if t := &opts.Train; t.Pairs != "" && !cmd.Flags().Changed("pairs-share") {
				t.PairsShare = rewards.DefaultPairsShare
			} else if t.Pairs == "" && cmd.Flags().Changed("pairs-share") {
				return flagErrorf("--pairs-share needs --pairs")
			}
			if err := opts.Train.Validate(); err != nil {
				return usageError{err}
			}
			if _, err := parseDims(opts.Dims, opts.Video); err != nil {
				return err
			}
			if opts.OutputDir == "" {
				return flagErrorf("--output-dir must not be empty")
			}
			if err := validateTimeLimit(opts.TimeLimit); err != nil {
				return err
			}
			if opts.Threads < 0 {
				return flagErrorf("--threads must be >= 0, got %d", opts.Threads)
			}
			switch {
			case !opts.Latent && opts.Generator != "":
				return flagErrorf("--generator is only read with --latent")
			case opts.InitFrom != "" && opts.Latent:
				return flagErrorf("--init-from and --latent: a latent reward model starts from --generator")
			case opts.LatentBlocks < 1:
				return flagErrorf("--latent-blocks must be >= 1, got %d", opts.LatentBlocks)
			case opts.HeadHidden < 0:
				return flagErrorf("--head-hidden must be >= 0, got %d", opts.HeadHidden)
			case !(opts.WordScale >= 0):
				return flagErrorf("--latent-word-scale must be >= 0, got %v", opts.WordScale)
			}
			if runF != nil {
				return runF(opts)
			}
			return rewardTrainRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	t := &opts.Train
	f.StringVar(&opts.Data, "data", "data/emoji", "dataset directory (align data prepare, or align data import of your own)")
	f.BoolVar(&opts.Video, "video", false, "train a clip reward model (8 frames) instead of an image one")
	f.StringVar(&opts.Dims, "dims", "", "reward dimensions, comma-separated (default vq,ta; with --video vq,ta,mq)")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "reward", "directory for the model, checkpoints and logs")
	f.IntVar(&opts.Width, "hidden-size", img.Width, "transformer width")
	f.IntVar(&opts.VisionLayers, "vision-layers", img.VisionLayers, "blocks before the caption joins (vq, mq read here)")
	f.IntVar(&opts.JointLayers, "joint-layers", img.JointLayers, "blocks over image and caption (ta reads here)")
	f.IntVar(&opts.Heads, "num-attention-heads", img.Heads, "attention heads")
	f.IntVar(&opts.PatchSize, "patch-size", img.PatchSize, "patch size p")
	f.IntVar(&opts.TubeletFrames, "tubelet-frames", 2, "frames per tubelet (video)")
	f.StringVar(&opts.InitFrom, "init-from", "", "start from this image reward model (a native model file, or default: the embedded one), inflated for --video")
	f.Float64Var(&opts.MLPRatio, "mlp-ratio", img.MLPRatio, "MLP hidden width / width")
	f.IntVar(&opts.MaxTextLength, "max-text-length", img.MaxTextLen, "tokens per caption")
	f.StringVar(&t.LossType, "loss", t.LossType, "btt (Bradley-Terry with ties), bt (ties left out) or reg (MSE to target scores)")
	f.Float64Var(&t.TieK, "k", t.TieK, "Rao-Kupper tie parameter k > 1 of btt")
	addTrainFlags(f, trainFlags{Loop: &t.TrainLoop, SeedDraws: "weights and pairs", BatchUnit: "pairs per step",
		ResumeFromCheckpoint: &opts.ResumeFromCheckpoint, TimeLimit: &opts.TimeLimit})
	f.Float64Var(&t.TieShare, "tie-share", t.TieShare, "share of pairs built as ties")
	f.Float64Var(&t.GradedShare, "graded-share", t.GradedShare, "share of quality pairs comparing two corruption levels")
	f.IntVar(&t.ValPairs, "val-pairs", t.ValPairs, "validation pairs for the calibration at the end")
	f.IntVar(&t.EvalPairs, "eval-pairs", t.EvalPairs, "held-out pairs evaluated at the end (0: skip)")
	f.IntVar(&t.ValPercent, "val-percent", t.ValPercent, fmt.Sprintf("percent of the training concepts kept for validation (the calibration), 1 to %d: more for data of few concepts", rewards.MaxValPercent))
	f.BoolVar(&opts.Latent, "latent", false, "train the noise-aware latent reward model (Flow-NRG) from --generator")
	f.StringVar(&opts.Generator, "generator", "", "generator model file the latent model starts from (with --latent; default: the embedded image model; default-video: the embedded video model, with --video implied)")
	f.IntVar(&opts.LatentBlocks, "latent-blocks", rewards.DefaultLatentBlocks, "generator blocks the latent model keeps")
	f.IntVar(&opts.HeadHidden, "head-hidden", 0, "hidden width of each latent head (0: the generator's width)")
	f.Float64Var(&opts.WordScale, "latent-word-scale", 0, "give the latent model's caption tokens a word vector of its own, zero at the start, times this scale (0: none; the scale sets how fast it grows)")
	f.StringVar(&t.TimestepSampling, "timestep-sampling", t.TimestepSampling, "noise level of latent pairs: uniform or logit_normal")
	f.StringVar(&t.Negatives, "negatives", "", "extra visual-quality negatives: generator (few-step samples of --negatives-generator) or none")
	f.StringVar(&opts.NegativesGenerator, "negatives-generator", "", "generator file of --negatives generator (default: the embedded image model)")
	f.Float64Var(&t.TAImageShare, "ta-image-share", 0, "share of decisive ta pairs comparing the image with another image under its caption (trains the image side of ta; for latent models used in guidance)")
	f.StringVar(&t.TAImageNegatives, "ta-image-negatives", t.TAImageNegatives, "the other image of those pairs: random (another subcategory) or hard (another skin tone, the same subcategory or random; clips: another motion too)")
	f.Float64Var(&t.NegativeShare, "negative-share", t.NegativeShare, "share of decisive vq pairs that are real against generated (with --negatives)")
	f.IntVar(&t.NegativesPerLevel, "negatives-per-level", 0, "items per split sampled at each step count for --negatives generator (0: all)")
	f.StringVar(&opts.ConceptPart, "concept-part", "", "train on part i/n of the training concepts (e.g. a judge on 1/2 for a model trained on 0/2)")
	f.StringVar(&t.ImageSet, "image-set", "", "train on one artwork set's images only (twitter or google in the emoji data; e.g. a judge on google for a model trained on twitter)")
	f.StringVar(&t.TeacherScored, "teacher-scored", "", "scored set (align pairs --scored) whose samples, two of a prompt, make --teacher-share of the training pairs, labelled by its scores")
	f.Float64Var(&t.TeacherShare, "teacher-share", 0, "share of the training pairs of each scored dimension drawn from --teacher-scored (default 0.5 with it)")
	f.Float64Var(&t.TeacherMargin, "teacher-margin", 0, "z-score difference at or below which a teacher pair is a tie (default 0.1 with --teacher-scored)")
	f.StringVar(&t.Pairs, "pairs", "", "labelled preference pairs (align's pairs JSONL with \"labels\", or VideoAlign's CSV): --pairs-share of the training pairs of each dimension they label; 10% held out and evaluated")
	f.Float64Var(&t.PairsShare, "pairs-share", 0, "share of the training pairs of each labelled dimension drawn from --pairs (default 0.5 with it)")
	f.IntVar(&opts.Threads, "threads", 0, "CPU threads (0: all)")
	return cmd
}

func (o *RewardTrainOptions) modelConfig(dims []string) rewards.NativeConfig {
	c := rewards.DefaultNativeImageConfig()
	if o.Video {
		c = rewards.DefaultNativeVideoConfig()
		c.TubeletFrames = o.TubeletFrames
	}
	c.Width, c.VisionLayers, c.JointLayers, c.Heads = o.Width, o.VisionLayers, o.JointLayers, o.Heads
	c.PatchSize, c.MLPRatio, c.MaxTextLen, c.Dims = o.PatchSize, o.MLPRatio, o.MaxTextLength, dims
	hasText := false
	for _, d := range dims {
		hasText = hasText || !rewards.PromptFree(d)
	}
	if !hasText {
		c.JointLayers = 0
	}
	return c
}

// initConfig is the config of a run started from an image reward model of config img, for
// dims: img's inflated for --video, else img's. Size flags given with --init-from must repeat
// img's values.
func (o *RewardTrainOptions) initConfig(img rewards.NativeConfig, dims []string) (rewards.NativeConfig, error) {
	given := map[string][2]any{ // flag -> (its value, the image model's)
		"--hidden-size": {o.Width, img.Width}, "--vision-layers": {o.VisionLayers, img.VisionLayers},
		"--joint-layers": {o.JointLayers, img.JointLayers}, "--num-attention-heads": {o.Heads, img.Heads},
		"--patch-size": {o.PatchSize, img.PatchSize}, "--mlp-ratio": {o.MLPRatio, img.MLPRatio}, "--max-text-length": {o.MaxTextLength, img.MaxTextLen},
	}
	if err := checkInitSizeFlags(o.modelFlags, given); err != nil {
		return img, err
	}
	c := img
	c.Dims = slices.Clone(dims)
	if o.Video {
		c = rewards.InflatedNativeConfig(img, rewards.DefaultNativeVideoConfig().Frames, o.TubeletFrames, dims)
	}
	if err := c.Validate(); err != nil {
		return c, usageError{fmt.Errorf("--init-from %s: %w", o.InitFrom, err)}
	}
	return c, nil
}

// loadInitReward loads the image reward model of --init-from on dev (a native image reward
// model file, or "default": the embedded one) with its InitSource.
func loadInitReward(dev kernels.Device, flag string) (*rewards.Native, diffusion.InitSource, error) {
	source, err := initSource(flag, defaultRewardModel)
	if err != nil {
		return nil, source, err
	}
	var m *rewards.Native
	if flag == "default" {
		m, err = loadDefaultReward(dev, false)
	} else {
		m, err = rewards.LoadNative(dev, flag)
	}
	if err != nil {
		return nil, source, fmt.Errorf("--init-from %s: %w", flag, err)
	}
	if m.Config.Kind != rewards.KindImage {
		return nil, source, usageError{fmt.Errorf("--init-from %s is a %s reward model; a reward model starts from an image reward model", flag, m.Config.Kind)}
	}
	return m, source, nil
}

func rewardTrainRun(cmd *cobra.Command, opts *RewardTrainOptions) error {
	stderr := cmd.ErrOrStderr()
	dims, _ := parseDims(opts.Dims, opts.Video)
	if err := opts.hashNegativesGenerator(); err != nil {
		return err
	}
	var err error
	if opts.teacher, err = opts.loadTeacher(); err != nil {
		return err
	}
	if opts.preferences, err = opts.loadPreferences(); err != nil {
		return err
	}
	tc := opts.Train
	dev, err := deviceWithThreads(cmd, opts.Threads)
	if err != nil {
		return err
	}

	var tr *rewards.Trainer
	if opts.ResumeFromCheckpoint != "" {
		if opts.InitFrom != "" { // Resume checks it against the run's record
			source, err := initSource(opts.InitFrom, defaultRewardModel)
			if err != nil {
				return err
			}
			tc.InitFrom = &source
		}
		path, err := resumeCheckpoint(opts.ResumeFromCheckpoint, opts.OutputDir)
		if err != nil {
			return err
		}
		if latent, err := rewards.IsLatentCheckpoint(path); err != nil {
			return err
		} else if latent {
			if tr, err = resumeLatent(dev, opts, path, stderr); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "resuming the latent run from %s at step %d\n", path, tr.Step)
			return runRewardTrainer(cmd, opts, tr)
		}
		ck, mcfg, tok, err := rewards.ReadTrainingCheckpoint(path)
		if err != nil {
			return err
		}
		warnComputeChange(stderr, ck, dev)
		if opts.Video != (mcfg.Kind == rewards.KindVideo) {
			return usageError{fmt.Errorf("%s holds a %s reward model; --video is %v", path, mcfg.Kind, opts.Video)}
		}
		if cmd.Flags().Changed("dims") && !slices.Equal(dims, mcfg.Dims) {
			return usageError{fmt.Errorf("%s has dimensions %v; --dims is %v", path, mcfg.Dims, dims)}
		}
		gen, _, err := loadPairGen(opts.Data, opts.Video, opts.pairConfig(mcfg.Dims))
		if err != nil {
			return err
		}
		if tr, err = rewards.NewTrainer(dev, mcfg, tok, tc, gen, opts.OutputDir); err != nil {
			return err
		}
		if err := tr.Resume(ck); err != nil {
			return err
		}
		if err := attachNegatives(cmd, dev, opts, gen, true); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "resuming from %s at step %d\n", path, tr.Step)
	} else {
		if cs, _ := nn.Checkpoints(opts.OutputDir); len(cs) > 0 {
			return usageError{fmt.Errorf("%s already holds %s; resume with --resume-from-checkpoint latest or write to another --output-dir",
				opts.OutputDir, filepath.Base(cs[len(cs)-1]))}
		}
		if opts.Latent {
			if tr, err = newLatentTrainer(dev, opts, dims); err != nil {
				return err
			}
			return runRewardTrainer(cmd, opts, tr)
		}
		var (
			src    *rewards.Native
			source diffusion.InitSource
			mcfg   = opts.modelConfig(dims)
		)
		if opts.InitFrom != "" {
			if src, source, err = loadInitReward(dev, opts.InitFrom); err != nil {
				return err
			}
			if mcfg, err = opts.initConfig(src.Config, dims); err != nil {
				return err
			}
		}
		gen, man, err := loadPairGen(opts.Data, opts.Video, opts.pairConfig(dims))
		if err != nil {
			return err
		}
		if src == nil { // a new model reads the data's samples (an inflated one its source's)
			shape := gen.SampleShape()
			mcfg.ImageSize = shape[len(shape)-1]
			if opts.Video {
				mcfg.Frames = shape[0]
			}
		}
		if opts.Video && man.Import != nil {
			mcfg.SampleFPS = man.Import.FPS // the rate the imported clips were cut at
		}
		var tok *diffusion.Tokenizer
		if src != nil {
			tok = rewards.ExtendTokenizer(src.Tokenizer, gen)
		} else if tok, err = rewards.BuildTokenizer(gen, mcfg.MaxTextLen); err != nil {
			return err
		}
		if tr, err = rewards.NewTrainer(dev, mcfg, tok, tc, gen, opts.OutputDir); err != nil {
			return err
		}
		if src != nil {
			if err := tr.InflateFrom(src, source); err != nil {
				return err
			}
			tubelet := 0 // an image model: nothing inflated
			if opts.Video {
				tubelet = mcfg.TubeletFrames
			}
			printInflated(stderr, source, tubelet, tok, src.Tokenizer.VocabSize())
		}
		if err := attachNegatives(cmd, dev, opts, gen, false); err != nil {
			return err
		}
	}
	return runRewardTrainer(cmd, opts, tr)
}

// newLatentTrainer cuts a latent reward model from --generator and builds its trainer.
func newLatentTrainer(dev kernels.Device, opts *RewardTrainOptions, dims []string) (*rewards.Trainer, error) {
	tc := opts.Train
	g, _, err := loadGeneratorKind(dev, opts.Generator, opts.Video, nil)
	if err != nil {
		return nil, err
	}
	if opts.LatentBlocks > g.Config.Depth {
		return nil, usageError{fmt.Errorf("--latent-blocks %d: %s has %d blocks", opts.LatentBlocks, opts.Generator, g.Config.Depth)}
	}
	gen, _, err := loadPairGen(opts.Data, opts.Video, opts.pairConfig(dims))
	if err != nil {
		return nil, err
	}
	m, err := rewards.NewLatentFromGenerator(dev, &kernels.RNG{Seed: tc.Seed}, g, rewards.LatentConfig{
		Blocks: opts.LatentBlocks, HeadHidden: opts.HeadHidden, WordScale: opts.WordScale, Dims: dims, Source: opts.Generator})
	if err != nil {
		return nil, err
	}
	return rewards.NewLatentTrainer(dev, m, tc, gen, opts.OutputDir)
}

// resumeLatent rebuilds the trainer of a latent run from its checkpoint (warnings to stderr).
func resumeLatent(dev kernels.Device, opts *RewardTrainOptions, path string, stderr io.Writer) (*rewards.Trainer, error) {
	ck, m, err := rewards.ReadLatentTrainingCheckpoint(dev, path)
	if err != nil {
		return nil, err
	}
	warnComputeChange(stderr, ck, dev)
	if opts.Video != (m.Config.Kind() == rewards.KindVideo) {
		return nil, usageError{fmt.Errorf("%s holds a %s latent reward model; --video is %v", path, m.Config.Kind(), opts.Video)}
	}
	gen, _, err := loadPairGen(opts.Data, opts.Video, opts.pairConfig(m.Config.Dims))
	if err != nil {
		return nil, err
	}
	tr, err := rewards.NewLatentTrainer(dev, m, opts.Train, gen, opts.OutputDir)
	if err != nil {
		return nil, err
	}
	if err := tr.Resume(ck); err != nil {
		return nil, err
	}
	return tr, nil
}

// runRewardTrainer prints the model summary, runs the trainer and reports the result.
func runRewardTrainer(cmd *cobra.Command, opts *RewardTrainOptions, tr *rewards.Trainer) error {
	stderr := cmd.ErrOrStderr()
	tc := opts.Train
	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	var dimNames []string
	if tr.Latent != nil {
		lc := &tr.Latent.Config
		dimNames = lc.Dims
		g := lc.Generator
		fmt.Fprintf(stderr, "noise-aware latent %s reward model %v: first %d of %d blocks of %s (width %d, %d tokens/sample)%s, %.2fM parameters; "+
			"%d training %s, %d words; t %s; loss %s\n",
			g.Kind, lc.Dims, lc.Blocks, g.Depth, cmp.Or(lc.Source, "the embedded "+g.Kind+" model"), g.Width, g.SeqLen(), wordScaleNote(lc.WordScale), float64(paramCount(tr.Latent.Params()))/1e6,
			tr.Gen.PoolSize(rewards.SplitTrain), map[bool]string{false: "images", true: "clips"}[opts.Video], g.VocabSize,
			tc.TimestepSampling, tc.LossType)
	} else {
		mc := tr.Model.Config
		dimNames = mc.Dims
		fmt.Fprintf(stderr, "%s reward model %v: width %d, %d vision + %d joint blocks, %d tokens/sample, %.2fM parameters; "+
			"%d training %s, %d words; loss %s\n",
			mc.Kind, mc.Dims, mc.Width, mc.VisionLayers, mc.JointLayers, mc.SeqLen(), float64(paramCount(tr.Model.Params()))/1e6,
			tr.Gen.PoolSize(rewards.SplitTrain), map[bool]string{false: "images", true: "clips"}[opts.Video], mc.VocabSize, tc.LossType)
	}

	if t := opts.teacher; t != nil {
		if !slices.ContainsFunc(dimNames, t.Has) {
			return usageError{fmt.Errorf("--teacher-scored %s scores %v; the model's dimensions are %v", tc.TeacherScored, t.Dims, dimNames)}
		}
		fmt.Fprintf(stderr, "teacher pairs: share %v of the training pairs of %v, from %d prompts of %s (ties within %v z)\n",
			tc.TeacherShare, t.Dims, len(t.Groups), tc.TeacherScored, tc.TeacherMargin)
	}
	if p := opts.preferences; p != nil {
		var used, unused []string
		for _, d := range dimNames {
			if p.Has(d) {
				used = append(used, fmt.Sprintf("%s (%s)", d, counted(p.Count(d), "pair")))
			}
		}
		for _, d := range p.Dims {
			if !slices.Contains(dimNames, d) {
				unused = append(unused, d)
			}
		}
		if len(used) == 0 {
			return usageError{fmt.Errorf("--pairs %s labels %v in its training pairs; the model's dimensions are %v", tc.Pairs, p.Dims, dimNames)}
		}
		fmt.Fprintf(stderr, "preference pairs: share %v of the training pairs of %s from %s; %s held out\n",
			tc.PairsShare, strings.Join(used, ", "), tc.Pairs, counted(len(p.HeldOut), "pair"))
		if len(unused) > 0 {
			fmt.Fprintf(stderr, "align: warning: --pairs %s labels %v, which the model does not score: those labels are left out\n", tc.Pairs, unused)
		}
	}

	in := newTrainInterrupt()
	defer in.Stop()

	bar := newProgressBar(stderr, "reward train", tc.MaxTrainSteps)
	bar.base, bar.done = tr.Step, tr.Step
	var loss runningAverage
	accs := map[string]*runningAverage{}
	tr.Progress = func(e rewards.LogEntry) {
		if !e.Skipped {
			loss.add(e.Loss)
			for d, v := range e.DimAcc {
				if accs[d] == nil {
					accs[d] = &runningAverage{}
				}
				accs[d].add(v)
			}
		}
		var parts []string
		for _, d := range dimNames {
			if r := accs[d]; r != nil {
				parts = append(parts, fmt.Sprintf("%s %.2f", d, r.value))
			}
		}
		bar.Update(e.Step, fmt.Sprintf("loss %.4f acc %s lr %.2e %.0f pairs/s", loss.value, strings.Join(parts, " "), e.LR, e.PairsPerSec))
		in.Note(bar)
	}
	tr.Notify = func(msg string) { bar.Note(msg) }
	err := tr.Run(in.ctx, opts.TimeLimit)
	bar.Finish(loss.lossNote())
	if stopped, err := runStopped(stderr, opts.OutputDir, err, rewards.ErrInterrupted, rewards.ErrTimeLimit); stopped || err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "wrote %s (step %d)\n", tr.ModelPath(), tr.Step)
	for _, r := range []struct {
		rep              *rewards.EvalReport
		what, unit, file string
	}{
		{tr.Eval, "held-out accuracy", "pair", "eval.json"},
		// a held-out pair counts once for each dimension it labels
		{tr.PreferenceEval, "held-out preference pairs of " + tc.Pairs, "label", "eval-preferences.json"},
	} {
		if r.rep == nil {
			continue
		}
		fmt.Fprintf(out, "%s (%s, %s):\n", r.what, counted(r.rep.Pairs, r.unit), filepath.Join(opts.OutputDir, r.file))
		if err := printAccuracy(out, r.rep); err != nil {
			return err
		}
		if err := printTimeBuckets(out, r.rep); err != nil {
			return err
		}
	}
	return nil
}

func paramCount(ps []nn.Param) int {
	n := 0
	for _, p := range ps {
		n += p.W.Len()
	}
	return n
}

// wordScaleNote describes a latent model's word embedding for the start-of-run line.
func wordScaleNote(s float64) string {
	if s == 0 {
		return ""
	}
	return fmt.Sprintf(", word embedding x%g", s)
}

// pairConfig is the pair mixture of the run for dims, with the teacher and preference pairs
// of --teacher-scored and --pairs.
func (o *RewardTrainOptions) pairConfig(dims []string) rewards.PairConfig {
	c := o.Train.PairConfig(dims)
	c.Teacher, c.Preferences = o.teacher, o.preferences
	return c
}
