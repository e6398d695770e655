package nn

import (
	"fmt"
	"slices"
	"testing"

	"github.com/alignkit/align/kernels"
)

// stackedBlocks returns three trained blocks drawn from seed, twice: as they are, and
// with their modulation weights taken over by a stack.
func stackedBlocks(seed uint64) (plain, stacked []*DiTBlock, s *AdaLNStack) {
	cfg := DiTBlockConfig{C: 12, NH: 3, Dc: 5, MLPRatio: 2}
	for _, bs := range []*[]*DiTBlock{&plain, &stacked} {
		r := newHostRand(seed)
		for range 3 {
			*bs = append(*bs, newTrainedDiTBlock(r, cfg))
		}
	}
	return plain, stacked, NewAdaLNStack(testDev, stacked)
}

// stackForward runs the stacked blocks from x under c (ForwardBlocks: each block's output
// formed in the next one's first LayerNorm).
func stackForward(s *AdaLNStack, blocks []*DiTBlock, x, c, kb *kernels.Tensor) *kernels.Tensor {
	return ForwardBlocks(s, blocks, x, c, kb)
}

// stackBackward is stackForward's backward: dx and dc.
func stackBackward(s *AdaLNStack, blocks []*DiTBlock, dout *kernels.Tensor) (dx, dc *kernels.Tensor) {
	dc = testDev.New(dout.Dim(0), s.Dc)
	return BackwardBlocks(s, blocks, dout, dc), dc
}

// stackParams lists the blocks' parameters as DiT names them ("k.attn...",
// "k.adaLN_modulation.1.weight"), from the stack s or (nil) from the blocks.
func stackParams(s *AdaLNStack, blocks []*DiTBlock) []Param {
	var ps []Param
	for k, b := range blocks {
		ps = append(ps, prefixed(fmt.Sprint(k), BlockParams(s, b, k))...)
	}
	return ps
}

// A stack computes what the blocks' own Forward and Backward with c compute: outputs, dx,
// dc (the blocks' dc summed) and every parameter gradient under the same names.
func TestAdaLNStackMatchesBlocks(t *testing.T) {
	plain, stacked, s := stackedBlocks(71)
	r := newHostRand(72)
	x, c, g := r.tensor(1, 2, 7, 12), r.tensor(1, 2, 5), r.tensor(1, 2, 7, 12)
	kb := paddingBias(2, 7, []int{2, 0})

	h := x
	for _, b := range plain {
		h = b.Forward(h, c, kb)
	}
	want := to64(toHost(h))
	wantDC := make([]float64, c.Len())
	dh := g
	for k := len(plain) - 1; k >= 0; k-- {
		var dc *kernels.Tensor
		dh, dc = plain[k].Backward(dh)
		for i, v := range toHost(dc) {
			wantDC[i] += float64(v)
		}
	}
	wantDX := to64(toHost(dh))

	assertClose(t, "out", toHost(stackForward(s, stacked, x, c, kb)), want, 1e-6, 1e-5)
	dx, dc := stackBackward(s, stacked, g)
	assertClose(t, "dx", toHost(dx), wantDX, 1e-6, 1e-5)
	assertClose(t, "dc", toHost(dc), wantDC, 1e-5, 1e-5)

	var ref []Param
	for k, b := range plain {
		ref = append(ref, prefixed(fmt.Sprint(k), b.Params())...)
	}
	got := stackParams(s, stacked)
	names := func(ps []Param) []string {
		var n []string
		for _, p := range ps {
			n = append(n, p.Name)
		}
		return n
	}
	if !slices.Equal(names(got), names(ref)) {
		t.Fatalf("parameter names %v, want %v", names(got), names(ref))
	}
	for i, p := range ref {
		assertClose(t, p.Name, toHost(got[i].W), to64(toHost(p.W)), 0, 0)
		assertClose(t, p.Name+" gradient", toHost(got[i].G), to64(toHost(p.G)), 1e-5, 1e-5)
	}

	// A second pass gives the same dx and dc: every block's modulation gradient starts from
	// zero again (BackwardBlocks zeroes them all, BackwardMods adds to them).
	stackForward(s, stacked, x, c, kb)
	dx, dc = stackBackward(s, stacked, g)
	assertClose(t, "second pass dx", toHost(dx), wantDX, 1e-6, 1e-5)
	assertClose(t, "second pass dc", toHost(dc), wantDC, 1e-5, 1e-5)
}

func TestAdaLNStackGrad(t *testing.T) {
	_, blocks, s := stackedBlocks(73)
	r := newHostRand(74)
	x, c := r.tensor(1, 2, 5, 12), r.tensor(1, 2, 5)
	kb := paddingBias(2, 5, []int{1, 0})
	var dx, dc *kernels.Tensor
	vars := append(paramVars(stackParams(s, blocks)),
		gcVar{"x", x, func() *kernels.Tensor { return dx }},
		gcVar{"c", c, func() *kernels.Tensor { return dc }})
	gradCheck(t, func() *kernels.Tensor { return stackForward(s, blocks, x, c, kb) },
		func(g *kernels.Tensor) { dx, dc = stackBackward(s, blocks, g) }, vars, gcOpts{h: 3e-3, maxElems: 12})
}

// Freezing the stack leaves its parameters without gradients; a block with its modulation
// in a stack refuses the plain Forward.
func TestAdaLNStackFreeze(t *testing.T) {
	_, blocks, s := stackedBlocks(75)
	s.SetTrainable(false)
	for _, p := range s.Params(1) {
		if p.G != nil {
			t.Errorf("%s has a gradient after SetTrainable(false)", p.Name)
		}
	}
	s.SetTrainable(true)
	if ps := s.Params(2); ps[0].G == nil || ps[1].G == nil {
		t.Error("no gradients after SetTrainable(true)")
	}
	defer func() {
		if recover() == nil {
			t.Error("Forward of a stacked block did not panic")
		}
	}()
	r := newHostRand(76)
	blocks[0].Forward(r.tensor(1, 1, 3, 12), r.tensor(1, 1, 5), nil)
}

// Unstack hands every block its rows back, weights and gradients, and the blocks then
// compute (ForwardBlocks and BackwardBlocks without a stack) what the stack computed.
func TestAdaLNStackUnstack(t *testing.T) {
	_, blocks, s := stackedBlocks(77)
	r := newHostRand(78)
	x, c, g := r.tensor(1, 2, 6, 12), r.tensor(1, 2, 5), r.tensor(1, 2, 6, 12)
	kb := paddingBias(2, 6, []int{0, 3})
	dc := testDev.New(2, 5)
	out := to64(toHost(ForwardBlocks(s, blocks, x, c, kb)))
	dx := to64(toHost(BackwardBlocks(s, blocks, g, dc)))
	dcWant := to64(toHost(dc))
	var before [][]float64
	for _, p := range stackParams(s, blocks) {
		before = append(before, to64(toHost(p.W)), to64(toHost(p.G)))
	}

	s.Unstack(blocks)
	after := stackParams(nil, blocks)
	for i, p := range after {
		assertClose(t, p.Name, toHost(p.W), before[2*i], 0, 0)
		assertClose(t, p.Name+" gradient", toHost(p.G), before[2*i+1], 0, 0)
	}
	testDev.Fill(dc, 0)
	assertClose(t, "out", toHost(ForwardBlocks(nil, blocks, x, c, kb)), out, 1e-6, 1e-5)
	assertClose(t, "dx", toHost(BackwardBlocks(nil, blocks, g, dc)), dx, 1e-6, 1e-5)
	assertClose(t, "dc", toHost(dc), dcWant, 1e-5, 1e-5)
}
