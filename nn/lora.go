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
// zero, so a fresh adapter leaves the layer unchanged. Backward, with s = alpha/r and
// xa = x A^T (cached):
//
//	dxa = s dy B ;  dB += s dy^T xa ;  dA += dxa^T x ;  dx += dxa A
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
	xa      buffer // (N, r) = x A^T, cached for Backward
	dxa     buffer // (N, r)
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
func (l *Linear) MergeLoRA() {
	a := l.LoRA
	if a == nil {
		return
	}
	l.dev.Gemm(false, false, l.Out, l.In, a.Rank, a.Scale(), a.B, a.A, 1, l.Weight)
	a.xa.release()
	a.dxa.release()
	l.LoRA = nil
}

// forward adds s (x A^T) B^T to y (N, Out).
func (a *LoRA) forward(y, x *kernels.Tensor, N int) {
	xa := a.xa.get(a.dev, N, a.Rank)
	a.dev.Gemm(false, true, N, a.Rank, a.in, 1, x, a.A, 0, xa)
	a.dev.Gemm(false, true, N, a.out, a.Rank, a.Scale(), xa, a.B, 1, y)
}

// backward accumulates dA, dB and adds the adapter's share to dx (N, In).
func (a *LoRA) backward(dx, dy, x *kernels.Tensor, N int) {
	s := a.Scale()
	xa := a.xa.get(a.dev, N, a.Rank)
	dxa := a.dxa.get(a.dev, N, a.Rank)
	a.dev.Gemm(false, false, N, a.Rank, a.out, s, dy, a.B, 0, dxa)
	a.dev.Gemm(true, false, a.out, a.Rank, N, s, dy, xa, 1, a.DB)
	a.dev.Gemm(true, false, a.Rank, a.in, N, 1, dxa, x, 1, a.DA)
	a.dev.Gemm(false, false, N, a.in, a.Rank, 1, dxa, a.A, 1, dx)
}
