// The driver interface the CUDA device is written against: memory, copies, kernel launches by
// name with packed arguments, and cuBLAS-style GEMM. Two implementations: the emulated driver
// (emudriver.go, always built: host memory and the g++-compiled kernels, so the device's Go
// logic runs in every `go test`) and the real one (realdriver.go, build tag cuda:
// gorgonia.org/cu and the cuBLAS wrapper in cublas.go).
//
// Test: go test ./kernels/cuda
package cuda

import (
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// DevPtr is an address in device memory (a host address under the emulated driver).
type DevPtr uint64

// Dim3 is a grid or block shape.
type Dim3 struct{ X, Y, Z int }

func (d Dim3) String() string { return fmt.Sprintf("(%d,%d,%d)", d.X, d.Y, d.Z) }

// Threads is X*Y*Z.
func (d Dim3) Threads() int { return d.X * d.Y * d.Z }

// Arg is one packed kernel argument: 8 bytes (4-byte values in the low half, as
// gorgonia.org/cu copies 8 bytes from every argument) and the letter of its C type, which
// the emulated driver checks against the kernel's parameter list.
type Arg struct {
	Bits uint64
	Kind byte // p pointer, i int32, f float32, q uint64
}

// P packs a device pointer.
func P(p DevPtr) Arg { return Arg{uint64(p), 'p'} }

// I packs an int32 (panics outside its range: kernels index with int).
func I(v int) Arg {
	if v < math.MinInt32 || v > math.MaxInt32 {
		panic(fmt.Sprintf("cuda: kernel argument %d does not fit in int32", v))
	}
	return Arg{uint64(uint32(int32(v))), 'i'}
}

// F packs a float32.
func F(v float32) Arg { return Arg{uint64(math.Float32bits(v)), 'f'} }

// Q packs a uint64 (unsigned long long).
func Q(v uint64) Arg { return Arg{v, 'q'} }

// DataType is the element type of a GEMM operand.
type DataType int

const (
	Float32  DataType = 0 // CUDA_R_32F
	BFloat16 DataType = 1 // CUDA_R_16BF (bits in a uint16)
)

// ComputeType is the GEMM arithmetic; accumulation is FP32 in every case.
type ComputeType int

const (
	ComputeFP32 ComputeType = 0 // CUBLAS_COMPUTE_32F
	ComputeTF32 ComputeType = 1 // CUBLAS_COMPUTE_32F_FAST_TF32
)

// GemmArgs are the arguments of cublasGemmStridedBatchedEx on column-major matrices:
// C_i = Alpha*op(A_i)*op(B_i) + Beta*C_i for i < Batch, op(A) (M,K), op(B) (K,N), C (M,N),
// A_i at A + i*StrideA elements (likewise B, C). Beta == 0 means C is not read. Bias, where
// not 0, is a vector of M added to every column of C (cuBLASLt's bias epilogue: a linear
// layer's bias without a pass of its own); only with Batch 1 and Beta 0. BiasGrad, where not
// 0, is a vector of N that receives the column sums of op(B), sum_l op(B)[l,j] (cuBLASLt's
// BGRADB epilogue: a linear layer's bias gradient read from the output gradient the weight
// gradient's product reads anyway); only with Batch 1 and no Bias. With Ptrs, A, B and C are
// device arrays of Batch addresses, one matrix each (cublasGemmBatchedEx), and the strides
// are unused: attention multiplies the heads where they lie in the packed (B,T,3,NH,HS)
// layout, which no single stride reaches.
//
// GELU epilogues (Batch 1, Beta 0), with Aux an (M,N) matrix of leading dimension LDAux:
// GeluForward writes P = op(A)op(B) (+ Bias) to Aux and gelu(P) to C (GELU_AUX_BIAS, or
// GELU_AUX without a bias), or where Aux is 0 gelu(P) alone (GELU_BIAS, GELU); GeluBackward writes op(A)op(B) ⊙ gelu'(Aux) to C and, where
// BiasGrad is set, the sums of C's rows to that vector of M (DGELU_BGRAD, or DGELU).
//
// CType is the element type of C, and of the bias, the bias gradient and Aux, as cuBLASLt
// has them (BFloat16 only with BFloat16 inputs and Batch 1; with an epilogue, Beta 0). A
// driver that cannot run an epilogue, or a BF16 C, for a product returns ErrNoEpilogue.
type GemmArgs struct {
	TransA, TransB bool
	M, N, K        int
	Alpha          float32
	A              DevPtr
	AType          DataType
	LDA            int
	StrideA        int64
	B              DevPtr
	BType          DataType
	LDB            int
	StrideB        int64
	Beta           float32
	C              DevPtr
	CType          DataType
	LDC            int
	StrideC        int64
	Batch          int
	Compute        ComputeType
	Bias           DevPtr
	BiasGrad       DevPtr
	GELU           GeluEpilogue
	Aux            DevPtr
	LDAux          int
	Ptrs           bool
}

// GeluEpilogue selects GemmArgs's GELU epilogue.
type GeluEpilogue int

const (
	GeluNone     GeluEpilogue = iota
	GeluForward               // C = gelu(P), Aux = P
	GeluBackward              // C = P ⊙ gelu'(Aux)
)

// epilogue reports whether g asks for any of cuBLASLt's epilogues.
func (g GemmArgs) epilogue() bool { return g.Bias != 0 || g.BiasGrad != 0 || g.GELU != GeluNone }

// ErrNoEpilogue is what Driver.Gemm returns for a product with an epilogue (bias, bias
// gradient, GELU) that it cannot run (no cuBLASLt algorithm for the shape); the device then
// computes the epilogue's part with kernels of its own.
var ErrNoEpilogue = errors.New("cuda: no GEMM with a bias or bias-gradient epilogue for this product")

// Info describes the device behind a driver.
type Info struct {
	Name          string // e.g. "NVIDIA H100 80GB HBM3" or "CPU emulation (fibers)"
	Major, Minor  int    // compute capability
	SMs           int    // multiprocessors
	TotalMem      int64  // bytes
	DriverVersion int    // e.g. 12040 for CUDA 12.4 (0 when emulated)
}

// Driver is the small set of operations the CUDA device needs. Copies and launches are
// ordered on one stream; DtoH returns when the data has arrived.
type Driver interface {
	Info() Info
	Alloc(bytes int) (DevPtr, error)
	Free(p DevPtr) error
	HtoD(dst DevPtr, src unsafe.Pointer, bytes int) error
	DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error
	DtoD(dst, src DevPtr, bytes int) error
	// Memset32 sets n 32-bit words at dst to v.
	Memset32(dst DevPtr, v uint32, n int) error
	// Launch runs the kernel of that name (extern "C" in the .cu files) with dynamic shared
	// memory of shmem bytes.
	Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error
	Gemm(g GemmArgs) error
	Synchronize() error
	Close() error
}

// StreamMarker is a driver that times its stream's work without waiting for it, for the
// in-stream profile (NewStreamProfiler). The marks of a run are read together at its end.
type StreamMarker interface {
	// Mark records a timing event into the stream after the work issued so far.
	Mark() error
	// MarkGaps waits for the stream and returns, in order, the time between each mark and
	// the one before it (one fewer than the marks), then forgets the marks.
	MarkGaps() ([]time.Duration, error)
}

// Launch limits every CUDA GPU of compute capability 8.0 and later accepts without opt-in.
const (
	maxBlockThreads = 1024
	maxGridYZ       = 65535
	maxGridX        = 1<<31 - 1
	maxDynShared    = 48 << 10
)

// checkLaunch rejects launch shapes that a GPU would refuse, and block sizes that are not
// whole warps (a rule of this package: the shuffles of the kernels assume full warps).
func checkLaunch(kernel string, grid, block Dim3, shmem int) error {
	switch {
	case grid.X < 1 || grid.Y < 1 || grid.Z < 1 || grid.X > maxGridX || grid.Y > maxGridYZ || grid.Z > maxGridYZ:
		return fmt.Errorf("cuda: %s: invalid grid %v", kernel, grid)
	case block.X < 1 || block.Y < 1 || block.Z < 1 || block.Threads() > maxBlockThreads:
		return fmt.Errorf("cuda: %s: invalid block %v", kernel, block)
	case block.Threads()%32 != 0:
		return fmt.Errorf("cuda: %s: block %v is not a whole number of warps", kernel, block)
	case shmem < 0 || shmem > maxDynShared:
		return fmt.Errorf("cuda: %s: %d bytes of dynamic shared memory (at most %d)", kernel, shmem, maxDynShared)
	}
	return nil
}
