// Validation during fine-tuning. Before the first step and at every checkpoint the policy as
// it would be written (the EMA values when averaging) samples fixed prompts with fixed seeds
// (image i of every validation starts from the same noise), writes them as one grid, and a
// reward model scores them per dimension. A run then shows each dimension's course while it
// trains, and a dimension falling while another rises, which a combined total would hide.
//
//	validation/step-<step>.png (.gif)   the prompts in rows, NumImages seeds in columns
//	validation.jsonl                    one ValidationEntry per validation
//	validation.png                      the mean z-scores and win rates by step (validation_plot.go)
//
// Per dimension: the mean raw score and z-score over the images and, against the run's
// first validation (the starting model on a fresh run), the win rate: the share of images
// whose z-score beats the same prompt and seed's there, a tie counting half. Pairing by seed
// takes the seeds' own spread out of the comparison.
//
// Validation draws nothing from the run's random stream and leaves the weights as they were,
// so a run's losses are the same with and without it, and a resumed run's are those of the
// uninterrupted one.
//
// Test: go test ./dpo -run Validation
package dpo

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Validation says what a fine-tuning run validates with.
type Validation struct {
	Prompts   []string
	NumImages int                     // seeds per prompt
	Options   diffusion.SampleOptions // steps, guidance scale, sampler; Seed: image i's noise
	Scorer    *guidance.Scorer        // nil: grids only
	Reward    string                  // the reward model, for messages
}

// ValidationDir is the folder of the validation grids in the output directory.
const ValidationDir = "validation"

// ValidationFile is the validation log in the output directory.
const ValidationFile = "validation.jsonl"

// ValidationEntry is one validation: a line of validation.jsonl.
type ValidationEntry struct {
	Step    int      `json:"step"`
	Grid    string   `json:"grid"` // relative to the output directory
	Prompts []string `json:"prompts"`
	Images  int      `json:"images"`
	Reward  string   `json:"reward,omitempty"` // the reward model ("": grids only)
	// Per dimension (Dims), over the images; absent without a reward model.
	Dims    []string  `json:"dims,omitempty"`
	RawMean []float64 `json:"raw_mean,omitempty"`
	ZMean   []float64 `json:"z_mean,omitempty"`
	// WinRate against the validation at step Against (the first of the run), and Z, every
	// image's z-scores (images, dims) in the grid's order, which the win rates pair.
	Against int         `json:"against"`
	WinRate []float64   `json:"win_rate,omitempty"`
	Z       [][]float64 `json:"z,omitempty"`
}

func validationStep(e *ValidationEntry) int { return e.Step }

// captions lists each prompt NumImages times, prompt by prompt: the grid's rows.
func (v *Validation) captions() []string {
	out := make([]string, 0, len(v.Prompts)*v.NumImages)
	for _, p := range v.Prompts {
		for range v.NumImages {
			out = append(out, p)
		}
	}
	return out
}

// validationDue reports whether the trainer's step gets a validation: the checkpoint steps
// and the last, once.
func (t *Trainer) validationDue() bool {
	if t.Validation == nil || t.Step%t.Cfg.CheckpointingSteps != 0 && t.Step != t.Cfg.MaxTrainSteps {
		return false
	}
	return len(t.ValLog) == 0 || t.ValLog[len(t.ValLog)-1].Step != t.Step
}

// validate samples and scores the validation set with the current (EMA) weights and appends
// the entry to ValLog and validation.jsonl.
func (t *Trainer) validate() error {
	v := t.Validation
	restore := t.swapInEMA()
	caps := v.captions()
	x, _, err := diffusion.Sample(t.Model, caps, v.Options)
	restore()
	if err != nil {
		return fmt.Errorf("validation at step %d: %w", t.Step, err)
	}
	defer t.dev.Free(x)
	if err := os.MkdirAll(filepath.Join(t.OutputDir, ValidationDir), 0o755); err != nil {
		return err
	}
	base := filepath.Join(ValidationDir, fmt.Sprintf("step-%06d", t.Step))
	grid, err := diffusion.WriteSampleGrid(filepath.Join(t.OutputDir, base), x, &t.Model.Config, v.NumImages)
	if err != nil {
		return err
	}
	e := ValidationEntry{Step: t.Step, Grid: filepath.ToSlash(base + filepath.Ext(grid)), Prompts: v.Prompts, Images: len(caps)}
	if v.Scorer != nil {
		_, sc, err := v.Scorer.Utility(x, caps, 1)
		if err != nil {
			return fmt.Errorf("validation at step %d: %s: %w", t.Step, v.Reward, err)
		}
		e.Reward, e.Dims, e.Z = v.Reward, sc.Dims, sc.Z
		D := len(sc.Dims)
		e.RawMean, e.ZMean = make([]float64, D), make([]float64, D)
		for b := range sc.Z {
			for d := range D {
				e.RawMean[d] += float64(sc.Raw[b][d]) / float64(len(caps))
				e.ZMean[d] += sc.Z[b][d] / float64(len(caps))
			}
		}
		e.Against = t.Step
		if i := slices.IndexFunc(t.ValLog, func(e ValidationEntry) bool { return e.Z != nil }); i >= 0 {
			first := &t.ValLog[i]
			e.Against = first.Step
			if e.WinRate, err = winRates(e.Z, first.Z); err != nil {
				return fmt.Errorf("validation at step %d against step %d: %w", t.Step, first.Step, err)
			}
		}
	}
	t.ValLog = append(t.ValLog, e)
	if err := nn.WriteLog(filepath.Join(t.OutputDir, ValidationFile), t.ValLog); err != nil {
		return err
	}
	if v.Scorer != nil {
		if err := diffusion.WritePNG(filepath.Join(t.OutputDir, ValidationPlotFile), ValidationPlot(t.ValLog, 720, 260)); err != nil {
			return err
		}
	}
	if t.Notify != nil {
		t.Notify(e.summary())
	}
	return nil
}

// winRates is, per dimension, the share of rows of z that beat the same row of base (ties
// half).
func winRates(z, base [][]float64) ([]float64, error) {
	dims := func(z [][]float64) int {
		if len(z) == 0 {
			return 0
		}
		return len(z[0])
	}
	if len(z) != len(base) || len(z) == 0 || dims(z) != dims(base) {
		return nil, fmt.Errorf("%d images of %d dimensions, the first validation %d of %d", len(z), dims(z), len(base), dims(base))
	}
	w := make([]float64, len(z[0]))
	for b := range z {
		for d := range w {
			switch {
			case z[b][d] > base[b][d]:
				w[d]++
			case z[b][d] == base[b][d]:
				w[d] += 0.5
			}
		}
	}
	for d := range w {
		w[d] /= float64(len(z))
	}
	return w, nil
}

// summary is the validation's line on stderr: "validation at step 250 (16 images): vq z
// +0.31 (wins 62% against step 0), ta z -0.40 (44%); validation/step-000250.png".
func (e *ValidationEntry) summary() string {
	var parts []string
	for d, dim := range e.Dims {
		s := fmt.Sprintf("%s z %+.2f", dim, e.ZMean[d])
		if e.WinRate != nil {
			if d == 0 {
				s += fmt.Sprintf(" (wins %.0f%% against step %d)", 100*e.WinRate[d], e.Against)
			} else {
				s += fmt.Sprintf(" (%.0f%%)", 100*e.WinRate[d])
			}
		}
		parts = append(parts, s)
	}
	msg := fmt.Sprintf("validation at step %d (%d images)", e.Step, e.Images)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	return msg + "; " + e.Grid
}

// swapInEMA puts the EMA values into the trained parameters (nothing without EMA) and
// returns the function that puts the trained values back.
func (t *Trainer) swapInEMA() (restore func()) {
	if t.EMA == nil {
		return func() {}
	}
	saved := make([]*kernels.Tensor, len(t.EMA))
	for i, p := range t.Opt.Params {
		saved[i] = t.dev.New(p.W.Shape...)
		t.dev.Copy(saved[i], p.W)
		t.dev.Copy(p.W, t.EMA[i].W)
	}
	return func() {
		for i, p := range t.Opt.Params {
			t.dev.Copy(p.W, saved[i])
			t.dev.Free(saved[i])
		}
	}
}

// LoadValidationLog reads the run's validation log up to the trainer's step into ValLog (a
// fresh run: none), refusing a log of other prompts, images or reward model. Run calls it
// unless the caller did, before it rewrites any file.
func (t *Trainer) LoadValidationLog() error {
	log, err := readValidationLog(t.OutputDir, t.Step, t.Validation)
	if err != nil {
		return err
	}
	t.ValLog, t.valLoaded = log, true
	return nil
}

// readValidationLog returns the entries of the run's validation log up to step (those a
// resumed run keeps). Their prompts, images and reward model must be v's, or the win rates
// would pair other images or other scores.
func readValidationLog(dir string, step int, v *Validation) ([]ValidationEntry, error) {
	path := filepath.Join(dir, ValidationFile)
	log := nn.ReadLog(path, step, validationStep)
	if len(log) == 0 {
		return log, nil
	}
	if e := log[0]; !slices.Equal(e.Prompts, v.Prompts) || e.Images != len(v.Prompts)*v.NumImages {
		return nil, fmt.Errorf("%s: the run validated %d images of the prompts %q; this one would validate %d of %q: "+
			"resume with the same --validation-prompt flags and --num-validation-images, or validate in another --output-dir",
			path, e.Images, e.Prompts, len(v.Prompts)*v.NumImages, v.Prompts)
	}
	if i := slices.IndexFunc(log, func(e ValidationEntry) bool { return e.Z != nil }); i >= 0 && v.Scorer != nil && log[i].Reward != v.Reward {
		return nil, fmt.Errorf("%s: the run validated with %s, this one would with %s: resume with the same --validation-reward, or validate in another --output-dir",
			path, log[i].Reward, v.Reward)
	}
	return log, nil
}
