package rewards

import (
	"testing"

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
	gen, tok := synthPairGen(t)
	nat, lat := tinyRewardModels(t, ed, tok)
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
