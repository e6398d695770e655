// Tests of the BF16 copies that producing kernels write in BF16 mode (halfCopy): their values,
// when they are valid, and that products reading them give bit for bit what converting gives.
//
// Test: go test ./kernels/cuda -run Half
package cuda

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// Each producer's copy equals the conversion of its output, on the vector path of
// modulate_forward (C % 4 == 0, aligned) and off it (C odd, an unaligned view), AdamW's
// and the tensor-core attention's.
func TestHalfCopyProducers(t *testing.T) {
	d := NewEmulated()
	d.SetGemmPrecision(GemmBF16)
	valid := func(name string, x *kernels.Tensor) {
		t.Helper()
		h := d.halfIn(x, x.Len())
		if h == 0 {
			t.Fatalf("%s: no valid BF16 copy", name)
		}
		d.verifyHalf(operand{bf16: h, s: d.storageOf(x), off: x.Offset}, x.Len()) // panics on a mismatch
	}
	for _, c := range []struct{ B, T, C, off int }{{2, 5, 8, 0}, {2, 5, 7, 0}, {1, 3, 8, 1}} {
		n := c.B * c.T * c.C
		outs := d.New(c.off + n)
		out := outs.View(c.off, c.B, c.T, c.C)
		x := d.FromHost(normals(1, n), c.B, c.T, c.C)
		shift, scale := d.FromHost(normals(2, c.B*c.C), c.B, c.C), d.FromHost(normals(3, c.B*c.C), c.B, c.C)
		d.ModulateForward(out, x, shift, scale, c.B, c.T, c.C)
		valid("modulate_forward", out)
		d.GeluForward(out, x)
		valid("gelu_forward", out)
		d.GeluBackward(out, x, x)
	}
	const B, T, C = 2, 6, 5
	dy, dgate := d.New(B, T, C), d.New(B, C)
	dout, gate, y := d.FromHost(normals(4, B*T*C), B, T, C), d.FromHost(normals(5, B*C), B, C), d.FromHost(normals(6, B*T*C), B, T, C)
	d.GateBackward(dy, dgate, dout, gate, y, B, T, C)
	valid("gate_backward", dy)

	// AdamWEach writes the updated parameters' copies.
	params := []*kernels.Tensor{d.FromHost(normals(9, 40), 40), d.FromHost(normals(10, 7), 7)}
	var grads, ms, vs []*kernels.Tensor
	var hs []kernels.AdamWParams
	for i, p := range params {
		grads = append(grads, d.FromHost(normals(uint64(11+i), p.Len()), p.Len()))
		ms, vs = append(ms, d.New(p.Len())), append(vs, d.New(p.Len()))
		hs = append(hs, kernels.AdamWParams{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Step: 1})
	}
	d.AdamWEach(params, grads, ms, vs, hs)
	for _, p := range params {
		valid("adamw_chunks", p)
	}

	// The tensor-core attention (64 dims per head) writes out's and dqkv's copies.
	const AB, AT, NH, HS = 2, 19, 2, 64
	qkv := d.FromHost(normals(7, AB*AT*3*NH*HS), AB, AT, 3, NH, HS)
	out, lse := d.New(AB, AT, NH, HS), d.New(AB, NH, AT)
	d.AttentionForward(out, lse, qkv, nil, AB, AT, NH, HS)
	valid("attention_forward_mma", out)
	dqkv := d.New(AB, AT, 3, NH, HS)
	d.AttentionBackward(dqkv, d.FromHost(normals(8, AB*AT*NH*HS), AB, AT, NH, HS), out, lse, qkv, nil, AB, AT, NH, HS)
	valid("attention_backward_dq_mma and attention_backward_dkv_mma", dqkv)
	d.dqShares = true
	d.AttentionBackward(dqkv, d.FromHost(normals(8, AB*AT*NH*HS), AB, AT, NH, HS), out, lse, qkv, nil, AB, AT, NH, HS)
	valid("attention_backward_dkv_mma and attention_dq_sum", dqkv)
}

// A copy serves only the elements its producer wrote, a product's conversion is kept for the
// next, and anything that may write the storage afterwards (through any view) ends the copy;
// freeing the tensor returns its block.
func TestHalfCopyValidity(t *testing.T) {
	d := NewEmulated()
	d.SetGemmPrecision(GemmBF16)
	d.bf16Intensity = 0 // this test's tiny products in BF16 too
	x := d.FromHost(normals(1, 64), 64)
	out := d.New(2, 64)
	first := out.View(0, 64)
	d.GeluForward(first, x)
	if d.halfIn(first, 64) == 0 || d.halfIn(first.View(8, 16), 16) == 0 {
		t.Fatal("no copy after gelu_forward")
	}
	if d.halfIn(out, 128) != 0 || d.halfIn(out.View(64, 64), 64) != 0 {
		t.Fatal("a copy for elements gelu_forward did not write")
	}
	d.Gemm(false, true, 1, 1, 64, 1, first.View(0, 1, 64), x.View(0, 1, 64), 0, d.New(1, 1))
	if d.halfIn(first, 64) == 0 {
		t.Fatal("a product reading the tensor ended its copy")
	}
	if d.halfIn(x, 64) == 0 {
		t.Fatal("a product's conversion of its operand was not kept")
	}
	reads := d.halfReads
	d.Gemm(false, true, 1, 1, 64, 1, x.View(0, 1, 64), first.View(0, 1, 64), 0, d.New(1, 1))
	if d.halfReads != reads+2 {
		t.Fatalf("the second product read %d operands from copies, want 2", d.halfReads-reads)
	}
	d.Scale(out.View(100, 4), 2) // another view of the same storage, elements the copy does not hold
	if d.halfIn(first, 64) != 0 {
		t.Fatal("the copy survived a kernel writing its storage")
	}
	d.GeluForward(first, x)
	d.SetGemmPrecision(GemmTF32)
	if d.halfIn(first, 64) != 0 {
		t.Fatal("a copy served outside BF16 mode")
	}
	d.GeluForward(first, x)
	d.SetGemmPrecision(GemmBF16)
	if d.halfIn(first, 64) != 0 {
		t.Fatal("a kernel outside BF16 mode left its storage's copy valid")
	}
	inUse := d.MemStats().InUse
	d.Free(out)
	if freed := inUse - d.MemStats().InUse; freed != 512+256 {
		t.Errorf("Free returned %d bytes, want 768 (the values and their copy)", freed)
	}
}

// A DiT block's forward and backward in BF16 mode, every product in BF16, with and without
// the copies: the same bits, and the copies are read wherever the values are unchanged since
// a producer wrote them or a product converted them. Products writing BF16 outputs are off
// in both runs (noHalfOutputs: they round the bias and GELU's h; TestGeluEpilogues and
// Conformance/Linear cover them), and so are the MLP's GELU epilogues (the reads counted
// below are those of the separate GELU kernels).
func TestHalfCopyDiTBlock(t *testing.T) {
	checkHalfCopyDiTBlock(t, func() *Device { return NewEmulated() }, 0)
}

// checkHalfCopyDiTBlock runs the block on two devices from open, one with the copies and
// one without, and compares: bit for bit where tol is 0.
func checkHalfCopyDiTBlock(t *testing.T, open func() *Device, tol float64) {
	run := func(noHalves bool) (outs [][]float32, reads int) {
		d := open()
		d.SetGemmPrecision(GemmBF16)
		d.bf16Intensity = 0
		d.noHalves, d.checkHalves, d.noGeluEpilogue, d.noHalfOutputs = noHalves, true, true, true
		cfg := nn.DiTBlockConfig{C: 48, NH: 3}
		const B, T = 2, 9
		blk := nn.NewDiTBlock(d, &kernels.RNG{Seed: 5}, cfg)
		for i, p := range blk.Params() {
			w := normals(uint64(100+i), p.W.Len())
			for j := range w {
				w[j] *= 0.05
			}
			d.CopyFromHost(p.W, w)
		}
		bias := make([]float32, B*T)
		bias[2*T-1] = float32(math.Inf(-1))
		y := blk.Forward(d.FromHost(normals(1, B*T*cfg.C), B, T, cfg.C), d.FromHost(normals(2, B*cfg.C), B, cfg.C),
			d.FromHost(bias, B, T))
		dx, dc := blk.Backward(d.FromHost(normals(3, B*T*cfg.C), B, T, cfg.C))
		for _, v := range []*kernels.Tensor{y, dx, dc} {
			outs = append(outs, hostOf(d, v))
		}
		for _, p := range blk.Params() {
			outs = append(outs, hostOf(d, p.G))
		}
		return outs, d.halfReads
	}
	want, none := run(true)
	got, reads := run(false)
	if none != 0 {
		t.Fatalf("%d copies read with the copies off", none)
	}
	// The first read of every operand converts it and keeps the copy; the reads counted are
	// the later ones. Forward: the inputs of qkv, fc1 (modulate), fc2 (GELU) and the
	// modulation layer (SiLU). Backward:
	// fc2 and fc1 read their output gradient (gate, GELU's backward) in both products, their
	// weight and their input; the projection its output gradient (gate) in both, its weight and
	// its input (attention's output, converted by its forward); attention qkv (converted by its
	// forward); qkv its weight, its output gradient in the weight gradient (converted for the
	// input gradient) and its input; the modulation layer the same three. Converted, not read:
	// the five weights and the projection's input in the forward, qkv in attention's forward,
	// attention's and qkv's and the modulation's output gradients once.
	if reads != 23 {
		t.Errorf("%d operands read from BF16 copies, want 23", reads)
	}
	for i := range want {
		if tol > 0 {
			assertClose(t, fmt.Sprintf("output %d", i), got[i], want[i], tol, tol)
			continue
		}
		for j := range want[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("output %d element %d: %g with the copies, %g without", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// Two training steps and a sampling run of a whole model (text encoder, reward condition,
// patch embedding, final layer) in BF16 mode, with and without the copies: the same bits
// (BF16 outputs off, as in TestHalfCopyDiTBlock). The second step's products read weights
// the first step's AdamW changed, so a copy that outlived its values would show here (and
// checkHalves would name it).
func TestHalfCopyModel(t *testing.T) {
	wide := tinyModelConfig() // 64 dims per head: attention on the tensor-core kernels
	wide.Width, wide.Heads = 128, 2
	for _, cfg := range []diffusion.ModelConfig{tinyModelConfig(), wide} {
		t.Run(fmt.Sprintf("width%d-heads%d", cfg.Width, cfg.Heads), func(t *testing.T) { checkHalfCopyModel(t, cfg) })
	}
}

func checkHalfCopyModel(t *testing.T, cfg diffusion.ModelConfig) {
	const B = 3
	x0 := uniforms(7, B*cfg.SampleSize(), -1, 1)
	run := func(noHalves bool) (outs [][]float32, reads, restores int) {
		d := NewEmulated()
		d.SetGemmPrecision(GemmBF16)
		d.bf16Intensity = 0
		d.noHalves, d.checkHalves, d.noHalfOutputs = noHalves, true, true
		_, m := modelPair(t, kernels.NewCPU(0), d, cfg)
		prompts := diffusion.EncodePrompts(m.Tokenizer, modelCaptions[:B])
		for step := range 2 {
			o := trainStep(m, x0, prompts, uniforms(8, B*len(cfg.RewardDims), 0, 1), B, uint64(11+step), 1, 1e-2)
			outs = append(outs, []float32{float32(o.res.Loss)})
			outs = append(outs, o.ws...)
		}
		x, _, err := diffusion.Sample(m, modelCaptions[:2], diffusion.SampleOptions{NumInferenceSteps: 3, GuidanceScale: 4,
			Seed: 5, Sampler: diffusion.SamplerEuler})
		if err != nil {
			t.Fatal(err)
		}
		restores = d.halfRestores
		return append(outs, hostOf(d, x)), d.halfReads, restores
	}
	want, _, _ := run(true)
	got, reads, restores := run(false)
	if reads == 0 {
		t.Fatal("no operand read from a BF16 copy")
	}
	// Every product runs in BF16 here, so the tensors kept in BF16 only (StoreHalf: the
	// modulations, GELU's output and gradient, the gate's and attention's gradients) are read
	// by products alone: no FP32 values restored.
	if restores != 0 {
		t.Errorf("%d FP32 restorations of tensors kept in BF16 only, want 0", restores)
	}
	for i := range want {
		for j := range want[i] {
			if math.Float32bits(got[i][j]) != math.Float32bits(want[i][j]) {
				t.Fatalf("output %d element %d: %g with the copies, %g without", i, j, got[i][j], want[i][j])
			}
		}
	}
	t.Logf("%d operands read from BF16 copies", reads)
}

// A tensor kept in BF16 only (StoreHalf): its producer writes the copy alone, products read
// it, any other read restores the FP32 values (the BF16 ones, widened), a producer writing
// other elements of the storage restores the first ones before their copy goes, and a
// product overwriting them all restores nothing.
// Outside BF16 mode the hint changes nothing.
func TestHalfOnly(t *testing.T) {
	d := NewEmulated()
	d.SetGemmPrecision(GemmBF16)
	d.bf16Intensity = 0
	x1, x2 := d.FromHost(normals(1, 64), 64), d.FromHost(normals(2, 64), 64)
	rounded := func(x *kernels.Tensor) []float32 { // GELU of x in FP32, rounded to BF16
		prec := d.prec
		d.SetGemmPrecision(GemmFP32)
		u := d.New(x.Len())
		d.GeluForward(u, x)
		d.SetGemmPrecision(prec)
		v := hostOf(d, u)
		for i := range v {
			v[i] = math.Float32frombits(uint32(bf16Nearest(v[i])) << 16)
		}
		return v
	}
	want := append(rounded(x1), rounded(x2)...)
	out := d.New(2, 64)
	d.StoreHalf(out)
	first, second := out.View(0, 64), out.View(64, 64)
	d.GeluForward(first, x1)
	if !d.storageOf(out).f32Stale || d.halfIn(first, 64) == 0 {
		t.Fatal("gelu_forward into a BF16-only tensor: no copy alone")
	}
	d.Gemm(false, true, 1, 1, 64, 1, first.View(0, 1, 64), x1.View(0, 1, 64), 0, d.New(1, 1))
	if d.halfRestores != 0 {
		t.Fatalf("a product restored FP32 values (%d)", d.halfRestores)
	}
	d.GeluForward(second, x2) // the copy moves to the second half: the first is restored
	if d.halfRestores != 1 {
		t.Fatalf("%d restorations after writing other elements, want 1", d.halfRestores)
	}
	if got := hostOf(d, out); !slices.Equal(got, want) {
		t.Fatalf("BF16-only values read back %v..., want %v...", got[:4], want[:4])
	}
	if d.halfRestores != 2 || d.storageOf(out).f32Stale {
		t.Fatalf("%d restorations after reading back, want 2", d.halfRestores)
	}

	// A product overwriting the whole BF16-only tensor with FP32 values restores nothing
	// (noHalfOutputs: with BF16 outputs Gemm would write the copy alone, TestGemmHalf).
	d.GeluForward(first, x1)
	restores := d.halfRestores
	d.noHalfOutputs = true
	d.Gemm(false, false, 64, 1, 1, 1, x1.View(0, 64, 1), d.FromHost([]float32{2}, 1, 1), 0, first.View(0, 64, 1))
	d.noHalfOutputs = false
	if d.halfRestores != restores || d.storageOf(out).f32Stale {
		t.Fatalf("a product overwriting the tensor restored it first (%d restorations)", d.halfRestores-restores)
	}
	if got, x := hostOf(d, first), hostOf(d, x1); math.Abs(float64(got[5]-2*x[5])) > 1e-2*math.Abs(float64(x[5])) {
		t.Fatalf("product written over the BF16-only values: %g, want %g (x in BF16)", got[5], 2*x[5])
	}

	d.SetGemmPrecision(GemmFP32)
	d.GeluForward(first, x1)
	if d.storageOf(out).f32Stale || d.halfIn(first, 64) != 0 {
		t.Fatal("the hint acted outside BF16 mode")
	}
}

// halfOnlyInput returns a tensor of d (in BF16 mode) holding gelu(u) in BF16 alone, at element
// off of its storage, and those values as a kernel reading the copy sees them.
func halfOnlyInput(d *Device, u []float32, off int, shape ...int) (*kernels.Tensor, []float32) {
	y := d.New(len(u)+off).View(off, shape...)
	d.StoreHalf(y)
	d.GeluForward(y, d.FromHost(u, shape...))
	f32 := NewEmulated()
	yf := f32.New(shape...)
	f32.GeluForward(yf, f32.FromHost(u, shape...))
	yh := hostOf(f32, yf)
	for i, v := range yh {
		yh[i] = math.Float32frombits(uint32(bf16Nearest(v)) << 16)
	}
	return y, yh
}

// The gate's kernels (and the LayerNorm's pass with the gate) read a y kept in BF16 alone
// from its copy: no restoration, and the results of the BF16 values.
func TestGateReadsHalf(t *testing.T) {
	const B, T, C = 2, 3, 8
	d := NewEmulated()
	d.SetGemmPrecision(GemmBF16)
	cpu := kernels.NewCPU(0)
	u, x, g, dout := normals(51, B*T*C), normals(52, B*T*C), normals(53, B*C), normals(54, B*T*C)
	for _, off := range []int{0, 1} { // 16-byte aligned rows of 4, and a view at an odd element
		y, yh := halfOnlyInput(d, u, off, B, T, C)
		out, dy, dg := d.New(B, T, C), d.New(B, T, C), d.New(B, C)
		wantOut, wantDy, wantDg := cpu.New(B, T, C), cpu.New(B, T, C), cpu.New(B, C)
		restores := d.halfRestores
		d.GateForward(out, d.FromHost(x, B, T, C), d.FromHost(g, B, C), y, B, T, C)
		d.GateBackward(dy, dg, d.FromHost(dout, B, T, C), d.FromHost(g, B, C), y, B, T, C)
		if d.halfRestores != restores {
			t.Errorf("offset %d: the gate restored y's FP32 values", off)
		}
		cy := cpu.FromHost(yh, B, T, C)
		cpu.GateForward(wantOut, cpu.FromHost(x, B, T, C), cpu.FromHost(g, B, C), cy, B, T, C)
		cpu.GateBackward(wantDy, wantDg, cpu.FromHost(dout, B, T, C), cpu.FromHost(g, B, C), cy, B, T, C)
		assertClose(t, "GateForward", hostOf(d, out), kernels.Host(wantOut), 1e-6, 1e-6)
		assertClose(t, "GateBackward dy", hostOf(d, dy), kernels.Host(wantDy), 1e-6, 1e-6)
		assertClose(t, "GateBackward dgate", hostOf(d, dg), kernels.Host(wantDg), 1e-6, 1e-6)

		// The same gate inside the LayerNorm's pass.
		x1, mo, mean, rstd := d.New(B, T, C), d.New(B, T, C), d.New(B*T), d.New(B*T)
		wx1, wmo, wmean, wrstd := cpu.New(B, T, C), cpu.New(B, T, C), cpu.New(B*T), cpu.New(B*T)
		d.GateLayerNormModulateForward(x1, mo, mean, rstd, d.FromHost(x, B, T, C), d.FromHost(g, B, C), y,
			d.FromHost(dout[:B*C], B, C), d.FromHost(g, B, C), B, T, C, 1e-6)
		cpu.GateLayerNormModulateForward(wx1, wmo, wmean, wrstd, cpu.FromHost(x, B, T, C), cpu.FromHost(g, B, C), cy,
			cpu.FromHost(dout[:B*C], B, C), cpu.FromHost(g, B, C), B, T, C, 1e-6)
		if d.halfRestores != restores {
			t.Errorf("offset %d: GateLayerNormModulateForward restored y's FP32 values", off)
		}
		assertClose(t, "GateLayerNormModulateForward x1", hostOf(d, x1), kernels.Host(wx1), 1e-6, 1e-6)
		assertClose(t, "GateLayerNormModulateForward out", hostOf(d, mo), kernels.Host(wmo), 1e-5, 1e-5)
	}
}

// TestLayerNormWidths checks the LayerNorm forward with the modulation and the gate, its
// output written in BF16 (kept in BF16 alone, and as an FP32 tensor with its BF16 copy), at
// any width and at the widths compiled on their own (ln_forward_width), against the CPU
// device.
func TestLayerNormWidths(t *testing.T) {
	for _, C := range []int{40, 384, 768, 1024} {
		const B, T = 2, 3
		d := NewEmulated()
		d.SetGemmPrecision(GemmBF16)
		cpu := kernels.NewCPU(0)
		x, g, sh, sc := normals(91, B*T*C), normals(92, B*C), normals(93, B*C), normals(94, B*C)
		y, yh := halfOnlyInput(d, normals(95, B*T*C), 0, B, T, C)
		for _, halfOnly := range []bool{true, false} {
			name := fmt.Sprintf("C=%d, output in BF16 alone %v:", C, halfOnly)
			x1, mo, mean, rstd := d.New(B, T, C), d.New(B, T, C), d.New(B*T), d.New(B*T)
			if halfOnly {
				d.StoreHalf(mo)
			}
			wx1, wmo, wmean, wrstd := cpu.New(B, T, C), cpu.New(B, T, C), cpu.New(B*T), cpu.New(B*T)
			d.GateLayerNormModulateForward(x1, mo, mean, rstd, d.FromHost(x, B, T, C), d.FromHost(g, B, C), y,
				d.FromHost(sh, B, C), d.FromHost(sc, B, C), B, T, C, 1e-6)
			cpu.GateLayerNormModulateForward(wx1, wmo, wmean, wrstd, cpu.FromHost(x, B, T, C), cpu.FromHost(g, B, C),
				cpu.FromHost(yh, B, T, C), cpu.FromHost(sh, B, C), cpu.FromHost(sc, B, C), B, T, C, 1e-6)
			want := kernels.Host(wmo)
			tol := 1e-5
			if halfOnly {
				for i, v := range want {
					want[i] = math.Float32frombits(uint32(bf16Nearest(v)) << 16)
				}
				tol = 1e-2
			}
			assertClose(t, name+" x1", hostOf(d, x1), kernels.Host(wx1), 1e-6, 1e-6)
			assertClose(t, name+" mean", hostOf(d, mean), kernels.Host(wmean), 1e-5, 1e-6)
			assertClose(t, name+" rstd", hostOf(d, rstd), kernels.Host(wrstd), 1e-5, 1e-6)
			assertClose(t, name+" out", hostOf(d, mo), want, tol, 1e-5)
		}
	}
}

// LayerNormModulateBackward reads a dout kept in BF16 alone from its copy, in its one pass
// (at any width and at those compiled on their own) and, for rows past ROW_REG*32, in its
// two kernels: no restoration, and the results of the BF16 values.
func TestNormBackwardReadsHalf(t *testing.T) {
	for _, C := range []int{40, 384, 768, 1024, 1100} { // 384, 768, 1024: ln_backward_width's own copies
		const B, T = 2, 3
		d := NewEmulated()
		d.SetGemmPrecision(GemmBF16)
		cpu := kernels.NewCPU(0)
		x, sc, resid := normals(61, B*T*C), normals(62, B*C), normals(63, B*T*C)
		dout, douth := halfOnlyInput(d, normals(64, B*T*C), 0, B, T, C)
		pair := func(dev kernels.Device) (mean, rstd *kernels.Tensor) {
			mean, rstd = dev.New(B*T), dev.New(B*T)
			dev.LayerNormModulateForward(dev.New(B, T, C), nil, mean, rstd, dev.FromHost(x, B, T, C), dev.New(B, C),
				dev.FromHost(sc, B, C), B, T, C, 1e-6)
			return mean, rstd
		}
		dm, dr := pair(d)
		cm, cr := pair(cpu)
		dinp, dsh, dsc := d.New(B, T, C), d.New(B, C), d.New(B, C)
		want, wsh, wsc := cpu.New(B, T, C), cpu.New(B, C), cpu.New(B, C)
		restores := d.halfRestores
		d.LayerNormModulateBackward(dinp, dsh, dsc, dout, d.FromHost(resid, B, T, C), d.FromHost(x, B, T, C), dm, dr,
			d.FromHost(sc, B, C), B, T, C, 1e-6)
		if d.halfRestores != restores {
			t.Errorf("C=%d: dout's FP32 values restored", C)
		}
		cpu.LayerNormModulateBackward(want, wsh, wsc, cpu.FromHost(douth, B, T, C), cpu.FromHost(resid, B, T, C),
			cpu.FromHost(x, B, T, C), cm, cr, cpu.FromHost(sc, B, C), B, T, C, 1e-6)
		assertClose(t, fmt.Sprintf("C=%d dinp", C), hostOf(d, dinp), kernels.Host(want), tol32, eps32)
		assertClose(t, fmt.Sprintf("C=%d dshift", C), hostOf(d, dsh), kernels.Host(wsh), tol32, eps32)
		assertClose(t, fmt.Sprintf("C=%d dscale", C), hostOf(d, dsc), kernels.Host(wsc), tol32, eps32)

		// With the gate's backward: y kept in BF16 alone read from its copy, dy kept in BF16
		// alone written as BF16 only.
		y, yh := halfOnlyInput(d, normals(65, B*T*C), 0, B, T, C)
		gate := normals(66, B*C)
		dy, dg := d.New(B, T, C), d.New(B, C)
		d.StoreHalf(dy)
		wdy, wdg := cpu.New(B, T, C), cpu.New(B, C)
		d.LayerNormModulateGateBackward(dinp, dsh, dsc, dout, d.FromHost(resid, B, T, C), d.FromHost(x, B, T, C), dm, dr,
			d.FromHost(sc, B, C), dy, dg, d.FromHost(gate, B, C), y, B, T, C, 1e-6)
		if d.halfRestores != restores {
			t.Errorf("C=%d: y's or dout's FP32 values restored", C)
		}
		cpu.LayerNormModulateGateBackward(want, wsh, wsc, cpu.FromHost(douth, B, T, C), cpu.FromHost(resid, B, T, C),
			cpu.FromHost(x, B, T, C), cm, cr, cpu.FromHost(sc, B, C), wdy, wdg, cpu.FromHost(gate, B, C),
			cpu.FromHost(yh, B, T, C), B, T, C, 1e-6)
		wantDy := kernels.Host(wdy)
		for i, v := range wantDy {
			wantDy[i] = math.Float32frombits(uint32(bf16Nearest(v)) << 16)
		}
		assertClose(t, fmt.Sprintf("C=%d dy", C), hostOf(d, dy), wantDy, 1e-2, 1e-6)
		assertClose(t, fmt.Sprintf("C=%d dgate", C), hostOf(d, dg), kernels.Host(wdg), tol32, eps32)
		assertClose(t, fmt.Sprintf("C=%d dinp with the gate", C), hostOf(d, dinp), kernels.Host(want), tol32, eps32)
	}
}

// TestKeepHalf checks KeepHalf's weights in BF16 mode: a product of two rows by a 4M-element
// weight (17 MFLOP), whose own conversion of the weight would not pay, stays in TF32 and
// converts nothing; with the weight marked, reading it in half the bytes pays for converting
// the input (bf16Pays), so it runs on BF16, converting the weight (and its input) once; the
// next product reads both copies, and after the weight is written only the weight is
// converted again. The results: with the weight marked, the CPU device's on the BF16
// roundings of the operands; without, the CPU device's within TF32's rounding.
func TestKeepHalf(t *testing.T) {
	const N, in, out = 2, 1024, 4096
	cpu := kernels.NewCPU(0)
	xs, ws := normals(96, N*in), normals(97, out*in)
	reference := func(round bool) []float32 {
		x, w := slices.Clone(xs), slices.Clone(ws)
		if round {
			for _, v := range [][]float32{x, w} {
				for i := range v {
					v[i] = math.Float32frombits(uint32(bf16Nearest(v[i])) << 16)
				}
			}
		}
		y := cpu.New(N, out)
		cpu.Linear(y, cpu.FromHost(x, N, in), cpu.FromHost(w, out, in), nil, N, in, out)
		return kernels.Host(y)
	}
	for _, keep := range []bool{false, true} {
		d, order := tracedDevice()
		d.SetGemmPrecision(GemmBF16)
		x, w, y := d.FromHost(xs, N, in), d.FromHost(ws, out, in), d.New(N, out)
		want, tol, eps := reference(false), 0.1, 0.0 // TF32: 11 significant bits, 1024 terms of about 1
		if keep {
			kernels.KeepHalf(d, w)
			want, tol, eps = reference(true), 1e-4, 1e-5 // the same products, summed in another order
		}
		conversions := func() int {
			n := 0
			for _, k := range *order {
				if k == "f32_to_bf16" {
					n++
				}
			}
			*order = nil
			return n
		}
		var got []int
		for i := 0; i < 3; i++ {
			if i == 2 {
				d.Copy(w, d.FromHost(ws, out, in)) // written: its copy is stale
				*order = nil
			}
			d.Linear(y, x, w, nil, N, in, out)
			got = append(got, conversions())
			assertClose(t, fmt.Sprintf("keep %v, product %d", keep, i), hostOf(d, y), want, tol, eps)
		}
		wantConv := []int{0, 0, 0}
		if keep {
			wantConv = []int{2, 0, 1}
		}
		if !slices.Equal(got, wantConv) {
			t.Errorf("KeepHalf %v: conversions per product %v, want %v", keep, got, wantConv)
		}
	}
}
