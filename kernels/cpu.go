// CPU device: float32 buffers in host memory, operations parallel over all cores.
// The per-operation methods live in *_cpu.go files beside their tests.
//
// Test: go test ./kernels
package kernels

import (
	"fmt"
	"runtime"
	"sync"
)

// cpuStorage is the host buffer behind CPU tensors.
type cpuStorage struct{ data []float32 }

func (s *cpuStorage) Cap() int { return len(s.data) }

// CPU is the reference device. The zero value is not usable; call NewCPU.
type CPU struct {
	threads int
	bf16    bool // matrix products on BF16 inputs (SetGemmBF16)
}

// NewCPU returns a CPU device that runs on the given number of goroutines
// (0 means runtime.GOMAXPROCS(0)).
func NewCPU(threads int) *CPU {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	return &CPU{threads: threads}
}

// Threads is the number of goroutines operations are split over.
func (d *CPU) Threads() int { return d.threads }

func (d *CPU) Name() string { return "cpu" }

// Host returns the host slice behind a CPU tensor. It is for the CPU device's own
// kernels and for tests; layers must not call it.
func Host(t *Tensor) []float32 {
	s, ok := t.Mem.(*cpuStorage)
	if !ok {
		panic(fmt.Sprintf("kernels: %v is not a CPU tensor", t))
	}
	return s.data[t.Offset : t.Offset+t.Len()]
}

// host is Host for an optional tensor: nil stays nil.
func host(t *Tensor) []float32 {
	if t == nil {
		return nil
	}
	return Host(t)
}

func (d *CPU) New(shape ...int) *Tensor {
	n := numel(shape)
	return &Tensor{Shape: append([]int(nil), shape...), Dev: d, Mem: &cpuStorage{data: make([]float32, n)}}
}

func (d *CPU) FromHost(data []float32, shape ...int) *Tensor {
	t := d.New(shape...)
	if len(data) != t.Len() {
		panic(fmt.Sprintf("kernels: FromHost got %d values for shape %v", len(data), shape))
	}
	copy(Host(t), data)
	return t
}

func (d *CPU) CopyToHost(dst []float32, src *Tensor) {
	if len(dst) < src.Len() {
		panic(fmt.Sprintf("kernels: CopyToHost into %d values from %v", len(dst), src))
	}
	copy(dst, Host(src))
}

func (d *CPU) CopyFromHost(dst *Tensor, src []float32) {
	if len(src) < dst.Len() {
		panic(fmt.Sprintf("kernels: CopyFromHost of %d values into %v", len(src), dst))
	}
	copy(Host(dst), src)
}

func (d *CPU) Copy(dst, src *Tensor) {
	mustLen("Copy", dst, src.Len())
	copy(Host(dst), Host(src))
}

func (d *CPU) Fill(t *Tensor, v float32) {
	x := Host(t)
	d.parallel(len(x), 1<<14, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] = v
		}
	})
}

func (d *CPU) FillEach(xs []*Tensor, v float32) {
	for _, x := range xs {
		if x != nil {
			d.Fill(x, v)
		}
	}
}

func (d *CPU) Free(t *Tensor) { t.Mem = nil }

func (d *CPU) Synchronize() error { return nil }

// parallel splits [0,n) into at most d.threads contiguous chunks of at least grain
// items and runs fn on each; it returns when all are done. Work is split by index only,
// so results never depend on scheduling.
func (d *CPU) parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := d.threads
	if c := (n + grain - 1) / grain; c < chunks {
		chunks = c
	}
	if chunks <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + chunks - 1) / chunks
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// mustLen panics unless t holds exactly n elements.
func mustLen(op string, t *Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("kernels: %s: nil tensor where %d elements were expected", op, n))
	}
	if t.Len() != n {
		panic(fmt.Sprintf("kernels: %s: %v has %d elements, want %d", op, t, t.Len(), n))
	}
}

var _ Device = (*CPU)(nil)
