// Launchers of the elementwise kernels (elementwise.cu): Add, Axpy, Axpby, Scale, Mul,
// AddRowScaled, AddBias, BiasBackward.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Add|Axpy|Axpby|Scale|Mul|AddRowScaled|AddBias|BiasBackward)'
package cuda

import "github.com/alignkit/align/kernels"

func (d *Device) Add(out, a, b *kernels.Tensor) {
	n := out.Len()
	mustLen("Add a", a, n)
	mustLen("Add b", b, n)
	d.launch1("add_f32", n, P(d.ptr(out)), P(d.ptr(a)), P(d.ptr(b)), I(n))
}

func (d *Device) Axpy(y *kernels.Tensor, alpha float32, x *kernels.Tensor) {
	n := y.Len()
	mustLen("Axpy x", x, n)
	d.launch1("axpy_f32", n, P(d.ptr(y)), F(alpha), P(d.ptr(x)), I(n))
}

func (d *Device) Axpby(out *kernels.Tensor, a float32, x *kernels.Tensor, b float32, y *kernels.Tensor) {
	n := out.Len()
	mustLen("Axpby x", x, n)
	mustLen("Axpby y", y, n)
	d.launch1("axpby_f32", n, P(d.ptr(out)), F(a), P(d.ptr(x)), F(b), P(d.ptr(y)), I(n))
}

func (d *Device) Scale(x *kernels.Tensor, alpha float32) {
	n := x.Len()
	d.launch1("scale_f32", n, P(d.ptr(x)), F(alpha), I(n))
}

func (d *Device) Mul(out, a, b *kernels.Tensor) {
	n := out.Len()
	mustLen("Mul a", a, n)
	mustLen("Mul b", b, n)
	d.launch1("mul_f32", n, P(d.ptr(out)), P(d.ptr(a)), P(d.ptr(b)), I(n))
}

func (d *Device) AddRowScaled(out, x, s, y *kernels.Tensor, rows, cols int) {
	n := rows * cols
	mustLen("AddRowScaled out", out, n)
	mustLen("AddRowScaled x", x, n)
	mustLen("AddRowScaled y", y, n)
	mustLen("AddRowScaled s", s, rows)
	d.launch1("add_row_scaled", n, P(d.ptr(out)), P(d.ptr(x)), P(d.ptr(s)), P(d.ptr(y)), I(rows), I(cols))
}

func (d *Device) AddBias(out, inp, bias *kernels.Tensor, N, C int) {
	mustLen("AddBias out", out, N*C)
	mustLen("AddBias inp", inp, N*C)
	mustLen("AddBias bias", bias, C)
	d.addBias(d.ptr(out), d.ptr(inp), d.ptr(bias), N, C)
}

// addBias launches add_bias: out[n,c] = inp[n,c] + bias[c] over N rows of C.
func (d *Device) addBias(out, inp, bias DevPtr, N, C int) {
	d.launch1("add_bias", N*C, P(out), P(inp), P(bias), I(N), I(C))
}

func (d *Device) BiasBackward(dbias, dout *kernels.Tensor, N, C int) {
	mustLen("BiasBackward dbias", dbias, C)
	mustLen("BiasBackward dout", dout, N*C)
	if C == 0 {
		return
	}
	d.colSum("bias_backward", N, C, []DevPtr{d.ptr(dbias)}, P(d.rptr(dout)), I(N), I(C))
}

// colBlock is the block of the column-sum kernels (COL_WARPS = 8 warps in common.h).
var colBlock = Dim3{32 * 8, 1, 1}

// colGrid is the grid of a column-sum kernel over C columns, repeated over y.
func colGrid(C, y int) Dim3 { return Dim3{(C + 31) / 32, y, 1} }
