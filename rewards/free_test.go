package rewards

import (
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
)

// Evaluation keeps no device memory from one call to the next: on the emulated CUDA device
// (whose memory, like a GPU's, the garbage collector does not reclaim), Evaluate and
// EvaluateLatent (and with them Calibrate and CalibrateLatent, which score pairs the same
// way) leave the device holding what the call before left, the models' own buffers. Three
// pairs in batches of four samples make a full chunk and a smaller last one, whose pixel
// tensors the scoring loops once dropped unfreed (73,728 bytes per call here).
func TestEvaluateFreesDeviceMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
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
	nat, err := NewNative(ed, &kernels.RNG{Seed: 1}, NativeConfig{Kind: KindImage, ImageSize: 32, Channels: 3, Frames: 1, PatchSize: 8,
		TubeletFrames: 1, Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2, Dims: []string{DimVQ, DimTA}}, tok)
	if err != nil {
		t.Fatal(err)
	}
	nat.SetTrainable(false)
	gcfg := tinyGeneratorConfig(KindImage, 32, tok)
	gcfg.PatchSize, gcfg.Depth, gcfg.RewardDims = 8, 1, []string{}
	g, err := diffusion.NewDiT(ed, &kernels.RNG{Seed: 2}, gcfg)
	if err != nil {
		t.Fatal(err)
	}
	g.Tokenizer = tok
	lat, err := NewLatentFromGenerator(ed, &kernels.RNG{Seed: 3}, g, LatentConfig{Blocks: 1, Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	lat.SetTrainable(false)
	for _, c := range []struct {
		name string
		eval func() (*EvalReport, error)
	}{
		{"native", func() (*EvalReport, error) { return Evaluate(nat, gen, SplitHeldOut, 3, 5, 4) }},
		{"latent", func() (*EvalReport, error) { return EvaluateLatent(lat, gen, SplitHeldOut, 3, 5, 4) }},
	} {
		var inUse int64
		for call := range 3 {
			if _, err := c.eval(); err != nil {
				t.Fatal(err)
			}
			if got := ed.MemStats().InUse; call == 2 && got != inUse {
				t.Errorf("%s: the device holds %d bytes after the third call, %d after the second", c.name, got, inUse)
			}
			inUse = ed.MemStats().InUse
		}
	}
}
