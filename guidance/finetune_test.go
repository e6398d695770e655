// Tests of fine-tune guidance: scale 0 is the base's guided velocity and 1 the fine-tuned
// model's, bit for bit; 2.5 is 2.5 v_ft - 1.5 v_base; models of other architectures and a
// non-finite scale are refused.
//
// Test: go test ./guidance -run Finetune
package guidance

import (
	"math"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

func TestFinetuneGuidance(t *testing.T) {
	base, ft := tinyDiT(t), tinyDiT(t)
	r := &kernels.RNG{Seed: 9}
	for _, p := range ft.Params() { // the "fine-tuning": every weight moved a little
		d := dev.New(p.W.Shape...)
		r.Normal(d)
		dev.Axpby(p.W, 1, p.W, 0.05, d)
		dev.Free(d)
	}
	prompts := diffusion.EncodePrompts(base.Tokenizer, []string{"red apple", "blue car"})
	x := dev.New(base.Config.BatchShape(2)...)
	r.Normal(x)
	const cfg, sigma = 3.0, 0.7
	alone := func(m *diffusion.DiT) []float32 {
		g := diffusion.NewGuidedVelocity(m, prompts, nil, cfg)
		defer g.Free()
		return host(g.Velocity(x, sigma))
	}
	vb, vf := alone(base), alone(ft)
	moved := 0.0
	for i := range vb {
		moved = max(moved, math.Abs(float64(vf[i]-vb[i])))
	}
	if moved < 1e-3 {
		t.Fatalf("the fine-tuned velocity is within %g of the base's: the test would not see them swapped", moved)
	}
	for _, w := range []float64{0, 1, 2.5} {
		g, err := NewFinetuneGuidance(base, ft, prompts, cfg, w)
		if err != nil {
			t.Fatal(err)
		}
		got := host(g.Velocity(x, sigma))
		g.Free()
		for i := range got {
			want := float64(vb[i]) + w*float64(vf[i]-vb[i])
			exact := w == 0 && got[i] == vb[i] || w == 1 && got[i] == vf[i]
			if (w == 0 || w == 1) && !exact || math.Abs(float64(got[i])-want) > 1e-5*(1+math.Abs(want)) {
				t.Fatalf("scale %g: v[%d] = %v, want %v (base %v, fine-tuned %v)", w, i, got[i], want, vb[i], vf[i])
			}
		}
	}

	other := tinyDiT(t)
	other.Config.Width = 16
	if _, err := NewFinetuneGuidance(other, ft, prompts, cfg, 2); err == nil || !strings.Contains(err.Error(), "another model") {
		t.Errorf("a base of another architecture: %v", err)
	}
	if _, err := NewFinetuneGuidance(base, ft, prompts, cfg, math.Inf(1)); err == nil {
		t.Error("an infinite scale accepted")
	}
}
