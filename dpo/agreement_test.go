package dpo

import (
	"math"
	"strings"
	"testing"
)

// Hand-computed: prompt p1 with A = (1, 2, 3), B = (1, 3, 2); prompt p2 with A = (0, 1),
// B = (1, 0); a sample only A has and one under a one-sample prompt are left out.
// Centred: p1 A (-1, 0, 1), B (-1, 1, 0); p2 A (-.5, .5), B (.5, -.5):
// corr = (1 + 0 + 0 - .25 - .25) / sqrt(2.5 * 2.5) = 0.2; pairs (1,2) and (1,3) of p1
// concordant, (2,3) of p1 and (1,2) of p2 not: 0.5; best against worst: p1 B 2 > 1 yes, p2
// B 0 < 1 no: 0.5. Prompt p4, alike in A's ta and in B's, adds nothing but its samples.
func TestAgreement(t *testing.T) {
	item := func(prompt, path string, s ...float64) Scored { return Scored{Prompt: prompt, Path: path, Scores: s} }
	a := &ScoredSet{Dims: []string{"ta", "vq"}, Items: []Scored{
		item("p1", "x/1.png", 1, 5), item("p1", "x/2.png", 2, 0), item("p1", "x/3.png", 3, 1),
		item("p2", "x/4.png", 0, 0), item("p2", "x/5.png", 1, 0),
		item("p3", "x/6.png", 7, 7), item("p2", "x/only-a.png", 9, 9),
		item("p4", "x/7.png", 0, 1), item("p4", "x/8.png", 0, 2),
	}}
	b := &ScoredSet{Dims: []string{"mq", "ta", "vq"}, Items: []Scored{
		item("p2", "x/5.png", 0, 0, 2), item("p1", "x/3.png", 0, 2, 4), item("p1", "x/1.png", 0, 1, 4),
		item("p1", "x/2.png", 0, 3, 1), item("p2", "x/4.png", 0, 1, 2), item("p3", "x/6.png", 0, 0, 0),
		item("p4", "x/7.png", 0, 5, 3), item("p4", "x/8.png", 0, 5, 3),
	}}
	got, err := Agreement(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Dim != "ta" || got[1].Dim != "vq" {
		t.Fatalf("dims %+v", got)
	}
	ta := got[0]
	if ta.Prompts != 3 || ta.Samples != 7 || math.Abs(ta.Corr-0.2) > 1e-12 || ta.Pairs != 4 || ta.Concordance != 0.5 || ta.BestWorst != 0.5 {
		t.Errorf("ta %+v", ta)
	}
	// vq: p1 A (5, 0, 1) best 1.png worst 2.png, B (4, 1, 4): 4 > 1 -> 1; p2 A all alike:
	// left out of best-worst and of pairs; p4 A (1, 2), B (3, 3): a tie -> 0.5. Pairs of p1:
	// (1,2) A down B down yes, (1,3) A down B tie -> out, (2,3) A up B up yes: 2 of 2.
	vq := got[1]
	if vq.BestWorst != 0.75 || vq.Pairs != 2 || vq.Concordance != 1 {
		t.Errorf("vq %+v", vq)
	}
	b.Items[0].Prompt = "other"
	if _, err := Agreement(a, b); err == nil || !strings.Contains(err.Error(), "5.png") {
		t.Errorf("prompt mismatch: %v", err)
	}
	if _, err := Agreement(a, &ScoredSet{Dims: []string{"mq"}}); err == nil {
		t.Error("no common dimension accepted")
	}
}
