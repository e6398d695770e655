// TokenEmbedding: a lookup table from token ids (host integers) to vectors.
//
// Test: go test ./nn -run TokenEmbedding

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// TokenEmbedding maps ids to rows of a table: out[i,:] = Weight[ids[i],:].
// Backward: dWeight[ids[i],:] += dout[i,:] (no input gradient: ids are discrete).
type TokenEmbedding struct {
	V, C int // vocabulary size, width; e.g. 4096, 384

	Weight  *kernels.Tensor // (V, C)
	DWeight *kernels.Tensor // (V, C); nil when frozen

	dev kernels.Device
	ids []int32 // (N) copy of the ids of the last Forward
	out buffer  // (N, C)
}

// DefaultEmbeddingStd is the standard deviation of a fresh table (GPT-2's and DiT's 0.02).
const DefaultEmbeddingStd = 0.02

// NewTokenEmbedding allocates a trainable (V, C) table drawn from N(0, 0.02^2).
func NewTokenEmbedding(dev kernels.Device, r Rand, V, C int) *TokenEmbedding {
	e := &TokenEmbedding{V: V, C: C, dev: dev, Weight: dev.New(V, C)}
	e.SetTrainable(true)
	initNormal(r, e.Weight, DefaultEmbeddingStd)
	return e
}

// SetTrainable gives the table a zeroed gradient (true) or freezes it.
func (e *TokenEmbedding) SetTrainable(on bool) {
	switch {
	case !on:
		e.DWeight = nil
	case e.DWeight == nil:
		e.DWeight = e.dev.New(e.V, e.C)
	}
}

// Params lists "weight".
func (e *TokenEmbedding) Params() []Param {
	return []Param{{Name: "weight", W: e.Weight, G: e.DWeight}}
}

// Forward looks up ids and returns out (len(ids), C); Reshape it to (B,T,C) as needed.
// Every id must lie in [0, V).
func (e *TokenEmbedding) Forward(ids []int32) *kernels.Tensor {
	for i, id := range ids {
		if id < 0 || int(id) >= e.V {
			panic(fmt.Sprintf("nn: TokenEmbedding.Forward: ids[%d] = %d outside [0, %d)", i, id, e.V))
		}
	}
	e.ids = append(e.ids[:0], ids...)
	out := e.out.get(e.dev, len(ids), e.C)
	e.dev.EmbeddingForward(out, e.Weight, e.ids, e.C)
	return out
}

// Backward accumulates dout (len(ids), C) (any shape with as many elements) into the
// table's gradient.
func (e *TokenEmbedding) Backward(dout *kernels.Tensor) {
	if dout.Len() != len(e.ids)*e.C {
		panic(fmt.Sprintf("nn: TokenEmbedding.Backward: %v for %d ids", dout, len(e.ids)))
	}
	if e.DWeight != nil {
		e.dev.EmbeddingBackward(e.DWeight, dout, e.ids, e.C)
	}
}
