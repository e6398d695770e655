package dpo

import (
	"fmt"
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/kernels/cuda"
)

// Fine-tuning gives the CPU's numbers on the CUDA device (emulated, FP32 products): Flow-DPO
// with LoRA (the reference: the adapters off) and with full fine-tuning (a frozen copy),
// and Flow-RWR, two optimizer steps each from the same weights, data and seed: the losses and
// gradient norms agree to 1e-4 (relative), and each trained tensor's last gradient to 1e-3
// in the relative L2 norm. The weights are not compared: AdamW's normalised step turns the
// rounding noise of a gradient that is zero in exact arithmetic (the attention keys' bias,
// to which softmax is blind) into steps of the learning rate, on either device. The
// device's own operations are checked against the CPU one by one in kernels/cuda; this is
// the fine-tuning loop around them (the reference passes, gradients cleared by ZeroGrad and
// accumulated, clipping, AdamW).
func TestFinetuneMatchesCPU(t *testing.T) {
	for _, c := range []struct {
		method string
		full   bool
	}{{MethodDPO, false}, {MethodDPO, true}, {MethodRWR, false}} {
		name := fmt.Sprintf("%s full=%v", c.method, c.full)
		run := func(dev kernels.Device) ([]LogEntry, map[string][]float32) {
			m := tinyModelOn(t, dev, 1)
			cfg := tinyConfig(c.method, 2)
			cfg.FullFinetune = c.full
			data := memPairs(6, m.Config.SampleSize())
			if c.method == MethodRWR {
				data = memItems(6, m.Config.SampleSize())
			}
			tr, err := NewTrainer(dev, m, cfg, data, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			var log []LogEntry
			for range 2 {
				log = append(log, tr.TrainOneStep())
			}
			gs := map[string][]float32{}
			for _, p := range tr.Opt.Params {
				gs[p.Name] = hostOf(p.G)
			}
			return log, gs
		}
		ed := cuda.NewEmulated()
		gotLog, gotG := run(ed)
		wantLog, wantG := run(testDev)
		ed.Close()
		rel := func(a, b float64) float64 { return math.Abs(a-b) / max(math.Abs(b), 1e-12) }
		for i := range wantLog {
			if r := rel(gotLog[i].Loss, wantLog[i].Loss); r > 1e-4 {
				t.Errorf("%s step %d: loss %v on the CUDA device, %v on the CPU", name, i+1, gotLog[i].Loss, wantLog[i].Loss)
			}
			if r := rel(gotLog[i].GradNorm, wantLog[i].GradNorm); r > 1e-4 {
				t.Errorf("%s step %d: gradient norm %v on the CUDA device, %v on the CPU", name, i+1, gotLog[i].GradNorm, wantLog[i].GradNorm)
			}
		}
		if len(gotG) != len(wantG) || len(wantG) == 0 {
			t.Fatalf("%s: %d trained tensors on the CUDA device, %d on the CPU", name, len(gotG), len(wantG))
		}
		for n, want := range wantG {
			got := gotG[n]
			var d2, w2 float64
			for j := range want {
				d := float64(got[j] - want[j])
				d2, w2 = d2+d*d, w2+float64(want[j])*float64(want[j])
			}
			if r := math.Sqrt(d2 / max(w2, 1e-30)); r > 1e-3 {
				t.Errorf("%s: %s's gradient differs from the CPU's by %.3g (relative L2)", name, n, r)
			}
		}
	}
}
