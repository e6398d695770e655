// Test: go test ./rewards -run Ensemble
package rewards

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// momentReward scores a sample by the mean of its pixels raised to pow, one dimension
// named dim: r = (1/N) sum_i x_i^pow, dr/dx_i = pow x_i^(pow-1) / N. It counts its gradient
// calls; cal, when set, is its calibration.
type momentReward struct {
	dim   string
	pow   int
	cal   *Calibration
	grads int
}

func (m *momentReward) Dims() []string { return []string{m.dim} }

func (m *momentReward) Calibration() *Calibration { return m.cal }

func (m *momentReward) Score(b Batch) ([][]float32, error) {
	raw, _, err := m.scoreGrad(b, nil)
	return raw, err
}

func (m *momentReward) ScoreAndGrad(b Batch, w []float64) ([][]float32, *kernels.Tensor, error) {
	m.grads++
	return m.scoreGrad(b, w)
}

func (m *momentReward) scoreGrad(b Batch, w []float64) ([][]float32, *kernels.Tensor, error) {
	x := make([]float32, b.Pixels.Len())
	b.Pixels.Dev.CopyToHost(x, b.Pixels)
	B := b.Len()
	n := len(x) / B
	out := make([][]float32, B)
	g := make([]float32, len(x))
	for s := range B {
		var r float64
		for i := s * n; i < (s+1)*n; i++ {
			v := float64(x[i])
			r += math.Pow(v, float64(m.pow)) / float64(n)
			if w != nil {
				g[i] = float32(w[0] * float64(m.pow) * math.Pow(v, float64(m.pow-1)) / float64(n))
			}
		}
		out[s] = []float32{float32(r)}
	}
	if w == nil {
		return out, nil, nil
	}
	return out, b.Pixels.Dev.FromHost(g, b.Pixels.Shape...), nil
}

// scoreOnly hides a member's gradient: the ensemble of it is score-only.
type scoreOnly struct{ Model }

func TestEnsembleScoresAndCalibration(t *testing.T) {
	a := &momentReward{dim: "mean", pow: 1, cal: &Calibration{Dims: []string{"mean"}, Mean: []float64{0.5}, Std: []float64{2}, N: 40, TieEps: []float64{0.25}}}
	b := &momentReward{dim: "power", pow: 2}
	x := testDev.FromHost([]float32{1, -1, 0.5, 0.5, 2, 0, 0, 0}, 2, 1, 2, 2)
	batch := Batch{Pixels: x, Prompts: []string{"a", "b"}}

	if m, err := NewEnsemble([]Model{a}); err != nil || m != Model(a) {
		t.Errorf("an ensemble of one model is that model: %v, %v", m, err)
	}
	m, err := NewEnsemble([]Model{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Dims(); !slices.Equal(got, []string{"mean", "power"}) {
		t.Errorf("dims %v", got)
	}
	// Sample 0: mean (1-1+0.5+0.5)/4 = 0.25, power (1+1+0.25+0.25)/4 = 0.625; sample 1:
	// mean 0.5, power 1.
	raw, err := m.Score(batch)
	if err != nil || !slices.EqualFunc(raw, [][]float32{{0.25, 0.625}, {0.5, 1}}, slices.Equal) {
		t.Errorf("scores %v (%v), want [[0.25 0.625] [0.5 1]]", raw, err)
	}
	c := m.(Calibrated).Calibration()
	if !slices.Equal(c.Mean, []float64{0.5, 0}) || !slices.Equal(c.Std, []float64{2, 1}) || !slices.Equal(c.TieEps, []float64{0.25, 0}) || c.N != 40 {
		t.Errorf("calibration %+v: want a's beside the identity", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	// z-scores: sample 0's mean (0.25-0.5)/2 = -0.125.
	sc, err := ScoreBatch(m, batch)
	if err != nil || sc.Z[0][0] != -0.125 || sc.Z[1][1] != 1 {
		t.Errorf("z-scores %v (%v)", sc.Z, err)
	}

	if _, err := NewEnsemble([]Model{a, &momentReward{dim: "MEAN", pow: 3}}); err == nil || !strings.Contains(err.Error(), `both score a dimension "MEAN"`) {
		t.Errorf("a repeated dimension: %v", err)
	}
	if _, err := NewEnsemble(nil); err == nil {
		t.Error("an empty ensemble accepted")
	}
	// Capabilities: differentiable only where every member is; noise-aware none here.
	if _, ok := m.(Differentiable); !ok {
		t.Error("an ensemble of differentiable models is not differentiable")
	}
	if _, ok := m.(NoiseAware); ok {
		t.Error("an ensemble of clean models is noise-aware")
	}
	mixed, _ := NewEnsemble([]Model{a, scoreOnly{b}})
	if _, ok := mixed.(Differentiable); ok {
		t.Error("an ensemble with a score-only member is differentiable")
	}
	if raw, err := mixed.Score(batch); err != nil || raw[1][1] != 1 {
		t.Errorf("score-only ensemble: %v, %v", raw, err)
	}
}

// The ensemble's gradient of sum_d w_d r_d against central finite differences of its
// scores; a member with weight 0 is scored without a gradient call.
func TestEnsembleGradient(t *testing.T) {
	a := &momentReward{dim: "mean", pow: 1}
	b := &momentReward{dim: "power", pow: 2}
	c := &momentReward{dim: "cube", pow: 3}
	m, err := NewEnsemble([]Model{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	x := []float32{0.3, -0.7, 0.1, 0.9, -0.2, 0.4, 0.6, -0.5}
	w := []float64{0.5, -2, 0}
	batch := func(v []float32) Batch {
		return Batch{Pixels: testDev.FromHost(v, 2, 1, 2, 2), Prompts: []string{"a", "b"}}
	}
	_, g, err := m.(Differentiable).ScoreAndGrad(batch(x), w)
	if err != nil {
		t.Fatal(err)
	}
	got := toHost(g)
	f := func(v []float32) float64 {
		raw, err := m.Score(batch(v))
		if err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, row := range raw {
			for d, r := range row {
				s += w[d] * float64(r)
			}
		}
		return s
	}
	const h = 1e-2
	for i := range x {
		p, q := slices.Clone(x), slices.Clone(x)
		p[i] += h
		q[i] -= h
		fd := (f(p) - f(q)) / (2 * h)
		if math.Abs(float64(got[i])-fd) > 1e-4 {
			t.Errorf("d/dx[%d]: %v, finite differences %v", i, got[i], fd)
		}
	}
	if a.grads != 1 || b.grads != 1 || c.grads != 0 {
		t.Errorf("gradient calls %d, %d, %d; want 1, 1, 0 (weight 0)", a.grads, b.grads, c.grads)
	}
	// A second call reuses the sum's buffer and starts it from zero.
	if _, g2, _ := m.(Differentiable).ScoreAndGrad(batch(x), w); g2 != g || !slices.Equal(toHost(g2), got) {
		t.Error("a second call does not give the same gradient in the same buffer")
	}
}

// awareReward is a noise-aware momentReward that records the timesteps it was given.
type awareReward struct {
	momentReward
	seen []float32
}

func (m *awareReward) NoiseAware() {}

func (m *awareReward) ScoreAndGrad(b Batch, w []float64) ([][]float32, *kernels.Tensor, error) {
	m.seen = b.Timesteps
	return m.momentReward.ScoreAndGrad(b, w)
}

// An ensemble of noise-aware members is noise-aware (Flow-NRG takes it) and hands each
// member the batch's timesteps.
func TestEnsembleNoiseAware(t *testing.T) {
	a := &awareReward{momentReward: momentReward{dim: "mean", pow: 1}}
	b := &awareReward{momentReward: momentReward{dim: "power", pow: 2}}
	m, err := NewEnsemble([]Model{a, b})
	if err != nil {
		t.Fatal(err)
	}
	na, ok := m.(NoiseAware)
	if !ok {
		t.Fatal("an ensemble of noise-aware models is not noise-aware")
	}
	ts := []float32{0.25, 0.75}
	x := testDev.FromHost([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 2, 1, 2, 2)
	if _, _, err := na.ScoreAndGrad(Batch{Pixels: x, Prompts: []string{"a", "b"}, Timesteps: ts}, []float64{1, 1}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.seen, ts) || !slices.Equal(b.seen, ts) {
		t.Errorf("members saw timesteps %v and %v, want %v", a.seen, b.seen, ts)
	}
	if mixed, _ := NewEnsemble([]Model{a, &momentReward{dim: "cube", pow: 3}}); mixed == nil {
		t.Fatal("no ensemble")
	} else if _, ok := mixed.(NoiseAware); ok {
		t.Error("an ensemble with a clean member is noise-aware")
	} else if _, ok := mixed.(Differentiable); !ok {
		t.Error("an ensemble of differentiable members (one clean) is not differentiable")
	}
}
