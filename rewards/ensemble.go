// Ensembles: several reward models scored as one, so that one run weighs the dimensions of
// all of them (the embedded model's vq and ta with an ONNX aesthetic scorer's, say), as
// flow_grpo's multi_score({name: weight}) does across scorers. The ensemble's dimensions are
// its members' in order, its raw scores and calibration theirs side by side, and --weights,
// the combiners and z-scores see one model.
//
// With every member differentiable the ensemble is too: the gradient of the weighted sum
//
//	sum_d w_d r_d(x) = sum_m sum_{d in m} w_d r_d(x)
//
// is the sum of each member's gradient for its own weights (a member whose weights are all 0
// is only scored); with every member noise-aware, it is noise-aware (Flow-NRG), each member
// reading the batch's timesteps.
//
// Test: go test ./rewards -run Ensemble
package rewards

import (
	"fmt"
	"slices"
	"strings"

	"github.com/alignkit/align/kernels"
)

// NewEnsemble returns one model scoring with all of members (one member: that model
// itself). Dimension names must differ across members (case-insensitively, as --weights
// matches them).
func NewEnsemble(members []Model) (Model, error) {
	switch len(members) {
	case 0:
		return nil, fmt.Errorf("rewards: an ensemble of no models")
	case 1:
		return members[0], nil
	}
	e := &ensemble{members: members}
	owner := map[string]int{}
	for i, m := range members {
		e.offs = append(e.offs, len(e.dims))
		for _, d := range m.Dims() {
			if j, ok := owner[strings.ToLower(d)]; ok {
				return nil, fmt.Errorf("rewards: reward models %d and %d both score a dimension %q: an ensemble needs distinct names", j+1, i+1, d)
			}
			owner[strings.ToLower(d)] = i
			e.dims = append(e.dims, d)
		}
	}
	e.offs = append(e.offs, len(e.dims))
	e.cal = e.calibration()
	diff, aware := true, true
	for _, m := range members {
		_, d := m.(Differentiable)
		_, a := m.(NoiseAware)
		diff, aware = diff && d, aware && a
	}
	switch {
	case aware:
		return &noiseAwareEnsemble{differentiableEnsemble{ensemble: e}}, nil
	case diff:
		return &differentiableEnsemble{ensemble: e}, nil
	}
	return e, nil
}

// ensemble is a score-only ensemble.
type ensemble struct {
	members []Model
	dims    []string
	offs    []int // member i's dimensions are dims[offs[i]:offs[i+1]]
	cal     *Calibration
}

func (e *ensemble) Dims() []string { return slices.Clone(e.dims) }

// Calibration is the members' side by side (identity for a member without one; tie
// thresholds 0, exact ties, where a member has none).
func (e *ensemble) Calibration() *Calibration { return e.cal }

func (e *ensemble) calibration() *Calibration {
	c := &Calibration{Dims: slices.Clone(e.dims)}
	ties := false
	n := -1
	for i, m := range e.members {
		mc := IdentityCalibration(m.Dims())
		if cm, ok := m.(Calibrated); ok && cm.Calibration() != nil {
			mc = cm.Calibration()
			if n < 0 || mc.N < n {
				n = mc.N
			}
		}
		c.Mean = append(c.Mean, mc.Mean...)
		c.Std = append(c.Std, mc.Std...)
		tie := make([]float64, e.offs[i+1]-e.offs[i])
		if len(mc.TieEps) == len(tie) {
			copy(tie, mc.TieEps)
			ties = true
		}
		c.TieEps = append(c.TieEps, tie...)
	}
	if !ties {
		c.TieEps = nil
	}
	c.N = max(n, 0) // the fewest samples any member's statistics came from
	return c
}

// Score scores b with every member and puts the rows side by side.
func (e *ensemble) Score(b Batch) ([][]float32, error) {
	out := make([][]float32, b.Len())
	for i, m := range e.members {
		raw, err := m.Score(b)
		if err != nil {
			return nil, fmt.Errorf("reward model %d of %d: %w", i+1, len(e.members), err)
		}
		if err := e.join(out, raw, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// join appends member i's rows raw to out's.
func (e *ensemble) join(out, raw [][]float32, i int) error {
	D := e.offs[i+1] - e.offs[i]
	if len(raw) != len(out) {
		return fmt.Errorf("reward model %d: %d rows for %d samples", i+1, len(raw), len(out))
	}
	for b, row := range raw {
		if len(row) != D {
			return fmt.Errorf("reward model %d: %d scores, want its %d dimensions", i+1, len(row), D)
		}
		out[b] = append(out[b], row...)
	}
	return nil
}

// differentiableEnsemble is an ensemble of differentiable members.
type differentiableEnsemble struct {
	*ensemble
	grad *kernels.Tensor // the summed gradient, on the pixels' device
}

// ScoreAndGrad implements Differentiable: every member's gradient for its own weights,
// summed (members whose weights are all 0 are scored without one).
func (e *differentiableEnsemble) ScoreAndGrad(b Batch, weights []float64) ([][]float32, *kernels.Tensor, error) {
	if len(weights) != len(e.dims) {
		return nil, nil, fmt.Errorf("rewards: %d weights for the ensemble's %d dimensions", len(weights), len(e.dims))
	}
	dev := b.Pixels.Dev
	if e.grad == nil || e.grad.Dev != dev || !slices.Equal(e.grad.Shape, b.Pixels.Shape) {
		if e.grad != nil {
			e.grad.Dev.Free(e.grad)
		}
		e.grad = dev.New(b.Pixels.Shape...)
	}
	dev.Fill(e.grad, 0)
	out := make([][]float32, b.Len())
	for i, m := range e.members {
		w := weights[e.offs[i]:e.offs[i+1]]
		var raw [][]float32
		var err error
		if slices.ContainsFunc(w, func(v float64) bool { return v != 0 }) {
			var g *kernels.Tensor
			if raw, g, err = m.(Differentiable).ScoreAndGrad(b, w); err == nil {
				dev.Axpy(e.grad, 1, g)
			}
		} else {
			raw, err = m.Score(b)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reward model %d of %d: %w", i+1, len(e.members), err)
		}
		if err := e.join(out, raw, i); err != nil {
			return nil, nil, err
		}
	}
	return out, e.grad, nil
}

// noiseAwareEnsemble is an ensemble of noise-aware members.
type noiseAwareEnsemble struct{ differentiableEnsemble }

func (*noiseAwareEnsemble) NoiseAware() {}
