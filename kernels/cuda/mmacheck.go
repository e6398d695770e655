// The tensor-core attention kernels (attention.cu) assume the fragment layouts PTX documents
// for mma.sync.aligned.m16n8k16 and ldmatrix (plain and .trans), which the emulation
// implements (emu.h).
// Before they first run on a device, the device multiplies tiles of small integers through
// attention_mma_tile and compares with the exact products; a device whose tensor cores
// disagree runs attention on the other paths instead of computing wrong values.
//
// Test: go test ./kernels/cuda -run 'Conformance/MMATile|MMACheck'
package cuda

import (
	"fmt"
	"math"
	"os"
	"unsafe"
)

// mmaTileCheck runs attention_mma_tile on A (16,16) and B (16,16) of small integers (exact in
// BF16 and in FP32 sums) and returns an error naming the first element that differs from the
// plain product: A by B's first 8 columns with the fragments loaded by PTX's formulas, and
// A by B with B's fragments from ldmatrix_x4_trans, with B's from ldmatrix_x4 (from B^T),
// with A's from ldmatrix_x4, and with A's from ldmatrix_x4_trans (from A^T).
func (d *Device) mmaTileCheck() error {
	var a, b [16 * 16]uint16
	var av, bv [16 * 16]float64
	for i := range a {
		av[i], bv[i] = float64((i*7)%11-5), float64((i*5)%13-6)
		// Small integers are exact in BF16: their FP32 bits' upper half.
		a[i], b[i] = uint16(math.Float32bits(float32(av[i]))>>16), uint16(math.Float32bits(float32(bv[i]))>>16)
	}
	pa, relA := d.scratch(2 * len(a))
	defer relA()
	pb, relB := d.scratch(2 * len(b))
	defer relB()
	const n = 16*8 + 4*16*16
	pd, relD := d.scratch(4 * n)
	defer relD()
	must("MMA check", d.drv.HtoD(pa, unsafe.Pointer(&a[0]), 2*len(a)))
	must("MMA check", d.drv.HtoD(pb, unsafe.Pointer(&b[0]), 2*len(b)))
	d.launch("attention_mma_tile", Dim3{1, 1, 1}, Dim3{32, 1, 1}, 0, P(pd), P(pa), P(pb))
	var got [n]float32
	must("MMA check", d.drv.DtoH(unsafe.Pointer(&got[0]), pd, 4*n))
	for i := range 16 {
		for j := range 16 {
			var want float64
			for k := range 16 {
				want += av[i*16+k] * bv[k*16+j]
			}
			if j < 8 && float64(got[i*8+j]) != want {
				return fmt.Errorf("the tensor cores' mma fragment layouts differ from the kernels': D[%d][%d] = %g, want %g", i, j, got[i*8+j], want)
			}
			for k, how := range []string{"ldmatrix.trans for B", "ldmatrix for B", "ldmatrix for A", "ldmatrix.trans for A"} {
				if g := got[128+k*256+i*16+j]; float64(g) != want {
					return fmt.Errorf("ldmatrix's fragment layout differs from the kernels' (%s): D[%d][%d] = %g, want %g", how, i, j, g, want)
				}
			}
		}
	}
	return nil
}

// mmaOK reports whether the tensor-core attention may run: the first call checks the
// layouts (mmaTileCheck); on a device that disagrees attention keeps to the other paths,
// which is said once on stderr.
func (d *Device) mmaOK() bool {
	if d.mmaState == 0 {
		d.mmaState = 1
		if err := d.mmaTileCheck(); err != nil {
			d.mmaState = -1
			fmt.Fprintf(os.Stderr, "cuda: %v; attention runs without the tensor-core kernels\n", err)
		}
	}
	return d.mmaState > 0
}
