// align finetune: align a DiT model with preferences: Flow-DPO on pairs, Flow-RWR on a
// scored set, or the SFT baseline on winners; LoRA or full fine-tuning, with checkpoints that
// resume exactly, a JSONL log, a metrics plot, and a model file that align sample loads.
//
// Test: go test ./cmd/align -run Finetune
package main

import (
	"cmp"
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
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// RWR softmax groups (--rwr-groups).
const (
	rwrGroupsPrompt = "prompt"
	rwrGroupsGlobal = "global"
)

// FinetuneOptions are the flags of `align finetune`.
type FinetuneOptions struct {
	Pairs   string // --pairs: JSONL or VideoAlign CSV
	Scored  string // --scored: scored-set JSONL
	Data    string // --data: dataset directory (reward-cond builds its set from it)
	Reward  string // --reward: reward model scoring the reward-cond set ("" or default: embedded)
	Model   string // --model: the base model file
	Weights string // per-dimension weights for labels (pairs) or scores (scored sets)
	Combine string // scored sets: how scores become one reward
	Ties    string // keep or drop tie pairs

	Temperature float64
	RWRGroups   string

	CondSamples, CondDegraded, CondMismatched int      // reward-cond set from --data
	CondCorrupted                             int      // reward-cond set from --data, video models
	RewardDims                                []string // --reward-dims: remake the untaught slot with these

	// Validation (before the first step and at every checkpoint): --validation-prompt,
	// --num-validation-images, --validation-inference-steps, --validation-guidance-scale,
	// --validation-reward ("none": grids only).
	ValidationPrompts     []string
	ValidationPromptsFile string // --validation-prompts: one per line, or JSONL with "prompt"
	NumValidationImages   int
	ValidationSteps       int
	ValidationScale       float64
	ValidationRewards     []string

	Train                dpo.Config
	ResumeFromCheckpoint string
	MergeLoRA            bool
	OutputDir            string
	TimeLimit            time.Duration
	JSON                 bool

	loraFlags []string // LoRA and --full-finetune flags set on the command line
	condFlags []string // reward-cond flags set on the command line
}

// finetuneReport is what `align finetune --json` prints.
type finetuneReport struct {
	Method     string        `json:"method"`
	BaseModel  string        `json:"base_model"`
	Data       string        `json:"data"`
	Units      int           `json:"train_units"` // pairs (dpo) or samples
	Step       int           `json:"step"`
	Outputs    []string      `json:"outputs"`
	Checkpoint string        `json:"checkpoint"`
	Log        string        `json:"log"`
	Plot       string        `json:"plot"`
	Last       *dpo.LogEntry `json:"last_step,omitempty"`
	// The run's last validation and its log (with --validation-prompt).
	Validation    *dpo.ValidationEntry `json:"last_validation,omitempty"`
	ValidationLog string               `json:"validation_log,omitempty"`
	Seconds       float64              `json:"seconds"`
}

func newCmdFinetune(runF func(*FinetuneOptions) error) *cobra.Command {
	opts := &FinetuneOptions{Train: dpo.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "finetune",
		Short: "Align a model with preferences (Flow-DPO, Flow-RWR, SFT) or teach its reward-condition slot",
		Long: `Fine-tune a DiT model file (--model) with preference data:

  dpo  Flow-DPO on pairs (--pairs): winner and loser share t and noise; the frozen
       reference is the base with the LoRA adapters switched off (or, with --full-finetune,
       a copy of the starting weights); constant --beta-dpo or --beta-schedule one-minus-t-sq
  rwr  Flow-RWR on a scored set (--scored): per-sample errors weighted by
       softmax(reward / --temperature) within each prompt (--rwr-groups global: one softmax)
  sft  the winner-only baseline: the chosen sample of each pair, or the best of each prompt
  reward-cond
       teach the reward-condition slot (for align sample --reward-condition vq=max): the
       flow-matching loss with the per-dimension z-scores r of each sample fed to the slot,
       each dimension dropped to ∅ with --reward-dropout (default 0.1) and the caption with
       --caption-dropout (0.1); t logit-normal. The set is a scored set (--scored) or is
       built from a dataset (--data DIR): each training image with its caption, plus
       --cond-degraded degraded copies (low vq) and --cond-mismatched copies under another
       image's caption (low ta), for a video model also --cond-corrupted motion-corrupted
       copies (low mq), all scored by --reward (default: the embedded model of the kind).
       --reward-dims remakes a slot that reward-cond has not taught with other dimensions
       (the video model's is its image model's vq,ta; add mq). The slot is trained with
       LoRA too; model.safetensors (adapters merged) stores the 0.99 quantile of each
       dimension's conditions as its "max"

Pairs are align's JSONL ({"prompt","chosen","rejected"} with optional per-dimension
"labels" A/B/tie and scores), VideoAlign's CSV (path_A, path_B, prompt, VQ, MQ, TA), or a
folder in sd-scripts' layout: w/NAME.png preferred over l/NAME.png (any image, GIF, video or
frame folder; names pair them), the prompt in NAME.txt or NAME.caption, folders below holding
w/ and l/ read too; per-dimension labels are collapsed with --weights (ties kept or dropped
by --ties). A scored
set is JSONL {"prompt","image","scores":{...}} or the JSONL of align score; its scores are
combined with --weights and --combine. Every malformed line is reported as file:line and
every image is read before the first step. The output directory receives:

  adapter.safetensors             LoRA adapters (the default); align sample --model loads them
                                  onto the base model of the run (recorded by its absolute path)
  model.safetensors               plain weights (--merge-lora, or --full-finetune), with the base
                                  they started from: align sample --adapter mixes them as W_ft - W
  checkpoint-<step>.safetensors   everything needed to resume exactly (no --model needed; on
                                  the same --device and --precision, or a warning says not)
  logs.jsonl, metrics.png         loss, implicit_acc, inside, w_diff, l_diff, ... per step
  config.json                     the run's configuration, device and precision
  validation/step-<step>.png, validation.jsonl, validation.png
                                  with --validation-prompt: before the first step and at every
                                  checkpoint, the policy as written (EMA when averaging) samples
                                  each prompt with --num-validation-images fixed seeds; the grid,
                                  and --validation-reward's mean score and z-score per dimension
                                  with the win rate against the first validation (the same
                                  prompt and seed scoring higher; ties half), one line on stderr
                                  and both by step in validation.png: a dimension falling while
                                  another rises shows as it happens

SIGINT (Ctrl-C) finishes the current step, writes a checkpoint and exits with code 2. A
finished LoRA run resumed with --merge-lora trains no further and writes model.safetensors.

--beta-dpo defaults to 2000, the best of a sweep (100, 500, 2000, 5000) on the embedded image
model: VideoAlign's 500 let visual quality fall. Its effect depends on how the error is
reduced (here a mean over the sample's elements) and on the model, so sweep it for yours
(watch implicit_acc, w_diff and l_diff: w_diff and l_diff both rising means the model is
drifting away from the data, not learning the preference).` + skippedStepsHelp,
		Example: `  $ align finetune --method dpo --pairs pairs.jsonl --model base/model.safetensors -o dpo/
  $ align finetune --method dpo --pairs videoalign.csv --weights vq=1,mq=1,ta=1 --ties drop --model base/model.safetensors -o dpo/
  $ align finetune --method rwr --scored scored.jsonl --temperature 0.5 --model base/model.safetensors -o rwr/
  $ align finetune --method sft --pairs pairs.jsonl --full-finetune --model base/model.safetensors -o sft/
  $ align finetune --method dpo --pairs prefs/ -o dpo/     # prefs/w/0001.png + 0001.txt preferred over prefs/l/0001.png
  $ align finetune --method dpo --pairs pairs.jsonl -o dpo/ --validation-prompt "red apple" --validation-prompt rocket
  $ align finetune --method dpo --pairs pairs.jsonl -o dpo/ --resume-from-checkpoint latest --merge-lora
  $ align finetune --method dpo --pairs pairs.jsonl -o dpo-bf16/ --precision bf16   # BF16 products (resume in the same precision)
  $ align finetune --method reward-cond --data data/emoji --full-finetune -o cond/
  $ align sample --model cond/model.safetensors --prompt "red apple" --reward-condition vq=max,ta=max
  $ align finetune --method reward-cond --model default-video --data data/emoji --reward-dims vq,ta,mq -o cond-video/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range []string{"lora-rank", "lora-alpha", "lora-targets", "full-finetune"} {
				if cmd.Flags().Changed(n) {
					opts.loraFlags = append(opts.loraFlags, "--"+n)
				}
			}
			for _, n := range []string{"data", "reward", "cond-samples", "cond-degraded", "cond-mismatched", "cond-corrupted", "caption-dropout", "reward-dropout", "reward-dims"} {
				if cmd.Flags().Changed(n) {
					opts.condFlags = append(opts.condFlags, "--"+n)
				}
			}
			if opts.Train.Method == dpo.MethodRewardCond && !cmd.Flags().Changed("weighting-scheme") {
				opts.Train.Timesteps.WeightingScheme = diffusion.WeightingLogitNormal // pre-training's density
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return finetuneRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	t := &opts.Train
	f.StringVar(&t.Method, "method", t.Method, "dpo, rwr, sft or reward-cond")
	f.StringVar(&opts.Pairs, "pairs", "", "preference pairs: JSONL, VideoAlign's CSV layout (.csv), or a folder of w/ (preferred) and l/ samples")
	f.StringVar(&opts.Scored, "scored", "", "scored set JSONL (rwr, sft): {\"prompt\",\"image\",\"scores\"} or align score output")
	f.StringVar(&opts.Data, "data", "", "reward-cond: dataset directory (align data) to build the scored training set from")
	f.StringVar(&opts.Reward, "reward", "default", "reward-cond with --data: reward model scoring the set (.safetensors, or default: embedded)")
	f.IntVar(&opts.CondSamples, "cond-samples", 0, "reward-cond with --data: training images used, a random subset (0: all)")
	f.IntVar(&opts.CondDegraded, "cond-degraded", 1, "reward-cond with --data: degraded copies per image (spread vq)")
	f.IntVar(&opts.CondMismatched, "cond-mismatched", 1, "reward-cond with --data: copies under another image's caption (spread ta)")
	f.IntVar(&opts.CondCorrupted, "cond-corrupted", 1, "reward-cond with --data, video models: motion-corrupted copies per clip (spread mq)")
	t.Timesteps.CaptionDropout, t.Timesteps.RewardDropout = 0.1, 0.1 // used by reward-cond only
	f.Float64Var(&t.Timesteps.CaptionDropout, "caption-dropout", 0.1, "reward-cond: probability of the empty caption")
	f.Float64Var(&t.Timesteps.RewardDropout, "reward-dropout", 0.1, "reward-cond: probability of dropping each reward dimension (∅)")
	f.StringSliceVar(&opts.RewardDims, "reward-dims", nil, "reward-cond: remake the model's untaught reward-condition slot with these dimensions (e.g. vq,ta,mq for the video model, whose slot is its image model's vq,ta)")
	f.StringVar(&opts.Model, "model", "", "base model file (.safetensors) written by align pretrain, or default-video (default: the embedded image model)")
	f.StringVar(&opts.Weights, "weights", "", "per-dimension weights, e.g. vq=1,ta=2, for labels or scores (default: equal)")
	f.StringVar(&opts.Combine, "combine", rewards.CombineLinear, "scored sets: "+strings.Join(rewards.Combiners, ", "))
	f.StringVar(&opts.Ties, "ties", dpo.TiesKeep, "pairs whose labels collapse to a tie: keep (pushed towards equal) or drop")
	f.Float64Var(&t.BetaDPO, "beta-dpo", t.BetaDPO, "Flow-DPO beta (KL strength)")
	f.StringVar(&t.BetaSchedule, "beta-schedule", t.BetaSchedule, "const or one-minus-t-sq (beta (1-t)^2)")
	f.Float64Var(&opts.Temperature, "temperature", 1, "Flow-RWR softmax temperature")
	f.StringVar(&opts.RWRGroups, "rwr-groups", rwrGroupsPrompt, "Flow-RWR softmax over each prompt's samples (prompt) or all (global)")
	f.IntVar(&t.LoRA.Rank, "lora-rank", t.LoRA.Rank, "LoRA rank r")
	f.Float64Var(&t.LoRA.Alpha, "lora-alpha", 0, "LoRA alpha (scale alpha/r; default 2*rank)")
	f.StringSliceVar(&t.LoRA.Targets, "lora-targets", t.LoRA.Targets, "projections with adapters: "+strings.Join(dpo.LoRATargets, ", "))
	f.BoolVar(&t.FullFinetune, "full-finetune", false, "train every weight instead of LoRA adapters")
	f.BoolVar(&opts.MergeLoRA, "merge-lora", false, "also write model.safetensors with the adapters merged (plain weights)")
	addTrainFlags(f, trainFlags{Loop: &t.TrainLoop, SeedDraws: "adapters, data order, times and noise",
		BatchUnit: "pairs (dpo) or samples (rwr, sft) per micro-batch", Betas: &t.AdamBetas, EMADecay: &t.EMADecay,
		ResumeFromCheckpoint: &opts.ResumeFromCheckpoint, TimeLimit: &opts.TimeLimit})
	f.IntVar(&t.GradientAccumulationSteps, "gradient-accumulation-steps", t.GradientAccumulationSteps, "micro-batches per optimizer step")
	f.StringVar(&t.Timesteps.WeightingScheme, "weighting-scheme", t.Timesteps.WeightingScheme, "density of t: none (uniform, VideoAlign), logit_normal or mode")
	f.Float64Var(&t.Timesteps.LogitMean, "logit-mean", t.Timesteps.LogitMean, "mean of the logit-normal density")
	f.Float64Var(&t.Timesteps.LogitStd, "logit-std", t.Timesteps.LogitStd, "std of the logit-normal density")
	f.StringVarP(&opts.OutputDir, "output-dir", "o", "align-finetune", "directory for the outputs, checkpoints and logs")
	f.BoolVar(&opts.JSON, "json", false, "print a JSON report of the run on stdout")
	f.StringArrayVar(&opts.ValidationPrompts, "validation-prompt", nil, "sample and score this prompt before the first step and at every checkpoint (repeatable; none: no validation)")
	f.StringVar(&opts.ValidationPromptsFile, "validation-prompts", "", "file of validation prompts: one per line, or JSONL with a \"prompt\" field (after any --validation-prompt)")
	f.IntVar(&opts.NumValidationImages, "num-validation-images", 2, "validation: images per prompt (fixed seeds)")
	f.IntVar(&opts.ValidationSteps, "validation-inference-steps", 28, "validation: denoising steps")
	f.Float64Var(&opts.ValidationScale, "validation-guidance-scale", 4, "validation: classifier-free guidance scale")
	f.StringArrayVar(&opts.ValidationRewards, "validation-reward", []string{"default"}, "validation: reward model scoring the samples per dimension (default: the embedded one of the model's kind; FILE.safetensors, FILE.onnx, or an ONNX or remote model's manifest FILE.json; repeatable: several side by side; none: grids only)")
	return cmd
}

func (o *FinetuneOptions) validate() error {
	t := &o.Train
	cond := t.Method == dpo.MethodRewardCond
	if !cond {
		t.Timesteps.CaptionDropout, t.Timesteps.RewardDropout = 0, 0 // not used by these losses
	}
	switch {
	case !cond && len(o.condFlags) > 0:
		return flagErrorf("%s: only with --method reward-cond", strings.Join(o.condFlags, ", "))
	case cond && o.Pairs != "":
		return flagErrorf("--method reward-cond trains on scored samples: give --data DIR or --scored FILE, not --pairs")
	case cond && (o.Data == "") == (o.Scored == ""):
		return flagErrorf("--method reward-cond: give --data DIR (a set is built and scored) or --scored FILE")
	case cond && (o.CondSamples < 0 || o.CondDegraded < 0 || o.CondMismatched < 0):
		return flagErrorf("--cond-samples, --cond-degraded and --cond-mismatched must be >= 0")
	case o.Pairs != "" && o.Scored != "":
		return flagErrorf("--pairs and --scored: give one data file")
	case t.Method == dpo.MethodDPO && o.Pairs == "":
		return flagErrorf("--method dpo trains on pairs: give --pairs FILE")
	case t.Method == dpo.MethodRWR && o.Scored == "":
		return flagErrorf("--method rwr trains on a scored set: give --scored FILE")
	case t.Method == dpo.MethodSFT && o.Pairs == "" && o.Scored == "":
		return flagErrorf("--method sft trains on winners: give --pairs FILE or --scored FILE")
	case o.OutputDir == "":
		return flagErrorf("--output-dir must not be empty")
	case o.MergeLoRA && t.FullFinetune:
		return flagErrorf("--merge-lora merges LoRA adapters; --full-finetune writes plain weights anyway")
	case !(o.Temperature > 0):
		return flagErrorf("--temperature must be > 0, got %v", o.Temperature)
	case o.RWRGroups != rwrGroupsPrompt && o.RWRGroups != rwrGroupsGlobal:
		return flagErrorf("--rwr-groups %q: want prompt or global", o.RWRGroups)
	case !slices.Contains(rewards.Combiners, o.Combine):
		return flagErrorf("--combine %q: want one of %s", o.Combine, strings.Join(rewards.Combiners, ", "))
	case o.Ties != dpo.TiesKeep && o.Ties != dpo.TiesDrop:
		return flagErrorf("--ties %q: want keep or drop", o.Ties)
	case o.NumValidationImages < 1:
		return flagErrorf("--num-validation-images must be >= 1, got %d", o.NumValidationImages)
	case len(o.ValidationPrompts) > 0 && slices.Contains(o.ValidationPrompts, ""):
		return flagErrorf("--validation-prompt must not be empty")
	case len(o.ValidationRewards) == 0 || slices.Contains(o.ValidationRewards, "") ||
		len(o.ValidationRewards) > 1 && slices.Contains(o.ValidationRewards, "none"):
		return flagErrorf("--validation-reward: give reward models, or none alone (grids only)")
	case o.ResumeFromCheckpoint != "" && len(o.loraFlags) > 0:
		return flagErrorf("%s with --resume-from-checkpoint: a resumed run keeps the checkpoint's adapters (or full fine-tuning)",
			strings.Join(o.loraFlags, ", "))
	}
	if err := validateTimeLimit(o.TimeLimit); err != nil {
		return err
	}
	if t.LoRA.Alpha == 0 {
		t.LoRA.Alpha = 2 * float64(t.LoRA.Rank)
	}
	if err := t.Validate(); err != nil {
		return usageError{err}
	}
	return nil
}

// finetuneData reads the data file and loads its samples for a model of config mc.
func finetuneData(dev kernels.Device, opts *FinetuneOptions, mc *diffusion.ModelConfig, stderr io.Writer) (*dpo.Data, error) {
	method := opts.Train.Method
	if method == dpo.MethodRewardCond {
		return condData(dev, opts, mc, stderr)
	}
	if opts.Pairs != "" {
		set, err := dpo.ReadPairs(opts.Pairs, dpo.PairOptions{Weights: opts.Weights, Ties: opts.Ties})
		if err != nil {
			return nil, err
		}
		note := ""
		if len(set.Dims) > 0 {
			note = fmt.Sprintf(" (labels %s weighted %s: %d turned round, %d ties %s, %d uninformative left out)",
				strings.Join(set.Dims, ","), rewards.FormatWeights(set.Dims, set.Weights), set.Swapped,
				set.Ties()+set.TiesDropped, map[bool]string{true: "dropped", false: "kept"}[opts.Ties == dpo.TiesDrop], set.Uninformative)
		}
		fmt.Fprintf(stderr, "%s: %s%s\n", opts.Pairs, counted(len(set.Pairs), "pair"), note)
		if method == dpo.MethodSFT {
			return dpo.WinnerData(set, mc)
		}
		return dpo.PairData(set, mc)
	}
	set, err := dpo.ReadScored(opts.Scored)
	if err != nil {
		return nil, err
	}
	note := ""
	if set.Failed > 0 {
		note = fmt.Sprintf(", %d unscored rows left out", set.Failed)
	}
	fmt.Fprintf(stderr, "%s: %d scored samples (%s)%s\n", opts.Scored, len(set.Items), strings.Join(set.Dims, ", "), note)
	return dpo.ScoredData(set, method, dpo.ScoredOptions{Weights: opts.Weights, Combine: opts.Combine,
		Temperature: opts.Temperature, Global: opts.RWRGroups == rwrGroupsGlobal}, mc)
}

// finetuneRecord is config.json of the output directory.
type finetuneRecord struct {
	Train       dpo.Config            `json:"finetune"`
	Model       diffusion.ModelConfig `json:"model"`
	BaseModel   string                `json:"base_model"`
	Pairs       string                `json:"pairs,omitempty"`
	Scored      string                `json:"scored,omitempty"`
	Data        string                `json:"data,omitempty"`
	CondMax     map[string]float64    `json:"reward_condition_max,omitempty"`
	Weights     string                `json:"weights"`
	Combine     string                `json:"combine,omitempty"`
	Ties        string                `json:"ties,omitempty"`
	Temperature float64               `json:"temperature,omitempty"`
	RWRGroups   string                `json:"rwr_groups,omitempty"`
	Units       int                   `json:"train_units"`
	Trainable   int                   `json:"trainable_params"`
	Resumed     string                `json:"resumed_from,omitempty"`
	Started     string                `json:"started"`
	Version     string                `json:"align_version"`
	nn.Compute
}

func finetuneRun(cmd *cobra.Command, opts *FinetuneOptions) error {
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	cfg := opts.Train
	var tr *dpo.Trainer
	var data *dpo.Data
	resumed := ""
	if opts.ResumeFromCheckpoint != "" {
		path, err := resumeCheckpoint(opts.ResumeFromCheckpoint, opts.OutputDir)
		if err != nil {
			return err
		}
		ck, mc, _, _, err := dpo.ReadTrainingCheckpoint(path)
		if err != nil {
			return err
		}
		if len(opts.RewardDims) > 0 && !slices.Equal(opts.RewardDims, mc.RewardDims) {
			return usageError{fmt.Errorf("--reward-dims %s: the checkpoint's model conditions on %s; a resumed run keeps its slot",
				strings.Join(opts.RewardDims, ","), strings.Join(mc.RewardDims, ","))}
		}
		if opts.Model != "" {
			fmt.Fprintf(stderr, "align: warning: --model is ignored: a resumed run continues the checkpoint's model\n")
		}
		if data, err = finetuneData(dev, opts, &mc, stderr); err != nil {
			return err
		}
		warnComputeChange(stderr, ck, dev)
		if tr, err = dpo.ResumeTrainer(dev, path, cfg, data, opts.OutputDir); err != nil {
			return err
		}
		resumed = path
		fmt.Fprintf(stderr, "resuming from %s at step %d\n", path, tr.Step)
		if ch := diffusion.ConfigChanges(tr.Resumed, &tr.Cfg); len(ch) > 0 {
			fmt.Fprintf(stderr, "align: warning: hyper-parameters differ from the checkpoint's run: %s\n",
				strings.Join(ch, "; "))
		}
	} else {
		if cs, _ := nn.Checkpoints(opts.OutputDir); len(cs) > 0 {
			return usageError{fmt.Errorf("%s holds checkpoints of an earlier run (%s); resume it with "+
				"--resume-from-checkpoint latest, or choose another --output-dir", opts.OutputDir, filepath.Base(cs[len(cs)-1]))}
		}
		m, _, err := loadGenerator(dev, opts.Model)
		if err != nil {
			return err
		}
		if len(opts.RewardDims) > 0 && !slices.Equal(opts.RewardDims, m.Config.RewardDims) {
			// The slot's own stream (seed ^ "rewd"), so that remaking it draws the same weights
			// whatever else the run initialises.
			was := strings.Join(m.Config.RewardDims, ",")
			if err := m.RemakeRewardSlot(&kernels.RNG{Seed: opts.Train.Seed ^ 0x72657764}, opts.RewardDims); err != nil {
				return usageError{fmt.Errorf("--reward-dims: %w", err)}
			}
			fmt.Fprintf(stderr, "reward-condition slot remade with dimensions %s (was: %s)\n", strings.Join(opts.RewardDims, ","), cmp.Or(was, "none"))
		}
		if data, err = finetuneData(dev, opts, &m.Config, stderr); err != nil {
			return err
		}
		if tr, err = dpo.NewTrainer(dev, m, cfg, data, opts.OutputDir); err != nil {
			return err
		}
		// The adapter file names its base: a file as an absolute path, to be found from any
		// directory; the embedded video model by its name ("" is the embedded image model).
		switch {
		case opts.Model == "default-video":
			tr.BaseModel = opts.Model
		case !isDefaultModel(opts.Model):
			if tr.BaseModel, err = filepath.Abs(opts.Model); err != nil {
				return err
			}
		}
	}
	tr.MergeLoRA = opts.MergeLoRA
	warnUnknownWords(stderr, tr.Model.Tokenizer, data)
	closeValidation, err := finetuneValidation(cmd, opts, dev, tr)
	if err != nil {
		return err
	}
	defer closeValidation()
	if tr.Validation != nil {
		// A resumed run's validations must be of the same prompts and model: checked before
		// config.json or a log is rewritten.
		if err := tr.LoadValidationLog(); err != nil {
			return usageError{err}
		}
	}

	trainable := 0
	for _, p := range tr.Opt.Params {
		trainable += p.W.Len()
	}
	total := tr.Model.Config.ParamCount()
	what := fmt.Sprintf("full fine-tuning of %s parameters", fmtCount(trainable))
	if tr.LoRA != nil {
		lc := tr.Cfg.LoRA
		what = fmt.Sprintf("LoRA rank %d alpha %g on %s (%d adapters, %s trainable parameters of %s)", lc.Rank, lc.Alpha,
			strings.Join(lc.Targets, ","), len(tr.LoRA), fmtCount(trainable), fmtCount(total))
	}
	unit := "samples"
	if cfg.Method == dpo.MethodRewardCond {
		unit = fmt.Sprintf("samples, reward dimensions %s, dropout %g per dimension, caption dropout %g",
			strings.Join(tr.Model.Config.RewardDims, ","), cfg.Timesteps.RewardDropout, cfg.Timesteps.CaptionDropout)
	}
	if cfg.Method == dpo.MethodDPO {
		unit = fmt.Sprintf("pairs, beta %g (%s)", cfg.BetaDPO, cfg.BetaSchedule)
	}
	fmt.Fprintf(stderr, "%s on %d %s; %s; %s\n", cfg.Method, data.Len(), unit, what, dev.Name())

	if err := os.MkdirAll(opts.OutputDir, 0o755); err != nil {
		return err
	}
	rec := finetuneRecord{Train: tr.Cfg, Model: tr.Model.Config, BaseModel: tr.BaseModel, Pairs: opts.Pairs, Scored: opts.Scored,
		Data: opts.Data, Weights: opts.Weights, Units: data.Len(), Trainable: trainable, Resumed: resumed,
		Started: time.Now().UTC().Format(time.RFC3339), Version: version, Compute: nn.ComputeOf(dev)}
	if rec.CondMax, err = diffusion.RewardConditionMaxMap(tr.Model.Config.RewardDims, tr.Model.RewardConditionMax); err != nil {
		return err
	}
	if opts.Pairs != "" {
		rec.Ties = opts.Ties
	} else if cfg.Method != dpo.MethodRewardCond {
		rec.Combine, rec.Temperature, rec.RWRGroups = opts.Combine, opts.Temperature, opts.RWRGroups
	}
	if err := writeJSONFile(filepath.Join(opts.OutputDir, "config.json"), rec); err != nil {
		return err
	}

	in := newTrainInterrupt()
	defer in.Stop()

	bar := newProgressBar(stderr, "finetune "+cfg.Method, tr.Cfg.MaxTrainSteps)
	bar.base, bar.done = tr.Step, tr.Step
	var loss, acc, inside, mse runningAverage
	tr.Progress = func(e dpo.LogEntry, _ time.Duration) {
		if !e.Skipped {
			loss.add(e.Loss)
			if d := e.DPOMetrics; d != nil {
				acc.add(d.ImplicitAcc)
				inside.add(d.Inside)
			}
			if r := e.RWRMetrics; r != nil {
				mse.add(r.MSE)
			}
		}
		extra := fmt.Sprintf("loss %.4f", loss.value)
		if e.DPOMetrics != nil {
			extra += fmt.Sprintf(" implicit_acc %.2f inside %.3g", acc.value, inside.value)
		} else {
			extra += fmt.Sprintf(" mse %.4f", mse.value)
		}
		bar.Update(e.Step, fmt.Sprintf("%s lr %.2e %.1f samples/s", extra, e.LR, e.SamplesPerSec))
		in.Note(bar)
	}
	tr.Notify = func(msg string) { bar.Note(msg) }
	err = tr.Run(in.ctx, opts.TimeLimit)
	bar.Finish(loss.lossNote())
	// A run stopped by the time limit goes on to report the outputs written with its
	// checkpoint.
	if _, err := runStopped(stderr, opts.OutputDir, err, diffusion.ErrInterrupted, diffusion.ErrTimeLimit); err != nil {
		return err
	}

	var outs []string
	cond := cfg.Method == dpo.MethodRewardCond
	if tr.LoRA != nil && !cond {
		outs = append(outs, tr.AdapterPath())
	}
	if tr.LoRA == nil || opts.MergeLoRA || cond {
		outs = append(outs, tr.ModelPath())
	}
	out := cmd.OutOrStdout()
	if opts.JSON {
		rep := finetuneReport{Method: cfg.Method, BaseModel: tr.BaseModel, Data: opts.Pairs + opts.Scored + opts.Data, Units: data.Len(),
			Step: tr.Step, Outputs: outs, Checkpoint: tr.CheckpointPath(tr.Step), Log: filepath.Join(opts.OutputDir, "logs.jsonl"),
			Plot: tr.PlotPath(), Seconds: time.Since(start).Seconds()}
		if len(tr.Log) > 0 {
			rep.Last = &tr.Log[len(tr.Log)-1]
		}
		if n := len(tr.ValLog); n > 0 {
			rep.Validation, rep.ValidationLog = &tr.ValLog[n-1], filepath.Join(opts.OutputDir, dpo.ValidationFile)
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(out, "wrote %s (step %d)\n", strings.Join(outs, " and "), tr.Step)
	if tr.LoRA != nil && !opts.MergeLoRA && !cond {
		fmt.Fprintf(stderr, "align sample --model %s applies the adapters to their base model; plain weights: "+
			"align finetune --resume-from-checkpoint latest -o %s --merge-lora %s\n", tr.AdapterPath(), opts.OutputDir, dataFlag(opts))
	}
	return nil
}

// finetuneValidation sets the trainer's validation from the flags (none without
// --validation-prompt or --validation-prompts): the prompts, the sampling options and the
// reward model scoring the samples. The function it returns releases the reward model.
func finetuneValidation(cmd *cobra.Command, opts *FinetuneOptions, dev kernels.Device, tr *dpo.Trainer) (func(), error) {
	none := func() {}
	prompts := slices.Clone(opts.ValidationPrompts)
	if f := opts.ValidationPromptsFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("--validation-prompts: %w", err)}
		}
		ps, err := parsePrompts(f, b, strings.HasSuffix(strings.ToLower(f), ".jsonl")) // an empty file is an error
		if err != nil {
			return nil, usageError{fmt.Errorf("--validation-prompts: %w", err)}
		}
		prompts = append(prompts, ps...)
	}
	if len(prompts) == 0 {
		return none, nil
	}
	m := tr.Model
	o := diffusion.DefaultSampleOptions()
	o.NumInferenceSteps, o.GuidanceScale = opts.ValidationSteps, opts.ValidationScale
	if err := o.Validate(); err != nil {
		return nil, usageError{fmt.Errorf("validation: %w", err)}
	}
	warnPromptWords(cmd.ErrOrStderr(), m.Tokenizer, prompts)
	tr.Validation = &dpo.Validation{Prompts: prompts, NumImages: opts.NumValidationImages, Options: o}
	if slices.Equal(opts.ValidationRewards, []string{"none"}) {
		return none, nil
	}
	// loadSampleReward reads default as the embedded model of the generator's kind.
	rm, desc, closeReward, err := loadSampleRewards(cmd, opts.ValidationRewards, false, dev, m)
	if err != nil {
		return nil, fmt.Errorf("--validation-reward: %w", err)
	}
	sc, err := guidance.NewScorer(rm, "", "")
	if err == nil {
		if m.Config.Kind == diffusion.KindVideo {
			sc.FPS = clipFPS // the rate the samples are written at
		}
		// A model that cannot read the generator's samples fails here, not after a run's
		// first checkpoint: one sample of zeros scored.
		x := dev.New(m.Config.BatchShape(1)...)
		_, _, err = sc.Utility(x, prompts[:1], 1)
		dev.Free(x)
		if err != nil {
			sc.Free()
			err = usageError{fmt.Errorf("--validation-reward %s cannot score the samples of this %s model (%v): %w",
				desc, m.Config.Kind, m.Config.SampleShape(), err)}
		}
	}
	if err != nil {
		closeReward()
		return nil, err
	}
	tr.Validation.Scorer, tr.Validation.Reward = sc, desc
	return func() { sc.Free(); closeReward() }, nil
}

// dataFlag repeats the data flags of a run for the hint that resumes it.
func dataFlag(opts *FinetuneOptions) string {
	s := "--method " + opts.Train.Method
	switch {
	case opts.Pairs != "":
		s += " --pairs " + opts.Pairs
	case opts.Data != "":
		s += " --data " + opts.Data
	default:
		s += " --scored " + opts.Scored
	}
	return s
}

// warnUnknownWords warns once about prompt words outside the model's vocabulary.
func warnUnknownWords(w io.Writer, tok *diffusion.Tokenizer, data *dpo.Data) {
	var caps []string
	for _, p := range data.Pairs {
		caps = append(caps, p.Prompt)
	}
	for _, it := range data.Items {
		caps = append(caps, it.Prompt)
	}
	unk := diffusion.EncodePrompts(tok, caps).Unknown
	if len(unk) == 0 {
		return
	}
	fmt.Fprintf(w, "align: warning: prompt words not in the model's vocabulary (%d words): %s\n", tok.VocabSize(), wordList(unk))
}

// fmtCount prints a parameter count: 950, 12.3k, 9.51M.
func fmtCount(n int) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
