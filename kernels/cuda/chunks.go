// Multi-tensor launches: a table in device memory lists chunks of many tensors, so that one
// launch covers an optimizer step or the clipping norms over every parameter of a model
// (adamw_chunks, sum_squares_chunks), where a launch per tensor cost more than the work on
// the small ones (DiT-B: 161 parameters, 644 launches per step for AdamW and clipping).
// The tensors of a training step are the same in every step, so a table is copied to the
// device only when its words change.
//
// Test: go test ./kernels/cuda -run 'Chunk|Conformance/(AdamW|Sum)'
package cuda

import (
	"fmt"
	"slices"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// defaultChunkElems is the most elements one block of a chunked kernel takes: 32768, 128
// per thread of a block of 256, so DiT-B's 132M parameters make about 4000 blocks and a
// bias of 768 one.
const defaultChunkElems = 1 << 15

// eachChunk calls fn with the offset and length of every chunk of n elements.
func (d *Device) eachChunk(n int, fn func(off, size int)) {
	for off := 0; off < n; off += d.chunkElems {
		fn(off, min(d.chunkElems, n-off))
	}
}

// spanWords lists the chunks of the non-empty tensors of xs as 2 words each (address of
// the first element, length), and for each tensor the index of its first chunk, then the
// number of chunks (len(xs)+1 entries): the table of sum_squares_chunks.
func (d *Device) spanWords(xs []*kernels.Tensor) (words, first []uint64) {
	first = make([]uint64, 0, len(xs)+1)
	for _, x := range xs {
		first = append(first, uint64(len(words)/2))
		if x == nil || x.Len() == 0 {
			continue
		}
		px := uint64(d.ptr(x))
		d.eachChunk(x.Len(), func(off, size int) { words = append(words, px+uint64(4*off), uint64(size)) })
	}
	return words, append(first, uint64(len(words)/2))
}

// deviceTable is a table of 64-bit words in device memory.
type deviceTable struct {
	words []uint64 // as last copied; also the copy's source, kept unchanged until the next
	ptr   DevPtr
	size  int // allocator class of ptr's block, 0 before the first upload
}

// upload returns the device address of words (at least one), copying them only when they
// differ from the table's last contents. The copy is ordered on the device's stream, so a
// later launch sees it and an earlier one still reads the old table.
func (d *Device) upload(t *deviceTable, words []uint64) DevPtr {
	if t.size > 0 && slices.Equal(t.words, words) {
		return t.ptr
	}
	if bytes := 8 * len(words); bytes > t.size {
		if t.size > 0 {
			d.alloc.put(t.ptr, t.size)
		}
		p, size, err := d.alloc.get(bytes)
		if err != nil {
			panic(fmt.Sprintf("cuda: allocating a table of %d bytes: %v", bytes, err))
		}
		t.ptr, t.size = p, size
	}
	t.words = append(t.words[:0], words...)
	must("upload table", d.drv.HtoD(t.ptr, unsafe.Pointer(&t.words[0]), 8*len(t.words)))
	return t.ptr
}

// lazyZero leaves the zeros of every storage that xs cover whole pending (storage.zero)
// instead of writing them, and returns the tensors of the other storages, which FillEach
// fills. A pending storage is written with zeros (one memset) only when a kernel, a copy or
// the host first touches it (freshF32); a product that accumulates into all of it, as a
// weight gradient's after ZeroGrad, overwrites it instead (takeZero). For DiT-B that
// removes the gradients' fill (0.5 GB written per step) and the read of the weight gradients
// by their first products (0.5 GB more).
func (d *Device) lazyZero(xs []*kernels.Tensor) []*kernels.Tensor {
	type span struct{ off, end int }
	spans := map[*storage][]span{}
	for _, x := range xs {
		if x != nil && x.Len() > 0 {
			s := d.storageOf(x)
			spans[s] = append(spans[s], span{x.Offset, x.Offset + x.Len()})
		}
	}
	whole := map[*storage]bool{}
	for s, ss := range spans {
		slices.SortFunc(ss, func(a, b span) int { return a.off - b.off })
		covered := 0 // [0, covered) is covered
		for _, sp := range ss {
			if sp.off > covered {
				break
			}
			covered = max(covered, sp.end)
		}
		if covered == s.n {
			whole[s] = true
			s.zero, s.f32Stale, s.half.valid = true, false, false
		}
	}
	var rest []*kernels.Tensor
	for _, x := range xs {
		if x != nil && x.Len() > 0 && !whole[d.storageOf(x)] {
			rest = append(rest, x)
		}
	}
	return rest
}

// takeZero reports whether t's storage has its zeros pending and t covers it whole; if so,
// the caller's kernel is about to write all of t (a product with beta 0), which ends the
// pending state without the fill.
func (d *Device) takeZero(t *kernels.Tensor) bool {
	s := d.storageOf(t)
	if !s.zero || t.Offset != 0 || t.Len() != s.n {
		return false
	}
	s.zero = false
	return true
}
