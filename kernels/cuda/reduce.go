// Launchers of the reduction kernels (reduce.cu), all in float64 and with two launches:
// Sum (per-block partial sums, then their total, and an 8-byte copy to the host);
// SumSquaresEach over the chunks of many tensors with one copy (SumSquares: of one); the row
// splits of column sums (colSum).
//
// Test: go test ./kernels/cuda -run 'Conformance/(Sum|BiasBackward|LayerNorm)|ColumnSum|SumSquaresEach|Chunk'
package cuda

import (
	"unsafe"

	"github.com/alignkit/align/kernels"
)

func (d *Device) Sum(x *kernels.Tensor) float64 {
	n := x.Len()
	px := d.rptr(x)
	if n == 0 {
		return 0
	}
	g := d.grid1(n)
	part, release := d.scratch(8 * (g.X + 1))
	defer release()
	total := part + DevPtr(8*g.X)
	d.launch("sum_partial", g, Dim3{blockSize, 1, 1}, 0, P(part), P(px), I(n))
	d.launch("sum_final", Dim3{1, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(total), P(part), I(g.X))
	var s float64
	must("Sum", d.drv.DtoH(unsafe.Pointer(&s), total, 8))
	return s
}

// SumSquares is SumSquaresEach of one tensor, so that both give the same bits.
func (d *Device) SumSquares(x *kernels.Tensor) float64 {
	return d.SumSquaresEach([]*kernels.Tensor{x})[0]
}

// SumSquaresEach sums the squares of every chunk of every tensor with one launch
// (sum_squares_chunks, chunks.go), each tensor's chunks in order with a second
// (sum_chunks_final), and copies the totals to the host at once: a clipped training step
// waits for the GPU once, after two launches instead of two per gradient.
func (d *Device) SumSquaresEach(xs []*kernels.Tensor) []float64 {
	out := make([]float64, len(xs))
	words, first := d.spanWords(xs)
	chunks := len(words) / 2
	if chunks == 0 {
		return out
	}
	table := d.upload(&d.sumsTable, append(words, first...))
	buf, release := d.scratch(8 * (len(xs) + chunks))
	defer release()
	part := buf + DevPtr(8*len(xs))
	d.launch("sum_squares_chunks", Dim3{chunks, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(part), P(table))
	d.launch("sum_chunks_final", Dim3{len(xs), 1, 1}, Dim3{blockSize, 1, 1}, 0, P(buf), P(part), P(table+DevPtr(8*len(words))))
	must("SumSquaresEach", d.drv.DtoH(unsafe.Pointer(&out[0]), buf, 8*len(xs)))
	return out
}

// colMinRows is the fewest rows a split of a column sum takes (8 per warp of the block).
const colMinRows = 8 * 8

// colSplits is the number of row splits of a column sum over N rows of C columns: enough
// for d.colBlocks blocks in all, each split at least colMinRows rows. A bias gradient of
// DiT-B (N = 8704 tokens, C = 768: 24 column blocks) then runs as 44 splits of 198 rows on
// 132 SMs, where one split would leave 108 SMs idle and each block 8704 dependent loads
// per warp.
func (d *Device) colSplits(N, C int) int {
	cb := (C + 31) / 32
	return max(1, min((d.colBlocks+cb-1)/cb, N/colMinRows))
}

// colSum launches a column-sum kernel over N rows of C columns, whose parameters are the
// outputs (one per float64 total of a column; DevPtr 0 skips one), part, then args, with
// its row splits (common.h): with more than one, part is scratch for splits*C totals per
// output and col_finish adds them to the outputs.
func (d *Device) colSum(kernel string, N, C int, outs []DevPtr, args ...Arg) {
	splits := d.colSplits(N, C)
	var part DevPtr
	if splits > 1 {
		p, release := d.scratch(8 * splits * C * len(outs))
		defer release()
		part = p
	}
	all := make([]Arg, 0, len(outs)+1+len(args))
	for _, o := range outs {
		all = append(all, P(o))
	}
	all = append(all, P(part))
	d.launch(kernel, colGrid(C, splits), colBlock, 0, append(all, args...)...)
	if splits == 1 {
		return
	}
	for k, o := range outs {
		if o != 0 {
			d.launch1("col_finish", C, P(o), P(part+DevPtr(8*k*splits*C)), I(splits), I(C))
		}
	}
}
