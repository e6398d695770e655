// Prepare: download the pinned packages, build the 32x32 image set and the video clips, and write
// the dataset directory. This is what `align data prepare` runs.
//
// Test: go test ./diffusion/dataset -run 'Build|Prepare' (uses testdata/fixture, no download)

package dataset

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure Prepare and Build.
type Options struct {
	CacheDir    string    // where the package tarballs are kept (Prepare only)
	OutputDir   string    // the dataset directory
	VideoClips  int       // number of clips; 0 writes no video
	Seed        uint64    // seeds the clips (the images and the split do not depend on it)
	SpriteScale float64   // multiplies the clips' sprite sizes (NewClipParams); 0 means 1, else within [MinSpriteScale, MaxSpriteScale]
	Workers     int       // goroutines for decoding and rendering; 0 means GOMAXPROCS
	Fetch       Fetcher   // downloads a package; nil means NPMPack
	Log         io.Writer // progress; nil discards it
}

// Bounds of Options.SpriteScale: past 1.5 a zoom's smallest box nears its largest (capped at
// maxZoomSize).
const (
	MinSpriteScale = 0.5
	MaxSpriteScale = 1.5
)

func (o Options) spriteScale() float64 {
	if o.SpriteScale == 0 {
		return 1
	}
	return o.SpriteScale
}

// Timings are the wall-clock seconds of each stage.
type Timings struct {
	Fetch  float64 `json:"fetch"`
	Read   float64 `json:"read"`
	Images float64 `json:"images"`
	Videos float64 `json:"videos"`
	Write  float64 `json:"write"`
	Total  float64 `json:"total"`
}

// Summary is what Prepare reports.
type Summary struct {
	OutputDir         string         `json:"output_dir"`
	DatasetVersion    string         `json:"dataset_version"`
	Counts            Counts         `json:"counts"`
	ImagesPerSet      map[string]int `json:"images_per_set"`
	Captions          int            `json:"captions"`           // distinct primary captions
	AltCaptions       int            `json:"alt_captions"`       // alternative captions over all items
	CaptionVocabulary int            `json:"caption_vocabulary"` // distinct words in all image captions
	VideoCaptions     int            `json:"video_captions"`     // distinct clip captions
	Motions           map[Motion]int `json:"motions"`
	Files             Files          `json:"files"`
	Seconds           Timings        `json:"seconds"`
}

// Prepare downloads (or finds in o.CacheDir) the pinned packages, checks their sha256 and builds
// the dataset into o.OutputDir.
func Prepare(ctx context.Context, o Options) (*Summary, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	paths, err := EnsurePackages(ctx, o.CacheDir, Packages, o.Fetch, log)
	if err != nil {
		return nil, err
	}
	fetch := time.Since(start).Seconds()
	t := time.Now()
	fmt.Fprintf(log, "read     %d tarballs\n", len(paths))
	src, err := SourcesFromTarballs(paths, Packages)
	if err != nil {
		return nil, err
	}
	read := time.Since(t).Seconds()
	s, err := Build(ctx, src, o)
	if err != nil {
		return nil, err
	}
	s.Seconds.Fetch, s.Seconds.Read = fetch, read
	s.Seconds.Total = time.Since(start).Seconds()
	return s, nil
}

// PrepareFromDir is Prepare for an unpacked copy of the packages' members (the layout of
// SourcesFromDir), for a machine without network: nothing is downloaded or checked, and the
// manifest records no packages. The same members give the same files as Prepare.
func PrepareFromDir(ctx context.Context, dir string, o Options) (*Summary, error) {
	start := time.Now()
	src, err := SourcesFromDir(dir)
	if err != nil {
		return nil, err
	}
	read := time.Since(start).Seconds()
	s, err := Build(ctx, src, o)
	if err != nil {
		return nil, err
	}
	s.Seconds.Read = read
	s.Seconds.Total = time.Since(start).Seconds()
	return s, nil
}

// Build makes the dataset from already extracted sources and writes it to o.OutputDir.
func Build(ctx context.Context, src *Sources, o Options) (*Summary, error) {
	start := time.Now()
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if o.OutputDir == "" {
		return nil, errors.New("no output directory")
	}
	if o.VideoClips < 0 {
		return nil, fmt.Errorf("video clips %d < 0", o.VideoClips)
	}
	if o.SpriteScale != 0 && (o.SpriteScale < MinSpriteScale || o.SpriteScale > MaxSpriteScale) {
		return nil, fmt.Errorf("sprite scale %g outside [%g, %g]", o.SpriteScale, MinSpriteScale, MaxSpriteScale)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}

	// Items and pixels.
	concepts, err := ParseConcepts(src.EmojiJSON, src.Keywords)
	if err != nil {
		return nil, err
	}
	items, pngs, err := enumerateItems(concepts, src)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "images   decoding %d PNGs of %d concepts\n", len(items), len(concepts))
	t := time.Now()
	pixels := make([]uint8, len(items)*ImageBytes)
	sprites := make([]*image.RGBA, len(items))
	wantSprites := o.VideoClips > 0
	err = parallelFor(ctx, len(items), workers, func(i int) error {
		sp, err := prepareImage(pixels[i*ImageBytes:(i+1)*ImageBytes], pngs[i], wantSprites && items[i].Tone == "")
		if err != nil {
			return fmt.Errorf("%s (%s): %w", items[i].ID, items[i].Caption, err)
		}
		sprites[i] = sp
		return nil
	})
	if err != nil {
		return nil, err
	}
	imagesSec := time.Since(t).Seconds()
	fmt.Fprintf(log, "images   %d done in %.1fs\n", len(items), imagesSec)

	// Write: the manifest leaves first and comes back last.
	dir := o.OutputDir
	t = time.Now()
	m := &Manifest{
		Format: Format, FormatVersion: FormatVersion, DatasetVersion: DatasetVersion,
		ImageSize: ImageSize, Channels: Channels, Frames: Frames, Seed: o.Seed,
		HeldOut: HeldOutInfo{Rule: HeldOutRule(HeldOutPerMyriad), PerMyriad: HeldOutPerMyriad},
		Sources: src.Packages,
	}
	if sc := o.spriteScale(); sc != 1 {
		m.SpriteScale = sc // absent at 1: the manifests of datasets prepared before the option
	}
	if err := writeImages(dir, m, items, writeParts([][]uint8{pixels})); err != nil {
		return nil, err
	}
	writeSec := time.Since(t).Seconds()

	// Videos, rendered and written in chunks.
	var clips []Clip
	videosSec := 0.0
	if o.VideoClips > 0 {
		t = time.Now()
		var pool []spriteRef
		for i := range items {
			if sprites[i] != nil {
				pool = append(pool, spriteRef{item: &items[i], concept: items[i].Concept, name: items[i].Name, sprite: sprites[i]})
			}
		}
		var spriteOf []int
		clips, spriteOf = planClips(o.VideoClips, o.Seed, pool, o.spriteScale())
		fmt.Fprintf(log, "videos   rendering %d clips of %d frames from %d sprites\n", len(clips), Frames, len(pool))
		err := writeVideos(dir, m, clips, func(w io.Writer) error {
			const chunk = 1024
			buf := make([]uint8, chunk*ClipBytes)
			for lo := 0; lo < len(clips); lo += chunk {
				hi := min(lo+chunk, len(clips))
				err := parallelFor(ctx, hi-lo, workers, func(k int) error {
					c := &clips[lo+k]
					RenderClip(buf[k*ClipBytes:(k+1)*ClipBytes], pool[spriteOf[lo+k]].sprite, c.Motion, &c.Params)
					return nil
				})
				if err != nil {
					return err
				}
				if _, err := w.Write(buf[:(hi-lo)*ClipBytes]); err != nil {
					return err
				}
				if hi == len(clips) || (hi/chunk)%5 == 0 {
					fmt.Fprintf(log, "videos   %d/%d\n", hi, len(clips))
				}
			}
			return nil
		}, previewClips(clips, spriteOf, pool))
		if err != nil {
			return nil, err
		}
		videosSec = time.Since(t).Seconds()
		fmt.Fprintf(log, "videos   %d done in %.1fs\n", len(clips), videosSec)
	} else if err := removeVideos(dir); err != nil {
		return nil, err
	}

	s := summarize(concepts, items, clips)
	m.Counts = s.Counts
	if err := writeManifest(dir, m); err != nil {
		return nil, err
	}
	s.OutputDir = dir
	s.DatasetVersion = DatasetVersion
	s.Files = m.Files
	s.Seconds = Timings{Images: imagesSec, Videos: videosSec, Write: writeSec, Total: time.Since(start).Seconds()}
	return s, nil
}

// enumerateItems lists the items in their stable order (concepts by sort_order; the base emoji,
// then skin tones by key; Twemoji, then Noto) with the PNG of each.
func enumerateItems(concepts []*Concept, src *Sources) ([]Item, [][]byte, error) {
	var items []Item
	var pngs [][]byte
	for _, c := range concepts {
		split := SplitTrain
		if c.HeldOut {
			split = SplitHeldOut
		}
		for vi := range c.Variants {
			v := &c.Variants[vi]
			for _, set := range Sets {
				if !contains(v.Sets, set) {
					continue
				}
				b, ok := src.Images[set][v.Image]
				if !ok {
					return nil, nil, fmt.Errorf("img/%s/64/%s (%s) is listed in emoji.json but missing from the %s images",
						set, v.Image, c.Caption(v), set)
				}
				items = append(items, Item{
					Index:       len(items),
					ID:          strings.TrimSuffix(v.Image, ".png") + "/" + set,
					Concept:     c.Unified,
					Unified:     v.Unified,
					Set:         set,
					Name:        c.Name,
					Tone:        v.Tone,
					Caption:     c.Caption(v),
					AltCaptions: c.AltCaptions(v),
					Category:    c.Category,
					Subcategory: c.Subcategory,
					Split:       split,
				})
				pngs = append(pngs, b)
			}
		}
	}
	if len(items) == 0 {
		return nil, nil, errors.New("no images found")
	}
	return items, pngs, nil
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// previewClips renders the first training clip of every motion (held-out clips if none).
func previewClips(clips []Clip, spriteOf []int, pool []spriteRef) [][]uint8 {
	var out [][]uint8
	for _, m := range Motions {
		pick := -1
		for i := range clips {
			if clips[i].Motion == m && (pick < 0 || clips[i].Split == SplitTrain) {
				pick = i
				if clips[i].Split == SplitTrain {
					break
				}
			}
		}
		if pick < 0 {
			continue
		}
		buf := make([]uint8, ClipBytes)
		RenderClip(buf, pool[spriteOf[pick]].sprite, clips[pick].Motion, &clips[pick].Params)
		out = append(out, buf)
	}
	return out
}

func summarize(concepts []*Concept, items []Item, clips []Clip) *Summary {
	s := &Summary{ImagesPerSet: map[string]int{}, Motions: map[Motion]int{}}
	s.Counts.Concepts = len(concepts)
	for _, c := range concepts {
		if c.HeldOut {
			s.Counts.ConceptsHeldOut++
		}
	}
	captions := map[string]bool{}
	words := map[string]bool{}
	addWords := func(text string) {
		for _, w := range strings.Fields(text) {
			words[w] = true
		}
	}
	for i := range items {
		it := &items[i]
		s.Counts.Images++
		if it.Split == SplitHeldOut {
			s.Counts.ImagesHeldOut++
		} else {
			s.Counts.ImagesTrain++
		}
		s.ImagesPerSet[it.Set]++
		captions[it.Caption] = true
		addWords(it.Caption)
		s.AltCaptions += len(it.AltCaptions)
		for _, a := range it.AltCaptions {
			addWords(a)
		}
	}
	s.Captions = len(captions)
	s.CaptionVocabulary = len(words)
	videoCaptions := map[string]bool{}
	for i := range clips {
		s.Counts.Clips++
		if clips[i].Split == SplitHeldOut {
			s.Counts.ClipsHeldOut++
		} else {
			s.Counts.ClipsTrain++
		}
		s.Motions[clips[i].Motion]++
		videoCaptions[clips[i].Caption] = true
	}
	s.VideoCaptions = len(videoCaptions)
	return s
}

// parallelFor runs fn(0..n-1) on workers goroutines and returns the first error (or the
// context's error); the remaining work is skipped after an error.
func parallelFor(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var failed atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// SortedMotions returns the motions of a count map in the order of Motions (for reports).
func SortedMotions(counts map[Motion]int) []Motion {
	var out []Motion
	for _, m := range Motions {
		if counts[m] > 0 {
			out = append(out, m)
		}
	}
	return out
}
