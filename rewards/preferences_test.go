// Tests of preference pairs: the held-out split, the set's errors, the pairs drawn (share,
// the training split only, labelled dimensions only, the file's label for the pair's kind),
// unchanged pairs without a file, the held-out evaluation, the tokenizer's vocabulary and
// the resume check.
package rewards

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// prefPair is a pair of 3x32x32 samples of constant bytes a and b, labelled (vq, ta), its
// key and source naming i.
func prefPair(i int, prompt string, a, b uint8, vq, ta Label) PreferencePair {
	return PreferencePair{Prompt: prompt, A: bytes.Repeat([]byte{a}, 3*32*32), B: bytes.Repeat([]byte{b}, 3*32*32),
		Labels: []Label{vq, ta}, Key: fmt.Sprintf("pair %d", i), Source: fmt.Sprintf("p.jsonl:%d", i+1)}
}

// prefPairs are n pairs whose A byte is 2i and B byte 2i+1 (mod 256): vq A, B or tie by i mod
// 3, ta LabelNone for every third pair.
func prefPairs(n int) []PreferencePair {
	var out []PreferencePair
	for i := range n {
		vq := []Label{LabelA, LabelB, LabelTie}[i%3]
		ta := LabelA
		if i%3 == 2 {
			ta = LabelNone
		}
		out = append(out, prefPair(i, fmt.Sprintf("word%d apple", i%7), uint8(2*i), uint8(2*i+1), vq, ta))
	}
	return out
}

func TestHeldOutPreference(t *testing.T) {
	// FNV-1a 64 of "prefs/" + key, computed apart (Python): "a" 11511831017575220521 (mod 100:
	// 21), "i" ...209 (9), "z" ...200 (0), "c" ...099 (99).
	for k, want := range map[string]bool{"a": false, "i": true, "z": true, "c": false} {
		if HeldOutPreference(k) != want {
			t.Errorf("key %q held out %v, want %v", k, !want, want)
		}
	}
	// About HeldOutPreferencePerCent of keys.
	held := 0
	for i := range 10000 {
		if HeldOutPreference(fmt.Sprintf("prompt %d\x00a.png\x00b.png", i)) {
			held++
		}
	}
	// Binomial(10000, 0.1): 5 standard deviations are 150.
	if held < 850 || held > 1150 {
		t.Errorf("%d of 10000 held out, want about 1000", held)
	}
}

func TestNewPreferenceSet(t *testing.T) {
	pairs := prefPairs(300)
	s, err := NewPreferenceSet([]string{DimVQ, DimTA}, pairs)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Train)+len(s.HeldOut) != 300 || len(s.HeldOut) == 0 {
		t.Fatalf("%d training and %d held-out pairs of 300", len(s.Train), len(s.HeldOut))
	}
	for _, p := range s.HeldOut {
		if !HeldOutPreference(p.Key) {
			t.Fatalf("%s held out", p.Key)
		}
	}
	ta := 0
	for _, p := range s.Train {
		if HeldOutPreference(p.Key) {
			t.Fatalf("%s trains", p.Key)
		}
		if p.Labels[1] != LabelNone {
			ta++
		}
	}
	if s.Count(DimVQ) != len(s.Train) || s.Count(DimTA) != ta || !s.Has(DimTA) || s.Has(DimMQ) {
		t.Errorf("counts vq %d ta %d (want %d, %d), has mq %v", s.Count(DimVQ), s.Count(DimTA), len(s.Train), ta, s.Has(DimMQ))
	}

	none := prefPair(0, "p", 0, 1, LabelNone, LabelNone)
	short := prefPair(1, "p", 0, 1, LabelA, LabelA)
	short.B = short.B[:10]
	var heldOnly []PreferencePair
	for i := 0; len(heldOnly) < 2; i++ {
		if p := prefPair(i, "p", 0, 1, LabelA, LabelA); HeldOutPreference(p.Key) {
			heldOnly = append(heldOnly, p)
		}
	}
	for _, c := range []struct {
		dims  []string
		pairs []PreferencePair
		want  string
	}{
		{nil, pairs, "no dimensions"},
		{[]string{DimVQ}, pairs, "p.jsonl:1: 2 labels for 1 dimensions"},
		{[]string{DimVQ, DimTA}, []PreferencePair{none}, "p.jsonl:1: the pair labels no dimension"},
		{[]string{DimVQ, DimTA}, []PreferencePair{short}, "p.jsonl:2: samples of 3072 and 10 bytes"},
		{[]string{DimVQ, DimTA}, heldOnly, "all 2 pairs fall in the held-out 10%"},
	} {
		if _, err := NewPreferenceSet(c.dims, c.pairs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.dims, err, c.want)
		}
	}
}

func TestPairsPreferences(t *testing.T) {
	d, _ := synthData(false)
	// The file labels ta and mq; the model scores vq and ta. 120 pairs: every sample's byte
	// is its own.
	file := prefPairs(120) // ta A, B or tie; mq A or none
	prefs, err := NewPreferenceSet([]string{DimTA, DimMQ}, file)
	if err != nil {
		t.Fatal(err)
	}
	byByte := map[uint8]PreferencePair{}
	for _, p := range file {
		byByte[p.A[0]] = p
	}

	checkShareWithoutSource(t, d, PairConfig{Dims: []string{DimVQ, DimTA}, PreferenceShare: 0.5})

	g, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}, Preferences: prefs, PreferenceShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	pairs := sourcePairs(t, g, 2000, "preference")
	ties := 0
	for _, p := range pairs {
		// The sides may be swapped: find the file's pair by either byte.
		f, ok := byByte[p.A.Pixels[0]]
		swapped := false
		if !ok {
			f, swapped = byByte[p.B.Pixels[0]], true
		}
		if p.Kind != DimTA || HeldOutPreference(f.Key) || p.A.Prompt != f.Prompt || f.Labels[0] == LabelNone {
			t.Fatalf("file pair of kind %s, prompt %q: want a training pair labelled in ta (file pair %s)", p.Kind, p.A.Prompt, f.Key)
		}
		want := f.Labels[0]
		if swapped && want != LabelTie {
			want = map[Label]Label{LabelA: LabelB, LabelB: LabelA}[want]
		}
		if p.Labels[0] != LabelNone || p.Labels[1] != want {
			t.Fatalf("file pair %s: labels %v, want [none %v]", f.Key, p.Labels, want)
		}
		if want == LabelTie {
			ties++
			if p.Note != "tie-preference" {
				t.Fatalf("tie of note %s", p.Note)
			}
		}
	}
	// Binomial(1000 ta pairs, 0.5): 5 standard deviations are 79.
	if n := len(pairs); n < 421 || n > 579 {
		t.Errorf("%d file pairs of 1000 ta pairs, want about 500", n)
	}
	if ties == 0 {
		t.Error("no tie among the file's ta pairs")
	}
	checkTrainingOnly(t, g, "preference")

	// The held-out split: every held-out pair that labels ta, once, in file order; mq (not
	// the model's) is left out.
	held, err := g.Pairs(SplitPreferences, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint8
	for _, p := range file {
		if HeldOutPreference(p.Key) && p.Labels[0] != LabelNone {
			want = append(want, p.A[0])
		}
	}
	var got []uint8
	for _, p := range held {
		if p.Kind != DimTA {
			t.Fatalf("held-out pair of kind %s", p.Kind)
		}
		got = append(got, p.A.Pixels[0])
	}
	if len(want) == 0 || !slices.Equal(got, want) || g.HeldOutPreferencePairs() != len(want) {
		t.Errorf("held-out pairs %v (count %d), want %v", got, g.HeldOutPreferencePairs(), want)
	}
	base, _ := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}})
	if _, err := base.Pairs(SplitPreferences, 0, 0, 0); err == nil || base.HeldOutPreferencePairs() != 0 {
		t.Error("held-out preference pairs without a file")
	}

	// The training pairs' prompts join the vocabulary: "word3" names no emoji.
	tok, err := BuildTokenizer(g, 8)
	if err != nil {
		t.Fatal(err)
	}
	baseTok, _ := BuildTokenizer(base, 8)
	if tok.VocabSize() <= baseTok.VocabSize() {
		t.Errorf("vocabulary %d with the file's prompts, %d without", tok.VocabSize(), baseTok.VocabSize())
	}
}

// A run on preference pairs evaluates their held-out part at the end (eval-preferences.json),
// and resumes only with the same file and share.
func TestTrainPreferences(t *testing.T) {
	d, _ := synthData(false)
	prefs, err := NewPreferenceSet([]string{DimVQ, DimTA}, prefPairs(120))
	if err != nil {
		t.Fatal(err)
	}
	setup := func(dir, sha string, share float64) *Trainer {
		cfg := DefaultTrainConfig()
		cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs = 4, 1, 1, 16, 0
		cfg.Pairs, cfg.PairsSHA256, cfg.PairsShare = "p.jsonl", sha, share
		pc := cfg.PairConfig([]string{DimVQ, DimTA})
		pc.Preferences = prefs
		gen, err := NewPairGen(d, nil, pc)
		if err != nil {
			t.Fatal(err)
		}
		return tinyNativeTrainer(t, cfg, gen, dir)
	}
	dir := t.TempDir()
	tr := setup(dir, "aaaa", 0.5)
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := tr.Finish(); err != nil {
		t.Fatal(err)
	}
	rep := tr.PreferenceEval
	if rep == nil || rep.Split != SplitPreferences || rep.Pairs != tr.Gen.HeldOutPreferencePairs() || rep.Pairs == 0 {
		t.Fatalf("preference evaluation %+v", rep)
	}
	if _, err := os.Stat(filepath.Join(dir, "eval-preferences.json")); err != nil {
		t.Error(err)
	}
	ck, _, _, err := ReadTrainingCheckpoint(filepath.Join(dir, "checkpoint-1.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sha   string
		share float64
		ok    bool
	}{{"aaaa", 0.5, true}, {"bbbb", 0.5, false}, {"aaaa", 0.25, false}} {
		err := setup(t.TempDir(), c.sha, c.share).Resume(ck)
		if (err == nil) != c.ok || err != nil && !strings.Contains(err.Error(), "resume with the same --pairs file") {
			t.Errorf("resume with sha %s share %v: %v", c.sha, c.share, err)
		}
	}
}

// EvaluateScoredPreferences on hand-computed scores: each pair once per labelled dimension of
// the model (the file's mq left out), the accuracies with and without ties, the searched and
// the given tie thresholds, the kinds; and its errors.
func TestEvaluateScoredPreferences(t *testing.T) {
	dims, fileDims := []string{DimVQ, DimTA}, []string{DimTA, DimVQ, "mq"}
	pairs := []PreferencePair{
		{Labels: []Label{LabelA, LabelB, LabelA}, Source: "p:1"},         // ta right (+1), vq right (-2)
		{Labels: []Label{LabelTie, LabelNone, LabelNone}, Source: "p:2"}, // ta tie at |0.1|
		{Labels: []Label{LabelB, LabelA, LabelNone}, Source: "p:3"},      // ta wrong (+1), vq wrong (-0.5)
	}
	// Rows over dims (vq, ta).
	rA := [][]float32{{1, 2}, {0, 0.5}, {0.5, 1}}
	rB := [][]float32{{3, 1}, {0, 0.4}, {1, 0}}
	rep, err := EvaluateScoredPreferences(dims, fileDims, pairs, rA, rB, []float64{1.5, 0.05})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Split != SplitPreferences || rep.Pairs != 5 {
		t.Errorf("split %q, %d pairs; want %q, 5 (2 vq + 3 ta labels)", rep.Split, rep.Pairs, SplitPreferences)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	vq, ta := rep.Dims[0], rep.Dims[1]
	// vq: deltas -2 (B, right) and -0.5 (A, wrong): 1/2 without ties; no threshold does better
	// (tau 0); at 1.5 the -0.5 pair is called a tie, still wrong: 1/2.
	if vq.Dim != DimVQ || vq.Pairs != 2 || vq.Ties != 0 || !near(vq.AccWithoutTies, 0.5) || !near(vq.AccWithTies, 0.5) ||
		vq.TieEps != 0 || !near(vq.AccWithTiesAtEp, 0.5) || !near(vq.MeanAbsDelta, 1.25) || !near(vq.MeanChosenDelta, 0.75) {
		t.Errorf("vq: %+v", vq)
	}
	// ta: deltas +1 (A, right), 0.1 (tie), +1 (B, wrong): 1/2 without ties; tau in (0.1, 1)
	// gets the tie right, 2/3, at the midpoint 0.55; at 0.05 no tie is called: 1/3.
	if ta.Dim != DimTA || ta.Pairs != 3 || ta.Ties != 1 || ta.Decisive != 2 || !near(ta.AccWithoutTies, 0.5) ||
		!near(ta.AccWithTies, 2.0/3) || !near(ta.TieEps, 0.55) || !near(ta.AccWithTiesAtEp, 1.0/3) {
		t.Errorf("ta: %+v", ta)
	}
	wantKinds := map[string]int{"vq/preference": 2, "ta/preference": 2, "ta/tie": 1}
	wantAcc := map[string]float64{"vq/preference": 0.5, "ta/preference": 0.5, "ta/tie": 0}
	if fmt.Sprint(rep.ByNote) != fmt.Sprint(wantKinds) || fmt.Sprint(rep.AccByNote) != fmt.Sprint(wantAcc) {
		t.Errorf("kinds %v, accuracy %v; want %v, %v", rep.ByNote, rep.AccByNote, wantKinds, wantAcc)
	}
	// Without thresholds, the tie kind has no accuracy and the given-threshold one is NaN.
	rep, err = EvaluateScoredPreferences(dims, fileDims, pairs, rA, rB, nil)
	if err != nil || !math.IsNaN(rep.Dims[1].AccWithTiesAtEp) {
		t.Errorf("without eps: %v, %+v", err, rep)
	} else if _, ok := rep.AccByNote["ta/tie"]; ok {
		t.Errorf("without eps: accuracy of ta/tie %v", rep.AccByNote)
	}

	for name, c := range map[string]struct {
		dims   []string
		rA, rB [][]float32
		want   string
	}{
		"rows":       {dims, rA[:2], rB, "3 pairs, scores of 2 and 3"},
		"short row":  {dims, [][]float32{{1}, {0, 0}, {0, 0}}, rB, "p:1: 1 and 2 scores for 2 dimensions"},
		"no overlap": {[]string{"aesthetic"}, rA, rB, "labels a dimension of the model"},
	} {
		if _, err := EvaluateScoredPreferences(c.dims, fileDims, pairs, c.rA, c.rB, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// OverallAccuracy on hand values: the weighted z-sum's differences (means cancel), the
// accuracies with and without ties, a pair without an overall label left out; without a
// calibration the weights act on raw scores; no overall labels, or a model with an overall
// dimension, give none.
func TestOverallAccuracy(t *testing.T) {
	dims, fileDims := []string{DimVQ, DimTA}, []string{DimVQ, DimOverall}
	cal := &Calibration{Dims: dims, Mean: []float64{5, -3}, Std: []float64{2, 4}}
	w := []float64{1, 2} // on z: raw weights 1/2 and 2/4
	pairs := []PreferencePair{
		{Labels: []Label{LabelA, LabelA}},      // Δ = 0.5·4 + 0.5·(-2) = 1: right
		{Labels: []Label{LabelA, LabelB}},      // Δ = 0.5·(-2) = -1: right
		{Labels: []Label{LabelNone, LabelTie}}, // Δ = 0.5·0.2 = 0.1: a tie
		{Labels: []Label{LabelB, LabelA}},      // Δ = 0.5·(-4) = -2: wrong
		{Labels: []Label{LabelA, LabelNone}},   // no overall label
	}
	rA := [][]float32{{4, 0}, {0, 0}, {1, 1}, {0, 0}, {9, 9}}
	rB := [][]float32{{0, 2}, {2, 0}, {1, 0.8}, {0, 4}, {0, 0}}
	acc, ok := OverallAccuracy(dims, w, cal, fileDims, pairs, rA, rB)
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
	// Without ties 2 of 3; with ties a threshold in (0.1, 1) gets the tie too: 3 of 4.
	if !ok || acc.Dim != DimOverall || acc.Pairs != 4 || acc.Ties != 1 || !near(acc.AccWithoutTies, 2.0/3) || !near(acc.AccWithTies, 0.75) ||
		!near(acc.TieEps, 0.55) || !near(acc.MeanAbsDelta, 1.025) || !near(acc.MeanChosenDelta, 0) || !math.IsNaN(acc.AccWithTiesAtEp) {
		t.Errorf("overall: %v %+v", ok, acc)
	}
	// Raw weights 1 and 2 without a calibration: the first pair's Δ = 4 - 4 = 0 is wrong.
	if acc, _ := OverallAccuracy(dims, w, nil, fileDims, pairs, rA, rB); !near(acc.AccWithoutTies, 1.0/3) {
		t.Errorf("without calibration: %+v", acc)
	}
	if _, ok := OverallAccuracy(dims, w, cal, []string{DimVQ, DimTA}, pairs, rA, rB); ok {
		t.Error("a file without overall labels gave an overall accuracy")
	}
	if _, ok := OverallAccuracy([]string{DimVQ, DimOverall}, w, nil, fileDims, pairs, rA, rB); ok {
		t.Error("a model with an overall dimension got a computed one")
	}
}
