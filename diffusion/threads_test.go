package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// The default image model's training step (loss and every gradient) and a guided sampling
// run give the same bits on 1, 3 and 9 threads (9: more than the batch's 2 samples times 4
// heads, so attention's backward splits each head's queries): the CPU device splits its work by index only
// (kernels' TestThreadIndependence checks it operation by operation), so a run's numbers do
// not depend on the machine's core count. OpenBLAS's products do (checked: ALIGN_BLAS=openblas
// fails this test), so it is skipped where OpenBLAS multiplies.
func TestThreadIndependentModel(t *testing.T) {
	if !kernels.BatchInvariant() {
		t.Skip("OpenBLAS multiplies here: its products depend on the number of threads (kernels.BatchInvariant)")
	}
	type result struct {
		loss   float64
		grads  [][]float32
		sample []float32
	}
	run := func(threads int) result {
		dev := kernels.NewCPU(threads)
		cfg := DefaultImageConfig()
		tok, err := BuildTokenizer([]string{"red apple", "green apple moving left", "blue car"}, 1, cfg.MaxTextLen)
		if err != nil {
			t.Fatal(err)
		}
		cfg.VocabSize = tok.VocabSize()
		m, err := NewDiT(dev, &kernels.RNG{Seed: 1}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.Tokenizer = tok
		randomizeParams(m, rand.New(rand.NewPCG(5, 6)), 0.05) // no zero gate hides a block
		const B = 2
		x0 := dev.FromHost(hostValues(rand.New(rand.NewPCG(7, 8)), B*cfg.SampleSize(), 0.5), cfg.BatchShape(B)...)
		batch := &Batch{X0: x0, Prompts: EncodePrompts(tok, []string{"red apple", "green apple moving left"})}
		nn.ZeroGrad(m.Params())
		res := NewTrainStep(dev, DefaultObjective()).ForwardBackward(m, &kernels.RNG{Seed: 9}, batch)
		var r result
		r.loss = res.Loss
		for _, p := range m.Params() {
			if p.G != nil {
				r.grads = append(r.grads, toHost(p.G))
			}
		}
		x, _, err := Sample(m, []string{"red apple", "blue car"}, SampleOptions{NumInferenceSteps: 2, GuidanceScale: 4, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		r.sample = toHost(x)
		return r
	}
	want := run(1)
	for _, threads := range []int{3, 9} {
		got := run(threads)
		name := fmt.Sprintf("%d threads", threads)
		if math.Float64bits(got.loss) != math.Float64bits(want.loss) {
			t.Errorf("%s: loss %v, %v on 1", name, got.loss, want.loss)
		}
		for i := range want.grads {
			sameValues(t, fmt.Sprintf("%s: gradient %d", name, i), got.grads[i], want.grads[i])
		}
		sameValues(t, name+": sample", got.sample, want.sample)
	}
}

// sameValues reports the first element where got and want differ in their bits.
func sameValues(t *testing.T, name string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s: element %d is %g, %g on 1 thread", name, i, got[i], want[i])
			return
		}
	}
}
