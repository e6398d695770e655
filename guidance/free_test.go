package guidance

import (
	"math"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
	"github.com/alignkit/align/rewards"
)

// Steering keeps no device memory from one chunk of samples to the next: on the emulated
// CUDA device (whose memory, like a GPU's, the garbage collector does not reclaim), a
// second chunk sampled with every hook (reward-condition CFG, Flow-NRG, FK steering and its
// final selection), each freed as align sample frees them, leaves the device holding what
// the first left (the models' own buffers); the scorer's Free returns its buffer.
func TestSteeringFreesDeviceMemory(t *testing.T) {
	ed := cuda.NewEmulated()
	defer ed.Close()
	m := tinyDiTOn(t, ed)
	lat, err := rewards.NewLatentFromGenerator(ed, &kernels.RNG{Seed: 3}, m, rewards.LatentConfig{Blocks: 1, Dims: []string{"vq", "ta"}})
	if err != nil {
		t.Fatal(err)
	}
	lat.SetTrainable(false)
	sc, err := NewScorer(lat, "vq=1,ta=1", "")
	if err != nil {
		t.Fatal(err)
	}
	caps := []string{"red apple", "red apple", "blue car", "blue car"}
	chunk := func(seed uint64) {
		t.Helper()
		rc, err := NewRewardCFG(m, diffusion.EncodePrompts(m.Tokenizer, caps), []float32{1, float32(math.NaN())}, 2, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		nrg, err := NewNRG(lat, "ta=1", 0.1, 1, 0, caps)
		if err != nil {
			t.Fatal(err)
		}
		fk, err := NewFK(sc, caps, FKOptions{Particles: 2, Lambda: 10, Potential: PotentialMax, ResampleEvery: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		o := diffusion.SampleOptions{NumInferenceSteps: 3, GuidanceScale: 2, Seed: seed, Sampler: diffusion.SamplerEuler,
			Velocity: func(*diffusion.DiT, diffusion.Prompts) diffusion.VelocityFunc { return rc.Velocity },
			Guidance: Chain{nrg, fk}}
		x, _, err := diffusion.Sample(m, caps, o)
		if err != nil {
			t.Fatal(err)
		}
		res, err := fk.Finish(x)
		if err != nil {
			t.Fatal(err)
		}
		out := Gather(x, res.Selected)
		if fk.Evaluations == 0 || nrg.Calls == 0 {
			t.Fatalf("the hooks did not run: %d FK evaluations, %d NRG calls", fk.Evaluations, nrg.Calls)
		}
		ed.Free(x)
		ed.Free(out)
		rc.Free()
		nrg.Free()
		fk.Free()
	}
	chunk(1)
	first := ed.MemStats().InUse
	chunk(2)
	if second := ed.MemStats().InUse; second != first {
		t.Errorf("the device holds %d bytes after the second chunk, %d after the first", second, first)
	}
	sc.Free()
	if left := ed.MemStats().InUse; left >= first {
		t.Errorf("the scorer's Free left %d bytes in use, %d before", left, first)
	}
}
