// Importing a user's own captioned images or clips into the dataset layout of Prepare (RGB over
// white, 32x32 or another size, clips of 8 frames or another count), so that every command that
// reads --data (pretrain,
// reward train, retrieval, data prompts, reward-cond fine-tuning) trains on them as it does on
// the emoji set.
//
// Each input becomes one item (or, for a video import, one clip or several: windows of a
// video):
//
//	caption      as given (whitespace runs read as one space)
//	concept      Concept where given, else the caption, lower-cased: the unit of the held-out
//	             split (HeldOutAt: 5% of the concepts, or HeldOutPerMyriad), so every image
//	             of one caption lands on one side
//	unified      the concept (retrieval's key: a sample's nearest image has the prompted concept)
//	set          SetImport
//	subcategory  Group where given (e.g. the input's folder), else the concept: the reward's
//	             hard text-alignment negatives are captions of the same subcategory
//	motion       none (a clip's): video reward pairs then keep each clip's caption whole
//	source       a clip's input, and start its start in seconds within it
//
// Images are composited over white (transparent pixels become white, as the emoji are), then
// brought to the dataset's size S (ImportOptions.Size, 32 by default) with imaging's box filter
// (the area average, which is what a large downscale needs to avoid aliasing) by one of three
// rules: ResizeCrop scales the shorter side to S and keeps the centre (diffusers'
// --center_crop), ResizePad scales the longer side to S and pads the rest with white,
// ResizeStretch ignores the aspect ratio.
//
// An image (or clip) whose bytes at that size equal an earlier one's is left out unless
// ImportOptions.KeepDuplicates: collections hold copies and links of one file under several
// names (16% of Debian's openclipart-png at 32x32), which would otherwise put one image on both
// sides of the held-out split, under two captions.
//
// Test: go test ./diffusion/dataset -run Import

package dataset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/disintegration/imaging"
)

// Imported datasets.
const (
	SetImport            = "import"    // Item.Set and Clip.Set of imported inputs
	ImportDatasetVersion = "import-v1" // Manifest.DatasetVersion of an imported dataset (its size: Manifest.ImageSize)
)

// Resize rules of an import.
const (
	ResizeCrop    = "crop"    // shorter side to the size, centre kept
	ResizePad     = "pad"     // longer side to the size, white borders
	ResizeStretch = "stretch" // both sides to the size, aspect ratio ignored
)

// ResizeModes lists the resize rules, the default first.
var ResizeModes = []string{ResizeCrop, ResizePad, ResizeStretch}

// ImportInput is one image or clip to import.
type ImportInput struct {
	Path    string // what Decode reads; also the item's ID
	Caption string
	Concept string // the held-out split's unit; "" means the caption
	Group   string // the subcategory; "" means the concept
}

// ImportInfo is what the manifest records of an import.
type ImportInfo struct {
	Inputs []string `json:"inputs"` // the input specs as given
	Resize string   `json:"resize"`
	FPS    float64  `json:"fps,omitempty"` // clips: frames at this rate (0: spread over the clip)
	// ClipsPerVideo is the most windows taken from one clip, 0 for every one (clips only).
	ClipsPerVideo *int `json:"clips_per_video,omitempty"`
	Skipped       int  `json:"skipped,omitempty"`
	Duplicates    int  `json:"duplicates,omitempty"` // samples left out as equal to an earlier one
}

// ImportOptions configure Import.
type ImportOptions struct {
	OutputDir string
	Video     bool   // the inputs are clips
	Size      int    // side of the images and frames, within [MinImageSize, MaxImageSize]; 0 means ImageSize
	NumFrames int    // frames of a clip, within [1, MaxFrames]; 0 means Frames
	Resize    string // one of ResizeModes; "" means ResizeCrop
	// HeldOutPerMyriad is the share of concepts held out, in units of 1/10000 (HeldOutAt); 0
	// means HeldOutPerMyriad, negative none.
	HeldOutPerMyriad int
	// Decode reads input i, passing each image or frame it keeps through fit as it is
	// decoded (so that a long video's frames are not all held at full size).
	Decode func(i int, fit func(image.Image) (image.Image, error)) (*Decoded, error)
	// SkipErrors drops an input that cannot be read (ImportSummary.Skipped says which and
	// why) instead of failing the import.
	SkipErrors bool
	// KeepDuplicates keeps an image (or clip) whose pixels at the dataset's size equal an
	// earlier one's; by default it is left out (ImportSummary.Duplicates), so that no image
	// is both trained on and held out under two captions, nor counted twice.
	KeepDuplicates bool
	Info           ImportInfo     // recorded in the manifest (Resize, Skipped and Duplicates are filled in)
	Workers        int            // decoding goroutines; 0 means GOMAXPROCS
	Progress       func(done int) // called from the decoding goroutines after each input
}

// Decoded is one input as ImportOptions.Decode returns it.
type Decoded struct {
	// Frames, each as fit returned it: one image, or for Video one or more clips of
	// NumFrames frames, clip after clip.
	Frames []image.Image
	Starts []float64 // Video: each clip's start in seconds within the input
}

// ImportDuplicate is an image (or a clip, from Start seconds into its file) left out as equal
// to an earlier one, at the dataset's size.
type ImportDuplicate struct {
	Path    string  `json:"path"`
	Start   float64 `json:"start,omitempty"`
	Of      string  `json:"of"`
	OfStart float64 `json:"of_start,omitempty"`
}

// ImportSkip is one input left out by ImportOptions.SkipErrors.
type ImportSkip struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// ImportSummary is what Import reports.
type ImportSummary struct {
	OutputDir      string            `json:"output_dir"`
	DatasetVersion string            `json:"dataset_version"`
	ImageSize      int               `json:"image_size"`
	Counts         Counts            `json:"counts"`
	Inputs         int               `json:"inputs"`   // inputs with an image or clip in the dataset
	KeptInputs     []int             `json:"-"`        // their indices, in order
	Captions       int               `json:"captions"` // distinct captions
	Skipped        []ImportSkip      `json:"skipped,omitempty"`
	Duplicates     []ImportDuplicate `json:"duplicates,omitempty"`
	Files          Files             `json:"files"`
	Seconds        float64           `json:"seconds"`
}

// ConceptOf is the concept of a caption: lower-cased, whitespace runs as one space.
func ConceptOf(caption string) string {
	return strings.ToLower(strings.Join(strings.Fields(caption), " "))
}

// FitImage composites img over white and brings it to size x size by the resize rule.
func FitImage(img image.Image, size int, resize string) (*image.NRGBA, error) {
	b := img.Bounds()
	if b.Dx() < 1 || b.Dy() < 1 {
		return nil, fmt.Errorf("empty image %v", b)
	}
	src := CompositeOnWhite(img)
	switch resize {
	case ResizeCrop, "":
		return imaging.Fill(src, size, size, imaging.Center, imaging.Box), nil
	case ResizePad:
		s := math.Min(float64(size)/float64(b.Dx()), float64(size)/float64(b.Dy()))
		w := min(size, max(1, int(math.Round(float64(b.Dx())*s))))
		h := min(size, max(1, int(math.Round(float64(b.Dy())*s))))
		return imaging.PasteCenter(imaging.New(size, size, color.White), imaging.Resize(src, w, h, imaging.Box)), nil
	case ResizeStretch:
		return imaging.Resize(src, size, size, imaging.Box), nil
	}
	return nil, fmt.Errorf("resize %q: want one of %s", resize, strings.Join(ResizeModes, ", "))
}

// Import decodes the inputs, in parallel, and writes them as a dataset into o.OutputDir
// (the layout of Prepare; files written atomically, the manifest last). Inputs are kept in
// the order given.
func Import(ctx context.Context, inputs []ImportInput, o ImportOptions) (*ImportSummary, error) {
	start := time.Now()
	switch {
	case o.OutputDir == "":
		return nil, errors.New("no output directory")
	case o.Decode == nil:
		return nil, errors.New("import: no decoder")
	case len(inputs) == 0:
		return nil, errors.New("import: no inputs")
	}
	resize := o.Resize
	if resize == "" {
		resize = ResizeCrop
	}
	if !slices.Contains(ResizeModes, resize) {
		return nil, fmt.Errorf("resize %q: want one of %s", resize, strings.Join(ResizeModes, ", "))
	}
	for _, in := range inputs {
		if strings.TrimSpace(in.Caption) == "" {
			return nil, fmt.Errorf("%s: no caption", in.Path)
		}
	}
	size := o.Size
	if size == 0 {
		size = ImageSize
	}
	if size < MinImageSize || size > MaxImageSize {
		return nil, fmt.Errorf("import: size %d outside [%d, %d]", size, MinImageSize, MaxImageSize)
	}
	T := o.NumFrames
	if T == 0 {
		T = Frames
	}
	if T < 1 || T > MaxFrames {
		return nil, fmt.Errorf("import: %d frames outside [1, %d]", T, MaxFrames)
	}
	heldOut := o.HeldOutPerMyriad
	switch {
	case heldOut == 0:
		heldOut = HeldOutPerMyriad
	case heldOut < 0:
		heldOut = 0
	}
	if heldOut > MaxHeldOutPerMyriad {
		return nil, fmt.Errorf("import: held-out share %d/10000 outside [0, %d]", heldOut, MaxHeldOutPerMyriad)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	// Decode into fixed slots, so the output does not depend on the workers' timing; errors
	// are kept per input and the first in input order is the one reported.
	decoded := make([]importedInput, len(inputs))
	var done atomic.Int64
	err := parallelFor(ctx, len(inputs), workers, func(i int) error {
		decoded[i] = importOne(inputs[i].Path, func(fit func(image.Image) (image.Image, error)) (*Decoded, error) { return o.Decode(i, fit) },
			o.Video, T, size, resize)
		if o.Progress != nil {
			o.Progress(int(done.Add(1)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	s := &ImportSummary{OutputDir: o.OutputDir, DatasetVersion: ImportDatasetVersion, ImageSize: size}
	var items []Item
	var clips []Clip
	var kept [][]uint8 // each kept sample's bytes, in order: written as they are, not joined
	captions := map[string]bool{}
	unit := Channels * size * size // bytes of a sample: an image, or a clip of T frames
	if o.Video {
		unit *= T
	}
	first := map[[sha256.Size]byte]ImportDuplicate{} // where each sample's pixels were first seen
	for i, in := range inputs {
		d := &decoded[i]
		if d.err != nil {
			if !o.SkipErrors {
				return nil, d.err
			}
			s.Skipped = append(s.Skipped, ImportSkip{Path: in.Path, Error: d.err.Error()})
			continue
		}
		caption := strings.Join(strings.Fields(in.Caption), " ")
		concept := ConceptOf(in.Concept)
		if concept == "" {
			concept = ConceptOf(caption)
		}
		group := in.Group
		if group == "" {
			group = concept
		}
		split := SplitTrain
		if HeldOutAt(concept, heldOut) {
			split = SplitHeldOut
		}
		kept0 := len(kept)
		for w := 0; w*unit < len(d.pixels); w++ {
			px, start := d.pixels[w*unit:(w+1)*unit], 0.0
			if o.Video {
				start = d.starts[w]
			}
			if !o.KeepDuplicates {
				h := sha256.Sum256(px)
				if was, ok := first[h]; ok {
					s.Duplicates = append(s.Duplicates, ImportDuplicate{Path: in.Path, Start: start, Of: was.Path, OfStart: was.Start})
					continue
				}
				first[h] = ImportDuplicate{Path: in.Path, Start: start}
			}
			captions[caption] = true
			kept = append(kept, px)
			if o.Video {
				clips = append(clips, Clip{Index: len(clips), Item: -1, Concept: concept, Set: SetImport, Name: caption,
					Caption: caption, Split: split, Subcategory: group, Source: in.Path, Start: start})
				continue
			}
			items = append(items, Item{Index: len(items), ID: in.Path, Concept: concept, Unified: concept, Set: SetImport,
				Name: caption, Caption: caption, Category: group, Subcategory: group, Split: split})
		}
		if len(kept) > kept0 {
			s.KeptInputs = append(s.KeptInputs, i)
		}
	}
	s.Inputs = len(s.KeptInputs)
	if len(items)+len(clips) == 0 {
		return nil, fmt.Errorf("import: none of the %d inputs could be read (the first: %v)", len(inputs), decoded[0].err)
	}
	s.Captions = len(captions)

	info := o.Info
	info.Resize, info.Skipped, info.Duplicates = resize, len(s.Skipped), len(s.Duplicates)
	m := &Manifest{
		Format: Format, FormatVersion: FormatVersion, DatasetVersion: ImportDatasetVersion,
		ImageSize: size, Channels: Channels, Frames: T,
		HeldOut: HeldOutInfo{Rule: HeldOutRule(heldOut), PerMyriad: heldOut},
		Import:  &info,
	}
	dir := o.OutputDir
	if o.Video {
		if err := writeImages(dir, m, nil, writeParts(nil)); err != nil {
			return nil, err
		}
		preview := kept[:min(len(kept), 10)]
		if err := writeVideos(dir, m, clips, writeParts(kept), preview); err != nil {
			return nil, err
		}
	} else {
		if err := writeImages(dir, m, items, writeParts(kept)); err != nil {
			return nil, err
		}
		if err := removeVideos(dir); err != nil {
			return nil, err
		}
	}
	m.Counts = importCounts(items, clips)
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	s.Counts, s.Files = m.Counts, m.Files
	s.Seconds = time.Since(start).Seconds()
	return s, nil
}

// importedInput is one input decoded: its clips' (or image's) bytes and starts, or why it
// could not be read.
type importedInput struct {
	pixels []uint8   // (clips·frames, 3, size, size)
	starts []float64 // a clip's start in seconds, per clip
	err    error
}

// importOne decodes one input: an image, or for video clips of T frames, of size x size.
func importOne(path string, decode func(fit func(image.Image) (image.Image, error)) (*Decoded, error), video bool, T, size int, resize string) importedInput {
	d, err := decode(func(img image.Image) (image.Image, error) { return FitImage(img, size, resize) })
	switch {
	case err != nil:
	case video && (len(d.Starts) == 0 || len(d.Frames) != len(d.Starts)*T):
		err = fmt.Errorf("%d frames decoded for %d clip(s), want %d per clip", len(d.Frames), len(d.Starts), T)
	case !video && len(d.Frames) != 1:
		err = fmt.Errorf("%d images decoded, want 1", len(d.Frames))
	}
	n := Channels * size * size
	var pixels []uint8
	if err == nil {
		pixels = make([]uint8, len(d.Frames)*n)
	}
	for t := 0; err == nil && t < len(d.Frames); t++ {
		if b := d.Frames[t].Bounds(); b.Dx() != size || b.Dy() != size {
			err = fmt.Errorf("frame %d decoded at %dx%d, want %dx%d", t, b.Dx(), b.Dy(), size, size)
		} else {
			PutCHW(pixels[t*n:(t+1)*n], d.Frames[t])
		}
	}
	if err != nil {
		if !strings.Contains(err.Error(), path) {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return importedInput{err: err}
	}
	return importedInput{pixels: pixels, starts: d.Starts}
}

// importCounts counts concepts (those of the images, or of the clips for a video import),
// images and clips per split.
func importCounts(items []Item, clips []Clip) Counts {
	var c Counts
	concepts := map[string]Split{}
	count := func(concept string, s Split, all, train, heldOut *int) {
		concepts[concept] = s
		*all++
		if s == SplitHeldOut {
			*heldOut++
		} else {
			*train++
		}
	}
	for _, it := range items {
		count(it.Concept, it.Split, &c.Images, &c.ImagesTrain, &c.ImagesHeldOut)
	}
	for _, cl := range clips {
		count(cl.Concept, cl.Split, &c.Clips, &c.ClipsTrain, &c.ClipsHeldOut)
	}
	c.Concepts = len(concepts)
	for _, s := range concepts {
		if s == SplitHeldOut {
			c.ConceptsHeldOut++
		}
	}
	return c
}
