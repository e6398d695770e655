// Preference pairs built from the emoji data, deterministic from a seed: text alignment from
// true captions against hard negatives (other skin tone, same subcategory, other motion) and
// random captions; visual quality from real images against graded degradations; motion
// quality from real clips against graded corruptions. Ties come from two captions that are
// equally wrong or two corruptions of the same kind and level.
//
// Splits: "train" and "val" are training concepts (val is a fixed 5% of them, or
// PairConfig.ValPercent, by a hash of the concept, used for calibration and never trained
// on); "heldout" is the dataset's held-out concepts, never seen in training; "preferences" is
// the held-out part of a preference file (preferences.go).
//
// Test: go test ./rewards -run 'Pair|Validation'
package rewards

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/alignkit/align/diffusion/dataset"
)

// Pair splits.
const (
	SplitTrain   = "train"
	SplitVal     = "val"
	SplitHeldOut = "heldout"
	// SplitPreferences is the held-out pairs of PairConfig.Preferences, each once per
	// dimension it labels, in file order (Pairs' n and seed do not apply).
	SplitPreferences = "preferences"
)

// ValPerCent is the default share of training concepts kept for validation, in percent
// (PairConfig.ValPercent).
const ValPerCent = 5

// MaxValPercent bounds PairConfig.ValPercent: at least half the concepts stay for training.
const MaxValPercent = 50

// ValidationConcept reports whether a training concept (base code points, dataset.Item.Concept)
// belongs to the validation split of percent % of the training concepts: FNV-1a 64 of "val/"
// + concept, modulo 100, below percent. A concept in the split at one percent is in it at
// every larger one.
func ValidationConcept(concept string, percent int) bool {
	h := fnv.New64a()
	h.Write([]byte("val/" + concept))
	return h.Sum64()%100 < uint64(percent)
}

// ConceptPart returns the part (0..n-1) of n that a non-held-out concept falls in: FNV-1a 64
// of "part/" + concept, modulo n. Two reward models trained on different parts of one n see
// disjoint concepts (training and validation alike), so one can judge the other's
// optimisation target without sharing its training images or captions.
func ConceptPart(concept string, n int) int {
	h := fnv.New64a()
	h.Write([]byte("part/" + concept))
	return int(h.Sum64() % uint64(n))
}

// Sample is one side of a pair: a dataset image (or clip), the prompt it is scored with, and
// the corruption applied to it.
type Sample struct {
	Index   int        `json:"index"`            // dataset.Dataset item, or dataset.VideoDataset clip
	Prompt  string     `json:"prompt"`           //
	Degrade Corruption `json:"degrade,omitzero"` // image degradation (every frame of a clip)
	Motion  Corruption `json:"motion,omitzero"`  // clip corruption
	Seed    uint64     `json:"seed,omitempty"`   // randomness of the corruptions
	Source  string     `json:"source,omitempty"` // NegativeSource name when Pixels come from one
	Pixels  []uint8    `json:"-"`                // bytes (SampleShape) replacing the dataset's, or nil
}

// Pair is two samples with a preference label per dimension and regression targets.
type Pair struct {
	Kind   string  `json:"kind"` // the dimension the pair was built for
	Note   string  `json:"note"` // how: "tone", "subcategory", "random", "tie-random", "blur-2", ...
	A      Sample  `json:"a"`
	B      Sample  `json:"b"`
	Labels []Label `json:"labels"` // (D), LabelNone outside Kind
	// TargetA, TargetB (D) are regression targets in [0,1] (NaN outside Kind): TA 1 for the
	// true caption and 0 for a wrong one; VQ and MQ 1 - level/(MaxLevel+1) (1 when clean).
	TargetA []float32 `json:"-"`
	TargetB []float32 `json:"-"`
}

// NegativeSource supplies extra visual-quality negatives that are not degradations of real
// images, for example samples of the base generator drawn with too few sampling steps. It
// returns bytes of the generator's sample shape for the prompt of dataset item (or clip)
// index and a severity level 1..MaxLevel.
type NegativeSource interface {
	Name() string
	Negative(index int, prompt string, seed uint64) (pixels []uint8, level int, err error)
}

// PairConfig sets the mixture of pairs.
type PairConfig struct {
	// Dims are the dimensions of the reward model; pair i is built for Dims[i % len(Dims)].
	Dims []string
	// TieShare is the share of pairs built as ties (default 0.15; negative means none).
	TieShare float64
	// GradedShare is the share of decisive VQ and MQ pairs that compare two levels of one
	// corruption instead of a clean sample with a corrupted one (default 0.25; negative: none).
	GradedShare float64
	// Negatives, when set, makes NegativeShare of the decisive VQ pairs real-against-generated.
	Negatives     NegativeSource
	NegativeShare float64
	// TAImageShare is the share of decisive TA pairs built as the image against another
	// image (of another subcategory) under the image's own caption, instead of one image under
	// its caption against a wrong one. Caption pairs leave whatever part of r_ta does not
	// depend on the caption untrained (it cancels in the pair), and gradient guidance climbs
	// that part too; image pairs train it. 0 (the default) builds caption pairs only and draws
	// the same pairs as before the option existed.
	TAImageShare float64
	// TAImageNegatives is how the other image of a TA image pair is drawn: TAImageRandom
	// ("" too) an image of another subcategory; TAImageHard, like the caption negatives, one of
	// the kinds available for the image, uniformly: the same emoji with another skin tone, an
	// emoji of the same subcategory, an image of another subcategory (for clips: the same
	// sprite with another motion, a clip of the same subcategory, one of another). Samples of
	// one prompt differ as little as hard negatives do, and ranking them is what pair selection
	// and guidance ask of r_ta.
	TAImageNegatives string
	// ValPercent is the share of training concepts kept for validation, in percent (0:
	// ValPerCent): a dataset of few concepts (a small import) needs more than 5% for the
	// validation split to hold the three captions its pairs need.
	ValPercent int
	// Part of Parts (ConceptPart) restricts the training and validation splits to one part of
	// the non-held-out concepts; Parts 0 or 1 keeps them all. The held-out split is shared.
	Part, Parts int
	// Teacher, when set, makes TeacherShare of the training split's pairs of each dimension it
	// scores teacher pairs (teacher.go): two generated samples of one prompt labelled by the
	// teacher's z-scores. Validation and held-out pairs stay real. nil draws the same pairs as
	// before the option existed.
	Teacher      *TeacherSet
	TeacherShare float64
	// Preferences, when set, makes PreferenceShare of the training split's pairs of each
	// dimension it labels (of those not drawn from the teacher) pairs of a preference file
	// (preferences.go); its held-out pairs are the split SplitPreferences. nil draws the same
	// pairs as before the option existed.
	Preferences     *PreferenceSet
	PreferenceShare float64
	// Set, when not empty, restricts the training and validation splits to the images (and
	// the clips of the sprites) of one artwork set ("twitter" or "google" in the emoji data).
	// Every concept is drawn by both sets, so two models trained on different sets know the
	// same concepts from disjoint images: a judge that shares no training image with the
	// reward model it checks, yet knows the prompts' concepts. The held-out split is shared.
	Set string
}

// Ways of drawing the other image of a TA image pair (PairConfig.TAImageNegatives).
const (
	TAImageRandom = "random"
	TAImageHard   = "hard"
)

// TAImageNegativeKinds lists the values of PairConfig.TAImageNegatives.
var TAImageNegativeKinds = []string{TAImageRandom, TAImageHard}

// keeps reports whether an item of split s, concept and artwork set is in the configured
// part and set.
func (c PairConfig) keeps(s, concept, set string) bool {
	if s == SplitHeldOut {
		return true
	}
	return (c.Parts <= 1 || ConceptPart(concept, c.Parts) == c.Part) && (c.Set == "" || set == c.Set)
}

func (c PairConfig) tieShare() float64    { return defShare(c.TieShare, 0.15) }
func (c PairConfig) gradedShare() float64 { return defShare(c.GradedShare, 0.25) }

func defShare(v, def float64) float64 {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// captionIndex holds the captions of one split for drawing negatives.
type captionIndex struct {
	all       []string            // distinct captions (image) or concept names (video)
	subcat    map[string]string   // caption or name -> subcategory
	bySubcat  map[string][]string // subcategory -> captions or names
	byConcept map[string][]string // concept -> distinct captions of its variants (image only)
	lower     map[string]string   // caption or name -> dataset.ConceptOf of it (own-concept negatives refused)
}

// PairGen builds pairs from a loaded dataset.
type PairGen struct {
	Cfg    PairConfig
	Images *dataset.Dataset      // always set (captions, subcategories)
	Clips  *dataset.VideoDataset // nil for an image reward model

	pools map[string][]int // split -> image items or clips
	// split -> key -> pool entries, for hard TA image negatives: key "c:"+concept or
	// "s:"+subcategory.
	groups map[string]map[string][]int
	caps   map[string]*captionIndex
	twin   map[int]int // image item -> the same variant drawn by the other set
	video  bool        // samples are clips (Clips, or NewPreferenceGen's video)
	shape  []int       // of a sample: (3,S,S), or (T,3,S,S) for clips
	// unlabelled: the clips carry no motion labels (align data import's): their captions are
	// their own, indexed from the clips, and no caption is re-worded with another motion.
	unlabelled bool
	// imported: the data is align data import's, whose captions of one concept are not
	// variants of each other that exclude one another (as skin tones are), so none is
	// another's negative.
	imported bool
}

// NewPairGen indexes the dataset for pairs. clips may be nil (image model); dims must be
// among vq, ta, mq (mq needs clips).
func NewPairGen(images *dataset.Dataset, clips *dataset.VideoDataset, cfg PairConfig) (*PairGen, error) {
	if images == nil {
		return nil, errors.New("pairs: no image dataset")
	}
	if len(cfg.Dims) == 0 {
		return nil, errors.New("pairs: no dimensions")
	}
	for _, d := range cfg.Dims {
		switch {
		case d == DimMQ && clips == nil:
			return nil, errors.New("pairs: mq pairs need the video clips")
		case d != DimVQ && d != DimTA && d != DimMQ:
			return nil, fmt.Errorf("pairs: no pair builder for dimension %q (known: vq, ta, mq)", d)
		}
	}
	g := &PairGen{Cfg: cfg, Images: images, Clips: clips, video: clips != nil, pools: map[string][]int{}, caps: map[string]*captionIndex{}, twin: map[int]int{},
		shape: []int{dataset.Channels, images.Size(), images.Size()}}
	if clips != nil {
		g.shape = []int{clips.NumFrames(), dataset.Channels, clips.Size(), clips.Size()}
	}
	splitOf := func(s dataset.Split, concept string) string {
		switch {
		case s == dataset.SplitHeldOut:
			return SplitHeldOut
		case ValidationConcept(concept, cfg.valPercent()):
			return SplitVal
		}
		return SplitTrain
	}
	for _, s := range []string{SplitTrain, SplitVal, SplitHeldOut} {
		g.caps[s] = &captionIndex{subcat: map[string]string{}, bySubcat: map[string][]string{}, byConcept: map[string][]string{},
			lower: map[string]string{}}
	}
	if cfg.Set != "" {
		sets := map[string]bool{}
		for _, it := range images.Items {
			sets[it.Set] = true
		}
		if !sets[cfg.Set] {
			return nil, fmt.Errorf("pairs: no image of artwork set %q (the data has: %s)", cfg.Set, strings.Join(slices.Sorted(maps.Keys(sets)), ", "))
		}
	}
	g.imported = slices.ContainsFunc(images.Items, func(it dataset.Item) bool { return it.Set == dataset.SetImport })
	if clips != nil && len(clips.Clips) > 0 {
		g.unlabelled = clips.Clips[0].Motion == ""
		g.imported = g.imported || g.unlabelled
		for _, c := range clips.Clips {
			if (c.Motion == "") != g.unlabelled {
				return nil, fmt.Errorf("pairs: %s mixes clips with and without motion labels", clips.Dir)
			}
		}
	}
	// index adds a caption to split s's caption index (key: the caption, or the name a
	// labelled clip's caption is built from).
	index := func(s, key, caption, concept, subcat string) {
		ci := g.caps[s]
		if _, ok := ci.subcat[key]; !ok {
			ci.subcat[key] = subcat
			ci.lower[key] = dataset.ConceptOf(key)
			ci.all = append(ci.all, key)
			ci.bySubcat[subcat] = append(ci.bySubcat[subcat], key)
		}
		if !contains(ci.byConcept[concept], caption) {
			ci.byConcept[concept] = append(ci.byConcept[concept], caption)
		}
	}
	kept := map[int]bool{} // image items in some split's pool or caption index
	for i, it := range images.Items {
		s := splitOf(it.Split, it.Concept)
		if g.unlabelled || !cfg.keeps(s, it.Concept, it.Set) {
			continue
		}
		kept[i] = true
		if clips == nil {
			g.pools[s] = append(g.pools[s], i)
		}
		key := it.Caption
		if clips != nil {
			key = it.Name // labelled clips' captions are built from names and motions
		}
		index(s, key, it.Caption, it.Concept, it.Subcategory)
	}
	// Twins (the same variant in the other set) only among kept items: with Set, the
	// training and validation splits have none.
	byVariant := map[string][]int{}
	for i, it := range images.Items {
		if kept[i] {
			byVariant[it.Unified] = append(byVariant[it.Unified], i)
		}
	}
	for _, idx := range byVariant {
		if len(idx) == 2 && images.Items[idx[0]].Set != images.Items[idx[1]].Set {
			g.twin[idx[0]], g.twin[idx[1]] = idx[1], idx[0]
		}
	}
	if clips != nil {
		for i, c := range clips.Clips {
			s := splitOf(c.Split, c.Concept)
			if !cfg.keeps(s, c.Concept, c.Set) {
				continue
			}
			g.pools[s] = append(g.pools[s], i)
			if g.unlabelled {
				index(s, c.Caption, c.Caption, c.Concept, c.Subcategory)
			}
		}
	}
	g.groups = map[string]map[string][]int{}
	for s, pool := range g.pools {
		grp := map[string][]int{}
		for _, idx := range pool {
			_, concept, _, subcat, _ := g.describe(idx)
			grp["c:"+concept] = append(grp["c:"+concept], idx)
			grp["s:"+subcat] = append(grp["s:"+subcat], idx)
		}
		g.groups[s] = grp
	}
	if err := g.checkSplit(SplitTrain); err != nil {
		return nil, err
	}
	return g, nil
}

// valPercentOf is the validation share that drew split's concepts: PairConfig.ValPercent (0:
// ValPerCent) for the val and train splits, 0 for the others.
func (g *PairGen) valPercentOf(split string) int {
	if split != SplitVal && split != SplitTrain {
		return 0
	}
	return g.Cfg.valPercent()
}

// valPercent is ValPercent with 0 read as ValPerCent.
func (c *PairConfig) valPercent() int { return cmp.Or(c.ValPercent, ValPerCent) }

// checkSplit fails for an unknown split, an empty one, or one with too few captions to
// draw negatives from.
func (g *PairGen) checkSplit(s string) error {
	ci, ok := g.caps[s]
	switch {
	case !ok:
		return fmt.Errorf("pairs: unknown split %q (known: %s, %s, %s)", s, SplitTrain, SplitVal, SplitHeldOut)
	case len(g.pools[s]) == 0:
		return fmt.Errorf("pairs: the %s split is empty", s)
	case len(ci.all) < 3 || len(ci.bySubcat) < 2:
		return fmt.Errorf("pairs: the %s split has %d captions in %d subcategories, need 3 in 2 for negatives", s, len(ci.all), len(ci.bySubcat))
	}
	return nil
}

// checkEvalSplits fails, before any training, where the validation split (the calibration
// at the end) or, with EvalPairs > 0, the held-out split cannot give pairs: both are hashes
// of the concepts, so a dataset of few concepts (a small import) may leave one empty.
func (g *PairGen) checkEvalSplits(cfg TrainConfig) error {
	if err := g.checkSplit(SplitVal); err != nil {
		return fmt.Errorf("%w: the validation concepts (%d%% of the training ones, by a hash) calibrate the scores; the data needs more concepts"+
			"\n---> HINT: --val-percent (up to %d) keeps more of them for validation", err, cfg.valPercent(), MaxValPercent)
	}
	if cfg.EvalPairs > 0 {
		if err := g.checkSplit(SplitHeldOut); err != nil {
			return fmt.Errorf("%w\n---> HINT: --eval-pairs 0 skips the held-out evaluation; an import holds more out with align data import --held-out-percent", err)
		}
	}
	return nil
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// PoolSize is the number of images (or clips) in a split.
func (g *PairGen) PoolSize(split string) int { return len(g.pools[split]) }

// SampleShape is (3,S,S) for images and (T,3,S,S) for clips, S the dataset's size (32 for
// the emoji set).
func (g *PairGen) SampleShape() []int { return slices.Clone(g.shape) }

// SampleLen is the number of values of one sample.
func (g *PairGen) SampleLen() int {
	n := 1
	for _, d := range g.SampleShape() {
		n *= d
	}
	return n
}

// Pairs returns n pairs of a split, a pure function of (split, n, seed, stream): training
// draws stream = step so a resumed run sees the same pairs.
func (g *PairGen) Pairs(split string, n int, seed, stream uint64) ([]Pair, error) {
	if split == SplitPreferences {
		return g.heldOutPreferences()
	}
	if err := g.checkSplit(split); err != nil {
		return nil, err
	}
	pool := g.pools[split]
	r := rand.New(rand.NewPCG(seed, stream))
	out := make([]Pair, 0, n)
	D := len(g.Cfg.Dims)
	for i := range n {
		kind := g.Cfg.Dims[i%D]
		idx := pool[r.IntN(len(pool))]
		var p Pair
		var err error
		switch {
		case split == SplitTrain && g.Cfg.Teacher != nil && g.Cfg.Teacher.Has(kind) && r.Float64() < g.Cfg.TeacherShare:
			p = g.teacherPair(kind, r)
		case split == SplitTrain && g.Cfg.Preferences != nil && g.Cfg.Preferences.Has(kind) && r.Float64() < g.Cfg.PreferenceShare:
			p = g.preferencePair(kind, r)
		case kind == DimTA:
			p = g.taPair(split, idx, r)
		case kind == DimVQ:
			p, err = g.qualityPair(idx, r, true)
		case kind == DimMQ:
			p, err = g.qualityPair(idx, r, false)
		}
		if err != nil {
			return nil, err
		}
		p.Kind = kind
		if r.IntN(2) == 1 { // random sides: the label is not always A
			p.A, p.B = p.B, p.A
			p.TargetA, p.TargetB = p.TargetB, p.TargetA
			for d, l := range p.Labels {
				switch l {
				case LabelA:
					p.Labels[d] = LabelB
				case LabelB:
					p.Labels[d] = LabelA
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// labels returns labels and targets with only dimension kind set.
func (g *PairGen) labels(kind string, l Label, ta, tb float32) ([]Label, []float32, []float32) {
	return kindLabels(g.Cfg.Dims, kind, l, ta, tb)
}

// kindLabels are the labels and regression targets over dims of a pair labelled l (targets
// ta, tb) in dimension kind alone: LabelNone and NaN in every other dimension.
func kindLabels(dims []string, kind string, l Label, ta, tb float32) ([]Label, []float32, []float32) {
	D := len(dims)
	ls := make([]Label, D)
	a, b := make([]float32, D), make([]float32, D)
	for d := range D {
		a[d], b[d] = float32(math.NaN()), float32(math.NaN())
	}
	d := DimIndex(dims, kind)
	ls[d], a[d], b[d] = l, ta, tb
	return ls, a, b
}

// caption and identity of pool entry idx.
func (g *PairGen) describe(idx int) (caption, concept, name, subcat string, motion dataset.Motion) {
	if g.Clips != nil {
		c := g.Clips.Clips[idx]
		if g.unlabelled {
			return c.Caption, c.Concept, c.Name, c.Subcategory, ""
		}
		it := g.Images.Items[c.Item]
		return c.Caption, c.Concept, c.Name, it.Subcategory, c.Motion
	}
	it := g.Images.Items[idx]
	return it.Caption, it.Concept, it.Name, it.Subcategory, ""
}

// taPair: the true caption against a wrong one (decisive), or two wrong captions (tie).
func (g *PairGen) taPair(split string, idx int, r *rand.Rand) Pair {
	ci := g.caps[split]
	caption, concept, name, subcat, motion := g.describe(idx)
	video := g.Clips != nil && !g.unlabelled // captions are names and motions
	self := caption
	if video {
		self = name
	}
	selfConcept := dataset.ConceptOf(self)
	// randomOther draws a caption (or, for labelled clips, a name) of another subcategory
	// and concept (an imported concept's captions may differ in case or spacing).
	randomOther := func(avoid string) string {
		c := ""
		for range 1000 { // checkSplit guarantees another subcategory exists
			c = ci.all[r.IntN(len(ci.all))]
			if ci.subcat[c] != subcat && c != avoid && ci.lower[c] != selfConcept {
				break
			}
		}
		return c
	}
	asCaption := func(key string, m dataset.Motion) string {
		if !video {
			return key
		}
		return dataset.VideoCaption(key, m)
	}
	randomMotion := func(not dataset.Motion) dataset.Motion {
		for {
			if m := dataset.Motions[r.IntN(len(dataset.Motions))]; m != not {
				return m
			}
		}
	}
	if r.Float64() < g.Cfg.tieShare() {
		a := randomOther("")
		b := randomOther(a)
		ma, mb := motion, motion
		if video {
			ma, mb = randomMotion(""), randomMotion("")
		}
		ls, ta, tb := g.labels(DimTA, LabelTie, 0, 0)
		return Pair{Note: "tie-random", A: Sample{Index: idx, Prompt: asCaption(a, ma)}, B: Sample{Index: idx, Prompt: asCaption(b, mb)},
			Labels: ls, TargetA: ta, TargetB: tb}
	}
	if g.Cfg.TAImageShare > 0 && r.Float64() < g.Cfg.TAImageShare {
		note, other := "image", g.otherSubcategory(split, subcat, concept, r)
		if g.Cfg.TAImageNegatives == TAImageHard {
			note, other = g.hardImageNegative(split, idx, other, r)
		}
		ls, ta, tb := g.labels(DimTA, LabelA, 1, 0)
		return Pair{Note: note, A: Sample{Index: idx, Prompt: caption}, B: Sample{Index: other, Prompt: caption},
			Labels: ls, TargetA: ta, TargetB: tb}
	}
	// Candidate negatives, hardest first; one kind is drawn uniformly among those available.
	type neg struct{ note, caption string }
	var cands []neg
	if video {
		cands = append(cands, neg{"motion", dataset.VideoCaption(name, randomMotion(motion))})
	} else if !g.imported {
		var tones []string
		for _, c := range ci.byConcept[concept] {
			if c != caption {
				tones = append(tones, c)
			}
		}
		if len(tones) > 0 {
			cands = append(cands, neg{"tone", tones[r.IntN(len(tones))]})
		}
	}
	var sibs []string
	for _, c := range ci.bySubcat[subcat] {
		if c != self && !strings.HasPrefix(c, name+":") && c != name && ci.lower[c] != selfConcept {
			sibs = append(sibs, c)
		}
	}
	if len(sibs) > 0 {
		cands = append(cands, neg{"subcategory", asCaption(sibs[r.IntN(len(sibs))], motion)})
	}
	cands = append(cands, neg{"random", asCaption(randomOther(""), motion)})
	n := cands[r.IntN(len(cands))]
	ls, ta, tb := g.labels(DimTA, LabelA, 1, 0)
	return Pair{Note: n.note, A: Sample{Index: idx, Prompt: caption}, B: Sample{Index: idx, Prompt: n.caption},
		Labels: ls, TargetA: ta, TargetB: tb}
}

// hardImageNegative draws, for the TA image pair of pool entry idx under its caption, the
// other image (or clip) as PairConfig.TAImageHard describes: one kind uniformly among those
// available, random the fallback that always is. Images: "image-tone" the same concept under
// another caption (skin tone), "image-subcategory" another concept of the subcategory whose
// caption does not start with the name (not a tone variant). Clips: "image-motion" the
// same concept with another motion, "image-subcategory" another concept of the subcategory.
func (g *PairGen) hardImageNegative(split string, idx, random int, r *rand.Rand) (string, int) {
	caption, concept, name, subcat, motion := g.describe(idx)
	grp := g.groups[split]
	type neg struct {
		note string
		pool []int
	}
	var cands []neg
	var same []int
	for _, o := range grp["c:"+concept] {
		oc, _, _, _, om := g.describe(o)
		if (g.Clips == nil && oc != caption) || (g.Clips != nil && om != motion) {
			same = append(same, o)
		}
	}
	if len(same) > 0 && !g.imported { // an imported concept's images all show its caption
		cands = append(cands, neg{map[bool]string{true: "image-motion", false: "image-tone"}[g.Clips != nil], same})
	}
	var sibs []int
	for _, o := range grp["s:"+subcat] {
		_, oconcept, oname, _, _ := g.describe(o)
		if oconcept != concept && oname != name && !strings.HasPrefix(oname, name+":") {
			sibs = append(sibs, o)
		}
	}
	if len(sibs) > 0 {
		cands = append(cands, neg{"image-subcategory", sibs})
	}
	cands = append(cands, neg{"image", []int{random}})
	n := cands[r.IntN(len(cands))]
	return n.note, n.pool[r.IntN(len(n.pool))]
}

// otherSubcategory draws an image (or clip) of the split whose subcategory is not subcat and
// concept not concept (an imported concept may span folders, its groups).
func (g *PairGen) otherSubcategory(split, subcat, concept string, r *rand.Rand) int {
	pool := g.pools[split]
	other := pool[0]
	for range 1000 { // checkSplit guarantees a second subcategory
		other = pool[r.IntN(len(pool))]
		if _, c, _, s, _ := g.describe(other); s != subcat && c != concept {
			break
		}
	}
	return other
}

func levelQuality(level int) float32 { return 1 - float32(level)/float32(MaxLevel+1) }

// qualityPair builds a VQ (image degradations) or MQ (clip corruptions) pair: clean against
// corrupted, a milder against a stronger level of one kind, a tie of two equal corruptions,
// or (VQ, when configured) clean against a NegativeSource sample. For images, B is the same
// variant drawn by the other set (Twemoji against Noto) in every tie and in half of the
// other pairs when there is one: the model then has to judge quality across different
// pictures of equal intrinsic quality, not only spot the difference between two copies of
// one picture (and a tie of two deterministic degradations is not two identical images).
func (g *PairGen) qualityPair(idx int, r *rand.Rand, vq bool) (Pair, error) {
	caption, _, _, _, _ := g.describe(idx)
	dim, kinds := DimMQ, CorruptKinds
	if vq {
		dim, kinds = DimVQ, DegradeKinds
	}
	set := func(s *Sample, c Corruption) {
		s.Seed = r.Uint64()
		if vq {
			s.Degrade = c
		} else {
			s.Motion = c
		}
	}
	a, b := Sample{Index: idx, Prompt: caption}, Sample{Index: idx, Prompt: caption}
	kind := kinds[r.IntN(len(kinds))]
	tw, hasTwin := g.twin[idx]
	hasTwin = hasTwin && g.Clips == nil
	tie := r.Float64() < g.Cfg.tieShare()
	if hasTwin && (tie || r.IntN(2) == 0) {
		b.Index = tw
	}
	switch {
	case tie:
		lv := 1 + r.IntN(MaxLevel)
		set(&a, Corruption{kind, lv})
		set(&b, Corruption{kind, lv})
		ls, ta, tb := g.labels(dim, LabelTie, levelQuality(lv), levelQuality(lv))
		return Pair{Note: fmt.Sprintf("tie-%s-%d", kind, lv), A: a, B: b, Labels: ls, TargetA: ta, TargetB: tb}, nil
	case vq && g.Cfg.Negatives != nil && r.Float64() < g.Cfg.NegativeShare:
		seed := r.Uint64()
		pix, lv, err := g.Cfg.Negatives.Negative(idx, caption, seed)
		if err != nil {
			return Pair{}, fmt.Errorf("pairs: %s negative for %q: %w", g.Cfg.Negatives.Name(), caption, err)
		}
		if len(pix) != g.SampleLen() || lv < 1 || lv > MaxLevel {
			return Pair{}, fmt.Errorf("pairs: %s negative: %d bytes at level %d, want %d bytes at 1..%d", g.Cfg.Negatives.Name(), len(pix), lv, g.SampleLen(), MaxLevel)
		}
		b.Pixels, b.Source, b.Seed = pix, g.Cfg.Negatives.Name(), seed
		ls, ta, tb := g.labels(dim, LabelA, 1, levelQuality(lv))
		return Pair{Note: fmt.Sprintf("%s-%d", b.Source, lv), A: a, B: b, Labels: ls, TargetA: ta, TargetB: tb}, nil
	case r.Float64() < g.Cfg.gradedShare():
		lo := 1 + r.IntN(MaxLevel-1)
		hi := lo + 1 + r.IntN(MaxLevel-lo)
		set(&a, Corruption{kind, lo})
		set(&b, Corruption{kind, hi})
		ls, ta, tb := g.labels(dim, LabelA, levelQuality(lo), levelQuality(hi))
		return Pair{Note: fmt.Sprintf("%s-%d-vs-%d", kind, lo, hi), A: a, B: b, Labels: ls, TargetA: ta, TargetB: tb}, nil
	default:
		lv := 1 + r.IntN(MaxLevel)
		set(&b, Corruption{kind, lv})
		ls, ta, tb := g.labels(dim, LabelA, 1, levelQuality(lv))
		return Pair{Note: fmt.Sprintf("%s-%d", kind, lv), A: a, B: b, Labels: ls, TargetA: ta, TargetB: tb}, nil
	}
}

// RenderBytes returns the bytes (SampleShape) of a sample: the dataset's image or clip with
// its corruptions applied, or the sample's own Pixels.
func (g *PairGen) RenderBytes(s Sample) []uint8 {
	if s.Pixels != nil {
		return append([]uint8(nil), s.Pixels...)
	}
	if g.Clips == nil {
		W := g.Images.Size()
		pix := append([]uint8(nil), g.Images.Image(s.Index)...)
		DegradeImage(pix, W, W, s.Degrade, s.Seed)
		return pix
	}
	W, T := g.Clips.Size(), g.Clips.NumFrames()
	clip := append([]uint8(nil), g.Clips.Clip(s.Index)...)
	CorruptClip(clip, T, W, W, s.Motion, s.Seed)
	DegradeClip(clip, T, W, W, s.Degrade, s.Seed^0x5eed)
	return clip
}

// Render writes a sample as float32 in [-1, 1] into dst (SampleLen values).
func (g *PairGen) Render(s Sample, dst []float32) { dataset.ToUnit(dst, g.RenderBytes(s)) }

// PairStats counts pairs by kind and note (for logs and tests): "ta/tone", "vq/blur",
// "mq/tie", ...
func PairStats(pairs []Pair) map[string]int {
	m := map[string]int{}
	for _, p := range pairs {
		m[noteKey(p)]++
	}
	return m
}

// noteKey is "<kind>/<how>": the note without levels, every tie as "tie".
func noteKey(p Pair) string {
	note := p.Note
	switch {
	case strings.HasPrefix(note, "tie"):
		note = "tie"
	case strings.IndexByte(note, '-') >= 0:
		note = note[:strings.IndexByte(note, '-')]
	}
	return p.Kind + "/" + note
}

// SortedKeys returns the keys of m in order.
func SortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
