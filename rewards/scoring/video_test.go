// Tests of video files: frames picked from an MP4 against
// the same frames in a GIF (losslessly encoded, so pixel for pixel), at fps 0 and at a given
// fps, a folder listing them for a clip model, and the errors (no ffmpeg, a corrupt file, a
// clip too short, a file named like a protocol).
package scoring

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/internal/testvideo"
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
	g := &gif.GIF{}
	pngs := t.TempDir()
	for k, f := range frames {
		g.Image, g.Delay = append(g.Image, f), append(g.Delay, 10)
		var b bytes.Buffer
		if err := png.Encode(&b, f); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(pngs, fmt.Sprintf("%03d.png", k)), b.Bytes(), 0o644)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, g); err != nil {
		t.Fatal(err)
	}
	gifPath, mp4Path = filepath.Join(dir, "clip.gif"), filepath.Join(dir, "clip.mp4")
	os.WriteFile(gifPath, b.Bytes(), 0o644)
	testvideo.Encode(t, bin, filepath.Join(pngs, "%03d.png"), mp4Path, "-framerate", "10")
	return gifPath, mp4Path
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
