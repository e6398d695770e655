// Launchers of the layer-normalisation kernels (layernorm.cu).
//
// Test: go test ./kernels/cuda -run 'Conformance/LayerNorm'
package cuda

import "github.com/alignkit/align/kernels"

// rowsPerBlock is the number of rows (one warp each) of the row-wise kernels' blocks.
const rowsPerBlock = 8

// rowGrid is the grid of a warp-per-row kernel over N rows.
func rowGrid(N int) Dim3 { return Dim3{(N + rowsPerBlock - 1) / rowsPerBlock, 1, 1} }

var rowBlock = Dim3{32 * rowsPerBlock, 1, 1}

func (d *Device) LayerNormForward(out, mean, rstd, inp, weight, bias *kernels.Tensor, N, C int, eps float32) {
	mustLen("LayerNormForward out", out, N*C)
	mustLen("LayerNormForward inp", inp, N*C)
	mustLen("LayerNormForward mean", mean, N)
	mustLen("LayerNormForward rstd", rstd, N)
	if (weight == nil) != (bias == nil) {
		panic("cuda: LayerNormForward: weight and bias must both be set or both be nil")
	}
	if weight != nil {
		mustLen("LayerNormForward weight", weight, C)
		mustLen("LayerNormForward bias", bias, C)
	}
	if N == 0 {
		return
	}
	d.launch("layernorm_forward", rowGrid(N), rowBlock, 0, P(d.ptr(out)), P(d.ptr(mean)), P(d.ptr(rstd)),
		P(d.rptr(inp)), P(d.rptr(weight)), P(d.rptr(bias)), P(0), P(0), P(0), P(0), P(0), P(0), P(0), P(0),
		I(N), I(1), I(C), F(eps))
}

// LayerNormModulateForward is layernorm_forward with the modulation in the same pass: out
// (or, in BF16 mode, its copy alone for a StoreHalf tensor: outPair) from the normalised row
// still in registers, bit for bit what ModulateForward of h gives; h nil: not stored.
func (d *Device) LayerNormModulateForward(out, h, mean, rstd, x, shift, scale *kernels.Tensor, B, T, C int, eps float32) {
	N := B * T
	mustLen("LayerNormModulateForward out", out, N*C)
	if h != nil {
		mustLen("LayerNormModulateForward h", h, N*C)
	}
	mustLen("LayerNormModulateForward x", x, N*C)
	mustLen("LayerNormModulateForward mean", mean, N)
	mustLen("LayerNormModulateForward rstd", rstd, N)
	mustLen("LayerNormModulateForward shift", shift, B*C)
	mustLen("LayerNormModulateForward scale", scale, B*C)
	if N == 0 || C == 0 {
		return
	}
	if d.noFusedNormModulate {
		if h == nil { // the norm into out, modulated in place
			h = out
		}
		d.LayerNormForward(h, mean, rstd, x, nil, nil, N, C, eps)
		d.ModulateForward(out, h, shift, scale, B, T, C)
		return
	}
	ph, pm, pr := d.ptr(h), d.ptr(mean), d.ptr(rstd)
	px, psh, psc := d.rptr(x), d.rptr(shift), d.rptr(scale)
	po, po16 := d.outPair(out)
	d.launch("layernorm_forward", rowGrid(N), rowBlock, 0, P(ph), P(pm), P(pr), P(px), P(0), P(0),
		P(po), P(po16), P(psh), P(psc), P(0), P(0), P(0), P(0), I(N), I(T), I(C), F(eps))
}

// GateLayerNormModulateForward is layernorm_forward with the gated residual x1 = x + gate*y
// formed as the row is read (y from its BF16 copy where it is kept there alone: readPair)
// and stored, and the modulation as in LayerNormModulateForward: x1 is not read back.
func (d *Device) GateLayerNormModulateForward(x1, out, mean, rstd, x, gate, y, shift, scale *kernels.Tensor,
	B, T, C int, eps float32) {
	N := B * T
	for _, t := range []*kernels.Tensor{x1, out, x, y} {
		mustLen("GateLayerNormModulateForward (B,T,C) operand", t, N*C)
	}
	for _, t := range []*kernels.Tensor{gate, shift, scale} {
		mustLen("GateLayerNormModulateForward (B,C) operand", t, B*C)
	}
	mustLen("GateLayerNormModulateForward mean", mean, N)
	mustLen("GateLayerNormModulateForward rstd", rstd, N)
	if N == 0 || C == 0 {
		return
	}
	if d.noFusedNormModulate {
		d.GateForward(x1, x, gate, y, B, T, C)
		d.LayerNormModulateForward(out, nil, mean, rstd, x1, shift, scale, B, T, C, eps)
		return
	}
	py, py16 := d.readPair(y)
	px, pg, psh, psc := d.rptr(x), d.rptr(gate), d.rptr(shift), d.rptr(scale)
	px1, pm, pr := d.ptr(x1), d.ptr(mean), d.ptr(rstd)
	po, po16 := d.outPair(out)
	d.launch("layernorm_forward", rowGrid(N), rowBlock, 0, P(0), P(pm), P(pr), P(px), P(0), P(0),
		P(po), P(po16), P(psh), P(psc), P(pg), P(py), P(py16), P(px1), I(N), I(T), I(C), F(eps))
}

// LayerNormBackward is one pass of layernorm_modulate_backward where it takes the rows (an
// affine norm of rows up to 32*ROW_REG), which reads each row before it writes it; else it
// launches the parameter-gradient kernel first, then layernorm_backward_dx. Either way dinp
// may alias dout.
func (d *Device) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd *kernels.Tensor, N, C int) {
	mustLen("LayerNormBackward dinp", dinp, N*C)
	mustLen("LayerNormBackward dout", dout, N*C)
	mustLen("LayerNormBackward inp", inp, N*C)
	mustLen("LayerNormBackward mean", mean, N)
	mustLen("LayerNormBackward rstd", rstd, N)
	for _, p := range []*kernels.Tensor{weight, dweight, dbias} {
		if p != nil {
			mustLen("LayerNormBackward parameter", p, C)
		}
	}
	if N == 0 || C == 0 {
		return
	}
	if weight != nil && C <= lnmMaxCols && !d.noNormColumns {
		// One pass: the rows as one sample, the sums layernorm_modulate_backward's (dbias
		// its dshift, dweight its dscale).
		pdw, pdb := d.ptr(dweight), d.ptr(dbias)
		pdo, pdo16 := d.readPair(dout)
		d.layerNormModulateBackward(d.lnmSplits(1, N), d.ptr(dinp), pdb, pdw, pdo, pdo16, d.rptr(inp), d.rptr(mean),
			d.rptr(rstd), 0, 0, d.rptr(weight), lnmGate{}, 1, N, C)
		return
	}
	if dweight != nil || dbias != nil {
		d.colSum("layernorm_backward_params", N, C, []DevPtr{d.ptr(dweight), d.ptr(dbias)},
			P(d.ptr(dout)), P(d.ptr(inp)), P(d.ptr(mean)), P(d.ptr(rstd)), I(N), I(C))
	}
	d.launch("layernorm_backward_dx", rowGrid(N), rowBlock, 0, P(d.ptr(dinp)), P(d.rptr(dout)), P(0), P(d.rptr(inp)),
		P(d.rptr(weight)), P(d.rptr(mean)), P(d.rptr(rstd)), P(0), P(0), I(N), I(1), I(C))
}

// LayerNormModulateBackward is layernorm_modulate_backward: the norm's input gradient of
// dout*(1 + scale) plus resid and the modulation's column sums in one pass over the rows,
// the norm recomputed from x, mean and rstd (eps is the CPU device's); the modulation's input
// gradient is never stored. Rows longer than 32*ROW_REG, or with noNormColumns: the column
// sums by modulate_backward, then layernorm_backward_dx. With noFusedNormModulate: the norm,
// ModulateBackward, LayerNormBackward and Add, separately.
func (d *Device) LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale *kernels.Tensor,
	B, T, C int, eps float32) {
	N := B * T
	checkNormModulateBackward("LayerNormModulateBackward", dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, B, T, C)
	if N == 0 || C == 0 {
		return
	}
	if d.noFusedNormModulate {
		h, m, r := d.New(N, C), d.New(N), d.New(N)
		defer func() { d.Free(h); d.Free(m); d.Free(r) }()
		d.LayerNormForward(h, m, r, x, nil, nil, N, C, eps)
		d.ModulateBackward(dinp, dshift, dscale, dout, h, scale, B, T, C)
		d.LayerNormBackward(dinp, nil, nil, dinp, x, nil, mean, rstd, N, C)
		if resid != nil {
			d.Add(dinp, resid, dinp)
		}
		return
	}
	pdo, pdo16 := d.readPair(dout) // a dout kept in BF16 alone (StoreHalf) read from its copy
	px, pm, pr, psc := d.rptr(x), d.rptr(mean), d.rptr(rstd), d.rptr(scale)
	if C <= lnmMaxCols && !d.noNormColumns {
		d.layerNormModulateBackward(d.lnmSplits(B, T), d.ptr(dinp), d.ptr(dshift), d.ptr(dscale), pdo, pdo16, px, pm, pr,
			d.rptr(resid), psc, 0, lnmGate{}, B, T, C)
		return
	}
	d.launch("modulate_backward", colGrid(C, B), colBlock, 0, P(0), P(d.ptr(dshift)), P(d.ptr(dscale)),
		P(pdo), P(pdo16), P(px), P(psc), P(pm), P(pr), I(B), I(T), I(C))
	d.launch("layernorm_backward_dx", rowGrid(N), rowBlock, 0, P(d.ptr(dinp)), P(pdo), P(pdo16), P(px), P(0), P(pm),
		P(pr), P(d.rptr(resid)), P(psc), I(N), I(T), I(C))
}

// checkNormModulateBackward panics unless the operands of op (LayerNormModulateBackward's)
// have their lengths: (B,T,C), (B*T) and (B,C); resid may be nil.
func checkNormModulateBackward(op string, dinp, dshift, dscale, dout, resid, x, mean, rstd, scale *kernels.Tensor,
	B, T, C int) {
	N := B * T
	for _, t := range []*kernels.Tensor{dinp, dout, x} {
		mustLen(op+" (B,T,C) operand", t, N*C)
	}
	if resid != nil {
		mustLen(op+" resid", resid, N*C)
	}
	mustLen(op+" mean", mean, N)
	mustLen(op+" rstd", rstd, N)
	for _, t := range []*kernels.Tensor{dshift, dscale, scale} {
		mustLen(op+" (B,C) operand", t, B*C)
	}
}

// lnmMaxCols is the longest row layernorm_modulate_backward takes (32*ROW_REG, layernorm.cu);
// lnmWarps its warps per block, lnmMinRows the fewest rows it gives a warp.
const (
	lnmMaxCols = 32 * 32
	lnmWarps   = 4
	lnmMinRows = 8
)

// lnmSplits is layernorm_modulate_backward's blocks per sample: about a quarter of the
// column sums' target (colBlocks, 8 per multiprocessor) over the batch, each warp at least
// lnmMinRows rows, since every block beyond the first of a sample writes and reads 16 bytes
// per column (its two float64 totals).
func (d *Device) lnmSplits(B, T int) int {
	return max(1, min((d.colBlocks+4*B-1)/(4*B), T/(lnmWarps*lnmMinRows)))
}

// LayerNormModulateGateBackward is LayerNormModulateBackward, then GateBackward(dy, dgate,
// dinp, gate, y), in layernorm_modulate_backward's one pass: dinp is not read back. Rows
// longer than 32*ROW_REG, noNormColumns or noFusedNormModulate: the two operations.
func (d *Device) LayerNormModulateGateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, dy, dgate, gate,
	y *kernels.Tensor, B, T, C int, eps float32) {
	mustLen("LayerNormModulateGateBackward dy", dy, B*T*C)
	mustLen("LayerNormModulateGateBackward y", y, B*T*C)
	mustLen("LayerNormModulateGateBackward dgate", dgate, B*C)
	mustLen("LayerNormModulateGateBackward gate", gate, B*C)
	if C > lnmMaxCols || d.noNormColumns || d.noFusedNormModulate {
		d.LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, B, T, C, eps)
		d.GateBackward(dy, dgate, dinp, gate, y, B, T, C)
		return
	}
	checkNormModulateBackward("LayerNormModulateGateBackward", dinp, dshift, dscale, dout, resid, x, mean, rstd, scale,
		B, T, C)
	if B*T == 0 || C == 0 {
		return
	}
	pdo, pdo16 := d.readPair(dout)
	g := lnmGate{gate: d.rptr(gate), dgate: d.ptr(dgate)}
	g.y, g.y16 = d.readPair(y)
	pdinp, pdsh, pdsc := d.ptr(dinp), d.ptr(dshift), d.ptr(dscale)
	g.dy, g.dy16 = d.outPair(dy) // after every ptr of the launch (outPair)
	d.layerNormModulateBackward(d.lnmSplits(B, T), pdinp, pdsh, pdsc, pdo, pdo16, d.rptr(x), d.rptr(mean), d.rptr(rstd),
		d.rptr(resid), d.rptr(scale), 0, g, B, T, C)
}

// lnmGate is the gated branch layernorm_modulate_backward forms from dinp (gate 0: none).
type lnmGate struct{ dy, dy16, dgate, gate, y, y16 DevPtr }

// layerNormModulateBackward launches layernorm_modulate_backward with splits blocks per
// sample, part the scratch of their totals (two per column and sample, three with a gate)
// and count the samples' zeroed block counters (a table of zeros the kernel leaves zero,
// uploaded once and again only to grow).
func (d *Device) layerNormModulateBackward(splits int, dinp, dshift, dscale, dout, dout16, x, mean, rstd, resid,
	scale, weight DevPtr, g lnmGate, B, T, C int) {
	var part, count DevPtr
	if splits > 1 {
		sums := 2
		if g.gate != 0 {
			sums = 3
		}
		p, release := d.scratch(8 * sums * splits * B * C)
		defer release()
		part = p
		// Never shorter than the table already is: a shorter one would differ from it and be
		// copied again (a copy from the host waits for the stream).
		count = d.upload(&d.lnmCounts, make([]uint64, max((B+1)/2, len(d.lnmCounts.words))))
	}
	d.launch("layernorm_modulate_backward", Dim3{B, splits, 1}, Dim3{32 * lnmWarps, 1, 1}, 0, P(dinp), P(dshift),
		P(dscale), P(part), P(count), P(dout), P(dout16), P(x), P(mean), P(rstd), P(resid), P(scale), P(weight), P(g.dy),
		P(g.dy16), P(g.dgate), P(g.gate), P(g.y), P(g.y16), I(T), I(C))
}
