// align pairs: generate preference pairs (or a scored set) for align finetune: K candidates
// per prompt from the SDE sampler, scored with a reward model, the best against the worst
// (or the first Pareto front against the last); the final clean samples are written as
// files that the JSONL references.
//
// Test: go test ./cmd/align -run Pairs
package main

import (
	"context"
	"errors"
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

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/dpo"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/scoring"
)

// PairsOptions are the flags of `align pairs`.
type PairsOptions struct {
	Prompts       []string // --prompt, repeatable
	PromptsFile   string   // --prompts: text (one per line) or JSONL ({"prompt": ...})
	Model         string
	Adapters      []string // --adapter PATH[=WEIGHT], repeatable: fine-tunings merged into it
	Rewards       []string // --reward (repeatable): one model, or several side by side
	Manifest      string
	ORTLibrary    string
	Threads       int
	NumCandidates int
	Weights       string
	Combine       string
	LSCQuantile   float64
	PerPrompt     int     // --pairs-per-prompt
	MinMargin     float64 // --min-margin

	NumInferenceSteps int
	GuidanceScale     float64
	NoiseLevel        float64
	Shift             float64
	Seed              uint64

	Scored      bool
	FromScored  string // --from-scored: select pairs from a scored set instead of sampling
	Rescore     bool   // --rescore: score --from-scored's samples again with --reward
	Shard       string
	Output      string
	ImagesDir   string
	VideoFormat string // --video-format: gif or mp4 (a video model's candidates)
	BatchSize   int

	shardI, shardN int
}

func newCmdPairs(runF func(*PairsOptions) error) *cobra.Command {
	opts := &PairsOptions{}
	cmd := &cobra.Command{
		Use:   "pairs",
		Short: "Generate preference pairs (or a scored set) for align finetune",
		Long: `For every prompt, sample --num-candidates candidates with the SDE sampler (candidate k of
prompt p is sample p*K+k of --seed's stream, recorded as its index), score them with the
reward model, and write one pair per prompt: the best against the worst by the weighted
z-scores (--weights, --combine linear, unit-direction or lsc), or with --combine pareto a
sample of the first Pareto front against one of the last. A prompt whose candidates are all
equally good gives no pair. --pairs-per-prompt k pairs the i-th best with the i-th worst,
i < k (at most K/2 pairs; linear, unit-direction and lsc); --min-margin m drops a pair whose
combined z-scores differ by less than m. The samples (PNG; for video models GIF, or MP4
with --video-format mp4) go to --images-dir and the JSONL (-o) names them relative to its
own directory, with each sample's z-scores. With remote (HTTP) and ONNX reward models, which
compute apart from --device, a prompt's candidates are scored while the next prompt's are
drawn.

--scored writes every candidate with its z-scores instead (a scored set for
align finetune --method rwr). --shard i/n takes the i-th of n contiguous parts of the
prompts; the candidates keep their stream indices, so shards concatenated in order equal
one whole run.

--from-scored FILE selects the pairs from a scored set written by --scored (or align
score output) instead of sampling: one scored run then gives pairs for any --weights and
--combine, each referencing the same sample files. With --rescore the set's samples are
scored again by --reward first (its dimensions and calibration replace the file's), so
another reward model selects from the same candidates without sampling them again; with
--scored as well, the rescored set is written instead of pairs.`,
		Example: `  $ align pairs --prompts prompts.txt --model base/model.safetensors --reward reward/model.safetensors -o pairs.jsonl
  $ align pairs --prompts prompts.txt --model base/model.safetensors --reward reward.onnx --weights ta=1 --num-candidates 16 -o pairs.jsonl
  $ align pairs --prompts prompts.txt --model base/model.safetensors --reward reward/model.safetensors --combine pareto -o pairs.jsonl
  $ align pairs --prompts prompts.txt --reward default --reward aesthetic.json --weights ta=1,aesthetic=1 -o pairs.jsonl
  $ align pairs --prompts prompts.txt --model base/model.safetensors --reward reward/model.safetensors --scored -o scored.jsonl
  $ align pairs --from-scored scored.jsonl --weights vq=0,ta=1 -o pairs-ta.jsonl
  $ align pairs --from-scored scored.jsonl --rescore --reward other/model.safetensors --scored -o scored-other.jsonl
  $ align pairs --prompts prompts.txt --model base/model.safetensors --reward reward/model.safetensors --shard $JOB_COMPLETION_INDEX/8 -o pairs-$JOB_COMPLETION_INDEX.jsonl --images-dir images/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.FromScored != "" {
				return pairsFromScoredRun(cmd, opts)
			}
			return pairsRun(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.Prompts, "prompt", nil, "text prompt (repeatable)")
	f.StringVar(&opts.PromptsFile, "prompts", "", "file of prompts: one per line, or JSONL with a \"prompt\" field")
	f.StringVar(&opts.Model, "model", "", "generator model file (.safetensors) written by align pretrain, or default-video (default: the embedded image model)")
	f.StringArrayVar(&opts.Adapters, "adapter", nil, adapterUsage)
	f.StringArrayVar(&opts.Rewards, "reward", []string{"default"}, "reward model: default (embedded, for the generator's kind), FILE.safetensors (align reward train), FILE.onnx or its manifest FILE.json, or a remote model's manifest FILE.json; repeat it to score with several (their dimensions side by side under --weights)")
	f.StringVar(&opts.Manifest, "manifest", "", "manifest of an ONNX reward model (default: FILE.onnx with .json)")
	f.StringVar(&opts.ORTLibrary, "onnxruntime", "", "ONNX Runtime library (ONNX reward models)")
	f.IntVar(&opts.Threads, "threads", 0, "ONNX Runtime intra-op threads (0: one per core)")
	f.IntVarP(&opts.NumCandidates, "num-candidates", "k", 8, "candidates per prompt")
	f.StringVar(&opts.Weights, "weights", "", "weights of the z-scored dimensions, e.g. vq=1,ta=2 (default: 1 each)")
	f.StringVar(&opts.Combine, "combine", rewards.CombineLinear, "how dimensions combine: "+strings.Join(rewards.Combiners, ", "))
	f.Float64Var(&opts.LSCQuantile, "lsc-quantile", 0.85, "lsc: per-prompt reference quantile of each dimension")
	f.IntVar(&opts.PerPrompt, "pairs-per-prompt", 1, "pairs per prompt: the i-th best against the i-th worst (at most --num-candidates/2)")
	f.Float64Var(&opts.MinMargin, "min-margin", 0, "drop a pair whose combined z-scores differ by less than this")
	f.IntVar(&opts.NumInferenceSteps, "num-inference-steps", 28, "denoising steps")
	f.Float64Var(&opts.GuidanceScale, "guidance-scale", 4.0, "classifier-free guidance scale (<= 1 disables guidance)")
	f.Float64Var(&opts.NoiseLevel, "noise-level", 0.7, "SDE noise level a (flow_grpo's 0.7)")
	f.Float64Var(&opts.Shift, "shift", 0, "timestep shift (0: the model's default)")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed of the candidates' noise")
	f.BoolVar(&opts.Scored, "scored", false, "write every candidate with its scores (a scored set) instead of pairs")
	f.StringVar(&opts.FromScored, "from-scored", "", "select pairs from this scored set (JSONL) instead of sampling")
	f.BoolVar(&opts.Rescore, "rescore", false, "with --from-scored: score its samples again with --reward (with --scored: write the rescored set)")
	f.StringVar(&opts.Shard, "shard", "", "generate part i of n of the prompts, e.g. 0/4")
	f.StringVarP(&opts.Output, "output", "o", "pairs.jsonl", "output JSONL file, written atomically")
	f.StringVar(&opts.ImagesDir, "images-dir", "", "directory of the samples (default: <output without .jsonl>-images)")
	f.StringVar(&opts.VideoFormat, "video-format", videoFormatGIF, "file format of a video model's candidates: gif, or mp4 (H.264 through ffmpeg; nearer the samples than GIF's palette: README)")
	f.IntVar(&opts.BatchSize, "batch-size", 16, "samples per reward-model call")
	return cmd
}

func (o *PairsOptions) validate() error {
	switch {
	case o.PerPrompt < 1:
		return flagErrorf("--pairs-per-prompt must be >= 1, got %d", o.PerPrompt)
	case o.PerPrompt > 1 && o.Combine == rewards.CombinePareto:
		return flagErrorf("--pairs-per-prompt %d: --combine pareto gives one pair per prompt (first front against last)", o.PerPrompt)
	case !(o.MinMargin >= 0):
		return flagErrorf("--min-margin must be >= 0, got %v", o.MinMargin)
	case o.Scored && (o.PerPrompt > 1 || o.MinMargin > 0):
		return flagErrorf("--pairs-per-prompt and --min-margin select pairs; --scored writes every candidate (select later with --from-scored)")
	case o.Rescore && o.FromScored == "":
		return flagErrorf("--rescore scores the samples of --from-scored FILE again: give --from-scored")
	}
	if o.FromScored != "" {
		switch {
		case len(o.Prompts) > 0 || o.PromptsFile != "" || o.Shard != "":
			return flagErrorf("--from-scored selects pairs from its file: it takes no --prompt, --prompts or --shard")
		case o.Scored && !o.Rescore:
			return flagErrorf("--from-scored with --scored would copy the file: add --rescore to write it scored by --reward")
		case o.Rescore && o.emptyReward():
			return flagErrorf("--reward is empty: give default, FILE.safetensors, FILE.onnx or FILE.json")
		case o.BatchSize < 1:
			return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
		case !slices.Contains(rewards.Combiners, o.Combine):
			return flagErrorf("--combine %q: want one of %s", o.Combine, strings.Join(rewards.Combiners, ", "))
		case o.Output == "":
			return flagErrorf("--output must not be empty")
		}
		return nil
	}
	for i, p := range o.Prompts {
		if strings.TrimSpace(p) == "" {
			return flagErrorf("--prompt %d is empty", i+1)
		}
	}
	switch {
	case len(o.Prompts) == 0 && o.PromptsFile == "":
		return flagErrorf("no prompts: give --prompt TEXT (repeatable) or --prompts FILE")
	case o.NumCandidates < 2:
		return flagErrorf("--num-candidates must be >= 2, got %d", o.NumCandidates)
	case 2*o.PerPrompt > o.NumCandidates:
		return flagErrorf("--pairs-per-prompt %d needs at least %d candidates, got --num-candidates %d", o.PerPrompt, 2*o.PerPrompt, o.NumCandidates)
	case !slices.Contains(rewards.Combiners, o.Combine):
		return flagErrorf("--combine %q: want one of %s", o.Combine, strings.Join(rewards.Combiners, ", "))
	case !(o.LSCQuantile >= 0 && o.LSCQuantile <= 1):
		return flagErrorf("--lsc-quantile must be in [0, 1], got %v", o.LSCQuantile)
	case !(o.NoiseLevel > 0):
		return flagErrorf("--noise-level must be > 0 (the SDE sampler), got %v", o.NoiseLevel)
	case o.Output == "":
		return flagErrorf("--output must not be empty")
	case o.BatchSize < 1:
		return flagErrorf("--batch-size must be >= 1, got %d", o.BatchSize)
	case o.emptyReward():
		return flagErrorf("--reward is empty: give default, FILE.safetensors, FILE.onnx or FILE.json")
	}
	if err := checkSampling(o.NumInferenceSteps, o.GuidanceScale, o.Shift, diffusion.SamplerSDE); err != nil {
		return err
	}
	o.shardI, o.shardN = 0, 1
	if o.Shard != "" {
		i, n, err := scoring.ParseShard(o.Shard)
		if err != nil {
			return usageError{err}
		}
		o.shardI, o.shardN = i, n
	}
	if o.ImagesDir == "" {
		o.ImagesDir = strings.TrimSuffix(o.Output, filepath.Ext(o.Output)) + "-images"
	}
	if o.VideoFormat != videoFormatGIF && o.VideoFormat != videoFormatMP4 {
		return flagErrorf("--video-format %q: want gif or mp4", o.VideoFormat)
	}
	return nil
}

// emptyReward reports an empty --reward (or none).
func (o *PairsOptions) emptyReward() bool {
	return len(o.Rewards) == 0 || slices.Contains(o.Rewards, "")
}

// loadRewards opens the --reward models for samples of a video (or image) generator.
func (o *PairsOptions) loadRewards(cmd *cobra.Command, video bool) (*rewardSet, error) {
	if err := checkManifestFlag(o.Manifest, o.Rewards); err != nil {
		return nil, err
	}
	specs := make([]string, len(o.Rewards))
	for i, r := range o.Rewards {
		specs[i] = rewardForKind(r, video)
	}
	return loadRewardSet(cmd, &ScoreOptions{Manifest: o.Manifest, ORTLibrary: o.ORTLibrary, Threads: o.Threads}, specs)
}

// selection is how pairs are chosen under the weights w.
func (o *PairsOptions) selection(w []float64) dpo.Selection {
	return dpo.Selection{Weights: w, Combine: o.Combine, LSCQuantile: o.LSCQuantile, PairsPerPrompt: o.PerPrompt, MinMargin: o.MinMargin}
}

func pairsRun(cmd *cobra.Command, opts *PairsOptions) error {
	stderr := cmd.ErrOrStderr()
	start := time.Now()
	prompts, err := allPrompts(opts.Prompts, opts.PromptsFile)
	if err != nil {
		return err
	}
	N, K := len(prompts), opts.NumCandidates
	first, last := opts.shardI*N/opts.shardN, (opts.shardI+1)*N/opts.shardN
	dev, err := deviceFromCmd(cmd)
	if err != nil {
		return err
	}
	adapters, err := parseAdapters(opts.Adapters)
	if err != nil {
		return err
	}
	m, modelName, err := loadGeneratorMix(dev, opts.Model, adapters)
	if err != nil {
		return err
	}
	video := m.Config.Kind == diffusion.KindVideo
	set, err := opts.loadRewards(cmd, video)
	if err != nil {
		return err
	}
	defer set.close()
	if set.clips != video {
		return usageError{fmt.Errorf("%s scores %s but %s generates %ss", set.describe,
			map[bool]string{true: "clips", false: "images"}[set.clips], modelName, m.Config.Kind)}
	}
	dims := set.model.Dims()
	w, err := rewards.ParseWeights(opts.Weights, dims)
	if err != nil {
		return usageError{fmt.Errorf("--weights: %w", err)}
	}
	var clips *clipWriter
	switch {
	case video:
		if clips, err = newClipWriter(opts.VideoFormat); err != nil {
			return err
		}
	case cmd.Flags().Changed("video-format"):
		return flagErrorf("--video-format sets the file format of a video model's candidates; %s generates images", modelName)
	}
	if err := os.MkdirAll(opts.ImagesDir, 0o755); err != nil {
		return err
	}
	outDir := filepath.Dir(opts.Output)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if opts.shardN > 1 {
		fmt.Fprintf(stderr, "shard %d/%d: prompts %d..%d of %d\n", opts.shardI, opts.shardN, first, last-1, N)
	}
	fmt.Fprintf(stderr, "%d prompts x %d candidates (SDE, noise level %g, %d steps, guidance %g, seed %d); reward %s (%s); %s\n",
		last-first, K, opts.NoiseLevel, opts.NumInferenceSteps, opts.GuidanceScale, opts.Seed, set.describe, strings.Join(dims, ", "), dev.Name())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bar := newProgressBar(stderr, "pairs", last-first)
	sc := scoring.Scorer{BatchSize: opts.BatchSize}
	scored := &dpo.ScoredSet{Dims: dims}
	var pairs []dpo.Pair
	noPair, failed := 0, 0
	seed := opts.Seed
	interrupted := false
	// sample draws prompt p's K candidates and writes them; collect selects its pairs from
	// their scores.
	sample := func(p int) ([]scoring.Item, error) {
		caps := make([]string, K)
		for k := range caps {
			caps[k] = prompts[p]
		}
		x, _, err := diffusion.Sample(m, caps, diffusion.SampleOptions{NumInferenceSteps: opts.NumInferenceSteps,
			GuidanceScale: opts.GuidanceScale, Shift: opts.Shift, Seed: opts.Seed, FirstIndex: p * K,
			Sampler: diffusion.SamplerSDE, NoiseLevel: opts.NoiseLevel})
		if err != nil {
			return nil, err
		}
		frames := diffusion.SampleFrames(x, &m.Config)
		dev.Free(x)
		items := make([]scoring.Item, K)
		for k, fr := range frames {
			idx := p*K + k
			ext := ".png"
			if video {
				ext = "." + opts.VideoFormat
			}
			path := filepath.Join(opts.ImagesDir, fmt.Sprintf("%06d-%02d-%s%s", p, k, slug(prompts[p]), ext))
			if video {
				err = clips.write(path, diffusion.ToImages(fr))
			} else {
				err = diffusion.WritePNG(path, fr[0])
			}
			if err != nil {
				return nil, err
			}
			items[k] = scoring.Item{Index: idx, Path: path, Prompt: prompts[p], HasPrompt: true}
		}
		return items, nil
	}
	collect := func(p int, rows []scoring.Result) error {
		var cands []dpo.Scored
		for k := range rows {
			if !rows[k].OK() {
				failed++
				fmt.Fprintf(stderr, "align: warning: %s: %s\n", rows[k].Path, rows[k].Err)
				continue
			}
			idx := rows[k].Index
			cands = append(cands, dpo.Scored{Prompt: prompts[p], Path: rows[k].Path, Scores: rows[k].Z, Seed: &seed, Index: &idx})
		}
		scored.Items = append(scored.Items, cands...)
		ps, err := dpo.PromptPairs(cands, dims, opts.selection(w))
		if err != nil {
			return err
		}
		if len(ps) == 0 {
			noPair++
		}
		pairs = append(pairs, ps...)
		bar.Update(p-first+1, counted(len(pairs), "pair"))
		return nil
	}
	// Where no reward model computes on the generator's device (remote and ONNX models), a
	// prompt's candidates are scored in the background while the next prompt's are drawn: a
	// server's latency (or an ONNX model's time, where it has cores of its own) overlaps the
	// sampling. The scores and pairs are the same either way.
	ahead := set.apart()
	type scoredPrompt struct {
		p    int
		rows []scoring.Result
		err  error
	}
	var inflight chan scoredPrompt // the prompt being scored in the background; nil: none
	// On an early return, the models are closed only once they are idle.
	defer func() {
		if inflight != nil {
			<-inflight
		}
	}()
	await := func() error {
		r := <-inflight
		inflight = nil
		if r.err != nil {
			return r.err
		}
		return collect(r.p, r.rows)
	}
	for p := first; p < last; p++ {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		items, err := sample(p)
		if err != nil {
			return err
		}
		if inflight != nil {
			if err := await(); err != nil {
				return err
			}
		}
		if !ahead {
			rows, err := set.run(context.Background(), items, sc, nil)
			if err != nil {
				return err
			}
			if err := collect(p, rows); err != nil {
				return err
			}
			continue
		}
		inflight = make(chan scoredPrompt, 1)
		go func(ch chan<- scoredPrompt) {
			rows, err := set.run(context.Background(), items, sc, nil)
			ch <- scoredPrompt{p, rows, err}
		}(inflight)
	}
	if inflight != nil {
		if err := await(); err != nil {
			return err
		}
	}
	bar.Finish(fmt.Sprintf("%s, %s without one, %s not scored", counted(len(pairs), "pair"), counted(noPair, "prompt"), counted(failed, "sample")))

	write := func(wr io.Writer) error {
		if opts.Scored {
			return dpo.WriteScoredJSONL(wr, scored, outDir)
		}
		return dpo.WritePairsJSONL(wr, pairs, outDir)
	}
	if err := writeOutputFile(opts.Output, write); err != nil {
		return err
	}
	what := counted(len(pairs), "pair")
	if opts.Scored {
		what = counted(len(scored.Items), "scored sample")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s; samples in %s) in %s\n", opts.Output, what, opts.ImagesDir, fmtDuration(time.Since(start)))
	if interrupted {
		fmt.Fprintf(stderr, "interrupted: %s holds the prompts done so far\n", opts.Output)
		return errCancelled
	}
	if !opts.Scored && len(pairs) == 0 {
		return errors.New("no pairs: every prompt's candidates scored alike; try more --num-candidates or other --weights")
	}
	return nil
}

// pairsFromScoredRun selects pairs from a scored set (--from-scored), rescored first with
// --rescore, and writes them (or, with --scored, the rescored set) with paths relative to the
// output's directory.
func pairsFromScoredRun(cmd *cobra.Command, opts *PairsOptions) error {
	set, err := dpo.ReadScored(opts.FromScored)
	if err != nil {
		return err
	}
	if opts.Rescore {
		if set, err = rescoreSet(cmd, opts, set); err != nil {
			return err
		}
	}
	outDir := filepath.Dir(opts.Output)
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	if opts.Scored {
		if err := writeOutputFile(opts.Output, func(wr io.Writer) error { return dpo.WriteScoredJSONL(wr, set, outDir) }); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d samples of %s scored by %s)\n", opts.Output, len(set.Items), opts.FromScored, strings.Join(opts.Rewards, " + "))
		return nil
	}
	w, err := rewards.ParseWeights(opts.Weights, set.Dims)
	if err != nil {
		return usageError{fmt.Errorf("--weights: %w", err)}
	}
	pairs, noPair, err := dpo.PairsFromScored(set, opts.selection(w))
	if err != nil {
		return fmt.Errorf("%s: %w", opts.FromScored, err)
	}
	if len(pairs) == 0 {
		return fmt.Errorf("%s: no pairs: every prompt's candidates score alike under --weights %q", opts.FromScored, opts.Weights)
	}
	if err := writeOutputFile(opts.Output, func(wr io.Writer) error { return dpo.WritePairsJSONL(wr, pairs, outDir) }); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d pairs from %d scored samples, %d prompts without one)\n",
		opts.Output, len(pairs), len(set.Items), noPair)
	return nil
}

// rescoreSet scores the samples of set again with --reward: the result keeps each sample's
// prompt, file, seed and index, with the reward's dimensions and z-scores. A sample the
// reward cannot read is an error naming its file (a pair would be missing a side).
func rescoreSet(cmd *cobra.Command, opts *PairsOptions, set *dpo.ScoredSet) (*dpo.ScoredSet, error) {
	if len(set.Items) == 0 {
		return nil, fmt.Errorf("%s: no samples to rescore", opts.FromScored)
	}
	video := strings.EqualFold(filepath.Ext(set.Items[0].Path), ".gif") || scoring.IsVideoFile(set.Items[0].Path)
	rs, err := opts.loadRewards(cmd, video)
	if err != nil {
		return nil, err
	}
	defer rs.close()
	if rs.clips != video {
		return nil, usageError{fmt.Errorf("%s scores %s, but the samples of %s are %s", rs.describe,
			map[bool]string{true: "clips", false: "images"}[rs.clips], opts.FromScored, map[bool]string{true: "clips", false: "images"}[video])}
	}
	items := make([]scoring.Item, len(set.Items))
	for i, it := range set.Items {
		items[i] = scoring.Item{Index: i, Path: it.Path, Prompt: it.Prompt, HasPrompt: true}
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "rescoring %d samples of %s with %s (%s)\n", len(items), opts.FromScored, rs.describe, strings.Join(rs.model.Dims(), ", "))
	bar := newProgressBar(stderr, "rescore", len(items)*len(rs.members))
	rows, err := rs.run(context.Background(), items, scoring.Scorer{BatchSize: opts.BatchSize}, func(done, _ int) { bar.Update(done, "") })
	if err != nil {
		return nil, err
	}
	bar.Finish("")
	out := &dpo.ScoredSet{Dims: rs.model.Dims(), Items: make([]dpo.Scored, len(set.Items))}
	for i, row := range rows {
		if !row.OK() {
			return nil, fmt.Errorf("%s: sample %s: %s", opts.FromScored, row.Path, row.Err)
		}
		out.Items[i] = set.Items[row.Index]
		out.Items[i].Scores = row.Z
	}
	return out, nil
}
