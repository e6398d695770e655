// The Go GEMM in BF16: C = alpha*op(A)*op(B) + beta*C with op(A) and op(B) rounded to BF16
// (to nearest even) and the products summed in FP32, on CPUs with AVX512_BF16 (the CPU
// device's --precision bf16). The blocked loops and the parallel split are gemm_go.go's;
// only the packing and the micro-kernel differ: BF16 values go in pairs along k, a uint32
// each (the even k in the low half, the odd k in the high half; an odd k's partner past
// the end is 0), and VDPBF16PS adds, for each pair, the odd product and then the even one
// to the FP32 accumulator, each sum rounded, denormal sums flushed to zero
// (bf16DotStep is the same arithmetic in Go).
//
// Each goroutine converts the blocks it multiplies as it packs them (kc and mc are the FP32
// kernel's, so a block's pairs take half its bytes), while they are in the cache: converting
// a whole operand first and reading it back doubled the memory traffic (the conversions took
// 13-45% of a product's time). Packed layouts (kp = ceil(kc/2) pairs):
//
//	B panel of nr columns        b16[jr*kp + p*nr + j]  = pair(op(B)[pc+2p, j], op(B)[pc+2p+1, j])
//	A, not transposed            a16[r*kp + p]          = pair(op(A)[r, pc+2p], op(A)[r, pc+2p+1])
//	                             (row-major: the direct kernel reads rows kp apart; rows
//	                             past the block are zero, so every panel is a full one)
//	A transposed                 a16[ir*kp + p*mr + r]  (panels, as gemm_go.go's packA)
//
// A column of the parallel split converts all of A's rows it multiplies, a row of it all of
// B's columns: gemmGrid prefers the split that converts less (packCost).
//
// Test: go test ./kernels -run BF16
package kernels

import (
	"errors"
	"math"
	"unsafe"
)

// SetGemmBF16 sets whether the device's matrix products (Gemm, GemmStridedBatched, the
// linear layers' and attention's) round their inputs to BF16 and multiply them with the
// BF16 kernel, about twice the FP32 kernel's rate, with FP32 sums.
// It fails where the CPU has no AVX512_BF16: a slower path with the same bits would defeat
// the purpose.
func (d *CPU) SetGemmBF16(on bool) error {
	if on && bf16GemmKernel == nil {
		return errors.New("this CPU has no AVX512_BF16 (Intel Cooper Lake, Sapphire Rapids and later; AMD Zen 4 and later)")
	}
	d.bf16 = on
	return nil
}

// GemmBF16 reports whether the device multiplies in BF16 (SetGemmBF16).
func (d *CPU) GemmBF16() bool { return d.bf16 }

// Precision implements Precisioner: "bf16" after SetGemmBF16(true), else "fp32".
func (d *CPU) Precision() string {
	if d.bf16 {
		return "bf16"
	}
	return "fp32"
}

// Describe says how the device multiplies (align info's "device info").
func (d *CPU) Describe() string {
	if d.bf16 {
		return "GEMM bf16 (" + bf16GemmKernel.name + " kernel, FP32 sums; attention's products too)"
	}
	return "GEMM fp32"
}

// CPUHasBF16 reports whether this CPU can multiply in BF16 (SetGemmBF16).
func CPUHasBF16() bool { return bf16GemmKernel != nil }

// goKernel is the Go GEMM's micro-kernel for the device's products: the BF16 one where set.
func (d *CPU) goKernel() *gemmKernel {
	if d.bf16 {
		return bf16GemmKernel
	}
	return gemmDefault
}

// bf16Fns are a BF16 kernel's two micro-kernels: fn on packed A panels, direct on a
// row-major block of A's pairs (lda pairs apart); kp counts pairs.
type bf16Fns struct {
	fn     func(kp int, a, b *uint32, c *float32, ldc int, alpha, beta float32)
	direct func(kp int, a *uint32, lda int, b *uint32, c *float32, ldc int, alpha, beta float32)
}

// bf16Bits rounds f to BF16 as VCVTNEPS2BF16 does (checked on all 2^32 inputs): to nearest
// even, zero and denormals to a zero of the same sign, NaNs quieted.
func bf16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	switch {
	case b&0x7f800000 == 0:
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000:
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// bf16Value widens BF16 bits to the float32 they stand for.
func bf16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// bf16DotStep is one of VDPBF16PS's sums, acc + a*b for BF16 a and b: the product is exact
// in float64 and the sum is rounded once to float32 (float64's 53 bits make rounding twice
// harmless), a denormal result becomes a zero of its sign.
func bf16DotStep(acc, a, b float32) float32 {
	s := float32(float64(acc) + float64(a)*float64(b))
	if s != 0 && math.Abs(float64(s)) < 0x1p-126 {
		return float32(math.Copysign(0, float64(s)))
	}
	return s
}

// bf16GemmKernel is the BF16 micro-kernel with its blocking, nil where the CPU has no
// AVX512_BF16 (gemm_amd64.go sets it).
var bf16GemmKernel *gemmKernel

// toBF16Asm and pairBF16Asm are the vector conversions where the CPU has AVX512_BF16
// (n a multiple of 16), nil elsewhere.
var (
	toBF16Asm   func(dst *uint16, src *float32, n int)
	pairBF16Asm func(dst *uint32, ds int, even, odd *float32, n int)
)

// pairPanel is the width of pairBF16's panels: the BF16 kernel's nr (gemm_amd64.go), which
// packB's panels assume.
const pairPanel = 32

// toBF16 sets dst[i] = bf16Bits(src[i]).
func toBF16(dst []uint16, src []float32) {
	if len(src) == 0 {
		return
	}
	_ = dst[len(src)-1]
	done := 0
	if toBF16Asm != nil && len(src) >= 16 {
		done = len(src) &^ 15
		toBF16Asm(&dst[0], &src[0], done)
	}
	for i := done; i < len(src); i++ {
		dst[i] = bf16Bits(src[i])
	}
}

// pairBF16 sets dst[(i/32)*ds + i%32] = bf16Bits(even[i]) | bf16Bits(odd[i])<<16 for i <
// len(even): the pairs of two rows of k into panels of pairPanel columns ds words apart (ds =
// pairPanel: one contiguous row); with odd nil (k's last row, when k is odd) the high
// halves are 0.
func pairBF16(dst []uint32, ds int, even, odd []float32) {
	n := len(even)
	if n == 0 {
		return
	}
	at := func(i int) int { return i/pairPanel*ds + i%pairPanel }
	_ = dst[at(n-1)]
	if odd == nil {
		for i, v := range even {
			dst[at(i)] = uint32(bf16Bits(v))
		}
		return
	}
	_ = odd[n-1]
	done := 0
	if pairBF16Asm != nil && n >= 16 {
		done = n &^ 15
		pairBF16Asm(&dst[0], ds, &even[0], &odd[0], done)
	}
	for i := done; i < n; i++ {
		dst[at(i)] = uint32(bf16Bits(even[i])) | uint32(bf16Bits(odd[i]))<<16
	}
}

// halves views the uint32 pairs of w as their 2*len(w) BF16 halves (little-endian: the
// even k first).
func halves(w []uint32) []uint16 {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&w[0])), 2*len(w))
}

// wordsAsFloats views w as float32 of the same bits, for the FP32 packing copies and
// transposes, which move 4-byte elements without looking at them.
func wordsAsFloats(w []uint32) []float32 {
	if len(w) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w))
}

// pairRow converts rows q and q+1 of k (the odd one zero where q+1 = k) of an operand
// stored with k along its rows (row q's n values at s[q*ld+off:]) into n pairs, in panels ds
// words apart as pairBF16 writes them.
func pairRow(dst []uint32, ds int, s []float32, ld, off, q, k, n int) {
	even := s[q*ld+off : q*ld+off+n]
	var odd []float32
	if q+1 < k {
		odd = s[(q+1)*ld+off : (q+1)*ld+off+n]
	}
	pairBF16(dst, ds, even, odd)
}

// rowPairs converts a row of kc values along k (contiguous) into ceil(kc/2) pairs.
func rowPairs(dst []uint32, src []float32) {
	toBF16(halves(dst), src)
	if len(src)%2 == 1 {
		halves(dst)[len(src)] = 0
	}
}

// bf16Packer converts and packs BF16 pairs for a BF16 kernel (see the layouts above).
type bf16Packer struct {
	gemmOperands
	kp int // pairs in the current k block
}

func (o *bf16Packer) packB(w *gemmWork, pc, jc, kc, nc int) {
	nr := o.kern.nr
	kp := ceilDiv(kc, 2)
	o.kp = kp
	if !o.transB {
		// op(B)[q, j] = b[q*ldb + j]: two rows of k give a row of pairs, written across the
		// panels (kp*nr words apart) in one call; a last partial panel's columns past nc are 0.
		for p := 0; p < kp; p++ {
			pairRow(w.b16[p*nr:], kp*nr, o.b, o.ldb, jc, pc+2*p, pc+kc, nc)
			if cols := nc % nr; cols > 0 {
				d := w.b16[(nc-cols)*kp+p*nr:]
				clear(d[cols:nr])
			}
		}
		return
	}
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := w.b16[jr*kp : jr*kp+kp*nr]
		// op(B)[q, j] = b[j*ldb + q]: column j's k values are contiguous; convert each into
		// a row of pairs, then transpose the rows into the panel.
		t := w.t16[:cols*kp]
		for j := 0; j < cols; j++ {
			rowPairs(t[j*kp:j*kp+kp], o.b[(jc+jr+j)*o.ldb+pc:][:kc])
		}
		transposeInto(wordsAsFloats(d), nr, wordsAsFloats(t), kp, cols, kp)
		for p := 0; p < kp; p++ {
			clear(d[p*nr+cols : p*nr+nr])
		}
	}
}

func (o *bf16Packer) packA(w *gemmWork, ic, pc, mc, kc int) {
	mr := o.kern.mr
	kp := ceilDiv(kc, 2)
	if !o.transA {
		// Row-major pairs, rows kp apart, zero rows up to a whole panel.
		for r := 0; r < roundUp(mc, mr); r++ {
			row := w.a16[r*kp : r*kp+kp]
			if r < mc {
				rowPairs(row, o.a[(ic+r)*o.lda+pc:][:kc])
			} else {
				clear(row)
			}
		}
		return
	}
	// op(A)[i, q] = a[q*lda + i]: two rows of k give a row of pairs over the block's mc
	// rows; each panel copies its mr columns of them.
	t := w.t16[:kp*mc]
	for p := 0; p < kp; p++ {
		pairRow(t[p*mc:], pairPanel, o.a, o.lda, ic, pc+2*p, pc+kc, mc)
	}
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := w.a16[ir*kp : ir*kp+kp*mr]
		copyInto(wordsAsFloats(d), mr, wordsAsFloats(t[ir:]), mc, kp, rows)
		for p := 0; p < kp; p++ {
			clear(d[p*mr+rows : p*mr+mr])
		}
	}
}

func (o *bf16Packer) tile(w *gemmWork, ir, jr int, t *float32, ldt int, b float32) {
	a, bp := &w.a16[ir*o.kp], &w.b16[jr*o.kp]
	if o.transA {
		o.kern.bf16.fn(o.kp, a, bp, t, ldt, o.alpha, b)
	} else {
		o.kern.bf16.direct(o.kp, a, o.kp, bp, t, ldt, o.alpha, b)
	}
}
