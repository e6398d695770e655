// Launchers of the attention kernels (attention.cu), on one of two paths.
//
// GEMM path, when the score matrices of one sample fit the device's budget (attnGemmBudget):
// Q, K, V (and dO) are gathered head-major (B,NH,T,HS) into scratch, the products are
// strided-batched GEMMs over the B*NH heads at the device's GemmPrecision (TF32 tensor cores
// in TF32 mode), and the softmax and dS are row kernels over the stored (B,NH,T,T) scores:
//
//	forward   S = scale Q K^T, P = softmax(S + bias) (and lse), O = P V
//	backward  P = exp(scale Q K^T + bias - lse), dV = P^T dO, dP = dO V^T,
//	          dS = P*(dP - dd), dQ = scale dS K, dK = scale dS^T Q
//
// Batches too large for the budget run in chunks of samples.
//
// Fused kernels otherwise: online softmax, scores never stored, memory linear in T.
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

// Attention kernel geometry (ATT_WARPS, ATT_HS_MAX in attention.cu).
const (
	attWarps = 4
	attHSMax = 128
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
	perSample := 8 * NH * T * T // S and dP of the backward, float32
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

// attnGemmScratch returns the scratch bytes of the GEMM path for chunks of bc samples:
// heads (3 or 4 (bc,NH,T,HS) arrays), scores (1 or 2 (bc,NH,T,T)) and, in the backward,
// dd (bc,NH,T).
func attnGemmScratch(bc, T, NH, HS int) (fwdHeads, fwdScores, bwdHeads, bwdScores, bwdDD int) {
	heads, scores := 4*bc*NH*T*HS, 4*bc*NH*T*T
	return 3 * heads, scores, 4 * heads, 2 * scores, 4 * bc * NH * T
}

// at offsets p by n float32 elements; a null pointer stays null (an absent key bias).
func at(p DevPtr, n int) DevPtr {
	if p == 0 {
		return 0
	}
	return p + DevPtr(4*n)
}

// attnHeads gathers (toHeads) the W parts of x (n,T,W,NH,HS) into h[w] (n,NH,T,HS), or
// scatters them back.
func (d *Device) attnHeads(x DevPtr, h [3]DevPtr, n, T, NH, HS, W int, toHeads bool) {
	to := 0
	if toHeads {
		to = 1
	}
	d.launch("attention_heads", Dim3{n * T, 1, 1}, Dim3{256, 1, 1}, 0, P(x), P(h[0]), P(h[1]), P(h[2]),
		I(n), I(T), I(NH), I(HS), I(W), I(to))
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
	if bc := d.attnGemmChunk(B, T, NH); bc > 0 {
		d.attentionForwardGemm(d.ptr(out), d.ptr(lse), d.ptr(qkv), d.ptr(keyBias), B, T, NH, HS, bc, scale)
		return
	}
	d.launch("attention_forward", attGrid(B, T, NH), attBlock, 4*(68*HS+192), P(d.ptr(out)), P(d.ptr(lse)),
		P(d.ptr(qkv)), P(d.ptr(keyBias)), I(T), I(NH), I(HS), F(scale))
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
	if bc := d.attnGemmChunk(B, T, NH); bc > 0 {
		d.attentionBackwardGemm(d.ptr(dqkv), d.ptr(dout), d.ptr(out), d.ptr(lse), d.ptr(qkv), d.ptr(keyBias),
			B, T, NH, HS, bc, scale)
		return
	}
	dd, release := d.scratch(4 * B * NH * T)
	defer release()
	rows := B * T * NH
	d.launch("attention_backward_dd", Dim3{(rows + 7) / 8, 1, 1}, Dim3{256, 1, 1}, 0, P(dd), P(d.ptr(dout)),
		P(d.ptr(out)), I(B), I(T), I(NH), I(HS))
	args := []Arg{P(d.ptr(dqkv)), P(d.ptr(dout)), P(d.ptr(lse)), P(dd), P(d.ptr(qkv)), P(d.ptr(keyBias)),
		I(T), I(NH), I(HS), F(scale)}
	d.launch("attention_backward_dq", attGrid(B, T, NH), attBlock, 4*(72*HS+224), args...)
	d.launch("attention_backward_dkv", attGrid(B, T, NH), attBlock, 4*(72*HS+384), args...)
}

// attentionForwardGemm is the GEMM path of AttentionForward, bc samples at a time. Per
// chunk: Q, K, V gathered into three head-major slots; S = scale Q K^T; attention_softmax
// turns S into P and writes lse; O = P V into Q's slot (Q is no longer needed); O scattered
// into out.
func (d *Device) attentionForwardGemm(out, lse, qkv, kb DevPtr, B, T, NH, HS, bc int, scale float32) {
	C := NH * HS
	hb, sb, _, _, _ := attnGemmScratch(bc, T, NH, HS)
	heads, relH := d.scratch(hb)
	defer relH()
	s, relS := d.scratch(sb)
	defer relS()
	slot := bc * NH * T * HS
	q, k, v := heads, at(heads, slot), at(heads, 2*slot)
	th, tt := T*HS, T*T // strides of one head's (T,HS) and (T,T) matrices
	for b0 := 0; b0 < B; b0 += bc {
		n := min(bc, B-b0)
		nh, rows := n*NH, n*NH*T
		d.attnHeads(at(qkv, b0*T*3*C), [3]DevPtr{q, k, v}, n, T, NH, HS, 3, true)
		d.gemm(false, true, T, T, HS, scale, q, th, k, th, 0, s, tt, nh, 0)
		d.launch("attention_softmax", rowGrid(rows), rowBlock, 0, P(s), P(at(lse, b0*NH*T)), P(at(kb, b0*T)),
			I(rows), I(T), I(NH))
		d.gemm(false, false, T, HS, T, 1, s, tt, v, th, 0, q, th, nh, 0)
		d.attnHeads(at(out, b0*T*C), [3]DevPtr{q}, n, T, NH, HS, 1, false)
	}
}

// attentionBackwardGemm is the GEMM path of AttentionBackward, bc samples at a time. Slots
// of the head-major scratch, in order of use: Q, K, V, dO gathered; X = P recomputed from
// lse; Y = dP = dO V^T; dV = X^T dO into V's slot (V done); Y = dS; dQ = scale Y K into dO's
// slot (dO done); dK = scale Y^T Q into K's slot (K done); dQ, dK, dV scattered into dqkv.
func (d *Device) attentionBackwardGemm(dqkv, dout, out, lse, qkv, kb DevPtr, B, T, NH, HS, bc int, scale float32) {
	C := NH * HS
	_, _, hb, sb, db := attnGemmScratch(bc, T, NH, HS)
	heads, relH := d.scratch(hb)
	defer relH()
	x, relS := d.scratch(sb)
	defer relS()
	dd, relD := d.scratch(db)
	defer relD()
	slot := bc * NH * T * HS
	q, k, v, g := heads, at(heads, slot), at(heads, 2*slot), at(heads, 3*slot)
	y := at(x, bc*NH*T*T)
	th, tt := T*HS, T*T
	for b0 := 0; b0 < B; b0 += bc {
		n := min(bc, B-b0)
		nh, rows := n*NH, n*NH*T
		d.attnHeads(at(qkv, b0*T*3*C), [3]DevPtr{q, k, v}, n, T, NH, HS, 3, true)
		d.attnHeads(at(dout, b0*T*C), [3]DevPtr{g}, n, T, NH, HS, 1, true)
		d.launch("attention_backward_dd", Dim3{(rows + 7) / 8, 1, 1}, Dim3{256, 1, 1}, 0, P(dd),
			P(at(dout, b0*T*C)), P(at(out, b0*T*C)), I(n), I(T), I(NH), I(HS))
		d.gemm(false, true, T, T, HS, scale, q, th, k, th, 0, x, tt, nh, 0)
		d.launch("attention_probs", rowGrid(rows), rowBlock, 0, P(x), P(at(lse, b0*NH*T)), P(at(kb, b0*T)),
			I(rows), I(T), I(NH))
		d.gemm(false, true, T, T, HS, 1, g, th, v, th, 0, y, tt, nh, 0) // dP = dO V^T
		d.gemm(true, false, T, HS, T, 1, x, tt, g, th, 0, v, th, nh, 0) // dV = P^T dO
		d.launch("attention_dscores", rowGrid(rows), rowBlock, 0, P(y), P(x), P(dd), I(rows), I(T))
		d.gemm(false, false, T, HS, T, scale, y, tt, k, th, 0, g, th, nh, 0) // dQ = scale dS K
		d.gemm(true, false, T, HS, T, scale, y, tt, q, th, 0, k, th, nh, 0)  // dK = scale dS^T Q
		d.attnHeads(at(dqkv, b0*T*3*C), [3]DevPtr{g, k, v}, n, T, NH, HS, 3, false)
	}
}
