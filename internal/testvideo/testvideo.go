// Package testvideo makes video files for tests with the ffmpeg that align reads them with
// (internal/ffmpeg): losslessly encoded RGB H.264, so that a test compares the
// frames read from the video with the frames it was made from, pixel for pixel.
package testvideo

import (
	"os"
	"os/exec"
	"testing"

	"github.com/alignkit/align/internal/ffmpeg"
)

// Require returns the ffmpeg executable, skipping the test without one; under CI=true (make
// test runs make ffmpeg first) a missing ffmpeg fails it.
func Require(t testing.TB) string {
	t.Helper()
	p, err := ffmpeg.Find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but no ffmpeg (make test runs make ffmpeg): %v", err)
		}
		t.Skipf("no ffmpeg, skipping (run `make ffmpeg`): %v", err)
	}
	return p
}

// Encode writes the frames of input (an animated GIF, or a numbered image pattern such as
// dir/%03d.png after inputArgs "-framerate", "10") to out as lossless RGB H.264 (libx264rgb,
// qp 0), every frame kept with its timing (-vsync 0).
func Encode(t testing.TB, bin, input, out string, inputArgs ...string) {
	t.Helper()
	args := append([]string{"-nostdin", "-v", "error"}, inputArgs...)
	args = append(args, "-i", input, "-vsync", "0", "-c:v", "libx264rgb", "-qp", "0", out)
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("encoding the test video %s: %v\n%s", out, err, b)
	}
}
