// Tests of pair selection among scored candidates and of the JSONL writers (read back by
// ReadPairs and ReadScored).
//
// Test: go test ./dpo -run 'Select|Write'

package dpo

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/alignkit/align/rewards"
)

func TestSelectPair(t *testing.T) {
	z := [][]float64{{0, 0}, {2, -1}, {1, 1}, {-1, -1}, {0.5, 1.5}}
	w := []float64{1, 1}
	tests := []struct {
		combine          string
		w                []float64
		chosen, rejected int
		ok               bool
	}{
		{rewards.CombineLinear, w, 2, 3, true},               // sums 0, 1, 2, -2, 2: the first of the best
		{rewards.CombineLinear, []float64{1, 0}, 1, 3, true}, // first dimension only
		{rewards.CombineUnitDirection, []float64{3, 0}, 1, 3, true},
		// Fronts: {1, 2, 4} (non-dominated), {0}, {3}: the best of the first by sum (2: 2 and
		// 4 tie, 2 first), the worst of the last (3).
		{rewards.CombinePareto, w, 2, 3, true},
		{rewards.CombineLogSigmoid, w, 2, 3, true},
	}
	for _, tt := range tests {
		c, r, ok, err := SelectPair(z, tt.w, tt.combine, 0.85)
		if err != nil || c != tt.chosen || r != tt.rejected || ok != tt.ok {
			t.Errorf("%s %v: (%d, %d, %v, %v), want (%d, %d, %v)", tt.combine, tt.w, c, r, ok, err, tt.chosen, tt.rejected, tt.ok)
		}
	}
	// All equally good: no pair.
	flat := [][]float64{{1, 0}, {0, 1}, {1, 0}}
	if _, _, ok, _ := SelectPair(flat, w, rewards.CombineLinear, 0.85); ok {
		t.Error("equal sums gave a pair")
	}
	if _, _, ok, _ := SelectPair(flat, w, rewards.CombinePareto, 0.85); ok {
		t.Error("one front gave a pair")
	}
	if _, _, ok, _ := SelectPair(z[:1], w, rewards.CombineLinear, 0.85); ok {
		t.Error("one candidate gave a pair")
	}
	if _, _, _, err := SelectPair(z, w, "best", 0.85); err == nil {
		t.Error("unknown combiner accepted")
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
	pairs, noPair, err := PairsFromScored(set, []float64{1, 0}, rewards.CombineLinear, 0.85)
	if err != nil || noPair != 1 || len(pairs) != 1 || pairs[0].Chosen != "d0" || pairs[0].Rejected != "d1" ||
		pairs[0].ChosenScores["vq"] != -2 || pairs[0].RejectedScores["ta"] != -1 {
		t.Fatalf("ta only: %+v, %d without, %v", pairs, noPair, err)
	}
	// Equal weights: sums -1, 2, 0 -> d1 over d0.
	pairs, _, _ = PairsFromScored(set, []float64{1, 1}, rewards.CombineLinear, 0.85)
	if len(pairs) != 1 || pairs[0].Chosen != "d1" || pairs[0].Rejected != "d0" {
		t.Fatalf("equal weights: %+v", pairs)
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
