// Shared pieces of the layers: layer-owned growable buffers, the source of initial values,
// parameter naming and shape helpers.
//
// Test: go test ./nn

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// Rand is the deterministic source of initial values: Normal fills t with N(0,1) draws and
// advances the generator, so successive calls give fresh numbers. *kernels.RNG (Philox
// keyed by a seed, with a running counter offset) implements it.
type Rand interface {
	Normal(t *kernels.Tensor)
}

// initNormal fills t with N(0, std^2) draws from r; a nil r leaves t as it is.
func initNormal(r Rand, t *kernels.Tensor, std float32) {
	if r == nil {
		return
	}
	r.Normal(t)
	t.Dev.Scale(t, std)
}

// buffer is a device tensor owned by a layer. get returns a view of the requested shape
// on the front of the storage, reallocating only when more elements are needed than ever
// before; the previous storage is freed then, so views handed out earlier are invalid.
type buffer struct {
	t *kernels.Tensor // (capacity)
}

func (b *buffer) get(dev kernels.Device, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	if b.t == nil || b.t.Len() < n || b.t.Dev != dev {
		if b.t != nil {
			b.t.Dev.Free(b.t)
		}
		b.t = dev.New(n)
	}
	return b.t.View(0, shape...)
}

// release frees the storage (optional on the CPU).
func (b *buffer) release() {
	if b.t != nil {
		b.t.Dev.Free(b.t)
		b.t = nil
	}
}

// prefixed returns ps with every name turned into prefix + "." + name.
func prefixed(prefix string, ps []Param) []Param {
	out := make([]Param, len(ps))
	for i, p := range ps {
		out[i] = Param{Name: prefix + "." + p.Name, W: p.W, G: p.G}
	}
	return out
}

// rowsOf returns N = x.Len()/C after checking that x's last dimension is C.
func rowsOf(op string, x *kernels.Tensor, C int) int {
	if len(x.Shape) == 0 || x.Dim(-1) != C {
		panic(fmt.Sprintf("nn: %s: input %v, want last dimension %d", op, x, C))
	}
	return x.Len() / C
}

// withLast returns shape with its last dimension replaced by c.
func withLast(shape []int, c int) []int {
	s := append([]int(nil), shape...)
	s[len(s)-1] = c
	return s
}

// mustShape panics unless x has exactly the given shape.
func mustShape(op string, x *kernels.Tensor, shape ...int) {
	if len(x.Shape) != len(shape) {
		panic(fmt.Sprintf("nn: %s: got %v, want shape %v", op, x, shape))
	}
	for i := range shape {
		if x.Shape[i] != shape[i] {
			panic(fmt.Sprintf("nn: %s: got %v, want shape %v", op, x, shape))
		}
	}
}

var _ Rand = (*kernels.RNG)(nil)
