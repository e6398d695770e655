// Tests of video files: frames picked from an MP4 against
// the same frames in a GIF (losslessly encoded, so pixel for pixel), at fps 0 and at a given
// fps, a folder listing them for a clip model, and the errors (no ffmpeg, a corrupt file, a
// clip too short, a file named like a protocol).
package scoring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards/onnx"
)

// testClipFrames are n frames of w x h whose every pixel differs from frame to frame, in at
// most 256 colours (a GIF's palette).
func testClipFrames(n, w, h int) []*image.Paletted {
	var pal color.Palette
	for i := range 256 {
		pal = append(pal, color.RGBA{uint8(i), uint8(255 - i), uint8(i * 7), 255})
	}
	frames := make([]*image.Paletted, n)
	for k := range frames {
		f := image.NewPaletted(image.Rect(0, 0, w, h), pal)
		for i := range f.Pix {
			f.Pix[i] = uint8(k*37 + i*11)
		}
		frames[k] = f
	}
	return frames
}

// writeClipFiles writes frames as dir/clip.gif (delay 10/100 s each) and dir/clip.mp4
// (lossless RGB H.264 at 10 fps from the same frames as PNGs) and returns both paths.
func writeClipFiles(t *testing.T, bin, dir string, frames []*image.Paletted) (gifPath, mp4Path string) {
	t.Helper()
	pngs := t.TempDir()
	for k, f := range frames {
		var b bytes.Buffer
		if err := png.Encode(&b, f); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(pngs, fmt.Sprintf("%03d.png", k)), b.Bytes(), 0o644)
	}
	gifPath, mp4Path = filepath.Join(dir, "clip.gif"), filepath.Join(dir, "clip.mp4")
	writeGIF(t, gifPath, frames)
	testvideo.Encode(t, bin, filepath.Join(pngs, "%03d.png"), mp4Path, "-framerate", "10")
	return gifPath, mp4Path
}

// writeGIF writes frames as an animated GIF at path, 10/100 s each.
func writeGIF(t *testing.T, path string, frames []*image.Paletted) {
	t.Helper()
	g := &gif.GIF{}
	for _, f := range frames {
		g.Image, g.Delay = append(g.Image, f), append(g.Delay, 10)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVideoFramesMatchGIF(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	gifPath, mp4Path := writeClipFiles(t, bin, dir, testClipFrames(12, 24, 18))
	for _, c := range []struct {
		T   int
		fps float64
	}{{4, 0}, {8, 0}, {16, 0}, {5, 4}, {12, 10}} {
		want, err := LoadClipFrames(gifPath, 0, c.T, c.fps)
		if err != nil {
			t.Fatal(err)
		}
		got, err := LoadClipFrames(mp4Path, 0, c.T, c.fps)
		if err != nil {
			t.Fatalf("T %d, fps %v: %v", c.T, c.fps, err)
		}
		if len(got) != c.T {
			t.Fatalf("T %d, fps %v: %d frames", c.T, c.fps, len(got))
		}
		for k := range got {
			a, _, _ := ToCHW(got[k])
			b, _, _ := ToCHW(want[k])
			if !slices.Equal(a, b) {
				t.Errorf("T %d, fps %v: frame %d of the MP4 differs from the GIF's", c.T, c.fps, k)
			}
		}
	}
	// At 4 fps, 6 frames need more than 1.25 s: the clip lasts 1.2 s.
	if _, err := LoadClipFrames(mp4Path, 0, 6, 4); err == nil || !strings.Contains(err.Error(), mp4Path+": clip lasts 1.2s (12 frames)") {
		t.Errorf("too short: %v", err)
	}

	// A folder lists the video file for a clip model, not for an image model.
	writePNG(t, filepath.Join(dir, "still.png"), 4, 4, color.White)
	items, err := List([]string{dir}, ListOptions{Clips: true})
	if err != nil || len(items) != 2 || items[0].Path != gifPath || items[1].Path != mp4Path {
		t.Errorf("clip listing: %v, %v", items, err)
	}
	if items, err := List([]string{dir}, ListOptions{}); err != nil || len(items) != 2 || strings.HasSuffix(items[0].Path, ".mp4") || strings.HasSuffix(items[1].Path, ".mp4") {
		t.Errorf("image listing: %v, %v", items, err)
	}
}

// Windows of 3 frames at 5 fps from 12 frames at 10 fps (1.2 s): back to back every 0.6 s,
// window j showing frames 6j, 6j+2 and 6j+4 (2 fit); the MP4's equal the GIF's and the
// fit each frame goes through is called once per frame read, a frame in two windows once.
func TestClipWindows(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	frames := testClipFrames(12, 24, 18)
	gifPath, mp4Path := writeClipFiles(t, bin, dir, frames)
	for _, path := range []string{gifPath, mp4Path} {
		fits := 0
		fit := func(img image.Image) (image.Image, error) { // the top-left 4x3
			fits++
			out := image.NewNRGBA(image.Rect(0, 0, 4, 3))
			draw.Draw(out, out.Bounds(), img, img.Bounds().Min, draw.Src)
			return out, nil
		}
		w, err := LoadClipWindows(path, 0, 3, 5, 0, fit)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%.2f", w.Starts) != "[0.00 0.60]" || len(w.Frames) != 6 || fits != 6 {
			t.Fatalf("%s: windows starting %.2f, %d frames, %d fits; want 2 windows at 0 and 0.6 s, 6 frames and fits", path, w.Starts, len(w.Frames), fits)
		}
		for i, k := range []int{0, 2, 4, 6, 8, 10} {
			want := image.NewNRGBA(image.Rect(0, 0, 4, 3))
			draw.Draw(want, want.Bounds(), frames[k], image.Point{}, draw.Src)
			a, _, _ := ToCHW(w.Frames[i])
			b, _, _ := ToCHW(want)
			if !slices.Equal(a, b) {
				t.Errorf("%s: frame %d of the windows is not frame %d", path, i, k)
			}
		}
		// One window at 20 fps, twice the clip's rate: 4 frames of which 2 are read, once each.
		fits = 0
		if w, err := LoadClipWindows(path, 0, 4, 20, 1, fit); err != nil || len(w.Frames) != 4 || fits != 2 {
			t.Errorf("%s: 4 frames at 20 fps: %v frames, %d fits, %v; want 4 frames of 2 read", path, len(w.Frames), fits, err)
		}
		stop := errors.New("no")
		if _, err := LoadClipWindows(path, 0, 3, 5, 0, func(image.Image) (image.Image, error) { return nil, stop }); !errors.Is(err, stop) || !strings.Contains(err.Error(), path+": frame 0: ") {
			t.Errorf("%s: fit's error: %v", path, err)
		}
	}
}

// EachClipWindow hands each window on as soon as its last frame is read, before the next
// window's frames are decoded, and an error of emit stops the reading.
func TestEachClipWindowStreams(t *testing.T) {
	bin := testvideo.Require(t)
	gifPath, mp4Path := writeClipFiles(t, bin, t.TempDir(), testClipFrames(12, 8, 6))
	for _, path := range []string{gifPath, mp4Path} {
		var events []string
		fit := func(img image.Image) (image.Image, error) {
			events = append(events, "fit")
			return img, nil
		}
		emit := func(start float64, frames []image.Image) error {
			events = append(events, fmt.Sprintf("emit %.1f (%d)", start, len(frames)))
			return nil
		}
		// Windows of 3 frames at 5 fps: frames 0, 2, 4 from 0 s and 6, 8, 10 from 0.6 s.
		if err := EachClipWindow(path, 0, 3, 5, 0, fit, emit); err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Join(events, ", "), "fit, fit, fit, emit 0.0 (3), fit, fit, fit, emit 0.6 (3)"; got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
		events = nil
		stop := errors.New("enough")
		err := EachClipWindow(path, 0, 3, 5, 0, fit, func(float64, []image.Image) error { return stop })
		if !errors.Is(err, stop) || len(events) != 3 {
			t.Errorf("%s: emit's error: %v after %d frames, want it after 3", path, err, len(events))
		}
	}
}

// Scoring windows: every window (or 2 spread) of each clip is a row with its start, in order,
// scored as the frames LoadClipWindows reads; an unreadable clip is one error row; batches
// span clips; cancelling while a clip waits for the model returns.
func TestRunWindows(t *testing.T) {
	dir := t.TempDir()
	a, b, bad := filepath.Join(dir, "a.gif"), filepath.Join(dir, "b.gif"), filepath.Join(dir, "bad.gif")
	writeGIF(t, a, testClipFrames(12, 8, 6)) // 1.2 s: windows of 2 frames at 5 fps start at 0, 0.4, 0.8
	writeGIF(t, b, testClipFrames(5, 8, 6))  // 0.5 s: one window
	os.WriteFile(bad, []byte("GIF89a broken"), 0o644)
	items := []Item{{Index: 0, Path: a}, {Index: 1, Path: bad}, {Index: 2, Path: b, Prompt: "bb"}}
	geo := onnx.Geometry{Height: 4, Width: 4, Resize: onnx.ResizeStretch, Filter: onnx.FilterBox}
	mean := func(path string, window int) float32 { // the fake model's vq of a window
		w, err := LoadClipWindows(path, 0, 2, 5, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		var s float32
		for _, f := range w.Frames[2*window : 2*window+2] {
			pix, err := Fit(f, geo)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range pix {
				s += v
			}
		}
		return s / float32(2*3*4*4)
	}
	type row struct {
		path  string
		start float64
		vq    float32
	}
	for _, tc := range []struct {
		windows int
		want    []row
	}{
		{AllWindows, []row{{a, 0, mean(a, 0)}, {a, 0.4, mean(a, 1)}, {a, 0.8, mean(a, 2)}, {bad, 0, 0}, {b, 0, mean(b, 0)}}},
		{2, []row{{a, 0, mean(a, 0)}, {a, 0.8, mean(a, 2)}, {bad, 0, 0}, {b, 0, mean(b, 0)}}},
		{1, []row{{a, 0, mean(a, 0)}, {bad, 0, 0}, {b, 0, mean(b, 0)}}},
	} {
		m := &fakeModel{}
		var last [2]int
		s := &Scorer{Model: m, Dev: kernels.NewCPU(1), Geometry: geo, Clips: true, Frames: 2, FPS: 5, Windows: tc.windows,
			BatchSize: 2, Workers: 2, Progress: func(done, _, rows int) { last = [2]int{done, rows} }}
		res, err := s.Run(context.Background(), items)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(tc.want) || last != [2]int{3, len(tc.want)} {
			t.Fatalf("windows %d: %d rows, progress ended at %v; want %d rows", tc.windows, len(res), last, len(tc.want))
		}
		for i, r := range res {
			w := tc.want[i]
			if r.Path != w.path || math.Abs(r.Start-w.start) > 1e-9 || r.OK() != (w.path != bad) || r.OK() && (math.Abs(float64(r.Raw[0]-w.vq)) > 1e-6 || r.Raw[1] != float32(len(r.Prompt))) {
				t.Errorf("windows %d: row %d is %s at %g (%v, %q), want %s at %g (vq %g)", tc.windows, i, r.Path, r.Start, r.Raw, r.Err, w.path, w.start, w.vq)
			}
		}
		if len(m.fps) != len(tc.want)-1 || slices.ContainsFunc(m.fps, func(f float64) bool { return f != 5 }) {
			t.Errorf("windows %d: the batches' frame rates %v, want 5 each", tc.windows, m.fps)
		}
		if scored := len(tc.want) - 1; m.calls != (scored+1)/2 { // batches of 2 across clips
			t.Errorf("windows %d: %d model calls for %d windows in batches of 2", tc.windows, m.calls, scored)
		}
	}

	// A long clip whose windows wait for a model that is cancelled after its first batch.
	long := filepath.Join(dir, "long.gif")
	writeGIF(t, long, testClipFrames(400, 8, 6))
	ctx, cancel := context.WithCancel(context.Background())
	s := &Scorer{Model: &fakeModel{}, Dev: kernels.NewCPU(1), Geometry: geo, Clips: true, Frames: 2, FPS: 10, Windows: AllWindows,
		BatchSize: 2, Workers: 2, Progress: func(_, _, rows int) {
			if rows > 0 {
				cancel()
			}
		}}
	if _, err := s.Run(ctx, []Item{{Path: long}, {Index: 1, Path: long}}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestVideoErrors(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	_, mp4Path := writeClipFiles(t, bin, dir, testClipFrames(3, 8, 8))

	corrupt := filepath.Join(dir, "corrupt.mp4")
	os.WriteFile(corrupt, []byte("not a video at all"), 0o644)
	if _, err := LoadClipFrames(corrupt, 0, 2, 0); err == nil || !strings.Contains(err.Error(), corrupt+": ffmpeg: ") {
		t.Errorf("corrupt: %v", err)
	}
	// A file named like ffmpeg's protocols is read as a file.
	odd := filepath.Join(dir, "concat:clip.mp4|clip.mp4")
	b, _ := os.ReadFile(mp4Path)
	os.WriteFile(odd, b, 0o644)
	if frames, err := LoadClipFrames(odd, 0, 2, 0); err != nil || len(frames) != 2 {
		t.Errorf("file named concat:...: %d frames, %v", len(frames), err)
	}
	if _, err := LoadClipFrames(filepath.Join(dir, "none.mp4"), 0, 2, 0); err == nil || !strings.Contains(err.Error(), "none.mp4: no such file") {
		t.Errorf("missing: %v", err)
	}
	t.Setenv(ffmpeg.EnvVar, filepath.Join(dir, "no-ffmpeg"))
	if _, err := LoadClipFrames(mp4Path, 0, 2, 0); err == nil || !strings.Contains(err.Error(), "$"+ffmpeg.EnvVar) {
		t.Errorf("$%s naming nothing: %v", ffmpeg.EnvVar, err)
	}
	// An image model given a video file says so.
	if _, err := LoadImage(mp4Path); err == nil || !strings.Contains(err.Error(), "is a video file; this reward model reads images") {
		t.Errorf("image model: %v", err)
	}
}
