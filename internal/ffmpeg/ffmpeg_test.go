// Tests of the ffmpeg runner on a video made from known frames (framecrc's parsing:
// parse_test.go).
package ffmpeg_test

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/internal/ffmpeg"
	"github.com/alignkit/align/internal/testvideo"
)

// Probe and Frames on 7 frames at 5 fps: the timings, the frames picked in order with a
// repeat, and the errors (a pick out of range, a missing file).
func TestProbeAndFrames(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	for k := range 7 {
		img := image.NewNRGBA(image.Rect(0, 0, 6, 4))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(30*k), uint8(i), 200, 255
		}
		f, _ := os.Create(filepath.Join(dir, fmt.Sprintf("%d.png", k)))
		png.Encode(f, img)
		f.Close()
	}
	video := filepath.Join(dir, "v.mkv")
	testvideo.Encode(t, bin, filepath.Join(dir, "%d.png"), video, "-framerate", "5")
	tm, err := ffmpeg.Probe(bin, video)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%.3f", tm.Starts) != "[0.000 0.200 0.400 0.600 0.800 1.000 1.200]" || math.Abs(tm.Duration-1.4) > 1e-9 {
		t.Errorf("starts %v, duration %v; want 0.2 s apart, 1.4 s", tm.Starts, tm.Duration)
	}
	frames, err := ffmpeg.Frames(bin, video, []int{5, 1, 5}, len(tm.Starts))
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []int{5, 1, 5} {
		if got := color.NRGBAModel.Convert(frames[i].At(0, 0)).(color.NRGBA); got != (color.NRGBA{uint8(30 * k), 0, 200, 255}) {
			t.Errorf("picked frame %d (frame %d): pixel %v", i, k, got)
		}
	}
	if _, err := ffmpeg.Frames(bin, video, []int{7}, 7); err == nil || !strings.Contains(err.Error(), "frames [7] picked of 7") {
		t.Errorf("out of range: %v", err)
	}
	// Decode hands over each frame as it comes, and stops at fn's error.
	var seen []int
	err = ffmpeg.Decode(bin, video, []int{0, 2, 3, 6}, 7, func(k int, img image.Image) error {
		if got := color.NRGBAModel.Convert(img.At(0, 0)).(color.NRGBA); got.R != uint8(30*k) {
			t.Errorf("Decode: frame %d has red %d", k, got.R)
		}
		seen = append(seen, k)
		return nil
	})
	if err != nil || fmt.Sprint(seen) != "[0 2 3 6]" {
		t.Errorf("Decode: frames %v, %v", seen, err)
	}
	stop := errors.New("enough")
	seen = nil
	err = ffmpeg.Decode(bin, video, []int{1, 2, 4}, 7, func(k int, _ image.Image) error {
		seen = append(seen, k)
		if k == 2 {
			return stop
		}
		return nil
	})
	if err != stop || fmt.Sprint(seen) != "[1 2]" {
		t.Errorf("Decode stopped by fn: frames %v, %v", seen, err)
	}
	for _, want := range [][]int{{2, 2}, {3, 1}, {}} {
		err := ffmpeg.Decode(bin, video, want, 7, func(int, image.Image) error { return nil })
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("frames %v picked of 7", want)) {
			t.Errorf("Decode %v: %v", want, err)
		}
	}
	if _, err := ffmpeg.Probe(bin, filepath.Join(dir, "none.mp4")); err == nil || !strings.Contains(err.Error(), "none.mp4: ffmpeg: ") {
		t.Errorf("missing: %v", err)
	}
	// A file of sound alone.
	audio := filepath.Join(dir, "sound.mp4")
	if out, err := exec.Command(bin, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.2", audio).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if _, err := ffmpeg.Probe(bin, audio); err == nil || err.Error() != audio+": no video stream" {
		t.Errorf("sound alone: %v", err)
	}
}

// WriteMP4 of 6 solid frames of 7x5 at 10 fps reads back as 6 frames 0.1 s apart, 8x6 (the
// odd sizes evened), each within a few levels of its colour; its errors name the file.
func TestWriteMP4(t *testing.T) {
	bin := testvideo.Require(t)
	dir := t.TempDir()
	colours := []color.NRGBA{{200, 30, 30, 255}, {30, 200, 30, 255}, {30, 30, 200, 255}, {250, 250, 250, 255}, {10, 10, 10, 255}, {128, 90, 200, 255}}
	var frames []image.Image
	for _, c := range colours {
		img := image.NewNRGBA(image.Rect(0, 0, 7, 5))
		for i := 0; i < len(img.Pix); i += 4 {
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
		}
		frames = append(frames, img)
	}
	path := filepath.Join(dir, "out.mp4")
	if err := ffmpeg.WriteMP4(bin, path, frames, 10); err != nil {
		t.Fatal(err)
	}
	tm, err := ffmpeg.Probe(bin, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Starts) != 6 || math.Abs(tm.Starts[3]-0.3) > 1e-9 || math.Abs(tm.Duration-0.6) > 1e-9 {
		t.Errorf("starts %v, duration %v; want 6 frames 0.1 s apart", tm.Starts, tm.Duration)
	}
	got, err := ffmpeg.Frames(bin, path, []int{0, 1, 2, 3, 4, 5}, len(tm.Starts))
	if err != nil {
		t.Fatal(err)
	}
	for k, img := range got {
		if b := img.Bounds(); b.Dx() != 8 || b.Dy() != 6 {
			t.Fatalf("frame %d is %v, want 8x6", k, b)
		}
		c := color.NRGBAModel.Convert(img.At(7, 5)).(color.NRGBA) // a padded corner
		w := colours[k]
		if d := max(absDiff(c.R, w.R), absDiff(c.G, w.G), absDiff(c.B, w.B)); d > 4 {
			t.Errorf("frame %d: %v, want %v", k, c, w)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left in the folder: %v", entries)
	}

	other := image.NewNRGBA(image.Rect(0, 0, 6, 5))
	for name, c := range map[string]struct {
		path   string
		frames []image.Image
		want   string
	}{
		"no frames": {path, nil, path + ": no frames"},
		"sizes":     {path, []image.Image{frames[0], other}, path + ": frame 1 is 6x5, frame 0 7x5"},
		"no folder": {filepath.Join(dir, "none", "x.mp4"), frames, filepath.Join(dir, "none")},
	} {
		if err := ffmpeg.WriteMP4(bin, c.path, c.frames, 10); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
