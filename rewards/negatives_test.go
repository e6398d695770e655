// Tests of the pool of generated negatives on the synthetic dataset of pairs_test.go with a
// tiny random 32x32 generator: the level mapping, samples that are diffusion.Sample's for
// the item's stream whatever the batching, seeds, draws within a split, the cache (reuse,
// a mismatch refused or rebuilt, a damaged file), pairs that prefer the real image, and the
// negative settings of a training run checked on resume.
//
// Run: go test ./rewards -run Negative
package rewards

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

func TestNegativeLevel(t *testing.T) {
	for steps, want := range map[int]int{1: 3, 2: 2, 3: 2, 4: 1, 8: 1, 28: 1} {
		if got := NegativeLevel(steps); got != want {
			t.Errorf("NegativeLevel(%d) = %d, want %d", steps, got, want)
		}
	}
	if MaxLevel != 3 {
		t.Fatalf("MaxLevel %d: revisit the table above", MaxLevel)
	}
}

// negativesSetup is tinyGeneratorSetup with the generator's weights perturbed, so that its
// samples depend on their captions.
func negativesSetup(t *testing.T, pc PairConfig) (*PairGen, *diffusion.DiT) {
	t.Helper()
	gen, g := tinyGeneratorSetup(t, pc)
	perturb(g.Params(), rand.New(rand.NewPCG(4, 4)), 0.3)
	return gen, g
}

func buildNegatives(t *testing.T, g *diffusion.DiT, gen *PairGen, cfg GeneratorNegativesConfig) *GeneratorNegatives {
	t.Helper()
	n, err := BuildGeneratorNegatives(context.Background(), g, gen, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGeneratorNegativesBuild(t *testing.T) {
	gen, g := negativesSetup(t, PairConfig{Dims: []string{DimVQ}})
	cfg := GeneratorNegativesConfig{Generator: "tiny", GeneratorSHA256: "aa", Seed: 5, PerLevel: 4, BatchSize: 3}
	var last [2]int
	cfg.Progress = func(done, total int) { last = [2]int{done, total} }
	n := buildNegatives(t, g, gen, cfg)
	want := 0
	for _, s := range []string{SplitTrain, SplitVal, SplitHeldOut} {
		want += min(4, gen.PoolSize(s))
	}
	if n.Items() != want || n.Len() != want*len(NegativeSteps) || last != [2]int{n.Len(), n.Len()} {
		t.Fatalf("%d items, %d samples, progress %v; want %d items", n.Items(), n.Len(), last, want)
	}

	// Batching does not matter; the seed does.
	cfg.BatchSize, cfg.Progress = 64, nil
	if m := buildNegatives(t, g, gen, cfg); kernels.BatchInvariant() && (!bytes.Equal(m.pix, n.pix) || fmt.Sprint(m.hdr) != fmt.Sprint(n.hdr)) {
		t.Fatal("the pool depends on the batch size")
	}
	cfg.Seed = 6
	if m := buildNegatives(t, g, gen, cfg); bytes.Equal(m.pix, n.pix) || slices.Equal(m.items, n.items) {
		t.Error("seeds 5 and 6 gave the same pool or the same subset")
	}

	// Each sample is the item's own diffusion.Sample at that step count.
	for _, item := range []int{n.items[0], n.items[len(n.items)-1]} {
		var prev []uint8
		for si, steps := range NegativeSteps {
			o := diffusion.DefaultSampleOptions()
			o.NumInferenceSteps, o.Seed, o.FirstIndex = steps, 5, item
			x, _, err := diffusion.Sample(g, []string{gen.Images.Items[item].Caption}, o)
			if err != nil {
				t.Fatal(err)
			}
			ref := make([]uint8, gen.SampleLen())
			dataset.FromUnit(ref, toHost(x))
			got, ok := n.Sample(item, si)
			if !ok || (kernels.BatchInvariant() && !bytes.Equal(got, ref)) { // sampled alone here, in a batch there
				t.Fatalf("item %d at %d steps is not its diffusion.Sample", item, steps)
			}
			if bytes.Equal(got, prev) {
				t.Errorf("item %d: %d steps gave the sample of %d", item, steps, NegativeSteps[si-1])
			}
			prev = got
		}
	}

	// Draws: a pool item gets its own samples at every step count, each with its level; an
	// item outside the subset gets a sample of its own split.
	own := n.bySplit[SplitTrain][0]
	seen := map[int]bool{}
	for seed := range uint64(64) {
		pix, lv, err := n.Negative(own, "", seed)
		if err != nil {
			t.Fatal(err)
		}
		si := -1
		for k := range NegativeSteps {
			if s, _ := n.Sample(own, k); bytes.Equal(s, pix) {
				si = k
			}
		}
		if si < 0 || lv != NegativeLevel(NegativeSteps[si]) {
			t.Fatalf("seed %d: level %d, step count %d", seed, lv, si)
		}
		seen[si] = true
		again, lv2, _ := n.Negative(own, "", seed)
		if !bytes.Equal(again, pix) || lv2 != lv {
			t.Fatal("Negative is not a function of (index, seed)")
		}
	}
	if len(seen) != len(NegativeSteps) {
		t.Errorf("64 draws used the step counts %v", seen)
	}
	for _, s := range []string{SplitTrain, SplitHeldOut} {
		outside := -1
		for _, i := range gen.pools[s] {
			if _, ok := n.pos[i]; !ok {
				outside = i
				break
			}
		}
		pix, _, err := n.Negative(outside, "", 3)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, i := range n.bySplit[s] {
			for k := range NegativeSteps {
				if p, _ := n.Sample(i, k); bytes.Equal(p, pix) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s item %d outside the subset got a sample of another split", s, outside)
		}
	}
	if _, _, err := n.Negative(len(gen.Images.Items)+5, "", 1); err == nil || !strings.Contains(err.Error(), "no split") {
		t.Errorf("unknown item: %v", err)
	}
}

func TestGeneratorNegativesCache(t *testing.T) {
	gen, g := negativesSetup(t, PairConfig{Dims: []string{DimVQ}})
	dir := t.TempDir()
	loads := 0
	load := func() (*diffusion.DiT, error) { loads++; return g, nil }
	cfg := GeneratorNegativesConfig{Generator: "tiny.safetensors", GeneratorSHA256: "aa", Seed: 1, PerLevel: 3}
	open := func(cfg GeneratorNegativesConfig, rebuild bool) (*GeneratorNegatives, bool, error) {
		return OpenGeneratorNegatives(context.Background(), dir, gen, cfg, load, rebuild)
	}
	n, built, err := open(cfg, false)
	if err != nil || !built || loads != 1 {
		t.Fatalf("first open: built %v, %d loads, %v", built, loads, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, NegativesDataFile)); err != nil || fi.Size() != int64(n.Len()*dataset.ImageBytes) {
		t.Fatalf("%s: %v", NegativesDataFile, err)
	}
	// Reused without loading the generator, even from a renamed file.
	cfg.Generator = "moved.safetensors"
	m, built, err := open(cfg, false)
	if err != nil || built || loads != 1 || !bytes.Equal(m.pix, n.pix) || m.hdr.DataSHA256 != n.hdr.DataSHA256 {
		t.Fatalf("second open: built %v, %d loads, %v", built, loads, err)
	}

	// Another generator, seed or subset: refused on resume, rebuilt on a fresh run.
	for _, c := range []struct {
		edit func(*GeneratorNegativesConfig)
		want string
	}{
		{func(c *GeneratorNegativesConfig) { c.GeneratorSHA256 = "bb" }, "generator_sha256 aa (cached) vs bb (this run)"},
		{func(c *GeneratorNegativesConfig) { c.Seed = 2 }, "seed 1 (cached) vs 2 (this run)"},
		{func(c *GeneratorNegativesConfig) { c.PerLevel = 0 }, "per_level 3 (cached) vs 0 (this run)"},
	} {
		other := cfg
		c.edit(&other)
		if _, _, err := open(other, false); err == nil || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), NegativesHeaderFile) || !strings.Contains(err.Error(), "delete") || loads != 1 {
			t.Errorf("stale cache on resume: %v, want %q", err, c.want)
		}
	}
	other := cfg
	other.GeneratorSHA256 = "bb"
	if m, built, err := open(other, true); err != nil || !built || loads != 2 || m.hdr.GeneratorSHA256 != "bb" {
		t.Fatalf("rebuild: built %v, %d loads, %v", built, loads, err)
	}
	if _, built, err := open(other, false); err != nil || built {
		t.Fatalf("rebuilt cache not reused: %v", err)
	}

	// A damaged pixel file is refused on resume; a missing one is sampled again.
	pixPath := filepath.Join(dir, NegativesDataFile)
	pix, _ := os.ReadFile(pixPath)
	pix[7] ^= 1
	if err := os.WriteFile(pixPath, pix, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := open(other, false); err == nil || !strings.Contains(err.Error(), "sha256") || !strings.Contains(err.Error(), NegativesDataFile) {
		t.Errorf("damaged %s: %v", NegativesDataFile, err)
	}
	os.Remove(pixPath)
	if m, built, err := open(other, false); err != nil || !built || loads != 3 || m.hdr.DataSHA256 == "" {
		t.Fatalf("missing %s: built %v, %v", NegativesDataFile, built, err)
	}
}

// Pairs drawn with the source compare a real image with a generated one and prefer the real.
func TestPairsGeneratorNegatives(t *testing.T) {
	gen, g := negativesSetup(t, PairConfig{Dims: []string{DimVQ, DimTA}, NegativeShare: 0.5, TieShare: -1, GradedShare: -1})
	n := buildNegatives(t, g, gen, GeneratorNegativesConfig{Generator: "tiny", Seed: 2, PerLevel: 6})
	gen.Cfg.Negatives = n
	pairs, err := gen.Pairs(SplitTrain, 800, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	vq, generated := 0, 0
	levels := map[int]int{}
	for _, p := range pairs {
		if p.Kind != DimVQ {
			if p.A.Source != "" || p.B.Source != "" {
				t.Fatalf("%s pair with a generated side", p.Kind)
			}
			continue
		}
		vq++
		real, fake, l := p.A, p.B, LabelA
		ta, tb := p.TargetA[0], p.TargetB[0]
		if p.A.Source != "" {
			real, fake, l, ta, tb = p.B, p.A, LabelB, tb, ta
		}
		if fake.Source == "" {
			continue
		}
		generated++
		var lv int
		if _, err := fmt.Sscanf(p.Note, NegativesGenerator+"-%d", &lv); err != nil || real.Source != "" || real.Pixels != nil || real.Degrade != (Corruption{}) {
			t.Fatalf("pair %q: real side %+v", p.Note, real)
		}
		if p.Labels[0] != l || p.Labels[1] != LabelNone || ta != 1 || tb != levelQuality(lv) || !(ta > tb) {
			t.Fatalf("pair %q: labels %v, targets %v %v; the real image must be preferred", p.Note, p.Labels, ta, tb)
		}
		if !bytes.Equal(gen.RenderBytes(fake), fake.Pixels) || bytes.Equal(gen.RenderBytes(fake), gen.RenderBytes(real)) {
			t.Fatal("the generated side does not render its pixels")
		}
		levels[lv]++
	}
	// NegativeShare 0.5 of the decisive vq pairs (all of them here), within 4 sigma.
	if d := float64(generated) - 0.5*float64(vq); vq < 300 || d*d > 16*0.25*float64(vq) {
		t.Errorf("%d of %d vq pairs generated, want about half", generated, vq)
	}
	if levels[1] == 0 || levels[2] == 0 || levels[3] == 0 || levels[1] < levels[3] {
		t.Errorf("levels %v: want all of 1..3, level 1 (4 and 8 steps) about twice level 3", levels)
	}
	if st := PairStats(pairs); st["vq/generator"] != generated {
		t.Errorf("pair stats %v", st)
	}
}

// A run with generated negatives trains, and its checkpoint resumes only with the same
// negative settings.
func TestTrainNegativesResume(t *testing.T) {
	cfg := DefaultTrainConfig()
	cfg.TrainBatchSize, cfg.MaxTrainSteps, cfg.CheckpointingSteps, cfg.ValPairs, cfg.EvalPairs, cfg.Seed = 8, 2, 2, 16, 16, 9
	cfg.Negatives, cfg.NegativeShare, cfg.NegativesPerLevel, cfg.NegativesGeneratorSHA256 = NegativesGenerator, 1, 3, "aa"
	gen, g := negativesSetup(t, cfg.PairConfig([]string{DimVQ, DimTA}))
	dir := t.TempDir()
	n, _, err := OpenGeneratorNegatives(context.Background(), dir, gen, GeneratorNegativesConfig{Generator: "tiny",
		GeneratorSHA256: cfg.NegativesGeneratorSHA256, Seed: cfg.Seed, PerLevel: cfg.NegativesPerLevel},
		func() (*diffusion.DiT, error) { return g, nil }, true)
	if err != nil {
		t.Fatal(err)
	}
	gen.Cfg.Negatives = n
	tr := tinyNativeTrainer(t, cfg, gen, dir)
	if err := tr.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if tr.Eval.ByNote["vq/generator"] == 0 {
		t.Errorf("held-out evaluation without generated pairs: %v", tr.Eval.ByNote)
	}
	ck, mcfg2, tok2, err := ReadTrainingCheckpoint(nn.CheckpointPath(dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) {}, ""},
		{func(c *TrainConfig) { c.Negatives = "" }, "trained with --negatives generator --negative-share 1 --negatives-per-level 3, this run has --negatives none"},
		{func(c *TrainConfig) { c.NegativeShare = 0.5 }, "this run has --negatives generator --negative-share 0.5"},
		{func(c *TrainConfig) { c.NegativesGeneratorSHA256 = "bb" }, "sha256 aa, --negatives-generator has bb"},
	} {
		rc := cfg
		c.edit(&rc)
		r, err := NewTrainer(testDev, mcfg2, tok2, rc, gen, dir)
		if err != nil {
			t.Fatal(err)
		}
		err = r.Resume(ck)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("resume: %v, want %q", err, c.want)
		}
	}

	bad := DefaultTrainConfig()
	for _, c := range []struct {
		edit func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) { c.Negatives = "diffusion" }, `--negatives "diffusion": want generator`},
		{func(c *TrainConfig) { c.NegativeShare = 1.5 }, "--negative-share must be in [0, 1]"},
		{func(c *TrainConfig) { c.NegativesPerLevel = -1 }, "--negatives-per-level must be >= 0"},
	} {
		c2 := bad
		c.edit(&c2)
		if err := c2.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate: %v, want %q", err, c.want)
		}
	}
}
