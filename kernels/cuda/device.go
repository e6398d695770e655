// Package cuda is the CUDA device of align: kernels.Device implemented with the kernels of
// the .cu files in this directory, cuBLAS for matrix products, and a caching allocator.
//
// The Device is written against Driver (driver.go). With the build tag cuda, Open returns
// a Device on the first GPU (realdriver.go: gorgonia.org/cu plus an own cuBLAS wrapper,
// loading the PTX committed under ptx/). In every build, NewEmulated returns the same
// Device over the emulated driver, which runs the same .cu sources compiled for the CPU by
// g++ (emu.h). The conformance tests compare it with the CPU device on every operation.
//
// Layout of this directory: one kernel family per .cu file with its Go launcher in the .go
// file of the same name (elementwise.cu / elementwise.go, ...); common.h, kmath.h (shared
// device code), emu.h + emu_kernels.cc + emu.go (the CPU emulation), ptx_prelude.h (clang's
// PTX build), ptx/ (generated PTX, `make ptx`).
//
// Test: go test ./kernels/cuda            (CPU emulation; about 15 s on 2 cores)
//
//	make test-cuda                          (the same tests on a GPU, build tag cuda)
package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// GemmPrecision selects the inputs of the device's matrix products (FP32 accumulation in
// every case).
type GemmPrecision int

const (
	GemmFP32 GemmPrecision = iota // full FP32 (the default)
	GemmTF32                      // FP32 data, TF32 tensor-core products
	GemmBF16                      // inputs rounded to BF16 by a kernel, then BF16 tensor cores (TF32 for small products, bf16Pays)
)

// ParseGemmPrecision reads "fp32", "tf32" or "bf16" (String's names).
func ParseGemmPrecision(s string) (GemmPrecision, error) {
	for _, p := range []GemmPrecision{GemmFP32, GemmTF32, GemmBF16} {
		if s == p.String() {
			return p, nil
		}
	}
	return GemmFP32, fmt.Errorf("unknown precision %q: fp32, tf32 or bf16", s)
}

func (p GemmPrecision) String() string {
	switch p {
	case GemmTF32:
		return "tf32"
	case GemmBF16:
		return "bf16"
	}
	return "fp32"
}

// Device is the CUDA implementation of kernels.Device. All work goes to one stream, in
// call order; methods panic on shape violations and on driver errors (an out-of-memory
// included), like the CPU device.
type Device struct {
	drv       Driver
	name      string
	info      Info
	alloc     *allocator
	maxBlocks int // cap of grid-stride grids
	prec      GemmPrecision
	tune      int // algorithms timed per product shape (SetGemmTuning); 0 or 1: none
	// attnBudget is the most bytes of score matrices the GEMM path of attention may hold
	// (attnGemmBudget; tests lower it to select the fused kernels or force chunks), and of
	// dQ's shares with dqShares.
	attnBudget int
	// dqShares has the tensor-core attention backward take dQ from the dkv kernel's
	// per-block shares (attention_dq_sum) instead of attention_backward_dq_mma (attention.go).
	dqShares bool
	// colBlocks is the number of blocks a column sum aims at (8 per SM: colSplits; tests
	// raise it to force row splits).
	colBlocks int
	// bf16Intensity is bf16MinIntensity (tests lower it to 0 to run every product in BF16).
	bf16Intensity float64
	// chunkElems is defaultChunkElems (tests lower it to make many chunks of small tensors);
	// adamwTable and sumsTable are the chunked kernels' tables (chunks.go).
	chunkElems                       int
	adamwTable, sumsTable, fillTable deviceTable
	// noAttnMMA keeps attention in BF16 mode off the tensor-core kernels, noBiasGradEpilogue
	// LinearBackward's bias gradient out of the product's epilogue (tests of the other paths,
	// BenchmarkDiTBase's ablations).
	noAttnMMA, noBiasGradEpilogue bool
	// mmaState is mmaOK's finding: 0 not yet checked, 1 the layouts agree, -1 they do not.
	mmaState int
	// noHalves turns off the BF16 copies written by producing kernels (halfOut); checkHalves
	// makes every product that reads one compare it with a fresh conversion (tests);
	// halfReads counts the operands read from a copy, halfRestores the FP32 restorations.
	noHalves, checkHalves bool
	noStoreHalf           bool        // StoreHalf ignored (BenchmarkDiTBase's ablation)
	noKeepHalf            bool        // KeepHalf ignored (the same)
	noFusedNormModulate   bool        // LayerNormModulateForward as two launches (the same)
	noNormColumns         bool        // LayerNormModulateBackward's column sums by their own kernel
	lnmCounts             deviceTable // layernorm_modulate_backward's block counters, zeros
	noGeluEpilogue        bool        // LinearGelu and GeluLinearBackward without GELU epilogues (the same)
	noHalfOutputs         bool        // no product writes a BF16 output (linearHalf, LinearGelu's); the same
	noLazyZero            bool        // FillEach(xs, 0) writes its zeros at once (the same)
	halfReads             int
	halfRestores          int // FP32 values restored from copies (freshF32)
	zeroFills             int // pending zeros written (freshF32)
	closed                bool
}

// NewDevice returns a device over drv, called name (e.g. "cuda:0").
func NewDevice(drv Driver, name string) *Device {
	info := drv.Info()
	return &Device{drv: drv, name: name, info: info, alloc: newAllocator(drv), maxBlocks: 32 * max(info.SMs, 1),
		attnBudget: attnGemmBudget, colBlocks: 8 * max(info.SMs, 1), bf16Intensity: bf16MinIntensity, chunkElems: defaultChunkElems}
}

// NewEmulated returns a device over a fresh emulated driver (fibers), named "cuda-emu".
func NewEmulated() *Device { return NewDevice(NewEmuDriver(), "cuda-emu") }

func (d *Device) Name() string { return d.name }

// Driver returns the driver the device runs on.
func (d *Device) Driver() Driver { return d.drv }

// Info describes the GPU (or the emulation).
func (d *Device) Info() Info { return d.info }

// Describe is a one-line summary for `align info`, e.g. "NVIDIA H100 80GB HBM3, compute
// capability 9.0, 132 SMs, 79 GiB, CUDA driver 12.4, GEMM fp32" (with "tuned over 8
// algorithms" after SetGemmTuning(8)).
func (d *Device) Describe() string {
	i := d.info
	s := fmt.Sprintf("%s, compute capability %d.%d, %d SMs, %d GiB", i.Name, i.Major, i.Minor, i.SMs, i.TotalMem>>30)
	if i.DriverVersion > 0 {
		s += fmt.Sprintf(", CUDA driver %d.%d", i.DriverVersion/1000, i.DriverVersion%1000/10)
	}
	s += ", GEMM " + d.prec.String()
	if d.tune > 1 {
		s += fmt.Sprintf(" tuned over %d algorithms", d.tune)
	}
	return s
}

// MemStats returns the caching allocator's counts.
func (d *Device) MemStats() MemStats { return d.alloc.memStats() }

// EmptyCache returns the cached free blocks to the driver.
func (d *Device) EmptyCache() error { return d.alloc.release() }

// SetGemmPrecision selects FP32, TF32 or BF16 inputs for Gemm and GemmStridedBatched.
func (d *Device) SetGemmPrecision(p GemmPrecision) { d.prec = p }

// Precision implements kernels.Precisioner: the GemmPrecision's name.
func (d *Device) Precision() string { return d.prec.String() }

// gemmTuner is a driver that may time several GEMM algorithms per shape (RealDriver); its
// SetGemmTuning reports whether it can.
type gemmTuner interface{ SetGemmTuning(n int) bool }

// SetGemmTuning has the driver time up to n of cuBLASLt's algorithms for each product shape
// planned from now on and keep the fastest (RealDriver.SetGemmTuning); it reports whether
// the driver can (the emulated one has one algorithm).
func (d *Device) SetGemmTuning(n int) bool {
	t, ok := d.drv.(gemmTuner)
	if !ok || !t.SetGemmTuning(n) {
		return false
	}
	d.tune = n
	return true
}

// Profile makes d time its launches, products and copies in the stream from now on (a
// NewStreamProfiler over its driver; the same profiler on a second call) and returns the
// profiler, whose Report says where the GPU's time went (align --profile).
func (d *Device) Profile() (*Profiler, error) {
	if p, ok := d.drv.(*Profiler); ok && p.InStream() {
		return p, nil
	}
	p, err := NewStreamProfiler(d.drv)
	if err != nil {
		return nil, err
	}
	d.drv = p
	return p, nil
}

// Close frees all memory of the device, its tensors' too, and releases the driver.
// Tensors of the device are invalid afterwards (using one panics).
func (d *Device) Close() error {
	d.closed = true
	err := d.alloc.freeAll()
	if cerr := d.drv.Close(); err == nil {
		err = cerr
	}
	return err
}

// ---- storage ----

// storage is a block of device memory behind one tensor and its views.
type storage struct {
	dev   *Device
	ptr   DevPtr
	n     int // float32 elements
	size  int // allocator class of the block
	freed bool
	half  halfCopy
	// halfOnly: StoreHalf's hint, read by products only; f32Stale: its producers wrote the
	// BF16 copy alone, and the FP32 values of the copy's elements are not current (freshF32).
	halfOnly, f32Stale bool
	// keepHalf: KeepHalf's hint, read by many products between two writes (a weight).
	keepHalf bool
	// zero: every element is 0 but not yet written (FillEach; lazyZero in chunks.go).
	zero bool
}

func (s *storage) Cap() int { return s.n }

// halfCopy is a BF16 copy of part of a storage, elements [off, off+n): written in GemmBF16
// mode by the kernel that wrote those values (halfOut: the producers of layer inputs and
// gradients, AdamW for the weights), or by a product's conversion of its operand (bf16Of),
// so that later products reading the same values skip the f32_to_bf16 pass: a linear
// layer's weight is converted once per sampling run, its input once for the forward and the
// weight gradient. Element i of the storage has its copy at ptr + 2i; the block (2 bytes per
// element of the storage) stays with the storage until it is freed.
//
// The copy is valid only until anything may have written the storage again: every address
// a kernel may write through comes from Device.ptr, which invalidates it. Only inputs that
// are only read (the products' operands, attention's qkv and output gradient) take
// Device.rptr, which does not. So a copy is never stale; at worst a value a kernel read but
// did not change is converted again.
//
// A storage marked by StoreHalf in BF16 mode goes further: its producers write the copy alone
// (outPair), and the FP32 values are restored from it (bf16_to_f32) only if something other
// than a product's BF16 operand reads them.
type halfCopy struct {
	ptr    DevPtr
	size   int // allocator class of the block
	off, n int
	valid  bool
}

// storageOf returns t's storage after checking that t is a live tensor of d that fits it.
func (d *Device) storageOf(t *kernels.Tensor) *storage {
	s, ok := t.Mem.(*storage)
	switch {
	case t.Mem == nil:
		panic(fmt.Sprintf("cuda: %v was freed", t))
	case !ok:
		panic(fmt.Sprintf("cuda: %v is not a tensor of a CUDA device", t))
	case s.dev != d:
		panic(fmt.Sprintf("cuda: %v belongs to another CUDA device", t))
	case d.closed:
		panic(fmt.Sprintf("cuda: %v belongs to a closed device", t))
	case s.freed:
		panic(fmt.Sprintf("cuda: %v was freed", t))
	case t.Offset < 0 || t.Offset+t.Len() > s.n:
		panic(fmt.Sprintf("cuda: %v at offset %d does not fit its storage of %d elements", t, t.Offset, s.n))
	}
	return s
}

// ptr returns the device address of t's first element (0 for a nil tensor), for a kernel
// that may write t: its storage's BF16 copy is no longer valid (halfCopy), and FP32 values
// kept only in the copy are restored first.
func (d *Device) ptr(t *kernels.Tensor) DevPtr {
	if t == nil {
		return 0
	}
	s := d.storageOf(t)
	d.freshF32(s)
	s.half.valid = false
	return s.ptr + DevPtr(4*t.Offset)
}

// wptr is ptr for an output a kernel overwrites whole (a product with beta 0): FP32 values
// kept only in the copy are not restored where the copy lies within t, which is about to be
// written (a tensor kept in BF16 alone by one product, in FP32 by the next: qkv with and
// without a LoRA adapter in Flow-DPO's two passes).
func (d *Device) wptr(t *kernels.Tensor) DevPtr {
	s := d.storageOf(t)
	if h := s.half; s.f32Stale && h.off >= t.Offset && h.off+h.n <= t.Offset+t.Len() {
		s.f32Stale = false
	}
	return d.ptr(t)
}

// rptr is ptr for an input a kernel only reads: the BF16 copy stays valid.
func (d *Device) rptr(t *kernels.Tensor) DevPtr {
	if t == nil {
		return 0
	}
	s := d.storageOf(t)
	d.freshF32(s)
	return s.ptr + DevPtr(4*t.Offset)
}

// readPair returns the addresses a kernel that can read either takes for its input t: the
// BF16 copy (0, copy) where t's values lie there alone (its producer kept it in BF16 only),
// else its FP32 values (rptr, 0).
func (d *Device) readPair(t *kernels.Tensor) (f32, bf16 DevPtr) {
	if s := d.storageOf(t); s.f32Stale {
		if q := d.halfAt(s, t.Offset, t.Len()); q != 0 {
			return 0, q
		}
	}
	return d.rptr(t), 0
}

// freshF32 makes the FP32 values of s current: it writes the zeros FillEach left pending,
// and restores the values its producers left in the BF16 copy only.
func (d *Device) freshF32(s *storage) {
	if s.zero {
		s.zero = false
		d.zeroFills++
		must("zero fill", d.drv.Memset32(s.ptr, 0, s.n))
	}
	if !s.f32Stale {
		return
	}
	s.f32Stale = false
	h := s.half
	d.halfRestores++
	d.launch1("bf16_to_f32", h.n, P(s.ptr+DevPtr(4*h.off)), P(h.ptr+DevPtr(2*h.off)), I(h.n))
}

// StoreHalf marks t's storage as read by products only (kernels.HalfStorer): in BF16 mode
// its producers then write the BF16 copy alone (outPair).
func (d *Device) StoreHalf(t *kernels.Tensor) {
	if !d.noStoreHalf {
		d.storageOf(t).halfOnly = true
	}
}

// KeepHalf marks t's storage as a weight's (kernels.HalfKeeper): in BF16 mode a product
// reading it converts it into its copy whatever the product's own cost (toConvert), since
// the products after it read the copy until the storage is written.
func (d *Device) KeepHalf(t *kernels.Tensor) {
	if !d.noKeepHalf {
		d.storageOf(t).keepHalf = true
	}
}

// outPair returns the FP32 and BF16 addresses a producing kernel writes t's values to: t's
// own and 0 outside BF16 mode; t's own and its copy's (halfOut) in BF16 mode; in BF16 mode
// for a storage marked by StoreHalf, 0 and the copy's (the FP32 values not written). Call it
// after every ptr of the launch, as halfOut.
func (d *Device) outPair(t *kernels.Tensor) (f32, bf16 DevPtr) {
	if !d.halfOnly(t) {
		return d.ptr(t), d.halfOut(t)
	}
	s := d.storageOf(t)
	q := d.markHalf(s, t.Offset, t.Len())
	if q == 0 {
		return d.ptr(t), 0
	}
	s.f32Stale = true
	return 0, q
}

// halfOnly reports whether t's producers write its BF16 copy alone: in BF16 mode, for a
// storage marked by StoreHalf.
func (d *Device) halfOnly(t *kernels.Tensor) bool {
	return d.storageOf(t).halfOnly && d.prec == GemmBF16 && !d.noHalves && t.Len() > 0
}

// halfOut returns the address at which a kernel writing t also writes t's values rounded to
// BF16 (bf16_bits), or 0 outside GemmBF16 mode: the storage's copy then holds exactly t's
// elements. Call it after every ptr of the launch (which would invalidate the copy again).
func (d *Device) halfOut(t *kernels.Tensor) DevPtr {
	if d.prec != GemmBF16 || d.noHalves || t.Len() == 0 {
		return 0
	}
	s := d.storageOf(t)
	return d.markHalf(s, t.Offset, t.Len())
}

// markHalf returns the address of element off's copy in s's block (allocated on first use)
// and records [off, off+n) as the valid copy, which the caller is about to write; 0 where
// there is no room for the block (products then convert into scratch). FP32 values kept
// only in the copy are restored first where the copy is to cover other elements.
func (d *Device) markHalf(s *storage, off, n int) DevPtr {
	if h := s.half; s.f32Stale && (h.off < off || h.off+h.n > off+n) {
		d.freshF32(s) // the copy is about to cover other elements
	}
	if s.half.ptr == 0 {
		p, size, err := d.alloc.get(2 * s.n)
		if err != nil {
			return 0
		}
		s.half.ptr, s.half.size = p, size
	}
	s.half.off, s.half.n, s.half.valid = off, n, true
	return s.half.ptr + DevPtr(2*off)
}

// bf16Of returns the BF16 values of the n elements from element off of t: the storage's
// valid copy, else a conversion into the copy's block, kept for later reads (in scratch
// with noHalves). release hands back scratch.
func (d *Device) bf16Of(t *kernels.Tensor, off, n int) (p DevPtr, release func()) {
	s := d.storageOf(t)
	off += t.Offset
	if off+n > s.n {
		panic(fmt.Sprintf("cuda: BF16 values of [%d, %d) of a storage of %d elements", off, off+n, s.n))
	}
	return d.bf16Operand(operand{bf16: d.halfAt(s, off, n), s: s, off: off}, n)
}

// halfIn returns the address of the valid BF16 copy of the n elements from t's first, or 0.
func (d *Device) halfIn(t *kernels.Tensor, n int) DevPtr {
	if t == nil {
		return 0
	}
	return d.halfAt(d.storageOf(t), t.Offset, n)
}

// halfAt returns the address of the valid BF16 copy of s's elements [off, off+n), or 0.
func (d *Device) halfAt(s *storage, off, n int) DevPtr {
	if h := s.half; d.prec != GemmBF16 || d.noHalves || !h.valid || off < h.off || off+n > h.off+h.n {
		return 0
	}
	return s.half.ptr + DevPtr(2*off)
}

// must panics on a driver error.
func must(op string, err error) {
	if err != nil {
		panic(fmt.Sprintf("cuda: %s: %v", op, err))
	}
}

// newStorage allocates room for n float32 values.
func (d *Device) newStorage(n int) *storage {
	p, size, err := d.alloc.get(4 * n)
	if err != nil {
		panic(fmt.Sprintf("cuda: allocating %d floats: %v\n---> HINT: free tensors that are no longer needed (Device.Free), or use smaller batches", n, err))
	}
	return &storage{dev: d, ptr: p, n: n, size: size}
}

// scratch returns a block of at least bytes for the duration of one operation; release
// hands it back to the cache (safe right after the launches that use it, see alloc.go).
func (d *Device) scratch(bytes int) (p DevPtr, release func()) {
	p, size, err := d.alloc.get(bytes)
	if err != nil {
		panic(fmt.Sprintf("cuda: allocating %d bytes of scratch: %v", bytes, err))
	}
	return p, func() { d.alloc.put(p, size) }
}

func (d *Device) New(shape ...int) *kernels.Tensor {
	n := numel(shape)
	s := d.newStorage(n)
	if n > 0 {
		must("New", d.drv.Memset32(s.ptr, 0, n))
	}
	return &kernels.Tensor{Shape: append([]int(nil), shape...), Dev: d, Mem: s}
}

func (d *Device) FromHost(data []float32, shape ...int) *kernels.Tensor {
	n := numel(shape)
	if len(data) != n {
		panic(fmt.Sprintf("cuda: FromHost got %d values for shape %v", len(data), shape))
	}
	s := d.newStorage(n)
	if n > 0 {
		must("FromHost", d.drv.HtoD(s.ptr, unsafe.Pointer(&data[0]), 4*n))
	}
	return &kernels.Tensor{Shape: append([]int(nil), shape...), Dev: d, Mem: s}
}

func (d *Device) CopyToHost(dst []float32, src *kernels.Tensor) {
	n := src.Len()
	if len(dst) < n {
		panic(fmt.Sprintf("cuda: CopyToHost into %d values from %v", len(dst), src))
	}
	p := d.rptr(src)
	if n > 0 {
		must("CopyToHost", d.drv.DtoH(unsafe.Pointer(&dst[0]), p, 4*n))
	}
}

func (d *Device) CopyFromHost(dst *kernels.Tensor, src []float32) {
	n := dst.Len()
	if len(src) < n {
		panic(fmt.Sprintf("cuda: CopyFromHost of %d values into %v", len(src), dst))
	}
	p := d.ptr(dst)
	if n > 0 {
		must("CopyFromHost", d.drv.HtoD(p, unsafe.Pointer(&src[0]), 4*n))
	}
}

// Copy copies src into dst. Overlapping views of one storage go through scratch, since
// cuMemcpyDtoD leaves overlapping copies undefined (the CPU device's copy is a memmove).
func (d *Device) Copy(dst, src *kernels.Tensor) {
	mustLen("Copy", dst, src.Len())
	pd, ps := d.ptr(dst), d.rptr(src)
	n := src.Len()
	if n == 0 || pd == ps {
		return
	}
	if pd < ps+DevPtr(4*n) && ps < pd+DevPtr(4*n) {
		tmp, release := d.scratch(4 * n)
		defer release()
		must("Copy", d.drv.DtoD(tmp, ps, 4*n))
		ps = tmp
	}
	must("Copy", d.drv.DtoD(pd, ps, 4*n))
}

func (d *Device) Fill(t *kernels.Tensor, v float32) {
	p := d.ptr(t)
	if n := t.Len(); n > 0 {
		must("Fill", d.drv.Memset32(p, math.Float32bits(v), n))
	}
}

// FillEach is Fill of each of xs in one launch over a table of their chunks (fill_chunks),
// where a memset each cost a launch's latency per tensor: ZeroGrad of DiT-B was 185 of them.
// Zeros of storages that xs cover whole are left pending instead (lazyZero).
func (d *Device) FillEach(xs []*kernels.Tensor, v float32) {
	if v == 0 && !d.noLazyZero {
		xs = d.lazyZero(xs)
	}
	words, _ := d.spanWords(xs)
	if len(words) == 0 {
		return
	}
	table := d.upload(&d.fillTable, words)
	d.launch("fill_chunks", Dim3{len(words) / 2, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(table), F(v))
}

// Free returns t's storage to the cache. Views of the same storage become invalid too;
// freeing a tensor twice is a no-op.
func (d *Device) Free(t *kernels.Tensor) {
	if t == nil || t.Mem == nil {
		return
	}
	s, ok := t.Mem.(*storage)
	if !ok || s.dev != d {
		panic(fmt.Sprintf("cuda: Free of %v, which is not a tensor of this device", t))
	}
	if !s.freed && !d.closed { // Close freed it already
		s.freed = true
		d.alloc.put(s.ptr, s.size)
		if s.half.ptr != 0 {
			d.alloc.put(s.half.ptr, s.half.size)
		}
	}
	t.Mem = nil
}

func (d *Device) Synchronize() error { return d.drv.Synchronize() }

// ---- launching ----

// blockSize is the block of the 1-D grid-stride kernels.
const blockSize = 256

// grid1 is the grid of a 1-D grid-stride kernel over n items: one thread per item, at most
// maxBlocks blocks (each thread then loops).
func (d *Device) grid1(n int) Dim3 {
	return Dim3{min(max((n+blockSize-1)/blockSize, 1), d.maxBlocks), 1, 1}
}

// launch runs a kernel and panics if the driver refuses it.
func (d *Device) launch(kernel string, grid, block Dim3, shmem int, args ...Arg) {
	if err := checkLaunch(kernel, grid, block, shmem); err != nil {
		panic(err.Error())
	}
	if err := d.drv.Launch(kernel, grid, block, shmem, args); err != nil {
		panic(fmt.Sprintf("cuda: launch %s grid %v block %v: %v", kernel, grid, block, err))
	}
}

// launch1 runs a 1-D grid-stride kernel over n items (nothing when n == 0).
func (d *Device) launch1(kernel string, n int, args ...Arg) {
	if n == 0 {
		return
	}
	d.launch(kernel, d.grid1(n), Dim3{blockSize, 1, 1}, 0, args...)
}

// ---- shape checks (the same messages as the CPU device) ----

func numel(shape []int) int {
	n := 1
	for _, s := range shape {
		if s < 0 {
			panic(fmt.Sprintf("cuda: negative dimension in shape %v", shape))
		}
		n *= s
	}
	return n
}

// mustLen panics unless t holds exactly n elements.
func mustLen(op string, t *kernels.Tensor, n int) {
	if t == nil {
		panic(fmt.Sprintf("cuda: %s: nil tensor where %d elements were expected", op, n))
	}
	if t.Len() != n {
		panic(fmt.Sprintf("cuda: %s: %v has %d elements, want %d", op, t, t.Len(), n))
	}
}

var _ kernels.Device = (*Device)(nil)
