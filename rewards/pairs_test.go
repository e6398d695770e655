// Tests of the corruptions and of the pair builder on a small synthetic dataset: graded
// severities, determinism, splits by concept, labels and targets consistent with how each
// pair was built, ties, hard negatives, and the NegativeSource hook.
//
// Run: go test ./rewards -run 'Degrade|Corrupt|Pair|Validation'
package rewards

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
)

const W = dataset.ImageSize

// testImage is a white image with a coloured disc and a dark outline, like an emoji.
func testImage(seed int) []uint8 {
	pix := make([]uint8, 3*W*W)
	col := [3]uint8{uint8(50 + 37*seed%200), uint8(200 - 13*seed%150), uint8(90 + 71*seed%160)}
	for y := range W {
		for x := range W {
			d := math.Hypot(float64(x)-15.5, float64(y)-15.5)
			for c := range 3 {
				v := uint8(255)
				switch {
				case d < 10:
					v = col[c]
				case d < 12:
					v = 20
				}
				pix[c*W*W+y*W+x] = v
			}
		}
	}
	return pix
}

func mse(a, b []uint8) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	return s / float64(len(a))
}

func TestDegradeImage(t *testing.T) {
	orig := testImage(1)
	for _, kind := range DegradeKinds {
		prev := 0.0
		for lv := 1; lv <= MaxLevel; lv++ {
			a := slices.Clone(orig)
			DegradeImage(a, W, W, Corruption{kind, lv}, 7)
			b := slices.Clone(orig)
			DegradeImage(b, W, W, Corruption{kind, lv}, 7)
			if !bytes.Equal(a, b) {
				t.Errorf("%s-%d is not deterministic", kind, lv)
			}
			e := mse(a, orig)
			if e <= prev {
				t.Errorf("%s-%d: error %.1f not above level %d's %.1f", kind, lv, e, lv-1, prev)
			}
			prev = e
		}
	}
	a := slices.Clone(orig)
	DegradeImage(a, W, W, Corruption{}, 1)
	if !bytes.Equal(a, orig) {
		t.Error("no corruption changed the image")
	}
}

func TestCorruptClip(t *testing.T) {
	const T = dataset.Frames
	fs := 3 * W * W
	orig := make([]uint8, 0, T*fs)
	for f := range T {
		orig = append(orig, testImage(f)...)
	}
	frames := func(c []uint8) []string {
		var out []string
		for f := range T {
			out = append(out, string(c[f*fs:(f+1)*fs]))
		}
		return out
	}
	for _, kind := range CorruptKinds {
		for lv := 1; lv <= MaxLevel; lv++ {
			a := slices.Clone(orig)
			CorruptClip(a, T, W, W, Corruption{kind, lv}, 3)
			b := slices.Clone(orig)
			CorruptClip(b, T, W, W, Corruption{kind, lv}, 3)
			if !bytes.Equal(a, b) || bytes.Equal(a, orig) {
				t.Errorf("%s-%d: not deterministic or no change", kind, lv)
			}
			if kind == CorruptShuffle {
				fa, fo := frames(a), frames(orig)
				slices.Sort(fa)
				slices.Sort(fo)
				if !slices.Equal(fa, fo) {
					t.Errorf("shuffle-%d changed the frames themselves", lv)
				}
			}
		}
	}
	a := slices.Clone(orig)
	CorruptClip(a, T, W, W, Corruption{CorruptFreeze, 3}, 0)
	for _, f := range frames(a) {
		if f != frames(orig)[0] {
			t.Fatal("freeze-3 is not a still of frame 0")
		}
	}
	a = slices.Clone(orig)
	CorruptClip(a, T, W, W, Corruption{CorruptFreeze, 1}, 0)
	if fa := frames(a); fa[5] != fa[7] || fa[4] == fa[5] {
		t.Error("freeze-1 does not hold frame 5 from frame 6 on")
	}
}

// synthData builds 100 concepts in 8 subcategories (every fifth with two skin tones), each
// variant in one set (odd concepts) or two; concepts with i%10 == 3 are held out. Clips: 4 per concept.
func synthData(withClips bool) (*dataset.Dataset, *dataset.VideoDataset) {
	d := &dataset.Dataset{}
	for i := range 100 {
		concept := fmt.Sprintf("1F%03X", i)
		split := dataset.SplitTrain
		if i%10 == 3 {
			split = dataset.SplitHeldOut
		}
		tones := []string{""}
		if i%5 == 0 {
			tones = append(tones, "light skin tone", "dark skin tone")
		}
		sets := []string{"twitter"}
		if i%2 == 0 {
			sets = append(sets, "google")
		}
		for k, tone := range tones {
			name := fmt.Sprintf("thing %d", i)
			for _, set := range sets {
				d.Items = append(d.Items, dataset.Item{Index: len(d.Items), Concept: concept, Unified: fmt.Sprintf("%s-%d", concept, k),
					Set: set, Name: name, Tone: tone, Caption: dataset.WithTone(name, tone), Subcategory: fmt.Sprintf("sub-%d", i%8), Split: split})
				d.Pixels = append(d.Pixels, testImage(len(d.Items))...)
			}
		}
	}
	if !withClips {
		return d, nil
	}
	v := &dataset.VideoDataset{}
	for i, it := range d.Items {
		if it.Tone != "" {
			continue
		}
		for k := range 4 {
			m := dataset.Motions[(i+k)%len(dataset.Motions)]
			v.Clips = append(v.Clips, dataset.Clip{Index: len(v.Clips), Item: i, Concept: it.Concept, Set: it.Set, Name: it.Name,
				Motion: m, Caption: dataset.VideoCaption(it.Name, m), Split: it.Split})
			for range dataset.Frames {
				v.Pixels = append(v.Pixels, testImage(i+k)...)
			}
		}
	}
	return d, v
}

func TestPairsImage(t *testing.T) {
	d, _ := synthData(false)
	g, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := g.Pairs(SplitTrain, 400, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := g.Pairs(SplitTrain, 400, 1, 0)
	other, _ := g.Pairs(SplitTrain, 400, 1, 1)
	if fmt.Sprint(pairs) != fmt.Sprint(again) || fmt.Sprint(pairs) == fmt.Sprint(other) {
		t.Fatal("pairs are not a function of (seed, stream)")
	}
	stats := PairStats(pairs)
	for _, k := range []string{"ta/tone", "ta/subcategory", "ta/random", "ta/tie", "vq/tie", "vq/blur", "vq/jpeg"} {
		if stats[k] == 0 {
			t.Errorf("no %s pairs in %v", k, stats)
		}
	}
	sides, twins := map[Label]int{}, 0
	for _, p := range pairs {
		d := DimIndex(g.Cfg.Dims, p.Kind)
		for e, l := range p.Labels {
			if (e == d) != (l != LabelNone) {
				t.Fatalf("pair %+v: labels outside its kind", p)
			}
		}
		l := p.Labels[d]
		sides[l]++
		better, worse := p.A, p.B
		if l == LabelB {
			better, worse = p.B, p.A
		}
		switch {
		case p.Kind == DimTA && l != LabelTie:
			if better.Prompt != d0caption(g, better.Index) || worse.Prompt == better.Prompt {
				t.Errorf("ta pair %+v: the preferred side is not the true caption", p)
			}
		case p.Kind == DimTA:
			if p.A.Prompt == d0caption(g, p.A.Index) || p.B.Prompt == d0caption(g, p.B.Index) {
				t.Errorf("ta tie %+v has a true caption", p)
			}
		case p.Kind == DimVQ && l != LabelTie:
			if better.Degrade.Level >= worse.Degrade.Level {
				t.Errorf("vq pair %+v: preferred side not milder", p)
			}
			if p.A.Prompt != p.B.Prompt {
				t.Errorf("vq pair with two prompts")
			}
		case p.Kind == DimVQ:
			if p.A.Degrade != p.B.Degrade || p.A.Seed == p.B.Seed {
				t.Errorf("vq tie %+v", p)
			}
		}
		if p.Kind == DimVQ && p.A.Index != p.B.Index {
			a, b := g.Images.Items[p.A.Index], g.Images.Items[p.B.Index]
			if a.Unified != b.Unified || a.Set == b.Set {
				t.Errorf("vq pair across %+v and %+v", a, b)
			}
			twins++
		}
		if ta, tb := p.TargetA[d], p.TargetB[d]; (l == LabelA && !(ta > tb)) || (l == LabelB && !(tb > ta)) || (l == LabelTie && ta != tb) {
			t.Errorf("targets %v %v disagree with label %v", ta, tb, l)
		}
	}
	if sides[LabelA] < 100 || sides[LabelB] < 100 || sides[LabelTie] < 30 {
		t.Errorf("label counts %v", sides)
	}
	if twins < 30 {
		t.Errorf("%d of 200 vq pairs compare the two sets' drawings", twins)
	}
	// Splits never share a concept.
	concepts := map[string]string{}
	for _, s := range []string{SplitTrain, SplitVal, SplitHeldOut} {
		ps, err := g.Pairs(s, 100, 2, 0)
		if s == SplitVal && err != nil {
			continue // the synthetic set may have no validation concept
		}
		if err != nil {
			t.Fatal(s, err)
		}
		for _, p := range ps {
			c := d.Items[p.A.Index].Concept
			if prev, ok := concepts[c]; ok && prev != s {
				t.Fatalf("concept %s in %s and %s", c, prev, s)
			}
			concepts[c] = s
			if (s == SplitHeldOut) != (d.Items[p.A.Index].Split == dataset.SplitHeldOut) {
				t.Fatalf("%s pair from a %s item", s, d.Items[p.A.Index].Split)
			}
		}
	}
	// Rendering: a clean sample is the dataset image.
	buf := make([]float32, g.SampleLen())
	g.Render(Sample{Index: 3}, buf)
	want := make([]float32, g.SampleLen())
	dataset.ToUnit(want, d.Image(3))
	if !slices.Equal(buf, want) {
		t.Error("clean render differs from the dataset image")
	}
	if _, err := g.Pairs("test", 1, 0, 0); err == nil || !strings.Contains(err.Error(), "unknown split") {
		t.Errorf("unknown split: %v", err)
	}
}

func d0caption(g *PairGen, idx int) string { c, _, _, _, _ := g.describe(idx); return c }

func TestPairsVideo(t *testing.T) {
	d, v := synthData(true)
	if _, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimMQ}}); err == nil {
		t.Error("mq without clips accepted")
	}
	g, err := NewPairGen(d, v, PairConfig{Dims: []string{DimVQ, DimTA, DimMQ}})
	if err != nil {
		t.Fatal(err)
	}
	pairs, err := g.Pairs(SplitHeldOut, 300, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	stats := PairStats(pairs)
	for _, k := range []string{"ta/motion", "ta/tie", "mq/shuffle", "mq/freeze", "mq/tie", "vq/noise"} {
		if stats[k] == 0 {
			t.Errorf("no %s pairs in %v", k, stats)
		}
	}
	for _, p := range pairs {
		if p.Kind == DimTA && p.Note == "motion" {
			tr, ng := p.A.Prompt, p.B.Prompt
			if p.Labels[1] == LabelB {
				tr, ng = ng, tr
			}
			if tr != v.Clips[p.A.Index].Caption || !strings.HasPrefix(ng, strings.TrimSuffix(tr, " "+string(v.Clips[p.A.Index].Motion.Phrase()))) {
				t.Errorf("motion negative %q for %q", ng, tr)
			}
		}
	}
	if n := len(g.RenderBytes(pairs[0].A)); n != dataset.ClipBytes {
		t.Errorf("clip render has %d bytes", n)
	}
}

// fakeNegatives is a NegativeSource returning grey images at level 2.
type fakeNegatives struct{}

func (fakeNegatives) Name() string { return "fake" }
func (fakeNegatives) Negative(index int, prompt string, seed uint64) ([]uint8, int, error) {
	return bytes.Repeat([]uint8{128}, dataset.ImageBytes), 2, nil
}

func TestPairsNegativeSource(t *testing.T) {
	d, _ := synthData(false)
	g, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ}, Negatives: fakeNegatives{}, NegativeShare: 1, TieShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	pairs, _ := g.Pairs(SplitTrain, 50, 1, 0)
	n := 0
	for _, p := range pairs {
		for _, s := range []Sample{p.A, p.B} {
			if s.Source == "fake" {
				n++
				if px := g.RenderBytes(s); px[0] != 128 {
					t.Fatal("generated negative not rendered from its pixels")
				}
			}
		}
	}
	if n != 50 {
		t.Errorf("%d of 50 pairs use the negative source", n)
	}
}

// The validation share of 10000 concepts is about the percent asked for, and a concept in
// the split at 5% stays in it at 30%.
func TestValidationConcept(t *testing.T) {
	for _, percent := range []int{ValPerCent, 30} {
		n := 0
		for i := range 10000 {
			c := fmt.Sprintf("%X", 0x1F000+i)
			if ValidationConcept(c, percent) {
				n++
			} else if ValidationConcept(c, ValPerCent) {
				t.Errorf("%s: in validation at %d%%, not at %d%%", c, ValPerCent, percent)
			}
		}
		if want := 100 * percent; n < want*8/10 || n > want*12/10 {
			t.Errorf("%d of 10000 concepts in validation at %d%%, want about %d", n, percent, want)
		}
	}
}

// Two halves of the training concepts share no image, caption or concept in their training
// and validation pools, together cover the whole, and keep the held-out split intact.
func TestConceptPartDisjoint(t *testing.T) {
	d, _ := synthData(false)
	all, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	var half [2]*PairGen
	for i := range half {
		g, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}, Part: i, Parts: 2})
		if err != nil {
			t.Fatalf("part %d/2: %v", i, err)
		}
		half[i] = g
	}
	for _, s := range []string{SplitTrain, SplitVal} {
		seen := map[string]int{}
		for i, g := range half {
			for _, idx := range g.pools[s] {
				c := d.Items[idx].Concept
				if p, ok := seen[c]; ok && p != i {
					t.Fatalf("%s: concept %s in both parts", s, c)
				}
				seen[c] = i
				if ConceptPart(c, 2) != i {
					t.Fatalf("%s: concept %s of part %d kept in part %d", s, c, ConceptPart(c, 2), i)
				}
			}
		}
		if n := len(half[0].pools[s]) + len(half[1].pools[s]); n != len(all.pools[s]) {
			t.Errorf("%s: parts hold %d items, the whole %d", s, n, len(all.pools[s]))
		}
		for _, c := range half[0].caps[s].all {
			if slices.Contains(half[1].caps[s].all, c) {
				t.Errorf("%s: caption %q drawn by both parts", s, c)
			}
		}
	}
	for _, g := range half {
		if !slices.Equal(g.pools[SplitHeldOut], all.pools[SplitHeldOut]) {
			t.Error("the held-out split depends on the part")
		}
	}
	cfg := DefaultTrainConfig()
	cfg.ConceptPart, cfg.ConceptParts = 2, 2
	if err := cfg.Validate(); err == nil {
		t.Error("part 2/2 accepted")
	}
}

// An artwork set keeps the training and validation pools (images and clips) to that set's
// items, with no twin from the other set there; the held-out split and its twins stay whole;
// an unknown set is an error that names the data's sets.
func TestPairsImageSet(t *testing.T) {
	d, v := synthData(true)
	// Held-out concepts are drawn by one set in synthData: give one a twin.
	for _, it := range d.Items {
		if it.Split == dataset.SplitHeldOut {
			it.Index, it.Set = len(d.Items), "google"
			d.Items = append(d.Items, it)
			d.Pixels = append(d.Pixels, testImage(it.Index)...)
			break
		}
	}
	for _, clips := range []*dataset.VideoDataset{nil, v} {
		dims := []string{DimVQ, DimTA}
		if clips != nil {
			dims = append(dims, DimMQ)
		}
		all, err := NewPairGen(d, clips, PairConfig{Dims: dims})
		if err != nil {
			t.Fatal(err)
		}
		g, err := NewPairGen(d, clips, PairConfig{Dims: dims, Set: "google"})
		if err != nil {
			t.Fatal(err)
		}
		setOf := func(idx int) string {
			if clips != nil {
				return clips.Clips[idx].Set
			}
			return d.Items[idx].Set
		}
		for _, s := range []string{SplitTrain, SplitVal} {
			want := 0
			for _, idx := range all.pools[s] {
				if setOf(idx) == "google" {
					want++
				}
			}
			if len(g.pools[s]) != want || want == 0 {
				t.Errorf("clips %v, %s: %d items kept, want the %d google ones", clips != nil, s, len(g.pools[s]), want)
			}
			for _, idx := range g.pools[s] {
				if setOf(idx) != "google" {
					t.Errorf("clips %v, %s: item %d of set %s kept", clips != nil, s, idx, setOf(idx))
				}
			}
		}
		if !slices.Equal(g.pools[SplitHeldOut], all.pools[SplitHeldOut]) {
			t.Errorf("clips %v: the held-out split depends on the set", clips != nil)
		}
		if clips == nil {
			for i, tw := range g.twin {
				if d.Items[i].Split != dataset.SplitHeldOut || d.Items[tw].Split != dataset.SplitHeldOut {
					t.Errorf("twins %d and %d outside the held-out split", i, tw)
				}
			}
			if len(g.twin) == 0 {
				t.Error("the held-out split lost its twins")
			}
		}
	}
	if _, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ}, Set: "apple"}); err == nil ||
		!strings.Contains(err.Error(), `"apple"`) || !strings.Contains(err.Error(), "google, twitter") {
		t.Errorf("unknown set: %v", err)
	}
}

// TestPairsTAImageHard: with hard image negatives the other image of a TA image pair is the
// same concept under another caption (tone), another concept of the subcategory, or one of
// another subcategory, each kind drawn about equally often where available; clips add the
// same concept with another motion. Every pair keeps the preferred side's true caption.
func TestPairsTAImageHard(t *testing.T) {
	d, v := synthData(true)
	for _, clips := range []*dataset.VideoDataset{nil, v} {
		g, err := NewPairGen(d, clips, PairConfig{Dims: []string{DimTA}, TieShare: -1, TAImageShare: 1, TAImageNegatives: TAImageHard})
		if err != nil {
			t.Fatal(err)
		}
		pairs, err := g.Pairs(SplitTrain, 3000, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, p := range pairs {
			count[p.Note]++
			better, worse := p.A, p.B
			switch p.Labels[0] {
			case LabelB:
				better, worse = p.B, p.A
			case LabelA:
			default:
				t.Fatalf("image pair %+v is not decisive", p)
			}
			bc, bconcept, _, bsub, bm := g.describe(better.Index)
			wc, wconcept, _, wsub, wm := g.describe(worse.Index)
			if better.Prompt != bc || worse.Prompt != bc {
				t.Errorf("pair %+v: both sides must carry the preferred image's caption %q", p, bc)
			}
			var ok bool
			switch p.Note {
			case "image-tone":
				ok = clips == nil && wconcept == bconcept && wc != bc
			case "image-motion":
				ok = clips != nil && wconcept == bconcept && wm != bm
			case "image-subcategory":
				ok = wconcept != bconcept && wsub == bsub
			case "image":
				ok = wsub != bsub
			}
			if !ok {
				t.Errorf("clips %v: %s pair of %s (%s, %s) against %s (%s, %s)", clips != nil, p.Note, bconcept, bc, bsub, wconcept, wc, wsub)
			}
		}
		want := []string{"image", "image-subcategory", "image-tone"}
		if clips != nil {
			want = []string{"image", "image-motion", "image-subcategory"}
		}
		for _, k := range want {
			if count[k] < 300 {
				t.Errorf("clips %v: %d %s pairs of 3000 (%v)", clips != nil, count[k], k, count)
			}
		}
		if len(count) != len(want) {
			t.Errorf("clips %v: kinds %v, want %v", clips != nil, count, want)
		}
	}
	cfg := DefaultTrainConfig()
	cfg.TAImageNegatives = "easy"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--ta-image-negatives") {
		t.Errorf("unknown kind: %v", err)
	}
}

// TestPairsTAImageShare: with TAImageShare s, a share s of the decisive TA pairs compare the
// image with an image of another subcategory under the first one's true caption, and s = 0
// draws exactly the pairs of a configuration without image pairs.
func TestPairsTAImageShare(t *testing.T) {
	d, _ := synthData(false)
	base, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimTA}, TieShare: -1})
	if err != nil {
		t.Fatal(err)
	}
	zero, _ := NewPairGen(d, nil, PairConfig{Dims: []string{DimTA}, TieShare: -1, TAImageShare: 0})
	a, _ := base.Pairs(SplitTrain, 200, 3, 0)
	b, _ := zero.Pairs(SplitTrain, 200, 3, 0)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("TAImageShare 0 changed the pairs")
	}
	g, _ := NewPairGen(d, nil, PairConfig{Dims: []string{DimTA}, TieShare: -1, TAImageShare: 0.5})
	pairs, err := g.Pairs(SplitTrain, 1000, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	images := 0
	for _, p := range pairs {
		if p.Note != "image" {
			continue
		}
		images++
		better, worse := p.A, p.B
		if p.Labels[0] == LabelB {
			better, worse = p.B, p.A
		}
		if p.Labels[0] == LabelTie || p.Labels[0] == LabelNone {
			t.Fatalf("image pair %+v is not decisive", p)
		}
		if better.Prompt != d0caption(g, better.Index) || worse.Prompt != better.Prompt {
			t.Errorf("image pair %+v: both sides must carry the preferred image's true caption", p)
		}
		if d.Items[better.Index].Subcategory == d.Items[worse.Index].Subcategory {
			t.Errorf("image pair %+v: the other image is of the same subcategory", p)
		}
	}
	// Binomial(1000, 0.5): 5 standard deviations are 79.
	if images < 421 || images > 579 {
		t.Errorf("%d image pairs of 1000, want about 500", images)
	}
}

// checkShareWithoutSource fails where cfg, a share of pairs from a source set without the
// source, draws other training pairs than the same dims without either.
func checkShareWithoutSource(t *testing.T, d *dataset.Dataset, cfg PairConfig) {
	t.Helper()
	base, _ := NewPairGen(d, nil, PairConfig{Dims: cfg.Dims})
	with, _ := NewPairGen(d, nil, cfg)
	a, _ := base.Pairs(SplitTrain, 200, 3, 0)
	b, _ := with.Pairs(SplitTrain, 200, 3, 0)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("a share without its source changed the pairs")
	}
}

// checkTrainingOnly fails where a validation or held-out pair of g has a sample of source.
func checkTrainingOnly(t *testing.T, g *PairGen, source string) {
	t.Helper()
	for _, split := range []string{SplitVal, SplitHeldOut} {
		ps, err := g.Pairs(split, 200, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(ps, func(p Pair) bool { return p.A.Source == source || p.B.Source == source }) {
			t.Errorf("%s pairs drawn from %s", split, source)
		}
	}
}

// sourcePairs draws n training pairs of g (seed 3) and returns those of source, failing
// where a pair mixes a sample of source with a real one.
func sourcePairs(t *testing.T, g *PairGen, n int, source string) []Pair {
	t.Helper()
	pairs, err := g.Pairs(SplitTrain, n, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Pair
	for _, p := range pairs {
		if (p.A.Source == source) != (p.B.Source == source) || (p.A.Source == source) != strings.HasSuffix(p.Note, source) {
			t.Fatalf("a %s pair (%s) mixes a sample of %s with a real one", p.Kind, p.Note, source)
		}
		if p.A.Source == source {
			out = append(out, p)
		}
	}
	return out
}

// importedData is what align data import makes of 30 captions in 6 folders (groups), each
// caption twice in different case (one concept, in one folder or two): images, or clips
// without motion labels.
func importedData(clips bool) (*dataset.Dataset, *dataset.VideoDataset) {
	d, v := &dataset.Dataset{}, &dataset.VideoDataset{Dir: "imported"}
	for i := range 60 {
		caption := fmt.Sprintf("Object %d", i/2)
		if i%2 == 1 {
			caption = strings.ToLower(caption)
		}
		// The two captions of an even concept share a folder, those of an odd one do not.
		concept, group := dataset.ConceptOf(caption), fmt.Sprintf("folder-%d", i/2%6)
		if i/2%2 == 1 {
			group = fmt.Sprintf("folder-%d", i%6)
		}
		split := dataset.SplitTrain
		if dataset.IsHeldOut(concept) {
			split = dataset.SplitHeldOut
		}
		if !clips {
			d.Items = append(d.Items, dataset.Item{Index: i, ID: caption, Concept: concept, Unified: concept, Set: dataset.SetImport,
				Name: caption, Caption: caption, Category: group, Subcategory: group, Split: split})
			d.Pixels = append(d.Pixels, testImage(i)...)
			continue
		}
		v.Clips = append(v.Clips, dataset.Clip{Index: i, Item: -1, Concept: concept, Set: dataset.SetImport, Name: caption,
			Caption: caption, Split: split, Subcategory: group})
		for k := range dataset.Frames {
			v.Pixels = append(v.Pixels, testImage(i+k)...)
		}
	}
	if !clips {
		return d, nil
	}
	return d, v
}

// Imported captions: no caption of the sample's own concept is its negative (a case variant
// is the same caption), no "tone" negatives; clips keep their captions whole (no motion
// re-wording) and give mq pairs.
func TestPairsImported(t *testing.T) {
	for _, clips := range []bool{false, true} {
		d, v := importedData(clips)
		dims := []string{DimVQ, DimTA}
		if clips {
			dims = append(dims, DimMQ)
		}
		g, err := NewPairGen(d, v, PairConfig{Dims: dims, TAImageShare: 0.3, TAImageNegatives: TAImageHard})
		if err != nil {
			t.Fatal(err)
		}
		captions := map[string]bool{}
		for i := range 60 {
			c, _, _, _, _ := g.describe(i)
			captions[c] = true
		}
		pairs, err := g.Pairs(SplitTrain, 6000, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		stats := PairStats(pairs)
		for _, k := range []string{"ta/subcategory", "ta/random", "vq/blur"} {
			if stats[k] == 0 {
				t.Errorf("clips %v: no %s pair (%v)", clips, k, stats)
			}
		}
		if clips && stats["mq/shuffle"]+stats["mq/freeze"] == 0 {
			t.Errorf("no mq pairs: %v", stats)
		}
		for _, p := range pairs {
			if p.Kind != DimTA {
				continue
			}
			if !captions[p.A.Prompt] || !captions[p.B.Prompt] {
				t.Fatalf("clips %v: %s pair with a caption not in the data: %q, %q", clips, p.Note, p.A.Prompt, p.B.Prompt)
			}
			if _, ca, _, _, _ := g.describe(p.A.Index); p.A.Index != p.B.Index {
				if _, cb, _, _, _ := g.describe(p.B.Index); ca == cb {
					t.Fatalf("clips %v: %s pair of two samples of concept %q", clips, p.Note, ca)
				}
			}
			if p.A.Index == p.B.Index && p.Labels[DimIndex(dims, DimTA)] != LabelTie {
				own, _, _, _, _ := g.describe(p.A.Index)
				neg := p.B.Prompt
				if neg == own {
					neg = p.A.Prompt
				}
				if dataset.ConceptOf(neg) == dataset.ConceptOf(own) {
					t.Fatalf("clips %v: %s pair gives %q a negative of its own concept, %q", clips, p.Note, own, neg)
				}
			}
		}
		if stats["ta/image"] == 0 || stats["ta/tone"]+stats["ta/motion"] != 0 {
			t.Errorf("clips %v: no image pairs, or tone or motion negatives of imported data: %v", clips, stats)
		}
	}
	// Clips with and without motion labels do not mix.
	d, v := synthData(true)
	v.Clips[3].Motion = ""
	if _, err := NewPairGen(d, v, PairConfig{Dims: []string{DimMQ}}); err == nil || !strings.Contains(err.Error(), "mixes clips") {
		t.Errorf("mixed clips: %v", err)
	}
}
