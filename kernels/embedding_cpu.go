// Token embedding lookup of the CPU device, forward and backward. The ids live on the host.
// The backward pass splits the columns over threads and walks the ids in order, so repeated
// ids never race and results do not depend on the number of threads.
//
// Test: go test ./kernels -run Embedding
package kernels

import "fmt"

// embeddingRows checks the table shape and that every id indexes a row of it, and returns
// the number of rows V. It panics with the offending position and value otherwise.
func embeddingRows(op string, table *Tensor, ids []int32, C int) int {
	if C <= 0 || table.Len()%C != 0 {
		panic(fmt.Sprintf("kernels: %s: table %v does not hold rows of C = %d", op, table, C))
	}
	V := table.Len() / C
	for i, id := range ids {
		if id < 0 || int(id) >= V {
			panic(fmt.Sprintf("kernels: %s: ids[%d] = %d out of range [0, %d) of table %v", op, i, id, V, table))
		}
	}
	return V
}

// EmbeddingForward: out[i,:] = table[ids[i],:]; table (V,C), out (len(ids),C).
func (d *CPU) EmbeddingForward(out, table *Tensor, ids []int32, C int) {
	embeddingRows("EmbeddingForward", table, ids, C)
	mustLen("EmbeddingForward out", out, len(ids)*C)
	o, tb := Host(out), Host(table)
	d.parallel(len(ids), rowGrain(C), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r := int(ids[i]) * C
			copy(o[i*C:(i+1)*C], tb[r:r+C])
		}
	})
}

// EmbeddingBackward: dtable[ids[i],:] += dout[i,:] for i in order; dtable (V,C),
// dout (len(ids),C).
func (d *CPU) EmbeddingBackward(dtable, dout *Tensor, ids []int32, C int) {
	embeddingRows("EmbeddingBackward", dtable, ids, C)
	mustLen("EmbeddingBackward dout", dout, len(ids)*C)
	dt, g := Host(dtable), Host(dout)
	d.parallel(C, colGrain(len(ids)), func(lo, hi int) {
		for i, id := range ids {
			dst, src := dt[int(id)*C+lo:int(id)*C+hi], g[i*C+lo:i*C+hi]
			for j, v := range src {
				dst[j] += v
			}
		}
	})
}
