// Tests of the preference losses (hand-computed values, Rao-Kupper probabilities summing to
// one, finite-difference gradients of the batch loss) and of the accuracies with and
// without ties.
//
// Run: go test ./rewards -run 'BTT|BT|Reg|Loss|Accuracy|Label'
package rewards

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBTTValues(t *testing.T) {
	// k = 5: decisive at Δ = 0 is ln 6; at Δ = ln 5 it is ln 2; tie at Δ = 0 is ln(6/4).
	l, g := BTTDecisive(0, 5)
	if !near(l, math.Log(6), 1e-12) || !near(g, -5.0/6, 1e-12) {
		t.Errorf("decisive(0) = %v, %v; want ln 6, -5/6", l, g)
	}
	l, g = BTTDecisive(math.Log(5), 5)
	if !near(l, math.Ln2, 1e-12) || !near(g, -0.5, 1e-12) {
		t.Errorf("decisive(ln 5) = %v, %v; want ln 2, -1/2", l, g)
	}
	l, g = BTTTie(0, 5)
	if !near(l, math.Log(1.5), 1e-12) || g != 0 {
		t.Errorf("tie(0) = %v, %v; want ln 1.5, 0", l, g)
	}
	// Tie at Δ = 1, k = 5: -log σ(1-ln5) - log σ(-1-ln5) - ln 24.
	want := math.Log1p(math.Exp(math.Log(5)-1)) + math.Log1p(math.Exp(1+math.Log(5))) - math.Log(24)
	if l, _ = BTTTie(1, 5); !near(l, want, 1e-12) {
		t.Errorf("tie(1) = %v, want %v", l, want)
	}
	l, g = BTDecisive(0)
	if !near(l, math.Ln2, 1e-12) || !near(g, -0.5, 1e-12) {
		t.Errorf("bt(0) = %v, %v", l, g)
	}
	// Rao-Kupper: P(A≻B) + P(B≻A) + P(tie) = 1 for every Δ and k.
	for _, k := range []float64{1.5, 5, 20} {
		for _, d := range []float64{-4, -0.3, 0, 0.7, 3} {
			la, _ := BTTDecisive(d, k)
			lb, _ := BTTDecisive(-d, k)
			lt, _ := BTTTie(d, k)
			if s := math.Exp(-la) + math.Exp(-lb) + math.Exp(-lt); !near(s, 1, 1e-12) {
				t.Errorf("k %v Δ %v: probabilities sum to %v", k, d, s)
			}
		}
	}
}

func TestBTTGradients(t *testing.T) {
	const h = 1e-6
	for _, d := range []float64{-3, -0.5, 0.2, 2.5} {
		for name, f := range map[string]func(float64) (float64, float64){
			"decisive": func(x float64) (float64, float64) { return BTTDecisive(x, 5) },
			"tie":      func(x float64) (float64, float64) { return BTTTie(x, 3) },
			"bt":       BTDecisive,
		} {
			lp, _ := f(d + h)
			lm, _ := f(d - h)
			_, g := f(d)
			if fd := (lp - lm) / (2 * h); !near(g, fd, 1e-6) {
				t.Errorf("%s at %v: grad %v, finite difference %v", name, d, g, fd)
			}
		}
	}
}

// TestPairLossGradient checks the batch loss's gradient against central differences for
// each loss kind, with a mix of labels (and NaN targets for reg).
func TestPairLossGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const N, D = 5, 3
	rA, rB, sA, sB := zeros(N, D), zeros(N, D), zeros(N, D), zeros(N, D)
	labels := make([][]Label, N)
	for n := range N {
		labels[n] = make([]Label, D)
		for d := range D {
			rA[n][d], rB[n][d] = float32(r.NormFloat64()), float32(r.NormFloat64())
			labels[n][d] = Label(r.IntN(4))
			sA[n][d], sB[n][d] = float32(r.NormFloat64()), float32(math.NaN())
			if r.IntN(2) == 0 {
				sB[n][d] = float32(r.NormFloat64())
			}
		}
	}
	labels[0] = []Label{LabelA, LabelB, LabelTie}
	for _, kind := range []string{LossBTT, LossBT, LossReg} {
		c := LossConfig{Kind: kind, K: 4}
		res, err := c.PairLoss(rA, rB, labels, sA, sB)
		if err != nil {
			t.Fatal(kind, err)
		}
		for _, side := range []struct {
			r [][]float32
			g [][]float32
		}{{rA, res.DA}, {rB, res.DB}} {
			for n := range N {
				for d := range D {
					// float32 scores: a step of 1e-2 keeps the rounding error small; the
					// losses are smooth enough for the O(h²) error to stay below 1e-4.
					const h = 1e-2
					old := side.r[n][d]
					side.r[n][d] = old + h
					lp, _ := c.PairLoss(rA, rB, labels, sA, sB)
					side.r[n][d] = old - h
					lm, _ := c.PairLoss(rA, rB, labels, sA, sB)
					side.r[n][d] = old
					fd := (lp.Loss - lm.Loss) / (2 * h)
					if !near(float64(side.g[n][d]), fd, 2e-4) {
						t.Errorf("%s: grad[%d][%d] = %v, finite difference %v", kind, n, d, side.g[n][d], fd)
					}
				}
			}
		}
	}
}

func TestPairLossCounts(t *testing.T) {
	rA := [][]float32{{1, 0}, {0, 0}}
	rB := [][]float32{{0, 0}, {0, 2}}
	labels := [][]Label{{LabelA, LabelTie}, {LabelNone, LabelB}}
	res, err := LossConfig{Kind: LossBT}.PairLoss(rA, rB, labels, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// bt: entries (0,vq) Δ=1 and (1,ta) Δ_chosen = 2; the tie is left out.
	want := (-LogSigmoid(1) - LogSigmoid(2)) / 2
	if !near(res.Loss, want, 1e-9) || res.Count[0] != 1 || res.Count[1] != 1 {
		t.Errorf("bt loss %v counts %v, want %v [1 1]", res.Loss, res.Count, want)
	}
	res, _ = LossConfig{Kind: LossBTT}.PairLoss(rA, rB, labels, nil, nil)
	if res.Count[1] != 2 || !near(res.PerDim[0], -LogSigmoid(1-math.Log(5)), 1e-9) {
		t.Errorf("btt counts %v per-dim %v", res.Count, res.PerDim)
	}
	if _, err := (LossConfig{Kind: LossBT}).PairLoss(rA, rB, [][]Label{{LabelTie, LabelNone}, {LabelNone, LabelTie}}, nil, nil); err == nil {
		t.Error("bt with only ties: no error")
	}
	for _, c := range []LossConfig{{Kind: "hinge"}, {Kind: LossBTT, K: 1}, {Kind: LossBTT, K: math.Inf(1)}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestAccuracy(t *testing.T) {
	labels := []Label{LabelA, LabelA, LabelTie, LabelB, LabelTie, LabelNone}
	deltas := []float64{2, 0.5, 0.1, -1, 3, 100}
	acc, n := AccuracyWithoutTies(deltas, labels)
	if acc != 1 || n != 3 {
		t.Errorf("without ties %v over %d, want 1 over 3", acc, n)
	}
	// No tie predicted: 3 of 5 right; tau between 0.1 and 0.5 adds the first tie: 4 of 5.
	acc, tau, n := AccuracyWithTies(deltas, labels)
	if acc != 0.8 || tau != 0.3 || n != 5 {
		t.Errorf("with ties %v at tau %v over %d, want 0.8 at 0.3 over 5", acc, tau, n)
	}
	if acc, _ := AccuracyAt(deltas, labels, 0); acc != 0.6 {
		t.Errorf("at tau 0: %v, want 0.6", acc)
	}
	if acc, _ := AccuracyAt(deltas, labels, 10); acc != 0.4 {
		t.Errorf("at tau 10: %v, want 0.4 (every entry a predicted tie)", acc)
	}
	// Δ = 0 on a decisive label is wrong without ties.
	if acc, _ := AccuracyWithoutTies([]float64{0}, []Label{LabelA}); acc != 0 {
		t.Errorf("Δ = 0 counted right")
	}
	// All ties: the best threshold is above the largest |Δ|.
	acc, tau, _ = AccuracyWithTies([]float64{0.5, -2}, []Label{LabelTie, LabelTie})
	if acc != 1 || !(tau > 2) {
		t.Errorf("all ties: %v at %v", acc, tau)
	}
	// A NaN Δ is wrong at every threshold (and ends the search): 4 of 6.
	acc, tau, n = AccuracyWithTies(append(deltas, math.NaN()), append(labels, LabelTie))
	if acc != 4.0/6 || tau != 0.3 || n != 6 {
		t.Errorf("with a NaN: %v at tau %v over %d, want 4/6 at 0.3 over 6", acc, tau, n)
	}
	res := PairAccuracy([]string{"vq", "ta"}, [][]float32{{1, 0}, {0, 0}}, [][]float32{{0, 0}, {0, 0}},
		[][]Label{{LabelA, LabelNone}, {LabelTie, LabelNone}}, []float64{0.5, 0.5})
	if res[0].Pairs != 2 || res[0].AccWithTies != 1 || res[0].AccWithTiesAtEp != 1 || res[1].Pairs != 0 {
		t.Errorf("PairAccuracy %+v", res)
	}
	js, err := json.Marshal(res)
	if err != nil || !strings.Contains(string(js), `"acc_without_ties":null`) {
		t.Errorf("JSON %s, %v", js, err)
	}
}

func TestLabelText(t *testing.T) {
	for _, s := range []string{"A", "b", "same", "tie", "", "none"} {
		l, err := ParseLabel(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Label
		if err := back.UnmarshalText([]byte(l.String())); err != nil || back != l {
			t.Errorf("%q: round trip %v", s, back)
		}
	}
	if _, err := ParseLabel("C"); err == nil {
		t.Error("label C accepted")
	}
}
