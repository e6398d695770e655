// Caching allocator of the CUDA device: freed blocks are kept in per-size free lists and
// handed out again, because cuMemAlloc/cuMemFree synchronise the device and cost tens of
// microseconds. Every request is rounded up to a size class (multiples of 256 bytes up to
// 1 MiB, then steps of an eighth of the power of two below, at most 12.5% waste), and a request only
// reuses a block of exactly its class. When the driver runs out of memory, the cached
// blocks are released and the allocation is tried once more. The blocks handed out are
// tracked too, so that closing the device frees everything it took from the driver: the
// CUDA runtime under cuBLAS keeps the primary context alive for the whole process, and
// memory of tensors nobody freed would otherwise outlive their device (a benchmark that
// opened a device per run then ran out of memory on a 141 GiB GPU).
//
// Reuse is safe without events because the device runs everything on one stream: work that
// used a freed block is queued before any work that gets it next.
//
// Test: go test ./kernels/cuda -run Alloc
package cuda

import (
	"math/bits"
	"sync"
)

// MemStats are the allocator's byte counts.
type MemStats struct {
	InUse  int64 // handed out and not yet freed
	Cached int64 // freed, kept for reuse
	Peak   int64 // largest InUse seen
	Allocs int   // driver allocations made
	Reuses int   // requests served from the cache
}

type allocator struct {
	drv   Driver
	mu    sync.Mutex
	free  map[int][]DevPtr
	live  map[DevPtr]int // handed out: address -> class size
	stats MemStats
}

func newAllocator(drv Driver) *allocator {
	return &allocator{drv: drv, free: map[int][]DevPtr{}, live: map[DevPtr]int{}}
}

// sizeClass rounds a request (at least 1 byte) up to its class.
func sizeClass(bytes int) int {
	const small = 1 << 20
	if bytes <= 0 {
		bytes = 1
	}
	if bytes <= small {
		return (bytes + 255) &^ 255
	}
	step := 1 << (bits.Len(uint(bytes)) - 4) // an eighth of the power of two at or below bytes
	return (bytes + step - 1) / step * step
}

// get returns a block of at least bytes and its class size.
func (a *allocator) get(bytes int) (DevPtr, int, error) {
	size := sizeClass(bytes)
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.free[size]; len(l) > 0 {
		p := l[len(l)-1]
		a.free[size] = l[:len(l)-1]
		a.stats.Cached -= int64(size)
		a.stats.Reuses++
		a.took(p, size)
		return p, size, nil
	}
	p, err := a.drv.Alloc(size)
	if err != nil {
		if a.stats.Cached == 0 {
			return 0, 0, err
		}
		if rerr := a.releaseLocked(); rerr != nil {
			return 0, 0, rerr
		}
		if p, err = a.drv.Alloc(size); err != nil {
			return 0, 0, err
		}
	}
	a.stats.Allocs++
	a.took(p, size)
	return p, size, nil
}

func (a *allocator) took(p DevPtr, size int) {
	a.live[p] = size
	a.stats.InUse += int64(size)
	a.stats.Peak = max(a.stats.Peak, a.stats.InUse)
}

// put returns a block of class size to the cache.
func (a *allocator) put(p DevPtr, size int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.live, p)
	a.free[size] = append(a.free[size], p)
	a.stats.InUse -= int64(size)
	a.stats.Cached += int64(size)
}

// release frees every cached block.
func (a *allocator) release() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.releaseLocked()
}

func (a *allocator) releaseLocked() error {
	var first error
	for size, l := range a.free {
		for _, p := range l {
			if err := a.drv.Free(p); err != nil && first == nil {
				first = err
			}
			a.stats.Cached -= int64(size)
		}
		delete(a.free, size)
	}
	return first
}

// freeAll frees every block, cached or handed out.
func (a *allocator) freeAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := a.releaseLocked()
	for p, size := range a.live {
		if err := a.drv.Free(p); err != nil && first == nil {
			first = err
		}
		a.stats.InUse -= int64(size)
		delete(a.live, p)
	}
	return first
}

func (a *allocator) memStats() MemStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}
