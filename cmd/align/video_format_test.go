package main

import (
	"image"
	"math"
	"path/filepath"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/internal/testvideo"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards/onnx"
	"github.com/alignkit/align/rewards/scoring"
)

// The clips align writes, read back at the model's size as align score reads them, against
// the sampled frames: the enlarged MP4 is nearer than the GIF (its 256-colour palette), and
// the MP4 at the model's own size (4:2:0 chroma on 32x32) would be farther than both.
// 8 clips of the embedded video model, 16 steps: GIF 1.58, MP4 0.71, MP4 unenlarged 3.35
// levels of 255 on average (go test ./cmd/align -run ClipWriterFidelity -v).
func TestClipWriterFidelity(t *testing.T) {
	if testing.Short() {
		t.Skip("samples 8 clips (7 s); the race run skips it")
	}
	testvideo.Require(t)
	m, _, err := loadGeneratorKind(kernels.NewCPU(0), "", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	caps := []string{"a red apple moving left", "rocket moving up", "a dog face moving right", "sun with face moving down",
		"hamburger rotating", "pile of poo bouncing", "four leaf clover zooming in", "grinning face moving left"}
	x, _, err := diffusion.Sample(m, caps, diffusion.SampleOptions{NumInferenceSteps: 16, GuidanceScale: 4, Seed: 3, Sampler: diffusion.SamplerEuler})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gifs, err := newClipWriter(videoFormatGIF)
	if err != nil {
		t.Fatal(err)
	}
	mp4s, err := newClipWriter(videoFormatMP4)
	if err != nil {
		t.Fatal(err)
	}
	// meanErr is the mean |read - sampled| over the clips written by w, in levels of 255.
	meanErr := func(w *clipWriter, ext string, clips [][]image.Image) float64 {
		sum, n := 0.0, 0
		for i, frames := range clips {
			path := filepath.Join(dir, caps[i]+ext)
			if err := w.write(path, frames); err != nil {
				t.Fatal(err)
			}
			read, err := scoring.LoadClipFrames(path, 0, len(frames), 0)
			if err != nil {
				t.Fatal(err)
			}
			s, k := levelDiff(frames, read)
			sum, n = sum+s, n+k
		}
		return sum / float64(n)
	}
	var clips [][]image.Image
	for _, c := range diffusion.SampleFrames(x, &m.Config) {
		clips = append(clips, diffusion.ToImages(c))
	}
	gifErr, mp4Err := meanErr(gifs, ".gif", clips), meanErr(mp4s, ".mp4", clips)
	// The MP4 without enlargement: the writer at a side of 1 (no enlargement).
	mp4Small := func() float64 {
		defer func(s int) { mp4MinSide = s }(mp4MinSide)
		mp4MinSide = 1
		return meanErr(mp4s, "-small.mp4", clips)
	}()
	t.Logf("mean |read - sampled| in levels: GIF %.2f, MP4 %.2f, MP4 at 32x32 %.2f", gifErr, mp4Err, mp4Small)
	if !(mp4Err < gifErr && gifErr < mp4Small && mp4Err < 1.5) {
		t.Errorf("GIF %.2f, MP4 %.2f, MP4 at 32x32 %.2f levels: want MP4 < 1.5, below the GIF, below the MP4 at 32x32", gifErr, mp4Err, mp4Small)
	}
}

// levelDiff is the sum of |a - b| over the frames' values as align score reads them at 32x32
// (box filter), in levels of 255, and how many values it summed.
func levelDiff(a, b []image.Image) (sum float64, n int) {
	geo := onnx.Geometry{Height: 32, Width: 32, Resize: onnx.ResizeStretch, Filter: onnx.FilterBox}
	for k := range a {
		x, _ := scoring.Fit(a[k], geo)
		y, _ := scoring.Fit(b[k], geo)
		for j := range x {
			sum += math.Abs(float64(x[j]-y[j])) * 127.5
		}
		n += len(x)
	}
	return sum, n
}
