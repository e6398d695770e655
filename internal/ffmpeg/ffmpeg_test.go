// Tests of the ffmpeg runner on a video made from known frames (framecrc's parsing:
// parse_test.go).
package ffmpeg_test

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
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
	if _, err := ffmpeg.Probe(bin, filepath.Join(dir, "none.mp4")); err == nil || !strings.Contains(err.Error(), "none.mp4: ffmpeg: ") {
		t.Errorf("missing: %v", err)
	}
}
