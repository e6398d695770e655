// Parameter naming and shape checks shared by the layers.
//
// Test: go test ./nn

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

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
