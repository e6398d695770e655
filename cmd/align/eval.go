// align eval: compare a candidate set of samples with a baseline set of the same prompts and
// seeds (a Flow-DPO fine-tuned model against its base, reward-guided sampling against
// unguided) with reward models: per model and dimension, the candidate's win rate over the
// baseline (ties counted half) and the mean change of the z-scores, with 95% intervals
// (scoring.ComparePaired), under the reward model used for alignment and optionally a
// held-out judge. The sets are align sample output directories, or eval samples them first
// through align sample's own run function.
//
// Test: go test ./cmd/align -run Eval
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/alignkit/align/rewards/scoring"
)

// EvalOptions are the flags of `align eval`.
type EvalOptions struct {
	Baseline  string // --baseline: an align sample output directory
	Candidate string // --candidate: one of the same prompts and seed

	// Sampling first, instead of --baseline and --candidate: both models on the same prompts
	// and seed, into OutputDir/baseline and OutputDir/candidate.
	BaselineModel      string // --baseline-model: FILE.safetensors or default (the embedded model)
	CandidateModel     string // --candidate-model
	PromptsFile        string // --prompts
	Video              bool
	Seed               uint64
	NumImagesPerPrompt int
	NumInferenceSteps  int
	GuidanceScale      float64
	OutputDir          string

	Reward     string // --reward: the model used for alignment
	Judge      string // --judge: a held-out judge ("": none)
	BatchSize  int
	ORTLibrary string
	JSON       bool
	Output     string // --output: the JSON report, written atomically

	samplingFlags []string          // sampling flags given on the command line
	sample        [2]*SampleOptions // baseline, candidate; nil unless eval samples
}

// evalSamplingFlags only apply when eval samples.
var evalSamplingFlags = []string{"video", "seed", "num-images-per-prompt", "num-inference-steps", "guidance-scale", "output-dir"}

// Tie rules of a dimension in the report.
const (
	tieCalibrated = "calibrated" // |Δz| <= tie_eps, the model's validation threshold in z units
	tieExact      = "exact"      // Δz = 0: the model has no tie threshold
)

// evalSide describes one compared set of samples and what sampling it cost (from its
// samples.json).
type evalSide struct {
	Dir               string   `json:"dir"`
	Model             string   `json:"model"`
	Sampler           string   `json:"sampler"`
	NumInferenceSteps int      `json:"num_inference_steps"`
	GuidanceScale     float64  `json:"guidance_scale"`
	Steering          []string `json:"steering,omitempty"` // align sample's steering methods
	Images            int      `json:"images"`             // samples in the set
	Seconds           float64  `json:"seconds"`            // align sample's wall time for the whole set
	// Clean-sample reward scorings per image (FK, best-of-N: k particles or N candidates
	// scored at each scoring), and Flow-NRG reward forward+backward evaluations per image:
	// each batched gradient call evaluates every one of the k samples behind an image, so
	// per image it is gradient_calls * k (k = 1 without particles or candidates).
	RewardCallsPerImage     float64 `json:"reward_calls_per_image,omitempty"`
	RewardGradientsPerImage float64 `json:"reward_gradients_per_image,omitempty"`
}

// evalSideOf describes the set of samples in dir from its samples.json.
func evalSideOf(dir string, r *sampleReport) evalSide {
	s := evalSide{Dir: dir, Model: r.Model, Sampler: r.Sampler, NumInferenceSteps: r.NumInferenceSteps, GuidanceScale: r.GuidanceScale,
		Images: len(r.Files), Seconds: r.Seconds}
	if st := r.Steering; st != nil {
		s.Steering = st.Methods
		s.RewardCallsPerImage = st.CallsPerImage
		s.RewardGradientsPerImage = float64(st.GradientCalls * max(st.Particles, st.BestOfN, 1))
	}
	return s
}

// rewardCost says the reward evaluations per image of the set: "8 calls", "27 gradients",
// "8 calls + 27 gradients", "none" for sampling without a reward model, or "?" in a report
// written before eval recorded them (no images counted).
func (s *evalSide) rewardCost() string {
	if s.Images == 0 {
		return "?"
	}
	var parts []string
	if s.RewardCallsPerImage > 0 {
		parts = append(parts, fmt.Sprintf("%.4g calls", s.RewardCallsPerImage))
	}
	if s.RewardGradientsPerImage > 0 {
		parts = append(parts, fmt.Sprintf("%.4g gradients", s.RewardGradientsPerImage))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " + ")
}

// secondsPerImage says the set's sampling wall time over its images, or "?" in a report
// written before eval recorded them.
func (s *evalSide) secondsPerImage() string {
	if s.Images == 0 {
		return "?"
	}
	return fmt.Sprintf("%.3g", s.Seconds/float64(s.Images))
}

// evalDim is the comparison on one dimension of one model.
type evalDim struct {
	Dim     string `json:"dim"`
	TieRule string `json:"tie_rule"` // tieCalibrated or tieExact
	scoring.Paired
}

// evalModel is the comparison under one reward model.
type evalModel struct {
	Role   string    `json:"role"`   // reward (used for alignment) or judge (held out)
	Reward string    `json:"reward"` // the model, as loaded
	Dims   []evalDim `json:"dims"`
}

// evalReport is what `align eval --json` prints and --output holds.
type evalReport struct {
	Baseline  evalSide    `json:"baseline"`
	Candidate evalSide    `json:"candidate"`
	Kind      string      `json:"kind"` // image or video
	Seed      uint64      `json:"seed"`
	Pairs     int         `json:"pairs"`
	Prompts   int         `json:"prompts"` // distinct prompts among the pairs
	Models    []evalModel `json:"models"`
	Seconds   float64     `json:"seconds"`
}

func newCmdEval(runF func(*EvalOptions) error) *cobra.Command {
	opts := &EvalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Compare two sets of samples of the same prompts and seeds with reward models",
		Long: `Compare a candidate set of samples with a baseline set of the same prompts and seeds, for
example a Flow-DPO fine-tuned model against its base, or reward-guided sampling against
unguided sampling, with reward models.

The sets are align sample output directories (--baseline, --candidate), whose samples.json
lists the samples. Each baseline sample is paired with the candidate sample of the same prompt
and image index, which the same --seed drew from the same noise; different prompts (or prompts
in another order), seeds, counts, or images against videos are an error. Or eval samples
first: --baseline-model and --candidate-model (a .safetensors file, or default for the
embedded model) on the --prompts file with the same --seed, --num-images-per-prompt,
--num-inference-steps and --guidance-scale, into OUTPUT/baseline and OUTPUT/candidate
(--output-dir), exactly as align sample would.

Every dimension of --reward (the model used for alignment) and of --judge (a held-out judge,
optional) is compared on z-scores (each model's calibration), over n pairs:

  win rate   (wins + ties/2)/n: how often the candidate's sample scores higher than its pair;
             0.5 is no change
  Δz         mean of z_candidate - z_baseline over the pairs (the columns z baseline and
             z candidate are the mean z-scores of each set)
  ties       |Δz| <= eps, eps the model's tie threshold from its validation pairs in z units
             (calibrated), or Δz = 0 when the model has none (exact); the table says which

with 95% normal-approximation intervals over the pairs (mean ± 1.96 s/√n, s the standard
deviation of the per-pair outcomes 0, 1/2, 1 or of the changes). The table goes to stdout,
--json prints the report as JSON and --output writes it to a file. Both also give what each
set cost to sample, from its samples.json: reward calls (clean-sample scorings of FK and
best-of-N) and reward gradients (Flow-NRG) per image, and seconds per image.`,
		Example: `  $ align data prompts data/emoji --part 1/2 --limit 200 -o eval.txt
  $ align sample --prompts eval.txt --seed 0 -o out/base
  $ align sample --model dpo/model.safetensors --prompts eval.txt --seed 0 -o out/dpo
  $ align eval --baseline out/base --candidate out/dpo --judge judge.safetensors
  $ align sample --prompts eval.txt --seed 0 --best-of-n 8 -o out/bon
  $ align eval --baseline out/base --candidate out/bon --reward default --judge judge.safetensors --json
  $ align eval --baseline-model default --candidate-model dpo/model.safetensors --prompts eval.txt \
      --output-dir out/eval --judge judge.safetensors --output out/eval/report.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, name := range evalSamplingFlags {
				if cmd.Flags().Changed(name) {
					opts.samplingFlags = append(opts.samplingFlags, "--"+name)
				}
			}
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return evalRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Baseline, "baseline", "", "baseline samples: an align sample output directory")
	f.StringVar(&opts.Candidate, "candidate", "", "candidate samples: an align sample output directory of the same prompts and seed")
	f.StringVar(&opts.BaselineModel, "baseline-model", "", "sample the baseline first with this model: FILE.safetensors, or default for the embedded model")
	f.StringVar(&opts.CandidateModel, "candidate-model", "", "sample the candidate first with this model: FILE.safetensors, or default for the embedded model")
	f.StringVar(&opts.PromptsFile, "prompts", "", "prompts to sample both models on: one per line, or JSONL with a \"prompt\" field")
	f.BoolVar(&opts.Video, "video", false, "sampling: the models are video models")
	f.Uint64Var(&opts.Seed, "seed", 0, "sampling: random seed of the initial noise, the same for both models")
	f.IntVar(&opts.NumImagesPerPrompt, "num-images-per-prompt", 1, "sampling: samples per prompt")
	f.IntVar(&opts.NumInferenceSteps, "num-inference-steps", 28, "sampling: denoising steps")
	f.Float64Var(&opts.GuidanceScale, "guidance-scale", 4.0, "sampling: classifier-free guidance scale")
	f.StringVar(&opts.OutputDir, "output-dir", "eval", "sampling: write the samples to DIR/baseline and DIR/candidate")
	f.StringVar(&opts.Reward, "reward", "default", "reward model used for alignment: default, FILE.safetensors, FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json")
	f.StringVar(&opts.Judge, "judge", "", "held-out judge reward model (same formats; default: none)")
	f.IntVar(&opts.BatchSize, "batch-size", 16, "samples per reward-model call")
	f.StringVar(&opts.ORTLibrary, "onnxruntime", "", "ONNX Runtime library (default: $"+onnx.EnvLibrary+", third_party/onnxruntime from make ort, the system's)")
	f.BoolVar(&opts.JSON, "json", false, "print the report as JSON")
	f.StringVarP(&opts.Output, "output", "o", "", "also write the JSON report to this file, atomically")
	cmd.AddCommand(newCmdEvalTable(nil))
	cmd.AddCommand(newCmdEvalPlot(nil))
	cmd.AddCommand(newCmdEvalAgreement(nil))
	return cmd
}

func (o *EvalOptions) validate() error {
	sampling := o.BaselineModel != "" || o.CandidateModel != "" || o.PromptsFile != ""
	dirs := o.Baseline != "" || o.Candidate != ""
	switch {
	case sampling && dirs:
		return flagErrorf("give either --baseline and --candidate (sample directories) or --baseline-model, --candidate-model and --prompts (eval samples them), not both")
	case !sampling && !dirs:
		return flagErrorf("nothing to compare: give --baseline DIR --candidate DIR (align sample output directories), or --baseline-model, --candidate-model and --prompts")
	case dirs && (o.Baseline == "" || o.Candidate == ""):
		return flagErrorf("--baseline and --candidate go together; both are align sample output directories")
	case sampling && (o.BaselineModel == "" || o.CandidateModel == "" || o.PromptsFile == ""):
		return flagErrorf("--baseline-model, --candidate-model and --prompts go together (a model may be default, the embedded one)")
	case dirs && len(o.samplingFlags) > 0:
		return flagErrorf("%s only apply when eval samples (--baseline-model, --candidate-model, --prompts); the directories were sampled already",
			strings.Join(o.samplingFlags, ", "))
	case o.Reward == "":
		return flagErrorf("--reward is empty: give default, FILE.safetensors, FILE.onnx or FILE.json")
	case o.BatchSize < 1:
		return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
	}
	if !sampling {
		return nil
	}
	if o.OutputDir == "" {
		return flagErrorf("--output-dir must not be empty")
	}
	o.Baseline, o.Candidate = filepath.Join(o.OutputDir, "baseline"), filepath.Join(o.OutputDir, "candidate")
	for k, model := range []string{o.BaselineModel, o.CandidateModel} {
		so, err := o.sampleOptions(model, []string{o.Baseline, o.Candidate}[k])
		if err != nil {
			return err
		}
		o.sample[k] = so
	}
	return nil
}

// sampleOptions builds the options of align sample for one side by parsing its own flags, so
// that everything eval does not set (sampler, shift, no steering, ...) has align sample's
// defaults and the values pass align sample's checks.
func (o *EvalOptions) sampleOptions(model, dir string) (*SampleOptions, error) {
	args := []string{"--prompts", o.PromptsFile, "--seed", strconv.FormatUint(o.Seed, 10),
		"--num-images-per-prompt", strconv.Itoa(o.NumImagesPerPrompt), "--num-inference-steps", strconv.Itoa(o.NumInferenceSteps),
		"--guidance-scale", strconv.FormatFloat(o.GuidanceScale, 'g', -1, 64), "--output-dir", dir}
	if model != "default" {
		args = append(args, "--model", model)
	}
	if o.Video {
		args = append(args, "--video")
	}
	var so *SampleOptions
	c := newCmdSample(func(opts *SampleOptions) error { so = opts; return nil })
	c.SetArgs(args)
	c.SetOut(io.Discard)
	c.SetErr(io.Discard)
	c.SilenceErrors, c.SilenceUsage = true, true
	if err := c.Execute(); err != nil {
		return nil, usageError{err}
	}
	return so, nil
}

// evalModelSpec is a reward model to compare with, by role.
type evalModelSpec struct {
	role, path string
	lr         *loadedReward
}

// checkKind refuses a model that reads clips for images or images for clips.
func (m *evalModelSpec) checkKind(kind string) error {
	if clips := kind == diffusion.KindVideo; clips != m.lr.clips {
		reads := map[bool]string{false: "images", true: "clips"}[m.lr.clips]
		return usageError{fmt.Errorf("--%s %s reads %s, the samples are %ss; give a %s reward model", m.role, m.path, reads, kind, kind)}
	}
	return nil
}

func evalRun(cmd *cobra.Command, opts *EvalOptions) error {
	start := time.Now()
	stderr := cmd.ErrOrStderr()
	// The reward models load first, so that a bad --reward or --judge fails before sampling.
	models := []*evalModelSpec{{role: "reward", path: opts.Reward}}
	if opts.Judge != "" {
		models = append(models, &evalModelSpec{role: "judge", path: opts.Judge})
	}
	for _, m := range models {
		lr, err := loadReward(cmd, &ScoreOptions{Reward: rewardForKind(m.path, opts.Video), ORTLibrary: opts.ORTLibrary, rewardFlag: "--" + m.role})
		if err != nil {
			return err
		}
		defer lr.close()
		m.lr = lr
		if opts.sample[0] != nil {
			if err := m.checkKind(map[bool]string{false: diffusion.KindImage, true: diffusion.KindVideo}[opts.Video]); err != nil {
				return err
			}
		}
	}
	if opts.sample[0] != nil {
		// align sample's summary lines go to stderr with its progress: stdout is the report.
		out := cmd.OutOrStdout()
		cmd.SetOut(stderr)
		for k, role := range []string{"baseline", "candidate"} {
			so := opts.sample[k]
			fmt.Fprintf(stderr, "sampling the %s into %s\n", role, so.OutputDir)
			if err := sampleRun(cmd, so); err != nil {
				cmd.SetOut(out)
				return fmt.Errorf("sampling the %s: %w", role, err)
			}
		}
		cmd.SetOut(out)
	}
	base, err := readSampleIndex(opts.Baseline)
	if err != nil {
		return err
	}
	cand, err := readSampleIndex(opts.Candidate)
	if err != nil {
		return err
	}
	pairs, err := matchSamples(opts.Baseline, base, opts.Candidate, cand)
	if err != nil {
		return err
	}
	if len(pairs) < 2 {
		return fmt.Errorf("%s and %s hold %d pair of samples; a comparison needs at least 2 (more prompts or --num-images-per-prompt)",
			opts.Baseline, opts.Candidate, len(pairs))
	}
	rep := evalReport{Baseline: evalSideOf(opts.Baseline, base), Candidate: evalSideOf(opts.Candidate, cand), Kind: base.Kind, Seed: base.Seed, Pairs: len(pairs)}
	prompts := map[string]bool{}
	for _, p := range pairs {
		prompts[p.base.Prompt] = true
	}
	rep.Prompts = len(prompts)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, m := range models {
		em, err := evalScore(ctx, cmd, opts, m, base.Kind, pairs)
		if err != nil {
			if ctx.Err() != nil {
				return errCancelled
			}
			return err
		}
		rep.Models = append(rep.Models, *em)
	}
	rep.Seconds = time.Since(start).Seconds()

	writeJSON := func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	if opts.Output != "" {
		if err := writeOutputFile(opts.Output, writeJSON); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s\n", opts.Output)
	}
	if opts.JSON {
		return writeJSON(cmd.OutOrStdout())
	}
	return writeEvalTable(cmd.OutOrStdout(), &rep)
}

// samplePair is a baseline sample and the candidate's sample of the same prompt and image.
type samplePair struct{ base, cand sampleFile }

// matchSamples pairs every baseline sample with the candidate sample of the same prompt and
// image index (the k-th such sample with the k-th, when a prompt is listed more than once).
// Both runs must have the same kind and seed, and a pair the same position in the seed's
// stream, so that both samples start from the same noise; every sample must have a pair.
func matchSamples(baseDir string, base *sampleReport, candDir string, cand *sampleReport) ([]samplePair, error) {
	mismatch := func(format string, a ...any) error {
		return fmt.Errorf("baseline %s and candidate %s do not pair up: %s", baseDir, candDir, fmt.Sprintf(format, a...))
	}
	if base.Kind != cand.Kind {
		return nil, mismatch("%s samples against %s samples", base.Kind, cand.Kind)
	}
	if base.Seed != cand.Seed {
		return nil, mismatch("--seed %d against --seed %d; paired samples need one seed (the same noise for a prompt)", base.Seed, cand.Seed)
	}
	type key struct {
		prompt        string
		image, repeat int
	}
	keys := func(files []sampleFile) []key {
		seen := map[key]int{}
		out := make([]key, len(files))
		for i, f := range files {
			k := key{prompt: f.Prompt, image: f.Image}
			out[i] = key{f.Prompt, f.Image, seen[k]}
			seen[k]++
		}
		return out
	}
	name := func(f sampleFile) string {
		return fmt.Sprintf("%s (prompt %q, image %d)", filepath.Base(f.Path), f.Prompt, f.Image)
	}
	ck := keys(cand.Files)
	at := make(map[key]int, len(ck))
	for j, k := range ck {
		at[k] = j
	}
	pairs := make([]samplePair, 0, len(base.Files))
	for i, k := range keys(base.Files) {
		b := base.Files[i]
		j, ok := at[k]
		if !ok {
			return nil, mismatch("baseline sample %s has no candidate sample (%d baseline samples, %d candidate)",
				name(b), len(base.Files), len(cand.Files))
		}
		c := cand.Files[j]
		if b.Index != c.Index {
			return nil, mismatch("sample %s is number %d of the baseline and %d of the candidate: the prompts are in another order, "+
				"so the seed gave them different noise; sample both from one prompts file", name(b), b.Index, c.Index)
		}
		pairs = append(pairs, samplePair{base: b, cand: c})
		delete(at, k)
	}
	for j, k := range ck {
		if _, left := at[k]; left {
			return nil, mismatch("candidate sample %s has no baseline sample (%d baseline samples, %d candidate)",
				name(cand.Files[j]), len(base.Files), len(cand.Files))
		}
	}
	return pairs, nil
}

// evalScore scores both samples of every pair with one reward model and compares them per
// dimension.
func evalScore(ctx context.Context, cmd *cobra.Command, opts *EvalOptions, m *evalModelSpec, kind string, pairs []samplePair) (*evalModel, error) {
	role, path, lr := m.role, m.path, m.lr
	if err := m.checkKind(kind); err != nil {
		return nil, err
	}
	// Each set is scored in a run of its own: sample i of both sits at the same place in the
	// same batch layout, so identical samples get bit-identical scores (an exact tie).
	n := len(pairs)
	bar := newProgressBar(cmd.ErrOrStderr(), "score "+role, 2*n)
	t0 := time.Now()
	var rows [2][]scoring.Result // baseline, candidate
	for k := range rows {
		items := make([]scoring.Item, n)
		for i, p := range pairs {
			f := []sampleFile{p.base, p.cand}[k]
			items[i] = scoring.Item{Index: i, Path: f.Path, Prompt: f.Prompt}
		}
		sc := &scoring.Scorer{Model: lr.model, Dev: lr.dev, Geometry: lr.geometry, Clips: lr.clips, Frames: lr.frames,
			BatchSize: opts.BatchSize, Strict: true, Progress: func(done, total, _ int) { bar.Update(k*n+done, "") }}
		var err error
		if rows[k], err = sc.Run(ctx, items); err != nil {
			return nil, fmt.Errorf("--%s %s: %w", role, path, err)
		}
	}
	bar.Finish(fmt.Sprintf("%.1f samples/s", float64(2*n)/max(time.Since(t0).Seconds(), 1e-9)))

	dims := lr.model.Dims()
	eps := make([]float64, len(dims)) // exact ties unless the model is calibrated with thresholds
	if c, ok := lr.model.(rewards.Calibrated); ok {
		eps = scoring.TieEpsZ(c.Calibration())
	}
	em := &evalModel{Role: role, Reward: lr.describe}
	b, c := make([]float64, n), make([]float64, n)
	for d, dim := range dims {
		for i := range n {
			b[i], c[i] = rows[0][i].Z[d], rows[1][i].Z[d]
		}
		p, err := scoring.ComparePaired(b, c, eps[d])
		if err != nil {
			return nil, fmt.Errorf("--%s %s, dimension %s: %w", role, path, dim, err)
		}
		rule := tieExact
		if eps[d] > 0 {
			rule = tieCalibrated
		}
		em.Dims = append(em.Dims, evalDim{Dim: dim, TieRule: rule, Paired: p})
	}
	return em, nil
}

// writeEvalTable prints the report for a terminal: the two sets, then one row per model and
// dimension, then which model each role is.
func writeEvalTable(w io.Writer, r *evalReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range []struct {
		name string
		side *evalSide
	}{{"baseline", &r.Baseline}, {"candidate", &r.Candidate}} {
		how := fmt.Sprintf("%s, %s %d steps, guidance %g", s.side.Model, s.side.Sampler, s.side.NumInferenceSteps, s.side.GuidanceScale)
		if len(s.side.Steering) > 0 {
			how += ", steering " + strings.Join(s.side.Steering, "+")
		}
		how += fmt.Sprintf("; per image: reward %s, %s s", s.side.rewardCost(), s.side.secondsPerImage())
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.name, s.side.Dir, how)
	}
	fmt.Fprintf(tw, "pairs\t%d %s pairs of %d prompts, seed %d\n", r.Pairs, r.Kind, r.Prompts, r.Seed)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "model\tdim\tn\twin rate\t95% CI\twins/ties/losses\tz baseline\tz candidate\tΔz\t95% CI\tties")
	for _, m := range r.Models {
		for _, d := range m.Dims {
			tie := "Δz = 0 (exact: no calibrated threshold)"
			if d.TieRule == tieCalibrated {
				tie = fmt.Sprintf("|Δz| <= %.3g (calibrated)", d.TieEps)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t[%.3f, %.3f]\t%d/%d/%d\t%+.3f\t%+.3f\t%+.3f\t[%+.3f, %+.3f]\t%s\n",
				m.Role, d.Dim, d.N, d.WinRate, d.WinRateCI[0], d.WinRateCI[1], d.Wins, d.Ties, d.Losses,
				d.MeanBaseline, d.MeanCandidate, d.MeanChange, d.ChangeCI[0], d.ChangeCI[1], tie)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, m := range r.Models {
		fmt.Fprintf(w, "%s: %s\n", m.Role, m.Reward)
	}
	return nil
}
