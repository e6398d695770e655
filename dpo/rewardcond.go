// Reward as a condition, training side (algorithms.md section 6, MRaC-style): fine-tuning
// that teaches the DiT's reward-condition slot (diffusion/reward_embed.go) what the reward
// values mean, so that sampling with --reward-condition vq=max,ta=1.5 and classifier-free
// guidance over the condition (guidance/rewardcond.go) steers towards them.
//
// Training set: items (image, caption, r) with r the per-dimension z-scores of a reward
// model on that image and caption. Real images alone score high on every dimension, so the
// set adds variants whose scores spread:
//
//	clean       (x_i, c_i)              the training image with its caption
//	degraded    (degrade(x_i), c_i)     a random rewards.DegradeKinds degradation, level 1..3
//	mismatched  (x_i, c_j), c_j != c_i  a caption of another image
//
// and every item is scored as it stands (the reward model's z = (raw - mean)/std), so the
// generator learns "low vq = degraded picture" and "low ta = an image of something else".
//
// Loss, per sample (diffusion.TrainStep, the pre-training objective):
//
//	r~_d   = NaN (∅) with probability reward_dropout, else r_d       (each dimension alone)
//	c~     = empty prompt with probability caption_dropout, else c
//	loss_b = mean (v_theta(x_t, t, c~, r~) - (eps - x0))^2
//
// The slot's MLP and null embeddings are trained with full fine-tuning and with LoRA (where
// the rest of the base is frozen), so the dropped dimensions learn the ∅ branches that joint
// and per-dimension guidance need.
//
// Maxima: the per-dimension RewardCondMaxQuantile quantile of the training conditions
// becomes the model's DiT.RewardConditionMax, stored in the output model's metadata
// (diffusion.MetaRewardConditionMax), the value of --reward-condition vq=max. It replaces
// the base model's; other methods keep the base model's.
//
// Test: go test ./dpo -run RewardCond

package dpo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// RewardCondMaxQuantile is the quantile of the training conditions that "max" stands for.
const RewardCondMaxQuantile = 0.99

// Variant kinds of a built reward-condition set.
const (
	CondClean      = "clean"
	CondDegraded   = "degraded"
	CondMismatched = "mismatched"
	CondCorrupted  = "corrupted" // clips only: motion corruptions (shuffle, jitter, flicker, freeze)
)

// RewardConditionMax returns, per reward dimension (D), the RewardCondMaxQuantile quantile
// (linear interpolation between order statistics) of the items' condition values, NaN
// where a dimension has none.
func RewardConditionMax(d *Data, D int) []float64 {
	out := make([]float64, D)
	for k := range D {
		var v []float64
		for _, it := range d.Items {
			if k < len(it.Reward) && !math.IsNaN(float64(it.Reward[k])) {
				v = append(v, float64(it.Reward[k]))
			}
		}
		out[k] = quantile(v, RewardCondMaxQuantile)
	}
	return out
}

// quantile is the q quantile of v: sorted s, p = q (n-1), s[floor p] + frac(p) (s[ceil p] - s[floor p]).
func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	p := q * float64(len(s)-1)
	lo := int(math.Floor(p))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (p-float64(lo))*(s[hi]-s[lo])
}

// CondScoredData loads a scored set as a reward-condition training set for a model with
// config cfg: every sample, weight 1, its scores (taken as z-scores) as the condition in the
// order of cfg.RewardDims. Model dimensions the set lacks are always ∅; at least one must be
// present.
func CondScoredData(set *ScoredSet, cfg *diffusion.ModelConfig) (*Data, error) {
	dims := cfg.RewardDims
	if len(dims) == 0 {
		return nil, fmt.Errorf("--method %s: the model has no reward-condition slot (pretrain with --reward-dims)", MethodRewardCond)
	}
	col := make([]int, len(dims))
	found := 0
	for k, name := range dims {
		col[k] = rewards.DimIndex(set.Dims, name)
		if col[k] >= 0 {
			found++
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("the scored set's dimensions (%v) include none of the model's reward dimensions (%v)", set.Dims, dims)
	}
	refs := make([]Ref, len(set.Items))
	for i, it := range set.Items {
		refs[i] = Ref{it.Path, it.Source}
	}
	st, err := LoadStore(refs, cfg)
	if err != nil {
		return nil, err
	}
	d := &Data{Store: st}
	for _, it := range set.Items {
		r := make([]float32, len(dims))
		for k, c := range col {
			r[k] = float32(math.NaN())
			if c >= 0 {
				r[k] = float32(it.Scores[c])
			}
		}
		d.Items = append(d.Items, Item{Prompt: it.Prompt, Sample: st.Index(it.Path), Weight: 1, Reward: r})
	}
	return d, nil
}

// CondSetOptions control BuildCondData.
type CondSetOptions struct {
	Samples    int    // source images used, a random subset (0: all)
	Degraded   int    // degraded copies per source image
	Mismatched int    // wrong-caption copies per source image
	Corrupted  int    // motion-corrupted copies per source clip (video models only)
	Seed       uint64 // subset, degradations and wrong captions
	BatchSize  int    // reward-model batch (0: 64)
}

// DefaultCondSetOptions is every image with one degraded and one mismatched copy (and a clip
// with one motion-corrupted copy).
func DefaultCondSetOptions() CondSetOptions {
	return CondSetOptions{Degraded: 1, Mismatched: 1, Corrupted: 1, BatchSize: 64}
}

// CondSetStats summarises a built set: per variant kind and dimension the mean z-score,
// and per dimension the stored maximum.
type CondSetStats struct {
	Dims  []string
	Count map[string]int       // items per kind
	Mean  map[string][]float64 // (D) mean z per kind
	Max   []float64            // (D) RewardConditionMax
}

// condKey keys the builder's random stream apart from the run's.
const condKey = 0x52c0_7d1a_9e37_0002

// BuildCondData builds a reward-condition training set from src (an image or video model's
// training data, 3 channels) scored with rm on dev. name labels the samples (Store paths
// "name#i", "name#i/blur-2"), so the data fingerprint identifies the set. Item order:
// per source sample, the clean item, then its degraded, its mismatched and (clips) its
// motion-corrupted copies: degraded copies spread vq, mismatched ones ta, corrupted ones mq.
func BuildCondData(dev kernels.Device, src diffusion.TrainingData, name string, rm rewards.Model, cfg *diffusion.ModelConfig,
	o CondSetOptions) (*Data, *CondSetStats, error) {
	dims := cfg.RewardDims
	switch {
	case len(dims) == 0:
		return nil, nil, fmt.Errorf("--method %s: the model has no reward-condition slot (pretrain with --reward-dims)", MethodRewardCond)
	case cfg.Channels != 3:
		return nil, nil, fmt.Errorf("building a reward-condition set needs an RGB model; for other models score a set with align score and pass --scored")
	case src.Len() == 0:
		return nil, nil, fmt.Errorf("no training samples")
	case o.Degraded < 0 || o.Mismatched < 0 || o.Corrupted < 0 || o.Samples < 0:
		return nil, nil, fmt.Errorf("reward-condition set: negative counts (%d degraded, %d mismatched, %d corrupted, %d samples)",
			o.Degraded, o.Mismatched, o.Corrupted, o.Samples)
	}
	video := cfg.Kind == diffusion.KindVideo
	if !video {
		o.Corrupted = 0
	}
	col := make([]int, len(dims))
	for k, n := range dims {
		if col[k] = rewards.DimIndex(rm.Dims(), n); col[k] < 0 {
			return nil, nil, fmt.Errorf("the reward model scores %v; the generator's reward dimension %q is not among them", rm.Dims(), n)
		}
	}
	bs := o.BatchSize
	if bs <= 0 {
		bs = 64
	}
	rng := rand.New(rand.NewPCG(o.Seed, condKey))
	idx := rng.Perm(src.Len())
	if o.Samples > 0 && o.Samples < len(idx) {
		idx = idx[:o.Samples]
	}
	slices.Sort(idx)
	S := cfg.SampleSize()
	T, H, W := cfg.Frames, cfg.ImageSize, cfg.ImageSize
	st := &Store{index: map[string]int{}}
	add := func(path string, b []uint8) int {
		st.index[path] = len(st.Paths)
		st.Paths = append(st.Paths, path)
		st.Data = append(st.Data, b)
		return len(st.Paths) - 1
	}
	// addOnce adds a variant by its path once (the same corruption drawn twice is one sample).
	addOnce := func(path string, b []uint8) int {
		if k, ok := st.index[path]; ok {
			return k
		}
		return add(path, b)
	}
	d := &Data{Store: st}
	var kinds []string
	f := make([]float32, S)
	for _, i := range idx {
		src.Sample(f, i)
		clean := make([]uint8, S)
		for j, v := range f {
			clean[j] = uint8(math.Round(float64(min(max((v+1)*127.5, 0), 255))))
		}
		cap := src.Caption(i)
		ci := add(fmt.Sprintf("%s#%d", name, i), clean)
		d.Items = append(d.Items, Item{Prompt: cap, Sample: ci, Weight: 1})
		kinds = append(kinds, CondClean)
		for range o.Degraded {
			c := rewards.Corruption{Kind: rewards.DegradeKinds[rng.IntN(len(rewards.DegradeKinds))], Level: 1 + rng.IntN(rewards.MaxLevel)}
			b := slices.Clone(clean)
			if video {
				rewards.DegradeClip(b, T, W, H, c, rng.Uint64())
			} else {
				rewards.DegradeImage(b, W, H, c, rng.Uint64())
			}
			d.Items = append(d.Items, Item{Prompt: cap, Sample: addOnce(fmt.Sprintf("%s#%d/%s", name, i, c), b), Weight: 1})
			kinds = append(kinds, CondDegraded)
		}
		for range o.Mismatched {
			other := cap
			for try := 0; try < 16 && other == cap; try++ {
				other = src.Caption(rng.IntN(src.Len()))
			}
			if other == cap {
				continue // every caption alike: no mismatch to make
			}
			d.Items = append(d.Items, Item{Prompt: other, Sample: ci, Weight: 1})
			kinds = append(kinds, CondMismatched)
		}
		for range o.Corrupted {
			c := rewards.Corruption{Kind: rewards.CorruptKinds[rng.IntN(len(rewards.CorruptKinds))], Level: 1 + rng.IntN(rewards.MaxLevel)}
			b := slices.Clone(clean)
			rewards.CorruptClip(b, T, W, H, c, rng.Uint64())
			d.Items = append(d.Items, Item{Prompt: cap, Sample: addOnce(fmt.Sprintf("%s#%d/%s", name, i, c), b), Weight: 1})
			kinds = append(kinds, CondCorrupted)
		}
	}
	// Score every item as it stands.
	shape := cfg.BatchShape(bs) // (bs,3,H,W) or (bs,T,3,H,W)
	pix := dev.New(shape...)
	defer dev.Free(pix)
	host := make([]float32, bs*S)
	for lo := 0; lo < len(d.Items); lo += bs {
		hi := min(lo+bs, len(d.Items))
		B := hi - lo
		caps := make([]string, B)
		for b := range B {
			it := d.Items[lo+b]
			st.Unit(host[b*S:(b+1)*S], it.Sample)
			caps[b] = it.Prompt
		}
		shape[0] = B
		x := pix.View(0, shape...)
		dev.CopyFromHost(x, host[:B*S])
		sc, err := rewards.ScoreBatch(rm, rewards.Batch{Pixels: x, Prompts: caps})
		if err != nil {
			return nil, nil, err
		}
		for b := range B {
			r := make([]float32, len(dims))
			for k, c := range col {
				r[k] = float32(sc.Z[b][c])
			}
			d.Items[lo+b].Reward = r
		}
	}
	stats := &CondSetStats{Dims: slices.Clone(dims), Count: map[string]int{}, Mean: map[string][]float64{},
		Max: RewardConditionMax(d, len(dims))}
	for i, it := range d.Items {
		k := kinds[i]
		if stats.Mean[k] == nil {
			stats.Mean[k] = make([]float64, len(dims))
		}
		stats.Count[k]++
		for j, v := range it.Reward {
			stats.Mean[k][j] += float64(v)
		}
	}
	for k, m := range stats.Mean {
		for j := range m {
			m[j] /= float64(stats.Count[k])
		}
	}
	return d, stats, nil
}

// ---- the trainer's side ----

// checkRewardCond checks a reward-condition run's model and data.
func checkRewardCond(m *diffusion.DiT, data *Data) error {
	D := len(m.Config.RewardDims)
	if m.Reward == nil || D == 0 {
		return fmt.Errorf("finetune: --method %s needs a model with a reward-condition slot (pretrain with --reward-dims)", MethodRewardCond)
	}
	for i, it := range data.Items {
		if len(it.Reward) != D {
			return fmt.Errorf("finetune: training sample %d has %d reward values; the model has %d reward dimensions (%v)", i, len(it.Reward), D, m.Config.RewardDims)
		}
	}
	return nil
}

// nextCondBatch fills a batch of TrainBatchSize samples with their reward conditions.
func (t *Trainer) nextCondBatch() *diffusion.Batch {
	t.rc = t.rc[:0]
	prompts := t.fillItems(func(it *Item) { t.rc = append(t.rc, it.Reward...) })
	return &diffusion.Batch{X0: t.x0, Prompts: prompts, Reward: t.rc}
}

// condStep runs the micro-batches of one reward-condition optimizer step; gradients are
// scaled by 1/accumulation steps.
func (t *Trainer) condStep(e *LogEntry) {
	GA := t.Cfg.GradientAccumulationSteps
	scale := 1 / float64(GA)
	m := &RWRMetrics{WeightMean: 1}
	for range GA {
		r := t.cond.ForwardBackwardScaled(t.Model, &t.RNG, t.nextCondBatch(), scale)
		e.Loss += r.Loss * scale
		mse := 0.0
		for _, v := range r.PerSample {
			mse += float64(v)
		}
		m.MSE += mse / float64(len(r.PerSample)) * scale
	}
	e.RWRMetrics = m
}
