// modulation: the adaLN conditioning path of DiT's blocks, its final layer and AdaLNStack.
//
//	mods = SiLU(c) W^T + b     (B, k*C) from c (B,Dc), permuted to (k,B,C): k chunks (shift,
//	                           scale, gate, ...), each a contiguous (B,C)
//
// and its backward from dmods (k,B,C): dc = silu'(c) ⊙ (dmod W), dW += dmod^T SiLU(c),
// db += sum_b dmod, with dmod dmods permuted back to (B, k*C). The Linear is the owner's.
//
// Test: go test ./nn -run 'DiTBlock|FinalLayer|AdaLNStack'

package nn

import "github.com/alignkit/align/kernels"

// modulation holds the buffers of one owner's conditioning path.
type modulation struct {
	c, out             *kernels.Tensor // (B,Dc) conditioning and (k,B,C) chunks of the last forward
	sc, mods, dmod, dc buffer          // SiLU(c) (B,Dc), mods (k,B,C), dmod (B,k*C), dc (B,Dc)
}

// forward returns the k chunks (k,B,C) of ada(SiLU(c)), ada mapping Dc to k*C.
func (m *modulation) forward(ada *Linear, c *kernels.Tensor, k, C int) *kernels.Tensor {
	dev, B := ada.dev, c.Dim(0)
	m.c = c
	sc := m.sc.get(dev, B, c.Dim(1))
	dev.SiluForward(sc, c)
	mods := m.mods.get(dev, k, B, C)
	dev.Permute(mods, ada.Forward(sc), []int{B, k, C}, []int{1, 0, 2})
	m.out = mods
	return mods
}

// backward takes the chunks' gradients dmods (k,B,C), accumulates ada's and returns dc (B,Dc).
func (m *modulation) backward(ada *Linear, dmods *kernels.Tensor) *kernels.Tensor {
	dev := ada.dev
	k, B, C := dmods.Dim(0), dmods.Dim(1), dmods.Dim(2)
	dmod := m.dmod.get(dev, B, k*C)
	dev.Permute(dmod, dmods, []int{k, B, C}, []int{1, 0, 2})
	dsc := ada.Backward(dmod)
	dc := m.dc.get(dev, B, m.c.Dim(1))
	dev.SiluBackward(dc, m.c, dsc)
	return dc
}
