// Training of the native reward model (and of the noise-aware latent one, latent_train.go)
// on preference pairs, calibration on the validation split and pairwise evaluation.
//
// One optimizer step s = 1, 2, ...:
//
//	pairs  = PairGen.Pairs("train", train_batch_size, seed, stream s)   (a pure function of s)
//	scores = Native.Forward([A samples | B samples])                    (2N, D)
//	         (latent: LatentReward.Forward at one t and eps per pair, latent_train.go)
//	loss   = LossConfig.PairLoss (btt, bt or reg), gradients zeroed first
//	norm   = global gradient norm, clipped to max_grad_norm in the AdamW step (nn.ClipScale)
//	lr(s)  = nn.ScheduledLR: linear warmup, then constant | linear | cosine decay
//	AdamW step
//
// A step whose loss or norm is not finite is skipped (nn.SkipNonFinite): no AdamW step, a
// log line marked "skipped" (its non-finite numbers written as 0), and the run goes on with
// step s+1 and its learning rate; nn.MaxSkippedSteps skipped steps in a row end it with
// nn.ErrDiverged.
//
// The pairs depend only on (seed, s), so a run resumed from checkpoint-<step>.safetensors
// (weights, AdamW moments and step, the step) continues exactly. At the end the model is
// calibrated on the validation split (per-dimension mean and std of the scores of every
// sample of the validation pairs, and the tie threshold that maximises the accuracy with
// ties there) and written to model.safetensors, frozen.
//
// Test: go test ./rewards -run 'Train|Calibrate|Evaluate'
package rewards

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// TrainConfig holds the hyper-parameters of a reward-model run (diffusers' flag names).
type TrainConfig struct {
	nn.TrainLoop         // TrainBatchSize counts pairs; AdamW's betas are nn.DefaultAdamBetas
	LossType     string  `json:"loss_type"`    // btt, bt, reg
	TieK         float64 `json:"tie_k"`        // Rao-Kupper k of btt
	TieShare     float64 `json:"tie_share"`    // share of tie pairs (PairConfig)
	GradedShare  float64 `json:"graded_share"` // share of two-level quality pairs
	ValPairs     int     `json:"val_pairs"`    // validation pairs for calibration
	EvalPairs    int     `json:"eval_pairs"`   // held-out pairs evaluated at the end (0: none)
	// ValPercent is PairConfig.ValPercent: the share of training concepts kept for
	// validation, in percent (0, a run before the option: ValPerCent).
	ValPercent int `json:"val_percent,omitempty"`
	// TimestepSampling draws the noise level of each pair of a latent run: uniform ("" too)
	// or logit_normal; clean models ignore it.
	TimestepSampling string `json:"timestep_sampling,omitempty"`
	// ConceptPart of ConceptParts (0/0 or 0/1: all) trains on one part of the training
	// concepts (PairConfig.Part), e.g. a judge on 1/2 for a model trained on 0/2.
	ConceptPart  int `json:"concept_part,omitempty"`
	ConceptParts int `json:"concept_parts,omitempty"`
	// ImageSet ("": all) trains on one artwork set's images (PairConfig.Set), e.g. a reward
	// model on twitter and its judge on google.
	ImageSet string `json:"image_set,omitempty"`
	// Negatives "generator" makes NegativeShare of the decisive vq pairs real against a
	// few-step sample of the generator file whose sha256 is NegativesGeneratorSHA256, from a
	// pool of NegativesPerLevel items per split (0: all; negatives.go); "" draws none.
	Negatives                string  `json:"negatives,omitempty"`
	NegativeShare            float64 `json:"negative_share,omitempty"`
	NegativesPerLevel        int     `json:"negatives_per_level,omitempty"`
	NegativesGeneratorSHA256 string  `json:"negatives_generator_sha256,omitempty"`
	// TAImageShare is PairConfig.TAImageShare: the share of decisive TA pairs that compare two
	// images under one caption.
	TAImageShare float64 `json:"ta_image_share,omitempty"`
	// TAImageNegatives is PairConfig.TAImageNegatives ("" and "random": another subcategory).
	TAImageNegatives string `json:"ta_image_negatives,omitempty"`
	// TeacherScored is the scored set (align pairs --scored) whose samples make TeacherShare
	// of the training pairs of each dimension it scores, labelled by its z-scores with ties
	// within TeacherMargin (PairConfig.Teacher, teacher.go); TeacherSHA256 is its sha256.
	TeacherScored string  `json:"teacher_scored,omitempty"`
	TeacherSHA256 string  `json:"teacher_sha256,omitempty"`
	TeacherShare  float64 `json:"teacher_share,omitempty"`
	TeacherMargin float64 `json:"teacher_margin,omitempty"`
	// Pairs is the preference file (align's pairs JSONL with labels, or VideoAlign's CSV)
	// whose training pairs make PairsShare of the training pairs of each dimension it labels
	// (of those not drawn from the teacher; PairConfig.Preferences, preferences.go) and whose
	// held-out pairs are evaluated at the end (eval-preferences.json); PairsSHA256 is its sha256.
	Pairs       string  `json:"pairs,omitempty"`
	PairsSHA256 string  `json:"pairs_sha256,omitempty"`
	PairsShare  float64 `json:"pairs_share,omitempty"`
	// InitFrom is the image reward model the run started from (Trainer.InflateFrom: inflated
	// for a video run); nil for a run from seeded weights. Checkpoints carry it, so a resume needs no --init-from.
	InitFrom *diffusion.InitSource `json:"init_from,omitempty"`
}

// DefaultTrainConfig returns the defaults of `align reward train`.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{
		TrainLoop: nn.TrainLoop{TrainBatchSize: 32, MaxTrainSteps: 3000, LearningRate: 3e-4, LRScheduler: nn.LRCosine,
			LRWarmupSteps: 100, AdamWeightDecay: 0.01, MaxGradNorm: 1, CheckpointingSteps: 500, CheckpointsTotalLimit: 2},
		LossType: LossBTT, TieK: DefaultTieK, TieShare: 0.15, GradedShare: 0.25, ValPairs: 1024, EvalPairs: 2048,
		TimestepSampling: TimestepUniform, NegativeShare: 0.25, TAImageNegatives: TAImageRandom, ValPercent: ValPerCent}
}

// taImageNegatives is TAImageNegatives with "" (a run before the option) read as random.
func (c *TrainConfig) taImageNegatives() string {
	if c.TAImageNegatives == "" {
		return TAImageRandom
	}
	return c.TAImageNegatives
}

// Loss returns the loss configuration.
func (c *TrainConfig) Loss() LossConfig { return LossConfig{Kind: c.LossType, K: c.TieK} }

// PairConfig returns the pair mixture for dims.
func (c *TrainConfig) PairConfig(dims []string) PairConfig {
	return PairConfig{Dims: dims, TieShare: share(c.TieShare), GradedShare: share(c.GradedShare), Part: c.ConceptPart, Parts: c.ConceptParts, Set: c.ImageSet,
		NegativeShare: c.NegativeShare, TAImageShare: c.TAImageShare, TAImageNegatives: c.TAImageNegatives, TeacherShare: c.TeacherShare,
		PreferenceShare: c.PairsShare, ValPercent: c.ValPercent}
}

// valPercent is ValPercent with 0 (a run before the option) read as ValPerCent.
func (c *TrainConfig) valPercent() int { return cmp.Or(c.ValPercent, ValPerCent) }

// Validate checks the hyper-parameters.
func (c *TrainConfig) Validate() error {
	if err := c.TrainLoop.Validate(); err != nil {
		return err
	}
	switch {
	case c.LossType == LossBTT && !(c.TieK > 1): // LossConfig would read 0 as its default
		return fmt.Errorf("--k must be > 1 (the Rao-Kupper tie parameter of loss btt), got %v", c.TieK)
	case !(c.TieShare >= 0 && c.TieShare < 1) || !(c.GradedShare >= 0 && c.GradedShare <= 1):
		return fmt.Errorf("--tie-share must be in [0, 1) and --graded-share in [0, 1], got %v and %v", c.TieShare, c.GradedShare)
	case !(c.TAImageShare >= 0 && c.TAImageShare <= 1):
		return fmt.Errorf("--ta-image-share must be in [0, 1], got %v", c.TAImageShare)
	case c.ValPercent < 1 || c.ValPercent > MaxValPercent:
		return fmt.Errorf("--val-percent must be in [1, %d], got %d", MaxValPercent, c.ValPercent)
	case c.TAImageNegatives != "" && !slices.Contains(TAImageNegativeKinds, c.TAImageNegatives):
		return fmt.Errorf("--ta-image-negatives %q: want one of %v", c.TAImageNegatives, TAImageNegativeKinds)
	case !(c.TeacherShare >= 0 && c.TeacherShare <= 1) || !(c.TeacherMargin >= 0) || math.IsInf(c.TeacherMargin, 0):
		return fmt.Errorf("--teacher-share must be in [0, 1] and --teacher-margin a finite number >= 0, got %v and %v", c.TeacherShare, c.TeacherMargin)
	case (c.TeacherScored == "") != (c.TeacherShare == 0):
		return errors.New("--teacher-scored and --teacher-share > 0 go together")
	case c.TeacherScored != "" && c.LossType == LossReg:
		return fmt.Errorf("--teacher-scored labels pairs, which loss %s does not read; use %s or %s", LossReg, LossBTT, LossBT)
	case !(c.PairsShare >= 0 && c.PairsShare <= 1):
		return fmt.Errorf("--pairs-share must be in [0, 1], got %v", c.PairsShare)
	case (c.Pairs == "") != (c.PairsShare == 0):
		return errors.New("--pairs and --pairs-share > 0 go together")
	case c.Pairs != "" && c.LossType == LossReg:
		return fmt.Errorf("--pairs gives labels, which loss %s does not read; use %s or %s", LossReg, LossBTT, LossBT)
	case c.ValPairs < 1 || c.EvalPairs < 0:
		return fmt.Errorf("--val-pairs must be >= 1 and --eval-pairs >= 0, got %d and %d", c.ValPairs, c.EvalPairs)
	case c.ConceptParts < 0 || c.ConceptPart < 0 || (c.ConceptParts > 0 && c.ConceptPart >= c.ConceptParts):
		return fmt.Errorf("--concept-part %d/%d: want i/n with 0 <= i < n", c.ConceptPart, c.ConceptParts)
	case c.TimestepSampling != "" && !slices.Contains(TimestepSamplers, c.TimestepSampling):
		return fmt.Errorf("--timestep-sampling %q: want one of %v", c.TimestepSampling, TimestepSamplers)
	}
	if err := c.validateNegatives(); err != nil {
		return err
	}
	return c.Loss().Validate()
}

// share maps the config's 0 ("none") to PairConfig's "none" (negative; 0 is its default).
func share(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

// LogEntry is one line of logs.jsonl.
type LogEntry struct {
	Step        int                `json:"step"`
	Loss        float64            `json:"loss"`
	DimLoss     map[string]float64 `json:"dim_loss"`
	DimAcc      map[string]float64 `json:"dim_acc"` // batch accuracy without ties
	LR          float64            `json:"lr"`
	GradNorm    float64            `json:"grad_norm"`
	PairsPerSec float64            `json:"pairs_per_s"`
	Skipped     bool               `json:"skipped,omitempty"` // non-finite loss or norm: no update (nn.SkipNonFinite)
	ElapsedSecs float64            `json:"elapsed_s"`
}

// logStep and logSkipped read a log entry for nn.ReadLog and nn.CheckSkipped.
func logStep(e *LogEntry) int     { return e.Step }
func logSkipped(e *LogEntry) bool { return e.Skipped }

// Trainer runs reward-model training. Create it with NewTrainer, optionally Resume, then Run.
type Trainer struct {
	Cfg   TrainConfig
	Model *Native // the native model; nil in a latent run
	// Latent is the noise-aware latent model of a latent run (NewLatentTrainer); nil else.
	Latent *LatentReward
	Gen    *PairGen
	Opt    *nn.AdamW
	Step   int // optimizer steps done

	OutputDir string
	Log       []LogEntry
	// Eval is the held-out evaluation written by Finish (nil before, or with EvalPairs 0).
	Eval *EvalReport
	// PreferenceEval is the evaluation of the held-out preference pairs written by Finish
	// (nil before, or without any: Gen.Cfg.Preferences).
	PreferenceEval *EvalReport
	// Progress, when set, is called after every step; Notify receives one-line messages.
	Progress func(e LogEntry)
	Notify   func(msg string)

	dev     kernels.Device
	pixels  *kernels.Tensor // (2*TrainBatchSize, SampleShape...)
	host    []float32
	elapsed float64 // seconds of training before this process (resumed runs)
}

// trainState is the "train_state" metadata of a checkpoint.
type trainState struct {
	Seed     uint64       `json:"seed"`
	Pool     int          `json:"train_pool"` // training images or clips
	Elapsed  float64      `json:"elapsed_s"`
	Config   *TrainConfig `json:"train_config"`
	Finished bool         `json:"finished,omitempty"`
}

const metaTrainState = "train_state"

// NewTrainer builds a fresh model for mcfg (vocabulary and length from tok) with weights
// drawn from the seed, and its optimizer.
func NewTrainer(dev kernels.Device, mcfg NativeConfig, tok *diffusion.Tokenizer, cfg TrainConfig, gen *PairGen, outputDir string) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	mcfg.VocabSize, mcfg.MaxTextLen = tok.VocabSize(), tok.MaxLen
	if !slices.Equal(gen.Cfg.Dims, mcfg.Dims) {
		return nil, fmt.Errorf("reward train: pairs for %v, model dims %v", gen.Cfg.Dims, mcfg.Dims)
	}
	if want := gen.SampleShape(); !slices.Equal(want, mcfg.SampleShape()) {
		return nil, fmt.Errorf("reward train: data samples %v, model expects %v", want, mcfg.SampleShape())
	}
	if err := gen.checkEvalSplits(cfg); err != nil {
		return nil, err
	}
	m, err := NewNative(dev, &kernels.RNG{Seed: cfg.Seed}, mcfg, tok)
	if err != nil {
		return nil, err
	}
	t := &Trainer{Cfg: cfg, Model: m, Gen: gen, OutputDir: outputDir, dev: dev}
	t.Opt = nn.NewAdamW(dev, m.Params(), cfg.AdamW(nn.DefaultAdamBetas()))
	shape := append([]int{2 * cfg.TrainBatchSize}, mcfg.SampleShape()...)
	t.pixels = dev.New(shape...)
	t.host = make([]float32, t.pixels.Len())
	return t, nil
}

// BuildTokenizer makes the caption vocabulary of a reward model from the training split's
// captions (images: item captions; clips: clip captions), so held-out words stay unknown.
func BuildTokenizer(gen *PairGen, maxLen int) (*diffusion.Tokenizer, error) {
	return diffusion.BuildTokenizer(trainCaptions(gen), 1, maxLen)
}

// trainCaptions lists the captions of the training split's samples, then the prompts of the
// training preference pairs.
func trainCaptions(gen *PairGen) []string {
	var caps []string
	for _, i := range gen.pools[SplitTrain] {
		c, _, _, _, _ := gen.describe(i)
		caps = append(caps, c)
	}
	if p := gen.Cfg.Preferences; p != nil {
		caps = append(caps, p.prompts()...)
	}
	return caps
}

// renderPairs writes the A samples then the B samples of pairs into t.pixels.
func renderPairs(gen *PairGen, pairs []Pair, host []float32, pixels *kernels.Tensor) (prompts []string) {
	prompts = renderPairsHost(gen, pairs, host)
	pixels.Dev.CopyFromHost(pixels, host[:2*len(pairs)*gen.SampleLen()])
	return prompts
}

// renderPairsHost writes the A samples then the B samples of pairs into host.
func renderPairsHost(gen *PairGen, pairs []Pair, host []float32) (prompts []string) {
	L := gen.SampleLen()
	N := len(pairs)
	for i, p := range pairs {
		gen.Render(p.A, host[i*L:(i+1)*L])
		gen.Render(p.B, host[(N+i)*L:(N+i+1)*L])
	}
	for _, p := range pairs {
		prompts = append(prompts, p.A.Prompt)
	}
	for _, p := range pairs {
		prompts = append(prompts, p.B.Prompt)
	}
	return prompts
}

func pairLabels(pairs []Pair) (labels [][]Label, ta, tb [][]float32) {
	for _, p := range pairs {
		labels = append(labels, p.Labels)
		ta = append(ta, p.TargetA)
		tb = append(tb, p.TargetB)
	}
	return
}

// TrainOneStep runs one optimizer step and returns its log entry (without the timing).
func (t *Trainer) TrainOneStep() (LogEntry, error) {
	s := t.Step + 1
	N := t.Cfg.TrainBatchSize
	pairs, err := t.Gen.Pairs(SplitTrain, N, t.Cfg.Seed, uint64(s))
	if err != nil {
		return LogEntry{}, err
	}
	prompts, ts := t.renderStep(pairs, s)
	ps := t.Opt.Params
	nn.ZeroGrad(ps)
	net := t.net()
	scores := net.forwardAt(t.pixels, ts, prompts)
	labels, ta, tb := pairLabels(pairs)
	res, err := t.Cfg.Loss().PairLoss(scores[:N], scores[N:], labels, ta, tb)
	if err != nil {
		return LogEntry{}, fmt.Errorf("step %d: %w", s, err)
	}
	net.backward(append(slices.Clone(res.DA), res.DB...))
	norm, clip := nn.ClipScale(ps, t.Cfg.MaxGradNorm)
	lr := t.Cfg.LR(s)
	dims := net.Dims()
	e := LogEntry{Step: s, Loss: res.Loss, LR: lr, GradNorm: norm, DimLoss: map[string]float64{}, DimAcc: map[string]float64{}}
	for d, name := range dims {
		if res.Count[d] > 0 {
			e.DimLoss[name] = res.PerDim[d]
		}
	}
	for _, a := range PairAccuracy(dims, scores[:N], scores[N:], labels, nil) {
		if a.Decisive > 0 {
			e.DimAcc[a.Dim] = a.AccWithoutTies
		}
	}
	e.Skipped = nn.SkipNonFinite(s, res.Loss, norm, t.Notify, func() {
		t.Opt.LR = float32(lr)
		t.Opt.StepScaled(clip)
	})
	t.Step = s
	return e, nil
}

// Errors that end Run early with a checkpoint written.
var (
	ErrInterrupted = errors.New("interrupted; checkpoint written")
	ErrTimeLimit   = errors.New("time limit reached; checkpoint written")
)

// Run trains until MaxTrainSteps, writing a checkpoint every CheckpointingSteps, then
// calibrates on the validation split and writes model.safetensors (and eval.json when
// EvalPairs > 0). A cancelled ctx or an exceeded timeLimit (0: none) writes a checkpoint and
// returns ErrInterrupted or ErrTimeLimit. After nn.MaxSkippedSteps skipped steps in a row it
// writes the log and returns nn.ErrDiverged (wrapped), with no checkpoint for it.
func (t *Trainer) Run(ctx context.Context, timeLimit time.Duration) error {
	start := time.Now()
	for t.Step < t.Cfg.MaxTrainSteps {
		t0 := time.Now()
		e, err := t.TrainOneStep()
		if err != nil {
			return err
		}
		e.PairsPerSec = float64(t.Cfg.TrainBatchSize) / time.Since(t0).Seconds()
		e.ElapsedSecs = t.elapsed + time.Since(start).Seconds()
		nn.ZeroNonFinite(&e)
		t.Log = append(t.Log, e)
		if t.Progress != nil {
			t.Progress(e)
		}
		if err := nn.CheckSkipped(t.Log, logStep, logSkipped); err != nil {
			// The log is written at checkpoints; the steps since the last one go on record too.
			return errors.Join(err, nn.WriteLog(nn.LogPath(t.OutputDir), t.Log))
		}
		stop := ctx.Err() != nil
		over := timeLimit > 0 && time.Since(start) > timeLimit
		if t.Step%t.Cfg.CheckpointingSteps == 0 || stop || over {
			t.elapsed += time.Since(start).Seconds()
			start = time.Now()
			path, err := t.SaveCheckpoint()
			if err != nil {
				return err
			}
			if t.Notify != nil {
				t.Notify("wrote " + path)
			}
		}
		switch {
		case stop:
			return ErrInterrupted
		case over:
			return ErrTimeLimit
		}
	}
	if t.Step%t.Cfg.CheckpointingSteps != 0 {
		if _, err := t.SaveCheckpoint(); err != nil {
			return err
		}
	}
	return t.Finish()
}

// Finish calibrates the model on the validation split, writes model.safetensors and, with
// EvalPairs > 0, evaluates the held-out split into eval.json.
func (t *Trainer) Finish() error {
	if t.Notify != nil {
		t.Notify(fmt.Sprintf("calibrating on %d validation pairs", t.Cfg.ValPairs))
	}
	var cal *Calibration
	var err error
	if t.Latent != nil {
		cal, _, err = CalibrateLatent(t.Latent, t.Gen, t.Cfg.ValPairs, t.Cfg.Seed, t.Cfg.TimestepSampling, 2*t.Cfg.TrainBatchSize)
	} else {
		cal, _, err = Calibrate(t.Model, t.Gen, t.Cfg.ValPairs, t.Cfg.Seed, 2*t.Cfg.TrainBatchSize)
	}
	if err != nil {
		return err
	}
	cal.ValPercent = t.Cfg.valPercent()
	t.net().setCalibration(cal)
	if err := t.net().Save(t.ModelPath()); err != nil {
		return err
	}
	if t.Cfg.EvalPairs > 0 {
		if t.Notify != nil {
			t.Notify(fmt.Sprintf("evaluating %d held-out pairs", t.Cfg.EvalPairs))
		}
		rep, err := t.evaluate(SplitHeldOut, t.Cfg.EvalPairs, EvalSeed(t.Cfg.Seed))
		if err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(t.OutputDir, "eval.json"), rep); err != nil {
			return err
		}
		t.Eval = rep
	}
	if n := t.Gen.HeldOutPreferencePairs(); n > 0 {
		if t.Notify != nil {
			t.Notify(fmt.Sprintf("evaluating %d held-out preference pairs", n))
		}
		rep, err := t.evaluate(SplitPreferences, n, EvalSeed(t.Cfg.Seed))
		if err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(t.OutputDir, "eval-preferences.json"), rep); err != nil {
			return err
		}
		t.PreferenceEval = rep
	}
	return nil
}

// evaluate is Evaluate, or EvaluateLatent in a latent run, of the trained model.
func (t *Trainer) evaluate(split string, n int, seed uint64) (*EvalReport, error) {
	if t.Latent != nil {
		return EvaluateLatent(t.Latent, t.Gen, split, n, seed, 2*t.Cfg.TrainBatchSize)
	}
	return Evaluate(t.Model, t.Gen, split, n, seed, 2*t.Cfg.TrainBatchSize)
}

// ---- calibration and evaluation ----

// EvalSeed is the pair seed of the evaluation sets of a run with seed: apart from every
// training stream.
func EvalSeed(seed uint64) uint64 { return seed ^ 0xe7a1 }

// ScorePairs scores the A and B samples of pairs with m on dev, batch samples at a time.
func ScorePairs(dev kernels.Device, m Model, gen *PairGen, pairs []Pair, batch int) (rA, rB [][]float32, err error) {
	half := max(batch/2, 1)
	L := gen.SampleLen()
	host := make([]float32, 2*half*L)
	// One buffer for the largest chunk, a view of it for each: device memory is not
	// reclaimed by the garbage collector.
	shape := append([]int{2 * min(half, len(pairs))}, gen.SampleShape()...)
	buf := dev.New(shape...)
	defer dev.Free(buf)
	for lo := 0; lo < len(pairs); lo += half {
		chunk := pairs[lo:min(lo+half, len(pairs))]
		n := len(chunk)
		shape[0] = 2 * n
		pix := buf.View(0, shape...)
		prompts := renderPairs(gen, chunk, host, pix)
		s, err := m.Score(Batch{Pixels: pix, Prompts: prompts})
		if err != nil {
			return nil, nil, err
		}
		rA = append(rA, s[:n]...)
		rB = append(rB, s[n:]...)
	}
	return rA, rB, nil
}

// Calibrate scores n validation pairs (seed EvalSeed(seed)) with m and returns the
// calibration: mean and std of each dimension over every scored sample (both sides of every
// pair), and per dimension the tie threshold that maximises the accuracy with ties.
func Calibrate(m *Native, gen *PairGen, n int, seed uint64, batch int) (*Calibration, []DimAccuracy, error) {
	pairs, err := gen.Pairs(SplitVal, n, EvalSeed(seed), 1)
	if err != nil {
		return nil, nil, err
	}
	rA, rB, err := ScorePairs(m.dev, m, gen, pairs, batch)
	if err != nil {
		return nil, nil, err
	}
	return fitCalibration(m.Dims(), pairs, rA, rB)
}

// fitCalibration fits the statistics of the scores of both sides of the pairs and the tie
// thresholds that maximise the accuracy with ties.
func fitCalibration(dims []string, pairs []Pair, rA, rB [][]float32) (*Calibration, []DimAccuracy, error) {
	cal := &Calibration{Dims: dims}
	if err := cal.Fit(append(slices.Clone(rA), rB...)); err != nil {
		return nil, nil, err
	}
	labels, _, _ := pairLabels(pairs)
	acc := PairAccuracy(cal.Dims, rA, rB, labels, nil)
	cal.TieEps = make([]float64, len(acc))
	for d, a := range acc {
		if !math.IsNaN(a.TieEps) {
			cal.TieEps[d] = a.TieEps
		}
	}
	return cal, acc, nil
}

// EvalReport is what `align reward eval` prints and eval.json holds.
type EvalReport struct {
	Split  string         `json:"split"`
	Pairs  int            `json:"pairs"`
	Seed   uint64         `json:"seed"`
	Dims   []DimAccuracy  `json:"dims"`
	ByNote map[string]int `json:"pairs_by_kind"`
	// AccByNote is the accuracy of each kind of pair (PairStats keys): without ties for
	// decisive kinds, and for tie kinds the share predicted a tie at the validation tie
	// threshold (Calibration.TieEps; left out without one).
	AccByNote map[string]float64 `json:"acc_by_kind"`
	Seconds   float64            `json:"seconds"`
	// NoiseAware is set for a latent model, evaluated on noised pairs; TimeBuckets then
	// holds the accuracy per t bucket (EvaluateLatent).
	NoiseAware  bool         `json:"noise_aware,omitempty"`
	TimeBuckets []TimeBucket `json:"t_buckets,omitempty"`
	// LowNoise pools the pairs at t <= LowNoiseT, the half of a trajectory nearer the clean
	// sample (nil for a clean model).
	LowNoise *TimeBucket `json:"t_low_noise,omitempty"`
	// ValPercent is the validation share (PairConfig.ValPercent) that drew the concepts of a
	// val or train split; 0 for the others.
	ValPercent int `json:"val_percent,omitempty"`
}

// LowNoiseT is the upper end of EvalReport.LowNoise.
const LowNoiseT = 0.5

// Evaluate scores n pairs of split (seed) and reports the accuracy per dimension with and
// without ties; the accuracy at the model's validation tie thresholds (Calibration.TieEps)
// is included when the model has them.
func Evaluate(m *Native, gen *PairGen, split string, n int, seed uint64, batch int) (*EvalReport, error) {
	t0 := time.Now()
	pairs, err := gen.Pairs(split, n, seed, 0)
	if err != nil {
		return nil, err
	}
	n = len(pairs) // SplitPreferences gives all of its pairs
	rA, rB, err := ScorePairs(m.dev, m, gen, pairs, batch)
	if err != nil {
		return nil, err
	}
	var eps []float64
	if m.Calib != nil && len(m.Calib.TieEps) == len(m.Config.Dims) {
		eps = m.Calib.TieEps
	}
	rep := pairReport(m.Dims(), pairs, rA, rB, eps)
	rep.Split, rep.Pairs, rep.Seed, rep.Seconds, rep.ValPercent = split, n, seed, time.Since(t0).Seconds(), gen.valPercentOf(split)
	return rep, nil
}

// pairReport is the accuracy part of an EvalReport: per dimension, and per kind of pair.
func pairReport(dims []string, pairs []Pair, rA, rB [][]float32, eps []float64) *EvalReport {
	labels, _, _ := pairLabels(pairs)
	rep := &EvalReport{Dims: PairAccuracy(dims, rA, rB, labels, eps), ByNote: PairStats(pairs), AccByNote: map[string]float64{}}
	right := map[string]int{}
	for i, p := range pairs {
		key := noteKey(p)
		d := DimIndex(dims, p.Kind)
		delta := float64(rA[i][d]) - float64(rB[i][d])
		switch l := p.Labels[d]; {
		case l == LabelTie && eps != nil:
			if math.Abs(delta) < eps[d] {
				right[key]++
			}
		case l != LabelTie && l.Sign()*delta > 0:
			right[key]++
		}
	}
	for key, n := range rep.ByNote {
		if !strings.HasSuffix(key, "/tie") || eps != nil {
			rep.AccByNote[key] = float64(right[key]) / float64(n)
		}
	}
	return rep
}

// ---- checkpoints ----

// CheckpointPath is the file of the checkpoint after step.
func (t *Trainer) CheckpointPath(step int) string {
	return nn.CheckpointPath(t.OutputDir, step)
}

// ModelPath is the calibrated model file written at the end.
func (t *Trainer) ModelPath() string { return filepath.Join(t.OutputDir, "model.safetensors") }

// SaveCheckpoint writes the training state after the current step and the log, and prunes
// old checkpoints beyond the limit.
func (t *Trainer) SaveCheckpoint() (string, error) {
	if err := os.MkdirAll(t.OutputDir, 0o755); err != nil {
		return "", err
	}
	c, err := t.net().Checkpoint()
	if err != nil {
		return "", err
	}
	c.AdamW = nn.HostAdamW(t.Opt.Params, t.Opt.M, t.Opt.V, t.Opt.Steps)
	c.RNG = nn.RNGState{Seed: t.Cfg.Seed, Offset: uint64(t.Step)}
	c.Step = t.Step
	c.Compute = nn.ComputeOf(t.dev)
	cfg := t.Cfg
	st, _ := json.Marshal(trainState{Seed: t.Cfg.Seed, Pool: t.Gen.PoolSize(SplitTrain), Elapsed: t.elapsed, Config: &cfg})
	c.Extra[metaTrainState] = string(st)
	path := t.CheckpointPath(t.Step)
	if err := c.Save(path); err != nil {
		return "", err
	}
	if err := nn.WriteLog(nn.LogPath(t.OutputDir), t.Log); err != nil {
		return "", err
	}
	return path, nn.PruneCheckpoints(t.OutputDir, t.Cfg.CheckpointsTotalLimit)
}

// ReadTrainingCheckpoint reads a training checkpoint and the model config and tokenizer to
// build the trainer of a resumed run.
func ReadTrainingCheckpoint(path string) (*nn.Checkpoint, NativeConfig, *diffusion.Tokenizer, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, NativeConfig{}, nil, err
	}
	if _, ok := c.Extra[metaTrainState]; !ok || c.AdamW == nil {
		return nil, NativeConfig{}, nil, fmt.Errorf("%s: not a training checkpoint (a model file?); resume from checkpoint-<step>.safetensors", path)
	}
	m, err := NativeFromCheckpoint(kernels.NewCPU(1), c)
	if err != nil {
		return nil, NativeConfig{}, nil, err
	}
	return c, m.Config, m.Tokenizer, nil
}

// Resume restores the state of checkpoint c (read by ReadTrainingCheckpoint) into a trainer
// built with the checkpoint's config and tokenizer.
func (t *Trainer) Resume(c *nn.Checkpoint) error {
	src := c.Path
	var st trainState
	if err := json.Unmarshal([]byte(c.Extra[metaTrainState]), &st); err != nil {
		return fmt.Errorf("%s: train_state: %w", src, err)
	}
	if st.Seed != t.Cfg.Seed {
		return fmt.Errorf("%s: run seed %d, --seed is %d; resume with the same seed", src, st.Seed, t.Cfg.Seed)
	}
	if st.Config != nil && (st.Config.ConceptPart != t.Cfg.ConceptPart || max(st.Config.ConceptParts, 1) != max(t.Cfg.ConceptParts, 1)) {
		return fmt.Errorf("%s: trained on concept part %d/%d, --concept-part is %d/%d; resume with the same part", src,
			st.Config.ConceptPart, max(st.Config.ConceptParts, 1), t.Cfg.ConceptPart, max(t.Cfg.ConceptParts, 1))
	}
	if st.Config != nil && st.Config.valPercent() != t.Cfg.valPercent() {
		return fmt.Errorf("%s: validation split of %d%% of the concepts, --val-percent is %d; resume with the same split", src, st.Config.valPercent(), t.Cfg.valPercent())
	}
	if st.Config != nil && st.Config.ImageSet != t.Cfg.ImageSet {
		return fmt.Errorf("%s: trained on image set %q, --image-set is %q; resume with the same set", src, st.Config.ImageSet, t.Cfg.ImageSet)
	}
	if st.Config != nil && st.Config.taImageNegatives() != t.Cfg.taImageNegatives() {
		return fmt.Errorf("%s: trained with --ta-image-negatives %s, now %s; resume with the same kind", src,
			st.Config.taImageNegatives(), t.Cfg.taImageNegatives())
	}
	if st.Config != nil && st.Config.TAImageShare != t.Cfg.TAImageShare {
		return fmt.Errorf("%s: trained with --ta-image-share %v, now %v; resume with the same share", src,
			st.Config.TAImageShare, t.Cfg.TAImageShare)
	}
	if st.Config != nil && (st.Config.TeacherSHA256 != t.Cfg.TeacherSHA256 || st.Config.TeacherShare != t.Cfg.TeacherShare ||
		st.Config.TeacherMargin != t.Cfg.TeacherMargin) {
		return fmt.Errorf("%s: trained with teacher pairs from %q (sha256 %.12s, share %v, margin %v), now %q (sha256 %.12s, share %v, margin %v); "+
			"resume with the same --teacher-scored file, --teacher-share and --teacher-margin", src,
			st.Config.TeacherScored, st.Config.TeacherSHA256, st.Config.TeacherShare, st.Config.TeacherMargin,
			t.Cfg.TeacherScored, t.Cfg.TeacherSHA256, t.Cfg.TeacherShare, t.Cfg.TeacherMargin)
	}
	if st.Config != nil && (st.Config.PairsSHA256 != t.Cfg.PairsSHA256 || st.Config.PairsShare != t.Cfg.PairsShare) {
		return fmt.Errorf("%s: trained with preference pairs from %q (sha256 %.12s, share %v), now %q (sha256 %.12s, share %v); "+
			"resume with the same --pairs file and --pairs-share", src,
			st.Config.Pairs, st.Config.PairsSHA256, st.Config.PairsShare, t.Cfg.Pairs, t.Cfg.PairsSHA256, t.Cfg.PairsShare)
	}
	if err := t.Cfg.sameNegatives(st.Config); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	// After the settings that choose the training split: the same settings on other data.
	if st.Pool != t.Gen.PoolSize(SplitTrain) {
		return fmt.Errorf("%s: trained on %d samples, the data now has %d; resume with the same dataset", src, st.Pool, t.Gen.PoolSize(SplitTrain))
	}
	var was *diffusion.InitSource
	if st.Config != nil {
		was = st.Config.InitFrom
	}
	from, err := diffusion.ResumedInitSource(was, t.Cfg.InitFrom)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	t.Cfg.InitFrom = from
	if err := c.CopyToParams(t.net().Params()); err != nil {
		return err
	}
	steps, err := c.CopyToAdamW(t.Opt.Params, t.Opt.M, t.Opt.V)
	if err != nil {
		return err
	}
	t.Opt.Steps, t.Step, t.elapsed = steps, c.Step, st.Elapsed
	t.Log = nn.ReadLog(nn.LogPath(t.OutputDir), t.Step, logStep)
	return nil
}

// writeJSON writes v as indented JSON to path, atomically: eval.json, negatives.json.
func writeJSON(path string, v any) error {
	return nn.WriteFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}
