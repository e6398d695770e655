package dpo

import (
	"testing"

	"github.com/alignkit/align/kernels/cuda"
)

// Fine-tuning keeps no device memory from one optimizer step to the next: on the emulated
// CUDA device (whose memory, like a GPU's, the garbage collector does not reclaim), a
// Flow-DPO step (the LoRA reference's pass, the policy's forward and backward, AdamW, the
// EMA) with its checkpoint (the adapters and the merged model written from an export copy
// of the policy) leaves the device holding what the step before left. The export copy was
// once a device model that nothing freed: 34,816 bytes per checkpoint here, a whole model
// per checkpoint on a real one.
func TestFinetuneSteadyMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
	m := tinyModelOn(t, ed, 1)
	cfg := tinyConfig(MethodDPO, 10)
	cfg.EMADecay = 0.9
	tr, err := NewTrainer(ed, m, cfg, memPairs(6, m.Config.SampleSize()), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr.MergeLoRA = true
	var inUse int64
	for step := range 3 {
		tr.TrainOneStep()
		if _, err := tr.SaveCheckpoint(); err != nil {
			t.Fatal(err)
		}
		if got := ed.MemStats().InUse; step == 2 && got != inUse {
			t.Errorf("the device holds %d bytes after the third step, %d after the second", got, inUse)
		}
		inUse = ed.MemStats().InUse
	}
}
