// Launchers of the layer-normalisation kernels (layernorm.cu).
//
// Test: go test ./kernels/cuda -run 'Conformance/LayerNorm'
package cuda

import "github.com/alignkit/align/kernels"

// rowsPerBlock is the number of rows (one warp each) of the row-wise kernels' blocks.
const rowsPerBlock = 8

// rowGrid is the grid of a warp-per-row kernel over N rows.
func rowGrid(N int) Dim3 { return Dim3{(N + rowsPerBlock - 1) / rowsPerBlock, 1, 1} }

var rowBlock = Dim3{32 * rowsPerBlock, 1, 1}

func (d *Device) LayerNormForward(out, mean, rstd, inp, weight, bias *kernels.Tensor, N, C int, eps float32) {
	mustLen("LayerNormForward out", out, N*C)
	mustLen("LayerNormForward inp", inp, N*C)
	mustLen("LayerNormForward mean", mean, N)
	mustLen("LayerNormForward rstd", rstd, N)
	if (weight == nil) != (bias == nil) {
		panic("cuda: LayerNormForward: weight and bias must both be set or both be nil")
	}
	if weight != nil {
		mustLen("LayerNormForward weight", weight, C)
		mustLen("LayerNormForward bias", bias, C)
	}
	if N == 0 {
		return
	}
	d.launch("layernorm_forward", rowGrid(N), rowBlock, 0, P(d.ptr(out)), P(d.ptr(mean)), P(d.ptr(rstd)),
		P(d.ptr(inp)), P(d.ptr(weight)), P(d.ptr(bias)), I(N), I(C), F(eps))
}

// LayerNormBackward launches the parameter-gradient kernel first, so that dinp may alias
// dout.
func (d *Device) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd *kernels.Tensor, N, C int) {
	mustLen("LayerNormBackward dinp", dinp, N*C)
	mustLen("LayerNormBackward dout", dout, N*C)
	mustLen("LayerNormBackward inp", inp, N*C)
	mustLen("LayerNormBackward mean", mean, N)
	mustLen("LayerNormBackward rstd", rstd, N)
	for _, p := range []*kernels.Tensor{weight, dweight, dbias} {
		if p != nil {
			mustLen("LayerNormBackward parameter", p, C)
		}
	}
	if N == 0 || C == 0 {
		return
	}
	if dweight != nil || dbias != nil {
		d.colSum("layernorm_backward_params", N, C, []DevPtr{d.ptr(dweight), d.ptr(dbias)},
			P(d.ptr(dout)), P(d.ptr(inp)), P(d.ptr(mean)), P(d.ptr(rstd)), I(N), I(C))
	}
	d.launch("layernorm_backward_dx", rowGrid(N), rowBlock, 0, P(d.ptr(dinp)), P(d.ptr(dout)), P(d.ptr(inp)),
		P(d.ptr(weight)), P(d.ptr(mean)), P(d.ptr(rstd)), I(N), I(C))
}
