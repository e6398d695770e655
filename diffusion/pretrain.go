// Pre-training of a DiT with the flow-matching objective: data order, learning-rate
// schedule, AdamW with gradient clipping, an EMA of the weights, and checkpoints that resume
// exactly (bit-identical losses), with a JSONL log, a loss-curve PNG and sample grids.
//
// One optimizer step s = 1, 2, ...:
//
//	batch  = next TrainBatchSize indices of the data order (epoch e: a permutation of the
//	         samples from the seed's data stream; batches run on across epoch ends), or with
//	         --concept-balance α > 0 TrainBatchSize draws with p_i ∝ n_c(i)^-α keyed by
//	         (seed, s) (concept_balance.go)
//	loss   = TrainStep.ForwardBackward (objective.go), gradients zeroed first
//	norm   = global gradient norm, clipped to max_grad_norm in the AdamW step (nn.ClipScale)
//	lr(s)  = learning_rate * min(1, s/warmup) * decay(s)     constant | linear | cosine decay
//	AdamW step; then EMA: d = min(ema_decay, (1+s)/(10+s)),  ema = d*ema + (1-d)*w
//
// A step whose loss or norm is not finite is skipped (nn.SkipNonFinite): no AdamW step and
// no EMA update, a log line marked "skipped" (its non-finite numbers written as 0, left out
// of loss.png), and the run goes on with step s+1 and its learning rate; nn.MaxSkippedSteps
// skipped steps in a row end it with nn.ErrDiverged.
//
// The EMA weights are the model: model.safetensors holds them (with the config and the
// tokenizer) and the sample grids use them. A checkpoint (checkpoint-<step>.safetensors)
// holds the raw weights, the EMA weights ("ema.<name>"), the AdamW moments and step, the
// RNG state, the step and the data-order position, so a resumed run continues exactly.
//
// Test: go test ./diffusion -run Pretrain

package diffusion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// TrainingData is the sample source of pre-training.
type TrainingData interface {
	// Len is the number of samples.
	Len() int
	// Caption returns sample i's caption.
	Caption(i int) string
	// Sample writes sample i (SampleShape, values in [-1, 1]) into dst.
	Sample(dst []float32, i int)
}

// PretrainConfig holds the hyper-parameters of a pre-training run (diffusers' flag names).
type PretrainConfig struct {
	nn.TrainLoop
	nn.AdamBetas
	EMADecay  float64   `json:"ema_decay"` // 0: the EMA is the raw weights
	Objective Objective `json:"objective"`
	// ConceptBalance is α of the data order (concept_balance.go): 0 visits every sample once
	// per epoch, 1 draws concepts uniformly. A resumed run may change it: the steps after the
	// checkpoint follow the new α.
	ConceptBalance float64 `json:"concept_balance"`
	// Validation sampling at checkpoints.
	ValidationPrompts []string `json:"validation_prompts"`
	ValidationSteps   int      `json:"validation_steps"` // denoising steps
	ValidationScale   float64  `json:"validation_guidance_scale"`
	// InitFrom is the image model a video run was inflated from (Trainer.InflateFrom); nil
	// for a run from seeded weights. Checkpoints carry it, so a resume needs no --init-from.
	InitFrom *InitSource `json:"init_from,omitempty"`
}

// DefaultPretrainConfig returns the defaults of `align pretrain`.
func DefaultPretrainConfig() PretrainConfig {
	return PretrainConfig{
		TrainLoop: nn.TrainLoop{TrainBatchSize: 32, MaxTrainSteps: 20000, LearningRate: 3e-4, LRScheduler: nn.LRConstant,
			LRWarmupSteps: 500, AdamWeightDecay: 0.01, MaxGradNorm: 1, CheckpointingSteps: 500, CheckpointsTotalLimit: 3},
		AdamBetas: nn.DefaultAdamBetas(), EMADecay: 0.999, Objective: DefaultObjective(), ValidationSteps: 28, ValidationScale: 4}
}

// Validate checks the hyper-parameters.
func (c *PretrainConfig) Validate() error {
	if err := c.TrainLoop.Validate(); err != nil {
		return err
	}
	if err := c.AdamBetas.Validate(); err != nil {
		return err
	}
	switch {
	case !(c.EMADecay >= 0 && c.EMADecay < 1):
		return fmt.Errorf("--ema-decay must be in [0, 1), got %v", c.EMADecay)
	case !(c.ConceptBalance >= 0 && c.ConceptBalance <= 1):
		return fmt.Errorf("--concept-balance must be in [0, 1] (1 already draws every concept alike), got %v", c.ConceptBalance)
	case c.ValidationSteps < 1:
		return fmt.Errorf("validation steps must be >= 1, got %d", c.ValidationSteps)
	}
	return c.Objective.Validate()
}

// dataKey keys the data-order stream apart from the main RNG's (same seed).
const dataKey = 0xd1b54a32d192ed03

// EpochOrder returns the sample order of epoch e for seed: a permutation of 0..n-1 from
// Philox(seed ^ dataKey) at counter block e*2^32.
func EpochOrder(seed uint64, e, n int) []int {
	r := &kernels.RNG{Seed: seed ^ dataKey, Offset: uint64(e) << 32}
	return r.Perm(n)
}

// LogEntry is one line of logs.jsonl.
type LogEntry struct {
	Step          int     `json:"step"`
	Epoch         int     `json:"epoch"`
	Loss          float64 `json:"loss"`
	LR            float64 `json:"lr"`
	GradNorm      float64 `json:"grad_norm"`
	SamplesPerSec float64 `json:"samples_per_s"`
	Skipped       bool    `json:"skipped,omitempty"` // non-finite loss or norm: no update (nn.SkipNonFinite)
}

// logStep and logSkipped read a log entry for nn.ReadLog and nn.CheckSkipped.
func logStep(e *LogEntry) int     { return e.Step }
func logSkipped(e *LogEntry) bool { return e.Skipped }

// trainState is the "train_state" metadata of a checkpoint.
type trainState struct {
	Epoch    int             `json:"epoch"`
	Position int             `json:"position"` // next index into the epoch's order
	DataLen  int             `json:"data_len"`
	Seed     uint64          `json:"seed"`
	Config   *PretrainConfig `json:"pretrain_config,omitempty"`
}

const (
	metaTrainState    = "train_state"
	modelTypeTraining = "align.dit.training-state"
	emaPrefix         = "ema."
)

// Trainer runs pre-training. Create it with NewTrainer, optionally Resume, then Run.
type Trainer struct {
	Cfg   PretrainConfig
	Model *DiT // raw weights, trained
	EMA   *DiT // exponential moving average: the model that is saved and sampled
	Opt   *nn.AdamW
	RNG   kernels.RNG
	Step  int // optimizer steps done
	Epoch int // data order: epoch and position of the next sample
	Pos   int

	OutputDir string
	Log       []LogEntry // every logged step so far (kept for the loss curve)
	// Resumed is the hyper-parameters of the run a resumed trainer continues (nil for a
	// fresh run); ConfigChanges lists how the current ones differ.
	Resumed *PretrainConfig
	// Progress, when set, is called after every step.
	Progress func(e LogEntry, elapsed time.Duration)
	// Notify, when set, receives one-line messages (checkpoints written, skipped steps).
	Notify func(msg string)

	dev     kernels.Device
	data    TrainingData
	order   []int
	balance *aliasTable // the draws of --concept-balance > 0; nil: the epoch order
	step    *TrainStep
	x0      *kernels.Tensor
	host    []float32
	caps    []string
}

// NewTrainer builds a fresh model for mcfg (the tokenizer's vocabulary and length are
// written into it) with weights from the seed, its EMA copy and the optimizer.
func NewTrainer(dev kernels.Device, mcfg ModelConfig, tok *Tokenizer, cfg PretrainConfig, data TrainingData, outputDir string) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if data.Len() == 0 {
		return nil, errors.New("pretrain: no training samples")
	}
	mcfg.VocabSize, mcfg.MaxTextLen = tok.VocabSize(), tok.MaxLen
	rng := kernels.RNG{Seed: cfg.Seed}
	m, err := NewDiT(dev, &rng, mcfg)
	if err != nil {
		return nil, err
	}
	m.Tokenizer = tok
	ema, _ := NewDiT(dev, nil, mcfg)
	ema.Tokenizer = tok
	ema.CopyWeightsFrom(m)
	ema.SetTrainable(false)
	t := &Trainer{Cfg: cfg, Model: m, EMA: ema, RNG: rng, OutputDir: outputDir, dev: dev, data: data,
		step: NewTrainStep(dev, cfg.Objective)}
	if cfg.ConceptBalance > 0 {
		if t.balance, err = conceptBalance(data, cfg.ConceptBalance); err != nil {
			return nil, err
		}
	}
	t.Opt = nn.NewAdamW(dev, m.Params(), cfg.AdamW(cfg.AdamBetas))
	t.x0 = dev.New(mcfg.BatchShape(cfg.TrainBatchSize)...)
	t.host = make([]float32, t.x0.Len())
	return t, nil
}

// InflateFrom starts a fresh video run from the image model src instead of the seeded
// weights (InflateImageModel; the trainer's tokenizer must extend src's), with the EMA at
// the inflated weights, and records source as the run's InitFrom. Call it before the
// first step.
func (t *Trainer) InflateFrom(src *DiT, source InitSource) error {
	if t.Step != 0 {
		return fmt.Errorf("pretrain: inflating after step %d; a run is inflated before its first step", t.Step)
	}
	if err := InflateImageModel(t.Model, src); err != nil {
		return fmt.Errorf("%s: %w", source.Path, err)
	}
	t.EMA.CopyWeightsFrom(t.Model)
	t.EMA.RewardConditionMax = slices.Clone(t.Model.RewardConditionMax)
	t.Cfg.InitFrom = &source
	return nil
}

// batchIndices returns the samples of step t.Step+1: the balanced draws of that step, or
// the next TrainBatchSize samples of the epoch order (which only α = 0 advances, so a
// stage with α > 0 leaves Epoch and Pos where the stage before it stopped).
func (t *Trainer) batchIndices() []int {
	if t.balance != nil {
		return t.balance.batch(t.Cfg.Seed, t.Step+1, t.Cfg.TrainBatchSize)
	}
	idx := make([]int, t.Cfg.TrainBatchSize)
	for b := range idx {
		if t.order == nil || t.Pos >= len(t.order) {
			if t.order != nil {
				t.Epoch++
				t.Pos = 0
			}
			t.order = EpochOrder(t.Cfg.Seed, t.Epoch, t.data.Len())
		}
		idx[b] = t.order[t.Pos]
		t.Pos++
	}
	return idx
}

// logEpoch is the epoch of the log entry of step t.Step+1: the epoch order's, or with
// balanced draws the passes over the data that the samples drawn so far amount to,
// floor(t.Step*TrainBatchSize / Len).
func (t *Trainer) logEpoch() int {
	if t.balance != nil {
		return t.Step * t.Cfg.TrainBatchSize / t.data.Len()
	}
	return t.Epoch
}

// nextBatch fills x0 and the captions with the samples of the next step.
func (t *Trainer) nextBatch() *Batch {
	D := t.Model.Config.SampleSize()
	t.caps = t.caps[:0]
	for b, i := range t.batchIndices() {
		t.data.Sample(t.host[b*D:(b+1)*D], i)
		t.caps = append(t.caps, t.data.Caption(i))
	}
	t.dev.CopyFromHost(t.x0, t.host)
	return &Batch{X0: t.x0, Prompts: EncodePrompts(t.Model.Tokenizer, t.caps)}
}

// TrainOneStep runs one optimizer step and returns its log entry (without the timing).
func (t *Trainer) TrainOneStep() LogEntry {
	ps := t.Opt.Params
	nn.ZeroGrad(ps)
	epoch := t.logEpoch()
	res := t.step.ForwardBackward(t.Model, &t.RNG, t.nextBatch())
	norm, clip := nn.ClipScale(ps, t.Cfg.MaxGradNorm)
	s := t.Step + 1
	lr := t.Cfg.LR(s)
	e := LogEntry{Step: s, Epoch: epoch, Loss: res.Loss, LR: lr, GradNorm: norm}
	e.Skipped = nn.SkipNonFinite(s, res.Loss, norm, t.Notify, func() {
		t.Opt.LR = float32(lr)
		t.Opt.StepScaled(clip)
		t.updateEMA(s)
	})
	t.Step = s
	return e
}

// updateEMA moves the EMA weights towards the raw weights after step s.
func (t *Trainer) updateEMA(s int) { UpdateEMA(t.EMA.Params(), t.Model.Params(), t.Cfg.EMADecay, s) }

// UpdateEMA moves the values of ema towards those of w (the same shapes, in the same order)
// after optimizer step s (1-based), with the warmed-up decay of the pre-training loop:
//
//	d = min(decay, (1+s)/(10+s)),   ema = d*ema + (1-d)*w
//
// Pre-training and fine-tuning (package dpo) share it.
func UpdateEMA(ema, w []nn.Param, decay float64, s int) {
	if len(ema) != len(w) {
		panic(fmt.Sprintf("diffusion: UpdateEMA: %d averages for %d parameters", len(ema), len(w)))
	}
	d := math.Min(decay, float64(1+s)/float64(10+s))
	for i := range w {
		w[i].W.Dev.Axpby(ema[i].W, float32(d), ema[i].W, float32(1-d), w[i].W)
	}
}

// ---- checkpoints ----

// CheckpointPath is the file of the checkpoint after step.
func (t *Trainer) CheckpointPath(step int) string {
	return nn.CheckpointPath(t.OutputDir, step)
}

// ModelPath is the EMA model file.
func (t *Trainer) ModelPath() string { return filepath.Join(t.OutputDir, "model.safetensors") }

// SaveCheckpoint writes the training state after the current step, the EMA model, the log
// and the loss curve, and prunes old checkpoints beyond the limit.
func (t *Trainer) SaveCheckpoint() (string, error) {
	if err := os.MkdirAll(t.OutputDir, 0o755); err != nil {
		return "", err
	}
	c, err := t.Model.Checkpoint()
	if err != nil {
		return "", err
	}
	for _, p := range t.EMA.Params() {
		ht := nn.HostParams([]nn.Param{p}, nn.F32)[0]
		ht.Name = emaPrefix + ht.Name
		c.Tensors = append(c.Tensors, ht)
	}
	c.AdamW = nn.HostAdamW(t.Opt.Params, t.Opt.M, t.Opt.V, t.Opt.Steps)
	c.RNG = nn.RNGState{Seed: t.RNG.Seed, Offset: t.RNG.Offset}
	c.Step = t.Step
	c.Compute = nn.ComputeOf(t.dev)
	cfg := t.Cfg
	st, _ := json.Marshal(trainState{Epoch: t.Epoch, Position: t.Pos, DataLen: t.data.Len(), Seed: t.Cfg.Seed, Config: &cfg})
	c.Extra[metaTrainState] = string(st)
	c.Extra[metaModelType] = modelTypeTraining
	path := t.CheckpointPath(t.Step)
	if err := c.Save(path); err != nil {
		return "", err
	}
	if err := t.EMA.Save(t.ModelPath()); err != nil {
		return "", err
	}
	if err := nn.WriteLog(nn.LogPath(t.OutputDir), t.Log); err != nil {
		return "", err
	}
	if err := WritePNG(filepath.Join(t.OutputDir, "loss.png"), LossCurve(t.Log, 640, 360)); err != nil {
		return "", err
	}
	return path, nn.PruneCheckpoints(t.OutputDir, t.Cfg.CheckpointsTotalLimit)
}

// ReadTrainingCheckpoint reads a checkpoint's model config and tokenizer (to build the
// trainer for a resumed run) and returns the checkpoint.
func ReadTrainingCheckpoint(path string) (*nn.Checkpoint, ModelConfig, *Tokenizer, error) {
	c, err := nn.LoadCheckpoint(path)
	if err != nil {
		return nil, ModelConfig{}, nil, err
	}
	if c.Extra[metaModelType] != modelTypeTraining {
		return nil, ModelConfig{}, nil, fmt.Errorf("%s: not a training checkpoint (a model file?); resume from checkpoint-<step>.safetensors", path)
	}
	c.Extra[metaModelType] = modelTypeDiT // for ModelMeta
	cfg, tok, err := ModelMeta(c)
	c.Extra[metaModelType] = modelTypeTraining
	if err != nil {
		return nil, ModelConfig{}, nil, err
	}
	return c, cfg, tok, nil
}

// Resume restores the training state of checkpoint c (read by ReadTrainingCheckpoint) into
// a trainer built with the checkpoint's config and tokenizer.
func (t *Trainer) Resume(c *nn.Checkpoint) error {
	src := c.Path
	var st trainState
	if err := json.Unmarshal([]byte(c.Extra[metaTrainState]), &st); err != nil {
		return fmt.Errorf("%s: train_state: %w", src, err)
	}
	if st.DataLen != t.data.Len() {
		return fmt.Errorf("%s: trained on %d samples, the data now has %d; resume with the same dataset", src, st.DataLen, t.data.Len())
	}
	if st.Seed != t.Cfg.Seed {
		return fmt.Errorf("%s: run seed %d, --seed is %d; resume with the same seed", src, st.Seed, t.Cfg.Seed)
	}
	var was *InitSource
	if st.Config != nil {
		was = st.Config.InitFrom
	}
	from, err := ResumedInitSource(was, t.Cfg.InitFrom)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	t.Cfg.InitFrom = from
	ps := append(t.Model.Params(), prefix("ema", t.EMA.Params())...)
	if err := c.CopyToParams(ps); err != nil {
		return err
	}
	maxes, err := modelMax(c, &t.Model.Config) // an inflated run's slot keeps its source's maxima
	if err != nil {
		return err
	}
	t.Model.RewardConditionMax, t.EMA.RewardConditionMax = maxes, slices.Clone(maxes)
	steps, err := c.CopyToAdamW(t.Opt.Params, t.Opt.M, t.Opt.V)
	if err != nil {
		return err
	}
	t.Opt.Steps = steps
	t.RNG = kernels.RNG{Seed: c.RNG.Seed, Offset: c.RNG.Offset}
	t.Step, t.Epoch, t.Pos = c.Step, st.Epoch, st.Position
	t.Resumed = st.Config
	t.order = EpochOrder(t.Cfg.Seed, t.Epoch, t.data.Len())
	t.Log = nn.ReadLog(nn.LogPath(t.OutputDir), t.Step, logStep)
	return nil
}

// ConfigChanges lists the hyper-parameters in which b differs from a, as
// "name: a -> b" (JSON names, sorted). a and b are configs of one type (a *PretrainConfig,
// or the fine-tuning config of package dpo) whose JSON form is an object; fields of nested
// objects are named "outer.inner".
func ConfigChanges(a, b any) []string {
	flat := func(c any) map[string]string {
		js, _ := json.Marshal(c)
		var m map[string]any
		json.Unmarshal(js, &m)
		out := map[string]string{}
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				for k2, v2 := range sub {
					out[k+"."+k2] = fmt.Sprint(v2)
				}
				continue
			}
			out[k] = fmt.Sprint(v)
		}
		return out
	}
	fa, fb := flat(a), flat(b)
	var diffs []string
	for k, va := range fa {
		if vb := fb[k]; va != vb {
			diffs = append(diffs, fmt.Sprintf("%s: %s -> %s", k, va, vb))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// ---- the loop ----

// Run trains until MaxTrainSteps (RunTrainLoop), writing a checkpoint and a sample grid
// every CheckpointingSteps steps and at the end. On ctx cancellation or after timeLimit (0:
// none) it finishes the current step, writes a checkpoint and returns ErrInterrupted or
// ErrTimeLimit. After nn.MaxSkippedSteps skipped steps in a row it returns nn.ErrDiverged
// (wrapped) and writes no checkpoint for it.
func (t *Trainer) Run(ctx context.Context, timeLimit time.Duration) error {
	if err := os.MkdirAll(t.OutputDir, 0o755); err != nil {
		return err
	}
	if err := nn.WriteLog(nn.LogPath(t.OutputDir), t.Log); err != nil { // drops entries past a resumed checkpoint
		return err
	}
	return RunTrainLoop(ctx, timeLimit, TrainLoop[LogEntry]{
		LogPath: nn.LogPath(t.OutputDir), MaxSteps: t.Cfg.MaxTrainSteps, Every: t.Cfg.CheckpointingSteps,
		Step: &t.Step, Log: &t.Log, Checkpoint: t.checkpointAndSample, Progress: t.Progress,
		StepOf: logStep, Skipped: logSkipped,
		TrainOneStep: func() LogEntry {
			stepStart := time.Now()
			e := t.TrainOneStep()
			e.SamplesPerSec = float64(t.Cfg.TrainBatchSize) / time.Since(stepStart).Seconds()
			return e
		}})
}

// checkpointAndSample saves a checkpoint and writes a sample grid of the validation prompts.
func (t *Trainer) checkpointAndSample() error {
	path, err := t.SaveCheckpoint()
	if err != nil {
		return err
	}
	grid := ""
	if len(t.Cfg.ValidationPrompts) > 0 {
		if grid, err = t.SampleGrid(); err != nil {
			return err
		}
	}
	if t.Notify != nil {
		msg := fmt.Sprintf("step %d: wrote %s and %s", t.Step, path, t.ModelPath())
		if grid != "" {
			msg += ", " + grid
		}
		t.Notify(msg)
	}
	return nil
}

// SampleGrid samples the validation prompts with the EMA model (seed 0, Euler) and writes
// samples/step-<step>.png (.gif for video). It does not touch the training RNG.
func (t *Trainer) SampleGrid() (string, error) {
	o := DefaultSampleOptions()
	o.NumInferenceSteps, o.GuidanceScale = t.Cfg.ValidationSteps, t.Cfg.ValidationScale
	x, _, err := Sample(t.EMA, t.Cfg.ValidationPrompts, o)
	if err != nil {
		return "", err
	}
	defer t.dev.Free(x)
	dir := filepath.Join(t.OutputDir, "samples")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return WriteSampleGrid(filepath.Join(dir, fmt.Sprintf("step-%06d", t.Step)), x, &t.EMA.Config, 0)
}
