//go:build cuda

// The real driver (build tag cuda): a thin layer over gorgonia.org/cu (primary context,
// one non-blocking stream, memory, PTX modules, launches) and cublas.go. Everything above it
// (allocation, argument packing, grid sizes, launch order) is the Device's Go code, which
// the emulated driver runs in every `go test`; only this file needs a GPU to be tested.
//
// Every method takes the driver's lock and makes the context current on the calling OS
// thread, so the device may be used from any goroutine.
//
// Test: make test-cuda (on a GPU)
package cuda

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/alignkit/align/kernels"
)

func init() {
	kernels.Register("cuda", func() (kernels.Device, error) { return Open(0) })
}

// Open returns the CUDA device on GPU ordinal (0 is the first).
func Open(ordinal int) (*Device, error) {
	drv, err := NewRealDriver(ordinal)
	if err != nil {
		return nil, err
	}
	return NewDevice(drv, fmt.Sprintf("cuda:%d", ordinal)), nil
}

// RealDriver runs on a GPU through the CUDA driver API.
type RealDriver struct {
	mu     sync.Mutex
	dev    cu.Device
	ctx    cu.CUContext
	stream cu.Stream
	mods   []cu.Module
	fns    map[string]cu.Function
	blas   *cublas
	info   Info
	events []cu.Event // StreamMarker: a pool, reused from run to run
	marked int        // events recorded since the last MarkGaps
}

// NewRealDriver opens GPU ordinal: its primary context, a stream, the PTX modules for its
// architecture and a cuBLAS handle on the stream.
func NewRealDriver(ordinal int) (*RealDriver, error) {
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("cuda: device %d: %w", ordinal, err)
	}
	r := &RealDriver{dev: dev, fns: map[string]cu.Function{}}
	if r.info.Name, err = dev.Name(); err != nil {
		return nil, err
	}
	if r.info.Major, r.info.Minor, err = dev.ComputeCapability(); err != nil {
		return nil, err
	}
	if r.info.TotalMem, err = dev.TotalMem(); err != nil {
		return nil, err
	}
	if r.info.SMs, err = dev.Attribute(cu.MultiprocessorCount); err != nil {
		return nil, err
	}
	r.info.DriverVersion = cu.Version()
	arch, err := ptxArch(r.info.Major, r.info.Minor)
	if err != nil {
		return nil, fmt.Errorf("cuda: %s: %w", r.info.Name, err)
	}
	mods, err := ptxModules(arch)
	if err != nil {
		return nil, err
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("cuda: primary context: %w", err)
	}
	if err = cu.SetCurrentContext(r.ctx); err != nil {
		return nil, err
	}
	fail := func(err error) (*RealDriver, error) {
		r.release()
		return nil, err
	}
	if r.stream, err = cu.MakeStream(cu.NonBlocking); err != nil {
		return fail(fmt.Errorf("cuda: stream: %w", err))
	}
	fams := make([]string, 0, len(mods))
	for f := range mods {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	for _, f := range fams {
		m, err := cu.LoadData(mods[f])
		if err != nil {
			return fail(fmt.Errorf("cuda: load PTX module %s/%s: %w\n---> HINT: the driver may be older than the PTX ISA (7.8 for sm_90 needs a CUDA 12 driver)", arch, f, err))
		}
		r.mods = append(r.mods, m)
		for name := range ptxEntries(mods[f]) {
			fn, err := m.Function(name)
			if err != nil {
				return fail(fmt.Errorf("cuda: kernel %s in %s: %w", name, f, err))
			}
			r.fns[name] = fn
		}
	}
	if r.blas, err = newCublas(r.stream); err != nil {
		return fail(fmt.Errorf("cuda: %w", err))
	}
	return r, nil
}

// enter locks the driver and the OS thread and makes the context current; call the
// returned function when done.
func (r *RealDriver) enter() func() {
	r.mu.Lock()
	runtime.LockOSThread()
	if err := cu.SetCurrentContext(r.ctx); err != nil {
		runtime.UnlockOSThread()
		r.mu.Unlock()
		panic(fmt.Sprintf("cuda: set context: %v", err))
	}
	return func() {
		runtime.UnlockOSThread()
		r.mu.Unlock()
	}
}

func (r *RealDriver) Info() Info { return r.info }

func (r *RealDriver) Alloc(bytes int) (DevPtr, error) {
	defer r.enter()()
	p, err := cu.MemAlloc(int64(bytes))
	return DevPtr(p), err
}

func (r *RealDriver) Free(p DevPtr) error {
	defer r.enter()()
	return cu.MemFree(cu.DevicePtr(p))
}

func (r *RealDriver) HtoD(dst DevPtr, src unsafe.Pointer, bytes int) error {
	defer r.enter()()
	return cu.MemcpyHtoDAsync(cu.DevicePtr(dst), src, int64(bytes), r.stream)
}

func (r *RealDriver) DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error {
	defer r.enter()()
	if err := cu.MemcpyDtoHAsync(dst, cu.DevicePtr(src), int64(bytes), r.stream); err != nil {
		return err
	}
	return r.stream.Synchronize()
}

func (r *RealDriver) DtoD(dst, src DevPtr, bytes int) error {
	defer r.enter()()
	return cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), int64(bytes), r.stream)
}

func (r *RealDriver) Memset32(dst DevPtr, v uint32, n int) error {
	defer r.enter()()
	return cu.MemsetD32Async(cu.DevicePtr(dst), uint(v), int64(n), r.stream)
}

func (r *RealDriver) Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error {
	fn, ok := r.fns[kernel]
	if !ok {
		return fmt.Errorf("no kernel %s in the PTX modules", kernel)
	}
	slots := make([]uint64, len(args))
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		slots[i] = a.Bits
		params[i] = unsafe.Pointer(&slots[i])
	}
	defer r.enter()()
	return fn.Launch(grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, shmem, r.stream, params)
}

// SetGemmTuning makes each product planned from now on time the first n algorithms
// cuBLASLt's heuristic proposes for its shape and keep the fastest (n <= 1: the heuristic's
// first, the default). Tuned choices depend on timings, so two processes may multiply with
// different algorithms and their results differ in the last bits. It returns true.
func (r *RealDriver) SetGemmTuning(n int) bool {
	defer r.enter()()
	r.blas.tune = n
	return true
}

func (r *RealDriver) Gemm(g GemmArgs) error {
	defer r.enter()()
	return r.blas.gemm(g)
}

func (r *RealDriver) Synchronize() error {
	defer r.enter()()
	return r.stream.Synchronize()
}

// Mark records the next event of the pool into the stream (made on first use).
func (r *RealDriver) Mark() error {
	defer r.enter()()
	if r.marked == len(r.events) {
		ev, err := cu.MakeEvent(cu.DefaultEvent)
		if err != nil {
			return fmt.Errorf("cuda: event: %w", err)
		}
		r.events = append(r.events, ev)
	}
	if err := r.events[r.marked].Record(r.stream); err != nil {
		return err
	}
	r.marked++
	return nil
}

// MarkGaps waits for the stream and reads the time between consecutive events (a
// resolution of about half a microsecond).
func (r *RealDriver) MarkGaps() ([]time.Duration, error) {
	defer r.enter()()
	n := r.marked
	r.marked = 0
	if err := r.stream.Synchronize(); err != nil {
		return nil, err
	}
	var gaps []time.Duration
	for i := 1; i < n; i++ {
		ms, err := r.events[i-1].Elapsed(r.events[i])
		if err != nil {
			return nil, fmt.Errorf("cuda: event time: %w", err)
		}
		gaps = append(gaps, time.Duration(ms*float64(time.Millisecond)))
	}
	return gaps, nil
}

func (r *RealDriver) Close() error {
	defer r.enter()()
	return r.release()
}

// release frees what NewRealDriver made, in reverse order.
func (r *RealDriver) release() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	if r.blas != nil {
		keep(r.blas.close())
		r.blas = nil
	}
	for i := range r.events {
		keep(cu.DestroyEvent(&r.events[i]))
	}
	r.events = nil
	for _, m := range r.mods {
		keep(m.Unload())
	}
	r.mods = nil
	if r.stream != (cu.Stream{}) {
		keep(r.stream.Destroy())
	}
	keep(r.dev.ReleasePrimaryCtx())
	return first
}
