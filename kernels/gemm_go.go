// Pure-Go SGEMM (no cgo): blocked, packed and parallel, with register-blocked micro-kernels
// in Go assembly on amd64 (package internal/gemmasm: AVX-512 12x32, AVX2+FMA 6x16, plus the
// packing copies and transposes) and a generic Go micro-kernel elsewhere or with the purego
// build tag. It is the CPU device's GEMM when
// OpenBLAS is absent, and the single-threaded sgemmSerial that attention calls per head.
//
// Algorithm (Goto & van de Geijn, "Anatomy of high-performance matrix multiplication",
// ACM TOMS 2008; the BLIS five-loop form). All matrices are row-major; op(A) is m x k,
// op(B) is k x n, C is m x n:
//
//	for jc in steps of nc over n:                       B block  kc x nc  -> L2
//	  for pc in steps of kc over k:  pack op(B)[pc:pc+kc, jc:jc+nc]
//	    for ic in steps of mc over m: pack op(A)[ic:ic+mc, pc:pc+kc]
//	      for ir in steps of mr:                        A micro-panel kc x mr -> L1
//	        for jr in steps of nr:                      B micro-panel streams from L2
//	          C[ir:ir+mr, jr:jr+nr] = alpha*Apanel*Bpanel + beta'*C   (micro-kernel)
//
// with beta' = beta for the first k block and 1 afterwards. Where op(A) is A itself (not
// transposed) and the micro-kernel has a direct variant, the full A micro-panels are not
// packed: the kernel reads A's rows in place (the same products in the same order; 2-7%
// faster on DiT's shapes, where packing A cost about 8% of the products' time). Packed
// layouts: an A micro-panel holds ap[p*mr + r] = op(A)[i0+r, p0+p], a B micro-panel holds
// bp[p*nr + j] = op(B)[p0+p, j0+j]; rows or columns past the matrix edge are zero, so the
// kernel always computes a full mr x nr tile and edge tiles go through a small buffer.
//
// Parallelism: C is cut into a grid of tm x tn rectangles (tm*tn <= threads, aligned to
// mr and nr), and each goroutine runs the serial algorithm on its rectangle with its own
// packing buffers. Work is assigned by index only, so results do not depend on scheduling
// (each C element is always summed in the same order).
//
// Test: go test -run Gemm ./kernels          Bench: go test -run '^$' -bench GemmTable ./kernels
// Portable kernel only: go test -tags purego -run Gemm ./kernels
package kernels

import (
	"fmt"
	"sync"
	"unsafe"
)

// gemmKernel is a micro-kernel together with the cache blocking that suits it.
type gemmKernel struct {
	name   string
	mr, nr int // register tile
	kc     int // depth of a packed block: the A micro-panel kc*mr*4 bytes stays in L1
	mc     int // rows of a packed A block (multiple of mr)
	nc     int // columns of a packed B block (multiple of nr): kc*nc*4 bytes fit in L2
	// fn computes C[0:mr, 0:nr] = alpha*sum_p a[p*mr+r]*b[p*nr+j] + beta*C (see
	// internal/gemmasm/gemm_amd64_gen.go); beta == 0 does not read C. ldc is in elements.
	fn func(k int, a, b, c *float32, ldc int, alpha, beta float32)
	// direct, where set, is fn reading op(A) in place (row-major, rows lda apart) instead of
	// a packed panel: the same bits, without packing A when it is not transposed.
	direct func(k int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)
	// bf16, where set, makes this a BF16 kernel (gemm_bf16.go): op(A) and op(B) rounded to
	// BF16 and packed in pairs along k; fn and direct are then unused.
	bf16 *bf16Fns
	pool sync.Pool // of *gemmWork
}

// gemmWork holds one goroutine's packing buffers: a and b for an FP32 kernel, a16, b16 and
// t16 (a conversion's scratch) for a BF16 one; tmp for edge tiles.
type gemmWork struct {
	a, b, tmp     []float32
	a16, b16, t16 []uint32
}

// gemmKernels lists the micro-kernels this CPU can run, fastest first; the generic Go
// kernel is always last. gemmDefault is the one the Go GEMM uses.
var (
	gemmKernels = append(asmGemmKernels(), genericGemmKernel)
	gemmDefault = gemmKernels[0]
)

// genericGemmKernel is the portable micro-kernel: 4x4 scalar accumulators.
var genericGemmKernel = &gemmKernel{name: "go4x4", mr: 4, nr: 4, kc: 256, mc: 128, nc: 1024, fn: sgemmKernel4x4Go}

func (kern *gemmKernel) work() *gemmWork {
	if w, ok := kern.pool.Get().(*gemmWork); ok {
		return w
	}
	if kern.bf16 != nil {
		kp := ceilDiv(kern.kc, 2)
		return &gemmWork{
			a16: alignedWords(roundUp(kern.mc, kern.mr) * kp),
			b16: alignedWords(kern.nc * kp),
			t16: alignedWords(max(kern.nr, kern.mc) * kp),
			tmp: alignedFloats(kern.mr * kern.nr),
		}
	}
	return &gemmWork{
		a:   alignedFloats(kern.mc * kern.kc),
		b:   alignedFloats(kern.kc * kern.nc),
		tmp: alignedFloats(kern.mr * kern.nr),
	}
}

// alignedFloats returns n zeroed float32 starting on a 64-byte (cache line) boundary, so
// that vector loads of packed panels never straddle two lines.
func alignedFloats(n int) []float32 {
	buf := make([]float32, n+16)
	off := int((64 - uintptr(unsafe.Pointer(&buf[0]))%64) % 64 / 4)
	return buf[off : off+n : off+n]
}

// alignedWords is alignedFloats for uint32 (BF16 pairs).
func alignedWords(n int) []uint32 {
	f := alignedFloats(n)
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(f))), n)
}

// gemmGo is the pure-Go SGEMM on host slices: C = alpha*op(A)*op(B) + beta*C, row-major,
// with leading dimensions lda, ldb, ldc, on up to threads goroutines.
func gemmGo(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmGoKernel(gemmDefault, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmGoKernel is gemmGo with an explicit micro-kernel (tests run every available one).
func gemmGoKernel(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmGoEpilogue(kern, threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
}

// gemmGoEpilogue is gemmGoKernel followed by epi (nil: none) on every row of C, each band of
// rows as soon as its last k block is done, while it is in the cache.
func gemmGoEpilogue(kern *gemmKernel, threads int, transA, transB bool, m, n, k int, alpha float32,
	a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, epi *gemmEpilogue) {
	checkGemmArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		epi.apply(c, ldc, 0, 0, m, n)
		return
	}
	if threads < 1 {
		threads = 1
	}
	// About 2^21 flops (a 100^3 product) per goroutine before splitting pays off.
	if lim := 2 * m * n * k >> 21; lim < threads {
		threads = max(lim, 1)
	}
	// packer(i0, j0) packs the operands of the rectangle whose first element of C is row i0,
	// column j0.
	packer := func(i0, j0 int) gemmPacker {
		ao := i0 * lda // op(A) row i0
		if transA {
			ao = i0
		}
		bo := j0 // op(B) column j0
		if transB {
			bo = j0 * ldb
		}
		ops := gemmOperands{kern: kern, transA: transA, transB: transB, a: a[ao:], lda: lda, b: b[bo:], ldb: ldb, alpha: alpha}
		if kern.bf16 != nil {
			return &bf16Packer{gemmOperands: ops}
		}
		return &f32Packer{gemmOperands: ops}
	}
	tm, tn := gemmGrid(threads, m, n, kern)
	if tm*tn == 1 {
		kern.serial(packer(0, 0), m, n, k, beta, c, ldc, epi.at(0, 0))
		return
	}
	// Rectangle (x, y) holds rows [x*rs, min(m,(x+1)*rs)) and columns [y*cs, ...).
	rs := roundUp(ceilDiv(m, tm), kern.mr)
	cs := roundUp(ceilDiv(n, tn), kern.nr)
	var wg sync.WaitGroup
	for x := 0; x < tm; x++ {
		for y := 0; y < tn; y++ {
			i0, j0 := x*rs, y*cs
			if i0 >= m || j0 >= n {
				continue
			}
			mm, nn := min(rs, m-i0), min(cs, n-j0)
			ops, co := packer(i0, j0), i0*ldc+j0
			wg.Add(1)
			go func() {
				defer wg.Done()
				kern.serial(ops, mm, nn, k, beta, c[co:], ldc, epi.at(i0, j0))
			}()
		}
	}
	wg.Wait()
}

// gemmGrid picks tm x tn <= threads rectangles for an m x n product: the largest
// rectangle (in padded tiles) is as small as possible, then kern's packing work for one
// rectangle (packCost) is as small as possible. A BF16 kernel accepts rectangles up to
// 3% larger for less packing: its packing converts, and a rectangle converts every row of A
// it multiplies (BenchmarkGemmBF16's 4352 x 256 x 1024 took 1.4x the FP32 time split in
// columns, where each goroutine converts all of A, 1.67x split in rows).
func gemmGrid(threads, m, n int, kern *gemmKernel) (tm, tn int) {
	if threads <= 1 {
		return 1, 1
	}
	tilesM, tilesN := ceilDiv(m, kern.mr), ceilDiv(n, kern.nr)
	type grid struct{ x, y, rows, cols int }
	grids := make([]grid, 0, 64) // on the stack for up to 19 threads (the divisors of 1..19)
	minArea := -1
	for t := threads; t >= 1; t-- {
		for x := 1; x <= t; x++ {
			if t%x != 0 {
				continue
			}
			y := t / x
			if x > tilesM || y > tilesN {
				continue
			}
			g := grid{x, y, ceilDiv(tilesM, x) * kern.mr, ceilDiv(tilesN, y) * kern.nr}
			grids = append(grids, g)
			if a := g.rows * g.cols; minArea < 0 || a < minArea {
				minArea = a
			}
		}
	}
	slack := 0
	if kern.bf16 != nil {
		slack = minArea * 3 / 100
	}
	best := -1
	tm, tn = 1, 1
	for _, g := range grids {
		if g.rows*g.cols > minArea+slack {
			continue
		}
		if c := kern.packCost(g.rows, g.cols); best < 0 || c < best {
			best, tm, tn = c, g.x, g.y
		}
	}
	return tm, tn
}

// packCost is the elements kern packs per k for a rectangle of rows x cols: an FP32 kernel
// copies B's columns and at most A's rows; a BF16 kernel converts B's columns once and A's
// rows once per block of nc columns.
func (kern *gemmKernel) packCost(rows, cols int) int {
	if kern.bf16 != nil {
		return rows*ceilDiv(cols, kern.nc) + cols
	}
	return rows + cols
}

// serial runs the five blocked loops on one goroutine, with ops packing the operands and
// running the micro-kernel, and epi (nil: none) on each band of mr rows after its last k
// block.
func (kern *gemmKernel) serial(ops gemmPacker, m, n, k int, beta float32, c []float32, ldc int, epi *gemmEpilogue) {
	w := kern.work()
	defer kern.pool.Put(w)
	mr, nr := kern.mr, kern.nr
	for jc := 0; jc < n; jc += kern.nc {
		nc := min(kern.nc, n-jc)
		for pc := 0; pc < k; pc += kern.kc {
			kc := min(kern.kc, k-pc)
			ops.packB(w, pc, jc, kc, nc)
			bet := beta
			if pc > 0 {
				bet = 1
			}
			for ic := 0; ic < m; ic += kern.mc {
				mc := min(kern.mc, m-ic)
				ops.packA(w, ic, pc, mc, kc)
				for ir := 0; ir < mc; ir += mr {
					rows := min(mr, mc-ir)
					for jr := 0; jr < nc; jr += nr {
						cols := min(nr, nc-jr)
						ci := (ic+ir)*ldc + jc + jr
						if rows == mr && cols == nr {
							ops.tile(w, ir, jr, &c[ci], ldc, bet)
						} else {
							ops.tile(w, ir, jr, &w.tmp[0], nr, 0)
							mergeTile(c[ci:], ldc, w.tmp, nr, rows, cols, bet)
						}
					}
					if pc+kc == k { // the band's rows are final
						epi.apply(c, ldc, ic+ir, jc, min(mr, mc-ir), nc)
					}
				}
			}
		}
	}
}

// gemmPacker packs one kind of micro-kernel's operands into a goroutine's buffers w and runs
// it: the part of the blocked loops (serial) that depends on the kernel's input type.
type gemmPacker interface {
	// packB packs op(B)[pc:pc+kc, jc:jc+nc] for the tiles of the block.
	packB(w *gemmWork, pc, jc, kc, nc int)
	// packA packs (or prepares to read in place) op(A)[ic:ic+mc, pc:pc+kc].
	packA(w *gemmWork, ic, pc, mc, kc int)
	// tile runs the micro-kernel on the A block's rows ir.. and the B block's columns jr..
	// into t (rows ldt apart) with beta b: t = alpha*acc + b*t.
	tile(w *gemmWork, ir, jr int, t *float32, ldt int, b float32)
}

// f32Packer packs FP32 panels for the FP32 micro-kernels (fn, direct).
type f32Packer struct {
	gemmOperands
	ic, pc, kc int // the current A block
	full       int // rows of the block read in place by the direct kernel
}

// gemmOperands are what every packer reads: one rectangle's op(A) rows and op(B) columns
// (from its first element on), the kernel and alpha.
type gemmOperands struct {
	kern           *gemmKernel
	transA, transB bool
	a, b           []float32
	lda, ldb       int
	alpha          float32
}

func (o *f32Packer) packB(w *gemmWork, pc, jc, kc, nc int) {
	packB(w.b, o.b, o.ldb, o.transB, pc, jc, kc, nc, o.kern.nr)
}

func (o *f32Packer) packA(w *gemmWork, ic, pc, mc, kc int) {
	o.ic, o.pc, o.kc = ic, pc, kc
	// Full panels of an A that is not transposed are read in place by the direct kernel;
	// only a last partial panel is packed.
	o.full = 0
	if o.kern.direct != nil && !o.transA {
		o.full = mc / o.kern.mr * o.kern.mr
	}
	if o.full < mc {
		packA(w.a[o.full*kc:], o.a, o.lda, o.transA, ic+o.full, pc, mc-o.full, kc, o.kern.mr)
	}
}

func (o *f32Packer) tile(w *gemmWork, ir, jr int, t *float32, ldt int, b float32) {
	if ir < o.full {
		o.kern.direct(o.kc, &o.a[(o.ic+ir)*o.lda+o.pc], o.lda, &w.b[jr*o.kc], t, ldt, o.alpha, b)
	} else {
		o.kern.fn(o.kc, &w.a[ir*o.kc], &w.b[jr*o.kc], t, ldt, o.alpha, b)
	}
}

// mergeTile writes C[r][j] = t[r][j] + beta*C[r][j] for the valid part of an edge tile
// (t already holds alpha*acc); beta == 0 does not read C.
func mergeTile(c []float32, ldc int, t []float32, ldt, rows, cols int, beta float32) {
	for r := 0; r < rows; r++ {
		cr := c[r*ldc : r*ldc+cols]
		tr := t[r*ldt : r*ldt+cols]
		if beta == 0 {
			copy(cr, tr)
			continue
		}
		for j := range cr {
			cr[j] = tr[j] + beta*cr[j]
		}
	}
}

// packA packs op(A)[i0:i0+mc, p0:p0+kc] into micro-panels of mr rows:
// dst[ir*kc + p*mr + r] = op(A)[i0+ir+r, p0+p], zero past row mc.
// op(A)[i,p] is a[i*lda+p], or a[p*lda+i] when trans.
func packA(dst, a []float32, lda int, trans bool, i0, p0, mc, kc, mr int) {
	for ir := 0; ir < mc; ir += mr {
		rows := min(mr, mc-ir)
		d := dst[ir*kc : ir*kc+kc*mr]
		if trans {
			// Each p is a contiguous run of rows in memory.
			copyInto(d, mr, a[p0*lda+i0+ir:], lda, kc, rows)
			if rows < mr {
				for p := 0; p < kc; p++ {
					clear(d[p*mr+rows : p*mr+mr])
				}
			}
			continue
		}
		transposeInto(d, mr, a[(i0+ir)*lda+p0:], lda, rows, kc)
		for r := rows; r < mr; r++ {
			for p := 0; p < kc; p++ {
				d[p*mr+r] = 0
			}
		}
	}
}

// packB packs op(B)[p0:p0+kc, j0:j0+nc] into micro-panels of nr columns:
// dst[jr*kc + p*nr + j] = op(B)[p0+p, j0+jr+j], zero past column nc.
// op(B)[p,j] is b[p*ldb+j], or b[j*ldb+p] when trans.
func packB(dst, b []float32, ldb int, trans bool, p0, j0, kc, nc, nr int) {
	for jr := 0; jr < nc; jr += nr {
		cols := min(nr, nc-jr)
		d := dst[jr*kc : jr*kc+kc*nr]
		if !trans {
			copyInto(d, nr, b[p0*ldb+j0+jr:], ldb, kc, cols)
			if cols < nr {
				for p := 0; p < kc; p++ {
					clear(d[p*nr+cols : p*nr+nr])
				}
			}
			continue
		}
		transposeInto(d, nr, b[(j0+jr)*ldb+p0:], ldb, cols, kc)
		for j := cols; j < nr; j++ {
			for p := 0; p < kc; p++ {
				d[p*nr+j] = 0
			}
		}
	}
}

// transposeInto sets dst[c*ds + r] = src[r*ss + c] for r < rows and c < cols: the
// transposing half of packing. The assembly routine (when the CPU has one) does blocks of
// 8, 4 or 2 rows by 8 columns in registers; the edges are done one element at a time.
func transposeInto(dst []float32, ds int, src []float32, ss int, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = dst[(cols-1)*ds+rows-1] // bounds of everything written and read below
	_ = src[(rows-1)*ss+cols-1]
	r2, c8 := 0, 0
	if transposeAsm != nil && rows >= 2 && cols >= 8 {
		r2, c8 = rows&^1, cols&^7
		transposeAsm(&dst[0], ds, &src[0], ss, r2, c8)
	}
	for r := r2; r < rows; r++ {
		scatterStride(dst[r:], src[r*ss:r*ss+cols], ds)
	}
	for r := 0; r < r2; r++ {
		row := src[r*ss+c8 : r*ss+cols]
		for c, v := range row {
			dst[(c8+c)*ds+r] = v
		}
	}
}

// copyInto sets dst[r*ds + c] = src[r*ss + c] for r < rows and c < cols: the
// non-transposing half of packing, one short run per k. The assembly routine (when the CPU
// has one) avoids a memmove call per run, which would cost more than the copy itself.
func copyInto(dst []float32, ds int, src []float32, ss int, rows, cols int) {
	if rows == 0 || cols == 0 {
		return
	}
	_ = dst[(rows-1)*ds+cols-1] // bounds of everything written and read below
	_ = src[(rows-1)*ss+cols-1]
	if copyAsm != nil {
		copyAsm(&dst[0], ds, &src[0], ss, rows, cols)
		return
	}
	for r := 0; r < rows; r++ {
		copy(dst[r*ds:r*ds+cols], src[r*ss:r*ss+cols])
	}
}

// scatterStride writes dst[p*stride] = src[p] for every p.
func scatterStride(dst, src []float32, stride int) {
	if len(src) == 0 {
		return
	}
	_ = dst[(len(src)-1)*stride] // one bounds check for the whole loop
	d := unsafe.Pointer(&dst[0])
	step := uintptr(stride) * 4
	for i, v := range src {
		*(*float32)(unsafe.Add(d, uintptr(i)*step)) = v
	}
}

// scaleMatrix sets C = beta*C (C = 0 when beta == 0, whatever C held).
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// checkGemmArgs panics unless every operand is large enough for its shape and leading
// dimension: the assembly kernels write C through raw pointers, so this check is what
// keeps them inside the slices.
func checkGemmArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: gemm with negative size m=%d n=%d k=%d", m, n, k))
	}
	rowsA, colsA := m, k
	if transA {
		rowsA, colsA = k, m
	}
	rowsB, colsB := k, n
	if transB {
		rowsB, colsB = n, k
	}
	check := func(name string, s []float32, rows, cols, ld int) {
		if rows == 0 || cols == 0 {
			return
		}
		if ld < cols {
			panic(fmt.Sprintf("kernels: gemm %s: leading dimension %d < %d columns", name, ld, cols))
		}
		if need := (rows-1)*ld + cols; len(s) < need {
			panic(fmt.Sprintf("kernels: gemm %s: %d elements, need %d for %dx%d with ld %d", name, len(s), need, rows, cols, ld))
		}
	}
	if m > 0 && n > 0 && k > 0 {
		check("A", a, rowsA, colsA, lda)
		check("B", b, rowsB, colsB, ldb)
	}
	check("C", c, m, n, ldc)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }

// sgemmKernel4x4Go is the portable micro-kernel (mr = nr = 4) with the same contract as
// the assembly ones: C[0:4,0:4] = alpha*sum_p a[4p+r]*b[4p+j] + beta*C.
func sgemmKernel4x4Go(k int, a, b, c *float32, ldc int, alpha, beta float32) {
	ap := unsafe.Slice(a, 4*k)
	bp := unsafe.Slice(b, 4*k)
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		av := ap[4*p : 4*p+4 : 4*p+4]
		bv := bp[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	acc := [4][4]float32{
		{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23}, {c30, c31, c32, c33}}
	for r := 0; r < 4; r++ {
		row := cs[r*ldc : r*ldc+4 : r*ldc+4]
		for j := 0; j < 4; j++ {
			if beta == 0 {
				row[j] = alpha * acc[r][j]
			} else {
				row[j] = alpha*acc[r][j] + beta*row[j]
			}
		}
	}
}
