// Launchers of the attention kernels (attention.cu), on one of two paths (and a tensor-core
// forward in BF16 mode).
//
// GEMM path, when the score matrices of one sample fit the device's budget (attnGemmBudget):
// the products are batched GEMMs over the B*NH heads, each head's Q, K, V, dO, O and their
// gradients read and written where they lie in the packed layouts (row stride 3C or C;
// pointer arrays, gemmPtrs), in FP32, TF32, or BF16 in the BF16 mode (the row kernels write
// P and dS as BF16 themselves), and the softmax and dS are row kernels over the stored
// (B,NH,T,T) scores:
//
//	forward   S = scale Q K^T, P = softmax(S + bias) (and lse), O = P V
//	backward  P = exp(scale Q K^T + bias - lse), dV = P^T dO, dP = dO V^T,
//	          dS = P*(dP - dd), dQ = scale dS K, dK = scale dS^T Q
//
// Batches too large for the budget run in chunks of samples.
//
// Fused kernels otherwise: online softmax, scores never stored, memory linear in T.
//
// In BF16 mode with 64 dims per head (DiT-B's), attention runs on tensor cores instead
// (useAttnMMA): the flash-attention scheme of the fused kernels with every product an
// mma.sync over the BF16 copies of qkv and dout (bf16Of), so the scores never reach memory:
// attention_forward_mma, then attention_backward_dq_mma (dQ per query block) and
// attention_backward_dkv_mma (dK and dV per key block), which take the lse of any path. With
// Device.dqShares the dkv kernel also writes each key block's share of dQ into scratch, which
// attention_dq_sum adds in a fixed order (no atomics), where the shares fit the budget: S
// and dP are then formed once instead of twice, for 4*NH*T^2 bytes of shares a sample
// written and read (DiT-B: 134 MB a layer). At a few instructions per mma in both kernels
// (make sass-stats) the two products cost less than that traffic by estimate, so the
// default forms dQ on its own; BenchmarkDiTBase's ablation dq-split measures the choice.
//
// Both paths give the forward's lse the same meaning (log sum_j exp(s_ij), 0 for a query
// with every key masked) and the backward recomputes P from it, so a backward may take
// another path than its forward. Both use the backward's dd = rowsum(dout*out) (B,NH,T).
//
// Test: go test ./kernels/cuda -run 'Conformance/Attention|Attention'
package cuda

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

// Attention kernel geometry (ATT_WARPS, ATT_HS_MAX, MMA_WARPS, MMA_HS in attention.cu).
const (
	attWarps      = 4
	attHSMax      = 128
	attMMAWarps   = 4
	attMMAHS      = 64
	attMMAQueries = 16 * attMMAWarps // queries per block of attention_forward_mma
)

// attnGemmBudget is the default of Device.attnBudget: the most bytes of (T,T) score
// matrices the GEMM path holds at once. The backward holds two (P and dP/dS), 8*NH*T*T
// bytes a sample, so a sample fits while NH*T^2 <= 2^25 (12 heads: T <= 1672), and DiT-B's
// training batch (32 samples, T = 272, 12 heads: 217 MiB) runs in one chunk. 256 MiB is small
// next to the activations of such a batch and to a GPU's memory; longer sequences go to the
// fused kernels, whose memory stays linear in T where the scores would grow as T^2.
const attnGemmBudget = 256 << 20

// attnGemmChunk returns the number of samples per chunk of the GEMM path for (B,T,NH), or 0
// when one sample's scores exceed the device's budget (fused path). Chunks are as even as
// their count allows, and the forward and the backward use the same ones, so that they
// compute the scores with the same GEMM shapes.
func (d *Device) attnGemmChunk(B, T, NH int) int {
	return d.attnChunk(B, 8*NH*T*T) // S and dP of the backward, float32
}

// attnMMAChunk returns the number of samples per launch of the tensor-core backward with
// dQ's shares (attention_backward_dkv_mma with dq_part, NH*blocks*T*64 floats a sample,
// about NH*T^2), or 0 when one sample's exceed the device's budget: dQ is then formed by
// attention_backward_dq_mma.
func (d *Device) attnMMAChunk(B, T, NH int) int {
	blocks := (T + attMMAQueries - 1) / attMMAQueries
	return d.attnChunk(B, 4*NH*blocks*T*attMMAHS)
}

// attnChunk returns the samples per chunk when each needs perSample bytes of the budget:
// chunks as even as their count allows, 0 when one sample does not fit.
func (d *Device) attnChunk(B, perSample int) int {
	bc := d.attnBudget / max(perSample, 1)
	if bc < 1 {
		return 0
	}
	if bc >= B {
		return B
	}
	n := (B + bc - 1) / bc
	return (B + n - 1) / n
}

// attnGemmScratch returns the scratch bytes of the GEMM path for chunks of bc samples: the
// scores (one (bc,NH,T,T) array in the forward, two in the backward), the backward's dd
// (bc,NH,T) and one product's pointer arrays (3 per head).
func attnGemmScratch(bc, T, NH int) (fwdScores, bwdScores, bwdDD, ptrs int) {
	scores := 4 * bc * NH * T * T
	return scores, 2 * scores, 4 * bc * NH * T, 8 * 3 * bc * NH
}

// at offsets p by n float32 elements; a null pointer stays null (an absent key bias).
func at(p DevPtr, n int) DevPtr {
	if p == 0 {
		return 0
	}
	return p + DevPtr(4*n)
}

// heads returns the address of head h of sample b, at index b*NH+h, in a packed array of n
// samples of T rows of row elements of es bytes each, head h's HS values at h*HS from base.
func heads(base DevPtr, es, n, T, NH, HS, row int) []DevPtr {
	ps := make([]DevPtr, 0, n*NH)
	for b := range n {
		for h := range NH {
			ps = append(ps, base+DevPtr(es*(b*T*row+h*HS)))
		}
	}
	return ps
}

// qkvHeads returns the heads of Q, K and V in a packed (n,T,3,NH,HS) array of es-byte elements.
func qkvHeads(x DevPtr, es, n, T, NH, HS int) (q, k, v []DevPtr) {
	C := NH * HS
	return heads(x, es, n, T, NH, HS, 3*C), heads(x+DevPtr(es*C), es, n, T, NH, HS, 3*C),
		heads(x+DevPtr(2*es*C), es, n, T, NH, HS, 3*C)
}

// mats returns the addresses of count consecutive matrices of size elements of es bytes.
func mats(base DevPtr, es, count, size int) []DevPtr {
	ps := make([]DevPtr, count)
	for i := range ps {
		ps[i] = base + DevPtr(es*i*size)
	}
	return ps
}

// attentionCheck applies the fused kernels' head-size limit to both paths, so that a model
// the device accepts at one sequence length it accepts at every length.
func attentionCheck(op string, HS int) {
	if HS < 1 || HS > attHSMax {
		panic(fmt.Sprintf("cuda: %s: head size %d outside 1..%d of the fused kernels", op, HS, attHSMax))
	}
}

func attGrid(B, T, NH int) Dim3 { return Dim3{(T + attWarps - 1) / attWarps, NH, B} }

var attBlock = Dim3{32 * attWarps, 1, 1}

func (d *Device) AttentionForward(out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	C := NH * HS
	mustLen("AttentionForward out", out, B*T*C)
	mustLen("AttentionForward lse", lse, B*NH*T)
	mustLen("AttentionForward qkv", qkv, B*T*3*C)
	if keyBias != nil {
		mustLen("AttentionForward keyBias", keyBias, B*T)
	}
	if B*T*NH == 0 {
		return
	}
	attentionCheck("AttentionForward", HS)
	scale := float32(1 / math.Sqrt(float64(HS)))
	if d.useAttnMMA(qkv, HS) {
		q16, release := d.bf16Of(qkv, 0, B*T*3*C)
		defer release()
		pl, pkb := d.ptr(lse), d.rptr(keyBias)
		po, ph := d.pairOut(out)
		d.launch("attention_forward_mma", Dim3{(T + attMMAQueries - 1) / attMMAQueries, NH, B}, Dim3{32 * attMMAWarps, 1, 1}, 0,
			P(po), P(ph), P(pl), P(q16), P(pkb), I(T), I(NH), F(scale))
		return
	}
	if bc := d.attnGemmChunk(B, T, NH); bc > 0 {
		d.attentionForwardGemm(d.ptr(out), d.ptr(lse), qkv, d.rptr(keyBias), B, T, NH, HS, bc, scale)
		return
	}
	d.launch("attention_forward", attGrid(B, T, NH), attBlock, 4*(68*HS+192), P(d.ptr(out)), P(d.ptr(lse)),
		P(d.rptr(qkv)), P(d.rptr(keyBias)), I(T), I(NH), I(HS), F(scale))
}

// useAttnMMA reports whether attention runs on the tensor-core kernels: BF16 mode, 64 dims
// per head, and qkv at an element that is a multiple of 8 (the kernels read 16-byte pieces
// of its BF16 copy, and of dout's, whose storages' copies start 256-byte aligned).
func (d *Device) useAttnMMA(qkv *kernels.Tensor, HS int) bool {
	return d.prec == GemmBF16 && HS == attMMAHS && !d.noAttnMMA && qkv.Offset%8 == 0 && d.mmaOK()
}

// pairOut is outPair for the tensor-core kernels, which store pairs of BF16 values as one
// 4-byte word: FP32 alone where t starts at an odd element.
func (d *Device) pairOut(t *kernels.Tensor) (f32, bf16 DevPtr) {
	if t.Offset%2 != 0 {
		return d.ptr(t), 0
	}
	return d.outPair(t)
}

func (d *Device) AttentionBackward(dqkv, dout, out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	C := NH * HS
	mustLen("AttentionBackward dqkv", dqkv, B*T*3*C)
	mustLen("AttentionBackward dout", dout, B*T*C)
	mustLen("AttentionBackward out", out, B*T*C)
	mustLen("AttentionBackward lse", lse, B*NH*T)
	mustLen("AttentionBackward qkv", qkv, B*T*3*C)
	if keyBias != nil {
		mustLen("AttentionBackward keyBias", keyBias, B*T)
	}
	if B*T*NH == 0 {
		return
	}
	attentionCheck("AttentionBackward", HS)
	scale := float32(1 / math.Sqrt(float64(HS)))
	if d.useAttnMMA(qkv, HS) && dout.Offset%8 == 0 {
		q16, relQ := d.bf16Of(qkv, 0, B*T*3*C)
		defer relQ()
		do16, relDO := d.bf16Of(dout, 0, B*T*C)
		defer relDO()
		out16, relO := d.bf16Of(out, 0, B*T*C)
		defer relO()
		dd, release := d.scratch(4 * B * NH * T)
		defer release()
		pl, pkb := d.rptr(lse), d.rptr(keyBias)
		pdq, ph := d.pairOut(dqkv)
		blocks, block := (T+attMMAQueries-1)/attMMAQueries, Dim3{32 * attMMAWarps, 1, 1}
		bc := 0
		if d.dqShares {
			bc = d.attnMMAChunk(B, T, NH)
		}
		if bc == 0 { // the dq kernel forms dd = rowsum(dO O) for itself and writes it for dkv's
			grid := Dim3{blocks, NH, B}
			d.launch("attention_backward_dq_mma", grid, block, 0, P(pdq), P(ph), P(q16), P(do16), P(out16), P(pl), P(dd),
				P(pkb), I(T), I(NH), F(scale))
			d.launch("attention_backward_dkv_mma", grid, block, 0, P(pdq), P(ph), P(0), P(q16), P(do16), P(pl), P(dd),
				P(pkb), I(T), I(NH), F(scale))
			return
		}
		// S and dP formed once: each key block's share of dQ into part, summed by attention_dq_sum.
		rows := B * T * NH
		d.launch("attention_backward_dd", Dim3{(rows + 7) / 8, 1, 1}, Dim3{256, 1, 1}, 0, P(dd), P(0), P(0), P(do16),
			P(out16), I(B), I(T), I(NH), I(HS))
		part, relPart := d.scratch(4 * bc * NH * blocks * T * attMMAHS)
		defer relPart()
		half := func(p DevPtr, n int) DevPtr { // p offset by n BF16 elements; null stays null
			if p == 0 {
				return 0
			}
			return p + DevPtr(2*n)
		}
		for b0 := 0; b0 < B; b0 += bc {
			n := min(bc, B-b0)
			dq, dq16 := at(pdq, b0*T*3*C), half(ph, b0*T*3*C)
			d.launch("attention_backward_dkv_mma", Dim3{blocks, NH, n}, block, 0, P(dq), P(dq16), P(part),
				P(half(q16, b0*T*3*C)), P(half(do16, b0*T*C)), P(at(pl, b0*NH*T)), P(at(dd, b0*NH*T)), P(at(pkb, b0*T)),
				I(T), I(NH), F(scale))
			d.launch1("attention_dq_sum", n*T*C, P(dq), P(dq16), P(part), I(n), I(T), I(NH), I(blocks), F(scale))
		}
		return
	}
	if bc := d.attnGemmChunk(B, T, NH); bc > 0 {
		d.attentionBackwardGemm(d.ptr(dqkv), dout, d.rptr(out), d.rptr(lse), qkv, d.rptr(keyBias),
			B, T, NH, HS, bc, scale)
		return
	}
	dd, release := d.scratch(4 * B * NH * T)
	defer release()
	rows := B * T * NH
	d.launch("attention_backward_dd", Dim3{(rows + 7) / 8, 1, 1}, Dim3{256, 1, 1}, 0, P(dd), P(d.rptr(dout)),
		P(d.rptr(out)), P(0), P(0), I(B), I(T), I(NH), I(HS))
	args := []Arg{P(d.ptr(dqkv)), P(d.rptr(dout)), P(d.rptr(lse)), P(dd), P(d.rptr(qkv)), P(d.rptr(keyBias)),
		I(T), I(NH), I(HS), F(scale)}
	d.launch("attention_backward_dq", attGrid(B, T, NH), attBlock, 4*(72*HS+224), args...)
	d.launch("attention_backward_dkv", attGrid(B, T, NH), attBlock, 4*(72*HS+384), args...)
}

// attentionForwardGemm is the GEMM path of AttentionForward, bc samples at a time. Per
// chunk: S = scale Q K^T; attention_softmax turns S into P and writes lse; O = P V, written
// into out's heads. In BF16 mode both products take BF16 inputs: the chunk of qkv converted
// once (bf16Of: kept as qkv's BF16 copy, which the backward reads again), and P written as BF16 by the softmax itself (no pass of its own over the scores,
// which dominate the traffic: T^2 per head against 3*T*HS for Q, K, V).
func (d *Device) attentionForwardGemm(out, lse DevPtr, qkv *kernels.Tensor, kb DevPtr, B, T, NH, HS, bc int, scale float32) {
	C := NH * HS
	bf16 := d.prec == GemmBF16
	sb, _, _, _ := attnGemmScratch(bc, T, NH)
	s, relS := d.scratch(sb)
	defer relS()
	var p16 DevPtr
	if bf16 {
		var relP func()
		p16, relP = d.scratch(sb / 2)
		defer relP()
	}
	for b0 := 0; b0 < B; b0 += bc {
		n := min(bc, B-b0)
		nh, rows := n*NH, n*NH*T
		x, typ, es, release := at(d.rptr(qkv), b0*T*3*C), Float32, 4, func() {}
		if bf16 {
			x, release = d.bf16Of(qkv, b0*T*3*C, n*T*3*C)
			typ, es = BFloat16, 2
		}
		q, k, v := qkvHeads(x, es, n, T, NH, HS)
		ss := mats(s, 4, nh, T*T)
		d.gemmPtrs(typ, false, true, T, T, HS, scale, q, 3*C, k, 3*C, 0, ss, T)
		d.launch("attention_softmax", rowGrid(rows), rowBlock, 0, P(s), P(at(lse, b0*NH*T)), P(at(kb, b0*T)),
			P(p16), I(rows), I(T), I(NH))
		ps := ss // P as the product reads it
		if bf16 {
			ps = mats(p16, 2, nh, T*T)
		}
		d.gemmPtrs(typ, false, false, T, HS, T, 1, ps, T, v, 3*C, 0, heads(at(out, b0*T*C), 4, n, T, NH, HS, C), C)
		release()
	}
}

// attentionBackwardGemm is the GEMM path of AttentionBackward, bc samples at a time: X = P
// recomputed from lse; Y = dP = dO V^T; dV = X^T dO; Y = dS; dQ = scale Y K; dK = scale Y^T Q,
// the gradients written into dqkv's heads. In BF16 mode the products take BF16 inputs: the
// chunks of qkv and dout converted once (or qkv's copy from the forward), P and dS written as BF16 by the row kernels (dS
// over P's BF16 copy, which dV = P^T dO has used by then).
func (d *Device) attentionBackwardGemm(dqkv DevPtr, dout *kernels.Tensor, out, lse DevPtr, qkv *kernels.Tensor, kb DevPtr,
	B, T, NH, HS, bc int, scale float32) {
	C := NH * HS
	bf16 := d.prec == GemmBF16
	_, sb, db, _ := attnGemmScratch(bc, T, NH)
	x, relS := d.scratch(sb)
	defer relS()
	dd, relD := d.scratch(db)
	defer relD()
	y := at(x, bc*NH*T*T)
	var p16 DevPtr
	if bf16 {
		var relP func()
		p16, relP = d.scratch(sb / 4)
		defer relP()
	}
	for b0 := 0; b0 < B; b0 += bc {
		n := min(bc, B-b0)
		nh, rows := n*NH, n*NH*T
		in, din, gin := at(d.rptr(qkv), b0*T*3*C), at(dqkv, b0*T*3*C), at(d.rptr(dout), b0*T*C)
		typ, es, release := Float32, 4, func() {}
		xs, ys := mats(x, 4, nh, T*T), mats(y, 4, nh, T*T)
		ps, dss := xs, ys // P and dS as the products read them
		if bf16 {
			var relIn, relG func()
			in, relIn = d.bf16Of(qkv, b0*T*3*C, n*T*3*C)
			gin, relG = d.bf16Of(dout, b0*T*C, n*T*C)
			typ, es, release = BFloat16, 2, func() { relIn(); relG() }
			ps = mats(p16, 2, nh, T*T)
			dss = ps
		}
		q, k, v := qkvHeads(in, es, n, T, NH, HS)
		g := heads(gin, es, n, T, NH, HS, C)
		dq, dk, dv := qkvHeads(din, 4, n, T, NH, HS)
		d.launch("attention_backward_dd", Dim3{(rows + 7) / 8, 1, 1}, Dim3{256, 1, 1}, 0, P(dd),
			P(at(d.rptr(dout), b0*T*C)), P(at(out, b0*T*C)), P(0), P(0), I(n), I(T), I(NH), I(HS))
		d.gemmPtrs(typ, false, true, T, T, HS, scale, q, 3*C, k, 3*C, 0, xs, T)
		d.launch("attention_probs", rowGrid(rows), rowBlock, 0, P(x), P(at(lse, b0*NH*T)), P(at(kb, b0*T)),
			P(p16), I(rows), I(T), I(NH))
		d.gemmPtrs(typ, false, true, T, T, HS, 1, g, C, v, 3*C, 0, ys, T)  // dP = dO V^T
		d.gemmPtrs(typ, true, false, T, HS, T, 1, ps, T, g, C, 0, dv, 3*C) // dV = P^T dO
		d.launch("attention_dscores", rowGrid(rows), rowBlock, 0, P(y), P(x), P(dd), P(p16), I(rows), I(T))
		d.gemmPtrs(typ, false, false, T, HS, T, scale, dss, T, k, 3*C, 0, dq, 3*C) // dQ = scale dS K
		d.gemmPtrs(typ, true, false, T, HS, T, scale, dss, T, q, 3*C, 0, dk, 3*C)  // dK = scale dS^T Q
		release()
	}
}
