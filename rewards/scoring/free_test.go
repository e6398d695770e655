package scoring

import (
	"context"
	"fmt"
	"image/color"
	"path/filepath"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// Scoring keeps no device memory from one run to the next: on the emulated CUDA device
// (whose memory, like a GPU's, the garbage collector does not reclaim), scoring five images
// in batches of two (a smaller last batch) with the native model leaves the device holding
// what the run before left, the model's own buffers: every batch's pixels are freed.
func TestScoreSteadyMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "blue car"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rewards.NewNative(ed, &kernels.RNG{Seed: 1}, rewards.NativeConfig{Kind: rewards.KindImage, ImageSize: 8, Channels: 3,
		Frames: 1, PatchSize: 4, TubeletFrames: 1, Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2,
		Dims: []string{rewards.DimVQ, rewards.DimTA}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTrainable(false)
	dir := t.TempDir()
	var items []Item
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("%d.png", i))
		writePNG(t, p, 8, 8, color.RGBA{uint8(40 * i), 90, 200, 255})
		items = append(items, Item{Index: i, Path: p, Prompt: "red apple"})
	}
	s := &Scorer{Model: m, Dev: ed, Geometry: onnx.Geometry{Height: 8, Width: 8, Resize: onnx.ResizeStretch, Filter: onnx.FilterBox},
		BatchSize: 2, Workers: 1}
	var inUse int64
	for run := range 3 {
		res, err := s.Run(context.Background(), items)
		if err != nil {
			t.Fatal(err)
		}
		if !res[4].OK() {
			t.Fatal(res[4].Err)
		}
		if got := ed.MemStats().InUse; run == 2 && got != inUse {
			t.Errorf("the device holds %d bytes after the third run, %d after the second", got, inUse)
		}
		inUse = ed.MemStats().InUse
	}
}
