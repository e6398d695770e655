// Tests of the embedded video models: the generator moves the prompted emoji in the prompted
// direction, and the video reward model prefers real fixture clips to their corrupted copies.
// Run: go test ./assets -run 'Video'
package assets

import (
	"slices"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/diffusion/dataset"
	"github.com/alignkit/align/diffusion/eval"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
)

// The default video generator: 8 frames of 32x32, its prompts' words known, and a sample of
// each of the four axis directions travels in that direction (the measure of align retrieval,
// which scored 200 of 200 at 28 steps; here 12 steps, all four must hit).
func TestVideoBase(t *testing.T) {
	dev := kernels.NewCPU(0)
	m, err := diffusion.LoadDiTFromBytes(dev, "video-base.safetensors", VideoBase)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config
	if c.Kind != diffusion.KindVideo || c.Frames != dataset.Frames || c.ImageSize != dataset.ImageSize {
		t.Fatalf("config %+v, want a video model of %d frames of %dx%d", c, dataset.Frames, dataset.ImageSize, dataset.ImageSize)
	}
	prompts := []string{"a red apple moving left", "a red apple moving right", "a rocket moving up", "a rocket moving down"}
	motions := []dataset.Motion{dataset.MoveLeft, dataset.MoveRight, dataset.MoveUp, dataset.MoveDown}
	for _, p := range prompts {
		if _, _, unk, _ := m.Tokenizer.Encode(p); len(unk) > 0 {
			t.Errorf("prompt %q: unknown words %v", p, unk)
		}
	}
	x, _, err := diffusion.Sample(m, prompts, diffusion.SampleOptions{NumInferenceSteps: 12, GuidanceScale: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	h := make([]float32, x.Len())
	dev.CopyToHost(h, x)
	n := len(h) / len(prompts)
	for i, p := range prompts {
		e := eval.EstimateMotion(h[i*n:(i+1)*n], dataset.Frames, 3, dataset.ImageSize, dataset.ImageSize)
		t.Logf("%q: travel %.1f px at %.0f°", p, e.Travel, e.Angle)
		if !eval.DirectionHit(e, motions[i]) {
			t.Errorf("%q: the sample moved %.1f px at %.0f°, not %s", p, e.Travel, e.Angle, motions[i])
		}
	}
}

// fixtureClips builds 26 clips (two of each motion) from the dataset fixture's sprites.
func fixtureClips(t *testing.T) *dataset.VideoDataset {
	t.Helper()
	v, err := dataset.LoadVideo(buildFixture(t, 2*len(dataset.Motions)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The default video reward model: dimensions vq, ta, mq; on real fixture clips, the clip beats
// its frozen and its shuffled copy in motion quality and its blurred copy in visual quality,
// for at least 80% of the clips (held-out accuracy: mq 95.5%, vq 99.8%).
func TestRewardVideoOnFixture(t *testing.T) {
	dev := kernels.NewCPU(0)
	m := loadNative(t, dev, "reward-video.safetensors", RewardVideo, "vq", "ta", "mq")
	v := fixtureClips(t)
	score := func(clips [][]uint8, prompt string) [][]float32 {
		px := make([]float32, len(clips)*dataset.ClipBytes)
		for i, cl := range clips {
			dataset.ToUnit(px[i*dataset.ClipBytes:(i+1)*dataset.ClipBytes], cl)
		}
		s, err := m.Score(rewards.Batch{Pixels: dev.FromHost(px, len(clips), dataset.Frames, 3, dataset.ImageSize, dataset.ImageSize),
			Prompts: slices.Repeat([]string{prompt}, len(clips))})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const vq, mq = 0, 2
	checks := []struct {
		name string
		dim  int
		bad  func(clip []uint8, seed uint64)
	}{
		{"frozen", mq, func(c []uint8, s uint64) {
			rewards.CorruptClip(c, dataset.Frames, dataset.ImageSize, dataset.ImageSize, rewards.Corruption{Kind: rewards.CorruptFreeze, Level: 3}, s)
		}},
		{"shuffled", mq, func(c []uint8, s uint64) {
			rewards.CorruptClip(c, dataset.Frames, dataset.ImageSize, dataset.ImageSize, rewards.Corruption{Kind: rewards.CorruptShuffle, Level: 3}, s)
		}},
		{"blurred", vq, func(c []uint8, s uint64) {
			rewards.DegradeClip(c, dataset.Frames, dataset.ImageSize, dataset.ImageSize, rewards.Corruption{Kind: rewards.DegradeBlur, Level: 2}, s)
		}},
	}
	for _, ck := range checks {
		wins, n := 0, 0
		for i, cl := range v.Clips {
			if cl.Motion == dataset.Bounce && ck.name == "shuffled" {
				continue // a bounce's frames shuffled can still look like a bounce
			}
			bad := slices.Clone(v.Clip(i))
			ck.bad(bad, uint64(i+1))
			if slices.Equal(bad, v.Clip(i)) {
				continue // the corruption left this clip unchanged
			}
			s := score([][]uint8{v.Clip(i), bad}, cl.Caption)
			n++
			if s[0][ck.dim] > s[1][ck.dim] {
				wins++
			}
		}
		t.Logf("%s: the real clip wins %d of %d", ck.name, wins, n)
		if n < len(v.Clips)/2 || wins < n*8/10 {
			t.Errorf("%s: the real clip wins %d of %d, want >= 80%% of at least %d", ck.name, wins, n, len(v.Clips)/2)
		}
	}
}
