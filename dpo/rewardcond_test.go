// Tests of reward-condition training on tiny models: per-dimension dropout on hand-checked
// draws, the slot's gradients (LoRA and full) and null embeddings, a toy set where the
// condition decides the image (vq=max vs a low vq sample in the right direction), the
// stored maxima round trip, exact resume, and the built set's variants and scores.
//
// Test: go test ./dpo -run RewardCond

package dpo

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/guidance"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// condModel is tinyModel with the reward dimensions vq and ta: every weight drawn from
// N(0, 0.2^2) (a "pretrained" base) except the slot's, which are fresh (a no-op).
func condModel(t testing.TB, seed uint64) *diffusion.DiT {
	t.Helper()
	tok, err := diffusion.BuildTokenizer(prompts, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: 4, Channels: 3, Frames: 1, PatchSize: 2, TubeletFrames: 1,
		Width: 16, Depth: 2, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2, MaxTextLen: 4,
		VocabSize: tok.VocabSize(), RewardFreq: 8, RewardDims: []string{"vq", "ta"}, Shift: 1}
	m, err := diffusion.NewDiT(testDev, &kernels.RNG{Seed: seed}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tok
	var base []nn.Param
	for _, p := range m.Params() {
		if !strings.HasPrefix(p.Name, "reward_embedder.") {
			base = append(base, p)
		}
	}
	randomize(base, seed, 0.2)
	return m
}

// toyCondData: every sample decides its image by its vq condition: vq = +2 with a bright
// image (all bytes 230), vq = -2 with a dark one (all 25); ta = 0.5 throughout.
func toyCondData(n, D int) *Data {
	s := &Store{index: map[string]int{}}
	for i, v := range []uint8{230, 25} {
		p := []string{"mem/bright.png", "mem/dark.png"}[i]
		s.index[p] = i
		s.Paths = append(s.Paths, p)
		s.Data = append(s.Data, bytes.Repeat([]byte{v}, D))
	}
	d := &Data{Store: s}
	for i := range n {
		vq := float32(2)
		if i%2 == 1 {
			vq = -2
		}
		d.Items = append(d.Items, Item{Prompt: prompts[i%3], Sample: i % 2, Weight: 1, Reward: []float32{vq, 0.5}})
	}
	return d
}

func condConfig(steps int) Config {
	c := tinyConfig(MethodRewardCond, steps)
	c.Timesteps.WeightingScheme = diffusion.WeightingLogitNormal
	c.Timesteps.CaptionDropout, c.Timesteps.RewardDropout = 0.1, 0.1
	return c
}

// The reward dropout of a step: value i of the batch's B*D conditions is ∅ exactly when
// draw i of the stream (after B time and B caption draws) is below p.
func TestRewardCondDropoutDraws(t *testing.T) {
	r := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	rng := kernels.RNG{Seed: 11}
	got := diffusion.DropRewards(&rng, r, 0.3)
	replay := kernels.RNG{Seed: 11}
	u := replay.Float64s(len(r))
	var dropped []int
	for i := range r {
		if (u[i] < 0.3) != math.IsNaN(float64(got[i])) {
			t.Errorf("value %d: draw %.4f, result %v", i, u[i], got[i])
		}
		if !math.IsNaN(float64(got[i])) && got[i] != r[i] {
			t.Errorf("value %d changed to %v", i, got[i])
		}
		if math.IsNaN(float64(got[i])) {
			dropped = append(dropped, i)
		}
	}
	// Seed 11's first ten draws: .896 .959 .354 .335 .396 .693 .119 .419 .604 .034; below
	// 0.3 are draws 6 and 9.
	if !slices.Equal(dropped, []int{6, 9}) {
		t.Errorf("dropped %v (draws %.3f), want [6 9]", dropped, u)
	}
	if rng.Offset != replay.Offset {
		t.Errorf("dropout used %d counter blocks, the replay %d", rng.Offset, replay.Offset)
	}
	// Each dimension is dropped on its own at rate p: over 20000 values (B=5000, D=4) every
	// dimension's rate is within 4 standard errors of 0.1, and both-dropped pairs of
	// dimensions occur at about p^2.
	big := make([]float32, 20000)
	out := diffusion.DropRewards(&kernels.RNG{Seed: 5}, big, 0.1)
	const B, D = 5000, 4
	var perDim [D]int
	both := 0
	for b := range B {
		for d := range D {
			if math.IsNaN(float64(out[b*D+d])) {
				perDim[d]++
			}
		}
		if math.IsNaN(float64(out[b*D])) && math.IsNaN(float64(out[b*D+1])) {
			both++
		}
	}
	se := math.Sqrt(0.1 * 0.9 / B)
	for d, n := range perDim {
		if f := float64(n) / B; math.Abs(f-0.1) > 4*se {
			t.Errorf("dimension %d dropped at rate %.4f, want 0.1", d, f)
		}
	}
	if f := float64(both) / B; math.Abs(f-0.01) > 4*math.Sqrt(0.01*0.99/B) {
		t.Errorf("dimensions 0 and 1 both dropped at rate %.4f, want 0.01 (independent)", f)
	}
}

// The slot is trained under LoRA and full fine-tuning: it is among the optimizer's
// parameters, gets non-zero gradients, and a dropped dimension's gradient reaches its null
// embedding only.
func TestRewardCondSlotGradients(t *testing.T) {
	for _, full := range []bool{false, true} {
		m := condModel(t, 1)
		D := m.Config.SampleSize()
		cfg := condConfig(3)
		cfg.FullFinetune = full
		tr, err := NewTrainer(testDev, m, cfg, toyCondData(6, D), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, p := range tr.Opt.Params {
			names[p.Name] = true
		}
		for _, n := range []string{"reward_embedder.null_embedding", "reward_embedder.mlp.0.weight", "reward_embedder.mlp.2.weight"} {
			if !names[n] {
				t.Fatalf("full=%v: %s is not trained", full, n)
			}
		}
		if !full && names["blocks.0.attn.qkv.weight"] {
			t.Fatal("LoRA run trains the base weights")
		}
		// Two steps make the zero-initialised last layer non-zero, so gradients reach the
		// first layer and the null embeddings.
		for range 2 {
			tr.TrainOneStep()
		}
		nn.ZeroGrad(tr.Opt.Params)
		nan := float32(math.NaN())
		b := tr.nextCondBatch()
		for i := range len(b.Reward) / 2 {
			b.Reward[2*i] = nan // vq dropped everywhere, ta kept
		}
		tr.cond.RewardDropout, tr.cond.CaptionDropout = 0, 0
		tr.cond.ForwardBackward(tr.Model, &tr.RNG, b)
		g := hostOf(tr.Model.Reward.DNull)
		F := tr.Model.Reward.Freq
		norm := func(v []float32) (s float64) {
			for _, x := range v {
				s += float64(x) * float64(x)
			}
			return math.Sqrt(s)
		}
		if norm(g[:F]) == 0 || norm(g[F:]) != 0 {
			t.Errorf("full=%v: null-embedding gradients %g (vq, dropped) and %g (ta, kept)", full, norm(g[:F]), norm(g[F:]))
		}
		for _, l := range []*nn.Linear{tr.Model.Reward.FC1, tr.Model.Reward.FC2} {
			if norm(hostOf(l.DWeight)) == 0 {
				t.Errorf("full=%v: zero gradient on a reward MLP layer", full)
			}
		}
	}
}

// A dropped dimension reads its null embedding; a present one does not.
func TestRewardCondNullEmbeddingUsed(t *testing.T) {
	m := condModel(t, 2)
	randomize(m.Reward.Params(), 4, 0.5) // a trained slot
	x, ts, p := fixedInput(m)
	nan := float32(math.NaN())
	out := func(r []float32) []float32 { return hostOf(m.Forward(x, ts, p.IDs, p.Lengths, r)) }
	dropped, kept := []float32{nan, 1, nan, 1}, []float32{0.5, 1, -0.5, 1}
	a, c := out(dropped), out(kept)
	null := hostOf(m.Reward.Null)
	null[0] += 1 // the vq row
	testDev.CopyFromHost(m.Reward.Null, null)
	if b := out(dropped); slices.Equal(a, b) {
		t.Error("changing vq's null embedding does not change a sample with vq dropped")
	}
	if d := out(kept); !slices.Equal(c, d) {
		t.Error("changing vq's null embedding changes a sample with vq given")
	}
}

// On a toy set where vq decides the image (bright for +2, dark for -2), a short run teaches
// the slot: sampling with --reward-condition vq=max (the stored maximum, 2) gives brighter
// images than vq=-2, joint and per-dimension.
func TestRewardCondLearnsCondition(t *testing.T) {
	m := condModel(t, 3)
	D := m.Config.SampleSize()
	cfg := condConfig(150)
	cfg.FullFinetune, cfg.LearningRate, cfg.LRWarmupSteps, cfg.TrainBatchSize = true, 1e-2, 10, 8
	cfg.CheckpointingSteps = 1000
	tr, err := NewTrainer(testDev, m, cfg, toyCondData(8, D), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mean := func(spec string, perDim bool) float64 {
		target, err := guidance.ParseRewardCondition(spec, m.Config.RewardDims, tr.Model.RewardConditionMax)
		if err != nil {
			t.Fatal(err)
		}
		caps := []string{"red apple", "blue car", "green apple", "red apple"}
		o := diffusion.SampleOptions{NumInferenceSteps: 10, GuidanceScale: 1, Seed: 1,
			Velocity: func(m *diffusion.DiT, p diffusion.Prompts) diffusion.VelocityFunc {
				g, err := guidance.NewRewardCFG(m, p, target, 1, 1.5, perDim)
				if err != nil {
					t.Fatal(err)
				}
				return g.Velocity
			}}
		x, _, err := diffusion.Sample(m, caps, o)
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, v := range hostOf(x) {
			s += float64(v)
		}
		return s / float64(x.Len())
	}
	// Untrained, the slot is a no-op: both conditions give the same samples.
	before := [2]float64{mean("vq=max", false), mean("vq=-2", false)}
	if before[0] != before[1] {
		t.Fatalf("fresh slot: vq=max %v, vq=-2 %v; want equal", before[0], before[1])
	}
	for range cfg.MaxTrainSteps {
		tr.TrainOneStep()
	}
	if tr.Model.RewardConditionMax[0] != 2 || tr.Model.RewardConditionMax[1] != 0.5 {
		t.Fatalf("maxima %v, want [2 0.5]", tr.Model.RewardConditionMax)
	}
	for _, perDim := range []bool{false, true} {
		hi, lo := mean("vq=max", perDim), mean("vq=-2", perDim)
		if math.Abs(hi-before[0]) < 1e-9 && math.Abs(lo-before[1]) < 1e-9 {
			t.Errorf("per-dim %v: sampling unchanged by training", perDim)
		}
		t.Logf("per-dim %v: mean pixel vq=max %.3f, vq=-2 %.3f (data: +0.80 and -0.80)", perDim, hi, lo)
		if !(hi > 0.3 && lo < -0.3) {
			t.Errorf("per-dim %v: vq=max gives mean %.3f, vq=-2 %.3f; want bright (> 0.3) and dark (< -0.3)", perDim, hi, lo)
		}
	}
}

// The maxima are the 0.99 quantile of the training conditions and round-trip through the
// output model file into --reward-condition vq=max.
func TestRewardCondMaxRoundTrip(t *testing.T) {
	d := &Data{}
	for i := range 101 {
		d.Items = append(d.Items, Item{Reward: []float32{float32(i), float32(math.NaN())}})
	}
	if got := RewardConditionMax(d, 2); got[0] != 99 || !math.IsNaN(got[1]) {
		t.Fatalf("maxima %v, want [99 NaN]", got)
	}
	if q := quantile([]float64{3, 1, 2, 4}, 0.5); q != 2.5 {
		t.Fatalf("median of 1..4 = %v, want 2.5", q)
	}
	m := condModel(t, 1)
	dir := t.TempDir()
	cfg := condConfig(2)
	tr, err := NewTrainer(testDev, m, cfg, toyCondData(6, m.Config.SampleSize()), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := runTo(t, tr, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tr.AdapterPath()); err == nil {
		t.Error("a reward-cond LoRA run wrote an adapter file (it would lack the slot)")
	}
	maxes, err := diffusion.ReadRewardConditionMax(tr.ModelPath(), []string{"vq", "ta", "mq"})
	if err != nil {
		t.Fatal(err)
	}
	if maxes[0] != 2 || maxes[1] != 0.5 || !math.IsNaN(maxes[2]) {
		t.Fatalf("maxima read back %v, want [2 0.5 NaN]", maxes)
	}
	loaded, err := diffusion.LoadDiT(testDev, tr.ModelPath())
	if err != nil {
		t.Fatal(err)
	}
	if loaded.HasLoRA() || loaded.Reward == nil {
		t.Fatal("model file is not a plain model with a reward slot")
	}
	r, err := guidance.ParseRewardCondition("vq=max,ta=max", loaded.Config.RewardDims, maxes[:2])
	if err != nil || r[0] != 2 || r[1] != 0.5 {
		t.Fatalf("vq=max,ta=max -> %v, %v", r, err)
	}
	// A file without maxima reads as nil (the default maximum applies).
	if got, err := diffusion.ReadRewardConditionMax(tr.CheckpointPath(2), []string{"vq"}); err != nil || got != nil {
		t.Fatalf("checkpoint maxima %v, %v; want none", got, err)
	}
}

// Flow-DPO (LoRA) and Flow-RWR (full) of a model with reward-condition maxima keep them:
// in the adapter file, the merged and the fully fine-tuned model files, and across a resume
// (which does not read the base model file again).
func TestFinetuneKeepsRewardConditionMax(t *testing.T) {
	dims := []string{"vq", "ta"}
	for _, method := range []string{MethodDPO, MethodRWR} {
		m := condModel(t, 2)
		m.RewardConditionMax = []float64{1.5, math.NaN()}
		D := m.Config.SampleSize()
		data := memPairs(4, D)
		cfg := tinyConfig(method, 3)
		if method == MethodRWR {
			data, cfg.FullFinetune = memItems(6, D), true
		}
		dir := t.TempDir()
		tr, err := NewTrainer(testDev, m, cfg, data, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := runTo(t, tr, 2); !errors.Is(err, diffusion.ErrInterrupted) {
			t.Fatalf("%s: run to step 2: %v", method, err)
		}
		r, err := ResumeTrainer(testDev, tr.CheckpointPath(2), cfg, data, dir)
		if err != nil {
			t.Fatal(err)
		}
		r.MergeLoRA = !cfg.FullFinetune
		if err := r.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		files := []string{r.ModelPath()}
		if !cfg.FullFinetune {
			files = append(files, r.AdapterPath())
		}
		for _, f := range files {
			got, err := diffusion.ReadRewardConditionMax(f, dims)
			if err != nil || len(got) != 2 || got[0] != 1.5 || !math.IsNaN(got[1]) {
				t.Errorf("%s: %s: maxima %v (%v), want [1.5 NaN]", method, filepath.Base(f), got, err)
			}
		}
		loaded, err := diffusion.LoadDiT(testDev, r.ModelPath())
		if err != nil {
			t.Fatal(err)
		}
		if got := loaded.RewardConditionMax; len(got) != 2 || got[0] != 1.5 || !math.IsNaN(got[1]) {
			t.Errorf("%s: loaded model's maxima %v", method, got)
		}
	}
}

// A reward-cond run interrupted and resumed matches the straight run bit for bit.
func TestRewardCondExactResume(t *testing.T) {
	const K = 6
	cfg := condConfig(K)
	cfg.EMADecay, cfg.GradientAccumulationSteps = 0.9, 2
	D := condModel(t, 1).Config.SampleSize()
	data := toyCondData(7, D)
	dirA, dirB := t.TempDir(), t.TempDir()
	a, err := NewTrainer(testDev, condModel(t, 1), cfg, data, dirA)
	if err != nil {
		t.Fatal(err)
	}
	if err := runTo(t, a, 0); err != nil {
		t.Fatal(err)
	}
	b, _ := NewTrainer(testDev, condModel(t, 1), cfg, data, dirB)
	if err := runTo(t, b, 3); !errors.Is(err, diffusion.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	c, err := ResumeTrainer(testDev, b.CheckpointPath(3), cfg, data, dirB)
	if err != nil {
		t.Fatal(err)
	}
	if err := runTo(t, c, 0); err != nil {
		t.Fatal(err)
	}
	for i := range K {
		if a.Log[i].Loss != c.Log[i].Loss || a.Log[i].GradNorm != c.Log[i].GradNorm {
			t.Errorf("step %d: loss %v / %v, grad norm %v / %v", i+1, a.Log[i].Loss, c.Log[i].Loss, a.Log[i].GradNorm, c.Log[i].GradNorm)
		}
	}
	fa, _ := os.ReadFile(a.ModelPath())
	fb, _ := os.ReadFile(c.ModelPath())
	if len(fa) == 0 || !bytes.Equal(fa, fb) {
		t.Error("model.safetensors differs between the straight and the resumed run")
	}
	// Other reward conditions on the same images and prompts are other data.
	other := toyCondData(7, D)
	other.Items[0].Reward = []float32{1.5, 0.5}
	if _, err := ResumeTrainer(testDev, b.CheckpointPath(3), cfg, other, dirB); err == nil {
		t.Error("resume with other reward conditions accepted")
	}
}

// fakeImages is a TrainingData of n 4x4 RGB images of constant value and distinct captions.
type fakeImages struct{ caps []string }

func (f fakeImages) Len() int             { return len(f.caps) }
func (f fakeImages) Caption(i int) string { return f.caps[i] }
func (f fakeImages) Sample(d []float32, i int) {
	for j := range d {
		d[j] = float32(i)/4 - 0.5
	}
}

// fakeReward scores ta = 1 when the prompt is the image's own caption (by its brightness),
// else -1, and vq = minus the spread of the pixels (a degraded constant image spreads).
type fakeReward struct{ caps []string }

func (f fakeReward) Dims() []string { return []string{"ta", "vq"} }
func (f fakeReward) Score(b rewards.Batch) ([][]float32, error) {
	h := hostOf(b.Pixels)
	S := len(h) / b.Len()
	out := make([][]float32, b.Len())
	for i := range out {
		px := h[i*S : (i+1)*S]
		lo, hi := slices.Min(px), slices.Max(px)
		own := f.caps[min(max(int(math.Round(float64((px[0]+0.5)*4))), 0), len(f.caps)-1)] // degraded: any
		ta := float32(-1)
		if b.Prompts[i] == own {
			ta = 1
		}
		out[i] = []float32{ta, -(hi - lo)}
	}
	return out, nil
}

func TestRewardCondBuildSet(t *testing.T) {
	m := condModel(t, 1)
	src := fakeImages{[]string{"red apple", "blue car", "green apple"}}
	o := DefaultCondSetOptions()
	o.Degraded, o.BatchSize = 2, 4
	d, st, err := BuildCondData(testDev, src, "toy", fakeReward{src.caps}, &m.Config, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 3*4 || st.Count[CondClean] != 3 || st.Count[CondDegraded] != 6 || st.Count[CondMismatched] != 3 {
		t.Fatalf("%d items, counts %v", len(d.Items), st.Count)
	}
	for i, it := range d.Items {
		kind := []string{CondClean, CondDegraded, CondDegraded, CondMismatched}[i%4]
		own := src.caps[i/4]
		switch kind {
		case CondClean:
			if it.Prompt != own || it.Reward[0] != 0 || it.Reward[1] != 1 {
				t.Errorf("clean item %d: %q, condition %v (want vq 0, ta 1: the model's order)", i, it.Prompt, it.Reward)
			}
		case CondDegraded:
			if it.Prompt != own || !strings.Contains(d.Store.Paths[it.Sample], "toy#") || it.Sample == d.Items[i-i%4].Sample {
				t.Errorf("degraded item %d: %q, sample %s", i, it.Prompt, d.Store.Paths[it.Sample])
			}
		case CondMismatched:
			if it.Prompt == own || it.Reward[1] != -1 || it.Sample != d.Items[i-3].Sample {
				t.Errorf("mismatched item %d: %q, condition %v", i, it.Prompt, it.Reward)
			}
		}
	}
	if !(st.Mean[CondDegraded][0] < st.Mean[CondClean][0]) || !(st.Mean[CondMismatched][1] < st.Mean[CondClean][1]) {
		t.Errorf("means %v: want degraded below clean on vq and mismatched below clean on ta", st.Mean)
	}
	again, _, _ := BuildCondData(testDev, src, "toy", fakeReward{src.caps}, &m.Config, o)
	if again.Fingerprint() != d.Fingerprint() {
		t.Error("the same options build another set")
	}
	o.Seed++
	if other, _, _ := BuildCondData(testDev, src, "toy", fakeReward{src.caps}, &m.Config, o); other.Fingerprint() == d.Fingerprint() {
		t.Error("another seed builds the same set")
	}
}

// fakeClips is a TrainingData of n clips of 4 frames of 4x4 RGB: clip i's frame t is the
// constant -0.9 + 0.2t + 0.01i, so its frames brighten in order.
type fakeClips struct{ caps []string }

func (f fakeClips) Len() int             { return len(f.caps) }
func (f fakeClips) Caption(i int) string { return f.caps[i] }
func (f fakeClips) Sample(d []float32, i int) {
	n := len(d) / 4
	for j := range d {
		d[j] = -0.9 + 0.2*float32(j/n) + 0.01*float32(i)
	}
}

// fakeClipReward scores ta = 1 for the clip's own caption (read from frame 0's first pixel),
// vq = minus the spread of frame 0, mq = 1 when the frames' means strictly increase, else -1.
type fakeClipReward struct{ caps []string }

func (f fakeClipReward) Dims() []string { return []string{"vq", "ta", "mq"} }
func (f fakeClipReward) Score(b rewards.Batch) ([][]float32, error) {
	h := hostOf(b.Pixels)
	S := len(h) / b.Len()
	n := S / 4
	out := make([][]float32, b.Len())
	for i := range out {
		clip := h[i*S : (i+1)*S]
		f0 := clip[:n]
		own := f.caps[min(max(int(math.Round(float64((f0[0]+0.9)/0.01))), 0), len(f.caps)-1)]
		ta := float32(-1)
		if b.Prompts[i] == own {
			ta = 1
		}
		mq, last := float32(1), float32(math.Inf(-1))
		for t := range 4 {
			var mean float32
			for _, v := range clip[t*n : (t+1)*n] {
				mean += v / float32(n)
			}
			if mean <= last {
				mq = -1
			}
			last = mean
		}
		out[i] = []float32{-(slices.Max(f0) - slices.Min(f0)), ta, mq}
	}
	return out, nil
}

// For a video model the set adds motion-corrupted copies, which lower mq.
func TestRewardCondBuildSetVideo(t *testing.T) {
	cfg := diffusion.ModelConfig{Kind: diffusion.KindVideo, ImageSize: 4, Channels: 3, Frames: 4, PatchSize: 2, TubeletFrames: 2,
		RewardDims: []string{"vq", "ta", "mq"}}
	src := fakeClips{[]string{"a red apple moving left", "a blue car bouncing", "a green apple zooming in"}}
	o := DefaultCondSetOptions()
	o.Corrupted, o.BatchSize = 2, 4
	d, st, err := BuildCondData(testDev, src, "clips", fakeClipReward{src.caps}, &cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 3*5 || st.Count[CondClean] != 3 || st.Count[CondDegraded] != 3 || st.Count[CondMismatched] != 3 ||
		st.Count[CondCorrupted] != 6 {
		t.Fatalf("%d items, counts %v", len(d.Items), st.Count)
	}
	for i, it := range d.Items {
		if kind := []string{CondClean, CondDegraded, CondMismatched, CondCorrupted, CondCorrupted}[i%5]; kind == CondCorrupted {
			if path := d.Store.Paths[it.Sample]; it.Prompt != src.caps[i/5] || !strings.Contains(path, "clips#") || it.Sample == d.Items[i-i%5].Sample {
				t.Errorf("corrupted item %d: %q, sample %s", i, it.Prompt, path)
			}
		}
	}
	const mq = 2
	if st.Mean[CondClean][mq] != 1 || !(st.Mean[CondCorrupted][mq] < st.Mean[CondClean][mq]) {
		t.Errorf("mq means %v (clean) and %v (corrupted): want corrupted below clean's 1", st.Mean[CondClean], st.Mean[CondCorrupted])
	}
	// An image model's set has no corrupted copies whatever the option says.
	img := cfg
	img.Kind, img.Frames, img.TubeletFrames, img.RewardDims = diffusion.KindImage, 1, 1, []string{"vq", "ta"}
	di, sti, err := BuildCondData(testDev, fakeImages{src.caps}, "img", fakeReward{src.caps}, &img, o)
	if err != nil {
		t.Fatal(err)
	}
	if sti.Count[CondCorrupted] != 0 || len(di.Items) != 3*3 {
		t.Errorf("image set: %d items, counts %v", len(di.Items), sti.Count)
	}
}
