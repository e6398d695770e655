// Launchers of the layout kernels (layout.cu): Patchify/Unpatchify, Permute, Concat/Split.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Patchify|Permute|Concat)'
package cuda

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

func patchGeometry(op string, img, tok *kernels.Tensor, B, T, C, H, W, pt, p int) int {
	if B <= 0 || T <= 0 || C <= 0 || H <= 0 || W <= 0 || pt <= 0 || p <= 0 ||
		T%pt != 0 || H%p != 0 || W%p != 0 {
		panic(fmt.Sprintf("cuda: %s: B=%d T=%d C=%d H=%d W=%d must be positive and T, H, W divisible by pt=%d, p=%d",
			op, B, T, C, H, W, pt, p))
	}
	ntok, F := (T/pt)*(H/p)*(W/p), C*pt*p*p
	mustLen(op+" image", img, B*T*C*H*W)
	mustLen(op+" tokens", tok, B*ntok*F)
	return B * ntok * F
}

func (d *Device) Patchify(out, inp *kernels.Tensor, B, T, C, H, W, pt, p int) {
	n := patchGeometry("Patchify", inp, out, B, T, C, H, W, pt, p)
	d.launch1("patchify", n, P(d.ptr(inp)), P(d.ptr(out)), I(B), I(T), I(C), I(H), I(W), I(pt), I(p), I(1))
}

func (d *Device) Unpatchify(out, inp *kernels.Tensor, B, T, C, H, W, pt, p int) {
	n := patchGeometry("Unpatchify", out, inp, B, T, C, H, W, pt, p)
	d.launch1("patchify", n, P(d.ptr(out)), P(d.ptr(inp)), I(B), I(T), I(C), I(H), I(W), I(pt), I(p), I(0))
}

func (d *Device) Permute(out, inp *kernels.Tensor, shape, perm []int) {
	dims, strides, n := kernels.PermuteDims(out, inp, shape, perm)
	if n == 0 {
		return
	}
	// The kernel takes MaxPermuteDims dims and strides; those past the rank are unused.
	r := len(dims)
	dims = append(dims, make([]int, kernels.MaxPermuteDims-r)...)
	strides = append(strides, make([]int, kernels.MaxPermuteDims-r)...)
	args := []Arg{P(d.ptr(out)), P(d.ptr(inp)), I(n), I(r)}
	for _, v := range dims {
		args = append(args, I(v))
	}
	for _, v := range strides {
		args = append(args, I(v))
	}
	d.launch1("permute", n, args...)
}

func (d *Device) Concat(out, a, b *kernels.Tensor, outer, na, nb int) {
	mustLen("Concat out", out, outer*(na+nb))
	mustLen("Concat a", a, outer*na)
	mustLen("Concat b", b, outer*nb)
	d.launch1("concat", outer*(na+nb), P(d.ptr(out)), P(d.ptr(a)), P(d.ptr(b)), I(outer), I(na), I(nb))
}

func (d *Device) Split(a, b, inp *kernels.Tensor, outer, na, nb int) {
	mustLen("Split inp", inp, outer*(na+nb))
	mustLen("Split a", a, outer*na)
	mustLen("Split b", b, outer*nb)
	d.launch1("split", outer*(na+nb), P(d.ptr(a)), P(d.ptr(b)), P(d.ptr(inp)), I(outer), I(na), I(nb))
}
