// Launchers of the fused attention kernels (attention.cu). The forward pass keeps only the
// log-sum-exp of each score row (B,NH,T); the backward pass needs one (B,NH,T) scratch
// (dd = rowsum(dout*out)), so memory stays linear in T.
//
// Test: go test ./kernels/cuda -run 'Conformance/Attention'
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
