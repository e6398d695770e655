// Reading the samples that preference data names, at the geometry of the model being
// fine-tuned: images (PNG, JPEG, GIF) for image models; animated GIFs, directories of PNG
// frames or video files (MP4, MOV, WebM, MKV, AVI; through ffmpeg, rewards/scoring) for video
// models. Every file is read before training starts, so a missing or
// unreadable one is reported (with the data line that names it) before the first step.
//
//   - Transparent pixels are composited over white (as the emoji dataset is).
//   - A sample that is not square is centre-cropped; one of another size is resized (box
//     filter when shrinking, Catmull-Rom when enlarging).
//   - A clip with more frames than the model takes T frames spread evenly (frame
//     floor(i*n/T)); one with fewer is an error. An image for a video model is an error.
//   - Three-channel models get RGB, one-channel models the mean of R, G and B.
//
// Samples are kept as bytes (C,H,W) or (T,C,H,W) and turned into [-1, 1] per batch.
//
// Test: go test ./dpo -run 'Media|Load'

package dpo

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	_ "image/jpeg" // registers JPEG for image.Decode
	_ "image/png"  // registers PNG for image.Decode
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/disintegration/imaging"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/rewards/scoring"
)

// Store holds every sample a run trains on, once per file, as bytes at the model's geometry.
type Store struct {
	Paths []string  // file of each sample
	Data  [][]uint8 // (SampleSize) bytes per sample
	index map[string]int
}

// Index returns the sample number of path, or -1.
func (s *Store) Index(path string) int {
	if i, ok := s.index[path]; ok {
		return i
	}
	return -1
}

// Unit writes sample i as values in [-1, 1] (x/127.5 - 1) into dst.
func (s *Store) Unit(dst []float32, i int) { dataset.ToUnit(dst, s.Data[i]) }

// Ref is one file a record needs, with the record's place for error messages.
type Ref struct {
	Path   string
	Source Source
}

// LoadStore reads every distinct file of refs for a model with config cfg. All problems
// (missing files, undecodable images, clips too short) come back together as LineErrors,
// each at the line of the first record that names the file.
func LoadStore(refs []Ref, cfg *diffusion.ModelConfig) (*Store, error) {
	s := &Store{index: map[string]int{}}
	var errs LineErrors
	failed := map[string]bool{}
	for _, r := range refs {
		if _, ok := s.index[r.Path]; ok || failed[r.Path] {
			continue
		}
		data, err := LoadSample(r.Path, cfg)
		if err != nil {
			failed[r.Path] = true
			errs = append(errs, &LineError{r.Source, err.Error()})
			continue
		}
		s.index[r.Path] = len(s.Paths)
		s.Paths = append(s.Paths, r.Path)
		s.Data = append(s.Data, data)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			a, b := errs[i].Source, errs[j].Source
			return a.File < b.File || a.File == b.File && a.Line < b.Line
		})
		return nil, errs
	}
	return s, nil
}

// LoadSample reads one image or clip at cfg's geometry (see the file header) as bytes
// (C,H,W) for an image model, (T,C,H,W) for a video model.
func LoadSample(path string, cfg *diffusion.ModelConfig) ([]uint8, error) {
	if cfg.Channels != 1 && cfg.Channels != 3 {
		return nil, fmt.Errorf("%s: models with %d channels cannot read images (1 or 3 only)", path, cfg.Channels)
	}
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: no such file", path)
		}
		return nil, err
	}
	T := 1
	if cfg.Kind == diffusion.KindVideo {
		T = cfg.Frames
	}
	var frames []image.Image
	switch {
	case !fi.IsDir() && scoring.IsVideoFile(path):
		// Only the T frames picked are decoded; the rule below then picks them again.
		frames, err = scoring.LoadVideoFrames(path, func(n int, _ []float64, _ float64) ([]int, error) {
			if n < T {
				return nil, fmt.Errorf("%s: %d frames, the video model needs %d", path, n, T)
			}
			idx := make([]int, T)
			for t := range idx {
				idx[t] = t * n / T
			}
			return idx, nil
		})
	case fi.IsDir():
		frames, err = readFrameDir(path)
	case strings.EqualFold(filepath.Ext(path), ".gif"):
		frames, err = readGIF(path)
	default:
		var img image.Image
		img, err = readImage(path)
		frames = []image.Image{img}
	}
	if err != nil {
		return nil, err
	}
	if cfg.Kind == diffusion.KindVideo {
		if len(frames) < T {
			return nil, fmt.Errorf("%s: %d frames, the video model needs %d", path, len(frames), T)
		}
	}
	n := cfg.Channels * cfg.ImageSize * cfg.ImageSize
	out := make([]uint8, T*n)
	for t := range T {
		putFrame(out[t*n:(t+1)*n], frames[t*len(frames)/T], cfg.ImageSize, cfg.Channels)
	}
	return out, nil
}

func readImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b := img.Bounds(); b.Dx() == 0 || b.Dy() == 0 {
		return nil, fmt.Errorf("%s: empty image", path)
	}
	return img, nil
}

// readGIF decodes every frame of an animated GIF onto a canvas of the logical screen size
// (frames are drawn over the previous one, as a viewer shows them).
func readGIF(path string) ([]image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	g, err := gif.DecodeAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	w, h := g.Config.Width, g.Config.Height
	if w == 0 || h == 0 {
		w, h = g.Image[0].Bounds().Max.X, g.Image[0].Bounds().Max.Y
	}
	if w <= 0 || h <= 0 || w > 1<<14 || h > 1<<14 {
		return nil, fmt.Errorf("%s: GIF canvas %dx%d", path, w, h)
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, w, h))
	var out []image.Image
	for _, fr := range g.Image {
		draw.Draw(canvas, fr.Bounds(), fr, fr.Bounds().Min, draw.Over)
		out = append(out, imaging.Clone(canvas))
	}
	return out, nil
}

// readFrameDir reads the PNG files of a directory in name order.
func readFrameDir(dir string) ([]image.Image, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.EqualFold(filepath.Ext(e.Name()), ".png") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: a directory without PNG frames", dir)
	}
	sort.Strings(names)
	out := make([]image.Image, len(names))
	for i, n := range names {
		if out[i], err = readImage(filepath.Join(dir, n)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// putFrame composites img over white, crops it square, resizes it to size and writes its
// channels (C,H,W) into dst.
func putFrame(dst []uint8, img image.Image, size, C int) {
	rgb := dataset.CompositeOnWhite(img)
	b := rgb.Bounds()
	var sq image.Image = rgb
	if b.Dx() != b.Dy() {
		s := min(b.Dx(), b.Dy())
		sq = imaging.CropCenter(rgb, s, s)
	}
	if sq.Bounds().Dx() != size {
		filter := imaging.Box
		if sq.Bounds().Dx() < size {
			filter = imaging.CatmullRom
		}
		sq = imaging.Resize(sq, size, size, filter)
	}
	if C == 3 {
		dataset.PutCHW(dst, sq)
		return
	}
	sb := sq.Bounds()
	for y := range size {
		for x := range size {
			c := color.NRGBAModel.Convert(sq.At(sb.Min.X+x, sb.Min.Y+y)).(color.NRGBA)
			dst[y*size+x] = uint8((int(c.R) + int(c.G) + int(c.B) + 1) / 3)
		}
	}
}
