// Tests of the paired comparison against hand-computed win rates, ties and intervals.
//
// Test: go test ./rewards/scoring -run Compare
package scoring

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9 }

func TestComparePaired(t *testing.T) {
	cases := []struct {
		name         string
		base, cand   []float64
		eps          float64
		w, ti, l     int
		rate         float64
		rateCI       [2]float64
		meanB, meanC float64
		change       float64
		changeCI     [2]float64
	}{
		{
			// d = (0.5, 0.2, 0.05, -0.3, 0): wins 0.5, 0.2; ties 0.05, 0 (|d| <= 0.1); loss -0.3.
			// Outcomes (1, 1, 0.5, 0, 0.5): rate 3/5 = 0.6, squared deviations
			// 0.16+0.16+0.01+0.36+0.01 = 0.70, s² = 0.70/4 = 0.175, half = 1.95996·√(0.175/5) = 0.366676.
			// Change: mean 0.45/5 = 0.09, squared deviations 0.1681+0.0121+0.0016+0.1521+0.0081
			// = 0.342, s² = 0.0855, half = 1.95996·√(0.0855/5) = 0.256299.
			name: "ties within eps", eps: 0.1,
			base: []float64{1, 0, -1, 0.5, 2}, cand: []float64{1.5, 0.2, -0.95, 0.2, 2},
			w: 2, ti: 2, l: 1, rate: 0.6, rateCI: [2]float64{0.23332431397174097, 0.966675686028259},
			meanB: 0.5, meanC: 0.59, change: 0.09, changeCI: [2]float64{-0.16629854824768228, 0.34629854824768225},
		},
		{
			// Outcomes (1, 1, 1, 0): rate 0.75, s² = (3·0.0625 + 0.5625)/3 = 0.25, half = 1.95996·0.5/2
			// = 0.489991; 1.239991 is clamped to 1. d = (1, 1, 1, -1): mean 0.5, s² = 3/3 = 1,
			// half = 1.95996·1/2 = 0.979982.
			name: "interval clamped", eps: 0,
			base: []float64{0, 0, 0, 0}, cand: []float64{1, 1, 1, -1},
			w: 3, ti: 0, l: 1, rate: 0.75, rateCI: [2]float64{0.2600090038649865, 1},
			meanB: 0, meanC: 0.5, change: 0.5, changeCI: [2]float64{-0.479981992270027, 1.479981992270027},
		},
		{
			// Without a threshold only equal scores tie: 1e-9 above is a win, 1e-9 below a loss.
			// Outcomes (0.5, 1, 0): rate 0.5, s² = (0 + 0.25 + 0.25)/2 = 0.25, half = 1.95996·0.5/√3
			// = 0.566, beyond [0, 1] on both sides.
			name: "exact ties", eps: 0,
			base: []float64{0, 0, 0}, cand: []float64{0, 1e-9, -1e-9},
			w: 1, ti: 1, l: 1, rate: 0.5, rateCI: [2]float64{0, 1},
			meanB: 0, meanC: 0, change: 0, changeCI: [2]float64{-1.959963984540054 * 1e-9 / math.Sqrt(3), 1.959963984540054 * 1e-9 / math.Sqrt(3)},
		},
		{
			name: "identical", eps: 0,
			base: []float64{0.3, -1.2, 2}, cand: []float64{0.3, -1.2, 2},
			w: 0, ti: 3, l: 0, rate: 0.5, rateCI: [2]float64{0.5, 0.5},
			meanB: 1.1 / 3, meanC: 1.1 / 3, change: 0, changeCI: [2]float64{0, 0},
		},
	}
	for _, c := range cases {
		p, err := ComparePaired(c.base, c.cand, c.eps)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if p.N != len(c.base) || p.Wins != c.w || p.Ties != c.ti || p.Losses != c.l || p.TieEps != c.eps {
			t.Errorf("%s: n %d, wins/ties/losses %d/%d/%d, eps %v; want %d, %d/%d/%d, %v", c.name, p.N, p.Wins, p.Ties, p.Losses, p.TieEps,
				len(c.base), c.w, c.ti, c.l, c.eps)
		}
		if !near(p.WinRate, c.rate) || !near(p.WinRateCI[0], c.rateCI[0]) || !near(p.WinRateCI[1], c.rateCI[1]) {
			t.Errorf("%s: win rate %v %v, want %v %v", c.name, p.WinRate, p.WinRateCI, c.rate, c.rateCI)
		}
		if !near(p.MeanBaseline, c.meanB) || !near(p.MeanCandidate, c.meanC) || !near(p.MeanChange, c.change) ||
			!near(p.ChangeCI[0], c.changeCI[0]) || !near(p.ChangeCI[1], c.changeCI[1]) {
			t.Errorf("%s: means %v -> %v, change %v %v; want %v -> %v, %v %v", c.name, p.MeanBaseline, p.MeanCandidate,
				p.MeanChange, p.ChangeCI, c.meanB, c.meanC, c.change, c.changeCI)
		}
	}
}

func TestComparePairedErrors(t *testing.T) {
	cases := []struct {
		base, cand []float64
		eps        float64
		want       string
	}{
		{[]float64{1, 2}, []float64{1}, 0, "2 baseline scores, 1 candidate"},
		{[]float64{1}, []float64{1}, 0, "1 pairs; an interval needs at least 2"},
		{[]float64{1, 2}, []float64{1, math.NaN()}, 0, "pair 1 has scores 2 (baseline) and NaN"},
		{[]float64{1, 2}, []float64{1, 2}, -0.1, "tie threshold -0.1"},
	}
	for _, c := range cases {
		if _, err := ComparePaired(c.base, c.cand, c.eps); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v vs %v: err %v, want %q", c.base, c.cand, err, c.want)
		}
	}
}

func TestTieEpsZ(t *testing.T) {
	c := &rewards.Calibration{Dims: []string{"vq", "ta", "mq"}, Mean: []float64{0, 0, 0}, Std: []float64{0.5, 2, 1}}
	if got := TieEpsZ(c); !reflect.DeepEqual(got, []float64{0, 0, 0}) {
		t.Errorf("without thresholds: %v", got)
	}
	// z_A - z_B = (r_A - r_B)/std: 0.1/0.5 = 0.2; no threshold for ta; 0.3/1.
	c.TieEps = []float64{0.1, 0, 0.3}
	if got := TieEpsZ(c); !reflect.DeepEqual(got, []float64{0.2, 0, 0.3}) {
		t.Errorf("thresholds in z: %v, want [0.2 0 0.3]", got)
	}
}
