// Decoding inputs: still images (PNG, JPEG, GIF's first frame, WebP, BMP) and clips (animated
// GIFs composited frame by frame with their disposal methods; folders of frames; video files
// through ffmpeg, video.go), transparent
// pixels composited over white as align's datasets are, frames sampled at an explicit fps
// and count, everything mapped to [-1, 1] (C,H,W) planes of the model's input size.
//
// Test: go test ./rewards/scoring -run 'Decode|Frames|GIF'
package scoring

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG with image.Decode
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	_ "golang.org/x/image/bmp"  // registers BMP
	_ "golang.org/x/image/webp" // registers WebP

	"github.com/disintegration/imaging"

	"github.com/alignkit/align/rewards/onnx"
)

// Limits on decoded inputs (a corrupt or hostile header must not exhaust memory).
const (
	MaxPixels     = 40 << 20 // per image or frame
	MaxClipFrames = 4096     // frames read from one GIF or folder
	MaxFileBytes  = 1 << 30
)

// DefaultGIFDelay is the frame time (1/100 s) used for a GIF frame whose delay is 0, as
// browsers do.
const DefaultGIFDelay = 10

// Clip is a decoded clip: frames and their start times in seconds.
type Clip struct {
	Frames   []image.Image
	Starts   []float64 // (len(Frames)) start time of each frame
	Duration float64   // end of the last frame; 0 when the source has no timing
}

// openLimited opens path for decoding, refusing folders and oversized files.
func openLimited(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s is a folder (folders of frames are clips; this reward model reads images)", path)
	}
	if st.Size() > MaxFileBytes {
		f.Close()
		return nil, fmt.Errorf("%s: file of %d MiB is too large", path, st.Size()>>20)
	}
	return f, nil
}

// checkConfig refuses images whose header announces more than MaxPixels.
func checkConfig(r io.ReadSeeker, path string) error {
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 {
		return fmt.Errorf("%s: empty image (%dx%d pixels)", path, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return fmt.Errorf("%s: image of %dx%d pixels, more than the %d Mpixel limit", path, cfg.Width, cfg.Height, MaxPixels>>20)
	}
	_, err = r.Seek(0, io.SeekStart)
	return err
}

// LoadImage decodes one still image (a GIF's first frame), its pixels as stored: a JPEG's
// EXIF orientation is not applied, as PIL's Image.open, which reward models' own pipelines
// read with, does not apply it.
func LoadImage(path string) (image.Image, error) { return loadImage(path, false) }

// LoadImageUpright is LoadImage with a JPEG's EXIF orientation applied (imaging's
// AutoOrientation): a photo taken sideways comes out as a viewer shows it.
func LoadImageUpright(path string) (image.Image, error) { return loadImage(path, true) }

func loadImage(path string, upright bool) (image.Image, error) {
	if IsVideoFile(path) {
		return nil, fmt.Errorf("%s is a video file; this reward model reads images", path)
	}
	f, err := openLimited(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkConfig(f, path); err != nil {
		return nil, err
	}
	img, err := imaging.Decode(f, imaging.AutoOrientation(upright))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// LoadClip decodes an animated GIF (frames composited with their disposal methods, timing
// from the delays) or a folder of frames (files sorted in natural order, "2.png" before
// "10.png"; all of one size; no timing, so Starts are k/sourceFPS when sourceFPS > 0).
func LoadClip(path string, sourceFPS float64) (*Clip, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if strings.ToLower(filepath.Ext(path)) != ".gif" {
			return nil, fmt.Errorf("%s: not a clip (give an animated GIF, a folder of frames or a video file: .mp4, .mov, .webm, .mkv, .avi)", path)
		}
		return loadGIF(path)
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && IsImageFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: folder holds no frames (.png, .jpg, ...)", path)
	}
	if len(names) > MaxClipFrames {
		return nil, fmt.Errorf("%s: %d frames, at most %d are read", path, len(names), MaxClipFrames)
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	c := &Clip{}
	for k, n := range names {
		img, err := LoadImage(filepath.Join(path, n))
		if err != nil {
			return nil, err
		}
		if k > 0 && img.Bounds().Size() != c.Frames[0].Bounds().Size() {
			return nil, fmt.Errorf("%s: frame %s is %v, the first frame %v", path, n, img.Bounds().Size(), c.Frames[0].Bounds().Size())
		}
		c.Frames = append(c.Frames, img)
		if sourceFPS > 0 {
			c.Starts = append(c.Starts, float64(k)/sourceFPS)
		}
	}
	if sourceFPS > 0 {
		c.Duration = float64(len(names)) / sourceFPS
	}
	return c, nil
}

func loadGIF(path string) (*Clip, error) {
	f, err := openLimited(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := checkConfig(f, path); err != nil {
		return nil, err
	}
	g, err := gif.DecodeAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(g.Image) == 0 {
		return nil, fmt.Errorf("%s: GIF without frames", path)
	}
	if len(g.Image) > MaxClipFrames {
		return nil, fmt.Errorf("%s: %d frames, at most %d are read", path, len(g.Image), MaxClipFrames)
	}
	W, H := g.Config.Width, g.Config.Height
	if W < 1 || H < 1 {
		b := g.Image[0].Bounds()
		W, H = b.Max.X, b.Max.Y
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, W, H)) // transparent: white after compositing
	c := &Clip{}
	t := 0.0
	for k, fr := range g.Image {
		var saved *image.NRGBA
		disposal := byte(0)
		if k < len(g.Disposal) {
			disposal = g.Disposal[k]
		}
		if disposal == gif.DisposalPrevious {
			saved = image.NewNRGBA(canvas.Rect)
			copy(saved.Pix, canvas.Pix)
		}
		draw.Draw(canvas, fr.Bounds(), fr, fr.Bounds().Min, draw.Over)
		snap := image.NewNRGBA(canvas.Rect)
		copy(snap.Pix, canvas.Pix)
		c.Frames = append(c.Frames, snap)
		c.Starts = append(c.Starts, t)
		delay := DefaultGIFDelay
		if k < len(g.Delay) && g.Delay[k] > 0 {
			delay = g.Delay[k]
		}
		t += float64(delay) / 100
		switch disposal {
		case gif.DisposalBackground:
			draw.Draw(canvas, fr.Bounds(), image.Transparent, image.Point{}, draw.Src)
		case gif.DisposalPrevious:
			copy(canvas.Pix, saved.Pix)
		}
	}
	c.Duration = t
	return c, nil
}

// naturalLess orders names with their digit runs compared as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
		if da && db {
			na, ra := leadingDigits(a)
			nb, rb := leadingDigits(b)
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) (uint64, string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	v, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		v = math.MaxUint64
	}
	return v, s[i:]
}

// LoadClipFrames reads the T frames of the clip at path that SelectFrames picks at fps: from
// an animated GIF or a folder of frames (LoadClip; sourceFPS the folder's frame rate) or a
// video file (only those frames are decoded).
func LoadClipFrames(path string, sourceFPS float64, T int, fps float64) ([]image.Image, error) {
	w, err := LoadClipWindows(path, sourceFPS, T, fps, 1, nil)
	if err != nil {
		return nil, err
	}
	return w.Frames, nil
}

// ClipWindows are windows of T frames read from one clip.
type ClipWindows struct {
	Frames []image.Image // window after window, T frames each
	Starts []float64     // each window's start in seconds
}

// LoadClipWindows reads the windows of T frames at fps that SelectWindows picks from the clip
// at path (at most maxClips; 0: every one that fits), as LoadClipFrames reads one, each frame
// passed through fit (nil: kept as decoded) as EachClipWindow reads it.
func LoadClipWindows(path string, sourceFPS float64, T int, fps float64, maxClips int, fit func(image.Image) (image.Image, error)) (*ClipWindows, error) {
	if fit == nil {
		fit = func(img image.Image) (image.Image, error) { return img, nil }
	}
	w := &ClipWindows{}
	err := EachClipWindow(path, sourceFPS, T, fps, maxClips, fit, func(start float64, frames []image.Image) error {
		w.Frames, w.Starts = append(w.Frames, frames...), append(w.Starts, start)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// EachClipWindow reads the windows of T frames at fps that SelectWindows picks from the clip
// at path (at most maxClips; 0: every one that fits) and calls emit with each window's start
// in seconds and its frames, in order, as soon as its last frame is read. Each frame picked
// goes through fit once, as it is decoded (a frame in two windows is read once), and is let
// go when no later window shows it, so that the frames of a long video are neither held at
// full size nor all at once. An error of fit or emit stops the reading and is returned.
func EachClipWindow[F any](path string, sourceFPS float64, T int, fps float64, maxClips int, fit func(image.Image) (F, error), emit func(start float64, frames []F) error) error {
	var (
		windows [][]int
		starts  []float64
		frames  = map[int]F{}
		next    int // the first window not yet emitted
	)
	pick := func(n int, frameStarts []float64, duration float64) ([]int, error) {
		var err error
		if windows, starts, err = SelectWindows(n, frameStarts, duration, T, fps, maxClips); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		want := slices.Sorted(maps.Keys(setOf(windows)))
		if len(want) > MaxClipFrames {
			return nil, fmt.Errorf("%s: %d windows of %d frames pick %d frames, at most %d are read from one clip", path, len(windows), T, len(want), MaxClipFrames)
		}
		return want, nil
	}
	// keep fits frame k and emits the windows it completes: a window's indices never
	// decrease, so it is complete once its last frame is read.
	keep := func(k int, img image.Image) error {
		f, err := fit(img)
		if err != nil {
			return fmt.Errorf("%s: frame %d: %w", path, k, err)
		}
		frames[k] = f
		for next < len(windows) && windows[next][T-1] <= k {
			w := make([]F, T)
			for i, j := range windows[next] {
				w[i] = frames[j]
			}
			if err := emit(starts[next], w); err != nil {
				return err
			}
			next++
			for j := range frames {
				if next == len(windows) || j < windows[next][0] {
					delete(frames, j)
				}
			}
		}
		return nil
	}
	if IsVideoFile(path) {
		if err := decodeVideoFrames(path, pick, keep); err != nil {
			return err
		}
	} else {
		c, err := LoadClip(path, sourceFPS)
		if err != nil {
			return err
		}
		want, err := pick(len(c.Frames), c.Starts, c.Duration)
		if err != nil {
			return err
		}
		for _, k := range want {
			if err := keep(k, c.Frames[k]); err != nil {
				return err
			}
		}
	}
	if next != len(windows) { // every window's last frame is among those picked
		return fmt.Errorf("%s: %d of %d windows read", path, next, len(windows))
	}
	return nil
}

// setOf is the set of the frame indices of windows.
func setOf(windows [][]int) map[int]bool {
	set := map[int]bool{}
	for _, idx := range windows {
		for _, k := range idx {
			set[k] = true
		}
	}
	return set
}

// SelectFrames picks T frame indices from a clip of n frames:
//
//   - fps = 0: spread over the whole clip, round(linspace(0, n-1, T)) (VideoAlign's and
//     Qwen2-VL's nframes sampling; frames repeat when n < T);
//   - fps > 0: the frames shown at times k/fps, k = 0..T-1, from starts (frame k shows from
//     starts[k]); the clip must last longer than (T-1)/fps.
func SelectFrames(n int, starts []float64, duration float64, T int, fps float64) ([]int, error) {
	w, _, err := SelectWindows(n, starts, duration, T, fps, 1)
	if err != nil {
		return nil, err
	}
	return w[0], nil
}

// SelectWindows picks windows of T frames at fps from a clip of n frames (frame k shows from
// starts[k]; the last ends at duration) and returns each window's frame indices and start in
// seconds. The clip is cut into windows back to back from its start, window j showing the
// times j·T/fps + k/fps, k = 0..T-1; those that end within the clip (j·T/fps + (T-1)/fps <
// duration) fit, M of them. maxClips 0 takes all M, else min(maxClips, M) spread over the
// clip: windows round(linspace(0, M-1, maxClips)), the first window always among them. With
// fps = 0 there is one window, SelectFrames' spread over the whole clip, and maxClips must be
// 1.
func SelectWindows(n int, starts []float64, duration float64, T int, fps float64, maxClips int) ([][]int, []float64, error) {
	if n < 1 || T < 1 || maxClips < 0 {
		return nil, nil, fmt.Errorf("select %d of %d frames (%d windows)", T, n, maxClips)
	}
	if fps == 0 {
		if maxClips != 1 {
			return nil, nil, errors.New("windows of a clip need a frame rate to take them at (--fps)")
		}
		idx := make([]int, T)
		for k := range idx {
			if T > 1 {
				idx[k] = int(math.Round(float64(k) * float64(n-1) / float64(T-1)))
			}
		}
		return [][]int{idx}, []float64{0}, nil
	}
	if len(starts) != n {
		return nil, nil, errors.New("the clip has no timing (a folder of frames): give its frame rate (--source-fps) or sample with --fps 0")
	}
	need := float64(T-1) / fps
	if need >= duration {
		return nil, nil, fmt.Errorf("clip lasts %.3gs (%d frames): %d frames at %g fps need more than %.3gs; lower --fps or --num-frames", duration, n, T, fps, need)
	}
	span := float64(T) / fps
	// M windows fit: those j with j·span + need < duration (by more than rounding: 6·0.15 +
	// 0.1 falls short of 1 in floating point).
	M := int(min((duration-need)/span, 1<<40)) + 1
	for M > 1 && float64(M-1)*span+need >= duration-1e-9 {
		M--
	}
	count := M
	if maxClips > 0 {
		count = min(maxClips, M)
	}
	if count > MaxClipFrames {
		return nil, nil, fmt.Errorf("%d windows of %d frames at %g fps: at most %d are read from one clip", count, T, fps, MaxClipFrames)
	}
	picked := make([]int, count) // windows round(linspace(0, M-1, count))
	for i := range picked {
		if count > 1 {
			picked[i] = int(math.Round(float64(i) * float64(M-1) / float64(count-1)))
		}
	}
	windows := make([][]int, len(picked))
	times := make([]float64, len(picked))
	f := 0 // the frame shown at time t, found by one scan: the windows' times only grow
	for i, j := range picked {
		times[i] = float64(j*T) / fps // one rounding: 1.2, not 3·0.4 = 1.2000000000000002
		idx := make([]int, T)
		for k := range idx {
			t := times[i] + float64(k)/fps + 1e-9
			for f+1 < n && starts[f+1] <= t {
				f++
			}
			idx[k] = f
		}
		windows[i] = idx
	}
	return windows, times, nil
}

// ToCHW converts img to (3,H,W) values in [-1, 1] (x/127.5 - 1), transparent pixels
// composited over white. An opaque RGBA or NRGBA image (every decoded video frame) is read
// as it is: compositing would not change it.
func ToCHW(img image.Image) ([]float32, int, int) {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	var pix []uint8
	stride := 0
	switch m := img.(type) {
	case *image.RGBA:
		if m.Opaque() {
			pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
		}
	case *image.NRGBA:
		if m.Opaque() {
			pix, stride = m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride
		}
	}
	if pix == nil {
		rgba := image.NewRGBA(image.Rect(0, 0, W, H))
		draw.Draw(rgba, rgba.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Over)
		pix, stride = rgba.Pix, rgba.Stride
	}
	out := make([]float32, 3*H*W)
	plane := H * W
	for y := range H {
		row := pix[y*stride : y*stride+4*W]
		r, g, bl := out[y*W:(y+1)*W], out[plane+y*W:plane+(y+1)*W], out[2*plane+y*W:2*plane+(y+1)*W]
		for x := range W {
			r[x], g[x], bl[x] = unitLevel[row[4*x]], unitLevel[row[4*x+1]], unitLevel[row[4*x+2]]
		}
	}
	return out, H, W
}

// unitLevel[v] is the 8-bit level v in [-1, 1]: v/127.5 - 1.
var unitLevel = func() (t [256]float32) {
	for v := range t {
		t[v] = float32(v)/127.5 - 1
	}
	return t
}()

// Fit converts img to the model's (3,Height,Width) input with geometry g.
func Fit(img image.Image, g onnx.Geometry) ([]float32, error) {
	src, H, W := ToCHW(img)
	dst := make([]float32, 3*g.Height*g.Width)
	if err := g.Apply(dst, src, 3, H, W); err != nil {
		return nil, err
	}
	return dst, nil
}
