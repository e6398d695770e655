// Launchers of the reduction kernels (reduce.cu): Sum and SumSquares in float64, two
// launches (per-block partial sums, then their total) and an 8-byte copy to the host.
//
// Test: go test ./kernels/cuda -run 'Conformance/Sum'
package cuda

import (
	"unsafe"

	"github.com/alignkit/align/kernels"
)

func (d *Device) Sum(x *kernels.Tensor) float64 { return d.reduce(x, 0) }

func (d *Device) SumSquares(x *kernels.Tensor) float64 { return d.reduce(x, 1) }

func (d *Device) reduce(x *kernels.Tensor, squares int) float64 {
	n := x.Len()
	px := d.ptr(x)
	if n == 0 {
		return 0
	}
	g := d.grid1(n)
	part, release := d.scratch(8 * (g.X + 1))
	defer release()
	total := part + DevPtr(8*g.X)
	d.launch("sum_partial", g, Dim3{blockSize, 1, 1}, 0, P(part), P(px), I(n), I(squares))
	d.launch("sum_final", Dim3{1, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(total), P(part), I(g.X))
	var s float64
	must("Sum", d.drv.DtoH(unsafe.Pointer(&s), total, 8))
	return s
}
