package rewards

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
)

// The reward models give the CPU's numbers on the CUDA device (emulated, FP32 products): a
// native image model and a noise-aware latent one, built from the same seeds on both
// devices, score a batch to 1e-4 (relative to the largest score) and give the pixels'
// gradient of a weighted sum of the scores (what Flow-NRG follows) to 1e-3 in the relative
// L2 norm. The device's operations are checked one by one in kernels/cuda; this is the
// models around them (patching, the text tower, pooling, the heads, their backward).
func TestRewardModelsMatchCPU(t *testing.T) {
	_, tok := synthPairGen(t)
	type model interface {
		Score(Batch) ([][]float32, error)
		ScoreAndGrad(Batch, []float64) ([][]float32, *kernels.Tensor, error)
	}
	build := map[string]func(dev kernels.Device) model{
		"native": func(dev kernels.Device) model { nat, _ := tinyRewardModels(t, dev, tok); return nat },
		"latent": func(dev kernels.Device) model { _, lat := tinyRewardModels(t, dev, tok); return lat },
	}
	const B = 3
	r := rand.New(rand.NewPCG(4, 4))
	pix := make([]float32, B*3*32*32)
	for i := range pix {
		pix[i] = float32(max(-1, min(1, r.NormFloat64()/2)))
	}
	prompts := []string{"grinning face", "a red apple", "an unknown word"}
	weights := []float64{0.7, 1.3}
	for name, mk := range build {
		run := func(dev kernels.Device) ([][]float32, []float32) {
			b := Batch{Pixels: dev.FromHost(pix, B, 3, 32, 32), Prompts: prompts}
			if name == "latent" {
				b.Timesteps = []float32{0.1, 0.5, 0.9}
			}
			m := mk(dev)
			s, err := m.Score(b)
			if err != nil {
				t.Fatal(err)
			}
			_, g, err := m.ScoreAndGrad(b, weights)
			if err != nil {
				t.Fatal(err)
			}
			h := make([]float32, g.Len())
			dev.CopyToHost(h, g)
			return s, h
		}
		ed := cuda.NewEmulated()
		gotS, gotG := run(ed)
		ed.Close()
		wantS, wantG := run(kernels.NewCPU(0))
		big := 0.0
		for _, row := range wantS {
			for _, v := range row {
				big = max(big, math.Abs(float64(v)))
			}
		}
		for i := range wantS {
			for j := range wantS[i] {
				if diff := math.Abs(float64(gotS[i][j] - wantS[i][j])); diff > 1e-4*big {
					t.Errorf("%s: score [%d][%d] = %v on the CUDA device, %v on the CPU", name, i, j, gotS[i][j], wantS[i][j])
				}
			}
		}
		var d2, w2 float64
		for i := range wantG {
			diff := float64(gotG[i] - wantG[i])
			d2, w2 = d2+diff*diff, w2+float64(wantG[i])*float64(wantG[i])
		}
		if w2 == 0 || math.Sqrt(d2/w2) > 1e-3 {
			t.Errorf("%s: the pixels' gradient differs from the CPU's by %.3g (relative L2, |g|^2 = %g)", name, math.Sqrt(d2/max(w2, 1e-30)), w2)
		}
	}
}

// synthPairGen is the synthetic data's vq,ta pairs (the default training config's) and a
// tokenizer of their captions.
func synthPairGen(t *testing.T) (*PairGen, *diffusion.Tokenizer) {
	t.Helper()
	d, _ := synthData(false)
	cfg := DefaultTrainConfig()
	gen, err := NewPairGen(d, nil, cfg.PairConfig([]string{DimVQ, DimTA}))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := BuildTokenizer(gen, 8)
	if err != nil {
		t.Fatal(err)
	}
	return gen, tok
}

// tinyRewardModels builds, frozen, a native image reward model of width 16 on 32x32 images
// and a latent one on a one-block generator, each from fixed seeds, on dev.
func tinyRewardModels(t *testing.T, dev kernels.Device, tok *diffusion.Tokenizer) (*Native, *LatentReward) {
	t.Helper()
	nat, err := NewNative(dev, &kernels.RNG{Seed: 1}, NativeConfig{Kind: KindImage, ImageSize: 32, Channels: 3, Frames: 1,
		PatchSize: 8, TubeletFrames: 1, Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2,
		Dims: []string{DimVQ, DimTA}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	nat.SetTrainable(false)
	gcfg := tinyGeneratorConfig(KindImage, 32, tok)
	gcfg.PatchSize, gcfg.Depth, gcfg.RewardDims = 8, 1, []string{}
	g, err := diffusion.NewDiT(dev, &kernels.RNG{Seed: 2}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Tokenizer = tok
	lat, err := NewLatentFromGenerator(dev, &kernels.RNG{Seed: 3}, g, LatentConfig{Blocks: 1, Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	lat.SetTrainable(false)
	return nat, lat
}
