// LoRA: a low-rank adapter on a Linear layer (Hu et al., 2021, arXiv 2106.09685), with the
// frozen base doubling as the reference model of Flow-DPO when the adapter is disabled.
//
// Test: go test ./nn -run LoRA

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// LoRA adds (alpha/r) (x A^T) B^T to a Linear layer's output. A starts random and B at
// zero, so a fresh adapter leaves the layer unchanged. With s = alpha/r and xs = s x A^T
// (cached), the layer's output is y = (xs B^T + b) + x W^T: the adapter's term and the bias
// first, the base product added to them, so that on a GPU in BF16 mode each product writes
// y's BF16 copy alone (the last one reading it back as its C) where an FP32 sum would be
// converted for the next layer. Backward:
//
//	dxs = dy B ;  dB += dy^T xs ;  dA += s dxs^T x ;  dx = s dxs A (+ dy W, the base's)
type LoRA struct {
	Rank    int     // r, e.g. 16
	Alpha   float32 // e.g. 2*r
	Enabled bool    // false: the layer computes its frozen base only

	A  *kernels.Tensor // (r, In)
	B  *kernels.Tensor // (Out, r)
	DA *kernels.Tensor // (r, In)
	DB *kernels.Tensor // (Out, r)

	in, out int
	dev     kernels.Device
	xs      buffer // (N, r) = s x A^T, cached for Backward
	dxs     buffer // (N, r) = dy B
}

// Scale is alpha/r.
func (a *LoRA) Scale() float32 { return a.Alpha / float32(a.Rank) }

// Params lists "lora_A.weight" and "lora_B.weight" (PEFT's names).
func (a *LoRA) Params() []Param {
	return []Param{
		{Name: "lora_A.weight", W: a.A, G: a.DA},
		{Name: "lora_B.weight", W: a.B, G: a.DB},
	}
}

// EnableLoRA attaches a rank-r adapter to l and freezes the base weight and bias. A is
// drawn from N(0, 1/r^2) (PEFT's "gaussian" rule), B is zero. It panics if l already has one.
func (l *Linear) EnableLoRA(r Rand, rank int, alpha float32) *LoRA {
	if l.LoRA != nil {
		panic("nn: EnableLoRA on a layer that already has an adapter")
	}
	if rank <= 0 {
		panic(fmt.Sprintf("nn: EnableLoRA rank %d", rank))
	}
	a := &LoRA{Rank: rank, Alpha: alpha, Enabled: true, in: l.In, out: l.Out, dev: l.dev}
	a.A, a.DA = l.dev.New(rank, l.In), l.dev.New(rank, l.In)
	a.B, a.DB = l.dev.New(l.Out, rank), l.dev.New(l.Out, rank)
	initNormal(r, a.A, 1/float32(rank))
	kernels.KeepHalf(l.dev, a.A) // read by every forward and input gradient until AdamW writes them
	kernels.KeepHalf(l.dev, a.B)
	l.LoRA = a
	l.SetTrainable(false)
	return a
}

// SetLoRAEnabled switches the adapter on or off; off, the layer is its frozen base. It
// does nothing on a layer without an adapter.
func (l *Linear) SetLoRAEnabled(on bool) {
	if l.LoRA != nil {
		l.LoRA.Enabled = on
	}
}

// MergeLoRA folds the adapter into the base, W += (alpha/r) B A, and removes it. The base
// stays frozen; call SetTrainable(true) to train it further.
func (l *Linear) MergeLoRA() { l.MergeLoRAWeighted(1) }

// MergeLoRAWeighted folds the adapter in with weight w, W += w (alpha/r) B A, and removes
// it: adapters of one base merged in turn with weights λ_i give W + Σ λ_i ΔW_i, a mixture of
// fine-tunings in weight space (rewarded soups, arXiv 2306.04488).
func (l *Linear) MergeLoRAWeighted(w float32) {
	a := l.LoRA
	if a == nil {
		return
	}
	l.dev.Gemm(false, false, l.Out, l.In, a.Rank, w*a.Scale(), a.B, a.A, 1, l.Weight)
	a.xs.release()
	a.dxs.release()
	l.LoRA = nil
}

// forward writes y = xs B^T + bias (N, Out), xs = s x A^T; bias may be nil.
func (a *LoRA) forward(y, x, bias *kernels.Tensor, N int) {
	xs := a.xs.get(a.dev, N, a.Rank)
	kernels.StoreHalf(a.dev, xs) // read by products only
	a.dev.Gemm(false, true, N, a.Rank, a.in, a.Scale(), x, a.A, 0, xs)
	a.dev.Linear(y, xs, a.B, bias, N, a.Rank, a.out)
}

// backward accumulates dA and dB and writes the adapter's share of dx (N, In): dx = s dxs A
// + beta dx (beta 0: dx's first term, 1: added to it).
func (a *LoRA) backward(dx, dy, x *kernels.Tensor, N int, beta float32) {
	xs := a.xs.get(a.dev, N, a.Rank)
	dxs := a.dxs.get(a.dev, N, a.Rank)
	kernels.StoreHalf(a.dev, dxs) // read by products only
	a.dev.Gemm(false, false, N, a.Rank, a.out, 1, dy, a.B, 0, dxs)
	a.dev.Gemm(true, false, a.out, a.Rank, N, 1, dy, xs, 1, a.DB)
	a.dev.Gemm(true, false, a.Rank, a.in, N, a.Scale(), dxs, x, 1, a.DA)
	a.dev.Gemm(false, false, N, a.in, a.Rank, a.Scale(), dxs, a.A, beta, dx)
}
