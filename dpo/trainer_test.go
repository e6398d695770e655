// Tests of the steps and the loop on a tiny randomly initialised DiT: winner and loser share
// t and noise, the reference is frozen and equals the policy at step 0 (inside = 0, loss =
// ln 2), RWR weights scale the loss, exact resume (bit-identical losses and outputs), the
// merged model loads and samples, adapters apply, the plot, and a step with a non-finite
// loss skipped, logged and survived (too many in a row end the run).
//
// Test: go test ./dpo -run 'Step|Shared|Reference|Trainer|Resume|Output|Plot|Config'

package dpo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// tinyModel is a 4x4 RGB image DiT with every weight drawn from N(0, 0.2^2) (a "trained"
// model: a fresh one predicts v = 0).
func tinyModel(t testing.TB, seed uint64) *diffusion.DiT { return tinyModelOn(t, testDev, seed) }

// tinyModelOn is tinyModel on device dev.
func tinyModelOn(t testing.TB, dev kernels.Device, seed uint64) *diffusion.DiT {
	t.Helper()
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "blue car", "green apple"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg := diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: 4, Channels: 3, Frames: 1, PatchSize: 2, TubeletFrames: 1,
		Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 6, TextHeads: 2, MaxTextLen: 4,
		VocabSize: tok.VocabSize(), RewardFreq: 4, RewardDims: []string{}, Shift: 1}
	m, err := diffusion.NewDiT(dev, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tok
	randomize(m.Params(), seed, 0.2)
	return m
}

func randomize(ps []nn.Param, seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 77))
	for _, p := range ps {
		v := make([]float32, p.W.Len())
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		p.W.Dev.CopyFromHost(p.W, v)
	}
}

// memStore is a store of n random samples of D bytes.
func memStore(n, D int, seed uint64) *Store {
	r := rand.New(rand.NewPCG(seed, 5))
	s := &Store{index: map[string]int{}}
	for i := range n {
		b := make([]uint8, D)
		for j := range b {
			b[j] = uint8(r.IntN(256))
		}
		p := filepath.Join("mem", string(rune('a'+i))+".png")
		s.index[p] = i
		s.Paths = append(s.Paths, p)
		s.Data = append(s.Data, b)
	}
	return s
}

var prompts = []string{"red apple", "blue car", "green apple"}

// memPairs is n pairs over 2n random samples, pair 3 a tie.
func memPairs(n, D int) *Data {
	d := &Data{Store: memStore(2*n, D, 1)}
	for i := range n {
		d.Pairs = append(d.Pairs, PairItem{Prompt: prompts[i%3], Chosen: 2 * i, Rejected: 2*i + 1, Tie: i == 3})
	}
	return d
}

// memItems is n weighted samples.
func memItems(n, D int) *Data {
	d := &Data{Store: memStore(n, D, 2)}
	for i := range n {
		d.Items = append(d.Items, Item{Prompt: prompts[i%3], Sample: i, Weight: 0.5 + float64(i%4)/2})
	}
	return d
}

func tinyConfig(method string, steps int) Config {
	c := DefaultConfig()
	c.Method, c.Seed, c.TrainBatchSize, c.MaxTrainSteps = method, 3, 3, steps
	c.LearningRate, c.LRWarmupSteps, c.LRScheduler = 1e-2, 2, nn.LRCosine
	c.BetaDPO, c.CheckpointingSteps, c.CheckpointsTotalLimit = 50, 2, 2
	c.LoRA = LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{TargetQKV, TargetProj, TargetFC1}}
	return c
}

func hostOf(x *kernels.Tensor) []float32 {
	h := make([]float32, x.Len())
	x.Dev.CopyToHost(h, x)
	return h
}

// fixedInput is a batch of 2 noisy samples with captions, for comparing velocities.
func fixedInput(m *diffusion.DiT) (*kernels.Tensor, []float32, diffusion.Prompts) {
	r := rand.New(rand.NewPCG(9, 9))
	x := make([]float32, 2*m.Config.SampleSize())
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return testDev.FromHost(x, m.Config.BatchShape(2)...), []float32{0.3, 0.8},
		diffusion.EncodePrompts(m.Tokenizer, []string{"red apple", "blue car"})
}

func velocity(m *diffusion.DiT) []float32 {
	x, ts, p := fixedInput(m)
	return hostOf(m.Forward(x, ts, p.IDs, p.Lengths, nil))
}

func TestSharedTimeAndNoise(t *testing.T) {
	const P, D = 3, 5
	r := rand.New(rand.NewPCG(4, 4))
	host := make([]float32, 2*P*D)
	for i := range host {
		host[i] = float32(r.NormFloat64())
	}
	x0 := testDev.FromHost(host, 2*P, D)
	n := &noiser{Times: DefaultConfig().Timesteps, dev: testDev}
	rng := &kernels.RNG{Seed: 1}
	ts := n.noise(rng, x0, true)
	if rng.Offset != uint64((P+3)/4+(P*D+3)/4) {
		t.Errorf("drew %d blocks, want P times and P*D normals", rng.Offset)
	}
	xt, tgt := hostOf(n.xt), hostOf(n.tgt)
	for i := range P {
		if ts[i] != ts[P+i] || n.ts32[i] != n.ts32[P+i] {
			t.Fatalf("pair %d: t %v and %v", i, ts[i], ts[P+i])
		}
		for d := range D {
			w, l := i*D+d, (P+i)*D+d
			// x_t^w - x_t^l = (1-t)(x0^w - x0^l) and v^w - v^l = -(x0^w - x0^l) only with one eps.
			dx := float64(host[w] - host[l])
			if math.Abs(float64(xt[w]-xt[l])-(1-ts[i])*dx) > 1e-5 || math.Abs(float64(tgt[w]-tgt[l])+dx) > 1e-5 {
				t.Fatalf("pair %d element %d: winner and loser do not share the noise", i, d)
			}
		}
	}
	// Unpaired draws give every sample its own time.
	ts = n.noise(rng, x0, false)
	if ts[0] == ts[P] {
		t.Error("independent samples share a time")
	}
}

// insides runs Flow-DPO on a batch whose losers equal its winners: DPOStep itself
// (shared), or the same passes with t and noise drawn per sample (the control).
func insides(t *testing.T, tr *Trainer, shared bool) []float64 {
	m := tr.Model
	P, D := 4, m.Config.SampleSize()
	r := rand.New(rand.NewPCG(8, 8))
	host := make([]float32, 2*P*D)
	for i := range P * D {
		host[i] = float32(r.Float64()*2 - 1)
	}
	copy(host[P*D:], host[:P*D])
	x0 := testDev.FromHost(host, m.Config.BatchShape(2*P)...)
	caps := []string{"red apple", "blue car", "green apple", "red apple"}
	p := diffusion.EncodePrompts(m.Tokenizer, append(caps, caps...))
	s := tr.dpo
	rng := &kernels.RNG{Seed: 11}
	if shared { // the step itself
		return s.ForwardBackward(m, tr.Reference(), rng, &PairBatch{X0: x0, Prompts: p}, 1).Inside
	}
	s.noise(rng, x0, false)
	eRef := s.errors(s.mseRef, tr.Reference().Velocity(s.xt, s.ts32, p.IDs, p.Lengths), 2*P)
	eM := s.errors(s.mse, m.Forward(s.xt, s.ts32, p.IDs, p.Lengths, nil), 2*P)
	return DPOLoss(eM, eRef, []float64{500, 500, 500, 500}, nil).Inside
}

func TestSharedNoiseGivesZeroInsideOnIdenticalPairs(t *testing.T) {
	m := tinyModel(t, 1)
	tr, err := NewTrainer(testDev, m, tinyConfig(MethodDPO, 4), memPairs(4, m.Config.SampleSize()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A policy that differs from the reference: random adapter B.
	for _, l := range tr.LoRA {
		randomize(l.LoRA.Params()[1:], 3, 0.3)
	}
	for i, in := range insides(t, tr, true) {
		if math.Abs(in) > 1e-4 {
			t.Errorf("pair %d: inside %v with winner = loser; t or noise not shared", i, in)
		}
	}
	// The control: with independent draws the same batch gives clearly non-zero insides.
	big := 0
	for _, in := range insides(t, tr, false) {
		if math.Abs(in) > 0.1 {
			big++
		}
	}
	if big == 0 {
		t.Error("the test cannot tell shared from independent noise")
	}
}

// TestReferenceFrozenAndEqualAtStart: the policy starts as the reference bit for bit, so the
// first loss is exactly ln 2, in fp32 and, where the CPU has AVX512_BF16, with the products in
// BF16 (the two passes round alike); then the policy moves and the reference does not.
func TestReferenceFrozenAndEqualAtStart(t *testing.T) {
	devs := map[string]kernels.Device{"fp32": testDev}
	if bf := kernels.NewCPU(0); bf.SetGemmBF16(true) == nil {
		devs["bf16"] = bf
	}
	for _, prec := range []string{"fp32", "bf16"} {
		for _, full := range []bool{false, true} {
			if dev := devs[prec]; dev != nil {
				t.Run(fmt.Sprintf("%s/full=%v", prec, full), func(t *testing.T) { referenceFrozen(t, dev, full) })
			}
		}
	}
}

func referenceFrozen(t *testing.T, dev kernels.Device, full bool) {
	m := tinyModelOn(t, dev, 2)
	start := velocity(m)
	var base [][]float32
	for _, p := range m.Params() {
		base = append(base, hostOf(p.W))
	}
	cfg := tinyConfig(MethodDPO, 6)
	cfg.FullFinetune = full
	tr, err := NewTrainer(dev, m, cfg, memPairs(6, m.Config.SampleSize()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := tr.TrainOneStep()
	if e.Loss != math.Ln2 || e.Inside != 0 || e.ImplicitAcc != 0 || e.WDiff != 0 || e.LDiff != 0 || e.ModelMSEW != e.RefMSEW {
		t.Errorf("full=%v: step 1 %+v %+v, want inside 0, loss ln 2, implicit_acc 0", full, e, *e.DPOMetrics)
	}
	if e.GradNorm == 0 {
		t.Errorf("full=%v: no gradient at step 1", full)
	}
	for range 5 {
		e = tr.TrainOneStep()
	}
	if e.Inside == 0 || e.Loss == math.Ln2 {
		t.Errorf("full=%v: the policy did not move: %+v", full, *e.DPOMetrics)
	}
	// The reference still computes the starting model, bit for bit.
	x, ts, p := fixedInput(m)
	if !slices.Equal(hostOf(tr.Reference().Velocity(x, ts, p.IDs, p.Lengths)), start) {
		t.Errorf("full=%v: the reference changed", full)
	}
	if slices.Equal(velocity(m), start) {
		t.Errorf("full=%v: the policy equals the reference after training", full)
	}
	if !full {
		// LoRA: every base weight untouched, adapters switched back on.
		k := 0
		for _, p := range m.Params() {
			if isLoRAParam(p.Name) {
				continue
			}
			if !slices.Equal(hostOf(p.W), base[k]) {
				t.Errorf("base weight %s changed", p.Name)
			}
			k++
		}
		for _, l := range tr.LoRA {
			if !l.LoRA.Enabled {
				t.Fatal("an adapter was left switched off")
			}
		}
	}
}

func TestRWRStepWeights(t *testing.T) {
	m := tinyModel(t, 4)
	D := m.Config.SampleSize()
	r := rand.New(rand.NewPCG(5, 5))
	host := make([]float32, 3*D)
	for i := range host {
		host[i] = float32(r.Float64()*2 - 1)
	}
	x0 := testDev.FromHost(host, m.Config.BatchShape(3)...)
	p := diffusion.EncodePrompts(m.Tokenizer, prompts)
	run := func(w []float64) (RWRResult, []float32) {
		nn.ZeroGrad(m.Params())
		res := NewRWRStep(testDev, DefaultConfig().Timesteps).ForwardBackward(m, &kernels.RNG{Seed: 1}, x0, p, w, 0.5)
		return res, hostOf(m.Params()[len(m.Params())-2].G)
	}
	a, ga := run([]float64{1, 1, 1})
	b, gb := run([]float64{2, 2, 2})
	c, _ := run([]float64{3, 0, 0})
	if !near(b.Loss, 2*a.Loss, 1e-6) || !near(a.Loss, a.MSE, 1e-12) || !near(c.Loss, c.Errors[0], 1e-6) || b.WeightMean != 2 {
		t.Errorf("weighted losses %v %v %v (errors %v)", a.Loss, b.Loss, c.Loss, c.Errors)
	}
	for i := range ga {
		if math.Abs(float64(gb[i]-2*ga[i])) > 1e-5*(1+math.Abs(float64(ga[i]))) {
			t.Fatalf("gradient does not scale with the weights: %v vs %v", gb[i], ga[i])
		}
	}
}

// runTo trains to the config's steps; with stopAt > 0 it is interrupted after that step.
func runTo(t *testing.T, tr *Trainer, stopAt int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.Progress = func(e LogEntry, _ time.Duration) {
		if e.Step == stopAt {
			cancel()
		}
	}
	return tr.Run(ctx, 0)
}

func TestTrainerExactResume(t *testing.T) {
	cases := []struct {
		name   string
		method string
		mutate func(c *Config)
	}{
		{"lora-dpo-ema-accumulation", MethodDPO, func(c *Config) { c.EMADecay, c.GradientAccumulationSteps = 0.9, 2 }},
		{"full-dpo", MethodDPO, func(c *Config) { c.FullFinetune, c.LearningRate = true, 1e-3 }},
		{"lora-rwr", MethodRWR, func(c *Config) { c.Timesteps.WeightingScheme = diffusion.WeightingLogitNormal }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig(tc.method, resumeSteps)
			tc.mutate(&cfg)
			D := tinyModel(t, 1).Config.SampleSize()
			data := memPairs(5, D) // batches of 3 pairs cross epoch ends
			if tc.method != MethodDPO {
				data = memItems(7, D)
			}
			b, c, dirB := checkExactResume(t, cfg, data)
			if c.Resumed == nil {
				t.Error("the resumed trainer has no Resumed config")
			}
			// Resuming on other data, another seed or another method is refused.
			other := memPairs(4, D)
			if tc.method != MethodDPO {
				other = memItems(6, D)
			}
			if _, err := ResumeTrainer(testDev, b.CheckpointPath(3), b.Cfg, other, dirB); err == nil {
				t.Error("resume on other data accepted")
			}
			seed := b.Cfg
			seed.Seed++
			if _, err := ResumeTrainer(testDev, b.CheckpointPath(3), seed, data, dirB); err == nil {
				t.Error("resume with another seed accepted")
			}
		})
	}
}

// resumeSteps is the length of the runs of checkExactResume.
const resumeSteps = 6

// checkExactResume runs cfg (resumeSteps steps) on data straight through, and again
// interrupted after step 3 and resumed from its checkpoint, and checks that the losses, the
// gradient norms and the output files are the same. It returns the interrupted and the
// resumed trainer and their directory.
func checkExactResume(t *testing.T, cfg Config, data *Data) (b, c *Trainer, dirB string) {
	t.Helper()
	const K = resumeSteps
	dirA := t.TempDir()
	dirB = t.TempDir()
	a, err := NewTrainer(testDev, tinyModel(t, 1), cfg, data, dirA)
	if err != nil {
		t.Fatal(err)
	}
	a.MergeLoRA = true
	if err := runTo(t, a, 0); err != nil {
		t.Fatal(err)
	}
	cfgB := cfg
	cfgB.CheckpointingSteps = 4
	b, _ = NewTrainer(testDev, tinyModel(t, 1), cfgB, data, dirB)
	b.MergeLoRA = true
	if err := runTo(t, b, 3); !errors.Is(err, diffusion.ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(b.CheckpointPath(3)); err != nil {
		t.Fatalf("no checkpoint on interruption: %v", err)
	}
	c, err = ResumeTrainer(testDev, b.CheckpointPath(3), cfgB, data, dirB)
	if err != nil {
		t.Fatal(err)
	}
	c.MergeLoRA = true
	if c.Step != 3 || len(c.Log) != 3 {
		t.Fatalf("resumed at step %d with %d log lines", c.Step, len(c.Log))
	}
	if err := runTo(t, c, 0); err != nil {
		t.Fatal(err)
	}
	if len(a.Log) != K || len(c.Log) != K {
		t.Fatalf("logs of %d and %d steps", len(a.Log), len(c.Log))
	}
	for i := range K {
		if a.Log[i].Loss != c.Log[i].Loss || a.Log[i].GradNorm != c.Log[i].GradNorm || a.Log[i].Skipped != c.Log[i].Skipped {
			t.Errorf("step %d: loss %v / %v, grad norm %v / %v", i+1, a.Log[i].Loss, c.Log[i].Loss, a.Log[i].GradNorm, c.Log[i].GradNorm)
		}
	}
	for _, f := range []string{"model.safetensors", "adapter.safetensors"} {
		fa, errA := os.ReadFile(filepath.Join(dirA, f))
		fb, errB := os.ReadFile(filepath.Join(dirB, f))
		if (errA == nil) != (errB == nil) || !bytes.Equal(fa, fb) {
			t.Errorf("%s differs between the straight and the resumed run (%v, %v)", f, errA, errB)
		}
	}
	if _, err := os.Stat(filepath.Join(dirA, "metrics.png")); err != nil {
		t.Error(err)
	}
	return b, c, dirB
}

// trainSnapshot prints everything an optimizer step changes: the weights (base, adapters,
// EMA, reference) and the AdamW moments and step count.
func trainSnapshot(tr *Trainer) string {
	return fmt.Sprint(nn.HostParams(tr.checkpointParams(), nn.F32), *nn.HostAdamW(tr.Opt.Params, tr.Opt.M, tr.Opt.V, tr.Opt.Steps))
}

// A step with a non-finite loss (an RWR sample of weight NaN) is skipped: the weights, the
// EMA and the AdamW state stay as they were, the log marks it with its NaNs as 0, the run
// goes on with the next step's learning rate, and a run resumed before it logs the same.
func TestTrainerSkipsNonFiniteStep(t *testing.T) {
	cfg := tinyConfig(MethodRWR, resumeSteps)
	cfg.EMADecay = 0.9
	B := cfg.TrainBatchSize
	data := memItems(B*resumeSteps, tinyModel(t, 1).Config.SampleSize()) // one epoch
	order := diffusion.EpochOrder(cfg.Seed, 0, data.Len())
	bad := []int{2, 5} // before and after the checkpoint of step 3 that checkExactResume resumes
	for _, s := range bad {
		data.Items[order[(s-1)*B+1]].Weight = math.NaN()
	}

	tr, err := NewTrainer(testDev, tinyModel(t, 1), cfg, data, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	tr.Notify = func(m string) { notes = append(notes, m) }
	tr.TrainOneStep()
	before := trainSnapshot(tr)
	if e := tr.TrainOneStep(); !e.Skipped || !math.IsNaN(e.Loss) || !math.IsNaN(e.RWRMetrics.WeightMean) {
		t.Fatalf("step 2: %+v %+v", e, e.RWRMetrics)
	}
	if trainSnapshot(tr) != before {
		t.Error("the skipped step changed the weights, the EMA or the AdamW state")
	}
	lr := cfg.LR(3)
	if e := tr.TrainOneStep(); e.Skipped || trainSnapshot(tr) == before || tr.Opt.Steps != 2 || e.LR != lr {
		t.Errorf("step 3 after the skipped one: %+v, %d AdamW steps", e, tr.Opt.Steps)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "step 2: non-finite loss (NaN)") {
		t.Errorf("notes %q", notes)
	}

	_, c, dir := checkExactResume(t, cfg, data)
	for _, e := range c.Log {
		if e.Skipped != slices.Contains(bad, e.Step) || (e.Skipped && (e.Loss != 0 || e.GradNorm != 0 || e.RWRMetrics.WeightMean != 0)) {
			t.Errorf("log line %+v %+v", e, e.RWRMetrics)
		}
	}
	if got := nn.ReadLog(nn.LogPath(dir), resumeSteps, logStep); !reflect.DeepEqual(got, c.Log) {
		t.Errorf("logs.jsonl holds %+v, the trainer %+v", got, c.Log)
	}
}

// A run whose every step is non-finite ends after nn.MaxSkippedSteps of them with
// nn.ErrDiverged, their log written and no checkpoint.
func TestTrainerDiverges(t *testing.T) {
	cfg := tinyConfig(MethodRWR, nn.MaxSkippedSteps+10)
	cfg.CheckpointingSteps = 1000
	data := memItems(4, tinyModel(t, 1).Config.SampleSize())
	for i := range data.Items {
		data.Items[i].Weight = math.Inf(1)
	}
	dir := t.TempDir()
	tr, err := NewTrainer(testDev, tinyModel(t, 1), cfg, data, dir)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background(), 0)
	if !errors.Is(err, nn.ErrDiverged) || tr.Step != nn.MaxSkippedSteps || !strings.HasPrefix(err.Error(), fmt.Sprintf("step %d: ", nn.MaxSkippedSteps)) {
		t.Fatalf("err = %v at step %d", err, tr.Step)
	}
	if n := len(nn.ReadLog(nn.LogPath(dir), tr.Step, logStep)); n != nn.MaxSkippedSteps {
		t.Errorf("%d log lines", n)
	}
	if cs, _ := nn.Checkpoints(dir); len(cs) != 0 {
		t.Errorf("checkpoints %v", cs)
	}
}

func TestOutputsLoadSampleAndApply(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t, 5)
	basePath := filepath.Join(dir, "base.safetensors")
	if err := m.Save(basePath); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig(MethodDPO, 4)
	cfg.LoRA.Targets = LoRATargets
	tr, err := NewTrainer(testDev, m, cfg, memPairs(4, m.Config.SampleSize()), filepath.Join(dir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	tr.MergeLoRA, tr.BaseModel = true, basePath
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	want := velocity(m)
	merged, err := diffusion.LoadDiT(testDev, tr.ModelPath())
	if err != nil {
		t.Fatal(err)
	}
	close := func(name string, got []float32) {
		t.Helper()
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: v[%d] = %v, the trained policy gives %v", name, i, got[i], want[i])
			}
		}
	}
	close("merged model", velocity(merged))
	x, _, err := diffusion.Sample(merged, []string{"red apple", "blue car"}, diffusion.SampleOptions{NumInferenceSteps: 2, GuidanceScale: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range hostOf(x) {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN in a sample of the merged model")
		}
	}
	// The adapter file on the base model gives the same velocities, adapters on or merged.
	base, _ := diffusion.LoadDiT(testDev, basePath)
	ad, err := nn.LoadCheckpoint(tr.AdapterPath())
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := AdapterBase(ad); !ok || b != basePath {
		t.Fatalf("AdapterBase = %q, %v; want %q", b, ok, basePath)
	}
	// Other base weights of the same architecture are refused.
	if _, _, err := ApplyAdapter(tinyModel(t, 6), ad); err == nil || !strings.Contains(err.Error(), "other base weights") {
		t.Errorf("adapter on another base: %v", err)
	}
	lc, ls, err := ApplyAdapter(base, ad)
	if err != nil || lc.Rank != 2 || len(ls) != 5*len(base.Blocks) {
		t.Fatalf("apply adapter: %v %+v %d", err, lc, len(ls))
	}
	close("adapter", velocity(base))
	MergeLoRA(ls)
	close("adapter merged", velocity(base))
	ck, err := nn.LoadCheckpoint(tr.CheckpointPath(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := AdapterBase(ck); ok {
		t.Error("a checkpoint taken for an adapter file")
	}
	if _, _, err := ApplyAdapter(merged, ck); err == nil {
		t.Error("a checkpoint accepted as an adapter")
	}
	// A finished run resumed writes its outputs again and trains no further.
	os.Remove(tr.ModelPath())
	r, err := ResumeTrainer(testDev, tr.CheckpointPath(4), cfg, memPairs(4, m.Config.SampleSize()), tr.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	r.MergeLoRA = true
	if err := r.Run(context.Background(), 0); err != nil || r.Step != 4 {
		t.Fatalf("resume of a finished run: %v, step %d", err, r.Step)
	}
	if _, err := os.Stat(tr.ModelPath()); err != nil {
		t.Error(err)
	}
}

func TestSFTOnWinnersFromFiles(t *testing.T) {
	dir := t.TempDir()
	m := tinyModel(t, 6)
	for i, c := range []color.NRGBA{{255, 0, 0, 255}, {0, 0, 255, 255}, {0, 255, 0, 255}} {
		writePNG(t, filepath.Join(dir, string(rune('a'+i))+".png"), 8, 8, solid(c))
	}
	os.WriteFile(filepath.Join(dir, "p.jsonl"), []byte(`{"prompt":"red apple","chosen":"a.png","rejected":"b.png"}
{"prompt":"blue car","chosen":"b.png","rejected":"c.png","labels":{"vq":"tie"}}
`), 0o644)
	set, err := ReadPairs(filepath.Join(dir, "p.jsonl"), PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := WinnerData(set, &m.Config)
	if err != nil || len(d.Items) != 1 || d.Items[0].Prompt != "red apple" {
		t.Fatalf("winners: %v %+v", err, d)
	}
	cfg := tinyConfig(MethodSFT, 3)
	cfg.FullFinetune = true
	tr, err := NewTrainer(testDev, m, cfg, d, filepath.Join(dir, "run"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if tr.Log[2].Loss >= tr.Log[0].Loss*2 || tr.Log[0].RWRMetrics == nil || tr.Log[0].WeightMean != 1 {
		t.Errorf("sft log %+v", tr.Log)
	}
	if _, err := diffusion.LoadDiT(testDev, tr.ModelPath()); err != nil {
		t.Error(err)
	}
	// Pairs for rwr, samples for dpo are refused.
	if _, err := NewTrainer(testDev, tinyModel(t, 6), tinyConfig(MethodDPO, 1), d, dir); err == nil {
		t.Error("dpo on samples accepted")
	}
}

func TestPlot(t *testing.T) {
	tr := &Trainer{Cfg: tinyConfig(MethodDPO, 3)}
	for s := 1; s <= 20; s++ {
		tr.Log = append(tr.Log, LogEntry{Step: s, Loss: 0.7 - 0.01*float64(s),
			DPOMetrics: &DPOMetrics{ImplicitAcc: 0.5, Inside: 0.1 * float64(s), WDiff: -0.01 * float64(s), LDiff: 0.01}})
	}
	img := tr.Plot(320, 120)
	if img.Bounds().Dy() != 5*120 {
		t.Fatalf("plot height %d, want 5 panels", img.Bounds().Dy())
	}
	// The w_diff panel (negative values) has a curve.
	blue := 0
	for y := 3 * 120; y < 4*120; y++ {
		for x := range 320 {
			if c := img.RGBAAt(x, y); c.B > 150 && c.R < 100 {
				blue++
			}
		}
	}
	if blue < 50 {
		t.Errorf("only %d curve pixels in the w_diff panel", blue)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, f := range []func(c *Config){
		func(c *Config) { c.Method = "ppo" },
		func(c *Config) { c.BetaDPO = 0 },
		func(c *Config) { c.BetaSchedule = "linear" },
		func(c *Config) { c.GradientAccumulationSteps = 0 },
		func(c *Config) { c.Timesteps.WeightingScheme = diffusion.WeightingCosmap },
		func(c *Config) { c.LoRA.Rank = 0 },
		func(c *Config) { c.LoRA.Targets = []string{"qkv", "q"} },
		func(c *Config) { c.LoRA.Targets = []string{"qkv", "qkv"} },
	} {
		c := DefaultConfig()
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
	c := DefaultConfig()
	c.FullFinetune, c.LoRA.Rank = true, 0
	if err := c.Validate(); err != nil {
		t.Errorf("full fine-tuning ignores the LoRA config: %v", err)
	}
}

func TestTrainerVideoModel(t *testing.T) {
	tok, _ := diffusion.BuildTokenizer(prompts, 1, 4)
	cfg := diffusion.ModelConfig{Kind: diffusion.KindVideo, ImageSize: 4, Channels: 3, Frames: 4, PatchSize: 2, TubeletFrames: 2,
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2, MaxTextLen: 4,
		VocabSize: tok.VocabSize(), RewardFreq: 4, RewardDims: []string{"vq"}, Shift: 1}
	m, err := diffusion.NewDiT(testDev, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tok
	randomize(m.Params(), 7, 0.2)
	c := tinyConfig(MethodDPO, 3)
	c.BetaSchedule = BetaOneMinusTSq
	tr, err := NewTrainer(testDev, m, c, memPairs(4, cfg.SampleSize()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if e := tr.Log[2]; e.Skipped || e.Inside == 0 || e.Beta >= 50 {
		t.Errorf("video run: %+v %+v", e, *e.DPOMetrics)
	}
}
