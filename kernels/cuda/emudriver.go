// The emulated driver: host memory stands in for device memory and launches run the
// g++-compiled kernels (emu_kernels.cc, emu.h), so the CUDA device's Go logic (allocation,
// argument packing, grid sizes, launch order) is tested without a GPU. On top of what a
// GPU would check it rejects pointer arguments outside every live allocation, reports
// writes past the end of a block when the block is freed, and checks every launch's
// argument types against the kernel's parameter list.
//
// Test: go test ./kernels/cuda
package cuda

import (
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// EmuDriver runs the CUDA kernels on the CPU. Launches are serialised (static shared
// memory is one object per process), so one EmuDriver or many behave the same.
type EmuDriver struct {
	// Mode selects fibers (one OS thread per block, fast, deterministic, exact deadlock
	// reports), fibers resumed in reverse order, or one OS thread per CUDA thread (real
	// concurrency, slow).
	Mode EmuMode
	// Timeout is the watchdog: a launch running longer fails.
	Timeout time.Duration
	// MemLimit, when positive, makes Alloc fail once this many bytes are allocated.
	MemLimit int64
	// Trace, when set, is called before every launch.
	Trace func(kernel string, grid, block Dim3, shmem int)

	mu     sync.Mutex
	blocks map[DevPtr]int
	used   int64
	marks  []time.Time // StreamMarker: the emulation runs each operation before returning
}

// EmuMode is how the emulation runs the threads of a block.
type EmuMode int

const (
	EmuThreads       EmuMode = 0 // one OS thread per CUDA thread
	EmuFibers        EmuMode = 1 // fibers, resumed first to last between barriers
	EmuFibersReverse EmuMode = 2 // fibers, resumed last to first
)

func (m EmuMode) String() string {
	switch m {
	case EmuThreads:
		return "threads"
	case EmuFibersReverse:
		return "fibers, reverse order"
	}
	return "fibers"
}

// NewEmuDriver returns an emulated driver with fibers and a 60-second watchdog.
func NewEmuDriver() *EmuDriver {
	return &EmuDriver{Mode: EmuFibers, Timeout: 60 * time.Second, blocks: map[DevPtr]int{}}
}

func (e *EmuDriver) Info() Info {
	return Info{Name: "CPU emulation (" + e.Mode.String() + ")", Major: 9, Minor: 0, SMs: 1, TotalMem: 1 << 34}
}

func (e *EmuDriver) Alloc(bytes int) (DevPtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("cuda-emu: allocation of %d bytes", bytes)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.MemLimit > 0 && e.used+int64(bytes) > e.MemLimit {
		return 0, fmt.Errorf("cuda-emu: out of memory: %d bytes in use, %d more requested, limit %d", e.used, bytes, e.MemLimit)
	}
	p := emuAlloc(bytes)
	if p == 0 {
		return 0, fmt.Errorf("cuda-emu: host allocation of %d bytes failed", bytes)
	}
	if e.blocks == nil {
		e.blocks = map[DevPtr]int{}
	}
	e.blocks[p] = bytes
	e.used += int64(bytes)
	return p, nil
}

func (e *EmuDriver) Free(p DevPtr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	n, ok := e.blocks[p]
	if !ok {
		return fmt.Errorf("cuda-emu: free of %#x, which this driver did not allocate", uint64(p))
	}
	delete(e.blocks, p)
	e.used -= int64(n)
	if err := emuFree(p); err != nil {
		return fmt.Errorf("cuda-emu: %v", err)
	}
	return nil
}

// Used is the number of bytes currently allocated.
func (e *EmuDriver) Used() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.used
}

func (e *EmuDriver) check(what string, p DevPtr, bytes int) error {
	if !emuCheckPtr(p, bytes) {
		return fmt.Errorf("cuda-emu: %s: [%#x, +%d bytes) is not inside an allocated block", what, uint64(p), bytes)
	}
	return nil
}

func (e *EmuDriver) HtoD(dst DevPtr, src unsafe.Pointer, bytes int) error {
	if err := e.check("HtoD destination", dst, bytes); err != nil {
		return err
	}
	emuHtoD(dst, src, bytes)
	return nil
}

func (e *EmuDriver) DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error {
	if err := e.check("DtoH source", src, bytes); err != nil {
		return err
	}
	emuDtoH(dst, src, bytes)
	return nil
}

func (e *EmuDriver) DtoD(dst, src DevPtr, bytes int) error {
	if err := e.check("DtoD source", src, bytes); err != nil {
		return err
	}
	if err := e.check("DtoD destination", dst, bytes); err != nil {
		return err
	}
	emuDtoD(dst, src, bytes)
	return nil
}

func (e *EmuDriver) Memset32(dst DevPtr, v uint32, n int) error {
	if err := e.check("Memset32", dst, 4*n); err != nil {
		return err
	}
	emuMemset32(dst, v, n)
	return nil
}

func (e *EmuDriver) Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error {
	if err := checkLaunch(kernel, grid, block, shmem); err != nil {
		return err
	}
	sig := make([]byte, len(args))
	slots := make([]uint64, len(args))
	for i, a := range args {
		sig[i], slots[i] = a.Kind, a.Bits
		if a.Kind == 'p' && a.Bits != 0 && !emuCheckPtr(DevPtr(a.Bits), 0) {
			return fmt.Errorf("cuda-emu: %s: argument %d (%#x) points outside every allocated block", kernel, i, a.Bits)
		}
	}
	if e.Trace != nil {
		e.Trace(kernel, grid, block, shmem)
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return emuLaunch(kernel, string(sig), grid, block, shmem, slots, e.Mode, timeout)
}

func (e *EmuDriver) Gemm(g GemmArgs) error {
	if g.M <= 0 || g.N <= 0 || g.Batch <= 0 {
		return nil
	}
	if g.Ptrs {
		return e.gemmPtrs(g)
	}
	es := func(t DataType) int {
		if t == BFloat16 {
			return 2
		}
		return 4
	}
	// The last element each operand reaches, as cuBLAS would read it.
	span := func(rows, cols, ld int, stride int64) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return int(stride)*(g.Batch-1) + ld*(cols-1) + rows
	}
	ar, ac := g.M, g.K
	if g.TransA {
		ar, ac = g.K, g.M
	}
	br, bc := g.K, g.N
	if g.TransB {
		br, bc = g.N, g.K
	}
	if n := span(ar, ac, g.LDA, g.StrideA); n > 0 {
		if err := e.check("Gemm A", g.A, n*es(g.AType)); err != nil {
			return err
		}
	}
	if n := span(br, bc, g.LDB, g.StrideB); n > 0 {
		if err := e.check("Gemm B", g.B, n*es(g.BType)); err != nil {
			return err
		}
	}
	cs := es(g.CType)
	if err := e.check("Gemm C", g.C, cs*span(g.M, g.N, g.LDC, g.StrideC)); err != nil {
		return err
	}
	if g.CType == BFloat16 && (g.AType != BFloat16 || g.BType != BFloat16 || g.Batch != 1 || g.Beta != 0 && g.epilogue()) {
		return fmt.Errorf("cuda-emu: Gemm: a BF16 C only with BF16 inputs, batch 1, and beta 0 with an epilogue")
	}
	if g.Bias != 0 {
		if g.Batch != 1 || g.Beta != 0 || g.GELU == GeluBackward {
			return fmt.Errorf("cuda-emu: Gemm: a bias with batch %d, beta %g or GELU's backward (batch 1 and beta 0 only)", g.Batch, g.Beta)
		}
		if err := e.check("Gemm bias", g.Bias, cs*g.M); err != nil {
			return err
		}
	}
	if g.BiasGrad != 0 {
		if g.Batch != 1 || g.Bias != 0 {
			return fmt.Errorf("cuda-emu: Gemm: a bias gradient with batch %d or a bias (batch 1 and no bias only)", g.Batch)
		}
		n := g.N // BGRADB: op(B)'s column sums; DGELU_BGRAD: C's row sums
		if g.GELU == GeluBackward {
			n = g.M
		}
		if err := e.check("Gemm bias gradient", g.BiasGrad, cs*n); err != nil {
			return err
		}
	}
	if g.GELU != GeluNone {
		// GELU's forward may go without an aux matrix (GELU_BIAS, GELU); its backward reads it.
		noAux := g.GELU == GeluForward && g.Aux == 0 && g.LDAux == 0
		if g.Batch != 1 || g.Beta != 0 || !noAux && (g.Aux == 0 || g.LDAux < g.M) {
			return fmt.Errorf("cuda-emu: Gemm: a GELU epilogue with batch %d, beta %g, aux %#x of leading dimension %d (batch 1, beta 0 and aux of at least M = %d only, or no aux for the forward)",
				g.Batch, g.Beta, g.Aux, g.LDAux, g.M)
		}
		if !noAux && g.LDAux%8 != 0 { // cuBLASLt's rule for the GELU input matrix (cublasLt.h)
			return ErrNoEpilogue
		}
		if !noAux {
			if err := e.check("Gemm aux", g.Aux, cs*span(g.M, g.N, g.LDAux, 0)); err != nil {
				return err
			}
		}
	}
	if g.LDA < max(1, ar) || g.LDB < max(1, br) || g.LDC < max(1, g.M) {
		return fmt.Errorf("cuda-emu: Gemm: leading dimensions %d, %d, %d too small for %dx%d, %dx%d, %dx%d",
			g.LDA, g.LDB, g.LDC, ar, ac, br, bc, g.M, g.N)
	}
	emuGemm(g)
	return nil
}

// gemmPtrs reads the three pointer arrays and runs each product as a GEMM of its own, with
// the same checks.
func (e *EmuDriver) gemmPtrs(g GemmArgs) error {
	if g.epilogue() || g.CType != Float32 {
		return fmt.Errorf("cuda-emu: Gemm: an epilogue or a BF16 C with pointer arrays")
	}
	ptrs := make([][]DevPtr, 3)
	for i, arr := range []DevPtr{g.A, g.B, g.C} {
		ptrs[i] = make([]DevPtr, g.Batch)
		if err := e.DtoH(unsafe.Pointer(&ptrs[i][0]), arr, 8*g.Batch); err != nil {
			return fmt.Errorf("cuda-emu: Gemm pointer array %c: %w", "ABC"[i], err)
		}
	}
	one := g
	one.Ptrs, one.Batch, one.StrideA, one.StrideB, one.StrideC = false, 1, 0, 0, 0
	for i := range g.Batch {
		one.A, one.B, one.C = ptrs[0][i], ptrs[1][i], ptrs[2][i]
		if err := e.Gemm(one); err != nil {
			return fmt.Errorf("batch item %d: %w", i, err)
		}
	}
	return nil
}

func (e *EmuDriver) Synchronize() error { return nil }

// Mark reads the clock: an emulated operation has finished when its call returns.
func (e *EmuDriver) Mark() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.marks = append(e.marks, time.Now())
	return nil
}

// MarkGaps returns the time between consecutive marks and forgets them.
func (e *EmuDriver) MarkGaps() ([]time.Duration, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var gaps []time.Duration
	for i := 1; i < len(e.marks); i++ {
		gaps = append(gaps, e.marks[i].Sub(e.marks[i-1]))
	}
	e.marks = e.marks[:0]
	return gaps, nil
}

// Close frees nothing: blocks still allocated belong to devices that may be used later.
func (e *EmuDriver) Close() error { return nil }
