// Launchers of the embedding kernels (embedding.cu): token embeddings (ids uploaded from the
// host into scratch), the sinusoidal timestep embedding and masked mean pooling.
//
// Test: go test ./kernels/cuda -run 'Conformance/(Embedding|Timestep|MeanPool)'
package cuda

import (
	"fmt"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// embeddingRows checks the table shape and every id, as the CPU device does.
func embeddingRows(op string, table *kernels.Tensor, ids []int32, C int) int {
	if C <= 0 || table.Len()%C != 0 {
		panic(fmt.Sprintf("cuda: %s: table %v does not hold rows of C = %d", op, table, C))
	}
	V := table.Len() / C
	for i, id := range ids {
		if id < 0 || int(id) >= V {
			panic(fmt.Sprintf("cuda: %s: ids[%d] = %d out of range [0, %d) of table %v", op, i, id, V, table))
		}
	}
	return V
}

// uploadIDs copies ids into device scratch.
func (d *Device) uploadIDs(ids []int32) (DevPtr, func()) {
	p, release := d.scratch(4 * len(ids))
	must("upload ids", d.drv.HtoD(p, unsafe.Pointer(&ids[0]), 4*len(ids)))
	return p, release
}

func (d *Device) EmbeddingForward(out, table *kernels.Tensor, ids []int32, C int) {
	embeddingRows("EmbeddingForward", table, ids, C)
	mustLen("EmbeddingForward out", out, len(ids)*C)
	if len(ids) == 0 {
		return
	}
	p, release := d.uploadIDs(ids)
	defer release()
	d.launch1("embedding_forward", len(ids)*C, P(d.ptr(out)), P(d.ptr(table)), P(p), I(len(ids)), I(C))
}

func (d *Device) EmbeddingBackward(dtable, dout *kernels.Tensor, ids []int32, C int) {
	embeddingRows("EmbeddingBackward", dtable, ids, C)
	mustLen("EmbeddingBackward dout", dout, len(ids)*C)
	if len(ids) == 0 {
		return
	}
	p, release := d.uploadIDs(ids)
	defer release()
	d.launch1("embedding_backward", C, P(d.ptr(dtable)), P(d.ptr(dout)), P(p), I(len(ids)), I(C))
}

func (d *Device) TimestepEmbedding(out, t *kernels.Tensor, B, dim int, maxPeriod float32) {
	if dim <= 0 || dim%2 != 0 {
		panic(fmt.Sprintf("cuda: TimestepEmbedding: dim = %d must be positive and even", dim))
	}
	mustLen("TimestepEmbedding out", out, B*dim)
	mustLen("TimestepEmbedding t", t, B)
	d.launch1("timestep_embedding", B*dim/2, P(d.ptr(out)), P(d.ptr(t)), I(B), I(dim), F(maxPeriod))
}

// poolDen computes sum_t mask[b,t] (T without a mask) into float64 scratch.
func (d *Device) poolDen(mask *kernels.Tensor, B, T int) (DevPtr, func()) {
	p, release := d.scratch(8 * B)
	d.launch1("pool_den", B, P(p), P(d.ptr(mask)), I(B), I(T))
	return p, release
}

func (d *Device) MeanPoolForward(out, inp, mask *kernels.Tensor, B, T, C int) {
	mustLen("MeanPoolForward out", out, B*C)
	mustLen("MeanPoolForward inp", inp, B*T*C)
	if mask != nil {
		mustLen("MeanPoolForward mask", mask, B*T)
	}
	if B == 0 || C == 0 {
		return
	}
	den, release := d.poolDen(mask, B, T)
	defer release()
	d.launch("mean_pool_forward", colGrid(C, B), colBlock, 0, P(d.ptr(out)), P(d.ptr(inp)), P(d.ptr(mask)), P(den),
		I(B), I(T), I(C))
}

func (d *Device) MeanPoolBackward(dinp, dout, mask *kernels.Tensor, B, T, C int) {
	mustLen("MeanPoolBackward dinp", dinp, B*T*C)
	mustLen("MeanPoolBackward dout", dout, B*C)
	if mask != nil {
		mustLen("MeanPoolBackward mask", mask, B*T)
	}
	if B*T*C == 0 {
		return
	}
	den, release := d.poolDen(mask, B, T)
	defer release()
	d.launch1("mean_pool_backward", B*T*C, P(d.ptr(dinp)), P(d.ptr(dout)), P(d.ptr(mask)), P(den), I(B), I(T), I(C))
}
