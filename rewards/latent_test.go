// Tests of the noise-aware latent reward model: finite-difference gradients of a tiny model
// with respect to x_t and a few weights (image and video), weights copied from a generator
// file, save/load, clean models refused by RequireNoiseAware, identical noise and t on both
// sides of every training pair, exact resume of a latent run, the t buckets of its
// evaluation, and rows of a batch scored with their own captions only.
//
// Run: go test ./rewards -run Latent
package rewards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// tinyGeneratorConfig is a small DiT for tok: 3 blocks, a text width other than C
// (text_proj) and a reward slot (reward_embedder), so every copied part is exercised.
func tinyGeneratorConfig(kind string, size int, tok *diffusion.Tokenizer) diffusion.ModelConfig {
	cfg := diffusion.ModelConfig{Kind: kind, ImageSize: size, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 16, Depth: 3, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2,
		MaxTextLen: tok.MaxLen, VocabSize: tok.VocabSize(), RewardFreq: 4, RewardDims: []string{DimVQ}, Shift: 1}
	if kind == diffusion.KindVideo {
		cfg.Frames, cfg.TubeletFrames = 4, 2
	}
	return cfg
}

func newTinyGenerator(t testing.TB, cfg diffusion.ModelConfig, tok *diffusion.Tokenizer) *diffusion.DiT {
	t.Helper()
	g, err := diffusion.NewDiT(testDev, &kernels.RNG{Seed: 21}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Tokenizer = tok
	return g
}

func tinyGenerator(t testing.TB, kind string, size int, tok *diffusion.Tokenizer) *diffusion.DiT {
	return newTinyGenerator(t, tinyGeneratorConfig(kind, size, tok), tok)
}

// perturb adds N(0, std^2) to every weight, so that the zero-initialised adaLN gates and
// output layers of a fresh generator do not hide any path.
func perturb(ps []nn.Param, r *rand.Rand, std float64) {
	for _, p := range ps {
		v := toHost(p.W)
		for i := range v {
			v[i] += float32(r.NormFloat64() * std)
		}
		p.W.Dev.CopyFromHost(p.W, v)
	}
}

func TestLatentGradients(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		words float64
	}{{KindImage, 0}, {KindVideo, 0}, {KindImage, 3}, {KindVideo, 1}} {
		kind := tc.kind
		t.Run(fmt.Sprintf("%s/word_scale=%v", kind, tc.words), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			tok := tinyTokenizer(t)
			gen := tinyGenerator(t, kind, 8, tok)
			dims := []string{DimVQ, DimTA}
			if kind == KindVideo {
				dims = append(dims, DimMQ)
			}
			m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: 5}, gen, LatentConfig{Blocks: 2, HeadHidden: 12, WordScale: tc.words, Dims: dims})
			if err != nil {
				t.Fatal(err)
			}
			perturb(m.Params(), r, 0.2)
			want := 11
			if tc.words > 0 {
				want++ // word_embedding.weight
			}
			B := 2
			xt := hostTensor(r, 0.7, m.Config.Generator.BatchShape(B)...)
			ts := []float32{0.3, 0.85}
			prompts := []string{"red apple", "a dog moving left green"}
			R := zeros(B, len(dims))
			for b := range R {
				for d := range R[b] {
					R[b][d] = float32(r.NormFloat64())
				}
			}
			nn.ZeroGrad(m.Params())
			forward := func() [][]float32 { return m.Forward(xt, ts, prompts) }
			forward()
			dx := toHost(m.Backward(R))
			fdCheck(t, "x_t", forward, R, xt, dx, 24, r)
			checked := 0
			for _, p := range m.Params() {
				switch p.Name {
				case "x_embedder.proj.weight", "t_embedder.mlp.0.weight", "text_encoder.token_embedding.weight",
					"text_proj.weight", "pooled_text_proj.weight", "reward_embedder.null_embedding",
					"blocks.0.attn.qkv.weight", "blocks.1.adaLN_modulation.1.weight", "heads.ta.fc1.weight", "heads.vq.norm.weight", "heads.vq.fc2.bias",
					"word_embedding.weight":
					fdCheck(t, p.Name, forward, R, p.W, toHost(p.G), 8, r)
					checked++
				}
			}
			if checked != want {
				t.Errorf("%d of the %d weights checked", checked, want)
			}
			// ScoreAndGrad of a frozen model gives the same x_t gradient for weights w = R's row.
			m.SetTrainable(false)
			w := make([]float64, len(dims))
			for d := range w {
				w[d] = float64(R[0][d])
			}
			Rw := zeros(B, len(dims))
			for b := range Rw {
				for d := range Rw[b] {
					Rw[b][d] = float32(w[d])
				}
			}
			_, g, err := m.ScoreAndGrad(Batch{Pixels: xt, Prompts: prompts, Timesteps: ts}, w)
			if err != nil {
				t.Fatal(err)
			}
			fdCheck(t, "ScoreAndGrad x_t", forward, Rw, xt, toHost(g), 12, r)
		})
	}
}

func TestLatentFromGeneratorFile(t *testing.T) {
	tok := tinyTokenizer(t)
	gen := tinyGenerator(t, KindImage, 8, tok)
	perturb(gen.Params(), rand.New(rand.NewPCG(1, 1)), 0.1)
	dir := t.TempDir()
	gpath := filepath.Join(dir, "base.safetensors")
	if err := gen.Save(gpath); err != nil {
		t.Fatal(err)
	}
	g2, err := diffusion.LoadDiT(testDev, gpath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewLatentFromGenerator(testDev, nil, g2, LatentConfig{Blocks: 4, Dims: []string{DimVQ}, Source: gpath}); err == nil {
		t.Error("K = 4 of a 3-block generator accepted")
	}
	if _, err := NewLatentFromGenerator(testDev, nil, g2, LatentConfig{Dims: []string{DimVQ}, Source: gpath}); err == nil {
		t.Error("K = 0 accepted")
	}
	m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: 2}, g2, LatentConfig{Blocks: 2, Dims: []string{DimVQ, DimTA}, Source: gpath})
	if err != nil {
		t.Fatal(err)
	}
	// Every backbone weight is the generator's; blocks.2 and final_layer are left out.
	gw := map[string]string{}
	for _, p := range g2.Params() {
		gw[p.Name] = fmt.Sprint(toHost(p.W))
	}
	n := 0
	for _, p := range m.Params() {
		if strings.HasPrefix(p.Name, "heads.") {
			continue
		}
		n++
		if gw[p.Name] != fmt.Sprint(toHost(p.W)) {
			t.Errorf("%s differs from the generator's", p.Name)
		}
		if strings.HasPrefix(p.Name, "blocks.2") || strings.HasPrefix(p.Name, "final_layer") {
			t.Errorf("%s copied", p.Name)
		}
	}
	if n == 0 {
		t.Fatal("no backbone parameters")
	}

	// Save and load: same scores, frozen, calibration kept, marked noise-aware.
	m.Calib = &Calibration{Dims: m.Dims(), Mean: []float64{0.1, 0.2}, Std: []float64{1, 2}, N: 4, TieEps: []float64{0.01, 0.02}}
	path := filepath.Join(dir, "latent.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadLatent(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	xt := hostTensor(r, 0.5, 3, 3, 8, 8)
	b := Batch{Pixels: xt, Prompts: []string{"red apple", "", "unknown words"}, Timesteps: []float32{0, 0.5, 0.99}}
	a, _ := m.Score(b)
	c, err := back.Score(b)
	if err != nil || fmt.Sprint(a) != fmt.Sprint(c) {
		t.Errorf("scores after load %v (%v), before %v", c, err, a)
	}
	for _, p := range back.Params() {
		if p.G != nil {
			t.Fatalf("%s trainable after LoadLatent", p.Name)
		}
	}
	if back.Calib == nil || back.Calib.Std[1] != 2 || back.Config.Blocks != 2 || back.Config.Source != gpath {
		t.Errorf("after load: calibration %+v, config %+v", back.Calib, back.Config)
	}
	// t matters, and a batch without timesteps is scored as clean (t = 0).
	b2 := b
	b2.Timesteps = []float32{0.7, 0.5, 0.99}
	if s, _ := back.Score(b2); s[0][0] == c[0][0] {
		t.Error("the score does not depend on t")
	}
	b2.Timesteps = nil
	if s, _ := back.Score(b2); s[0][0] != c[0][0] {
		t.Error("no timesteps is not t = 0")
	}
	b2.Timesteps = []float32{0, 1.5, 0}
	if _, err := back.Score(b2); err == nil {
		t.Error("t = 1.5 accepted")
	}

	// LoadModel tells the two kinds apart; guidance refuses the clean one.
	lm, err := LoadModel(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RequireNoiseAware(lm, path); err != nil {
		t.Errorf("latent model refused: %v", err)
	}
	nat, err := NewNative(testDev, &kernels.RNG{Seed: 1}, tinyConfig(KindImage), tok)
	if err != nil {
		t.Fatal(err)
	}
	npath := filepath.Join(dir, "native.safetensors")
	if err := nat.Save(npath); err != nil {
		t.Fatal(err)
	}
	nm, err := LoadModel(testDev, npath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RequireNoiseAware(nm, npath); !errors.Is(err, ErrNotNoiseAware) || !strings.Contains(err.Error(), "--latent") {
		t.Errorf("clean model: %v", err)
	}
	if _, err := LoadLatent(testDev, npath); err == nil || !strings.Contains(err.Error(), ModelTypeNative) {
		t.Errorf("native file loaded as latent: %v", err)
	}
	if _, err := LoadNative(testDev, path); err == nil {
		t.Error("latent file loaded as native")
	}
	if _, err := LoadModel(testDev, gpath); err == nil {
		t.Error("generator file loaded as a reward model")
	}
}

// tinyGeneratorSetup returns a pair generator on the synthetic data and a tiny random 32x32
// generator (patch 8, no reward slot) for its captions.
func tinyGeneratorSetup(t *testing.T, pc PairConfig) (*PairGen, *diffusion.DiT) {
	t.Helper()
	d, _ := synthData(false)
	gen, err := NewPairGen(d, nil, pc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := BuildTokenizer(gen, 8)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := tinyGeneratorConfig(KindImage, 32, tok)
	gcfg.PatchSize, gcfg.RewardDims = 8, []string{}
	return gen, newTinyGenerator(t, gcfg, tok)
}

// tinyLatentSetup is tinyTrainSetup for a latent model cut from a tiny 32x32 generator.
func tinyLatentSetup(t *testing.T, dir string, steps int) *Trainer {
	t.Helper()
	cfg := DefaultTrainConfig()
	cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.LRWarmupSteps, cfg.LearningRate = 6, steps, 2, 1e-3
	cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs, cfg.Seed = 2, 16, 40, 9
	cfg.TimestepSampling = TimestepLogitNormal
	gen, g := tinyGeneratorSetup(t, cfg.PairConfig([]string{DimVQ, DimTA}))
	m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: cfg.Seed}, g, LatentConfig{Blocks: 2, Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewLatentTrainer(testDev, m, cfg, gen, dir)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestLatentIdenticalNoise(t *testing.T) {
	tr := tinyLatentSetup(t, t.TempDir(), 2)
	const s = 7
	N, L := tr.Cfg.TrainBatchSize, tr.Gen.SampleLen()
	pairs, err := tr.Gen.Pairs(SplitTrain, N, tr.Cfg.Seed, s)
	if err != nil {
		t.Fatal(err)
	}
	_, ts := tr.renderStep(pairs, s)
	xt := toHost(tr.pixels)
	clean := make([]float32, 2*N*L)
	renderPairsHost(tr.Gen, pairs, clean)
	if len(ts) != 2*N {
		t.Fatalf("%d timesteps for %d samples", len(ts), 2*N)
	}
	distinct := map[float32]bool{}
	for i := range N {
		tA, tB := ts[i], ts[N+i]
		if tA != tB || !(tA > 0 && tA < 1) {
			t.Fatalf("pair %d: t %v and %v", i, tA, tB)
		}
		distinct[tA] = true
		// eps = (x_t - (1-t) x0) / t must be the same draw on both sides.
		maxDiff, norm := 0.0, 0.0
		for j := range L {
			eA := (float64(xt[i*L+j]) - (1-float64(tA))*float64(clean[i*L+j])) / float64(tA)
			eB := (float64(xt[(N+i)*L+j]) - (1-float64(tA))*float64(clean[(N+i)*L+j])) / float64(tA)
			maxDiff = max(maxDiff, math.Abs(eA-eB))
			norm += eA * eA
		}
		if maxDiff > 1e-3/float64(tA) {
			t.Errorf("pair %d (t %.3f): the two sides have different noise (max |eps_A - eps_B| %.3g)", i, tA, maxDiff)
		}
		if v := norm / float64(L); v < 0.7 || v > 1.3 {
			t.Errorf("pair %d: noise variance %.3f, want about 1", i, v)
		}
	}
	if len(distinct) < N {
		t.Errorf("%d distinct t among %d pairs", len(distinct), N)
	}
	// A function of (seed, step): drawn again, the same inputs.
	tr.renderStep(pairs, s)
	if fmt.Sprint(toHost(tr.pixels)) != fmt.Sprint(xt) {
		t.Error("the noised inputs of a step are not reproducible")
	}
	if tr.renderStep(pairs, s+1); fmt.Sprint(toHost(tr.pixels)) == fmt.Sprint(xt) {
		t.Error("two steps share their noise")
	}
}

func TestLatentTrainResumeExact(t *testing.T) {
	dirA, dirB := t.TempDir(), t.TempDir()
	a := tinyLatentSetup(t, dirA, 4)
	if err := a.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	b := tinyLatentSetup(t, dirB, 4)
	ctx, cancel := context.WithCancel(context.Background())
	b.Progress = func(e LogEntry) {
		if e.Step == 2 {
			cancel()
		}
	}
	if err := b.Run(ctx, 0); err != ErrInterrupted {
		t.Fatalf("interrupted run: %v", err)
	}
	ckPath := filepath.Join(dirB, "checkpoint-2.safetensors")
	if ok, err := IsLatentCheckpoint(ckPath); !ok || err != nil {
		t.Fatalf("IsLatentCheckpoint: %v %v", ok, err)
	}
	if _, _, _, err := ReadTrainingCheckpoint(ckPath); err == nil {
		t.Error("latent checkpoint read as a native one")
	}
	ck, m, err := ReadLatentTrainingCheckpoint(testDev, ckPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewLatentTrainer(testDev, m, b.Cfg, b.Gen, dirB)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resume(ck); err != nil {
		t.Fatal(err)
	}
	if err := c.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	for i := range a.Log {
		if a.Log[i].Loss != c.Log[i].Loss {
			t.Errorf("step %d: loss %v uninterrupted, %v resumed", i+1, a.Log[i].Loss, c.Log[i].Loss)
		}
	}
	pa, pc := a.Latent.Params(), c.Latent.Params()
	for i := range pa {
		if fmt.Sprint(toHost(pa[i].W)) != fmt.Sprint(toHost(pc[i].W)) {
			t.Fatalf("%s differs after resume", pa[i].Name)
		}
	}
	// The model file: calibrated, noise-aware.
	lm, err := LoadLatent(testDev, filepath.Join(dirA, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if lm.Calib == nil || lm.Calib.N != 32 || len(lm.Calib.TieEps) != 2 {
		t.Errorf("calibration %+v", lm.Calib)
	}
	// eval.json: overall accuracy and LatentEvalBuckets t buckets covering every pair.
	js, err := os.ReadFile(filepath.Join(dirA, "eval.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep EvalReport
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.NoiseAware || len(rep.Dims) != 2 || len(rep.TimeBuckets) != LatentEvalBuckets {
		t.Fatalf("eval.json %s", js)
	}
	sum := 0
	for k, bk := range rep.TimeBuckets {
		sum += bk.Pairs
		if len(bk.Dims) != 2 || math.Abs(bk.Lo-float64(k)*0.2) > 1e-12 || math.Abs(bk.Hi-bk.Lo-0.2) > 1e-12 {
			t.Errorf("bucket %d: %+v", k, bk)
		}
		if bk.Dims[0].Pairs+bk.Dims[1].Pairs != bk.Pairs {
			t.Errorf("bucket %d: %d pairs, %d + %d per dimension", k, bk.Pairs, bk.Dims[0].Pairs, bk.Dims[1].Pairs)
		}
	}
	if sum != a.Cfg.EvalPairs {
		t.Errorf("buckets hold %d pairs, want %d", sum, a.Cfg.EvalPairs)
	}
	// t <= 0.5 holds the first two and a half buckets' pairs (t is uniform inside a bucket).
	if lo := rep.LowNoise; lo == nil || lo.Hi != LowNoiseT || lo.Pairs <= rep.TimeBuckets[0].Pairs+rep.TimeBuckets[1].Pairs ||
		lo.Pairs >= sum-rep.TimeBuckets[3].Pairs-rep.TimeBuckets[4].Pairs || lo.Dims[0].Pairs+lo.Dims[1].Pairs != lo.Pairs {
		t.Errorf("t <= 0.5: %+v, buckets %+v", lo, rep.TimeBuckets)
	}
	// The same evaluation again gives the same numbers (noise from the seed alone), whatever the batch.
	r1, err := EvaluateLatent(lm, a.Gen, SplitHeldOut, 20, 5, 8)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := EvaluateLatent(lm, a.Gen, SplitHeldOut, 20, 5, 14)
	if err != nil {
		t.Fatal(err)
	}
	j1, _ := json.Marshal(r1.TimeBuckets)
	j2, _ := json.Marshal(r2.TimeBuckets)
	if string(j1) != string(j2) && kernels.BatchInvariant() {
		t.Errorf("evaluation depends on the batch size:\n%s\n%s", j1, j2)
	}
}

func TestLatentTimestepSampling(t *testing.T) {
	for _, s := range []string{TimestepUniform, TimestepLogitNormal} {
		ts := trainTimes(4000, 1, 2, s)
		mid := 0
		for _, v := range ts {
			if !(v >= 0 && v < 1) {
				t.Fatalf("%s: t = %v", s, v)
			}
			if v >= 0.25 && v < 0.75 {
				mid++
			}
		}
		// Uniform puts half the mass in [.25,.75); logit-normal(0,1) about 0.74.
		want := map[string]float64{TimestepUniform: 0.5, TimestepLogitNormal: 0.74}[s]
		if f := float64(mid) / 4000; math.Abs(f-want) > 0.04 {
			t.Errorf("%s: %.3f of t in [.25,.75), want about %.2f", s, f, want)
		}
	}
	ts, bucket := evalTimes(30, 2, 1, 0)
	for i, v := range ts {
		if k := int(v * LatentEvalBuckets); k != bucket[i] || bucket[i] != (i/2)%LatentEvalBuckets {
			t.Errorf("pair %d: t %v in bucket %d", i, v, bucket[i])
		}
	}
	cfg := DefaultTrainConfig()
	cfg.TimestepSampling = "cosmap"
	if err := cfg.Validate(); err == nil {
		t.Error("unknown timestep sampling accepted")
	}
	if !slices.Contains(TimestepSamplers, TimestepUniform) {
		t.Error("uniform is not a sampler")
	}
}

// TestLatentRowsIndependent: in a batch of distinct prompts (of different lengths, so that
// the caption masks and key biases differ per row), row i's scores and x_t gradient are
// those of row i scored alone with its own caption and t, and changing another row's
// caption leaves them unchanged while changing row i's own caption does not: Flow-NRG's
// gradient for a sample depends on its caption and only on it.
func TestLatentRowsIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	tok := tinyTokenizer(t)
	gen := tinyGenerator(t, KindImage, 8, tok)
	m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: 6}, gen, LatentConfig{Blocks: 2, HeadHidden: 12, Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	perturb(m.Params(), r, 0.2)
	m.SetTrainable(false)
	prompts := []string{"red apple", "a dog moving left", "blue car", "green apple"}
	ts := []float32{0.1, 0.4, 0.7, 0.95}
	B, S := len(prompts), m.Config.Generator.SampleSize()
	xt := hostTensor(r, 0.7, m.Config.Generator.BatchShape(B)...)
	xh := toHost(xt)
	w := []float64{0, 1} // ta only
	grad := func(x []float32, ps []string, tt []float32) ([][]float32, []float32) {
		t.Helper()
		n := len(ps)
		s, g, err := m.ScoreAndGrad(Batch{Pixels: testDev.FromHost(x, m.Config.Generator.BatchShape(n)...), Prompts: ps, Timesteps: tt}, w)
		if err != nil {
			t.Fatal(err)
		}
		return s, toHost(g)
	}
	near := func(a, b []float32) bool {
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-5*(1+math.Abs(float64(b[i]))) {
				return false
			}
		}
		return true
	}
	s, g := grad(xh, prompts, ts)
	for i := range B {
		si, gi := grad(xh[i*S:(i+1)*S], prompts[i:i+1], ts[i:i+1])
		if !near(s[i], si[0]) || !near(g[i*S:(i+1)*S], gi) {
			t.Errorf("row %d (%q): batched scores %v, alone %v; gradients equal: %v", i, prompts[i], s[i], si[0], near(g[i*S:(i+1)*S], gi))
		}
	}
	// Another caption for row 1 only.
	other := slices.Clone(prompts)
	other[1] = "blue car"
	s2, g2 := grad(xh, other, ts)
	for i := range B {
		same := near(s2[i], s[i]) && near(g2[i*S:(i+1)*S], g[i*S:(i+1)*S])
		if same != (i != 1) {
			t.Errorf("row %d after changing row 1's caption: scores and gradient unchanged = %v, want %v", i, same, i != 1)
		}
	}
}

// The word embedding survives save and load (config, E_w), a file without the field reads
// as none, and a negative scale is refused.
func TestLatentWordEmbeddingSaveLoad(t *testing.T) {
	tok := tinyTokenizer(t)
	gen := tinyGenerator(t, KindImage, 8, tok)
	m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: 2}, gen, LatentConfig{Blocks: 2, WordScale: 2, Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	perturb(m.Params(), rand.New(rand.NewPCG(2, 2)), 0.1)
	path := filepath.Join(t.TempDir(), "latent.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadLatent(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Words == nil || back.Words.DWeight != nil || back.Config.WordScale != 2 {
		t.Fatalf("after load: config %+v, word embedding %v", back.Config, back.Words)
	}
	b := Batch{Pixels: hostTensor(rand.New(rand.NewPCG(5, 5)), 0.5, 2, 3, 8, 8), Prompts: []string{"red apple", "a dog"}, Timesteps: []float32{0.1, 0.6}}
	a, _ := m.Score(b)
	c, err := back.Score(b)
	if err != nil || fmt.Sprint(a) != fmt.Sprint(c) {
		t.Errorf("scores after load %v (%v), before %v", c, err, a)
	}
	cfg, err := ParseLatentConfig([]byte(`{"generator":` + string(mustJSON(t, gen.Config)) + `,"latent_blocks":1,"head_hidden":0,"dims":["vq"]}`))
	if err != nil || cfg.WordScale != 0 {
		t.Errorf("config without word_embedding_scale: %+v, %v", cfg, err)
	}
	if _, err := ParseLatentConfig([]byte(`{"generator":` + string(mustJSON(t, gen.Config)) + `,"latent_blocks":1,"head_hidden":0,"word_embedding_scale":-1,"dims":["vq"]}`)); err == nil || !strings.Contains(err.Error(), "word_embedding_scale must be") {
		t.Errorf("word_embedding_scale -1: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// E_w starts at zero: a fresh model with the word embedding scores as the one without.
func TestLatentWordEmbeddingStartsAsCut(t *testing.T) {
	tok := tinyTokenizer(t)
	gen := tinyGenerator(t, KindImage, 8, tok)
	b := Batch{Pixels: hostTensor(rand.New(rand.NewPCG(7, 7)), 0.5, 2, 3, 8, 8), Prompts: []string{"red apple", "a dog"}, Timesteps: []float32{0.2, 0.7}}
	var scores [2]string
	for i, scale := range []float64{0, 4} {
		m, err := NewLatentFromGenerator(testDev, &kernels.RNG{Seed: 3}, gen, LatentConfig{Blocks: 2, WordScale: scale, Dims: []string{DimVQ, DimTA}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.Score(b)
		if err != nil {
			t.Fatal(err)
		}
		scores[i] = fmt.Sprint(s)
	}
	if scores[0] != scores[1] {
		t.Errorf("with a fresh word embedding %s, without %s", scores[1], scores[0])
	}
}
