// Tests of pair selection among scored candidates and of the JSONL writers (read back by
// ReadPairs and ReadScored).
//
// Test: go test ./dpo -run 'Select|Write'

package dpo

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards"
)

func TestSelectPairs(t *testing.T) {
	z := [][]float64{{0, 0}, {2, -1}, {1, 1}, {-1, -1}, {0.5, 1.5}}
	w := []float64{1, 1}
	sel := func(combine string, w []float64) Selection {
		return Selection{Weights: w, Combine: combine, LSCQuantile: 0.85}
	}
	type selCase struct {
		s    Selection
		want [][2]int
	}
	tests := []selCase{
		{sel(rewards.CombineLinear, w), [][2]int{{2, 3}}},               // sums 0, 1, 2, -2, 2: the first of the best
		{sel(rewards.CombineLinear, []float64{1, 0}), [][2]int{{1, 3}}}, // first dimension only
		{sel(rewards.CombineUnitDirection, []float64{3, 0}), [][2]int{{1, 3}}},
		// Fronts: {1, 2, 4} (non-dominated), {0}, {3}: the best of the first by sum (2: 2 and
		// 4 tie, 2 first), the worst of the last (3).
		{sel(rewards.CombinePareto, w), [][2]int{{2, 3}}},
		{sel(rewards.CombineLogSigmoid, w), [][2]int{{2, 3}}},
	}
	// Two pairs per prompt: sums 0, 1, 2, -2, 2 ranked 2, 4, 1, 0, 3 (best first) and
	// 3, 0, 1, 2, 4 (worst first): (2, 3) and (4, 0); at most 5/2 = 2 pairs.
	two := sel(rewards.CombineLinear, w)
	two.PairsPerPrompt = 2
	tests = append(tests, selCase{two, [][2]int{{2, 3}, {4, 0}}})
	three := two
	three.PairsPerPrompt = 3
	tests = append(tests, selCase{three, [][2]int{{2, 3}, {4, 0}}})
	// A margin of 2.5 keeps (2, 3) (2 - -2 = 4) and drops (4, 0) (2 - 0 = 2).
	margin := two
	margin.MinMargin = 2.5
	tests = append(tests, selCase{margin, [][2]int{{2, 3}}})
	for _, tt := range tests {
		got, err := SelectPairs(z, tt.s)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %v (%v), want %v", tt.s, got, err, tt.want)
		}
	}
	// All equally good: no pair.
	flat := [][]float64{{1, 0}, {0, 1}, {1, 0}}
	for _, c := range []string{rewards.CombineLinear, rewards.CombinePareto} {
		if got, _ := SelectPairs(flat, sel(c, w)); len(got) != 0 {
			t.Errorf("%s: equal candidates gave %v", c, got)
		}
	}
	if got, _ := SelectPairs(z[:1], sel(rewards.CombineLinear, w)); len(got) != 0 {
		t.Error("one candidate gave a pair")
	}
	// A margin above the whole range: none.
	wide := sel(rewards.CombineLinear, w)
	wide.MinMargin = 5
	if got, _ := SelectPairs(z, wide); len(got) != 0 {
		t.Errorf("margin 5 kept %v", got)
	}
	if _, err := SelectPairs(z, sel("best", w)); err == nil {
		t.Error("unknown combiner accepted")
	}
	paretoTwo := sel(rewards.CombinePareto, w)
	paretoTwo.PairsPerPrompt = 2
	if _, err := SelectPairs(z, paretoTwo); err == nil || !strings.Contains(err.Error(), "pareto") {
		t.Errorf("pareto with 2 pairs per prompt: %v", err)
	}
}

// Pairs from a scored set: grouped by prompt in order of first appearance, whatever the
// interleaving; a prompt whose candidates tie gives none.
func TestPairsFromScored(t *testing.T) {
	item := func(prompt, path string, ta, vq float64) Scored {
		return Scored{Prompt: prompt, Path: path, Scores: []float64{ta, vq}}
	}
	set := &ScoredSet{Dims: []string{"ta", "vq"}, Items: []Scored{
		item("dog", "d0", 1, -2), item("cat", "c0", 0, 0), item("dog", "d1", -1, 3),
		item("cat", "c1", 0, 0), item("dog", "d2", 0, 0),
	}}
	// ta only: dog's ta are 1, -1, 0 -> d0 over d1; cat ties.
	sel := Selection{Weights: []float64{1, 0}, Combine: rewards.CombineLinear}
	pairs, noPair, err := PairsFromScored(set, sel)
	if err != nil || noPair != 1 || len(pairs) != 1 || pairs[0].Chosen != "d0" || pairs[0].Rejected != "d1" ||
		pairs[0].ChosenScores["vq"] != -2 || pairs[0].RejectedScores["ta"] != -1 {
		t.Fatalf("ta only: %+v, %d without, %v", pairs, noPair, err)
	}
	// Equal weights: sums -1, 2, 0 -> d1 over d0.
	sel.Weights = []float64{1, 1}
	pairs, _, _ = PairsFromScored(set, sel)
	if len(pairs) != 1 || pairs[0].Chosen != "d1" || pairs[0].Rejected != "d0" {
		t.Fatalf("equal weights: %+v", pairs)
	}
}

// Two pairs per prompt from a scored set, and a margin that drops the closer one.
func TestPairsFromScoredPerPrompt(t *testing.T) {
	var items []Scored
	for k, ta := range []float64{0.5, -1, 2, 0, -0.5} { // best 2, 0, 3, 4, 1; worst 1, 4, 3, 0, 2
		items = append(items, Scored{Prompt: "dog", Path: fmt.Sprintf("d%d", k), Scores: []float64{ta}})
	}
	set := &ScoredSet{Dims: []string{"ta"}, Items: items}
	sel := Selection{Weights: []float64{1}, Combine: rewards.CombineLinear, PairsPerPrompt: 2}
	pairs, _, err := PairsFromScored(set, sel)
	if err != nil || len(pairs) != 2 || pairs[0].Chosen != "d2" || pairs[0].Rejected != "d1" || pairs[1].Chosen != "d0" || pairs[1].Rejected != "d4" {
		t.Fatalf("2 per prompt: %+v (%v)", pairs, err)
	}
	sel.MinMargin = 1.5 // 2 - -1 = 3 kept, 0.5 - -0.5 = 1 dropped
	if pairs, _, _ = PairsFromScored(set, sel); len(pairs) != 1 || pairs[0].Chosen != "d2" {
		t.Fatalf("margin 1.5: %+v", pairs)
	}
}

func TestWriteJSONLRoundTrip(t *testing.T) {
	dir := t.TempDir()
	seed, ci, ri := uint64(7), 3, 5
	pairs := []Pair{
		{Prompt: "red \"apple\" <b>", Chosen: filepath.Join(dir, "img", "a.png"), Rejected: filepath.Join(dir, "img", "b.png"),
			ChosenScores: map[string]float64{"vq": 1.5}, RejectedScores: map[string]float64{"vq": -0.25}, Seed: &seed,
			ChosenIndex: &ci, RejectedIndex: &ri},
		{Prompt: "blue car", Chosen: filepath.Join(dir, "c.png"), Rejected: "/abs/d.png",
			Labels: map[string]rewards.Label{"ta": rewards.LabelA, "vq": rewards.LabelTie}},
	}
	var buf bytes.Buffer
	if err := WritePairsJSONL(&buf, pairs, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`"chosen":"img/a.png"`)) || bytes.Contains(buf.Bytes(), []byte("null")) {
		t.Errorf("written:\n%s", buf.String())
	}
	set, err := ReadPairsJSONL(&buf, "p.jsonl", dir, PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := set.Pairs[0], set.Pairs[1]
	if a.Prompt != pairs[0].Prompt || a.Chosen != pairs[0].Chosen || *a.Seed != 7 || *a.RejectedIndex != 5 || a.RejectedScores["vq"] != -0.25 ||
		b.Rejected != "/abs/d.png" || b.Labels["ta"] != rewards.LabelA || b.Labels["vq"] != rewards.LabelTie {
		t.Errorf("read back %+v", set.Pairs)
	}

	idx := 4
	sc := &ScoredSet{Dims: []string{"ta", "vq"}, Items: []Scored{
		{Prompt: "red apple", Path: filepath.Join(dir, "x.png"), Scores: []float64{0.5, -1}, Seed: &seed, Index: &idx},
		{Prompt: "red apple", Path: filepath.Join(dir, "y.png"), Scores: []float64{1, 2}},
	}}
	buf.Reset()
	if err := WriteScoredJSONL(&buf, sc, dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadScoredJSONL(&buf, "s.jsonl", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 2 || got.Items[0].Path != sc.Items[0].Path || got.Items[0].Scores[1] != -1 || *got.Items[0].Index != 4 ||
		got.Items[1].Scores[0] != 1 || got.Items[1].Seed != nil {
		t.Errorf("read back %+v", got.Items)
	}
}
