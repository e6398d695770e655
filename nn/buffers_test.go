// Tests of the buffer-ownership rules: a repeated call of one shape reuses the layer's
// storage, a smaller batch after a larger one gives the same numbers as a fresh layer, and
// a DiT block with LoRA trains only its adapters and, disabled, equals its frozen base.
//
// Test: go test ./nn -run 'Buffer|DiTBlockLoRA'
package nn

import (
	"fmt"
	"testing"

	"github.com/alignkit/align/kernels"
)

func TestBufferReuse(t *testing.T) {
	r := newHostRand(110)
	d := newTrainedDiTBlock(r, DiTBlockConfig{C: 12, NH: 3, Dc: 5})
	x, c, g := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5), r.tensor(1, 2, 7, 12)
	y1 := d.Forward(x, c, nil)
	dx1, _ := d.Backward(g)
	y2 := d.Forward(x, c, nil)
	dx2, _ := d.Backward(g)
	if y1.Mem != y2.Mem || dx1.Mem != dx2.Mem {
		t.Error("a second pass of the same shape allocated new output storage")
	}

	// Batch 1 after batch 2 runs in the front of the buffers and must equal a fresh block.
	x1, c1, g1 := x.View(0, 1, 7, 12), c.View(0, 1, 5), g.View(0, 1, 7, 12)
	fresh := NewDiTBlock(testDev, nil, DiTBlockConfig{C: 12, NH: 3, Dc: 5})
	for i, p := range fresh.Params() {
		testDev.Copy(p.W, d.Params()[i].W)
	}
	ZeroGrad(d.Params())
	yA := toHost(d.Forward(x1, c1, nil))
	dxA, dcA := d.Backward(g1)
	yB := toHost(fresh.Forward(x1, c1, nil))
	dxB, dcB := fresh.Backward(g1)
	assertClose(t, "y", yA, to64(yB), 0, 0)
	assertClose(t, "dx", toHost(dxA), to64(toHost(dxB)), 0, 0)
	assertClose(t, "dc", toHost(dcA), to64(toHost(dcB)), 0, 0)
	for i, p := range d.Params() {
		assertClose(t, "grad "+p.Name, toHost(p.G), to64(toHost(fresh.Params()[i].G)), 0, 0)
	}
}

func TestDiTBlockLoRA(t *testing.T) {
	r := newHostRand(111)
	d := newTrainedDiTBlock(r, DiTBlockConfig{C: 12, NH: 3, Dc: 5})
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	base := toHost(d.Forward(x, c, nil))
	d.EnableLoRA(r, 2, 4)
	var trainable []string
	for _, p := range d.Params() {
		if p.G != nil {
			trainable = append(trainable, p.Name)
		}
	}
	want := []string{"attn.qkv.lora_A.weight", "attn.qkv.lora_B.weight", "attn.proj.lora_A.weight", "attn.proj.lora_B.weight"}
	if len(trainable) != len(want) {
		t.Fatalf("trainable %v, want %v", trainable, want)
	}
	for i := range want {
		if trainable[i] != want[i] {
			t.Fatalf("trainable %v, want %v", trainable, want)
		}
	}
	assertClose(t, "fresh adapters = base", toHost(d.Forward(x, c, nil)), to64(base), 1e-6, 1e-6)

	r.Normal(d.Attn.QKV.LoRA.B)
	r.Normal(d.Attn.Proj.LoRA.B)
	var dx, dc *kernels.Tensor
	vars := append(paramVars(d.Params()),
		gcVar{"x", x, func() *kernels.Tensor { return dx }},
		gcVar{"c", c, func() *kernels.Tensor { return dc }})
	gradCheck(t, func() *kernels.Tensor { return d.Forward(x, c, nil) },
		func(g *kernels.Tensor) { dx, dc = d.Backward(g) }, vars, gcOpts{h: 3e-3, maxElems: 30})

	tuned := toHost(d.Forward(x, c, nil))
	d.SetLoRAEnabled(false)
	assertClose(t, "disabled = base", toHost(d.Forward(x, c, nil)), to64(base), 0, 0)
	d.SetLoRAEnabled(true)
	d.MergeLoRA()
	assertClose(t, "merged = tuned", toHost(d.Forward(x, c, nil)), to64(tuned), 1e-5, 1e-4)
}

// Blocks running in the first block's buffers (ShareForwardBuffers) compute the same outputs
// as in their own, with the modulations stacked (each block's output formed by the next
// block's first norm) and not, and allocate no forward buffers of their own; unshared again,
// they run in their own.
func TestShareForwardBuffers(t *testing.T) {
	cfg := DiTBlockConfig{C: 12, NH: 3, Dc: 5, MLPRatio: 2}
	r := newHostRand(120)
	x, c := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5)
	for _, stacked := range []bool{false, true} {
		r := newHostRand(121)
		var blocks []*DiTBlock
		for range 5 {
			blocks = append(blocks, newTrainedDiTBlock(r, cfg))
		}
		var s *AdaLNStack
		if stacked {
			s = NewAdaLNStack(testDev, blocks)
		}
		for _, b := range blocks[1:] {
			b.ShareForwardBuffers(blocks[0])
		}
		got := toHost(ForwardBlocks(s, blocks, x, c, nil))
		for k, b := range blocks[1:] {
			for i, buf := range b.forwardBuffers() {
				if buf.t != nil {
					t.Errorf("stacked %v: block %d allocated its forward buffer %d while sharing", stacked, k+1, i)
				}
			}
		}
		for _, b := range blocks {
			b.ShareForwardBuffers(nil)
		}
		want := toHost(ForwardBlocks(s, blocks, x, c, nil))
		assertClose(t, fmt.Sprintf("stacked %v: shared buffers' output", stacked), got, to64(want), 0, 0)
		if blocks[4].hm.t == nil {
			t.Errorf("stacked %v: an unshared block did not run in its own buffers", stacked)
		}
	}
}

// Blocks running their backward in the first block's buffers (ShareBackwardBuffers, as a DiT
// sets them) give the same input gradient, conditioning gradient and parameter gradients, bit
// for bit, as blocks in their own, with the modulations stacked (each block's output gate
// formed by the next block's first norm) and not; they allocate no backward buffers of their
// own.
func TestShareBackwardBuffers(t *testing.T) {
	cfg := DiTBlockConfig{C: 12, NH: 3, Dc: 5, MLPRatio: 2}
	r := newHostRand(122)
	x, c, g := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5), r.tensor(1, 2, 7, 12)
	for _, stacked := range []bool{false, true} {
		type result struct {
			dx, dc []float32
			grads  [][]float32
		}
		run := func(share bool) result {
			r := newHostRand(123)
			var blocks []*DiTBlock
			for k := range 5 {
				blocks = append(blocks, newTrainedDiTBlock(r, cfg))
				if share && k > 0 {
					blocks[k].ShareBackwardBuffers(blocks[0])
				}
			}
			var s *AdaLNStack
			if stacked {
				s = NewAdaLNStack(testDev, blocks)
			}
			ps := stackParams(s, blocks)
			ZeroGrad(ps)
			ForwardBlocks(s, blocks, x, c, nil)
			dc := testDev.New(2, 5)
			res := result{dx: toHost(BackwardBlocks(s, blocks, g, dc)), dc: toHost(dc)}
			for _, p := range ps {
				res.grads = append(res.grads, toHost(p.G))
			}
			if share {
				for k, b := range blocks[1:] {
					for i, buf := range b.backwardBuffers() {
						if buf.t != nil {
							t.Errorf("stacked %v: block %d allocated its backward buffer %d while sharing", stacked, k+1, i)
						}
					}
				}
			}
			return res
		}
		got, want := run(true), run(false)
		name := fmt.Sprintf("stacked %v: shared backward buffers' ", stacked)
		assertClose(t, name+"dx", got.dx, to64(want.dx), 0, 0)
		assertClose(t, name+"dc", got.dc, to64(want.dc), 0, 0)
		for i := range want.grads {
			assertClose(t, fmt.Sprintf("%sgradient %d", name, i), got.grads[i], to64(want.grads[i]), 0, 0)
		}
	}
}
