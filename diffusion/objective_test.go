// Tests of the flow-matching objective: time densities and weights, caption and reward
// dropout, the loss of a fresh model against its closed form, reproducibility from the
// seed, and a tiny model learning (loss falls). BenchmarkTrainStep times one step of a
// candidate default model.
//
// Test: go test ./diffusion -run Objective ; bench: go test ./diffusion -run '^$' -bench TrainStep -benchtime 3x

package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alignkit/align/internal/benchdev"
	"github.com/alignkit/align/internal/benchmem"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

func TestObjectiveTimesteps(t *testing.T) {
	for _, scheme := range WeightingSchemes {
		o := DefaultObjective()
		o.WeightingScheme = scheme
		rng := &kernels.RNG{Seed: 11}
		ts := o.SampleTimesteps(rng, 4000)
		if rng.Offset != 1000 {
			t.Errorf("%s: 4000 draws advanced the stream by %d blocks", scheme, rng.Offset)
		}
		mean := 0.0
		for _, v := range ts {
			if !(v > 0 && v < 1) {
				t.Fatalf("%s: t = %v outside (0,1)", scheme, v)
			}
			mean += v / float64(len(ts))
		}
		if math.Abs(mean-0.5) > 0.03 {
			t.Errorf("%s: mean t = %.3f, want about 0.5", scheme, mean)
		}
	}
	// The shift moves times towards 1.
	o := DefaultObjective()
	o.Shift = 3
	mean := 0.0
	for _, v := range o.SampleTimesteps(&kernels.RNG{Seed: 11}, 2000) {
		mean += v / 2000
	}
	if mean < 0.65 {
		t.Errorf("shift 3: mean t = %.3f, want above 0.65", mean)
	}
	// Same seed, same times.
	d := DefaultObjective()
	a := d.SampleTimesteps(&kernels.RNG{Seed: 5}, 8)
	b := d.SampleTimesteps(&kernels.RNG{Seed: 5}, 8)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("times differ for the same seed")
		}
	}
}

func TestObjectiveWeights(t *testing.T) {
	o := DefaultObjective()
	o.WeightingScheme = WeightingCosmap
	if w := o.LossWeights([]float64{0.5})[0]; math.Abs(w-4/math.Pi) > 1e-12 {
		t.Errorf("cosmap w(0.5) = %v", w)
	}
	o.WeightingScheme = WeightingSigmaSqrt
	if w := o.LossWeights([]float64{0.25})[0]; w != 16 {
		t.Errorf("sigma_sqrt w(0.25) = %v", w)
	}
	o.WeightingScheme = "uniform"
	if err := o.Validate(); err == nil {
		t.Error("unknown scheme accepted")
	}
	o = DefaultObjective()
	o.CaptionDropout = 1.5
	if err := o.Validate(); err == nil {
		t.Error("dropout 1.5 accepted")
	}
}

func TestObjectiveDropout(t *testing.T) {
	tok := tinyTokenizer(t)
	caps := make([]string, 1000)
	for i := range caps {
		caps[i] = "red apple"
	}
	p := EncodePrompts(tok, caps)
	out, dropped := DropCaptions(&kernels.RNG{Seed: 3}, p, tok.MaxLen, 0.2)
	n := 0
	for b, d := range dropped {
		if d {
			n++
			if out.Lengths[b] != 1 || out.IDs[b*tok.MaxLen] != NullID || out.IDs[b*tok.MaxLen+1] != PadID {
				t.Fatalf("dropped caption %d is %v (length %d)", b, out.IDs[b*tok.MaxLen:(b+1)*tok.MaxLen], out.Lengths[b])
			}
		} else if out.Lengths[b] != 2 {
			t.Fatalf("kept caption %d has length %d", b, out.Lengths[b])
		}
	}
	if n < 160 || n > 240 {
		t.Errorf("dropped %d of 1000 at p = 0.2", n)
	}
	if p.Lengths[0] != 2 {
		t.Error("DropCaptions changed its input")
	}
	r := DropRewards(&kernels.RNG{Seed: 4}, make([]float32, 1000), 0.5)
	nan := 0
	for _, v := range r {
		if math.IsNaN(float64(v)) {
			nan++
		}
	}
	if nan < 420 || nan > 580 {
		t.Errorf("dropped %d of 1000 reward values at p = 0.5", nan)
	}
	if DropRewards(&kernels.RNG{}, nil, 0.5) != nil {
		t.Error("nil rewards")
	}
}

// tinyBatch is B images of the tiny image model with captions from the tiny tokenizer.
func tinyBatch(m *DiT, B int, seed uint64) *Batch {
	r := rand.New(rand.NewPCG(seed, 2))
	caps := []string{"red apple", "green apple moving left", "blue car", "a"}
	var cs []string
	for i := range B {
		cs = append(cs, caps[i%len(caps)])
	}
	x := testDev.FromHost(hostValues(r, B*m.Config.SampleSize(), 0.5), m.Config.BatchShape(B)...)
	return &Batch{X0: x, Prompts: EncodePrompts(m.Tokenizer, cs)}
}

func TestObjectiveFreshModelLoss(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 1)
	b := tinyBatch(m, 3, 1)
	step := NewTrainStep(testDev, DefaultObjective())
	rng := &kernels.RNG{Seed: 21}
	res := step.ForwardBackward(m, rng, b)

	// A fresh model predicts 0, so loss_b = mean((eps - x0)^2) with eps replayed from the seed.
	replay := &kernels.RNG{Seed: 21}
	d := DefaultObjective()
	d.SampleTimesteps(replay, 3)
	replay.Float64s(3)
	eps := replay.Normals(b.X0.Len())
	x0 := toHost(b.X0)
	D := m.Config.SampleSize()
	want := 0.0
	for i := range 3 {
		s := 0.0
		for d := range D {
			r := eps[i*D+d] - float64(x0[i*D+d])
			s += r * r
		}
		if math.Abs(float64(res.PerSample[i])-s/float64(D)) > 1e-4 {
			t.Errorf("sample %d: loss %v, want %v", i, res.PerSample[i], s/float64(D))
		}
		want += s / float64(D) / 3
	}
	if math.Abs(res.Loss-want) > 1e-4 {
		t.Errorf("loss %v, want %v", res.Loss, want)
	}
	if rng.Offset != replay.Offset {
		t.Errorf("step used the stream up to %d, replay to %d", rng.Offset, replay.Offset)
	}
}

// A tiny model learns: the loss on a fixed batch falls well below its starting value, and
// two runs from the same seed give bit-identical losses.
func TestObjectiveTinyModelLearns(t *testing.T) {
	run := func() []float64 {
		m := newTinyModel(t, tinyConfig(KindImage), 2)
		b := tinyBatch(m, 4, 2)
		o := DefaultObjective()
		o.CaptionDropout = 0
		step := NewTrainStep(testDev, o)
		cfg := nn.DefaultAdamWConfig()
		cfg.LR = 1e-2
		opt := nn.NewAdamW(testDev, m.Params(), cfg)
		rng := &kernels.RNG{Seed: 3}
		var losses []float64
		for range 60 {
			nn.ZeroGrad(m.Params())
			losses = append(losses, step.ForwardBackward(m, rng, b).Loss)
			opt.Step()
		}
		return losses
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %v vs %v from the same seed", i, a[i], b[i])
		}
	}
	first, last := mean(a[:10]), mean(a[len(a)-10:])
	if !(last < 0.8*first) {
		t.Errorf("loss %.4f -> %.4f: the tiny model does not learn", first, last)
	}
}

func mean(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// BenchmarkTrainStep times forward+backward+AdamW of the default image model (batch 32):
// samples/s, GFLOP/s against the GEMM rate (throughput_bench_test.go) and the peak memory
// from building the model to two untimed steps (internal/benchmem). Environment:
// ALIGN_BENCH_WIDTH, _DEPTH, _HEADS, _PATCH, _BATCH, _VIDEO=1 override the sizes.
// newBenchTrainStep builds cfg's model (its vocabulary from a few captions) on dev and
// returns one training step at batch B (zero the gradients, forward and backward, clipping,
// AdamW), the model and its batch.
func newBenchTrainStep(b *testing.B, dev kernels.Device, cfg ModelConfig, B int) (step func(), m *DiT, batch *Batch) {
	tok, _ := BuildTokenizer([]string{"red apple", "green apple moving left", "blue car", "a"}, 1, cfg.MaxTextLen)
	cfg.VocabSize = tok.VocabSize()
	m, err := NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.Tokenizer = tok
	batch = tinyBatch(m, B, 1)
	ts := NewTrainStep(dev, DefaultObjective())
	opt := nn.NewAdamW(dev, m.Params(), nn.DefaultAdamWConfig())
	rng := &kernels.RNG{Seed: 1}
	ps := m.Params()
	return func() {
		nn.ZeroGrad(ps)
		ts.ForwardBackward(m, rng, batch)
		_, clip := nn.ClipScale(ps, 1)
		opt.StepScaled(clip)
	}, m, batch
}

func BenchmarkTrainStep(b *testing.B) {
	dev := benchdev.Device(b, testDev)
	benchGemmRate(dev)
	mem := benchmem.Start()
	cfg := DefaultImageConfig()
	if os.Getenv("ALIGN_BENCH_VIDEO") == "1" {
		cfg = DefaultVideoConfig()
	}
	B := 32
	for name, dst := range map[string]*int{"WIDTH": &cfg.Width, "DEPTH": &cfg.Depth, "HEADS": &cfg.Heads, "PATCH": &cfg.PatchSize, "BATCH": &B} {
		if v, err := strconv.Atoi(os.Getenv("ALIGN_BENCH_" + name)); err == nil {
			*dst = v
		}
	}
	cfg.TextWidth, cfg.TextHeads = cfg.Width, cfg.Heads
	trainStep, m, batch := newBenchTrainStep(b, dev, cfg, B)
	cfg = m.Config
	// Two untimed steps (the steady state's buffers, optimizer moments and garbage) end the
	// memory's stretch: its heap sampler, waking every millisecond, would slow the timed
	// steps (by a fifth on 2 cores).
	trainStep()
	trainStep()
	usage := mem.Stop()
	b.Logf("config %s: width %d depth %d heads %d patch %d, %d tokens/sample, %.2fM params, batch %d",
		cfg.Kind, cfg.Width, cfg.Depth, cfg.Heads, cfg.PatchSize, cfg.SeqLen(), float64(cfg.ParamCount())/1e6, B)
	// Forward and backward alone (the fastest of b.N, the least disturbed by other load),
	// then whole steps (forward, backward, clipping, AdamW).
	ts := make([]float32, B)
	for i := range ts {
		ts[i] = 0.5
	}
	best := func(f func()) float64 {
		m := math.Inf(1)
		for range b.N {
			t0 := time.Now()
			f()
			m = math.Min(m, time.Since(t0).Seconds())
		}
		return m
	}
	var v *kernels.Tensor
	fwd := best(func() { v = m.Forward(batch.X0, ts, batch.Prompts.IDs, batch.Prompts.Lengths, nil) })
	bwd := best(func() { m.Forward(batch.X0, ts, batch.Prompts.IDs, batch.Prompts.Lengths, nil); m.Backward(v) }) - fwd
	b.ResetTimer()
	el := best(trainStep)
	b.ReportMetric(fwd, "s/fwd")
	b.ReportMetric(bwd, "s/bwd")
	b.ReportMetric(el, "s/step")
	b.ReportMetric(float64(B)/el, "samples/s")
	reportThroughput(b, 3*float64(B)*cfg.ForwardFLOPs(), el)
	usage.Report(b, "")
	fmt.Fprintf(os.Stderr, "forward %.3f s, backward %.3f s, train step %.3f s, %.1f samples/s\n", fwd, bwd, el, float64(B)/el)
}
