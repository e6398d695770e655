package diffusion

import (
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
)

// Pre-training keeps no device memory from one step to the next: on the emulated CUDA
// device (whose memory, like a GPU's, the garbage collector does not reclaim), a step with
// caption dropout, its checkpoint and its sample grid leave the device holding what the
// step before left, the models' and the optimizer's own buffers.
func TestPretrainSteadyMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
	cfg := tinyPretrain(10)
	cfg.Objective.CaptionDropout = 0.3
	mc := tinyConfig(KindImage, "vq", "ta")
	tr, err := NewTrainer(ed, mc, tinyTokenizer(t), cfg, newMemData(9, mc.SampleSize(), 1), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var inUse int64
	for step := range 3 {
		tr.TrainOneStep()
		if err := tr.checkpointAndSample(); err != nil {
			t.Fatal(err)
		}
		if got := ed.MemStats().InUse; step == 2 && got != inUse {
			t.Errorf("the device holds %d bytes after the third step, %d after the second", got, inUse)
		}
		inUse = ed.MemStats().InUse
	}
}

// A text encoder whose batch grows frees the smaller buffers it replaces: on the emulated
// CUDA device, encoding batches of 1, 2 and 3 captions leaves the device holding what one
// batch of 3 leaves a fresh encoder holding. The first token buffer (h_0) was once dropped
// unfreed at every growth (512 bytes here).
func TestTextEncoderFreesDeviceMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
	tok := tinyTokenizer(t)
	caps := []string{"red apple", "blue car", "a red car"}
	held := func(sizes ...int) int64 {
		e := NewTextEncoder(ed, &kernels.RNG{Seed: 1}, tok.VocabSize(), 6, 2, tok.MaxLen, 1, 2)
		before := ed.MemStats().InUse
		for _, B := range sizes {
			kb := ed.New(B, tok.MaxLen) // no padding masked
			e.Forward(EncodePrompts(tok, caps[:B]).IDs, kb)
			ed.Free(kb)
		}
		return ed.MemStats().InUse - before
	}
	if grown, fresh := held(1, 2, 3), held(3); grown != fresh {
		t.Errorf("the encoder holds %d bytes after batches of 1, 2 and 3 captions, %d after one of 3", grown, fresh)
	}
}
