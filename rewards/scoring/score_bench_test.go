// Benchmark of `align score` on a folder of 1,000 32x32 PNG files with the command's
// defaults (prompts from the file names, batches of 16, decoding on every core) and the
// embedded default image reward model, natively (Go, the CPU device on every core) and
// exported to ONNX (onnx.ExportNative) in ONNX Runtime (its default threads), in one run.
// As in the command, the time is Scorer.Run's (listing, decoding, batching, scoring), the
// model already loaded:
//
//	native_images/s, onnx_images/s   1000*b.N / time of b.N runs
//	onnx/native_time                 native_images/s / onnx_images/s (the goal: <= 1.5)
//	<model>_peak_*_MiB               peak memory from loading the model to an untimed first pass
//	                                 (internal/benchmem; ONNX Runtime's C allocations
//	                                 show in the resident set only)
//
// ns/op is the time of one native plus one ONNX run. The models alone, on tensors in
// memory: rewards/onnx's BenchmarkScore.
//
// Run (ONNX Runtime from make ort): go test ./rewards/scoring -run '^$' -bench Score -benchtime 2x
package scoring

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alignkit/align/assets"
	"github.com/alignkit/align/internal/benchmem"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	"github.com/alignkit/align/rewards/onnx"
)

// benchImages writes n random 32x32 RGB PNG files named "NNNN-<prompt>.png" into dir.
func benchImages(b *testing.B, dir string, n int) {
	r := rand.New(rand.NewPCG(1, 2))
	prompts := []string{"grinning face", "red apple", "rocket", "dog face", "pile of poo"}
	for i := range n {
		img := image.NewNRGBA(image.Rect(0, 0, 32, 32))
		for j := range img.Pix {
			img.Pix[j] = uint8(r.IntN(256))
			if j%4 == 3 {
				img.Pix[j] = 255
			}
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%04d-%s.png", i, strings.ReplaceAll(prompts[i%len(prompts)], " ", "-"))))
		if err != nil {
			b.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReward loads the embedded default image reward model on dev, frozen, as `align
// score` does without --reward.
func benchReward(b *testing.B, dev kernels.Device) *rewards.Native {
	c, err := nn.ReadCheckpoint("embedded default reward model", assets.RewardImage)
	if err != nil {
		b.Fatal(err)
	}
	m, err := rewards.NativeFromCheckpoint(dev, c)
	if err != nil {
		b.Fatal(err)
	}
	m.SetTrainable(false)
	return m
}

func BenchmarkScore(b *testing.B) {
	b.StopTimer() // runs only while the timed loops do
	if err := onnx.Init(""); err != nil {
		b.Skip(err)
	}
	const n = 1000
	dir := b.TempDir()
	benchImages(b, dir, n)
	items, err := List([]string{dir}, ListOptions{})
	if err != nil || len(items) != n {
		b.Fatalf("%d items: %v", len(items), err)
	}
	data, man, err := onnx.ExportNative(benchReward(b, kernels.NewCPU(1)), "reward.onnx")
	if err != nil {
		b.Fatal(err)
	}
	type result struct {
		imagesPerSec float64
		mem          benchmem.Usage
	}
	// run loads a model (load returns it, the device of its batches and its closer), then
	// scores the folder b.N times.
	run := func(load func() (rewards.Model, kernels.Device, func())) result {
		mem := benchmem.Start()
		m, dev, closeModel := load()
		defer closeModel()
		s := &Scorer{Model: m, Dev: dev, Geometry: man.Image.Geometry(), BatchSize: 16}
		score := func() {
			res, err := s.Run(context.Background(), items)
			if err != nil {
				b.Fatal(err)
			}
			for i := range res {
				if !res[i].OK() {
					b.Fatalf("%s: %s", res[i].Path, res[i].Err)
				}
			}
		}
		// An untimed pass ends the memory's stretch: its heap sampler, waking every
		// millisecond, would slow the timed passes.
		score()
		usage := mem.Stop()
		b.StartTimer()
		t0 := time.Now()
		for range b.N {
			score()
		}
		sec := time.Since(t0).Seconds()
		b.StopTimer()
		return result{float64(n*b.N) / sec, usage}
	}
	native := run(func() (rewards.Model, kernels.Device, func()) {
		dev := kernels.NewCPU(0)
		return benchReward(b, dev), dev, func() {}
	})
	ort := run(func() (rewards.Model, kernels.Device, func()) {
		m, err := onnx.New(data, man, onnx.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return m, kernels.NewCPU(1), func() { m.Close() }
	})
	b.ReportMetric(native.imagesPerSec, "native_images/s")
	b.ReportMetric(ort.imagesPerSec, "onnx_images/s")
	b.ReportMetric(native.imagesPerSec/ort.imagesPerSec, "onnx/native_time")
	native.mem.Report(b, "native_")
	ort.mem.Report(b, "onnx_")
}
