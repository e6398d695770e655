// Tests of the preference data readers: JSONL pairs, VideoAlign CSV, scored sets, label
// collapsing by weights, tie handling, file:line errors for every malformed line, and fuzz
// targets that must never panic.
//
// Test: go test ./dpo -run 'Read|Collapse'; fuzz: go test ./dpo -run '^$' -fuzz FuzzReadPairsJSONL
// (or FuzzReadVideoAlignCSV, FuzzReadScoredJSONL)

package dpo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards"
)

func TestCollapseLabels(t *testing.T) {
	A, B, T, N := rewards.LabelA, rewards.LabelB, rewards.LabelTie, rewards.LabelNone
	tests := []struct {
		labels []rewards.Label
		w      []float64
		want   rewards.Label
	}{
		{[]rewards.Label{A, B, A}, []float64{1, 1, 1}, A},
		{[]rewards.Label{A, B, B}, []float64{1, 1, 1}, B},
		{[]rewards.Label{A, B, T}, []float64{1, 1, 1}, T},  // +1 -1 0
		{[]rewards.Label{A, B, T}, []float64{2, 1, 5}, A},  // weights decide
		{[]rewards.Label{A, B, N}, []float64{0, 1, 1}, B},  // zero weight left out
		{[]rewards.Label{A, N, N}, []float64{0, 1, 1}, N},  // nothing counts
		{[]rewards.Label{T, T, T}, []float64{1, 1, 1}, T},  // all ties
		{[]rewards.Label{A, B, T}, []float64{-1, 0, 0}, B}, // negative weight reverses
	}
	for _, tt := range tests {
		if got := CollapseLabels(tt.labels, tt.w); got != tt.want {
			t.Errorf("CollapseLabels(%v, %v) = %v, want %v", tt.labels, tt.w, got, tt.want)
		}
	}
}

func readJSONL(t *testing.T, text string, o PairOptions) (*PairSet, error) {
	t.Helper()
	return ReadPairsJSONL(strings.NewReader(text), "pairs.jsonl", "/data", o)
}

func TestReadPairsJSONL(t *testing.T) {
	text := "\ufeff" + `{"prompt":"red apple","chosen":"a.png","rejected":"b.png","seed":7,"chosen_index":1,"rejected_index":0}

{"prompt":"blue car","chosen":"c.png","rejected":"/abs/d.png","labels":{"VQ":"A","ta":"B"},"chosen_scores":{"vq":1},"rejected_scores":{"vq":0}}
{"prompt":"blue car","chosen":"e.png","rejected":"f.png","labels":{"vq":"same","ta":"tie"}}
{"prompt":"x","chosen":"g.png","rejected":"h.png","labels":{"vq":"none"}}
`
	set, err := readJSONL(t, text, PairOptions{Weights: "ta=2,vq=1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Pairs) != 3 || set.Uninformative != 1 || set.Swapped != 1 || set.Ties() != 1 || strings.Join(set.Dims, ",") != "vq,ta" {
		t.Fatalf("set %+v", set)
	}
	p := set.Pairs[0]
	if p.Chosen != filepath.Join("/data", "a.png") || *p.Seed != 7 || *p.ChosenIndex != 1 || p.Source.Line != 1 || p.Labels != nil {
		t.Errorf("pair 0 %+v", p)
	}
	// Labels favour the rejected file under ta=2: turned round, labels and scores too.
	p = set.Pairs[1]
	if p.Chosen != "/abs/d.png" || p.Rejected != filepath.Join("/data", "c.png") || p.Labels["ta"] != rewards.LabelA ||
		p.Labels["vq"] != rewards.LabelB || p.ChosenScores["vq"] != 0 || p.Source.Line != 3 {
		t.Errorf("swapped pair %+v", p)
	}
	if !set.Pairs[2].Tie {
		t.Error("tie not flagged")
	}
	set, err = readJSONL(t, text, PairOptions{Weights: "ta=2,vq=1", Ties: TiesDrop})
	if err != nil || len(set.Pairs) != 2 || set.TiesDropped != 1 {
		t.Errorf("--ties drop: %v %+v", err, set)
	}
	// Equal weights: pair 2 (A, B) is a tie.
	set, _ = readJSONL(t, text, PairOptions{})
	if !set.Pairs[1].Tie || set.Swapped != 0 {
		t.Errorf("equal weights: %+v", set.Pairs[1])
	}
	if _, err := readJSONL(t, text, PairOptions{Weights: "mq=1"}); err == nil || !strings.Contains(err.Error(), `unknown reward dimension "mq"`) {
		t.Errorf("unknown weight dimension: %v", err)
	}
	if _, err := readJSONL(t, `{"prompt":"a","chosen":"a","rejected":"b"}`, PairOptions{Weights: "vq=1"}); err == nil {
		t.Error("--weights without labels accepted")
	}
	if _, err := readJSONL(t, `{"prompt":"a","chosen":"a","rejected":"b"}`, PairOptions{Ties: "maybe"}); err == nil {
		t.Error("--ties maybe accepted")
	}
}

func TestReadPairsJSONLReportsEveryMalformedLine(t *testing.T) {
	text := `{"prompt":"ok","chosen":"a.png","rejected":"b.png"}
{"prompt":"no rejected","chosen":"a.png"}
not json
{"prompt":"p","chosen":"a.png","rejected":"a.png"}
{"prompt":"p","chosen":"a.png","rejected":"b.png","labels":{"vq":"C"}}
{"prompt":"p","chosen":"a.png","rejected":"b.png","seed":"seven"}
{"prompt":"p","chosen":"a.png","rejected":"b.png","chosen_index":-1}
{"prompt":"","chosen":"a.png","rejected":"b.png"}
{"prompt":"ok","chosen":"c.png","rejected":"d.png"}
`
	_, err := readJSONL(t, text, PairOptions{})
	var le LineErrors
	if !errors.As(err, &le) {
		t.Fatalf("error %v is not LineErrors", err)
	}
	wantLines := []int{2, 3, 4, 5, 6, 7, 8}
	if len(le) != len(wantLines) {
		t.Fatalf("%d problems, want %d:\n%v", len(le), len(wantLines), err)
	}
	for i, e := range le {
		if e.File != "pairs.jsonl" || e.Line != wantLines[i] {
			t.Errorf("problem %d at %s, want line %d", i, e.Source, wantLines[i])
		}
	}
	msg := err.Error()
	for _, s := range []string{"pairs.jsonl:2: missing or empty rejected", "pairs.jsonl:3: invalid JSON", "same file",
		`labels["vq"]`, `field "seed"`, "chosen_index must be >= 0", "pairs.jsonl:8: missing or empty prompt"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
}

func TestReadVideoAlignCSV(t *testing.T) {
	text := `path_A,path_B,prompt,VQ,MQ,TA,fps_A,num_frames_A,fps_B,num_frames_B,MOS_A_VQ,MOS_B_VQ
a.gif,b.gif,"a red apple, moving left",A,A,B,8,8,8,8,3.5,2
c.gif,d.gif,blue car,B,B,same,8,8,8,8,1,4
e.gif,f.gif,blue car,same,same,same,8,8,8,8,2,2
`
	set, err := ReadVideoAlignCSV(strings.NewReader(text), "v.csv", "dir", PairOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Pairs) != 3 || strings.Join(set.Dims, ",") != "vq,mq,ta" || set.Swapped != 1 || set.Ties() != 1 {
		t.Fatalf("set %+v", set)
	}
	p := set.Pairs[0]
	if p.Prompt != "a red apple, moving left" || p.Chosen != filepath.Join("dir", "a.gif") || p.ChosenScores["vq"] != 3.5 || p.Source.Line != 2 {
		t.Errorf("pair 0 %+v", p)
	}
	if p := set.Pairs[1]; p.Chosen != filepath.Join("dir", "d.gif") || p.ChosenScores["vq"] != 4 || p.Labels["vq"] != rewards.LabelA {
		t.Errorf("pair 1 not turned round: %+v", p)
	}
	// TA only: pair 0 favours B, pair 1 is a tie, dropped.
	set, err = ReadVideoAlignCSV(strings.NewReader(text), "v.csv", "", PairOptions{Weights: "ta=1", Ties: TiesDrop})
	if err != nil || len(set.Pairs) != 1 || set.Pairs[0].Chosen != "b.gif" || set.TiesDropped != 2 {
		t.Errorf("ta=1, ties dropped: %v %+v", err, set)
	}
	// An Overall column is a label dimension with PairOptions.Overall, ignored without it.
	overall := "path_A,path_B,prompt,VQ,Overall\na.gif,b.gif,p,A,B\n"
	if set, err := ReadVideoAlignCSV(strings.NewReader(overall), "o.csv", "", PairOptions{Overall: true}); err != nil ||
		strings.Join(set.Dims, ",") != "vq,overall" || set.Pairs[0].Labels["overall"] != rewards.LabelB {
		t.Errorf("Overall read: %v %+v", err, set)
	}
	if set, err := ReadVideoAlignCSV(strings.NewReader(overall), "o.csv", "", PairOptions{}); err != nil || strings.Join(set.Dims, ",") != "vq" {
		t.Errorf("Overall ignored: %v %+v", err, set)
	}
	bad := `path_A,path_B,prompt,VQ
a,b,p,A
a,b,p,X
a,b
,b,p,A
a,a,p,B
a,b,p,B
`
	_, err = ReadVideoAlignCSV(strings.NewReader(bad), "v.csv", "", PairOptions{})
	var le LineErrors
	if !errors.As(err, &le) || len(le) != 4 || le[0].Line != 3 || le[1].Line != 4 || le[2].Line != 5 || le[3].Line != 6 {
		t.Errorf("CSV problems: %v", err)
	}
	if _, err := ReadVideoAlignCSV(strings.NewReader("path_A,path_B,caption,VQ\n"), "v.csv", "", PairOptions{}); err == nil ||
		!strings.Contains(err.Error(), "v.csv:1: header lacks prompt") {
		t.Errorf("header: %v", err)
	}
	if _, err := ReadVideoAlignCSV(strings.NewReader("path_A,path_B,prompt\n"), "v.csv", "", PairOptions{}); err == nil ||
		!strings.Contains(err.Error(), "label column") {
		t.Errorf("no label column: %v", err)
	}
	if _, err := ReadVideoAlignCSV(strings.NewReader("path_A,path_B,prompt,VQ\na,\"b,p,A\n"), "v.csv", "", PairOptions{}); err == nil ||
		!strings.Contains(err.Error(), "v.csv:2:") {
		t.Errorf("quoting error: %v", err)
	}
}

func TestReadScoredJSONL(t *testing.T) {
	text := `{"prompt":"red apple","image":"a.png","scores":{"vq":0.5,"TA":1},"seed":3,"index":0}
{"prompt":"red apple","path":"b.png","scores":{"ta":2,"vq":0}}
{"prompt":"blue car","video":"c.gif","scores":{"vq":1,"ta":0}}
`
	set, err := ReadScoredJSONL(strings.NewReader(text), "s.jsonl", "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Items) != 3 || strings.Join(set.Dims, ",") != "ta,vq" || set.Items[0].Scores[0] != 1 || set.Items[0].Scores[1] != 0.5 ||
		set.Items[1].Path != filepath.Join("d", "b.png") || *set.Items[0].Seed != 3 {
		t.Fatalf("set %+v", set)
	}
	r, err := ScoredOptions{Weights: "ta=1"}.Rewards(set)
	if err != nil || r[0] != 1 || r[1] != 2 || r[2] != 0 {
		t.Errorf("rewards %v %v", r, err)
	}
	bad := `{"prompt":"a","image":"a.png","scores":{"vq":1}}
{"prompt":"a","image":"a.png","scores":{"ta":1}}
{"prompt":"a","scores":{"vq":1}}
{"prompt":"a","image":"a.png","video":"b.gif","scores":{"vq":1}}
{"prompt":"a","image":"a.png"}
{"prompt":"a","image":"a.png","scores":{"vq":"high"}}
`
	_, err = ReadScoredJSONL(strings.NewReader(bad), "s.jsonl", "")
	var le LineErrors
	if !errors.As(err, &le) || len(le) != 5 || le[0].Line != 2 || le[4].Line != 6 || !strings.Contains(err.Error(), "same dimensions") {
		t.Errorf("scored problems: %v", err)
	}
}

func TestReadScoredAlignScoreJSONL(t *testing.T) {
	// The layout align score --format jsonl writes: z-score columns, error rows left out.
	text := `{"index":0,"path":"a.png","prompt":"red apple","vq":0.31,"vq_z":1.5,"ta":2,"ta_z":-0.5,"total":1,"error":null}
{"index":1,"path":"b.png","prompt":"red apple","vq":null,"vq_z":null,"ta":null,"ta_z":null,"total":null,"error":"decode: bad"}
{"index":2,"path":"c.png","prompt":"blue car","vq":0.1,"vq_z":0.25,"ta":1,"ta_z":0,"total":0.25,"error":null}
`
	set, err := ReadScoredJSONL(strings.NewReader(text), "s.jsonl", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Items) != 2 || set.Failed != 1 || strings.Join(set.Dims, ",") != "ta,vq" || set.Items[0].Scores[0] != -0.5 ||
		set.Items[0].Scores[1] != 1.5 || *set.Items[1].Index != 2 || set.Items[1].Path != "c.png" {
		t.Errorf("set %+v", set)
	}
	if _, err := ReadScoredJSONL(strings.NewReader(`{"path":"a","prompt":"p","vq":1,"vq_z":"x"}`), "s.jsonl", ""); err == nil ||
		!strings.Contains(err.Error(), `column "vq_z"`) {
		t.Errorf("bad column: %v", err)
	}
}

func TestReadPairsFromFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.csv")
	os.WriteFile(p, []byte("path_A,path_B,prompt,TA\nx.png,y.png,p,B\n"), 0o644)
	set, err := ReadPairs(p, PairOptions{})
	if err != nil || set.Pairs[0].Chosen != filepath.Join(dir, "y.png") {
		t.Errorf("csv by extension: %v %+v", err, set)
	}
	if _, err := ReadPairs(filepath.Join(dir, "none.jsonl"), PairOptions{}); err == nil {
		t.Error("missing file accepted")
	}
	// Many problems are summarised.
	var b strings.Builder
	for range 40 {
		b.WriteString("{}\n")
	}
	_, err = readJSONL(t, b.String(), PairOptions{})
	if err == nil || !strings.Contains(err.Error(), "... and 10 more problems") || !strings.Contains(err.Error(), "pairs.jsonl:30:") {
		t.Errorf("summary: %v", err)
	}
}

// ---- fuzz targets: no input may panic; accepted data keeps the invariants ----

func checkPairSet(t *testing.T, set *PairSet, err error) {
	if err != nil {
		return
	}
	if len(set.Pairs) == 0 {
		t.Fatal("accepted an empty set")
	}
	for _, p := range set.Pairs {
		if p.Chosen == p.Rejected || p.Prompt == "" || p.Source.Line < 1 {
			t.Fatalf("bad pair %+v", p)
		}
	}
}

func FuzzReadPairsJSONL(f *testing.F) {
	f.Add(`{"prompt":"a","chosen":"x","rejected":"y","labels":{"vq":"A","ta":"tie"}}`, "vq=1", false)
	f.Add("{\"prompt\":\"a\",\"chosen\":\"x\",\"rejected\":\"y\"}\n\n{}", "", true)
	f.Add(`{"prompt":"a","chosen":"x","rejected":"y","chosen_scores":{"vq":1e999}}`, "", false)
	f.Fuzz(func(t *testing.T, text, weights string, drop bool) {
		o := PairOptions{Weights: weights}
		if drop {
			o.Ties = TiesDrop
		}
		set, err := ReadPairsJSONL(strings.NewReader(text), "f.jsonl", "", o)
		checkPairSet(t, set, err)
	})
}

func FuzzReadVideoAlignCSV(f *testing.F) {
	f.Add("path_A,path_B,prompt,VQ,MQ,TA\na,b,p,A,B,same\n", "vq=1,ta=2")
	f.Add("path_A,path_B,prompt,TA,MOS_A_TA,MOS_B_TA\na,b,\"p\"\"q\",B,1,x\n", "")
	f.Fuzz(func(t *testing.T, text, weights string) {
		set, err := ReadVideoAlignCSV(strings.NewReader(text), "f.csv", "", PairOptions{Weights: weights})
		checkPairSet(t, set, err)
	})
}

func FuzzReadScoredJSONL(f *testing.F) {
	f.Add(`{"prompt":"a","image":"x","scores":{"vq":1,"ta":2}}` + "\n" + `{"prompt":"a","image":"y","scores":{"vq":0,"ta":3}}`)
	f.Fuzz(func(t *testing.T, text string) {
		set, err := ReadScoredJSONL(strings.NewReader(text), "f.jsonl", "")
		if err != nil {
			return
		}
		for _, it := range set.Items {
			if len(it.Scores) != len(set.Dims) || it.Path == "" {
				t.Fatalf("bad item %+v", it)
			}
		}
	})
}
