// Tests of reward-steered sampling against hand-computed values, with small fake rewards:
// the Flow-NRG update (the t/(1-t) factor, the window, the skip at t = 1), FK potentials,
// weights, ESS, resampling and the final correction, best-of-N selection, reward-condition
// parsing and CFG over reward conditions, determinism for a fixed seed, Flow-NRG samples of
// a batch of prompts equal to each prompt's sampled alone, and clear errors for bad input.
//
// Test: go test ./guidance

package guidance

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

var dev = kernels.NewCPU(1)

func host(x *kernels.Tensor) []float32 {
	out := make([]float32, x.Len())
	x.Dev.CopyToHost(out, x)
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// ---- fakes ----

// meanReward is a score-only clean reward: vq = mean of the sample, ta = -mean for the
// prompt "dark", +mean otherwise. It records its batches.
type meanReward struct {
	batches int
	cal     *rewards.Calibration
	fps     []float64 // the last batch's frame rates
}

func (m *meanReward) Dims() []string { return []string{rewards.DimVQ, rewards.DimTA} }

func (m *meanReward) Score(b rewards.Batch) ([][]float32, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	m.batches++
	m.fps = b.FPS
	h := host(b.Pixels)
	B := b.Len()
	D := len(h) / B
	out := make([][]float32, B)
	for i := range B {
		var s float32
		for _, v := range h[i*D : (i+1)*D] {
			s += v
		}
		s /= float32(D)
		ta := s
		if b.Prompts[i] == "dark" {
			ta = -s
		}
		out[i] = []float32{s, ta}
	}
	return out, nil
}

func (m *meanReward) Calibration() *rewards.Calibration { return m.cal }

// gradReward is differentiable but reads clean samples.
type gradReward struct{ meanReward }

func (g *gradReward) ScoreAndGrad(b rewards.Batch, w []float64) ([][]float32, *kernels.Tensor, error) {
	s, err := g.Score(b)
	return s, b.Pixels, err
}

// latentReward is a fake noise-aware model: r_vq = sum(x), r_ta = -1/2 sum(x^2) per sample,
// so grad = w_vq - w_ta x. Calibration std (2, 1).
type latentReward struct {
	times   [][]float32
	weights [][]float64
}

func (l *latentReward) Dims() []string { return []string{rewards.DimVQ, rewards.DimTA} }
func (l *latentReward) Score(b rewards.Batch) ([][]float32, error) {
	return nil, errors.New("not used")
}
func (l *latentReward) NoiseAware() {}
func (l *latentReward) Calibration() *rewards.Calibration {
	return &rewards.Calibration{Dims: l.Dims(), Mean: []float64{5, -1}, Std: []float64{2, 1}, N: 10}
}
func (l *latentReward) ScoreAndGrad(b rewards.Batch, w []float64) ([][]float32, *kernels.Tensor, error) {
	if err := b.Check(); err != nil {
		return nil, nil, err
	}
	l.times = append(l.times, slices.Clone(b.Timesteps))
	l.weights = append(l.weights, slices.Clone(w))
	h := host(b.Pixels)
	g := make([]float32, len(h))
	for i, v := range h {
		g[i] = float32(w[0] - w[1]*float64(v))
	}
	return nil, dev.FromHost(g, b.Pixels.Shape...), nil
}

// ---- Flow-NRG ----

// v' = v - w t/(1-t) grad, grad = λ_vq/std_vq - λ_ta/std_ta x: with λ = (2, 1), std (2, 1),
// x = (1, -2, 0.5): grad = (0, 3, 0.5).
func TestNRGHandComputed(t *testing.T) {
	lr := &latentReward{}
	g, err := NewNRG(lr, "vq=2,ta=1", 10, 1, 0, []string{"red apple"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.Weights, []float64{1, 1}) {
		t.Fatalf("raw weights %v, want λ/std = [1 1]", g.Weights)
	}
	x := dev.FromHost([]float32{1, -2, 0.5}, 1, 3, 1, 1)
	v := dev.FromHost([]float32{0.1, 0.2, 0.3}, 1, 3, 1, 1)
	cases := []struct {
		t    float64
		want []float64
	}{
		{0.75, []float64{0.1, 0.2 - 90, 0.3 - 15}},   // t/(1-t) = 3: v - 30 grad
		{0.5, []float64{0.1, 0.2 - 30, 0.3 - 5}},     // t/(1-t) = 1: v - 10 grad
		{0.2, []float64{0.1, 0.2 - 7.5, 0.3 - 1.25}}, // 0.25: v - 2.5 grad
		{1, []float64{0.1, 0.2, 0.3}},                // no guidance on pure noise
	}
	for _, c := range cases {
		out, err := g.Guide(x, v, 0, c.t)
		if err != nil {
			t.Fatal(err)
		}
		for i, got := range host(out) {
			if !near(float64(got), c.want[i], 1e-4) {
				t.Fatalf("t = %v: v'[%d] = %v, want %v", c.t, i, got, c.want[i])
			}
		}
	}
	if g.Calls != 3 || len(lr.times) != 3 || lr.times[0][0] != 0.75 {
		t.Fatalf("%d calls with times %v, want 3 starting at 0.75 (none at t = 1)", g.Calls, lr.times)
	}
	if NRGFactor(1) != 0 || NRGFactor(0.75) != 3 {
		t.Fatal("NRGFactor")
	}

	// The window: start 0.6 skips t = 0.75, end 0.3 skips t = 0.2.
	g2, _ := NewNRG(lr, "vq=2,ta=1", 10, 0.6, 0.3, []string{"red apple"})
	for _, tt := range []float64{0.75, 0.2} {
		out, _ := g2.Guide(x, v, 0, tt)
		if out != v {
			t.Fatalf("t = %v outside [0.3, 0.6] was guided", tt)
		}
	}
	if out, _ := g2.Guide(x, v, 0, 0.5); out == v {
		t.Fatal("t = 0.5 inside the window was not guided")
	}
}

func TestNRGErrors(t *testing.T) {
	_, err := NewNRG(&meanReward{}, "", 100, 1, 0, []string{"a"})
	if !errors.Is(err, ErrNotNoiseAware) || !strings.Contains(err.Error(), "score-only") {
		t.Fatalf("score-only reward: %v", err)
	}
	_, err = NewNRG(&gradReward{}, "", 100, 1, 0, []string{"a"})
	if !errors.Is(err, ErrNotNoiseAware) || !strings.Contains(err.Error(), "not noise-aware") {
		t.Fatalf("clean differentiable reward: %v", err)
	}
	_, err = NewNRG(&latentReward{}, "vq=1,mq=2", 100, 1, 0, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), `unknown reward dimension "mq"`) {
		t.Fatalf("weight for a missing dimension: %v", err)
	}
	for _, c := range [][3]float64{{-1, 1, 0}, {math.NaN(), 1, 0}, {1, 0.2, 0.5}, {1, 1.5, 0}} {
		if _, err := NewNRG(&latentReward{}, "", c[0], c[1], c[2], []string{"a"}); err == nil {
			t.Errorf("scale %v window [%v, %v] accepted", c[0], c[2], c[1])
		}
	}
}

// ---- FK numbers ----

func TestFKPotentialsWeightsESS(t *testing.T) {
	// λ = 2, r = 1, r_prev = 0.5.
	for kind, want := range map[string]float64{PotentialDiff: 1, PotentialMax: 2, PotentialAdd: 3, PotentialRT: 2} {
		if got := LogPotential(kind, 2, 1, 0.5); got != want {
			t.Errorf("%s: log G = %v, want %v", kind, got, want)
		}
	}
	if got := LogPotential(PotentialMax, 2, -0.25, math.Inf(-1)); got != -0.5 {
		t.Errorf("max before the first evaluation: %v, want -0.5", got)
	}
	w := NormalizeLogWeights([]float64{0, math.Log(2), math.Log(3), math.Log(4)})
	for i, want := range []float64{0.1, 0.2, 0.3, 0.4} {
		if !near(w[i], want, 1e-12) {
			t.Fatalf("w = %v", w)
		}
	}
	if e := ESS(w); !near(e, 1/0.3, 1e-12) { // 1/(0.01+0.04+0.09+0.16)
		t.Fatalf("ESS = %v, want 3.3333", e)
	}
	if e := ESS(NormalizeLogWeights([]float64{7, 7, 7})); !near(e, 3, 1e-12) {
		t.Fatalf("equal weights: ESS %v", e)
	}
	if w := NormalizeLogWeights([]float64{1000, 0}); !near(w[0], 1, 1e-12) || ESS(w) != 1 {
		t.Fatalf("overflow-safe: %v", w)
	}
	// Cumulative weights 0.1 0.3 0.6 1.0.
	if got := SystematicIndices(w4(), 0.5); !slices.Equal(got, []int{1, 2, 3, 3}) { // positions .125 .375 .625 .875
		t.Fatalf("systematic: %v", got)
	}
	if got := MultinomialIndices(w4(), []float64{0.05, 0.95, 0.29, 0.31}); !slices.Equal(got, []int{0, 3, 1, 2}) {
		t.Fatalf("multinomial: %v", got)
	}
}

func w4() []float64 { return []float64{0.1, 0.2, 0.3, 0.4} }

// constRows makes (B,3,1,1) with every value of row b equal to vals[b].
func constRows(vals ...float32) *kernels.Tensor {
	var h []float32
	for _, v := range vals {
		h = append(h, v, v, v)
	}
	return dev.FromHost(h, len(vals), 3, 1, 1)
}

// One group of two particles, v = 0 so x0_hat = x: r = (0.1, 0.5), λ = 10, diff:
// log G = (1, 5), w = (1, e^4)/(1 + e^4) = (0.017986, 0.982014), ESS = 1.036619.
func TestFKGuideHandComputed(t *testing.T) {
	sc, err := NewScorer(&meanReward{}, "vq=1", "")
	if err != nil {
		t.Fatal(err)
	}
	o := FKOptions{Particles: 2, Lambda: 10, Potential: PotentialDiff, Adaptive: true, Seed: 9}
	f, err := NewFK(sc, []string{"a", "a"}, o)
	if err != nil {
		t.Fatal(err)
	}
	x, v := constRows(0.1, 0.5), constRows(0, 0)
	if _, err := f.Guide(x, v, 0, 1); err != nil || f.Evaluations != 0 {
		t.Fatal("evaluated at t = 1")
	}
	if _, err := f.Guide(x, v, 3, 0.5); err != nil {
		t.Fatal(err)
	}
	if !near(f.LogW[0], 1, 1e-6) || !near(f.LogW[1], 5, 1e-6) {
		t.Fatalf("log-weights %v, want [1 5]", f.LogW)
	}
	w := NormalizeLogWeights(f.LogW)
	if !near(w[0], 0.017986, 1e-6) || !near(ESS(w), 1.036619, 1e-6) {
		t.Fatalf("w %v ESS %v", w, ESS(w))
	}
	// ESS 1.037 >= 0.5*2: adaptive keeps the particles.
	if f.Resamples != 0 || host(x)[0] != 0.1 {
		t.Fatal("resampled above the ESS threshold")
	}

	// A threshold of 0.6 (1.2 particles) resamples; systematic with the group's uniform u:
	// positions u/2 and (u+1)/2, ancestor 0 only for a position below 0.017986.
	f.Opt.ESSThreshold, f.Opt.Resampler = 0.6, ResampleSystematic
	u := (&kernels.RNG{Seed: 9, Offset: 1 << 63}).Float64s(1)[0]
	want := SystematicIndices(NormalizeLogWeights([]float64{1 + 0.5, 5 + 0.5}), u)
	if _, err := f.Guide(x, v, 4, 0.5); err != nil { // log G = 0 now (diff, same r)
		t.Fatal(err)
	}
	if f.Resamples != 1 || f.LogW[0] != 0 || f.LogW[1] != 0 {
		t.Fatalf("resamples %d, log-weights %v", f.Resamples, f.LogW)
	}
	for j, a := range want {
		if got := host(x)[3*j]; got != []float32{0.1, 0.5}[a] {
			t.Fatalf("particle %d: x %v, want ancestor %d", j, got, a)
		}
	}
	if sc.Samples != 4 {
		t.Fatalf("%d reward calls, want 4", sc.Samples)
	}
}

// rt, λ = 1, resampling at every evaluation: the final log-weights are
// λ r_0 - logProd(lineage) = r_0 - r_t(ancestor).
func TestFKFinalCorrection(t *testing.T) {
	for _, pot := range []string{PotentialRT, PotentialDiff, PotentialAdd, PotentialMax} {
		sc, _ := NewScorer(&meanReward{}, "vq=1", "")
		f, err := NewFK(sc, []string{"a", "a"}, FKOptions{Particles: 2, Lambda: 1, Potential: pot, ResampleEvery: 1, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		x, v := constRows(0.1, 0.5), constRows(0, 0)
		if _, err := f.Guide(x, v, 1, 0.5); err != nil {
			t.Fatal(err)
		}
		u := (&kernels.RNG{Seed: 3, Offset: 1 << 63}).Float64s(2)
		anc := MultinomialIndices(NormalizeLogWeights([]float64{0.1, 0.5}), u) // log G = r for all four here
		res, err := f.Finish(constRows(0.3, 0.2))
		if err != nil {
			t.Fatal(err)
		}
		rt := []float64{0.1, 0.5}
		lw := []float64{0.3 - rt[anc[0]], 0.2 - rt[anc[1]]}
		want := NormalizeLogWeights(lw)
		if !near(res.Weights[0], want[0], 1e-6) || !near(res.ESS[0], ESS(want), 1e-6) {
			t.Fatalf("%s: final weights %v, want %v (ancestors %v)", pot, res.Weights, want, anc)
		}
		if !slices.Equal(res.Selected, []int{0}) || !near(res.Utility[1], 0.2, 1e-6) {
			t.Fatalf("%s: selected %v utility %v", pot, res.Selected, res.Utility)
		}
	}
	// Without resampling the correction leaves exactly exp(λ r_0): softmax(0.3, 0.2).
	sc, _ := NewScorer(&meanReward{}, "vq=1", "")
	f, _ := NewFK(sc, []string{"a", "a"}, FKOptions{Particles: 2, Lambda: 1, Potential: PotentialMax, Adaptive: true})
	x, v := constRows(0.1, 0.5), constRows(0, 0)
	f.Guide(x, v, 1, 0.5)
	f.Guide(x, v, 2, 0.4)
	res, _ := f.Finish(constRows(0.3, 0.2))
	if f.Resamples != 0 || !near(res.Weights[0], 0.524979, 1e-6) {
		t.Fatalf("resamples %d, final weights %v, want [0.524979 0.475021]", f.Resamples, res.Weights)
	}
}

func TestFKErrors(t *testing.T) {
	sc, _ := NewScorer(&meanReward{}, "", "")
	cases := map[string]FKOptions{
		"--particles must be >= 1, got -2": {Particles: -2, ResampleEvery: 1},
		"--fk-potential":                   {Particles: 2, Potential: "best", ResampleEvery: 1},
		"--fk-resample-every":              {Particles: 2},
		"--fk-lambda":                      {Particles: 2, Lambda: math.Inf(1), ResampleEvery: 1},
	}
	for want, o := range cases {
		if _, err := NewFK(sc, []string{"a", "a"}, o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", o, err, want)
		}
	}
	if _, err := NewFK(sc, []string{"a", "a", "a"}, FKOptions{Particles: 2, ResampleEvery: 1}); err == nil {
		t.Error("3 samples in groups of 2 accepted")
	}
	if _, err := NewScorer(&meanReward{}, "vq=1,mq=1", ""); err == nil || !strings.Contains(err.Error(), `"mq"`) {
		t.Errorf("weight for a missing dimension: %v", err)
	}
	if _, err := NewScorer(&meanReward{}, "", "best"); err == nil {
		t.Error("unknown combiner accepted")
	}
}

// ---- best-of-N ----

func TestBestOfN(t *testing.T) {
	// Two outputs of three candidates; vq = mean, ta = -mean for "dark".
	x := constRows(0.2, 0.9, -0.3, 0.4, -0.5, 0.1)
	prompts := []string{"a", "a", "a", "dark", "dark", "dark"}
	m := &meanReward{}
	sc, _ := NewScorer(m, "vq=1", rewards.CombineLinear)
	res, err := BestOfN(sc, x, prompts, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Selected, []int{1, 3}) || sc.Samples != 6 || m.batches != 1 {
		t.Fatalf("selected %v after %d calls", res.Selected, sc.Samples)
	}
	sc, _ = NewScorer(m, "ta=1", rewards.CombineLinear)
	if res, _ = BestOfN(sc, x, prompts, 3); !slices.Equal(res.Selected, []int{1, 4}) {
		t.Fatalf("ta: selected %v, want [1 4]", res.Selected)
	}
	// vq and ta agree for "a" (one front: 0.9 dominates) and conflict for "dark" (one front
	// of three): the tie goes to the higher linear sum, equal (0) for all, then the lowest index.
	sc, _ = NewScorer(m, "vq=1,ta=1", rewards.CombinePareto)
	if res, _ = BestOfN(sc, x, prompts, 3); !slices.Equal(res.Selected, []int{1, 3}) {
		t.Fatalf("pareto: selected %v, want [1 3]", res.Selected)
	}
	for _, c := range rewards.Combiners {
		sc, _ = NewScorer(m, "vq=1,ta=0.5", c)
		if _, err := BestOfN(sc, x, prompts, 3); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	if _, err := BestOfN(sc, x, prompts, 4); err == nil {
		t.Fatal("groups of 4 over 6 samples accepted")
	}
	g := Gather(x, []int{5, 0})
	if h := host(g); g.Shape[0] != 2 || h[0] != 0.1 || h[3] != 0.2 {
		t.Fatalf("gather: %v %v", g.Shape, h)
	}
}

// Clamping and PerFrame: a clip's score is the mean of its frames' scores.
func TestScorerPerFrame(t *testing.T) {
	// (1, T=2, 3, 1, 1): frame means 0.5 and 1 (2 clamps to 1).
	x := dev.FromHost([]float32{0.5, 0.5, 0.5, 2, 2, 2}, 1, 2, 3, 1, 1)
	sc, _ := NewScorer(PerFrame{&meanReward{}}, "vq=1", "")
	u, s, err := sc.Utility(x, []string{"a"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(u[0], 0.75, 1e-6) || len(s.Raw[0]) != 2 {
		t.Fatalf("utility %v, want 0.75", u)
	}
}

// A scorer's FPS reaches the model as each sample's frame rate; none is nil.
func TestScorerFPS(t *testing.T) {
	m := &meanReward{}
	sc, _ := NewScorer(m, "", "")
	x := dev.FromHost(make([]float32, 2*2*3), 2, 2, 3, 1, 1)
	if _, _, err := sc.Utility(x, []string{"a", "b"}, 1); err != nil || m.fps != nil {
		t.Errorf("no FPS: %v, %v", m.fps, err)
	}
	sc.FPS = 100.0 / 12
	if _, _, err := sc.Utility(x, []string{"a", "b"}, 1); err != nil || !slices.Equal(m.fps, []float64{100.0 / 12, 100.0 / 12}) {
		t.Errorf("FPS 100/12: %v, %v", m.fps, err)
	}
}

// ---- reward as condition ----

func TestParseRewardCondition(t *testing.T) {
	dims := []string{"vq", "ta"}
	r, err := ParseRewardCondition("vq=max,ta=4.5", dims, nil)
	if err != nil || r[0] != DefaultRewardConditionMax || r[1] != 4.5 {
		t.Fatalf("%v %v", r, err)
	}
	r, _ = ParseRewardCondition(" TA = -1 ", dims, []float64{2.5, math.NaN()})
	if !math.IsNaN(float64(r[0])) || r[1] != -1 {
		t.Fatalf("unnamed dimensions are ∅: %v", r)
	}
	if r, _ = ParseRewardCondition("vq=max,ta=max", dims, []float64{2.5, math.NaN()}); r[0] != 2.5 || r[1] != 3 {
		t.Fatalf("training maxima: %v", r)
	}
	for spec, want := range map[string]string{
		"mq=1":      `no reward dimension "mq"`,
		"vq=high":   "not a finite number",
		"vq=1,vq=2": "twice",
		"":          "empty",
		"vq":        "not name=value",
		"vq=NaN":    "not a finite number",
		"ta=1e39":   "not a finite number",
	} {
		if _, err := ParseRewardCondition(spec, dims, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	if _, err := ParseRewardCondition("vq=1", nil, nil); err == nil || !strings.Contains(err.Error(), "no reward-condition slot") {
		t.Errorf("model without slot: %v", err)
	}
}

// FuzzParseRewardCondition: an accepted spec gives one target per dimension, each ∅ (NaN) or
// a finite float32 (a value past float32's range would reach the embedding as Inf), and
// names at least one; a refused one says which flag.
// Fuzz: go test ./guidance -run '^$' -fuzz FuzzParseRewardCondition -fuzztime 30s
func FuzzParseRewardCondition(f *testing.F) {
	for _, s := range []string{"vq=max,ta=4.5", " TA = -1 ", "vq=1,vq=2", "vq", "", "ta=1e39", "vq=max,", "ta=-0x1p-149"} {
		f.Add(s)
	}
	dims := []string{"vq", "ta"}
	maxes := []float64{2.5, math.NaN()}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := ParseRewardCondition(spec, dims, maxes)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--reward-condition") {
				t.Fatalf("error without the flag's name: %v", err)
			}
			return
		}
		if len(r) != len(dims) {
			t.Fatalf("%q: %d targets for %d dimensions", spec, len(r), len(dims))
		}
		named := 0
		for d, v := range r {
			if math.IsInf(float64(v), 0) {
				t.Fatalf("%q: %s target %v", spec, dims[d], v)
			}
			if !math.IsNaN(float64(v)) {
				named++
			}
		}
		if named == 0 {
			t.Fatalf("%q accepted without a target", spec)
		}
	})
}

// tinyDiT is a small image model with reward dimensions vq, ta and random weights
// everywhere (the reward MLP's zero-initialised last layer included).
func tinyDiT(t testing.TB) *diffusion.DiT { return tinyDiTOn(t, dev) }

// tinyDiTOn is tinyDiT on device d.
func tinyDiTOn(t testing.TB, d kernels.Device) *diffusion.DiT {
	cfg := diffusion.ModelConfig{Kind: diffusion.KindImage, ImageSize: 4, Channels: 3, Frames: 1, PatchSize: 2, TubeletFrames: 1,
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 8, TextHeads: 2, MaxTextLen: 4,
		VocabSize: 11, RewardFreq: 4, RewardDims: []string{"vq", "ta"}, Shift: 1}
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "green apple moving left", "blue car", "a"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg.VocabSize = tok.VocabSize()
	m, err := diffusion.NewDiT(d, &kernels.RNG{Seed: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tok
	r := &kernels.RNG{Seed: 2}
	for _, p := range m.Params() {
		r.Normal(p.W)
		d.Scale(p.W, 0.3)
	}
	return m
}

// The batched reward CFG equals the formula over separate passes.
func TestRewardCondCFGMatchesSeparatePasses(t *testing.T) {
	m := tinyDiT(t)
	cond := diffusion.EncodePrompts(m.Tokenizer, []string{"red apple", "blue car"})
	B, L, n := 2, m.Config.MaxTextLen, 2*m.Config.SampleSize()
	nan := float32(math.NaN())
	target := []float32{1.5, -0.5}
	r := &kernels.RNG{Seed: 5}
	x := dev.New(m.Config.BatchShape(B)...)
	r.Normal(x)
	sigma := 0.6
	pass := func(p diffusion.Prompts, rc []float32) []float64 {
		var rr []float32
		for range B {
			rr = append(rr, rc...)
		}
		ts := []float32{float32(sigma), float32(sigma)}
		h := host(m.Forward(x, ts, p.IDs, p.Lengths, rr))
		out := make([]float64, len(h))
		for i, v := range h {
			out[i] = float64(v)
		}
		return out
	}
	null := diffusion.NullPrompts(B, L)
	vC0 := pass(cond, []float32{nan, nan})
	vU0 := pass(null, []float32{nan, nan})
	vJ := pass(cond, target)
	vD := [][]float64{pass(cond, []float32{1.5, nan}), pass(cond, []float32{nan, -0.5})}
	for _, c := range []struct {
		s      float64
		perDim bool
		passes int
	}{{1, false, 2}, {3, false, 3}, {1, true, 3}, {3, true, 4}} {
		g, err := NewRewardCFG(m, cond, target, c.s, 2, c.perDim)
		if err != nil {
			t.Fatal(err)
		}
		if g.Passes() != c.passes {
			t.Fatalf("s %v per-dim %v: %d passes, want %d", c.s, c.perDim, g.Passes(), c.passes)
		}
		got := host(g.Velocity(x, sigma))
		for i := range n {
			want := vC0[i]
			if c.s > 1 {
				want = vU0[i] + c.s*(vC0[i]-vU0[i])
			}
			if c.perDim {
				want += 2*(vD[0][i]-vC0[i]) + 2*(vD[1][i]-vC0[i])
			} else {
				want += 2 * (vJ[i] - vC0[i])
			}
			if !near(float64(got[i]), want, 1e-4) {
				t.Fatalf("s %v per-dim %v: v[%d] = %v, want %v", c.s, c.perDim, i, got[i], want)
			}
		}
	}
	if _, err := NewRewardCFG(m, cond, []float32{nan, nan}, 1, 2, false); err == nil {
		t.Fatal("all-∅ target accepted")
	}
}

// ---- whole runs ----

// FK steering and NRG inside diffusion.Sample: a fixed seed gives the same samples and the
// same choices, another seed different ones.
func TestSteeredSampleDeterministic(t *testing.T) {
	m := tinyDiT(t)
	caps := []string{"red apple", "red apple", "red apple", "blue car", "blue car", "blue car"}
	run := func(seed uint64) ([]float32, []int, int) {
		sc, _ := NewScorer(&meanReward{}, "vq=1,ta=1", "")
		f, err := NewFK(sc, caps, FKOptions{Particles: 3, Lambda: 10, Potential: PotentialMax, ResampleEvery: 2, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		nrg, _ := NewNRG(&latentReward{}, "vq=1", 0.05, 1, 0, caps)
		o := diffusion.SampleOptions{NumInferenceSteps: 6, GuidanceScale: 2, Seed: seed, Sampler: diffusion.SamplerSDE,
			Guidance: Chain{nrg, f}}
		x, _, err := diffusion.Sample(m, caps, o)
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.Finish(x)
		if err != nil {
			t.Fatal(err)
		}
		if f.Resamples != 4 || sc.Samples != 6*3 { // steps 2 and 4, two groups; 2 evaluations + final
			t.Fatalf("%d resamplings, %d reward calls", f.Resamples, sc.Samples)
		}
		return host(Gather(x, res.Selected)), res.Selected, nrg.Calls
	}
	a, sa, calls := run(7)
	b, sb, _ := run(7)
	c, _, _ := run(8)
	if !slices.Equal(a, b) || !slices.Equal(sa, sb) {
		t.Fatal("same seed, different samples")
	}
	if slices.Equal(a, c) {
		t.Fatal("different seeds, same samples")
	}
	if calls != 5 {
		t.Fatalf("NRG guided %d steps, want 5 (all but t = 1)", calls)
	}
}

// Flow-NRG with a latent reward model inside diffusion.Sample, several images per prompt:
// every sample of a batch of distinct prompts equals the one sampled with its own prompt
// alone (same noise stream), so the caption the reward model sees for row i is row i's.
func TestNRGSampleRowsMatchTheirPrompts(t *testing.T) {
	if !kernels.BatchInvariant() {
		t.Skip("OpenBLAS multiplies here: a row's result depends on the batch (kernels.BatchInvariant)")
	}
	m := tinyDiT(t)
	lat, err := rewards.NewLatentFromGenerator(dev, &kernels.RNG{Seed: 3}, m, rewards.LatentConfig{Blocks: 1, Dims: []string{"vq", "ta"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &kernels.RNG{Seed: 4}
	for _, p := range lat.Params() {
		r.Normal(p.W)
		dev.Scale(p.W, 0.3)
	}
	lat.SetTrainable(false)
	caps := []string{"red apple", "red apple", "blue car", "blue car", "green apple moving left", "green apple moving left"}
	run := func(c []string, first int, scale float64) []float32 {
		nrg, err := NewNRG(lat, "ta=1", scale, 1, 0, c)
		if err != nil {
			t.Fatal(err)
		}
		o := diffusion.SampleOptions{NumInferenceSteps: 5, GuidanceScale: 2, Seed: 11, FirstIndex: first, Sampler: diffusion.SamplerEuler, Guidance: nrg}
		x, _, err := diffusion.Sample(m, c, o)
		if err != nil {
			t.Fatal(err)
		}
		return host(x)
	}
	all := run(caps, 0, 1)
	S := m.Config.SampleSize()
	for i := 0; i < len(caps); i += 2 {
		if alone := run(caps[i:i+2], i, 1); !slices.Equal(alone, all[i*S:(i+2)*S]) {
			t.Errorf("samples %d, %d (%q) differ from the same prompt sampled alone", i, i+1, caps[i])
		}
	}
	if slices.Equal(run(caps, 0, 0), all) {
		t.Error("the guidance did not change the samples")
	}
}
