// Package eval measures how well a base generator follows its prompts, on the emoji data it
// was trained on, without any learned judge:
//
//   - images (retrieval.go): for held-in prompts, is a nearest training image of the sample
//     (L2 in a fixed feature space) an image of the prompted emoji? Top-1 and top-k hit rates
//     against the exact chance rate, with two controls: the samples scored against shuffled
//     prompts (the floor: a generator that ignores its prompt) and real training images of
//     the prompted emoji, themselves left out of the gallery (leave-one-out: what a correct
//     image in the other rendering scores; the measure is strict, so this is far below 100%,
//     while a generator that reproduces its training images scores 100% top-1);
//   - video (motion.go): does the sample move in the prompted direction? The direction comes
//     from the track of the centroid of the non-white pixels; the dataset's own clips through
//     the same estimator are the ceiling.
//
// The measures take samples as float32 in [-1, 1] ((N,3,32,32) images, (N,T,3,32,32) clips),
// so they run on any generator; `align retrieval` (cmd/align/retrieval.go) wires in a DiT.
// Every random choice (prompts, controls) comes from one seed.
//
// Why pixel space: the generator is trained with an L2 (flow-matching) loss on exactly these
// 32x32 pixels in [-1, 1], and every emoji is drawn centred, at one scale, over white, so L2
// distance between two images is small only when shapes and colours agree where they are drawn.
// The space has no parameters to fit and nothing learned that could be fooled; it is strict
// (a correct emoji in another style or one pixel off can miss), so the measure errs low. The
// secondary space, 4x4 box averages (8x8x3), forgives fine detail and small shifts and is
// reported beside it; the primary number is fixed in advance: pixel32, emoji identity, top-k.
//
// What counts as a hit: a neighbour is an image of the prompted emoji when it has the same
// code points (dataset.Item.Unified) as the prompt's variant: the same emoji with the same skin
// tone as the caption names, in either rendering (Twemoji or Noto). The looser "concept"
// identity (dataset.Item.Concept: the same emoji in any skin tone) is reported beside it. The
// gallery holds each distinct training image once; an image shared by several emoji (23 such
// in emoji32-v1, e.g. Twemoji's families) is an image of each of them.
//
// Chance: k gallery entries drawn at random hit a prompt with m entries of its emoji among G
// with probability 1 - C(G-m, k)/C(G, k); the chance row is its mean over the prompts.
//
// Test: go test ./diffusion/eval (synthetic data only, well under a second)
package eval

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/alignkit/align/diffusion/dataset"
)

// Space names a fixed feature space of the nearest-neighbour search.
type Space string

// Feature spaces; SpacePixel is the primary one.
const (
	SpacePixel Space = "pixel32" // the 32x32x3 image in [-1, 1], L2
	SpacePool8 Space = "pool8"   // 4x4 box averages: 8x8x3 in [-1, 1], L2
)

// Spaces lists the feature spaces, primary first.
var Spaces = []Space{SpacePixel, SpacePool8}

// Identity levels at which a neighbour matches the prompt; IdentityEmoji is the primary one.
const (
	IdentityEmoji   = "emoji"   // same code points: the emoji and skin tone of the caption
	IdentityConcept = "concept" // same base emoji, any skin tone
)

// Identities lists the identity levels, primary first.
var Identities = []string{IdentityEmoji, IdentityConcept}

// Conditions of a retrieval row.
const (
	CondSamples  = "samples"       // the generator's samples for their own prompts
	CondShuffled = "shuffled"      // the same samples judged against another prompt (floor)
	CondLOO      = "leave-one-out" // a real training image of the prompt, itself excluded (reference)
)

// Conditions lists the conditions in report order.
var Conditions = []string{CondSamples, CondShuffled, CondLOO}

const imageDim = dataset.ImageBytes // 3*32*32

// seedStream is the RNG of one purpose (prompts, controls) of a seed.
func seedStream(seed, purpose uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0x616c69676e2d6576^purpose)) // "align-ev"
}

// ---- prompts ----

// ImagePrompt is one held-in prompt: the primary caption of one variant of a training concept.
type ImagePrompt struct {
	Caption string `json:"caption"`
	Unified string `json:"unified"` // the variant's code points (the emoji identity)
	Concept string `json:"concept"` // the base emoji (the concept identity)
}

// ImagePrompts picks n prompts from the training split, one per concept: a seeded random
// subset of the training concepts, and for each a seeded random variant (base or a skin tone),
// whose primary caption ("waving hand: medium skin tone") is the prompt. The result depends
// only on (the dataset, n, seed).
func ImagePrompts(items []dataset.Item, n int, seed uint64) ([]ImagePrompt, error) {
	concepts := dataset.GroupConcepts(items, dataset.SplitTrain)
	if n < 1 || n > len(concepts) {
		return nil, fmt.Errorf("%d prompts asked for, the training split has %d concepts", n, len(concepts))
	}
	rng := seedStream(seed, 1)
	rng.Shuffle(len(concepts), func(i, j int) { concepts[i], concepts[j] = concepts[j], concepts[i] })
	out := make([]ImagePrompt, n)
	for i, c := range concepts[:n] {
		it := &items[c.Variants[rng.IntN(len(c.Variants))]]
		out[i] = ImagePrompt{Caption: it.Caption, Unified: it.Unified, Concept: it.Concept}
	}
	return out, nil
}

// derangement is a seeded random cyclic permutation (Sattolo's algorithm): p[i] != i for
// every i when n >= 2.
func derangement(n int, rng *rand.Rand) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// ---- features and the gallery ----

// Features writes the features of one (3,32,32) image in [-1, 1] in space s into dst and
// returns it (allocated when dst is too short). Values are clamped to [-1, 1] first: the
// measure sees the image as it is written to a PNG.
func Features(dst, img []float32, s Space) []float32 {
	if len(img) != imageDim {
		panic(fmt.Sprintf("eval: Features: %d values, want %d", len(img), imageDim))
	}
	const S = dataset.ImageSize
	switch s {
	case SpacePixel:
		dst = grow(dst, imageDim)
		for i, v := range img {
			dst[i] = clampUnit(v)
		}
	case SpacePool8:
		const P, B = 8, S / 8
		dst = grow(dst, dataset.Channels*P*P)
		for c := range dataset.Channels {
			for py := range P {
				for px := range P {
					var sum float32
					for y := py * B; y < (py+1)*B; y++ {
						for x := px * B; x < (px+1)*B; x++ {
							sum += clampUnit(img[(c*S+y)*S+x])
						}
					}
					dst[(c*P+py)*P+px] = sum / (B * B)
				}
			}
		}
	default:
		panic(fmt.Sprintf("eval: unknown feature space %q", s))
	}
	return dst
}

func grow(dst []float32, n int) []float32 {
	if cap(dst) < n {
		return make([]float32, n)
	}
	return dst[:n]
}

func clampUnit(v float32) float32 {
	switch {
	case v > 1:
		return 1
	case v >= -1:
		return v
	case v < -1:
		return -1
	}
	return 0 // NaN
}

// Gallery is the search space of the measure: the distinct images of the training split of
// an image dataset with their features in every space. Identical images (Twemoji draws every
// "family" emoji alike, Noto every skin tone of a snowboarder) are one gallery entry that
// carries the labels of all of them: it is an image of each of those emoji.
type Gallery struct {
	Data    *dataset.Dataset
	Items   []int // dataset index of the first training image of entry g
	Images  int   // training images, duplicates included
	feats   map[Space][]float32
	dims    map[Space]int
	emoji   [][]string // distinct Unified labels of entry g
	concept [][]string // distinct Concept labels of entry g
}

// NewGallery builds the gallery of the training split of d.
func NewGallery(d *dataset.Dataset) *Gallery {
	g := &Gallery{Data: d, feats: map[Space][]float32{}, dims: map[Space]int{}}
	entry := map[string]int{}
	for _, i := range d.Indices(dataset.SplitTrain) {
		g.Images++
		key := string(d.Image(i))
		pos, ok := entry[key]
		if !ok {
			pos = len(g.Items)
			entry[key] = pos
			g.Items = append(g.Items, i)
			g.emoji, g.concept = append(g.emoji, nil), append(g.concept, nil)
		}
		if it := &d.Items[i]; !slices.Contains(g.emoji[pos], it.Unified) {
			g.emoji[pos] = append(g.emoji[pos], it.Unified)
		}
		if it := &d.Items[i]; !slices.Contains(g.concept[pos], it.Concept) {
			g.concept[pos] = append(g.concept[pos], it.Concept)
		}
	}
	img := make([]float32, imageDim)
	var f []float32
	for _, s := range Spaces {
		for j, i := range g.Items {
			d.ImageFloat32(img, i)
			f = Features(f, img, s)
			if j == 0 {
				g.dims[s] = len(f)
				g.feats[s] = make([]float32, 0, len(g.Items)*len(f))
			}
			g.feats[s] = append(g.feats[s], f...)
		}
	}
	return g
}

// Len is the number of gallery entries (distinct training images).
func (g *Gallery) Len() int { return len(g.Items) }

func (g *Gallery) labels(identity string) [][]string {
	if identity == IdentityConcept {
		return g.concept
	}
	return g.emoji
}

// Shows reports whether gallery entry pos is an image of the prompt at the identity level.
func (g *Gallery) Shows(pos int, identity string, p ImagePrompt) bool {
	return slices.Contains(g.labels(identity)[pos], p.id(identity))
}

// count returns, for each label at an identity level, the number of gallery entries that
// carry it.
func (g *Gallery) count(identity string) map[string]int {
	m := map[string]int{}
	for _, ids := range g.labels(identity) {
		for _, id := range ids {
			m[id]++
		}
	}
	return m
}

// Nearest returns, for each query image (N,3,32,32), the gallery positions of its k nearest
// gallery images in space s (squared L2, ties broken by the lower position), nearest first.
// exclude[q], when exclude is not nil and the value is >= 0, is a gallery position left out
// for query q (the leave-one-out control). Queries run in parallel; the result is exact and
// does not depend on the number of workers.
func (g *Gallery) Nearest(s Space, queries []float32, k int, exclude []int) [][]int {
	n := len(queries) / imageDim
	if len(queries) != n*imageDim {
		panic(fmt.Sprintf("eval: Nearest: %d values is not a whole number of images", len(queries)))
	}
	k = min(k, g.Len())
	out := make([][]int, n)
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			var f []float32
			for q := range next {
				f = Features(f, queries[q*imageDim:(q+1)*imageDim], s)
				ex := -1
				if exclude != nil {
					ex = exclude[q]
				}
				out[q] = nearest(g.feats[s], g.dims[s], f, k, ex)
			}
		})
	}
	for q := range n {
		next <- q
	}
	close(next)
	wg.Wait()
	return out
}

// nearest is the exact k-nearest search of one query f over feats (G, dim): a sorted list of
// the k best, and a distance sum abandoned as soon as it cannot enter the list.
func nearest(feats []float32, dim int, f []float32, k, exclude int) []int {
	G := len(feats) / dim
	best := make([]int, 0, k)
	dist := make([]float32, 0, k)
	for g := range G {
		if g == exclude {
			continue
		}
		row := feats[g*dim : (g+1)*dim]
		bound := float32(math.Inf(1))
		if len(best) == k {
			bound = dist[k-1]
		}
		var d float32
		for i := 0; i < dim; i += 64 {
			end := min(i+64, dim)
			for j := i; j < end; j++ {
				e := row[j] - f[j]
				d += e * e
			}
			if d >= bound { // later positions lose ties, so >= cannot enter
				break
			}
		}
		if d >= bound {
			continue
		}
		pos := len(best)
		for pos > 0 && dist[pos-1] > d {
			pos--
		}
		if len(best) < k {
			best, dist = append(best, 0), append(dist, 0)
		}
		copy(best[pos+1:], best[pos:len(best)-1])
		copy(dist[pos+1:], dist[pos:len(dist)-1])
		best[pos], dist[pos] = g, d
	}
	return best
}

// ---- the image measure ----

// RetrievalRow is one hit rate of the image measure.
type RetrievalRow struct {
	Space     Space  `json:"space"`
	Identity  string `json:"identity"`
	Condition string `json:"condition"`
	TopK      int    `json:"top_k"`
	Rate
	Chance float64 `json:"chance"` // exact expected rate of k random gallery images
}

// PromptResult is the primary-space result of one prompt.
type PromptResult struct {
	Caption    string   `json:"caption"`
	Unified    string   `json:"unified"`
	Neighbours []string `json:"neighbours"` // item IDs of the k nearest training images, nearest first
	Hits       []bool   `json:"hits"`       // whether each of them shows the prompted emoji
	Rank       int      `json:"rank"`       // 1-based rank of the first neighbour of the prompted emoji; 0: none in the top k
	Real       string   `json:"real"`       // item ID of the real image of the leave-one-out control
	RealRank   int      `json:"real_rank"`  // the same rank for that real image
	neighbours []int    // gallery positions
	real       int      // gallery position of the real image
}

// ImageReport is the result of the image measure.
type ImageReport struct {
	TopK          int            `json:"top_k"`
	Gallery       int            `json:"gallery"`        // distinct training images
	GalleryImages int            `json:"gallery_images"` // training images, duplicates included
	Primary       RetrievalRow   `json:"primary"`        // pixel32, emoji, samples, top-k
	Rows          []RetrievalRow `json:"rows"`
	Prompts       []PromptResult `json:"prompts"`
}

// Row returns the row of (space, identity, condition, top-k), or false.
func (r *ImageReport) Row(s Space, identity, cond string, k int) (RetrievalRow, bool) {
	for _, row := range r.Rows {
		if row.Space == s && row.Identity == identity && row.Condition == cond && row.TopK == k {
			return row, true
		}
	}
	return RetrievalRow{}, false
}

// EvalImages scores samples (N,3,32,32) in [-1, 1], sample i generated for prompts[i], against
// gallery g at top-1 and top-k, in every space and identity level, with the two controls
// (see the package doc). seed draws the shuffled pairing and the real images of the leave-one-out control.
func EvalImages(g *Gallery, prompts []ImagePrompt, samples []float32, k int, seed uint64) (*ImageReport, error) {
	n := len(prompts)
	switch {
	case n == 0:
		return nil, fmt.Errorf("no prompts")
	case len(samples) != n*imageDim:
		return nil, fmt.Errorf("%d sample values for %d prompts, want %d", len(samples), n, n*imageDim)
	case k < 1:
		return nil, fmt.Errorf("top-k must be >= 1, got %d", k)
	case g.Len() < k+1:
		return nil, fmt.Errorf("the gallery has %d images, top-%d needs more", g.Len(), k)
	}
	// The controls: a derangement of the prompts, and one real gallery image per prompt.
	rng := seedStream(seed, 2)
	perm := derangement(n, rng)
	byEmoji := map[string][]int{}
	for pos, ids := range g.emoji {
		for _, id := range ids {
			byEmoji[id] = append(byEmoji[id], pos)
		}
	}
	reals := make([]int, n)
	realImgs := make([]float32, n*imageDim)
	for i, p := range prompts {
		cand := byEmoji[p.Unified]
		if len(cand) == 0 {
			return nil, fmt.Errorf("prompt %q: no training image of %s in the gallery", p.Caption, p.Unified)
		}
		reals[i] = cand[rng.IntN(len(cand))]
		g.Data.ImageFloat32(realImgs[i*imageDim:(i+1)*imageDim], g.Items[reals[i]])
	}

	rep := &ImageReport{TopK: k, Gallery: g.Len(), GalleryImages: g.Images}
	ks := []int{1, k}
	if k == 1 {
		ks = ks[:1]
	}
	G := g.Len()
	for _, s := range Spaces {
		nnSamples := g.Nearest(s, samples, k, nil)
		nnReal := g.Nearest(s, realImgs, k, reals)
		if s == SpacePixel {
			for i, p := range prompts {
				hits := make([]bool, len(nnSamples[i]))
				for j, pos := range nnSamples[i] {
					hits[j] = g.Shows(pos, IdentityEmoji, p)
				}
				rep.Prompts = append(rep.Prompts, PromptResult{Caption: p.Caption, Unified: p.Unified,
					Neighbours: g.itemIDs(nnSamples[i]), Hits: hits, Rank: g.rank(nnSamples[i], IdentityEmoji, p),
					Real: g.Data.Items[g.Items[reals[i]]].ID, RealRank: g.rank(nnReal[i], IdentityEmoji, p),
					neighbours: nnSamples[i], real: reals[i]})
			}
		}
		for _, identity := range Identities {
			counts := g.count(identity)
			for _, cond := range Conditions {
				if cond == CondShuffled && n < 2 {
					continue
				}
				for _, kk := range ks {
					row := RetrievalRow{Space: s, Identity: identity, Condition: cond, TopK: kk}
					hits := 0
					chance := 0.0
					for i := range n {
						nn, target := nnSamples[i], prompts[i]
						m, gsize := counts[target.id(identity)], G
						switch cond {
						case CondShuffled:
							target = prompts[perm[i]]
							m = counts[target.id(identity)]
						case CondLOO:
							nn = nnReal[i]
							m, gsize = m-1, G-1
						}
						if r := g.rank(nn, identity, target); r > 0 && r <= kk {
							hits++
						}
						chance += ChanceTopK(gsize, m, kk)
					}
					row.Rate = NewRate(hits, n)
					row.Chance = chance / float64(n)
					rep.Rows = append(rep.Rows, row)
				}
			}
		}
	}
	rep.Primary, _ = rep.Row(SpacePixel, IdentityEmoji, CondSamples, k)
	return rep, nil
}

func (p ImagePrompt) id(identity string) string {
	if identity == IdentityConcept {
		return p.Concept
	}
	return p.Unified
}

// rank is the 1-based position of the first neighbour that shows p at the identity level,
// 0 when none does.
func (g *Gallery) rank(nn []int, identity string, p ImagePrompt) int {
	if i := slices.IndexFunc(nn, func(pos int) bool { return g.Shows(pos, identity, p) }); i >= 0 {
		return i + 1
	}
	return 0
}

func (g *Gallery) itemIDs(nn []int) []string {
	out := make([]string, len(nn))
	for i, pos := range nn {
		out[i] = g.Data.Items[g.Items[pos]].ID
	}
	return out
}

// NeighbourItems returns the dataset indices of the primary-space neighbours of prompt i and of
// its real control image (for contact sheets).
func (r *ImageReport) NeighbourItems(g *Gallery, i int) (neighbours []int, real int) {
	p := &r.Prompts[i]
	for _, pos := range p.neighbours {
		neighbours = append(neighbours, g.Items[pos])
	}
	return neighbours, g.Items[p.real]
}
