// Conformance cases of the activation, normalisation, adaLN, softmax, embedding, layout,
// reduction, loss, optimiser and random-number operations (see conformance_test.go).
//
// Test: go test ./kernels/cuda -run Conformance
package cuda

import (
	"fmt"
	"math"
	"slices"

	"github.com/alignkit/align/kernels"
)

// activationInputs are normals scaled by 3 plus values far in the tails.
func activationInputs(n int) []float32 {
	x := normals(20, n)
	for i := range x {
		x[i] *= 3
	}
	return append(x, 0, float32(math.Copysign(0, -1)), 10, -10, 30, -30, 100, -100)
}

func testGelu(e *env) {
	x := activationInputs(1001)
	n := len(x)
	in, g, out := e.pair(x, n), e.pair(normals(21, n), n), e.pair(nil, n)
	e.dev.GeluForward(out.d, in.d)
	e.cpu.GeluForward(out.c, in.c)
	e.check("GeluForward", out, tol32, eps32)
	e.dev.GeluBackward(out.d, in.d, g.d)
	e.cpu.GeluBackward(out.c, in.c, g.c)
	e.check("GeluBackward", out, tol32, eps32)
	e.dev.GeluBackward(g.d, in.d, g.d) // dinp aliasing dout
	e.cpu.GeluBackward(g.c, in.c, g.c)
	e.check("GeluBackward aliased", g, tol32, eps32)
	e.free(in, g, out)
}

func testSilu(e *env) {
	x := activationInputs(1001)
	n := len(x)
	in, g, out := e.pair(x, n), e.pair(normals(22, n), n), e.pair(nil, n)
	e.dev.SiluForward(out.d, in.d)
	e.cpu.SiluForward(out.c, in.c)
	e.check("SiluForward", out, tol32, eps32)
	e.dev.SiluBackward(out.d, in.d, g.d)
	e.cpu.SiluBackward(out.c, in.c, g.c)
	e.check("SiluBackward", out, tol32, eps32)
	e.free(in, g, out)
}

func testLayerNorm(e *env) {
	layerNormCases(e, [][2]int{{7, 45}, {9, 1}, {3, 300}, {203, 45}, {3, 1024}, {2, 1100}}) // 1100: past ROW_REG*32
}

func testLayerNormSmall(e *env) { layerNormCases(e, [][2]int{{11, 45}}) }

func layerNormCases(e *env, sizes [][2]int) {
	for _, sz := range sizes {
		N, C := sz[0], sz[1]
		x := normals(23, N*C)
		for i := range x {
			x[i] = 2*x[i] + 0.5
		}
		for _, affine := range []bool{true, false} {
			in, out := e.pair(x, N, C), e.pair(nil, N, C)
			mean, rstd := e.pair(nil, N), e.pair(nil, N)
			var w, b pair
			if affine {
				w, b = e.pair(normals(24, C), C), e.pair(normals(25, C), C)
			}
			e.dev.LayerNormForward(out.d, mean.d, rstd.d, in.d, w.d, b.d, N, C, 1e-5)
			e.cpu.LayerNormForward(out.c, mean.c, rstd.c, in.c, w.c, b.c, N, C, 1e-5)
			e.check("LayerNormForward out", out, tol32, eps32)
			e.check("LayerNormForward mean", mean, tol32, eps32)
			e.check("LayerNormForward rstd", rstd, tol32, eps32)

			dout, dinp := e.pair(normals(26, N*C), N, C), e.pair(nil, N, C)
			var dw, db pair
			if affine {
				dw, db = e.pair(normals(27, C), C), e.pair(normals(28, C), C)
			}
			e.dev.LayerNormBackward(dinp.d, dw.d, db.d, dout.d, in.d, w.d, mean.d, rstd.d, N, C)
			e.cpu.LayerNormBackward(dinp.c, dw.c, db.c, dout.c, in.c, w.c, mean.c, rstd.c, N, C)
			e.check("LayerNormBackward dinp", dinp, tol32, eps32)
			if affine {
				e.check("LayerNormBackward dweight", dw, tol32, eps32)
				e.check("LayerNormBackward dbias", db, tol32, eps32)
				// dinp written over dout, frozen weight gradient.
				e.dev.LayerNormBackward(dout.d, nil, db.d, dout.d, in.d, w.d, mean.d, rstd.d, N, C)
				e.cpu.LayerNormBackward(dout.c, nil, db.c, dout.c, in.c, w.c, mean.c, rstd.c, N, C)
				e.check("LayerNormBackward aliased dinp", dout, tol32, eps32)
				e.check("LayerNormBackward aliased dbias", db, tol32, eps32)
				e.free(w, b, dw, db)
			}
			e.free(in, out, mean, rstd, dout, dinp)
		}
	}
}

// testModulateGateVec runs the forward kernels at a width their vector paths take (C % 4 ==
// 0), bit for bit against the CPU device as their scalar loops are checked: on aligned tensors
// (the vector path), then with each operand in turn one float off (the scalar loop: a GPU
// faults on a 16-byte access to an address that is not a multiple of 16, which make
// test-sanitize's alignment check finds in the emulation).
func testModulateGateVec(e *env) {
	B, T, C := 3, 7, 36
	for off := -1; off < 5; off++ { // the operand one float off (out, x, shift, scale, y), none at -1
		newPair := func(i int) func([]float32, ...int) pair {
			if i == off {
				return e.pair
			}
			return e.alignedPair
		}
		out, x := newPair(0)(nil, B, T, C), newPair(1)(normals(30, B*T*C), B, T, C)
		sh, sc := newPair(2)(normals(31, B*C), B, C), newPair(3)(normals(32, B*C), B, C)
		y := newPair(4)(normals(37, B*T*C), B, T, C)
		e.dev.ModulateForward(out.d, x.d, sh.d, sc.d, B, T, C)
		e.cpu.ModulateForward(out.c, x.c, sh.c, sc.c, B, T, C)
		e.same(fmt.Sprintf("ModulateForward (operand %d off)", off), out)
		e.dev.GateForward(out.d, x.d, sh.d, y.d, B, T, C)
		e.cpu.GateForward(out.c, x.c, sh.c, y.c, B, T, C)
		e.same(fmt.Sprintf("GateForward (operand %d off)", off), out)
		e.free(x, y, sh, sc, out)
	}
}

func testModulate(e *env) {
	B, T, C := 3, 5, 37
	x, sh, sc := e.pair(normals(30, B*T*C), B, T, C), e.pair(normals(31, B*C), B, C), e.pair(normals(32, B*C), B, C)
	out := e.pair(nil, B, T, C)
	e.dev.ModulateForward(out.d, x.d, sh.d, sc.d, B, T, C)
	e.cpu.ModulateForward(out.c, x.c, sh.c, sc.c, B, T, C)
	e.check("ModulateForward", out, tol32, eps32)
	dout, dx := e.pair(normals(33, B*T*C), B, T, C), e.pair(nil, B, T, C)
	dsh, dsc := e.pair(normals(34, B*C), B, C), e.pair(normals(35, B*C), B, C)
	e.dev.ModulateBackward(dx.d, dsh.d, dsc.d, dout.d, x.d, sc.d, B, T, C)
	e.cpu.ModulateBackward(dx.c, dsh.c, dsc.c, dout.c, x.c, sc.c, B, T, C)
	e.check("ModulateBackward dx", dx, tol32, eps32)
	e.check("ModulateBackward dshift", dsh, tol32, eps32)
	e.check("ModulateBackward dscale", dsc, tol32, eps32)
	e.dev.ModulateBackward(dout.d, dsh.d, dsc.d, dout.d, x.d, sc.d, B, T, C)
	e.cpu.ModulateBackward(dout.c, dsh.c, dsc.c, dout.c, x.c, sc.c, B, T, C)
	e.check("ModulateBackward aliased dx", dout, tol32, eps32)
	e.check("ModulateBackward aliased dscale", dsc, tol32, eps32)
	e.free(x, sh, sc, out, dout, dx, dsh, dsc)
}

// testLayerNormModulate checks the fused forward (with and without h stored) and backward
// (with and without a residual gradient, dinp over dout) against the CPU device, and bit for
// bit against the device's own unfused operations; rows past ROW_REG*32 too.
func testLayerNormModulate(e *env) {
	for _, c := range [][3]int{{3, 5, 37}, {2, 3, 1100}} {
		B, T, C := c[0], c[1], c[2]
		x, sh, sc := e.pair(normals(41, B*T*C), B, T, C), e.pair(normals(42, B*C), B, C), e.pair(normals(43, B*C), B, C)
		out, h, mean, rstd := e.pair(nil, B, T, C), e.pair(nil, B, T, C), e.pair(nil, B*T), e.pair(nil, B*T)
		e.dev.LayerNormModulateForward(out.d, h.d, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
		e.cpu.LayerNormModulateForward(out.c, h.c, mean.c, rstd.c, x.c, sh.c, sc.c, B, T, C, 1e-6)
		name := fmt.Sprintf("LayerNormModulateForward C=%d", C)
		for _, p := range []struct {
			what string
			p    pair
		}{{"out", out}, {"h", h}, {"mean", mean}, {"rstd", rstd}} {
			e.check(name+" "+p.what, p.p, tol32, eps32)
		}
		// The unfused pair on the device, its results in the pairs' CPU halves: the same bits.
		e.cpu.CopyFromHost(h.c, e.host(h))
		e.dev.LayerNormForward(h.d, mean.d, rstd.d, x.d, nil, nil, B*T, C, 1e-6)
		e.dev.ModulateForward(out.d, h.d, sh.d, sc.d, B, T, C)
		e.cpu.CopyFromHost(out.c, e.host(out))
		e.dev.LayerNormModulateForward(out.d, h.d, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
		e.same(name+" out against LayerNormForward+ModulateForward", out)
		e.same(name+" h against LayerNormForward", h)
		e.dev.LayerNormModulateForward(out.d, nil, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
		e.same(name+" out without h", out)
		e.dev.noFusedNormModulate = true // the benchmark's ablation: the two launches
		e.dev.LayerNormModulateForward(out.d, h.d, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
		e.same(name+" out, unfused", out)
		e.dev.LayerNormModulateForward(out.d, nil, mean.d, rstd.d, x.d, sh.d, sc.d, B, T, C, 1e-6)
		e.dev.noFusedNormModulate = false
		e.same(name+" out, unfused without h", out)

		// The gated residual in the same pass: against the CPU device, and bit for bit against
		// the device's GateForward then LayerNormModulateForward.
		name = fmt.Sprintf("GateLayerNormModulateForward C=%d", C)
		x0, gt, y := e.pair(normals(48, B*T*C), B, T, C), e.pair(normals(49, B*C), B, C), e.pair(normals(50, B*T*C), B, T, C)
		x1, gout, gmean, grstd := e.pair(nil, B, T, C), e.pair(nil, B, T, C), e.pair(nil, B*T), e.pair(nil, B*T)
		e.dev.GateLayerNormModulateForward(x1.d, gout.d, gmean.d, grstd.d, x0.d, gt.d, y.d, sh.d, sc.d, B, T, C, 1e-6)
		e.cpu.GateLayerNormModulateForward(x1.c, gout.c, gmean.c, grstd.c, x0.c, gt.c, y.c, sh.c, sc.c, B, T, C, 1e-6)
		for _, p := range []struct {
			what string
			p    pair
		}{{"x1", x1}, {"out", gout}, {"mean", gmean}, {"rstd", grstd}} {
			e.check(name+" "+p.what, p.p, tol32, eps32)
		}
		fusedOut, fusedX1 := e.host(gout), e.host(x1)
		e.dev.noFusedNormModulate = true
		e.dev.GateLayerNormModulateForward(x1.d, gout.d, gmean.d, grstd.d, x0.d, gt.d, y.d, sh.d, sc.d, B, T, C, 1e-6)
		e.dev.noFusedNormModulate = false
		e.cpu.CopyFromHost(gout.c, fusedOut)
		e.cpu.CopyFromHost(x1.c, fusedX1)
		e.same(name+" out against the unfused operations", gout)
		e.same(name+" x1 against GateForward", x1)
		e.free(x0, gt, y, x1, gout, gmean, grstd)

		name = fmt.Sprintf("LayerNormModulateBackward C=%d", C)
		dout, resid, dinp := e.pair(normals(44, B*T*C), B, T, C), e.pair(normals(45, B*T*C), B, T, C), e.pair(nil, B, T, C)
		dsh, dsc := e.pair(normals(46, B*C), B, C), e.pair(normals(47, B*C), B, C)
		for _, withResid := range []bool{true, false} {
			rd, rc := resid.d, resid.c
			if !withResid {
				rd, rc = nil, nil
			}
			e.dev.LayerNormModulateBackward(dinp.d, dsh.d, dsc.d, dout.d, rd, x.d, mean.d, rstd.d, sc.d, B, T, C, 1e-6)
			e.cpu.LayerNormModulateBackward(dinp.c, dsh.c, dsc.c, dout.c, rc, x.c, mean.c, rstd.c, sc.c, B, T, C, 1e-6)
			e.check(fmt.Sprintf("%s resid=%v dinp", name, withResid), dinp, tol32, eps32)
			e.check(fmt.Sprintf("%s resid=%v dshift", name, withResid), dsh, tol32, eps32)
			e.check(fmt.Sprintf("%s resid=%v dscale", name, withResid), dsc, tol32, eps32)
		}
		// On the device, the one pass (layernorm_modulate_backward), the column sums by their
		// own kernel (noNormColumns) and the unfused operations: the same dinp bit for bit (the
		// same arithmetic per row); the column sums of the last two too (modulate_backward's),
		// the one pass's within the tolerance (each warp's sums in float; checked against the
		// CPU above).
		run := func(unfused, columns bool) [][]float32 {
			e.dev.Fill(dsh.d, 0)
			e.dev.Fill(dsc.d, 0)
			e.dev.noFusedNormModulate, e.dev.noNormColumns = unfused, columns
			defer func() { e.dev.noFusedNormModulate, e.dev.noNormColumns = false, false }()
			e.dev.LayerNormModulateBackward(dinp.d, dsh.d, dsc.d, dout.d, resid.d, x.d, mean.d, rstd.d, sc.d, B, T, C, 1e-6)
			return [][]float32{e.host(dinp), e.host(dsh), e.host(dsc)}
		}
		onePass, columns, unfused := run(false, false), run(false, true), run(true, false)
		for i, what := range []string{"dinp", "dshift", "dscale"} {
			for j := range unfused[i] {
				u := unfused[i][j]
				if c := columns[i][j]; math.Float32bits(c) != math.Float32bits(u) {
					e.t.Fatalf("%s %s[%d]: %g with modulate_backward, %g unfused", name, what, j, c, u)
				}
				o := onePass[i][j]
				if i == 0 && math.Float32bits(o) != math.Float32bits(u) ||
					math.Abs(float64(o-u)) > tol32*(1+math.Abs(float64(u))) {
					e.t.Fatalf("%s %s[%d]: %g in one pass, %g unfused", name, what, j, o, u)
				}
			}
		}
		fused := onePass
		e.cpu.CopyFromHost(dsh.c, fused[1])
		e.cpu.CopyFromHost(dsc.c, fused[2])
		// The gate's backward of dinp in the same pass: against the CPU device, and against the
		// device's LayerNormModulateBackward then GateBackward (dinp and dy the same bits, dgate
		// within the tolerance: each warp's sums in float).
		name = fmt.Sprintf("LayerNormModulateGateBackward C=%d", C)
		y, gate, dy, dg := e.pair(normals(81, B*T*C), B, T, C), e.pair(normals(82, B*C), B, C), e.pair(nil, B, T, C),
			e.pair(normals(83, B*C), B, C)
		e.dev.LayerNormModulateGateBackward(dinp.d, dsh.d, dsc.d, dout.d, resid.d, x.d, mean.d, rstd.d, sc.d, dy.d, dg.d,
			gate.d, y.d, B, T, C, 1e-6)
		e.cpu.LayerNormModulateGateBackward(dinp.c, dsh.c, dsc.c, dout.c, resid.c, x.c, mean.c, rstd.c, sc.c, dy.c, dg.c,
			gate.c, y.c, B, T, C, 1e-6)
		for _, p := range []struct {
			what string
			p    pair
		}{{"dinp", dinp}, {"dshift", dsh}, {"dscale", dsc}, {"dy", dy}, {"dgate", dg}} {
			e.check(name+" "+p.what, p.p, tol32, eps32)
		}
		gated := func(apart bool) [][]float32 {
			e.dev.Fill(dg.d, 0)
			if apart {
				e.dev.LayerNormModulateBackward(dinp.d, dsh.d, dsc.d, dout.d, resid.d, x.d, mean.d, rstd.d, sc.d, B, T, C, 1e-6)
				e.dev.GateBackward(dy.d, dg.d, dinp.d, gate.d, y.d, B, T, C)
			} else {
				e.dev.LayerNormModulateGateBackward(dinp.d, dsh.d, dsc.d, dout.d, resid.d, x.d, mean.d, rstd.d, sc.d, dy.d,
					dg.d, gate.d, y.d, B, T, C, 1e-6)
			}
			return [][]float32{e.host(dinp), e.host(dy), e.host(dg)}
		}
		together, apart := gated(false), gated(true)
		for i, what := range []string{"dinp", "dy", "dgate"} {
			for j, u := range apart[i] {
				o := together[i][j]
				if i < 2 && math.Float32bits(o) != math.Float32bits(u) ||
					math.Abs(float64(o-u)) > tol32*(1+math.Abs(float64(u))) {
					e.t.Fatalf("%s %s[%d]: %g in one pass, %g apart", name, what, j, o, u)
				}
			}
		}
		e.cpu.CopyFromHost(dsh.c, e.host(dsh))
		e.cpu.CopyFromHost(dsc.c, e.host(dsc))
		e.free(y, gate, dy, dg)
		name = fmt.Sprintf("LayerNormModulateBackward C=%d", C)

		// dinp over dout.
		e.dev.LayerNormModulateBackward(dout.d, dsh.d, dsc.d, dout.d, resid.d, x.d, mean.d, rstd.d, sc.d, B, T, C, 1e-6)
		e.cpu.LayerNormModulateBackward(dout.c, dsh.c, dsc.c, dout.c, resid.c, x.c, mean.c, rstd.c, sc.c, B, T, C, 1e-6)
		e.check(name+" aliased dinp", dout, tol32, eps32)
		e.free(x, sh, sc, out, h, mean, rstd, dout, resid, dinp, dsh, dsc)
	}
}

func testGate(e *env) {
	B, T, C := 2, 11, 33
	x, y, g := e.pair(normals(36, B*T*C), B, T, C), e.pair(normals(37, B*T*C), B, T, C), e.pair(normals(38, B*C), B, C)
	out := e.pair(nil, B, T, C)
	e.dev.GateForward(out.d, x.d, g.d, y.d, B, T, C)
	e.cpu.GateForward(out.c, x.c, g.c, y.c, B, T, C)
	e.check("GateForward", out, tol32, eps32)
	dout, dy, dg := e.pair(normals(39, B*T*C), B, T, C), e.pair(nil, B, T, C), e.pair(normals(40, B*C), B, C)
	e.dev.GateBackward(dy.d, dg.d, dout.d, g.d, y.d, B, T, C)
	e.cpu.GateBackward(dy.c, dg.c, dout.c, g.c, y.c, B, T, C)
	e.check("GateBackward dy", dy, tol32, eps32)
	e.check("GateBackward dgate", dg, tol32, eps32)
	e.free(x, y, g, out, dout, dy, dg)
}

func testSoftmax(e *env) {
	N, C := 9, 37
	x := normals(41, N*C)
	for i := range x {
		x[i] *= 4
	}
	inf := float32(math.Inf(-1))
	for c := 0; c < C; c++ {
		x[2*C+c] = inf // a fully masked row
	}
	x[5*C+3], x[5*C+30] = inf, inf
	in, out := e.pair(x, N, C), e.pair(nil, N, C)
	e.dev.SoftmaxForward(out.d, in.d, N, C)
	e.cpu.SoftmaxForward(out.c, in.c, N, C)
	e.check("SoftmaxForward", out, tol32, eps32)
	dout, dinp := e.pair(normals(42, N*C), N, C), e.pair(nil, N, C)
	e.dev.SoftmaxBackward(dinp.d, dout.d, out.d, N, C)
	e.cpu.SoftmaxBackward(dinp.c, dout.c, out.c, N, C)
	e.check("SoftmaxBackward", dinp, tol32, eps32)
	e.dev.SoftmaxForward(in.d, in.d, N, C)
	e.cpu.SoftmaxForward(in.c, in.c, N, C)
	e.check("SoftmaxForward in place", in, tol32, eps32)
	e.free(in, out, dout, dinp)
}

func testEmbedding(e *env) {
	V, C := 11, 37
	ids := []int32{3, 0, 10, 3, 7, 3, 1, 10, 5}
	table, out := e.pair(normals(43, V*C), V, C), e.pair(nil, len(ids), C)
	e.dev.EmbeddingForward(out.d, table.d, ids, C)
	e.cpu.EmbeddingForward(out.c, table.c, ids, C)
	e.same("EmbeddingForward", out)
	dout, dtab := e.pair(normals(44, len(ids)*C), len(ids), C), e.pair(normals(45, V*C), V, C)
	e.dev.EmbeddingBackward(dtab.d, dout.d, ids, C)
	e.cpu.EmbeddingBackward(dtab.c, dout.c, ids, C)
	e.same("EmbeddingBackward", dtab)
	e.free(table, out, dout, dtab)
}

func testTimestepEmbedding(e *env) {
	ts := []float32{0, 0.5, 1, 999, 250.3, 1e-3, 37}
	B, dim := len(ts), 38
	t, out := e.pair(ts, B), e.pair(nil, B, dim)
	e.dev.TimestepEmbedding(out.d, t.d, B, dim, 10000)
	e.cpu.TimestepEmbedding(out.c, t.c, B, dim, 10000)
	e.check("TimestepEmbedding", out, 1e-6, 1e-6)
	e.free(t, out)
}

func testMeanPool(e *env) {
	B, T, C := 3, 7, 37
	m := make([]float32, B*T)
	for t := 0; t < T; t++ {
		m[t] = float32(t % 2) // row 0: alternate tokens; row 1: none; row 2: all
		m[2*T+t] = 1
	}
	x := normals(46, B*T*C)
	x[T*C+5] = float32(math.NaN()) // a masked NaN stays out of the sums
	for _, withMask := range []bool{true, false} {
		if !withMask {
			x[T*C+5] = 1
		}
		in, out := e.pair(x, B, T, C), e.pair(nil, B, C)
		var mask pair
		if withMask {
			mask = e.pair(m, B, T)
		}
		e.dev.MeanPoolForward(out.d, in.d, mask.d, B, T, C)
		e.cpu.MeanPoolForward(out.c, in.c, mask.c, B, T, C)
		e.check("MeanPoolForward", out, tol32, eps32)
		dout, dinp := e.pair(normals(47, B*C), B, C), e.pair(nil, B, T, C)
		e.dev.MeanPoolBackward(dinp.d, dout.d, mask.d, B, T, C)
		e.cpu.MeanPoolBackward(dinp.c, dout.c, mask.c, B, T, C)
		e.check("MeanPoolBackward", dinp, tol32, eps32)
		e.free(in, out, dout, dinp)
		if withMask {
			e.free(mask)
		}
	}
}

func testPatchify(e *env) {
	for _, g := range [][7]int{{2, 4, 3, 6, 9, 2, 3}, {3, 1, 5, 4, 6, 1, 2}} {
		B, T, C, H, W, pt, p := g[0], g[1], g[2], g[3], g[4], g[5], g[6]
		n := B * T * C * H * W
		ntok, F := (T/pt)*(H/p)*(W/p), C*pt*p*p
		img, tok := e.pair(normals(48, n), B, T, C, H, W), e.pair(nil, B, ntok, F)
		e.dev.Patchify(tok.d, img.d, B, T, C, H, W, pt, p)
		e.cpu.Patchify(tok.c, img.c, B, T, C, H, W, pt, p)
		e.same("Patchify", tok)
		back := e.pair(nil, B, T, C, H, W)
		e.dev.Unpatchify(back.d, tok.d, B, T, C, H, W, pt, p)
		e.cpu.Unpatchify(back.c, tok.c, B, T, C, H, W, pt, p)
		e.same("Unpatchify", back)
		e.free(img, tok, back)
	}
}

func testPermute(e *env) {
	cases := []struct{ shape, perm []int }{
		{[]int{2, 3, 4, 5}, []int{2, 0, 3, 1}},
		{[]int{7}, []int{0}},
		{[]int{2, 1, 3, 1, 2, 2}, []int{5, 4, 3, 2, 1, 0}},
		{[]int{3, 5, 2, 4, 3}, []int{0, 2, 1, 4, 3}},
		{[]int{1, 1}, []int{1, 0}},
	}
	for _, c := range cases {
		n := 1
		for _, s := range c.shape {
			n *= s
		}
		in, out := e.pair(normals(49, n), n), e.pair(nil, n)
		e.dev.Permute(out.d, in.d, c.shape, c.perm)
		e.cpu.Permute(out.c, in.c, slices.Clone(c.shape), slices.Clone(c.perm))
		e.same("Permute", out)
		e.free(in, out)
	}
}

func testConcat(e *env) {
	outer, na, nb := 5, 3, 7
	a, b := e.pair(normals(50, outer*na), outer, na), e.pair(normals(51, outer*nb), outer, nb)
	out := e.pair(nil, outer, na+nb)
	e.dev.Concat(out.d, a.d, b.d, outer, na, nb)
	e.cpu.Concat(out.c, a.c, b.c, outer, na, nb)
	e.same("Concat", out)
	a2, b2 := e.pair(nil, outer, na), e.pair(nil, outer, nb)
	e.dev.Split(a2.d, b2.d, out.d, outer, na, nb)
	e.cpu.Split(a2.c, b2.c, out.c, outer, na, nb)
	e.same("Split a", a2)
	e.same("Split b", b2)
	e.free(a, b, out, a2, b2)
}

func testSum(e *env) {
	for _, n := range []int{0, 1, 37, 10007} {
		x := e.pair(normals(52, n), n)
		for _, sq := range []bool{false, true} {
			got, want := e.dev.Sum(x.d), e.cpu.Sum(x.c)
			if sq {
				got, want = e.dev.SumSquares(x.d), e.cpu.SumSquares(x.c)
			}
			if math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
				e.t.Errorf("n=%d squares=%v: got %.17g want %.17g", n, sq, got, want)
			}
		}
		e.free(x)
	}
	// SumSquaresEach: each tensor's SumSquares bit for bit (the same kernels and grids),
	// 0 for nil and empty entries.
	a, b, c := e.pair(normals(56, 10007), 10007), e.pair(normals(57, 37), 37), e.pair(nil, 0)
	xs := []*kernels.Tensor{a.d, nil, c.d, b.d}
	got := e.dev.SumSquaresEach(xs)
	want := []float64{e.dev.SumSquares(a.d), 0, 0, e.dev.SumSquares(b.d)}
	for i := range want {
		if got[i] != want[i] {
			e.t.Errorf("SumSquaresEach tensor %d: %.17g, want %.17g", i, got[i], want[i])
		}
	}
	if cpu := e.cpu.SumSquares(a.c); math.Abs(got[0]-cpu) > 1e-12*(1+cpu) {
		e.t.Errorf("SumSquaresEach tensor 0: %.17g, CPU %.17g", got[0], cpu)
	}
	e.free(a, b, c)
}

func testMSE(e *env) {
	for _, sz := range [][2]int{{3, 1001}, {2, 1}, {2, 0}} {
		B, D := sz[0], sz[1]
		p, t := e.pair(normals(53, B*D), B, D), e.pair(normals(54, B*D), B, D)
		loss := e.pair(normals(55, B), B)
		e.dev.MSEForward(loss.d, p.d, t.d, B, D)
		e.cpu.MSEForward(loss.c, p.c, t.c, B, D)
		e.check("MSEForward", loss, tol32, eps32)
		dl, dp := e.pair(normals(56, B), B), e.pair(nil, B, D)
		e.dev.MSEBackward(dp.d, dl.d, p.d, t.d, B, D)
		e.cpu.MSEBackward(dp.c, dl.c, p.c, t.c, B, D)
		e.check("MSEBackward", dp, tol32, eps32)
		e.free(p, t, loss, dl, dp)
	}
}

func testAdamW(e *env) {
	n := 1001
	p, g := e.pair(normals(57, n), n), e.pair(normals(58, n), n)
	m, v := e.pair(nil, n), e.pair(nil, n)
	for step := 1; step <= 3; step++ {
		h := kernelsAdamW(step)
		e.dev.AdamW(p.d, g.d, m.d, v.d, h)
		e.cpu.AdamW(p.c, g.c, m.c, v.c, h)
		e.check("AdamW param", p, tol32, eps32)
		e.check("AdamW m", m, tol32, eps32)
		e.check("AdamW v", v, tol32, eps32)
	}
	// AdamWEach over two parameters, one without weight decay (chunked on the device).
	hs := []kernels.AdamWParams{kernelsAdamW(4), kernelsAdamW(4)}
	hs[1].WeightDecay = 0
	q, gq, mq, vq := e.pair(normals(59, 37), 37), e.pair(normals(60, 37), 37), e.pair(nil, 37), e.pair(nil, 37)
	e.dev.AdamWEach([]*kernels.Tensor{p.d, q.d}, []*kernels.Tensor{g.d, gq.d}, []*kernels.Tensor{m.d, mq.d}, []*kernels.Tensor{v.d, vq.d}, hs)
	e.cpu.AdamWEach([]*kernels.Tensor{p.c, q.c}, []*kernels.Tensor{g.c, gq.c}, []*kernels.Tensor{m.c, mq.c}, []*kernels.Tensor{v.c, vq.c}, hs)
	for _, x := range []pair{p, m, v, q, mq, vq} {
		e.check("AdamWEach", x, tol32, eps32)
	}
	e.free(p, g, m, v, q, gq, mq, vq)
	// adamw_chunks at a length its vector path takes (n % 4 == 0): aligned, then each of
	// param, grad, m and v in turn one float off (testModulateGateVec says why).
	for off := -1; off < 4; off++ {
		n := 1000
		ts := make([]pair, 4)
		for i, data := range [][]float32{normals(61, n), normals(62, n), nil, nil} {
			if i == off {
				ts[i] = e.pair(data, n)
			} else {
				ts[i] = e.alignedPair(data, n)
			}
		}
		p, g, m, v := ts[0], ts[1], ts[2], ts[3]
		h := []kernels.AdamWParams{kernelsAdamW(2)}
		e.dev.AdamWEach([]*kernels.Tensor{p.d}, []*kernels.Tensor{g.d}, []*kernels.Tensor{m.d}, []*kernels.Tensor{v.d}, h)
		e.cpu.AdamWEach([]*kernels.Tensor{p.c}, []*kernels.Tensor{g.c}, []*kernels.Tensor{m.c}, []*kernels.Tensor{v.c}, h)
		for _, x := range []pair{p, m, v} {
			e.check(fmt.Sprintf("AdamWEach (n %% 4 == 0, operand %d off)", off), x, tol32, eps32)
		}
		e.free(ts...)
	}
}

func testRand(e *env) {
	for _, n := range []int{1, 7, 1003} {
		for _, so := range [][2]uint64{{0, 0}, {0xdeadbeefcafef00d, 17}, {42, 1<<32 - 1}} {
			u := e.pair(nil, n)
			e.dev.RandUniform(u.d, so[0], so[1])
			e.cpu.RandUniform(u.c, so[0], so[1])
			e.same("RandUniform", u)
			e.dev.RandNormal(u.d, so[0], so[1])
			e.cpu.RandNormal(u.c, so[0], so[1])
			e.check("RandNormal", u, 1e-6, 1e-6)
			e.free(u)
		}
	}
}
