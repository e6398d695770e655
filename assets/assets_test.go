// Tests that every embedded model loads and behaves as its measurements say, on the 28 real
// emoji of the dataset fixture (diffusion/dataset/testdata/fixture; two are held-out concepts).
// Run: go test ./assets
package assets

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
)

// loadNative reads the embedded native reward model b (file name in errors) on dev, frozen,
// and checks its dimensions.
func loadNative(t *testing.T, dev kernels.Device, name string, b []byte, dims ...string) *rewards.Native {
	t.Helper()
	c, err := nn.ReadCheckpoint(name, b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rewards.NativeFromCheckpoint(dev, c)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTrainable(false)
	if got := m.Dims(); !slices.Equal(got, dims) {
		t.Fatalf("%s: dims = %v, want %v", name, got, dims)
	}
	return m
}

// buildFixture builds the dataset of the fixture's 28 emoji (diffusion/dataset/testdata) with
// the given number of clips and returns its directory.
func buildFixture(t *testing.T, clips int) string {
	t.Helper()
	src, err := dataset.SourcesFromDir(filepath.Join("..", "diffusion", "dataset", "testdata", "fixture"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := dataset.Build(context.Background(), src, dataset.Options{OutputDir: dir, VideoClips: clips}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fixtureImages(t *testing.T) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Load(buildFixture(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// score returns the raw (vq, ta) of images idx (each given as bytes) with the prompts.
func score(t *testing.T, dev kernels.Device, m *rewards.Native, imgs [][]uint8, prompts []string) [][]float32 {
	t.Helper()
	px := make([]float32, len(imgs)*dataset.ImageBytes)
	for i, im := range imgs {
		dataset.ToUnit(px[i*dataset.ImageBytes:(i+1)*dataset.ImageBytes], im)
	}
	b := rewards.Batch{Pixels: dev.FromHost(px, len(imgs), 3, dataset.ImageSize, dataset.ImageSize), Prompts: prompts}
	s, err := m.Score(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The true caption should win text alignment against the other fixture captions far more
// often than chance, and a blurred copy should lose visual quality.
func TestRewardImageOnFixture(t *testing.T) {
	dev := kernels.NewCPU(0)
	m := loadNative(t, dev, "reward-image.safetensors", RewardImage, "vq", "ta")
	checkRewardOnFixture(t, func(imgs [][]uint8, prompts []string) [][]float32 { return score(t, dev, m, imgs, prompts) })
}

// The latent model, on clean images (t = 0), passes the same checks.
func TestRewardLatentOnFixture(t *testing.T) {
	dev := kernels.NewCPU(0)
	c, err := nn.ReadCheckpoint("reward-latent.safetensors", RewardLatent)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rewards.LatentFromCheckpoint(dev, c)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTrainable(false)
	if got := m.Dims(); !slices.Equal(got, []string{"vq", "ta"}) {
		t.Fatalf("dims = %v, want [vq ta]", got)
	}
	checkRewardOnFixture(t, func(imgs [][]uint8, prompts []string) [][]float32 {
		px := make([]float32, len(imgs)*dataset.ImageBytes)
		for i, im := range imgs {
			dataset.ToUnit(px[i*dataset.ImageBytes:(i+1)*dataset.ImageBytes], im)
		}
		b := rewards.Batch{Pixels: dev.FromHost(px, len(imgs), 3, dataset.ImageSize, dataset.ImageSize), Prompts: prompts,
			Timesteps: make([]float32, len(imgs))}
		s, err := m.Score(b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// checkRewardOnFixture runs the fixture checks with score, which returns (vq, ta) per image.
func checkRewardOnFixture(t *testing.T, score func(imgs [][]uint8, prompts []string) [][]float32) {
	t.Helper()
	d := fixtureImages(t)
	var captions []string
	for _, it := range d.Items {
		if !slices.Contains(captions, it.Caption) {
			captions = append(captions, it.Caption)
		}
	}
	top1 := 0
	for i, it := range d.Items {
		imgs := make([][]uint8, len(captions))
		for k := range imgs {
			imgs[k] = d.Image(i)
		}
		s := score(imgs, captions)
		best := 0
		for k := range captions {
			if s[k][1] > s[best][1] {
				best = k
			}
		}
		if captions[best] == it.Caption {
			top1++
		}
	}
	chance := float64(len(d.Items)) / float64(len(captions))
	t.Logf("text alignment: true caption ranked first for %d of %d images (%d captions; chance %.1f)",
		top1, len(d.Items), len(captions), chance)
	if float64(top1) < 3*chance {
		t.Errorf("true caption first for %d of %d images, want at least 3x chance (%.1f)", top1, len(d.Items), 3*chance)
	}

	wins := 0
	for i, it := range d.Items {
		blurred := slices.Clone(d.Image(i))
		rewards.DegradeImage(blurred, dataset.ImageSize, dataset.ImageSize, rewards.Corruption{Kind: rewards.DegradeBlur, Level: 2}, 1)
		s := score([][]uint8{d.Image(i), blurred}, []string{it.Caption, it.Caption})
		if s[0][0] > s[1][0] {
			wins++
		}
	}
	t.Logf("visual quality: sharp beats blurred for %d of %d images", wins, len(d.Items))
	if wins < len(d.Items)*8/10 {
		t.Errorf("sharp image beats its blurred copy for %d of %d, want >= 80%%", wins, len(d.Items))
	}
}

// The default generator loads with its tokenizer, knows the sample prompts of `make sample`,
// and gives the same image for the same seed.
func TestImageBase(t *testing.T) {
	dev := kernels.NewCPU(0)
	m, err := diffusion.LoadDiTFromBytes(dev, "image-base.safetensors", ImageBase)
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Kind != diffusion.KindImage || m.Config.ImageSize != 32 {
		t.Fatalf("config %+v, want a 32x32 image model", m.Config)
	}
	for _, p := range []string{"grinning face", "red apple", "rocket", "four leaf clover"} {
		if _, _, unk, _ := m.Tokenizer.Encode(p); len(unk) > 0 {
			t.Errorf("prompt %q: unknown words %v", p, unk)
		}
	}
	sample := func() []float32 {
		x, _, err := diffusion.Sample(m, []string{"red apple"}, diffusion.SampleOptions{NumInferenceSteps: 8, GuidanceScale: 4, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		h := make([]float32, x.Len())
		dev.CopyToHost(h, x)
		return h
	}
	a, b := sample(), sample()
	if !slices.Equal(a, b) {
		t.Fatal("same seed, different images")
	}
	for _, v := range a {
		if v != v || v < -3 || v > 3 {
			t.Fatalf("sample value %v outside the data range", v)
		}
	}
}
