// AdaLNStack: the adaLN modulations of a stack of DiT blocks that share one conditioning
// vector, computed in one product.
//
// Every block k of a DiT maps the same c (B,Dc) to its modulation SiLU(c) Wada_k^T + bada_k
// (B,6C). Stacking the weights row-wise, Wada = [Wada_0; ...; Wada_{L-1}] (L*6C, Dc), gives
// all of them at once:
//
//	mod  = SiLU(c) Wada^T + bada        (B, L*6C), one product instead of L, one SiLU
//	mods = mod permuted to (L*6, B, C)   block k's six chunks at rows [6k, 6k+6)
//
// and backward, with dmods (L*6,B,C) from the blocks' BackwardMods:
//
//	dmod = dmods permuted to (B, L*6C);  dsc = dmod Wada (the sum over the blocks, in the
//	product);  dWada += dmod^T SiLU(c);  dbada += sum_b dmod;  dc = silu'(c) ⊙ dsc.
//
// Each block's slice of the product is its own modulation, so a stack computes what the
// blocks' Forward with c would; the products of L*6C outputs run far better on a GPU than
// L small ones (a DiT-B block's is 32 x 4608 x 768). The blocks' parameters keep their names:
// Params(k) lists views of block k's rows as "weight" and "bias" (DiT's
// "blocks.k.adaLN_modulation.1.*").
//
// Test: go test ./nn -run AdaLNStack

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// AdaLNStack holds the modulation weights of blocks whose Ada it took over.
type AdaLNStack struct {
	L, C, Dc int     // blocks, width, conditioning width
	Ada      *Linear // Dc -> L*6C; rows [6kC, 6(k+1)C) are block k's

	dev   kernels.Device
	B     int        // batch of the last Forward
	mods  modulation // (L*6,B,C) from c
	dmods buffer     // (L*6,B,C)
}

// NewAdaLNStack takes over the modulation weights of blocks (all of one width and
// conditioning width): they are copied into the stack's Ada, and each block's Ada is freed
// and set to nil (the blocks then take ForwardMods and BackwardMods). The stack's weights
// are trainable.
func NewAdaLNStack(dev kernels.Device, blocks []*DiTBlock) *AdaLNStack {
	if len(blocks) == 0 {
		panic("nn: NewAdaLNStack without blocks")
	}
	C, Dc := blocks[0].C, blocks[0].Dc
	s := &AdaLNStack{L: len(blocks), C: C, Dc: Dc, dev: dev, Ada: NewLinear(dev, nil, Dc, len(blocks)*6*C, true)}
	for k, b := range blocks {
		if b.C != C || b.Dc != Dc || b.Ada == nil {
			panic(fmt.Sprintf("nn: NewAdaLNStack: block %d (width %d, conditioning %d) in a stack of %d, %d", k, b.C, b.Dc, C, Dc))
		}
		w, bias := s.rows(k)
		dev.Copy(w, b.Ada.Weight)
		dev.Copy(bias, b.Ada.Bias)
		b.Ada.SetTrainable(false)
		dev.Free(b.Ada.Weight)
		dev.Free(b.Ada.Bias)
		b.Ada = nil
	}
	return s
}

// rows returns views of block k's weight (6C,Dc) and bias (6C) in the stack's.
func (s *AdaLNStack) rows(k int) (w, bias *kernels.Tensor) {
	n := 6 * s.C
	return s.Ada.Weight.View(k*n*s.Dc, n, s.Dc), s.Ada.Bias.View(k*n, n)
}

// Params lists block k's "weight" and "bias": views of the stack's parameters and, where
// trainable, of their gradients. Take them again after SetTrainable.
func (s *AdaLNStack) Params(k int) []Param {
	n := 6 * s.C
	w, bias := s.rows(k)
	ps := []Param{{Name: "weight", W: w}, {Name: "bias", W: bias}}
	if s.Ada.DWeight != nil {
		ps[0].G = s.Ada.DWeight.View(k*n*s.Dc, n, s.Dc)
		ps[1].G = s.Ada.DBias.View(k*n, n)
	}
	return ps
}

// BlockParams lists block b (block k of stack, or of no stack: nil) with its modulation:
// b.Params() and "adaLN_modulation.1.*", as a block with its own Ada lists them.
func BlockParams(stack *AdaLNStack, b *DiTBlock, k int) []Param {
	if stack == nil {
		return b.Params()
	}
	return append(b.Params(), prefixed("adaLN_modulation.1", stack.Params(k))...)
}

// ForwardBlocks runs blocks in sequence from h (B,T,C) under the conditioning c (B,Dc):
// their modulations from stack, in one product, each block's output formed in the next
// block's first LayerNorm pass (gatedOut); with a nil stack each block's Forward.
func ForwardBlocks(stack *AdaLNStack, blocks []*DiTBlock, h, c, keyBias *kernels.Tensor) *kernels.Tensor {
	if stack == nil {
		for _, b := range blocks {
			h = b.Forward(h, c, keyBias)
		}
		return h
	}
	stack.Forward(c)
	var prev *gatedOut
	for k, b := range blocks {
		g := b.forwardMods(h, prev, stack.Mods(k), keyBias)
		prev = &g
	}
	return prev.form(stack.dev)
}

// BackwardBlocks is ForwardBlocks' backward: it returns the gradient of h and adds that of c,
// summed over the blocks, to dc (B,Dc). A nil dc leaves c's gradient out (the caller has
// nothing to learn from it), and with it the stack's backward where the stack is frozen.
func BackwardBlocks(stack *AdaLNStack, blocks []*DiTBlock, dh, dc *kernels.Tensor) *kernels.Tensor {
	dev := dh.Dev
	if stack != nil {
		dev.Fill(stack.dmods.get(dev, 6*stack.L, stack.B, stack.C), 0) // every block's DMods at once
	}
	for k := len(blocks) - 1; k >= 0; k-- {
		if stack == nil {
			var dck *kernels.Tensor
			dh, dck = blocks[k].Backward(dh)
			if dc != nil {
				dev.Add(dc, dc, dck)
			}
		} else {
			// Block k's first norm forms the output gate's backward of block k-1 (so block
			// k-1 starts with it done) as it writes dh.
			var prev *gateGrad
			if k > 0 {
				g := blocks[k-1].outGate(stack.DMods(k - 1))
				prev = &g
			}
			dh = blocks[k].backwardMods(dh, stack.DMods(k), k < len(blocks)-1, prev)
		}
	}
	switch {
	case stack != nil && dc != nil:
		dev.Add(dc, dc, stack.Backward())
	case stack != nil && stack.learns():
		stack.Backward() // its weights' gradients; c's is not wanted
	}
	return dh
}

// Unstack gives every block its own modulation layer again, with its rows of the stack's
// weights (and gradients, where trainable; frozen where the stack is), and frees the stack's:
// a LoRA adapter on a block's modulation needs a layer of its own. The stack is unusable
// afterwards.
func (s *AdaLNStack) Unstack(blocks []*DiTBlock) {
	if len(blocks) != s.L {
		panic(fmt.Sprintf("nn: AdaLNStack.Unstack: %d blocks for a stack of %d", len(blocks), s.L))
	}
	for k, b := range blocks {
		b.Ada = NewLinear(s.dev, nil, s.Dc, 6*s.C, true)
		for i, p := range s.Params(k) {
			dst := b.Ada.Params()[i]
			s.dev.Copy(dst.W, p.W)
			if p.G != nil {
				s.dev.Copy(dst.G, p.G)
			}
		}
		b.Ada.SetTrainable(s.Ada.Trainable())
	}
	s.Ada.SetTrainable(false)
	s.dev.Free(s.Ada.Weight)
	s.dev.Free(s.Ada.Bias)
	s.Ada = nil
}

// SetTrainable freezes (false) or unfreezes the stacked weights.
func (s *AdaLNStack) SetTrainable(on bool) { s.Ada.SetTrainable(on) }

// learns reports whether the stack's weights have gradients.
func (s *AdaLNStack) learns() bool { return s.Ada.Trainable() }

// Forward computes every block's modulation from c (B,Dc); Mods(k) returns block k's.
func (s *AdaLNStack) Forward(c *kernels.Tensor) {
	B := c.Dim(0)
	mustShape("AdaLNStack.Forward conditioning", c, B, s.Dc)
	s.B = B
	s.mods.forward(s.Ada, c, 6*s.L, s.C)
}

// Mods returns block k's modulation (6,B,C) of the last Forward, for DiTBlock.ForwardMods.
func (s *AdaLNStack) Mods(k int) *kernels.Tensor {
	return s.mods.out.View(k*6*s.B*s.C, 6, s.B, s.C)
}

// DMods returns where block k's BackwardMods adds its modulation gradient (6,B,C), which
// BackwardBlocks zeroes for every block at once.
func (s *AdaLNStack) DMods(k int) *kernels.Tensor {
	return s.dmods.get(s.dev, 6*s.L, s.B, s.C).View(k*6*s.B*s.C, 6, s.B, s.C)
}

// Backward takes the blocks' modulation gradients (DMods, every block's written),
// accumulates the weights' gradients and returns dc (B,Dc).
func (s *AdaLNStack) Backward() *kernels.Tensor {
	if s.mods.c == nil {
		panic("nn: AdaLNStack.Backward without a Forward")
	}
	return s.mods.backward(s.Ada, s.dmods.get(s.dev, 6*s.L, s.B, s.C))
}
