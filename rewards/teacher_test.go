// Tests of teacher pairs: the label rule against hand-computed differences, the set's
// errors, the pairs drawn (share, train split only, both sides of one prompt, labels by the
// teacher), unchanged pairs without a teacher, and the resume check.
package rewards

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// teacherSample is a 3x32x32 sample of constant bytes v with z-scores (vq, ta).
func teacherSample(prompt string, v uint8, vq, ta float64) TeacherSample {
	return TeacherSample{Prompt: prompt, Pixels: bytes.Repeat([]byte{v}, 3*32*32), Z: []float64{vq, ta}}
}

func TestTeacherLabel(t *testing.T) {
	s, err := NewTeacherSet([]string{DimVQ, DimTA}, []TeacherSample{
		teacherSample("p", 0, 0.5, 1.0), teacherSample("p", 1, 0.2, 1.05),
	}, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Groups[0][0], s.Groups[0][1]
	for _, c := range []struct {
		dim  string
		x, y TeacherSample
		want Label
	}{
		{DimVQ, a, b, LabelA},   // 0.5 - 0.2 = 0.3 > 0.1
		{DimVQ, b, a, LabelB},   // -0.3 < -0.1
		{DimTA, a, b, LabelTie}, // |1.0 - 1.05| = 0.05 <= 0.1
		{DimTA, b, a, LabelTie},
	} {
		if got := s.Label(c.dim, c.x, c.y); got != c.want {
			t.Errorf("%s: label %v, want %v", c.dim, got, c.want)
		}
	}
	// At the margin exactly: a tie (0.75 - 0.5 = 0.25, representable exactly).
	s.Margin = 0.25
	x, y := teacherSample("q", 0, 0.75, 0), teacherSample("q", 1, 0.5, 0)
	if got := s.Label(DimVQ, x, y); got != LabelTie {
		t.Errorf("difference equal to the margin: %v, want a tie", got)
	}
}

func TestNewTeacherSet(t *testing.T) {
	s, err := NewTeacherSet([]string{DimVQ, DimTA}, []TeacherSample{
		teacherSample("a", 0, 0, 0), teacherSample("b", 1, 0, 0), teacherSample("a", 2, 0, 0),
		teacherSample("c", 3, 0, 0), teacherSample("c", 4, 0, 0), teacherSample("c", 5, 0, 0),
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// "b" has one sample and is left out; groups keep the order of first appearance.
	if len(s.Groups) != 2 || len(s.Groups[0]) != 2 || s.Groups[0][0].Prompt != "a" || s.Groups[0][1].Pixels[0] != 2 || len(s.Groups[1]) != 3 {
		t.Errorf("groups %v", s.Groups)
	}
	for _, c := range []struct {
		dims    []string
		samples []TeacherSample
		margin  float64
		want    string
	}{
		{nil, []TeacherSample{teacherSample("a", 0, 0, 0)}, 0, "no dimensions"},
		{[]string{DimVQ}, []TeacherSample{teacherSample("a", 0, 0, 0)}, 0, "sample 0 has 2 scores for 1 dimensions"},
		{[]string{DimVQ, DimTA}, []TeacherSample{teacherSample("a", 0, 0, 0), teacherSample("b", 0, 0, 0)}, 0, "no prompt has two samples"},
		{[]string{DimVQ, DimTA}, []TeacherSample{teacherSample("a", 0, 0, 0)}, -1, "margin must be"},
	} {
		if _, err := NewTeacherSet(c.dims, c.samples, c.margin); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.dims, err, c.want)
		}
	}
}

func TestPairsTeacher(t *testing.T) {
	d, _ := synthData(false)
	// Three prompts of three samples; sample bytes 10*prompt+i identify them.
	var samples []TeacherSample
	for p := range 3 {
		for i := range 3 {
			samples = append(samples, teacherSample(fmt.Sprintf("prompt %d", p), uint8(10*p+i), float64(i), float64(-i)/4))
		}
	}
	teacher, err := NewTeacherSet([]string{DimVQ, DimTA}, samples, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	byByte := map[uint8]TeacherSample{}
	for _, s := range samples {
		byByte[s.Pixels[0]] = s
	}

	checkShareWithoutSource(t, d, PairConfig{Dims: []string{DimVQ, DimTA}, TeacherShare: 0.5})

	g, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}, Teacher: teacher, TeacherShare: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	pairs := sourcePairs(t, g, 2000, "teacher")
	ties := 0
	for _, p := range pairs {
		x, y := byByte[p.A.Pixels[0]], byByte[p.B.Pixels[0]]
		if x.Prompt != y.Prompt || p.A.Prompt != x.Prompt || p.B.Prompt != x.Prompt || x.Pixels[0] == y.Pixels[0] {
			t.Fatalf("teacher pair %+v: want two samples of one prompt", p)
		}
		if px := g.RenderBytes(p.A); px[0] != x.Pixels[0] {
			t.Fatal("teacher sample not rendered from its pixels")
		}
		k := DimIndex(g.Cfg.Dims, p.Kind)
		for d, l := range p.Labels {
			if d != k && l != LabelNone {
				t.Fatalf("teacher pair %+v labels dimension %d besides its kind", p, d)
			}
		}
		// vq: z = i, so samples differ by >= 1 > 0.3 (decisive); ta: z = -i/4, differences of
		// 0.25 are ties and of 0.5 decisive, the sample with the lower i winning.
		want := teacher.Label(p.Kind, x, y)
		if p.Labels[k] != want {
			t.Fatalf("teacher pair %+v: label %v, want %v", p, p.Labels[k], want)
		}
		if p.Labels[k] == LabelTie {
			ties++
			if p.Kind != DimTA || p.Note != "tie-teacher" {
				t.Fatalf("tie %+v", p)
			}
		}
	}
	// Binomial(2000, 0.5): 5 standard deviations are 112.
	if n := len(pairs); n < 888 || n > 1112 {
		t.Errorf("%d teacher pairs of 2000, want about 1000", n)
	}
	if ties == 0 {
		t.Error("no tie among the ta teacher pairs")
	}
	checkTrainingOnly(t, g, "teacher")

	// A teacher of vq only leaves the ta pairs real.
	vqOnly, _ := NewTeacherSet([]string{DimVQ}, []TeacherSample{
		{Prompt: "p", Pixels: samples[0].Pixels, Z: []float64{0}}, {Prompt: "p", Pixels: samples[1].Pixels, Z: []float64{1}}}, 0.1)
	g2, _ := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}, Teacher: vqOnly, TeacherShare: 1})
	ps, _ := g2.Pairs(SplitTrain, 200, 3, 0)
	for _, p := range ps {
		if (p.A.Source == "teacher") != (p.Kind == DimVQ) {
			t.Fatalf("vq-only teacher, share 1: pair %+v", p)
		}
	}
}

func TestTrainResumeSameTeacher(t *testing.T) {
	d, _ := synthData(false)
	setup := func(dir, sha string, share float64) *Trainer {
		cfg := DefaultTrainConfig()
		cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs = 4, 1, 1, 16, 0
		cfg.TeacherScored, cfg.TeacherSHA256, cfg.TeacherShare, cfg.TeacherMargin = "scored.jsonl", sha, share, 0.1
		gen, err := NewPairGen(d, nil, cfg.PairConfig([]string{DimVQ, DimTA}))
		if err != nil {
			t.Fatal(err)
		}
		return tinyNativeTrainer(t, cfg, gen, dir)
	}
	dir := t.TempDir()
	if err := setup(dir, "aaaa", 0.5).Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	ck, _, _, err := ReadTrainingCheckpoint(filepath.Join(dir, "checkpoint-1.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sha   string
		share float64
	}{{"bbbb", 0.5}, {"aaaa", 0.25}} {
		if err := setup(t.TempDir(), c.sha, c.share).Resume(ck); err == nil || !strings.Contains(err.Error(), "resume with the same --teacher-scored file") {
			t.Errorf("resume with teacher %s share %v: %v", c.sha, c.share, err)
		}
	}
	if err := setup(t.TempDir(), "aaaa", 0.5).Resume(ck); err != nil {
		t.Errorf("resume with the same teacher: %v", err)
	}
}
