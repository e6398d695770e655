// Tests of the combiners on hand-computed values.
//
// Run: go test ./rewards -run 'Combine|Linear|Unit|LogSigmoid|Pareto|Reference|Quantile'
package rewards

import (
	"math"
	"reflect"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestLinearAndUnitDirection(t *testing.T) {
	z := [][]float64{{1, 2}, {-1, 0.5}}
	if u := Linear(z, []float64{1, 2}); !reflect.DeepEqual(u, []float64{5, 0}) {
		t.Errorf("Linear = %v, want [5 0]", u)
	}
	v, err := UnitDirection([]float64{3, 4})
	if err != nil || !near(v[0], 0.6, 1e-15) || !near(v[1], 0.8, 1e-15) {
		t.Fatalf("UnitDirection = %v, %v", v, err)
	}
	u, err := Directional([][]float64{{1, 1}, {2, -1}}, []float64{3, 4})
	if err != nil || !near(u[0], 1.4, 1e-12) || !near(u[1], 0.4, 1e-12) {
		t.Errorf("Directional = %v, %v; want [1.4 0.4]", u, err)
	}
	if _, err := UnitDirection([]float64{0, 0}); err == nil {
		t.Error("zero direction accepted")
	}
}

func TestLogSigmoidCombiner(t *testing.T) {
	// log σ(0) = -ln 2, log σ(2) = -ln(1+e^-2) = -0.1269280110, log σ(-3) = -3 - ln(1+e^-3) = -3.0485873516.
	if got := LogSigmoid(0); !near(got, -math.Ln2, 1e-15) {
		t.Errorf("LogSigmoid(0) = %v", got)
	}
	if got := LogSigmoid(-800); got != -800 {
		t.Errorf("LogSigmoid(-800) = %v, want -800 (no overflow)", got)
	}
	z := [][]float64{{1, 0}, {3, -2}}
	ref := [][]float64{{1, -2}, {1, 1}}
	terms := LogSigmoidTerms(z, ref)
	want := [][]float64{{-math.Ln2, -0.1269280110}, {-0.1269280110, -3.0485873516}}
	for b := range want {
		for d := range want[b] {
			if !near(terms[b][d], want[b][d], 1e-9) {
				t.Errorf("term[%d][%d] = %.10f, want %.10f", b, d, terms[b][d], want[b][d])
			}
		}
	}
	u := LogSigmoidSum(z, ref, []float64{1, 2})
	if !near(u[0], -math.Ln2-2*0.1269280110, 1e-9) || !near(u[1], -0.1269280110-2*3.0485873516, 1e-9) {
		t.Errorf("LogSigmoidSum = %v", u)
	}
}

func TestPromptReferenceAndQuantile(t *testing.T) {
	z := [][]float64{{1, 10}, {3, 30}, {5, 50}, {2, 20}}
	ref, err := PromptReference(z, []string{"a", "a", "b", "a"}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{2, 20}, {2, 20}, {5, 50}, {2, 20}}
	if !reflect.DeepEqual(ref, want) {
		t.Errorf("reference %v, want %v", ref, want)
	}
	// q = 0.75 over [1,2,3,4]: h = 2.25 -> 3 + 0.25*(4-3) = 3.25.
	if q := Quantile([]float64{4, 1, 3, 2}, 0.75); q != 3.25 {
		t.Errorf("Quantile = %v, want 3.25", q)
	}
	if q := Quantile([]float64{7}, 0.9); q != 7 {
		t.Errorf("Quantile of one value = %v", q)
	}
	if _, err := PromptReference(z, []string{"a"}, 0.5); err == nil {
		t.Error("prompt count mismatch accepted")
	}
	if _, err := PromptReference(z, []string{"a", "a", "a", "a"}, 1.5); err == nil {
		t.Error("quantile 1.5 accepted")
	}
}

func TestParetoFronts(t *testing.T) {
	// A(1,3) B(2,2) C(3,1) D(1,1) E(0,0) F(2,2).
	z := [][]float64{{1, 3}, {2, 2}, {3, 1}, {1, 1}, {0, 0}, {2, 2}}
	fronts, err := ParetoFronts(z, []float64{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]int{{0, 1, 2, 5}, {3}, {4}}; !reflect.DeepEqual(fronts, want) {
		t.Errorf("fronts %v, want %v", fronts, want)
	}
	// Maximise the first, minimise the second: a = (z1, -z2).
	// C(3,-1) and E(0,0) are non-dominated; then B, D, F; then A (dominated by B and D).
	fronts, _ = ParetoFronts(z, []float64{1, -1})
	if want := [][]int{{2, 4}, {1, 3, 5}, {0}}; !reflect.DeepEqual(fronts, want) {
		t.Errorf("oriented fronts %v, want %v", fronts, want)
	}
	// A zero weight drops the dimension: fronts by the first coordinate alone.
	fronts, _ = ParetoFronts(z, []float64{1, 0})
	if want := [][]int{{2}, {1, 5}, {0, 3}, {4}}; !reflect.DeepEqual(fronts, want) {
		t.Errorf("one-dimensional fronts %v, want %v", fronts, want)
	}
	if _, err := ParetoFronts(z, []float64{0, 0}); err == nil {
		t.Error("all-zero weights accepted")
	}
}

func TestCombine(t *testing.T) {
	z := [][]float64{{1, 3}, {2, 2}, {0, 0}}
	w := []float64{1, 1}
	u, err := Combine(CombinePareto, z, w, nil)
	if err != nil || !reflect.DeepEqual(u, []float64{0, 0, -1}) {
		t.Errorf("pareto %v, %v", u, err)
	}
	u, _ = Combine(CombineLinear, z, w, nil)
	if !reflect.DeepEqual(u, []float64{4, 4, 0}) {
		t.Errorf("linear %v", u)
	}
	u, _ = Combine(CombineUnitDirection, z, w, nil)
	if !near(u[0], 4/math.Sqrt2, 1e-12) {
		t.Errorf("unit-direction %v", u)
	}
	ref := [][]float64{{1, 3}, {1, 3}, {1, 3}}
	u, _ = Combine(CombineLogSigmoid, z, w, ref)
	if !near(u[0], -2*math.Ln2, 1e-12) {
		t.Errorf("lsc %v", u)
	}
	if _, err := Combine(CombineLogSigmoid, z, w, nil); err == nil {
		t.Error("lsc without reference accepted")
	}
	if _, err := Combine("max", z, w, nil); err == nil {
		t.Error("unknown combiner accepted")
	}
}
