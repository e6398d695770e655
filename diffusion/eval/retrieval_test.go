// Tests of the image measure on a synthetic dataset: a generator that returns the training
// image of the prompt scores 100% top-1, uniform noise scores about chance, the leave-one-out
// control finds the other rendering, the search is exact, and prompts are deterministic.
//
// Test: go test ./diffusion/eval -run 'Retrieval|Nearest|ImagePrompts|Features'
package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
)

// synthDataset has nConcepts concepts; every 4th has three variants (base and two tones), the
// rest one; every variant has a Twemoji and a Noto image; every 11th concept is held out. The
// images are random, and the Noto image of a variant is its Twemoji image plus a little noise,
// so the two renderings of an emoji are each other's nearest neighbours.
func synthDataset(nConcepts int) *dataset.Dataset {
	rng := rand.New(rand.NewPCG(7, 7))
	d := &dataset.Dataset{}
	for c := range nConcepts {
		concept := fmt.Sprintf("C%03d", c)
		split := dataset.SplitTrain
		if c%11 == 5 {
			split = dataset.SplitHeldOut
		}
		tones := []string{""}
		if c%4 == 0 {
			tones = append(tones, "light skin tone", "dark skin tone")
		}
		for v, tone := range tones {
			unified := concept
			caption := fmt.Sprintf("thing %d", c)
			if tone != "" {
				unified = fmt.Sprintf("%s-T%d", concept, v)
				caption += ": " + tone
			}
			base := make([]uint8, dataset.ImageBytes)
			for i := range base {
				base[i] = uint8(rng.IntN(256))
			}
			for _, set := range dataset.Sets {
				img := slices.Clone(base)
				if set != dataset.SetTwitter {
					for i := range img {
						img[i] = uint8(min(255, max(0, int(img[i])+rng.IntN(21)-10)))
					}
				}
				d.Items = append(d.Items, dataset.Item{Index: len(d.Items), ID: unified + "/" + set, Concept: concept,
					Unified: unified, Set: set, Name: fmt.Sprintf("thing %d", c), Tone: tone, Caption: caption, Split: split})
				d.Pixels = append(d.Pixels, img...)
			}
		}
	}
	return d
}

// trainingImageOf returns the Twemoji training image of a prompt in [-1, 1].
func trainingImageOf(d *dataset.Dataset, p ImagePrompt) []float32 {
	img := make([]float32, imageDim)
	for i, it := range d.Items {
		if it.Unified == p.Unified && it.Set == dataset.SetTwitter {
			d.ImageFloat32(img, i)
			return img
		}
	}
	panic("no image of " + p.Unified)
}

func TestRetrievalMemorisingAndNoise(t *testing.T) {
	d := synthDataset(110)
	g := NewGallery(d)
	prompts, err := ImagePrompts(d.Items, 100, 3)
	if err != nil {
		t.Fatal(err)
	}

	// A generator that returns the exact training image of the prompt.
	var exact []float32
	for _, p := range prompts {
		exact = append(exact, trainingImageOf(d, p)...)
	}
	rep, err := EvalImages(g, prompts, exact, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Spaces {
		for _, id := range Identities {
			for _, k := range []int{1, 5} {
				if r, ok := rep.Row(s, id, CondSamples, k); !ok || r.Hits != r.N || r.N != 100 {
					t.Errorf("exact images, %s/%s/top-%d: %+v", s, id, k, r)
				}
			}
		}
	}
	if rep.Primary.Rate.Rate != 1 || rep.Primary.TopK != 5 || rep.Primary.Space != SpacePixel {
		t.Errorf("primary row %+v", rep.Primary)
	}
	// Leave-one-out: with itself left out, a real image's nearest is its other rendering.
	if r, _ := rep.Row(SpacePixel, IdentityEmoji, CondLOO, 1); r.Hits != r.N {
		t.Errorf("leave-one-out top-1: %+v", r)
	}
	// The floor: an exact image judged against another prompt almost never hits.
	if r, _ := rep.Row(SpacePixel, IdentityEmoji, CondShuffled, 5); r.Rate.Rate > 0.05 {
		t.Errorf("shuffled top-5: %+v", r)
	}
	for _, p := range rep.Prompts {
		if p.Rank != 1 || p.RealRank != 1 || len(p.Neighbours) != 5 || !slices.Contains(p.Neighbours, p.Unified+"/twitter") {
			t.Errorf("prompt result %+v", p)
			break
		}
	}

	// Uniform noise: within three standard errors of the exact chance rate.
	rng := rand.New(rand.NewPCG(9, 9))
	noise := make([]float32, len(exact))
	for i := range noise {
		noise[i] = float32(rng.Float64()*2 - 1)
	}
	rep, err = EvalImages(g, prompts, noise, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Spaces {
		for _, k := range []int{1, 5} {
			r, _ := rep.Row(s, IdentityEmoji, CondSamples, k)
			se := math.Sqrt(r.Chance * (1 - r.Chance) / float64(r.N))
			if math.Abs(r.Rate.Rate-r.Chance) > 3*se+1.0/float64(r.N) {
				t.Errorf("noise %s top-%d: rate %.3f, chance %.4f", s, k, r.Rate.Rate, r.Chance)
			}
		}
	}
	// The chance rate by hand: G training images; 25 of the 100 training concepts (c%4 == 0)
	// have 3 variants, so a prompt's emoji has 2 images and its concept 2 or 6.
	G := g.Len()
	if want := 2 * (75 + 25*3); G != want {
		t.Fatalf("gallery %d, want %d", G, want)
	}
	r, _ := rep.Row(SpacePixel, IdentityEmoji, CondSamples, 5)
	if want := ChanceTopK(G, 2, 5); math.Abs(r.Chance-want) > 1e-12 {
		t.Errorf("chance %v, want %v", r.Chance, want)
	}
	r, _ = rep.Row(SpacePixel, IdentityEmoji, CondLOO, 5)
	if want := ChanceTopK(G-1, 1, 5); math.Abs(r.Chance-want) > 1e-12 {
		t.Errorf("leave-one-out chance %v, want %v", r.Chance, want)
	}
}

func TestRetrievalErrors(t *testing.T) {
	d := synthDataset(12)
	g := NewGallery(d)
	prompts, _ := ImagePrompts(d.Items, 3, 0)
	if _, err := EvalImages(g, prompts, make([]float32, 2*imageDim), 5, 0); err == nil {
		t.Error("wrong sample count accepted")
	}
	if _, err := EvalImages(g, prompts, make([]float32, 3*imageDim), 0, 0); err == nil {
		t.Error("top-0 accepted")
	}
	if _, err := EvalImages(g, nil, nil, 5, 0); err == nil {
		t.Error("no prompts accepted")
	}
	if _, err := ImagePrompts(d.Items, 12, 0); err == nil {
		t.Error("more prompts than training concepts accepted")
	}
}

func TestNearestIsExact(t *testing.T) {
	d := synthDataset(30)
	g := NewGallery(d)
	rng := rand.New(rand.NewPCG(3, 4))
	const nq = 6
	queries := make([]float32, nq*imageDim)
	for i := range queries {
		queries[i] = float32(rng.Float64()*2.4 - 1.2) // some values outside [-1, 1]: clamped
	}
	// Query 0 duplicates gallery entry 4 (ties with its twin are impossible, so it is first).
	d.ImageFloat32(queries[:imageDim], g.Items[4])
	exclude := []int{-1, 3, -1, 0, -1, 7}
	for _, s := range Spaces {
		got := g.Nearest(s, queries, 7, exclude)
		for q := range nq {
			f := Features(nil, queries[q*imageDim:(q+1)*imageDim], s)
			dim := len(f)
			type cand struct {
				pos int
				d   float64
			}
			var all []cand
			for pos := range g.Len() {
				if pos == exclude[q] {
					continue
				}
				var sum float64
				for j, v := range g.feats[s][pos*dim : (pos+1)*dim] {
					e := float64(v - f[j])
					sum += e * e
				}
				all = append(all, cand{pos, sum})
			}
			sort.SliceStable(all, func(i, j int) bool { return all[i].d < all[j].d })
			var want []int
			for _, c := range all[:7] {
				want = append(want, c.pos)
			}
			if !slices.Equal(got[q], want) {
				t.Errorf("%s query %d: got %v, want %v", s, q, got[q], want)
			}
		}
		if got[0][0] != 4 {
			t.Errorf("%s: a gallery image's nearest is %d, want itself (4)", s, got[0][0])
		}
	}
}

func TestImagePrompts(t *testing.T) {
	d := synthDataset(60)
	a, err := ImagePrompts(d.Items, 40, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ImagePrompts(d.Items, 40, 5)
	c, _ := ImagePrompts(d.Items, 40, 6)
	if !slices.Equal(a, b) {
		t.Error("the same seed gave different prompts")
	}
	if slices.Equal(a, c) {
		t.Error("another seed gave the same prompts")
	}
	concepts := map[string]bool{}
	tones := 0
	for _, p := range a {
		if concepts[p.Concept] {
			t.Errorf("concept %s twice", p.Concept)
		}
		concepts[p.Concept] = true
		var n int
		fmt.Sscanf(p.Concept, "C%d", &n)
		if n%11 == 5 {
			t.Errorf("held-out concept %s prompted", p.Concept)
		}
		if p.Unified != p.Concept {
			tones++
		}
		want := fmt.Sprintf("thing %d", n)
		if p.Caption != want && p.Caption != want+": light skin tone" && p.Caption != want+": dark skin tone" {
			t.Errorf("caption %q for %s", p.Caption, p.Unified)
		}
	}
	if tones == 0 {
		t.Error("no skin-tone variant was ever prompted")
	}
	// A prefix of the prompts does not depend on n.
	short, _ := ImagePrompts(d.Items, 10, 5)
	if !slices.Equal(short, a[:10]) {
		t.Error("the first 10 of 40 prompts differ from 10 prompts")
	}
}

func TestFeaturesPool8(t *testing.T) {
	img := make([]float32, imageDim)
	for i := range img {
		img[i] = -1
	}
	// One 4x4 block of channel 1 at block (row 2, col 3) set to 1; another pixel at 3 is clamped.
	for y := 8; y < 12; y++ {
		for x := 12; x < 16; x++ {
			img[(1*32+y)*32+x] = 1
		}
	}
	img[(0*32+0)*32+0] = 3
	f := Features(nil, img, SpacePool8)
	if len(f) != 192 {
		t.Fatalf("%d features", len(f))
	}
	if f[(1*8+2)*8+3] != 1 || f[(1*8+2)*8+2] != -1 || f[0] != -1+2.0/16 {
		t.Errorf("pooled values %v %v %v", f[(1*8+2)*8+3], f[(1*8+2)*8+2], f[0])
	}
	p := Features(nil, img, SpacePixel)
	if p[0] != 1 || len(p) != imageDim {
		t.Errorf("pixel features: %v (len %d)", p[0], len(p))
	}
}

func TestGalleryDuplicates(t *testing.T) {
	d := synthDataset(12)
	// Concepts 1 and 2 get the same Twemoji image: one gallery entry showing both.
	var i1, i2 int
	for i, it := range d.Items {
		if it.Set == dataset.SetTwitter && it.Concept == "C001" {
			i1 = i
		}
		if it.Set == dataset.SetTwitter && it.Concept == "C002" {
			i2 = i
		}
	}
	copy(d.Image(i2), d.Image(i1))
	g := NewGallery(d)
	if g.Len() != g.Images-1 {
		t.Fatalf("gallery %d of %d images, want one merged", g.Len(), g.Images)
	}
	p1 := ImagePrompt{Caption: "thing 1", Unified: "C001", Concept: "C001"}
	p2 := ImagePrompt{Caption: "thing 2", Unified: "C002", Concept: "C002"}
	prompts := []ImagePrompt{p1, p2}
	samples := append(trainingImageOf(d, p1), trainingImageOf(d, p1)...) // the shared image, twice
	rep, err := EvalImages(g, prompts, samples, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rep.Row(SpacePixel, IdentityEmoji, CondSamples, 1); r.Hits != 2 {
		t.Errorf("the shared image is not a hit for both emoji: %+v", r)
	}
	// Both emoji have 2 entries (the shared one and their own Noto image).
	if r, _ := rep.Row(SpacePixel, IdentityEmoji, CondSamples, 1); math.Abs(r.Chance-2.0/float64(g.Len())) > 1e-12 {
		t.Errorf("chance %v, want %v", r.Chance, 2.0/float64(g.Len()))
	}
	if !rep.Prompts[1].Hits[0] || rep.Prompts[1].Rank != 1 {
		t.Errorf("prompt result %+v", rep.Prompts[1])
	}
}
