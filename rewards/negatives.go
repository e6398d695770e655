// Visual-quality negatives drawn from a generator: few-step Euler samples of a DiT for the
// dataset's captions. Degradations of real emoji (degrade.go) teach the vq head blur, noise
// and JPEG; a reward model that judges generator samples must also see the generator's own
// failure modes (smeared shapes, leftover noise, washed-out colours). GeneratorNegatives is a
// NegativeSource over a pool sampled once before training and cached in the output directory.
//
// Levels: a sample drawn with s Euler steps has severity
//
//	NegativeLevel(s) = clamp(MaxLevel - floor(log2 s), 1, MaxLevel)
//
// so with MaxLevel 3 and NegativeSteps 1, 2, 4, 8: 1 step -> 3 (worst), 2 -> 2, 4 and 8 -> 1.
// The level sets the regression target 1 - level/(MaxLevel+1) of the generated side
// (levelQuality) and the pair's note ("generator-3"); the real image is always preferred.
//
// Pool: every item of the PairGen's train, val and held-out pools (or, with PerLevel n, the
// first n items of each split in a shuffle drawn from the seed), each sampled at every step
// count with align sample's defaults otherwise (classifier-free guidance 4, the model's shift,
// Euler). Item i is drawn from Philox stream i of the seed: its sample is
// diffusion.Sample([caption_i], Seed: seed, FirstIndex: i), the same starting noise at every
// step count and whatever batch it is drawn in (a batch passes that noise as Latents, since
// its items are not consecutive). Held-out items are sampled too, so that the held-out
// evaluation at the end of a run also measures real-against-generated pairs.
//
// Negative(index, prompt, seed) draws a step count uniformly from seed and returns item
// index's sample at it; an item left out of a PerLevel subset gets the sample of an item of
// its own split drawn from seed (vq is prompt-free, and splits never share samples).
//
// Cache (in the run's output directory, written atomically, the pixels first):
//
//	negatives.u8    items x len(steps) x 3x32x32 bytes, item-major, items ascending
//	negatives.json  negativesHeader: generator sha256, steps, levels, guidance, seed, per-level,
//	                item count, sha256 of the items and their captions, sha256 of negatives.u8
//
// A cache whose header differs from the one this run would build is rebuilt (a fresh run) or
// refused (a resumed one: its steps were trained on that pool).
//
// Test: go test ./rewards -run Negative
package rewards

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
)

// NegativesGenerator is TrainConfig.Negatives (--negatives) for generated negatives.
const NegativesGenerator = "generator"

// Cache files in the output directory.
const (
	NegativesDataFile   = "negatives.u8"
	NegativesHeaderFile = "negatives.json"
)

// NegativeSteps are the Euler step counts of the pool, worst first.
var NegativeSteps = []int{1, 2, 4, 8}

// NegativeLevel is the severity of a sample drawn with steps Euler steps (see the file header).
func NegativeLevel(steps int) int {
	return min(max(MaxLevel-(bits.Len(uint(steps))-1), 1), MaxLevel)
}

// negativesStream is the PCG stream of Negative's draws and (plus the split's number) of the
// PerLevel subsets, apart from the pair streams of training (the step) and evaluation.
const negativesStream = 0x6e65676174697665

// GeneratorNegativesConfig says which pool to build or reuse.
type GeneratorNegativesConfig struct {
	Generator       string // the generator file (or the embedded model's name), for messages
	GeneratorSHA256 string // hex sha256 of the generator file, recorded in the cache
	Seed            uint64 // noise of the samples, subsets and draws
	PerLevel        int    // items sampled per split (0: all)
	// BatchSize is the number of samples per generator call (0: 64); the pool does not
	// depend on it.
	BatchSize int
	// Progress, when set, is called after each batch with (samples done, samples in all);
	// Notify receives one-line messages (cache reused, rebuilt).
	Progress func(done, total int)
	Notify   func(msg string)
}

// negativesHeader is negatives.json.
type negativesHeader struct {
	Generator       string  `json:"generator"` // for messages only: a moved file is the same generator
	GeneratorSHA256 string  `json:"generator_sha256"`
	Steps           []int   `json:"steps"`
	Levels          []int   `json:"levels"`
	GuidanceScale   float64 `json:"guidance_scale"`
	Seed            uint64  `json:"seed"`
	PerLevel        int     `json:"per_level"`
	Items           int     `json:"items"`
	ItemsSHA256     string  `json:"items_sha256"` // of "index<TAB>caption\n" per item
	SampleBytes     int     `json:"sample_bytes"`
	DataSHA256      string  `json:"data_sha256"` // of negatives.u8
}

// mismatch lists the fields in which a cached header h differs from want (DataSHA256 and the
// generator's name aside).
func (h *negativesHeader) mismatch(want *negativesHeader) []string {
	var d []string
	diff := func(name string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			d = append(d, fmt.Sprintf("%s %v (cached) vs %v (this run)", name, got, want))
		}
	}
	diff("generator_sha256", h.GeneratorSHA256, want.GeneratorSHA256)
	diff("steps", h.Steps, want.Steps)
	diff("levels", h.Levels, want.Levels)
	diff("guidance_scale", h.GuidanceScale, want.GuidanceScale)
	diff("seed", h.Seed, want.Seed)
	diff("per_level", h.PerLevel, want.PerLevel)
	diff("items", h.Items, want.Items)
	diff("items_sha256 (dataset, --concept-part)", h.ItemsSHA256, want.ItemsSHA256)
	diff("sample_bytes", h.SampleBytes, want.SampleBytes)
	return d
}

// GeneratorNegatives is the pool of generated negatives; it implements NegativeSource.
type GeneratorNegatives struct {
	hdr     negativesHeader
	items   []int            // pool items, ascending
	pos     map[int]int      // pool item -> its position in items
	split   map[int]string   // every item of the PairGen's pools -> its split
	bySplit map[string][]int // split -> its pool items
	pix     []uint8          // len(items) x len(Steps) x SampleBytes
}

// Name implements NegativeSource.
func (n *GeneratorNegatives) Name() string { return NegativesGenerator }

// Len is the number of samples in the pool.
func (n *GeneratorNegatives) Len() int { return len(n.items) * len(n.hdr.Steps) }

// Items is the number of items sampled.
func (n *GeneratorNegatives) Items() int { return len(n.items) }

// Sample returns the pool's sample of item at the step count steps[si] (read-only), and
// whether the item is in the pool.
func (n *GeneratorNegatives) Sample(item, si int) ([]uint8, bool) {
	p, ok := n.pos[item]
	if !ok {
		return nil, false
	}
	L := n.hdr.SampleBytes
	o := (p*len(n.hdr.Steps) + si) * L
	return n.pix[o : o+L : o+L], true
}

// Negative implements NegativeSource (see the file header).
func (n *GeneratorNegatives) Negative(index int, prompt string, seed uint64) ([]uint8, int, error) {
	r := rand.New(rand.NewPCG(seed, negativesStream))
	si := r.IntN(len(n.hdr.Steps))
	item := index
	if _, ok := n.pos[item]; !ok {
		s, ok := n.split[index]
		if !ok || len(n.bySplit[s]) == 0 {
			return nil, 0, fmt.Errorf("item %d is in no split of the pool", index)
		}
		item = n.bySplit[s][r.IntN(len(n.bySplit[s]))]
	}
	pix, _ := n.Sample(item, si)
	return pix, n.hdr.Levels[si], nil
}

// planNegatives picks the pool's items for gen and fills the header but its DataSHA256.
func planNegatives(gen *PairGen, cfg GeneratorNegativesConfig) (*GeneratorNegatives, error) {
	if gen.Clips != nil {
		return nil, errors.New("generated negatives: image reward models only (there is no pool of generated clips yet)")
	}
	if cfg.PerLevel < 0 {
		return nil, fmt.Errorf("generated negatives: %d per level, want >= 0", cfg.PerLevel)
	}
	n := &GeneratorNegatives{pos: map[int]int{}, split: map[int]string{}, bySplit: map[string][]int{}}
	for k, s := range []string{SplitTrain, SplitVal, SplitHeldOut} {
		pool := slices.Clone(gen.pools[s])
		for _, i := range pool {
			n.split[i] = s
		}
		if cfg.PerLevel > 0 && cfg.PerLevel < len(pool) {
			r := rand.New(rand.NewPCG(cfg.Seed, negativesStream+1+uint64(k)))
			r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
			pool = pool[:cfg.PerLevel]
			slices.Sort(pool)
		}
		n.bySplit[s] = pool
		n.items = append(n.items, pool...)
	}
	slices.Sort(n.items)
	h := sha256.New()
	for p, i := range n.items {
		n.pos[i] = p
		fmt.Fprintf(h, "%d\t%s\n", i, gen.Images.Items[i].Caption)
	}
	levels := make([]int, len(NegativeSteps))
	for k, s := range NegativeSteps {
		levels[k] = NegativeLevel(s)
	}
	n.hdr = negativesHeader{Generator: cfg.Generator, GeneratorSHA256: cfg.GeneratorSHA256, Steps: slices.Clone(NegativeSteps),
		Levels: levels, GuidanceScale: diffusion.DefaultSampleOptions().GuidanceScale, Seed: cfg.Seed, PerLevel: cfg.PerLevel,
		Items: len(n.items), ItemsSHA256: hex.EncodeToString(h.Sum(nil)), SampleBytes: gen.SampleLen()}
	return n, nil
}

// BuildGeneratorNegatives samples the pool for gen with generator m (see the file header).
// A cancelled ctx stops it between batches with ctx's error.
func BuildGeneratorNegatives(ctx context.Context, m *diffusion.DiT, gen *PairGen, cfg GeneratorNegativesConfig) (*GeneratorNegatives, error) {
	n, err := planNegatives(gen, cfg)
	if err != nil {
		return nil, err
	}
	mc := &m.Config
	if mc.Kind != diffusion.KindImage || !slices.Equal(mc.SampleShape(), gen.SampleShape()) {
		return nil, fmt.Errorf("generated negatives: %s is a %s model of samples %v; the reward model needs image samples %v",
			cfg.Generator, mc.Kind, mc.SampleShape(), gen.SampleShape())
	}
	B := cfg.BatchSize
	if B <= 0 {
		B = 64
	}
	dev := m.Device()
	L, S := gen.SampleLen(), len(NegativeSteps)
	n.pix = make([]uint8, len(n.items)*S*L)
	host := make([]float32, min(B, len(n.items))*L)
	done, total := 0, n.Len()
	for lo := 0; lo < len(n.items); lo += B {
		batch := n.items[lo:min(lo+B, len(n.items))]
		captions := make([]string, len(batch))
		latents := dev.New(mc.BatchShape(len(batch))...)
		for j, it := range batch {
			captions[j] = gen.Images.Items[it].Caption
			x := diffusion.InitialNoise(dev, mc, 1, cfg.Seed, it)
			dev.Copy(latents.View(j*L, L), x)
			dev.Free(x)
		}
		for si, steps := range NegativeSteps {
			if err := ctx.Err(); err != nil {
				dev.Free(latents)
				return nil, err
			}
			o := diffusion.DefaultSampleOptions()
			o.NumInferenceSteps, o.Latents = steps, latents
			x, _, err := diffusion.Sample(m, captions, o)
			if err != nil {
				dev.Free(latents)
				return nil, fmt.Errorf("generated negatives: %s: %w", cfg.Generator, err)
			}
			h := host[:len(batch)*L]
			dev.CopyToHost(h, x)
			dev.Free(x)
			for j := range batch {
				o := ((lo+j)*S + si) * L
				dataset.FromUnit(n.pix[o:o+L], h[j*L:(j+1)*L])
			}
			done += len(batch)
			if cfg.Progress != nil {
				cfg.Progress(done, total)
			}
		}
		dev.Free(latents)
	}
	sum := sha256.Sum256(n.pix)
	n.hdr.DataSHA256 = hex.EncodeToString(sum[:])
	return n, nil
}

// Save writes the pool into dir (negatives.u8, then negatives.json).
func (n *GeneratorNegatives) Save(dir string) error {
	if err := diffusion.WriteFileAtomic(filepath.Join(dir, NegativesDataFile), func(w io.Writer) error {
		_, err := w.Write(n.pix)
		return err
	}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, NegativesHeaderFile), n.hdr)
}

// errStaleNegatives marks a cache that does not match this run.
var errStaleNegatives = errors.New("stale cache")

// load reads the cache in dir into n (planned for this run): fs.ErrNotExist when
// there is none, errStaleNegatives (wrapped, with the differences) when it does not match.
func (n *GeneratorNegatives) load(dir string) error {
	hp, dp := filepath.Join(dir, NegativesHeaderFile), filepath.Join(dir, NegativesDataFile)
	b, err := os.ReadFile(hp)
	if err != nil {
		return err
	}
	var h negativesHeader
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("%w: %s: %v", errStaleNegatives, hp, err)
	}
	if d := h.mismatch(&n.hdr); len(d) > 0 {
		return fmt.Errorf("%w: %s (built from %s) differs from this run: %s", errStaleNegatives, hp, h.Generator, strings.Join(d, "; "))
	}
	pix, err := os.ReadFile(dp)
	if err != nil {
		return err
	}
	if sum := sha256.Sum256(pix); hex.EncodeToString(sum[:]) != h.DataSHA256 || len(pix) != n.Len()*h.SampleBytes {
		return fmt.Errorf("%w: %s: %d bytes with sha256 %x, %s records %d bytes with sha256 %s", errStaleNegatives, dp, len(pix), sum, hp,
			n.Len()*h.SampleBytes, h.DataSHA256)
	}
	n.pix, n.hdr.DataSHA256 = pix, h.DataSHA256
	return nil
}

// OpenGeneratorNegatives returns the pool cached in dir when it is the one gen and cfg
// describe; otherwise it builds the pool with the generator from load (called only then),
// caches it in dir and reports built. A cache that does not match is rebuilt when rebuild is
// set (a fresh run) and refused otherwise (a resumed run, whose steps so far used it).
func OpenGeneratorNegatives(ctx context.Context, dir string, gen *PairGen, cfg GeneratorNegativesConfig,
	load func() (*diffusion.DiT, error), rebuild bool) (n *GeneratorNegatives, built bool, err error) {
	n, err = planNegatives(gen, cfg)
	if err != nil {
		return nil, false, err
	}
	notify := func(format string, a ...any) {
		if cfg.Notify != nil {
			cfg.Notify(fmt.Sprintf(format, a...))
		}
	}
	switch err := n.load(dir); {
	case err == nil:
		notify("negatives: reusing %d generated samples of %d items from %s", n.Len(), n.Items(), filepath.Join(dir, NegativesDataFile))
		return n, false, nil
	case errors.Is(err, errStaleNegatives) && !rebuild:
		return nil, false, fmt.Errorf("%v\n---> HINT: resume with the --negatives flags, --negatives-generator, --seed and data of the run, "+
			"or delete %s and %s to sample the pool again (the steps so far were trained on the old one)", err, NegativesHeaderFile, NegativesDataFile)
	case errors.Is(err, errStaleNegatives):
		notify("negatives: %v; sampling the pool again", err)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	m, err := load()
	if err != nil {
		return nil, false, err
	}
	notify("negatives: sampling %d items of the %s at %v Euler steps (levels %v), %d samples",
		n.Items(), cfg.Generator, NegativeSteps, n.hdr.Levels, n.Len())
	if n, err = BuildGeneratorNegatives(ctx, m, gen, cfg); err != nil {
		return nil, false, err
	}
	if err := n.Save(dir); err != nil {
		return nil, false, err
	}
	return n, true, nil
}

// validateNegatives checks the generated-negative settings of a TrainConfig.
func (c *TrainConfig) validateNegatives() error {
	switch {
	case c.Negatives != "" && c.Negatives != NegativesGenerator:
		return fmt.Errorf("--negatives %q: want %s (or none)", c.Negatives, NegativesGenerator)
	case !(c.NegativeShare >= 0 && c.NegativeShare <= 1):
		return fmt.Errorf("--negative-share must be in [0, 1], got %v", c.NegativeShare)
	case c.NegativesPerLevel < 0:
		return fmt.Errorf("--negatives-per-level must be >= 0, got %d", c.NegativesPerLevel)
	}
	return nil
}

// sameNegatives fails when a run resumed with c would draw other generated negatives than the
// run that wrote a checkpoint with config prev (nil: an older checkpoint, none).
func (c *TrainConfig) sameNegatives(prev *TrainConfig) error {
	var p TrainConfig
	if prev != nil {
		p = *prev
	}
	flags := func(t *TrainConfig) string {
		if t.Negatives == "" {
			return "--negatives none"
		}
		return fmt.Sprintf("--negatives %s --negative-share %v --negatives-per-level %d", t.Negatives, t.NegativeShare, t.NegativesPerLevel)
	}
	switch {
	case p.Negatives != c.Negatives || (c.Negatives != "" && (p.NegativeShare != c.NegativeShare || p.NegativesPerLevel != c.NegativesPerLevel)):
		return fmt.Errorf("trained with %s, this run has %s; resume with the same flags", flags(&p), flags(c))
	case p.NegativesGeneratorSHA256 != c.NegativesGeneratorSHA256:
		return fmt.Errorf("negatives drawn from a generator file with sha256 %s, --negatives-generator has %s; resume with the same generator",
			p.NegativesGeneratorSHA256, c.NegativesGeneratorSHA256)
	}
	return nil
}
