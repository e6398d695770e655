// Tests of the CUDA device's own Go logic on the emulated driver: launch order, the caching
// allocator (size classes, reuse, release on out-of-memory), freed tensors, shape checks,
// that memory stays linear in T for attention, the row splits of column sums, and one wait
// for gradient clipping.
//
// Test: go test ./kernels/cuda -run 'Device|Alloc|ColumnSum|SumSquaresEach'
package cuda

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/alignkit/align/kernels"
)

// tracedDevice returns an emulated device and the names of the kernels it launches.
func tracedDevice() (*Device, *[]string) {
	drv := NewEmuDriver()
	var order []string
	drv.Trace = func(k string, grid, block Dim3, shmem int) { order = append(order, k) }
	return NewDevice(drv, "trace"), &order
}

// layerNormBackwardLaunches returns the kernels of one LayerNormBackward over N rows of C
// columns, comma-separated, with a weight gradient or with the weight frozen, in one pass or
// (twoKernels: noNormColumns) as the column sums and then the rows.
func layerNormBackwardLaunches(N, C int, frozen, twoKernels bool) string {
	d, order := tracedDevice()
	d.noNormColumns = twoKernels
	x, w := d.FromHost(normals(1, N*C), N, C), d.FromHost(normals(2, C), C)
	mean, rstd, dw, db := d.New(N), d.New(N), d.New(C), d.New(C)
	if frozen {
		dw = nil
	}
	*order = nil
	d.LayerNormBackward(x, dw, db, x, x, w, mean, rstd, N, C)
	return strings.Join(*order, ",")
}

func TestDeviceLaunchOrder(t *testing.T) {
	if got, want := layerNormBackwardLaunches(3, 5, false, true), "layernorm_backward_params,layernorm_backward_dx"; got != want {
		t.Fatalf("launches %s, want %s (parameter gradients before dinp overwrites dout)", got, want)
	}
	if got, want := layerNormBackwardLaunches(3, 5, false, false), "layernorm_modulate_backward"; got != want {
		t.Fatalf("launches %s, want %s (one pass: each row read before it is written)", got, want)
	}
	d, order := tracedDevice()
	d.Add(d.New(0), d.New(0), d.New(0)) // empty: no launch (a GPU refuses a zero grid)
	if len(*order) != 0 {
		t.Fatalf("launches for empty tensors: %v", *order)
	}
}

// TestLayerNormModulateSplits checks layernorm_modulate_backward's blocks per sample
// (lnmSplits) and the kernel over several of them (the last one short; blocks with fewer
// rows than warps), without and with the gate's backward: against the CPU device, dinp the
// same bits for every split, and a second run right after the first right too (the block
// counters left at zero; the column sums accumulate, so it adds them again). The counters'
// table is copied to the device twice in all: first, and when a larger batch needs more.
func TestLayerNormModulateSplits(t *testing.T) {
	drv := &countCopies{Driver: NewEmuDriver()}
	d := NewDevice(drv, "splits")
	for _, c := range []struct{ blocks, B, T, want int }{
		{8 * 132, 32, 272, 8}, // DiT-B on an H100/H200: 9 by the target, 8 by the rows
		{8 * 132, 256, 272, 2},
		{8 * 132, 512, 272, 1},
		{8, 2, 300, 1}, // the emulation's one SM
		{8, 1, 300, 2},
		{1 << 20, 3, 100, 3}, // at most T/32
		{1 << 20, 3, 31, 1},
	} {
		d.colBlocks = c.blocks
		if got := d.lnmSplits(c.B, c.T); got != c.want {
			t.Errorf("lnmSplits(%d, %d) with %d blocks = %d, want %d", c.B, c.T, c.blocks, got, c.want)
		}
	}
	e := newEnv(t, d)
	const C = 45
	var dinp1 []float32
	uploads := 0
	for _, c := range []struct{ B, T, splits int }{{2, 37, 1}, {2, 37, 2}, {2, 37, 5}, {2, 37, 37}, {3, 64, 7}, {1, 9, 9}} {
		for _, gated := range []bool{false, true} {
			B, T := c.B, c.T
			x, sc, sh := e.pair(normals(71, B*T*C), B, T, C), e.pair(normals(72, B*C), B, C), e.pair(normals(73, B*C), B, C)
			out, mean, rstd := e.pair(nil, B, T, C), e.pair(nil, B*T), e.pair(nil, B*T)
			e.dev.LayerNormModulateForward(out.d, nil, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
			e.cpu.LayerNormModulateForward(out.c, nil, mean.c, rstd.c, x.c, sh.c, sc.c, B, T, C, 1e-6)
			dout, resid, dinp := e.pair(normals(74, B*T*C), B, T, C), e.pair(normals(75, B*T*C), B, T, C), e.pair(nil, B, T, C)
			dsh, dsc := e.pair(normals(76, B*C), B, C), e.pair(normals(77, B*C), B, C)
			y, gate, dy, dg := e.pair(normals(78, B*T*C), B, T, C), e.pair(normals(79, B*C), B, C), e.pair(nil, B, T, C),
				e.pair(normals(80, B*C), B, C)
			var g lnmGate
			if gated {
				g = lnmGate{dy: d.ptr(dy.d), dgate: d.ptr(dg.d), gate: d.ptr(gate.d), y: d.ptr(y.d)}
			}
			for run := 1; run <= 2; run++ {
				name := fmt.Sprintf("B=%d T=%d, %d splits, gate %v, run %d:", B, T, c.splits, gated, run)
				before := drv.htod
				d.layerNormModulateBackward(c.splits, d.ptr(dinp.d), d.ptr(dsh.d), d.ptr(dsc.d), d.ptr(dout.d), 0, d.ptr(x.d),
					d.ptr(mean.d), d.ptr(rstd.d), d.ptr(resid.d), d.ptr(sc.d), 0, g, B, T, C)
				uploads += drv.htod - before
				if gated {
					e.cpu.LayerNormModulateGateBackward(dinp.c, dsh.c, dsc.c, dout.c, resid.c, x.c, mean.c, rstd.c, sc.c,
						dy.c, dg.c, gate.c, y.c, B, T, C, 1e-6)
					e.check(name+" dy", dy, tol32, eps32)
					e.check(name+" dgate", dg, tol32, eps32)
				} else {
					e.cpu.LayerNormModulateBackward(dinp.c, dsh.c, dsc.c, dout.c, resid.c, x.c, mean.c, rstd.c, sc.c, B, T, C, 1e-6)
				}
				e.check(name+" dinp", dinp, tol32, eps32)
				e.check(name+" dshift", dsh, tol32, eps32)
				e.check(name+" dscale", dsc, tol32, eps32)
			}
			if B == 2 && T == 37 {
				got := e.host(dinp)
				if dinp1 == nil {
					dinp1 = got
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(dinp1[i]) {
						t.Fatalf("%d splits, gate %v: dinp[%d] = %g, %g with one", c.splits, gated, i, got[i], dinp1[i])
					}
				}
			}
			e.free(x, sc, sh, out, mean, rstd, dout, resid, dinp, dsh, dsc, y, gate, dy, dg)
		}
	}
	if uploads != 2 {
		t.Errorf("the block counters copied to the device %d times, want 2 (batches of 2, then 3, then 1)", uploads)
	}
}

// TestColumnSumSplits checks the row splits of the column sums: their count, the launches
// (col_finish once per output that is asked for, before LayerNorm's dinp), and BiasBackward
// and LayerNormBackward's parameter gradients against the CPU device for one split, a few
// uneven ones and the most the rows allow; LayerNormBackward in one pass too, whose blocks
// the same targets set (1 to 31 of them).
func TestColumnSumSplits(t *testing.T) {
	d := NewEmulated()
	for _, c := range []struct{ blocks, N, C, want int }{
		{8 * 132, 8704, 768, 44},  // DiT-B's bias gradient on an H100/H200: 24 column blocks
		{8 * 132, 8704, 3072, 11}, // its MLP's first layer: 96 column blocks
		{8 * 132, 32, 4608, 1},    // adaLN's bias over a batch of 32: too few rows to split
		{8 * 132, 8704, 65536, 1}, // more column blocks than the target
		{8, 1000, 45, 4},          // the emulation's one SM
		{1 << 20, 1000, 45, 15},   // at most N/64 splits
		{1 << 20, 63, 45, 1},
	} {
		d.colBlocks = c.blocks
		if got := d.colSplits(c.N, c.C); got != c.want {
			t.Errorf("colSplits(%d, %d) with %d blocks = %d, want %d", c.N, c.C, c.blocks, got, c.want)
		}
	}

	for frozen, want := range map[bool]string{
		false: "layernorm_backward_params,col_finish,col_finish,layernorm_backward_dx",
		true:  "layernorm_backward_params,col_finish,layernorm_backward_dx",
	} {
		if got := layerNormBackwardLaunches(1000, 45, frozen, true); got != want {
			t.Errorf("frozen weight %v: launches %s, want %s", frozen, got, want)
		}
	}

	for _, blocks := range []int{1, 8, 16, 1 << 20} {
		d.colBlocks = blocks
		e := newEnv(t, d)
		N, C := 1001, 45 // 15 splits of 67 rows and one of 63 at the most
		t.Logf("%d target blocks: %d splits", blocks, d.colSplits(N, C))
		g, bias := e.pair(normals(3, N*C), N, C), e.pair(normals(4, C), C)
		e.dev.BiasBackward(bias.d, g.d, N, C)
		e.cpu.BiasBackward(bias.c, g.c, N, C)
		e.check("BiasBackward", bias, tol32, eps32)
		in, mean, rstd := e.pair(normals(5, N*C), N, C), e.pair(nil, N), e.pair(nil, N)
		out, w, b := e.pair(nil, N, C), e.pair(normals(6, C), C), e.pair(normals(7, C), C)
		e.dev.LayerNormForward(out.d, mean.d, rstd.d, in.d, w.d, b.d, N, C, 1e-5)
		e.cpu.LayerNormForward(out.c, mean.c, rstd.c, in.c, w.c, b.c, N, C, 1e-5)
		dw, db, dinp := e.pair(normals(8, C), C), e.pair(normals(9, C), C), e.pair(nil, N, C)
		for _, twoKernels := range []bool{true, false} { // the column sums' splits, then the one pass's blocks (lnmSplits)
			d.noNormColumns = twoKernels
			e.dev.LayerNormBackward(dinp.d, dw.d, db.d, g.d, in.d, w.d, mean.d, rstd.d, N, C)
			e.cpu.LayerNormBackward(dinp.c, dw.c, db.c, g.c, in.c, w.c, mean.c, rstd.c, N, C)
			e.check(fmt.Sprintf("LayerNormBackward (two kernels %v) dweight", twoKernels), dw, tol32, eps32)
			e.check(fmt.Sprintf("LayerNormBackward (two kernels %v) dbias", twoKernels), db, tol32, eps32)
			e.check(fmt.Sprintf("LayerNormBackward (two kernels %v) dinp", twoKernels), dinp, tol32, eps32)
			// A frozen weight: no dweight, dbias still summed.
			e.dev.LayerNormBackward(dinp.d, nil, db.d, g.d, in.d, w.d, mean.d, rstd.d, N, C)
			e.cpu.LayerNormBackward(dinp.c, nil, db.c, g.c, in.c, w.c, mean.c, rstd.c, N, C)
			e.check(fmt.Sprintf("LayerNormBackward (two kernels %v), frozen weight, dbias", twoKernels), db, tol32, eps32)
		}
		d.noNormColumns = false
		e.free(g, bias, in, mean, rstd, out, w, b, dw, db, dinp)
	}
}

// countCopies is a driver that counts the copies to the host (each one waits for the GPU)
// and to the device.
type countCopies struct {
	Driver
	n, htod int // DtoH, HtoD
}

func (c *countCopies) DtoH(dst unsafe.Pointer, src DevPtr, bytes int) error {
	c.n++
	return c.Driver.DtoH(dst, src, bytes)
}

func (c *countCopies) HtoD(dst DevPtr, src unsafe.Pointer, bytes int) error {
	c.htod++
	return c.Driver.HtoD(dst, src, bytes)
}

// TestSumSquaresEachOneWait checks that gradient clipping waits once per step on the CUDA
// device: kernels.ClipScale over five gradients makes one copy to the host and gives the
// CPU device's norm and factor.
func TestSumSquaresEachOneWait(t *testing.T) {
	drv := &countCopies{Driver: NewEmuDriver()}
	d := NewDevice(drv, "count")
	cpu := kernels.NewCPU(1)
	var gd, gc []*kernels.Tensor
	for i, n := range []int{7, 1000, 0, 33, 4096} {
		x := normals(uint64(60+i), n)
		gd, gc = append(gd, d.FromHost(x, n)), append(gc, cpu.FromHost(x, n))
	}
	gd, gc = append(gd, nil), append(gc, nil)
	drv.n = 0
	got, gotScale := kernels.ClipScale(d, gd, 1)
	if drv.n != 1 {
		t.Errorf("ClipScale copied to the host %d times, want 1", drv.n)
	}
	want, wantScale := kernels.ClipScale(cpu, gc, 1)
	if math.Abs(got-want) > 1e-12*want || math.Abs(float64(gotScale-wantScale)) > 1e-6*float64(wantScale) {
		t.Errorf("norm %.17g, factor %g; CPU %.17g, %g", got, gotScale, want, wantScale)
	}
}

func TestAllocSizeClass(t *testing.T) {
	for _, c := range [][2]int{{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1 << 20, 1 << 20},
		{1<<20 + 1, 1<<20 + 1<<17}, {3 << 20, 3 << 20}, {5<<20 + 7, 5<<20 + 1<<19}} {
		if got := sizeClass(c[0]); got != c[1] {
			t.Errorf("sizeClass(%d) = %d, want %d", c[0], got, c[1])
		}
		if got := sizeClass(c[0]); got < c[0] || float64(got) > 1.125*float64(max(c[0], 1<<20)) {
			t.Errorf("sizeClass(%d) = %d wastes too much", c[0], got)
		}
	}
}

func TestAllocReuseAndRelease(t *testing.T) {
	drv := NewEmuDriver()
	d := NewDevice(drv, "alloc")
	a := d.New(1000)
	p := d.ptr(a)
	d.Free(a)
	b := d.New(1000)
	if d.ptr(b) != p {
		t.Error("a freed block of the same class was not reused")
	}
	st := d.MemStats()
	if st.Allocs != 1 || st.Reuses != 1 || st.InUse != 4096 || st.Cached != 0 {
		t.Errorf("stats %+v", st)
	}
	// Out of memory: cached blocks are released and the allocation retried.
	drv.MemLimit = drv.Used() + 16384
	c := d.New(3000) // 12000 bytes (class 12032): fits
	d.Free(c)
	e := d.New(2000) // 8000 bytes (class 8192): fits only after the cached 12032 bytes go back
	if st := d.MemStats(); st.Cached != 0 || st.InUse != 4096+8192 {
		t.Errorf("after release and retry: %+v", st)
	}
	d.Free(b)
	d.Free(e)
	if err := d.EmptyCache(); err != nil {
		t.Fatal(err)
	}
	if drv.Used() != 0 {
		t.Errorf("%d bytes still allocated after EmptyCache", drv.Used())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "HINT") {
			t.Errorf("allocation beyond the limit: %v", r)
		}
	}()
	d.New(1 << 20)
}

// TestChunkedKernels runs the multi-tensor kernels on chunks of 100 elements: AdamWEach
// gives each parameter AdamW's bits (each with its own weight decay; with different
// learning rates it falls back to one AdamW each; with a gradient scale it takes it as
// AdamW does), SumSquaresEach the CPU device's sums, and a second call over the same
// tensors copies no table to the device.
func TestChunkedKernels(t *testing.T) {
	drv := &countCopies{Driver: NewEmuDriver()}
	d := NewDevice(drv, "chunks")
	d.chunkElems = 100
	cpu := kernels.NewCPU(1)
	sizes := []int{7, 1000, 0, 333, 4096}
	var ps, gs, ms, vs, ps1, ms1, vs1, gc []*kernels.Tensor
	var hs []kernels.AdamWParams
	for i, n := range sizes {
		p0, g := normals(uint64(70+i), n), normals(uint64(80+i), n)
		ps, gs = append(ps, d.FromHost(p0, n)), append(gs, d.FromHost(g, n))
		ms, vs = append(ms, d.New(n)), append(vs, d.New(n))
		ps1, ms1, vs1 = append(ps1, d.FromHost(p0, n)), append(ms1, d.New(n)), append(vs1, d.New(n))
		gc = append(gc, cpu.FromHost(g, n))
		h := kernelsAdamW(1)
		h.WeightDecay = 0.05 * float32(i)
		hs = append(hs, h)
	}
	same := func(what string) {
		t.Helper()
		for i := range sizes {
			for _, pair := range [][2]*kernels.Tensor{{ps[i], ps1[i]}, {ms[i], ms1[i]}, {vs[i], vs1[i]}} {
				a, b := make([]float32, sizes[i]), make([]float32, sizes[i])
				d.CopyToHost(a, pair[0])
				d.CopyToHost(b, pair[1])
				for j := range a {
					if math.Float32bits(a[j]) != math.Float32bits(b[j]) {
						t.Fatalf("%s: tensor %d element %d: AdamWEach %g, AdamW %g", what, i, j, a[j], b[j])
					}
				}
			}
		}
	}
	for step := 1; step <= 2; step++ {
		for i := range hs {
			hs[i].Step = step
			d.AdamW(ps1[i], gs[i], ms1[i], vs1[i], hs[i])
		}
		drv.htod = 0
		d.AdamWEach(ps, gs, ms, vs, hs)
		if step == 2 && drv.htod != 0 {
			t.Errorf("the second step copied %d tables to the device, want 0", drv.htod)
		}
		same(fmt.Sprintf("step %d", step))
	}
	hs[1].LR *= 2 // no longer shared: one AdamW each
	for i := range hs {
		hs[i].Step = 3
		d.AdamW(ps1[i], gs[i], ms1[i], vs1[i], hs[i])
	}
	d.AdamWEach(ps, gs, ms, vs, hs)
	same("different learning rates")

	got := d.SumSquaresEach(append(gs, nil))
	want := cpu.SumSquaresEach(append(gc, nil))
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12*(1+want[i]) {
			t.Errorf("SumSquaresEach tensor %d: %.17g, CPU %.17g", i, got[i], want[i])
		}
	}
	if one := d.SumSquares(gs[4]); one != got[4] {
		t.Errorf("SumSquares %.17g, SumSquaresEach %.17g", one, got[4])
	}

	hs[1].LR = hs[0].LR // shared again, with a clipping factor: one launch, AdamW's bits
	for i := range hs {
		hs[i].Step, hs[i].GradScale = 4, 0.37
		d.AdamW(ps1[i], gs[i], ms1[i], vs1[i], hs[i])
	}
	drv.htod = 0
	d.AdamWEach(ps, gs, ms, vs, hs)
	if drv.htod != 0 {
		t.Errorf("a step with a gradient scale copied %d tables to the device, want 0", drv.htod)
	}
	same("gradient scale")

	// FillEach: every chunk of every listed tensor (a view inside a larger one among them),
	// nothing around them, and the table copied only when the list changes.
	big := normals(90, 1000)
	bt := d.FromHost(big, 1000)
	fills := append(gs, nil, bt.View(301, 250))
	for round, v := range []float32{2.5, -1} {
		drv.htod = 0
		d.FillEach(fills, v)
		if round == 1 && drv.htod != 0 {
			t.Errorf("a second FillEach of the same tensors copied %d tables to the device, want 0", drv.htod)
		}
		for i, n := range sizes {
			got := make([]float32, n)
			d.CopyToHost(got, gs[i])
			for j, x := range got {
				if x != v {
					t.Fatalf("FillEach(%g): tensor %d element %d is %g", v, i, j, x)
				}
			}
		}
		got := make([]float32, 1000)
		d.CopyToHost(got, bt)
		for j, x := range got {
			want := big[j]
			if j >= 301 && j < 551 {
				want = v
			}
			if x != want {
				t.Fatalf("FillEach(%g): element %d of the tensor around the view is %g, want %g", v, j, x, want)
			}
		}
	}
}

// noEpilogue is a driver without cuBLASLt's epilogues, as a cuBLASLt with no algorithm for a
// shape.
type noEpilogue struct{ Driver }

func (n noEpilogue) Gemm(g GemmArgs) error {
	if g.epilogue() {
		return ErrNoEpilogue
	}
	return n.Driver.Gemm(g)
}

// gemmLog is an emulated driver that records the GELU epilogue products it ran ("gelu fp32",
// "dgelu bf16", ...) and the kernels launched.
type gemmLog struct {
	*EmuDriver
	gemms, kernels []string
}

func newGemmLog() *gemmLog {
	l := &gemmLog{EmuDriver: NewEmuDriver()}
	l.Trace = func(kernel string, _, _ Dim3, _ int) { l.kernels = append(l.kernels, kernel) }
	return l
}

func (l *gemmLog) Gemm(g GemmArgs) error {
	err := l.EmuDriver.Gemm(g)
	if err == nil && (g.GELU != GeluNone || g.CType == BFloat16) {
		epi := map[GeluEpilogue]string{GeluNone: "plain", GeluForward: "gelu", GeluBackward: "dgelu"}[g.GELU]
		if g.Bias != 0 && g.GELU == GeluNone {
			epi = "bias"
		}
		l.gemms = append(l.gemms, fmt.Sprintf("%s %s", epi, map[DataType]string{Float32: "fp32", BFloat16: "bf16"}[g.CType]))
	}
	return err
}

// In BF16 mode Linear writes an output read by products only (StoreHalf) as BF16 alone, in
// the bias epilogue (the bias rounded to BF16 too), and LinearBackward such an input
// gradient; the next product reads them without a conversion. With noHalfOutputs, or
// without the mark, the FP32 products run.
func TestLinearHalf(t *testing.T) {
	const N, in, out = 7, 16, 24
	cpu := kernels.NewCPU(0)
	xs, ws, bs := normals(81, N*in), normals(82, out*in), normals(83, out)
	want := cpu.New(N, out)
	cpu.Linear(want, cpu.FromHost(xs, N, in), cpu.FromHost(ws, out, in), cpu.FromHost(bs, out), N, in, out)
	for _, c := range []struct {
		mark, noHalfOutputs bool
		wantGemms           string
	}{{true, false, "bias bf16,plain bf16"}, {true, true, ""}, {false, false, ""}} {
		log := newGemmLog()
		d := NewDevice(log, "linear")
		d.SetGemmPrecision(GemmBF16)
		d.bf16Intensity, d.noHalfOutputs = 0, c.noHalfOutputs
		x, w, b, y, dx := d.FromHost(xs, N, in), d.FromHost(ws, out, in), d.FromHost(bs, out), d.New(N, out), d.New(N, in)
		if c.mark {
			d.StoreHalf(y)
			d.StoreHalf(dx)
		}
		d.Linear(y, x, w, b, N, in, out)
		reads := d.halfReads
		d.Gemm(false, false, N, 1, out, 1, y, d.FromHost(normals(84, out), out, 1), 0, d.New(N, 1))
		if fromCopy := d.halfReads > reads; fromCopy != (c.wantGemms != "") {
			t.Errorf("%+v: the next product read y's BF16 copy: %v", c, fromCopy)
		}
		d.LinearBackward(dx, nil, nil, y, nil, w, N, in, out)
		if got := strings.Join(log.gemms, ","); got != c.wantGemms {
			t.Errorf("%+v: BF16-output products %q, want %q", c, got, c.wantGemms)
		}
		got, gotDx, wantDx := make([]float32, N*out), make([]float32, N*in), cpu.New(N, in)
		d.CopyToHost(got, y)
		d.CopyToHost(gotDx, dx)
		assertClose(t, fmt.Sprintf("%+v y", c), got, kernels.Host(want), precTol(GemmBF16, in), 1e-2)
		cpu.LinearBackward(wantDx, nil, nil, cpu.FromHost(got, N, out), nil, cpu.FromHost(ws, out, in), N, in, out)
		assertClose(t, fmt.Sprintf("%+v dx", c), gotDx, kernels.Host(wantDx), precTol(GemmBF16, out), 1e-2)
	}
}

// mlpPass runs LinearGelu and GeluLinearBackward of an MLP's layers (C 8, H hidden, N 6) on d
// in precision prec, the hidden tensors marked StoreHalf where halfOnly, and returns g, h,
// dh, dbiasH, dw and dbias.
func mlpPass(d *Device, prec GemmPrecision, H int, halfOnly bool) [][]float32 {
	const N, C = 6, 8
	d.SetGemmPrecision(prec)
	d.bf16Intensity = 0
	x, w1, b1 := d.FromHost(normals(61, N*C), N, C), d.FromHost(normals(62, H*C), H, C), d.FromHost(normals(63, H), H)
	dy, w2 := d.FromHost(normals(64, N*C), N, C), d.FromHost(normals(65, C*H), C, H)
	g, h, dh := d.New(N, H), d.New(N, H), d.New(N, H)
	db1, dw2, db2 := d.FromHost(normals(66, H), H), d.New(C, H), d.New(C)
	if halfOnly {
		for _, t := range []*kernels.Tensor{g, h, dh} {
			d.StoreHalf(t)
		}
	}
	d.LinearGelu(g, h, x, w1, b1, N, C, H)
	d.GeluLinearBackward(dh, db1, dw2, db2, dy, g, w2, h, N, H, C)
	var out [][]float32
	for _, t := range []*kernels.Tensor{g, h, dh, db1, dw2, db2} {
		v := make([]float32, t.Len())
		d.CopyToHost(v, t)
		out = append(out, v)
	}
	return out
}

// TestGeluEpilogues checks which path LinearGelu and GeluLinearBackward take: GELU epilogues
// with FP32 outputs, bit for bit the separate kernels' results (both apply gelu_value and
// gelu_grad to the same FP32 values, and sum in float64); in BF16 mode for tensors read by
// products only, epilogues with BF16 outputs; separate kernels where the aux matrix's leading
// dimension is no multiple of 8.
func TestGeluEpilogues(t *testing.T) {
	names := []string{"g", "h", "dh", "dbiasH", "dw", "dbias"}
	for _, c := range []struct {
		prec        GemmPrecision
		H           int
		halfOnly    bool
		wantGemms   string
		wantKernels bool // gelu_forward and gelu_backward launched
	}{
		{GemmFP32, 16, false, "gelu fp32,dgelu fp32", false},
		{GemmBF16, 16, false, "gelu fp32,dgelu fp32", false},
		{GemmBF16, 16, true, "gelu bf16,dgelu bf16", false},
		{GemmFP32, 12, false, "", true},
	} {
		name := fmt.Sprintf("%s H=%d half-only=%v", c.prec, c.H, c.halfOnly)
		log := newGemmLog()
		got := mlpPass(NewDevice(log, "mlp"), c.prec, c.H, c.halfOnly)
		if s := strings.Join(log.gemms, ","); s != c.wantGemms {
			t.Errorf("%s: GELU epilogues %q, want %q", name, s, c.wantGemms)
		}
		kernels := strings.Join(log.kernels, " ")
		if has := strings.Contains(kernels, "gelu_forward") && strings.Contains(kernels, "gelu_backward"); has != c.wantKernels {
			t.Errorf("%s: GELU kernels launched: %v, want %v (%s)", name, has, c.wantKernels, kernels)
		}
		fallback := mlpPass(NewDevice(noEpilogue{NewEmuDriver()}, "mlp"), c.prec, c.H, c.halfOnly)
		for i := range got {
			tol := 0.0 // FP32: the same bits
			switch {
			case c.halfOnly:
				tol = 2e-2 // also the bias rounded to BF16 for the BF16 epilogue, and h kept in BF16 for gelu'
			case c.prec == GemmBF16:
				tol = 1e-2 // BGRADB sums dy's BF16 values
			}
			for j := range got[i] {
				if d := math.Abs(float64(got[i][j] - fallback[i][j])); d > tol*(1+math.Abs(float64(fallback[i][j]))) {
					t.Fatalf("%s: %s[%d] = %g with epilogues, %g without", name, names[i], j, got[i][j], fallback[i][j])
				}
			}
		}
	}
}

// TestLinearWithoutEpilogue checks that Linear adds the bias with add_bias where the driver
// refuses the epilogue, with the same bits as the epilogue gives.
func TestLinearWithoutEpilogue(t *testing.T) {
	N, in, out := 5, 11, 6
	var ys [2][]float32
	for i, drv := range []Driver{NewEmuDriver(), noEpilogue{NewEmuDriver()}} {
		d := NewDevice(drv, "linear")
		x, w, b := d.FromHost(normals(90, N*in), N, in), d.FromHost(normals(91, out*in), out, in), d.FromHost(normals(92, out), out)
		y := d.New(N, out)
		d.Linear(y, x, w, b, N, in, out)
		ys[i] = make([]float32, N*out)
		d.CopyToHost(ys[i], y)
	}
	for j := range ys[0] {
		if math.Float32bits(ys[0][j]) != math.Float32bits(ys[1][j]) {
			t.Fatalf("element %d: epilogue %g, add_bias %g", j, ys[0][j], ys[1][j])
		}
	}
}

// TestLinearBackwardWithoutEpilogue checks that LinearBackward sums the bias gradient with
// bias_backward where the driver refuses the epilogue, with the same bits as the epilogue
// gives (both sum the column in float64 and round once), and accumulates it as the epilogue
// path does.
func TestLinearBackwardWithoutEpilogue(t *testing.T) {
	N, in, out := 9, 5, 6
	var dbs [2][]float32
	for i, drv := range []Driver{NewEmuDriver(), noEpilogue{NewEmuDriver()}} {
		d := NewDevice(drv, "linear-backward")
		dy, x, w := d.FromHost(normals(93, N*out), N, out), d.FromHost(normals(94, N*in), N, in), d.FromHost(normals(95, out*in), out, in)
		dx, dw, db := d.New(N, in), d.New(out, in), d.FromHost(normals(96, out), out)
		d.LinearBackward(dx, dw, db, dy, x, w, N, in, out)
		dbs[i] = make([]float32, out)
		d.CopyToHost(dbs[i], db)
	}
	for j := range dbs[0] {
		if math.Float32bits(dbs[0][j]) != math.Float32bits(dbs[1][j]) {
			t.Fatalf("element %d: epilogue %g, bias_backward %g", j, dbs[0][j], dbs[1][j])
		}
	}
}

// In BF16 mode the products of a DiT-B step (B 32, T 272, width 768, 12 heads) convert
// their operands where that pays: the linear layers do, attention's per-head products and
// the conditioning's small-batch ones run in TF32, unless their weight keeps a BF16 copy and
// is large enough that reading it in half the bytes pays for converting the input (the
// adaLN stack's 42M weights, not a text encoder's 0.8M), or TF32 would have to restore an
// operand kept in BF16 alone. Operands with a BF16 copy cost nothing to convert.
func TestBF16Pays(t *testing.T) {
	d := NewEmulated()
	const N, C, H = 32 * 272, 768, 3072
	// An operand's elements are converted ('c'), read from a BF16 copy or a weight that keeps
	// one ('k'), or kept in BF16 alone ('r': TF32 restores them).
	cases := []struct {
		name           string
		m, n, k, batch int
		elemsA, elemsB int
		kindA, kindB   byte
		want           bool
	}{
		{"qkv", N, 3 * C, C, 1, N * C, C * 3 * C, 'c', 'c', true},
		{"out projection", N, C, C, 1, N * C, C * C, 'c', 'c', true},
		{"mlp up", N, H, C, 1, N * C, C * H, 'c', 'c', true},
		{"mlp down weight gradient", H, C, N, 1, N * H, N * C, 'c', 'c', true},
		{"attention scores", 272, 272, 64, 384, 384 * 272 * 64, 384 * 272 * 64, 'c', 'c', false},
		{"attention values", 272, 64, 272, 384, 384 * 272 * 272, 384 * 272 * 64, 'c', 'c', false},
		{"adaLN modulation", 32, 6 * C, C, 1, 32 * C, C * 6 * C, 'c', 'c', false},
		{"adaLN modulation, input from a BF16 copy", 32, 6 * C, C, 1, 32 * C, C * 6 * C, 'k', 'c', false},
		{"adaLN stack of 12 blocks, its weight kept", 32, 12 * 6 * C, C, 1, 32 * C, 12 * 6 * C * C, 'c', 'k', true},
		{"text encoder qkv (256 tokens, width 512), its weight kept", 256, 3 * 512, 512, 1, 256 * 512, 3 * 512 * 512, 'c', 'k', false},
		{"its weight gradient, the output gradient in BF16 alone", 3 * 512, 512, 256, 1, 256 * 3 * 512, 256 * 512, 'r', 'c', true},
		{"mlp down, both operands from BF16 copies", N, C, H, 1, N * H, H * C, 'k', 'k', true},
		{"nothing to convert", 4, 4, 1, 1, 4, 4, 'k', 'r', true},
	}
	for _, c := range cases {
		var ops bf16Operands
		for _, op := range []struct {
			n    int
			kind byte
		}{{c.elemsA, c.kindA}, {c.elemsB, c.kindB}} {
			switch op.kind {
			case 'c':
				ops.convert, ops.converts = ops.convert+op.n, ops.converts+1
			case 'k':
				ops.copied += op.n
			case 'r':
				ops.restore, ops.restores = ops.restore+op.n, ops.restores+1
			}
		}
		if got := d.bf16Pays(c.m, c.n, c.k, c.batch, ops); got != c.want {
			t.Errorf("%s (%dx%dx%d x%d): bf16Pays %v, want %v", c.name, c.m, c.n, c.k, c.batch, got, c.want)
		}
	}
}

// Close frees the tensors nobody freed too: the primary context outlives the device where
// cuBLAS's runtime holds it, and their memory would leak with every device opened.
func TestCloseFreesLiveTensors(t *testing.T) {
	drv := NewEmuDriver()
	d := NewDevice(drv, "close")
	a := d.New(1000)
	b := d.New(3000)
	d.Free(d.New(500)) // cached
	if drv.Used() != 4096+12032+2048 {
		t.Fatalf("%d bytes allocated before Close", drv.Used())
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if drv.Used() != 0 {
		t.Errorf("%d bytes still allocated after Close", drv.Used())
	}
	if st := d.MemStats(); st.InUse != 0 || st.Cached != 0 {
		t.Errorf("stats after Close %+v", st)
	}
	d.Free(a) // a no-op: its block went back with Close, it must not enter the cache
	if st := d.MemStats(); st.Cached != 0 {
		t.Errorf("Free after Close cached a block: %+v", st)
	}
	mustPanic(t, "closed device", func() { d.ptr(b) })
}

func mustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Errorf("no panic, want one containing %q", want)
			return
		}
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Errorf("panic %v, want one containing %q", r, want)
		}
	}()
	fn()
}

func TestDeviceChecks(t *testing.T) {
	d := NewEmulated()
	x := d.New(4)
	v := x.View(1, 2)
	d.Free(x)
	mustPanic(t, "was freed", func() { d.Scale(x, 2) })
	mustPanic(t, "was freed", func() { d.Scale(v, 2) })
	cpu := kernels.NewCPU(1)
	mustPanic(t, "not a tensor of a CUDA device", func() { d.Scale(cpu.New(3), 2) })
	other := NewEmulated()
	mustPanic(t, "another CUDA device", func() { d.Scale(other.New(3), 2) })
	y := d.New(6)
	mustPanic(t, "has 6 elements, want 5", func() { d.AddBias(y, y, d.New(2), 5, 1) })
	mustPanic(t, "head size 200", func() { d.AttentionForward(d.New(200), d.New(1), d.New(600), nil, 1, 1, 1, 200) })
	mustPanic(t, "out of range", func() { d.EmbeddingForward(d.New(2), d.New(6), []int32{0, 3}, 2) })
}

// TestAttentionMemoryLinear checks that the fused attention allocates scratch linear in T
// (the (T,T) score matrix is never stored). The fused kernels run when one sample's scores
// exceed the device's budget (256 MiB by default, T in the thousands, too slow to emulate),
// so the test lowers the budget to one byte below this size's need; the GEMM path's scratch
// at the size itself is checked by TestAttentionGemmScratch.
func TestAttentionMemoryLinear(t *testing.T) {
	d := NewEmulated()
	B, T, NH, HS := 1, 200, 1, 8
	d.attnBudget = 8*NH*T*T - 1
	qkv := d.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
	out, lse, dout, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.FromHost(normals(4, B*T*NH*HS), B, T, NH, HS), d.New(B, T, 3, NH, HS)
	before := d.MemStats().Peak
	d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
	d.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS)
	if extra := d.MemStats().Peak - before; extra > int64(4*B*NH*T+256) {
		t.Errorf("attention used %d bytes of scratch for T=%d, want O(T)", extra, T)
	}
}

// TestAttentionGemmScratch checks the GEMM path's scratch: exactly the blocks
// attnGemmScratch names (in their allocator classes), the larger of the forward's and the
// backward's and one product's pointer arrays, with score matrices within the budget, all of
// it handed back afterwards.
func TestAttentionGemmScratch(t *testing.T) {
	B, T, NH, HS := 3, 45, 2, 13
	for _, bc := range []int{3, 2, 1} {
		d := NewEmulated()
		d.attnBudget = bc * 8 * NH * T * T
		if got := d.attnGemmChunk(B, T, NH); got != bc {
			t.Fatalf("budget for %d samples: chunks of %d", bc, got)
		}
		qkv := d.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
		out, lse, dout, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.FromHost(normals(4, B*T*NH*HS), B, T, NH, HS), d.New(B, T, 3, NH, HS)
		st := d.MemStats()
		d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
		d.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS)
		fs, bs, bd, ptrs := attnGemmScratch(bc, T, NH)
		want := max(sizeClass(fs), sizeClass(bs)+sizeClass(bd)) + sizeClass(ptrs)
		if extra := d.MemStats().Peak - st.Peak; extra != int64(want) {
			t.Errorf("chunks of %d: %d bytes of scratch, want %d", bc, extra, want)
		}
		if bs > d.attnBudget {
			t.Errorf("chunks of %d: %d bytes of scores over the budget %d", bc, bs, d.attnBudget)
		}
		if in := d.MemStats().InUse; in != st.InUse {
			t.Errorf("chunks of %d: %d bytes in use after attention, %d before", bc, in, st.InUse)
		}
	}
}

// TestAttentionPath checks which kernels each budget launches: below one sample's scores
// (8*NH*T*T bytes: S and dP) the fused kernels, from there the GEMM path in chunks of as
// many samples as fit, as even as their count allows, the whole batch under the default.
func TestAttentionPath(t *testing.T) {
	B, T, NH, HS := 5, 37, 2, 13
	per := 8 * NH * T * T
	for _, c := range []struct {
		budget int
		chunk  int // samples per chunk, 0 for the fused kernels
	}{
		{0, 0},
		{per - 1, 0},
		{per, 1},
		{2 * per, 2},
		{4 * per, 3}, // 5 samples, 4 fit: 2 chunks, of 3 and 2
		{5 * per, 5},
		{attnGemmBudget, 5},
	} {
		drv := NewEmuDriver()
		var launches []string
		drv.Trace = func(k string, grid, block Dim3, shmem int) { launches = append(launches, k) }
		d := NewDevice(drv, "path")
		if d.attnBudget != attnGemmBudget {
			t.Fatalf("default budget %d, want %d", d.attnBudget, attnGemmBudget)
		}
		d.attnBudget = c.budget
		if got := d.attnGemmChunk(B, T, NH); got != c.chunk {
			t.Errorf("budget %d: chunks of %d samples, want %d", c.budget, got, c.chunk)
		}
		qkv := d.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
		out, lse, dout, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.FromHost(normals(4, B*T*NH*HS), B, T, NH, HS), d.New(B, T, 3, NH, HS)
		launches = nil
		d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
		fwd := launches
		launches = nil
		d.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS)
		bwd := launches
		var wantF, wantB []string
		if c.chunk == 0 {
			wantF = []string{"attention_forward"}
			wantB = []string{"attention_backward_dd", "attention_backward_dq", "attention_backward_dkv"}
		} else {
			for range (B + c.chunk - 1) / c.chunk {
				wantF = append(wantF, "attention_softmax")
				wantB = append(wantB, "attention_backward_dd", "attention_probs", "attention_dscores")
			}
		}
		if strings.Join(fwd, ",") != strings.Join(wantF, ",") {
			t.Errorf("budget %d: forward launches %v, want %v", c.budget, fwd, wantF)
		}
		if strings.Join(bwd, ",") != strings.Join(wantB, ",") {
			t.Errorf("budget %d: backward launches %v, want %v", c.budget, bwd, wantB)
		}
	}
}

// TestAttentionGemmPrecision checks that the GEMM path computes its products at the
// device's GemmPrecision (the emulated GEMM rounds TF32 inputs, so the result changes) and
// that the fused kernels, FP32 throughout, do not depend on it.
func TestAttentionGemmPrecision(t *testing.T) {
	B, T, NH, HS := 2, 37, 2, 13
	run := func(budget int, p GemmPrecision) []float32 {
		d := NewEmulated()
		d.attnBudget = budget
		d.SetGemmPrecision(p)
		qkv := d.FromHost(normals(3, B*T*3*NH*HS), B, T, 3, NH, HS)
		out, lse := d.New(B, T, NH, HS), d.New(B, NH, T)
		d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
		h := make([]float32, out.Len())
		d.CopyToHost(h, out)
		return h
	}
	if slices.Equal(run(attnGemmBudget, GemmFP32), run(attnGemmBudget, GemmTF32)) {
		t.Error("GEMM path: the same output with FP32 and TF32 products")
	}
	if !slices.Equal(run(0, GemmFP32), run(0, GemmTF32)) {
		t.Error("fused kernels: the output depends on the GEMM precision")
	}
}

// --precision's names parse to the precision the device then reports (checkpoints record it).
func TestGemmPrecisionNames(t *testing.T) {
	d := NewEmulated()
	for _, name := range []string{"fp32", "tf32", "bf16"} {
		p, err := ParseGemmPrecision(name)
		if err != nil {
			t.Fatal(err)
		}
		d.SetGemmPrecision(p)
		if got := kernels.PrecisionOf(d); got != name {
			t.Errorf("SetGemmPrecision(%s): the device reports %q", name, got)
		}
	}
	if _, err := ParseGemmPrecision("fp16"); err == nil {
		t.Error("fp16 parsed")
	}
}

func TestDescribe(t *testing.T) {
	if s := NewEmulated().Describe(); !strings.HasPrefix(s, "CPU emulation (fibers), compute capability 9.0") {
		t.Errorf("Describe() = %q", s)
	}
}

// countSets counts a driver's memsets.
type countSets struct {
	Driver
	n int
}

func (c *countSets) Memset32(dst DevPtr, v uint32, n int) error {
	c.n++
	return c.Driver.Memset32(dst, v, n)
}

// lazyMLP is an MLP's forward and backward (LinearGelu, GeluLinearBackward, LinearBackward)
// on a device over drv whose four parameter gradients hold other values until FillEach(0)
// clears them, so that a read of zeros left pending (lazyZero) would see those values; it
// returns dh, fc1's bias gradient, fc2's weight and bias gradients, fc1's weight gradient
// and dx, and the memsets from the FillEach on.
func lazyMLP(drv Driver, prec GemmPrecision, H int, halfOnly, lazy bool) ([][]float32, int) {
	const N, C = 6, 8
	cs := &countSets{Driver: drv}
	d := NewDevice(cs, "lazy")
	d.SetGemmPrecision(prec)
	d.bf16Intensity = 0
	d.noLazyZero = !lazy
	x, w1, b1 := d.FromHost(normals(61, N*C), N, C), d.FromHost(normals(62, H*C), H, C), d.FromHost(normals(63, H), H)
	dy, w2 := d.FromHost(normals(64, N*C), N, C), d.FromHost(normals(65, C*H), C, H)
	g, h, dh, dx := d.New(N, H), d.New(N, H), d.New(N, H), d.New(N, C)
	db1, dw2, db2, dw1 := d.FromHost(normals(66, H), H), d.FromHost(normals(67, C*H), C, H), d.FromHost(normals(68, C), C), d.FromHost(normals(69, H*C), H, C)
	if halfOnly {
		for _, t := range []*kernels.Tensor{g, h, dh} {
			d.StoreHalf(t)
		}
	}
	sets := cs.n
	d.FillEach([]*kernels.Tensor{db1, dw2, db2, dw1}, 0)
	d.LinearGelu(g, h, x, w1, b1, N, C, H)
	d.GeluLinearBackward(dh, db1, dw2, db2, dy, g, w2, h, N, H, C)
	d.LinearBackward(dx, dw1, nil, dh, x, w1, N, C, H)
	var out [][]float32
	sets = cs.n - sets
	for _, t := range []*kernels.Tensor{dh, db1, dw2, db2, dw1, dx} {
		out = append(out, hostOf(d, t))
	}
	return out, sets
}

// TestLazyZero checks FillEach's pending zeros (lazyZero): left pending only for storages
// the tensors cover whole (views together too), written before a kernel, a copy or the host
// touches them, and overwritten without the fill by the products that accumulate the
// gradients (beta 0, the bias gradient written by the epilogue itself): every gradient of an
// MLP's backward is the same as with the zeros written, in every precision, with BF16
// outputs, without the GELU epilogue (no multiple-of-8 aux) and without any epilogue.
func TestLazyZero(t *testing.T) {
	d := NewDevice(NewEmuDriver(), "lazy")
	whole := d.FromHost(normals(1, 100), 100)
	stack := d.FromHost(normals(2, 100), 100)
	partVals := normals(3, 100)
	part := d.FromHost(partVals, 100)
	d.FillEach([]*kernels.Tensor{whole, stack.View(0, 60), stack.View(40, 60), part.View(10, 50)}, 0)
	if !d.storageOf(whole).zero || !d.storageOf(stack).zero || d.storageOf(part).zero {
		t.Fatalf("pending zeros: whole %v, two views covering a storage %v, a view of part of one %v; want true, true, false",
			d.storageOf(whole).zero, d.storageOf(stack).zero, d.storageOf(part).zero)
	}
	for i, v := range hostOf(d, part) {
		if want := partVals[i]; (i >= 10 && i < 60 && v != 0) || ((i < 10 || i >= 60) && v != want) {
			t.Fatalf("the filled view: element %d is %g", i, v)
		}
	}
	ones := d.FromHost(slices.Repeat([]float32{1}, 10), 10)
	d.Axpy(stack.View(0, 10), 2, ones) // a kernel writing part of a pending storage
	for i, v := range hostOf(d, stack) {
		if want := float32(0); i < 10 && v != 2 || i >= 10 && v != want {
			t.Fatalf("after an axpy into the first 10 of a pending storage: element %d is %g", i, v)
		}
	}
	for i, v := range hostOf(d, whole) {
		if v != 0 {
			t.Fatalf("a pending storage read by the host: element %d is %g", i, v)
		}
	}
	if d.zeroFills != 2 {
		t.Errorf("%d zero fills, want 2 (the axpy's, the host read's)", d.zeroFills)
	}

	names := []string{"dh", "dbiasH", "dw2", "db2", "dw1", "dx"}
	for _, c := range []struct {
		prec     GemmPrecision
		H        int
		halfOnly bool
		noEpi    bool
	}{
		{GemmFP32, 16, false, false}, {GemmBF16, 16, false, false}, {GemmBF16, 16, true, false},
		{GemmFP32, 12, false, false}, {GemmBF16, 16, true, true}, {GemmFP32, 16, false, true},
	} {
		name := fmt.Sprintf("%s H=%d half-only=%v without epilogues=%v", c.prec, c.H, c.halfOnly, c.noEpi)
		open := func() Driver {
			if c.noEpi {
				return noEpilogue{NewEmuDriver()}
			}
			return NewEmuDriver()
		}
		lazy, sets := lazyMLP(open(), c.prec, c.H, c.halfOnly, true)
		eager, _ := lazyMLP(open(), c.prec, c.H, c.halfOnly, false)
		for i := range lazy {
			for j := range lazy[i] {
				if lazy[i][j] != eager[i][j] {
					t.Fatalf("%s: %s[%d] = %g with the zeros pending, %g written", name, names[i], j, lazy[i][j], eager[i][j])
				}
			}
		}
		// With the epilogues every gradient is overwritten whole: no zeros written. Without
		// them the bias gradients' zeros are, before bias_backward adds to them.
		if want := c.noEpi || c.H%8 != 0; (sets > 0) != want {
			t.Errorf("%s: %d memsets after FillEach", name, sets)
		}
	}
}

// wrongMMA is an emulated driver whose attention_mma_tile returns a wrong value, as a GPU
// whose fragment layouts differed from the kernels' would.
type wrongMMA struct{ *EmuDriver }

func (w wrongMMA) Launch(kernel string, grid, block Dim3, shmem int, args []Arg) error {
	if err := w.EmuDriver.Launch(kernel, grid, block, shmem, args); err != nil || kernel != "attention_mma_tile" {
		return err
	}
	bad := float32(1e9)
	return w.HtoD(DevPtr(args[0].Bits), unsafe.Pointer(&bad), 4)
}

// TestMMACheckFallsBack checks that a device whose tensor cores disagree with the kernels'
// fragment layouts (mmaTileCheck) runs BF16 attention without the tensor-core kernels: the
// same results as a device told not to use them.
func TestMMACheckFallsBack(t *testing.T) {
	const B, T, NH, HS = 2, 19, 2, 64
	run := func(d *Device) []float32 {
		d.SetGemmPrecision(GemmBF16)
		qkv := d.FromHost(normals(7, B*T*3*NH*HS), B, T, 3, NH, HS)
		out, lse := d.New(B, T, NH, HS), d.New(B, NH, T)
		d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
		return hostOf(d, out)
	}
	if d := NewDevice(NewEmuDriver(), "emu"); !d.mmaOK() {
		t.Fatal("the emulation disagrees with itself")
	}
	bad := NewDevice(wrongMMA{NewEmuDriver()}, "wrong")
	got := run(bad)
	if bad.mmaState != -1 {
		t.Fatalf("mmaState %d after a wrong tile, want -1", bad.mmaState)
	}
	off := NewDevice(NewEmuDriver(), "off")
	off.noAttnMMA = true
	if want := run(off); !slices.Equal(got, want) {
		t.Error("attention on a device with wrong layouts differs from attention without the tensor cores")
	}
}

// The tensor-core kernels read 16-byte pieces of qkv's and dout's BF16 copies, so they run
// only where those tensors start at a multiple of 8 elements; elsewhere attention takes the
// GEMM path (which gives the same values up to BF16 rounding, Conformance/AttentionBF16).
func TestAttentionMMAAlignment(t *testing.T) {
	const B, T, NH, HS = 2, 19, 2, 64
	n := B * T * 3 * NH * HS
	for _, c := range []struct{ qkvOff, doutOff, fwd, bwd int }{
		{0, 0, 1, 1}, {8, 8, 1, 1}, {4, 0, 0, 0}, {2, 0, 0, 0}, {0, 4, 1, 0},
	} {
		drv := NewEmuDriver()
		mma := map[string]int{}
		drv.Trace = func(k string, grid, block Dim3, shmem int) {
			if strings.HasSuffix(k, "_mma") {
				mma[k]++
			}
		}
		d := NewDevice(drv, "align")
		d.SetGemmPrecision(GemmBF16)
		qkv := d.FromHost(normals(3, n+c.qkvOff), n+c.qkvOff).View(c.qkvOff, B, T, 3, NH, HS)
		dout := d.FromHost(normals(4, B*T*NH*HS+c.doutOff), B*T*NH*HS+c.doutOff).View(c.doutOff, B, T, NH, HS)
		out, lse, dqkv := d.New(B, T, NH, HS), d.New(B, NH, T), d.New(B, T, 3, NH, HS)
		d.AttentionForward(out, lse, qkv, nil, B, T, NH, HS)
		d.AttentionBackward(dqkv, dout, out, lse, qkv, nil, B, T, NH, HS)
		if got := mma["attention_forward_mma"]; got != c.fwd {
			t.Errorf("qkv at element %d: %d launches of attention_forward_mma, want %d", c.qkvOff, got, c.fwd)
		}
		if got := mma["attention_backward_dkv_mma"]; got != c.bwd {
			t.Errorf("qkv at element %d, dout at %d: %d launches of attention_backward_dkv_mma, want %d",
				c.qkvOff, c.doutOff, got, c.bwd)
		}
		d.Close()
	}
}

// In BF16 mode Gemm writes a C read by products only (StoreHalf) as BF16 alone, and with
// beta 1 reads it from there: a LoRA adapter's term, then the base product added to it
// (nn.Linear). Where C's values are not in its copy, with noHalfOutputs or without the
// mark, the product writes FP32.
func TestGemmHalf(t *testing.T) {
	const m, n, k, r = 5, 24, 16, 3
	cpu := kernels.NewCPU(0)
	as, bs, us, vs := normals(91, m*k), normals(92, n*k), normals(93, m*r), normals(94, n*r)
	want := cpu.New(m, n) // U V^T * 0.5, then A B^T added
	cpu.Gemm(false, true, m, n, r, 0.5, cpu.FromHost(us, m, r), cpu.FromHost(vs, n, r), 0, want)
	cpu.Gemm(false, true, m, n, k, 1, cpu.FromHost(as, m, k), cpu.FromHost(bs, n, k), 1, want)
	for _, c := range []struct {
		name                string
		mark, noHalfOutputs bool
		f32First            bool // the first product's C written in FP32: the second cannot read a copy
		wantGemms           string
		wantStale           bool
	}{
		{"both BF16", true, false, false, "plain bf16,plain bf16", true},
		{"C in FP32 first", true, false, true, "", false},
		{"noHalfOutputs", true, true, false, "", false},
		{"unmarked", false, false, false, "", false},
	} {
		log := newGemmLog()
		d := NewDevice(log, "gemm")
		d.SetGemmPrecision(GemmBF16)
		d.bf16Intensity, d.noHalfOutputs = 0, c.noHalfOutputs
		a, b, u, v, y := d.FromHost(as, m, k), d.FromHost(bs, n, k), d.FromHost(us, m, r), d.FromHost(vs, n, r), d.New(m, n)
		if c.mark {
			d.StoreHalf(y)
		}
		d.noHalfOutputs = c.noHalfOutputs || c.f32First
		d.Gemm(false, true, m, n, r, 0.5, u, v, 0, y)
		d.noHalfOutputs = c.noHalfOutputs
		d.Gemm(false, true, m, n, k, 1, a, b, 1, y)
		if got := strings.Join(log.gemms, ","); got != c.wantGemms {
			t.Errorf("%s: BF16-output products %q, want %q", c.name, got, c.wantGemms)
		}
		if stale := d.storageOf(y).f32Stale; stale != c.wantStale {
			t.Errorf("%s: values in the BF16 copy alone: %v, want %v", c.name, stale, c.wantStale)
		}
		got := make([]float32, m*n)
		d.CopyToHost(got, y)
		assertClose(t, c.name, got, kernels.Host(want), precTol(GemmBF16, k), 1e-2)
	}
}
