// Preference losses for reward models, Bradley-Terry with ties (Rao-Kupper), plain
// Bradley-Terry and score regression, with their gradients; and pairwise accuracy with and
// without ties, the tie threshold calibrated as in VideoAlign's calc_accuracy.py.
//
// Test: go test ./rewards -run 'BTT|BT|Reg|Loss|Accuracy|Label'
package rewards

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// Label is a per-dimension preference between the two samples of a pair.
type Label int8

const (
	// LabelNone: the pair says nothing about this dimension; it is left out of the loss and
	// of the accuracy (VideoAlign's "invalid" label).
	LabelNone Label = iota
	LabelA          // A is better
	LabelB          // B is better
	LabelTie        // A and B are equally good
)

// String returns "A", "B", "tie" or "none".
func (l Label) String() string {
	switch l {
	case LabelA:
		return "A"
	case LabelB:
		return "B"
	case LabelTie:
		return "tie"
	}
	return "none"
}

// ParseLabel reads "A", "B", "tie" or "same" (VideoAlign's CSV word for a tie), and "" or
// "none" as LabelNone, case-insensitively.
func ParseLabel(s string) (Label, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "a":
		return LabelA, nil
	case "b":
		return LabelB, nil
	case "tie", "same":
		return LabelTie, nil
	case "", "none":
		return LabelNone, nil
	}
	return LabelNone, fmt.Errorf("preference label %q: want A, B, tie (same) or none", s)
}

// MarshalText writes the label as String does.
func (l Label) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText reads a label as ParseLabel does.
func (l *Label) UnmarshalText(b []byte) error {
	v, err := ParseLabel(string(b))
	*l = v
	return err
}

// Sign is +1 for A, -1 for B, 0 for a tie (the h of calc_accuracy.py).
func (l Label) Sign() float64 {
	switch l {
	case LabelA:
		return 1
	case LabelB:
		return -1
	}
	return 0
}

// Loss kinds.
const (
	LossBTT = "btt" // Bradley-Terry with ties (Rao-Kupper), VideoAlign's default
	LossBT  = "bt"  // Bradley-Terry; tie labels are left out
	LossReg = "reg" // mean squared error to per-sample target scores
)

// DefaultTieK is VideoAlign's Rao-Kupper tie parameter k (θ in Rao & Kupper 1967).
const DefaultTieK = 5

// LossConfig selects the loss.
type LossConfig struct {
	Kind string  // LossBTT, LossBT or LossReg
	K    float64 // tie parameter k > 1 of LossBTT; 0 means DefaultTieK
}

// Validate checks the kind and k.
func (c LossConfig) Validate() error {
	switch c.Kind {
	case LossBTT:
		if c.K != 0 && !(c.K > 1) || math.IsInf(c.K, 0) {
			return fmt.Errorf("loss btt: k must be > 1 and finite, got %v", c.K)
		}
	case LossBT, LossReg:
	default:
		return fmt.Errorf("unknown loss %q (known: %s, %s, %s)", c.Kind, LossBTT, LossBT, LossReg)
	}
	return nil
}

func (c LossConfig) k() float64 {
	if c.K == 0 {
		return DefaultTieK
	}
	return c.K
}

// sigmoid is 1/(1+e^-x).
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// BTTDecisive is the Rao-Kupper loss of a decisive label with Δ = r_chosen - r_rejected
// (VideoAlign, arXiv 2501.13918, §3.2 and trainer.py, loss_type "btt"):
//
//	L = -log σ(Δ - ln k),   dL/dΔ = -σ(ln k - Δ)
//
// that is -log P(chosen ≻ rejected) with P = e^{r_c}/(e^{r_c} + k e^{r_r}).
func BTTDecisive(delta, k float64) (loss, grad float64) {
	lk := math.Log(k)
	return -LogSigmoid(delta - lk), -sigmoid(lk - delta)
}

// BTTTie is the Rao-Kupper loss of a tie label, symmetric in Δ = r_A - r_B:
//
//	L = -log σ(Δ - ln k) - log σ(-Δ - ln k) - ln(k² - 1),   dL/dΔ = σ(Δ + ln k) - σ(ln k - Δ)
//
// that is -log P(tie) with P(tie) = (k²-1) e^{r_A} e^{r_B} / ((e^{r_A} + k e^{r_B})(e^{r_B} + k e^{r_A})).
// Its minimum is ln((k+1)/(k-1)) at Δ = 0.
func BTTTie(delta, k float64) (loss, grad float64) {
	lk := math.Log(k)
	loss = -LogSigmoid(delta-lk) - LogSigmoid(-delta-lk) - math.Log(k*k-1)
	return loss, sigmoid(delta+lk) - sigmoid(lk-delta)
}

// BTDecisive is the Bradley-Terry loss (Bradley & Terry 1952) with Δ = r_chosen - r_rejected:
//
//	L = -log σ(Δ),   dL/dΔ = -σ(-Δ)
func BTDecisive(delta float64) (loss, grad float64) {
	return -LogSigmoid(delta), -sigmoid(-delta)
}

// LossResult is the loss of a batch of pairs and its gradient.
type LossResult struct {
	Loss   float64   // mean over the counted (pair, dimension) entries (reg: (sample, dimension))
	PerDim []float64 // (D) mean loss per dimension; NaN where nothing counted
	Count  []int     // (D) entries counted per dimension
	DA, DB [][]float32
	// DA, DB (N, D) are dLoss/dr_A and dLoss/dr_B.
}

// PairLoss computes the loss of N pairs scored rA, rB (N, D) with labels (N, D):
//
//	btt   entries with a label; decisive BTTDecisive, ties BTTTie
//	bt    decisive entries only (ties and none left out), BTDecisive
//	reg   (r - s)² over every sample and dimension with a finite target in sA, sB (N, D)
//	      (NaN = no target); labels are not read
//
// The loss is the mean over the counted entries of all dimensions (VideoAlign averages its
// three heads' terms the same way); the gradient is that of the mean. sA and sB may be nil
// except for reg. It fails when nothing counts.
func (c LossConfig) PairLoss(rA, rB [][]float32, labels [][]Label, sA, sB [][]float32) (*LossResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	N := len(rA)
	if len(rB) != N || (c.Kind != LossReg && len(labels) != N) || N == 0 {
		return nil, fmt.Errorf("pair loss: %d A rows, %d B rows, %d label rows", len(rA), len(rB), len(labels))
	}
	D := len(rA[0])
	res := &LossResult{PerDim: make([]float64, D), Count: make([]int, D), DA: zeros(N, D), DB: zeros(N, D)}
	type term struct {
		n, d int
		gA   float64 // dL/dr_A of this entry (before averaging)
		gB   float64
	}
	var terms []term
	add := func(n, d int, loss, gA, gB float64) {
		res.PerDim[d] += loss
		res.Count[d]++
		res.Loss += loss
		terms = append(terms, term{n, d, gA, gB})
	}
	k := c.k()
	for n := range N {
		if len(rA[n]) != D || len(rB[n]) != D {
			return nil, fmt.Errorf("pair loss: pair %d has %d and %d scores, want %d", n, len(rA[n]), len(rB[n]), D)
		}
		if c.Kind == LossReg {
			for d := range D {
				for side, s := range [2][][]float32{sA, sB} {
					if s == nil || len(s[n]) != D || math.IsNaN(float64(s[n][d])) {
						continue
					}
					r := float64(rA[n][d])
					if side == 1 {
						r = float64(rB[n][d])
					}
					e := r - float64(s[n][d])
					if side == 0 {
						add(n, d, e*e, 2*e, 0)
					} else {
						add(n, d, e*e, 0, 2*e)
					}
				}
			}
			continue
		}
		if len(labels[n]) != D {
			return nil, fmt.Errorf("pair loss: pair %d has %d labels, want %d", n, len(labels[n]), D)
		}
		for d, l := range labels[n] {
			delta := float64(rA[n][d]) - float64(rB[n][d]) // r_A - r_B
			switch {
			case l == LabelNone:
			case l == LabelTie && c.Kind == LossBTT:
				loss, g := BTTTie(delta, k)
				add(n, d, loss, g, -g)
			case l == LabelTie: // bt leaves ties out
			default:
				s := l.Sign() // Δ_chosen = s*(r_A - r_B)
				var loss, g float64
				if c.Kind == LossBTT {
					loss, g = BTTDecisive(s*delta, k)
				} else {
					loss, g = BTDecisive(s * delta)
				}
				add(n, d, loss, s*g, -s*g)
			}
		}
	}
	total := len(terms)
	if total == 0 {
		return nil, errors.New("pair loss: no labelled entries in the batch")
	}
	res.Loss /= float64(total)
	for d := range D {
		if res.Count[d] > 0 {
			res.PerDim[d] /= float64(res.Count[d])
		} else {
			res.PerDim[d] = math.NaN()
		}
	}
	for _, t := range terms {
		res.DA[t.n][t.d] += float32(t.gA / float64(total))
		res.DB[t.n][t.d] += float32(t.gB / float64(total))
	}
	return res, nil
}

func zeros(n, d int) [][]float32 {
	out := make([][]float32, n)
	flat := make([]float32, n*d)
	for i := range out {
		out[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return out
}

// ---- accuracy ----

// AccuracyWithoutTies is the share of decisive labels (A or B) whose sign the model gets
// right, deltas = r_A - r_B; ties and LabelNone are left out, and Δ = 0 counts as wrong
// (calc_accuracy_without_ties). n is the number of decisive labels; acc is NaN when n = 0.
func AccuracyWithoutTies(deltas []float64, labels []Label) (acc float64, n int) {
	correct := 0
	for i, l := range labels {
		if l == LabelA || l == LabelB {
			n++
			if l.Sign()*deltas[i] > 0 {
				correct++
			}
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(correct) / float64(n), n
}

// AccuracyAt is the accuracy over every labelled entry (A, B and tie) when the model
// predicts a tie for |Δ| < tau and the sign of Δ otherwise (pairwise accuracy with ties,
// Deutsch, Foster and Freitag 2023, arXiv 2305.14324). n counts the labelled entries; acc is
// NaN when n = 0.
func AccuracyAt(deltas []float64, labels []Label, tau float64) (acc float64, n int) {
	correct := 0
	for i, l := range labels {
		if l == LabelNone {
			continue
		}
		n++
		m := deltas[i]
		switch {
		case math.Abs(m) < tau:
			if l == LabelTie {
				correct++
			}
		case l != LabelTie && l.Sign()*m > 0:
			correct++
		}
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return float64(correct) / float64(n), n
}

// AccuracyWithTies is the tie-calibrated accuracy of Deutsch et al. (2023), as in
// VideoAlign's calc_accuracy.py: the tie threshold tau is searched to maximise AccuracyAt on
// these very entries. Candidates are tau = 0 (no tie predicted) and, for the distinct values
// a_1 < a_2 < ... of |Δ|, a threshold just above each a_j: the midpoint (a_j + a_{j+1})/2, or
// the next float above the largest; the smallest best tau wins. (calc_accuracy.py predicts a
// tie for |Δ| <= a_j and does not try "no ties"; the accuracies it can reach are the same
// except for that candidate.) A NaN Δ (a model gone non-finite) is wrong at every tau, as
// AccuracyAt counts it. O(n log n).
func AccuracyWithTies(deltas []float64, labels []Label) (acc, tau float64, n int) {
	type entry struct {
		abs float64
		l   Label
		ok  bool // decisive and right when no tie is predicted
	}
	var es []entry
	correct := 0
	for i, l := range labels {
		if l == LabelNone {
			continue
		}
		n++
		if math.IsNaN(deltas[i]) { // no |Δ| to order by, and the search below needs one
			continue
		}
		ok := l != LabelTie && l.Sign()*deltas[i] > 0
		if ok {
			correct++
		}
		es = append(es, entry{math.Abs(deltas[i]), l, ok})
	}
	if n == 0 {
		return math.NaN(), 0, 0
	}
	sort.Slice(es, func(i, j int) bool { return es[i].abs < es[j].abs })
	best, tau := correct, 0.0
	for i := 0; i < len(es); {
		j := i
		for ; j < len(es) && es[j].abs == es[i].abs; j++ {
			// Entries with this |Δ| move to "tie predicted".
			switch {
			case es[j].l == LabelTie:
				correct++
			case es[j].ok:
				correct--
			}
		}
		if correct > best {
			best = correct
			if j < len(es) {
				tau = (es[i].abs + es[j].abs) / 2
			} else {
				tau = math.Nextafter(es[i].abs, math.Inf(1))
			}
		}
		i = j
	}
	return float64(best) / float64(n), tau, n
}

// DimAccuracy is the accuracy of one dimension over a set of pairs.
type DimAccuracy struct {
	Dim             string  `json:"dim"`
	Pairs           int     `json:"pairs"`             // labelled entries (A, B or tie)
	Decisive        int     `json:"decisive"`          // entries labelled A or B
	Ties            int     `json:"ties"`              // entries labelled tie
	AccWithoutTies  float64 `json:"acc_without_ties"`  // AccuracyWithoutTies
	AccWithTies     float64 `json:"acc_with_ties"`     // AccuracyWithTies (tau searched here)
	TieEps          float64 `json:"tie_eps"`           // the tau found
	AccWithTiesAtEp float64 `json:"acc_with_ties_at"`  // AccuracyAt a given tau (e.g. from validation)
	AtEps           float64 `json:"at_eps"`            // that given tau
	MeanAbsDelta    float64 `json:"mean_abs_delta"`    // mean |r_A - r_B| over labelled entries
	MeanChosenDelta float64 `json:"mean_chosen_delta"` // mean r_chosen - r_rejected over decisive entries
}

// MarshalJSON writes NaN values (nothing to measure) as null.
func (a DimAccuracy) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		Dim             string   `json:"dim"`
		Pairs           int      `json:"pairs"`
		Decisive        int      `json:"decisive"`
		Ties            int      `json:"ties"`
		AccWithoutTies  *float64 `json:"acc_without_ties"`
		AccWithTies     *float64 `json:"acc_with_ties"`
		TieEps          *float64 `json:"tie_eps"`
		AccWithTiesAtEp *float64 `json:"acc_with_ties_at"`
		AtEps           *float64 `json:"at_eps"`
		MeanAbsDelta    *float64 `json:"mean_abs_delta"`
		MeanChosenDelta *float64 `json:"mean_chosen_delta"`
	}{a.Dim, a.Pairs, a.Decisive, a.Ties, num(a.AccWithoutTies), num(a.AccWithTies), num(a.TieEps),
		num(a.AccWithTiesAtEp), num(a.AtEps), num(a.MeanAbsDelta), num(a.MeanChosenDelta)})
}

// PairAccuracy evaluates every dimension on scored pairs: rA, rB (N, D), labels (N, D).
// atEps (D, or nil) are fixed tie thresholds, e.g. Calibration.TieEps from the validation
// set, for AccWithTiesAtEp.
func PairAccuracy(dims []string, rA, rB [][]float32, labels [][]Label, atEps []float64) []DimAccuracy {
	out := make([]DimAccuracy, len(dims))
	for d, name := range dims {
		var deltas []float64
		var ls []Label
		for n := range labels {
			if l := labels[n][d]; l != LabelNone {
				deltas = append(deltas, float64(rA[n][d])-float64(rB[n][d]))
				ls = append(ls, l)
			}
		}
		eps := math.NaN()
		if atEps != nil {
			eps = atEps[d]
		}
		out[d] = DeltaAccuracy(name, deltas, ls, eps)
	}
	return out
}

// DeltaAccuracy is the accuracy of one dimension, name, from the score differences
// deltas = r_A - r_B of labelled entries ls (LabelNone left out); atEps is a fixed tie
// threshold for AccWithTiesAtEp (NaN: none).
func DeltaAccuracy(name string, deltas []float64, ls []Label, atEps float64) DimAccuracy {
	a := DimAccuracy{Dim: name}
	var ds []float64
	var labels []Label
	sumAbs, sumChosen := 0.0, 0.0
	for i, l := range ls {
		if l == LabelNone {
			continue
		}
		m := deltas[i]
		ds, labels = append(ds, m), append(labels, l)
		sumAbs += math.Abs(m)
		if l == LabelTie {
			a.Ties++
		} else {
			a.Decisive++
			sumChosen += l.Sign() * m
		}
	}
	a.Pairs = len(labels)
	a.AccWithoutTies, _ = AccuracyWithoutTies(ds, labels)
	a.AccWithTies, a.TieEps, _ = AccuracyWithTies(ds, labels)
	a.MeanAbsDelta, a.MeanChosenDelta = math.NaN(), math.NaN()
	if a.Pairs > 0 {
		a.MeanAbsDelta = sumAbs / float64(a.Pairs)
	}
	if a.Decisive > 0 {
		a.MeanChosenDelta = sumChosen / float64(a.Decisive)
	}
	a.AccWithTiesAtEp, a.AtEps = math.NaN(), math.NaN()
	if !math.IsNaN(atEps) {
		a.AtEps = atEps
		a.AccWithTiesAtEp, _ = AccuracyAt(ds, labels, atEps)
	}
	return a
}
