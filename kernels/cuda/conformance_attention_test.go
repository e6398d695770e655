// Conformance of the attention paths with the CPU device: no mask, a key mask with -Inf and
// finite biases (one sample fully masked), odd head sizes, several key tiles. Each case runs
// the fused kernels, the GEMM path with the whole batch in one chunk and with one sample per
// chunk, and the forward of one path with the backward of the other (the backward sees only
// out and lse, whichever path wrote them). AttentionTF32 runs the GEMM path with TF32
// products.
//
// Test: go test ./kernels/cuda -run 'Conformance/Attention'
package cuda

import (
	"fmt"
	"math"
	"slices"
)

type attentionCase struct {
	B, T, NH, HS int
	mask         bool
}

func testAttention(e *env) {
	attentionCases(e, []attentionCase{
		{2, 37, 3, 24, false},
		{2, 37, 3, 24, true},
		{1, 1, 2, 5, false},
		{2, 70, 1, 40, true},
		{3, 45, 2, 13, true},
		{1, 9, 1, 128, false},
		{1, 1030, 1, 4, true}, // rows past ROW_REG*32: the softmax reads them on each pass
	}, attnAllPaths, tol32, eps32)
}

// testAttentionTF32 runs the GEMM path with TF32 products. TF32 keeps 11 significant bits
// (rounding 2^-11 = 4.9e-4 per input), so a product of k standard normals is off by about
// 2e-3*sqrt(k) (testGemm), a score scale*q.k by about 2e-3, and so, relatively, are the
// probabilities; out, lse and the gradients (values up to about 6 here) are off by a few
// 1e-3 (1.5e-3 at most on the emulated device): tolerance 5e-3 + 5e-3*|want|.
func testAttentionTF32(e *env) {
	e.dev.SetGemmPrecision(GemmTF32)
	defer e.dev.SetGemmPrecision(GemmFP32)
	attentionCases(e, []attentionCase{{2, 37, 3, 24, true}, {3, 45, 2, 13, true}},
		[][2]attnPath{{attnGemm, attnGemm}, {attnGemmChunked, attnGemmChunked}}, 5e-3, 5e-3)
}

// testAttentionBF16 runs the GEMM path in BF16 mode: the products take BF16 inputs (qkv and
// dout converted, P and dS written as BF16 by the row kernels), 8 significant bits, 8 times
// TF32's rounding (testAttentionTF32). On the emulated device out is off by up to 1.6e-2,
// lse by 9.6e-3, dqkv by 1.4e-2 (values up to about 6): tolerance 5e-2 + 5e-2*|want|.
//
// With 64 dims per head attention runs on tensor cores (attention_forward_mma, the backward's
// dq and dkv kernels, or with dqShares the dkv kernel with dQ's shares and attention_dq_sum,
// in one launch, per sample where the budget holds one sample's shares, and by the dq kernel
// where it holds none): cases of two and three query blocks and key tiles (T = 70, 130), a
// fully masked sample, one query; each pass also after or before another path's.
func testAttentionBF16(e *env) {
	e.dev.SetGemmPrecision(GemmBF16)
	defer e.dev.SetGemmPrecision(GemmFP32)
	attentionCases(e, []attentionCase{{2, 37, 3, 24, true}, {3, 45, 2, 13, true}, {1, 1030, 1, 4, true}},
		[][2]attnPath{{attnGemm, attnGemm}, {attnGemmChunked, attnGemmChunked}}, 5e-2, 5e-2)
	attentionCases(e, []attentionCase{{2, 70, 2, 64, true}, {1, 130, 1, 64, false}, {1, 1, 1, 64, false}},
		[][2]attnPath{{attnMMA, attnMMA}, {attnMMA, attnMMAShares}, {attnMMA, attnMMASharesChunked},
			{attnMMA, attnMMASharesNoRoom}, {attnMMA, attnGemm},
			{attnGemm, attnMMA}, {attnFused, attnMMA}, {attnGemm, attnGemm}},
		5e-2, 5e-2)
}

func testAttentionSmall(e *env) {
	attentionCases(e, []attentionCase{{2, 37, 1, 24, true}}, attnSweepPaths, tol32, eps32)
}

// attnPath is a way attention runs on the device under test, selected by its budget.
type attnPath int

const (
	attnFused            attnPath = iota // budget 0: the fused kernels
	attnGemm                             // the default budget: GEMM path, the test batches in one chunk
	attnGemmChunked                      // one sample's scores: GEMM path, one chunk per sample
	attnMMA                              // BF16 mode, 64 dims per head: on tensor cores, dQ by its own kernel
	attnMMAShares                        // the same with dqShares: dQ's shares summed, the test batches in one launch
	attnMMASharesChunked                 // the same, one sample's dQ shares at a time
	attnMMASharesNoRoom                  // dqShares without room for one sample's shares: dQ by its own kernel
)

func (p attnPath) String() string {
	return [...]string{"fused", "gemm", "gemm-chunked", "mma", "mma-shares", "mma-shares-chunked",
		"mma-shares-no-room"}[p]
}

// mma reports whether p runs on tensor cores.
func (p attnPath) mma() bool { return p >= attnMMA }

// shares reports whether p's backward is asked for dQ's shares (Device.dqShares).
func (p attnPath) shares() bool { return p > attnMMA }

// budget is the device's attnBudget that selects p for T keys and NH heads.
func (p attnPath) budget(T, NH int) int {
	switch p {
	case attnGemm:
		return attnGemmBudget
	case attnGemmChunked:
		return 8 * NH * T * T
	case attnMMA, attnMMAShares:
		return attnGemmBudget // for a backward after it; the forward ignores the budget
	case attnMMASharesChunked:
		return 4 * NH * T * ((T + attMMAQueries - 1) / attMMAQueries) * attMMAHS
	}
	return 0
}

// attnAllPaths are the (forward, backward) path pairs of the conformance cases.
var attnAllPaths = [][2]attnPath{
	{attnFused, attnFused}, {attnGemm, attnGemm}, {attnGemmChunked, attnGemmChunked},
	{attnGemm, attnFused}, {attnFused, attnGemm},
}

// attnSweepPaths are the pairs of the boundary sweep (sweep_test.go): each path on its own.
var attnSweepPaths = [][2]attnPath{{attnFused, attnFused}, {attnGemm, attnGemm}}

// attentionCases compares each case on every (forward, backward) path pair with the CPU
// device, within tol + |want|*eps.
func attentionCases(e *env, cases []attentionCase, paths [][2]attnPath, tol, eps float64) {
	defer func(b int) { e.dev.attnBudget = b }(e.dev.attnBudget)
	nan := float32(math.NaN())
	for _, c := range cases {
		B, T, NH, HS := c.B, c.T, c.NH, c.HS
		C := NH * HS
		qkv := e.pair(normals(60, B*T*3*C), B, T, 3, NH, HS)
		mma := slices.ContainsFunc(paths, func(p [2]attnPath) bool { return p[0].mma() || p[1].mma() })
		if mma {
			e.free(qkv)
			qkv = e.alignedPair(normals(60, B*T*3*C), B, T, 3, NH, HS) // the tensor-core kernels read pairs of values
		}
		var kb pair
		if c.mask {
			bias := uniforms(61, B*T, -1, 1)
			for t := 0; t < T; t += 3 {
				bias[t] = float32(math.Inf(-1)) // sample 0: every third key masked
			}
			if B > 1 {
				for t := 0; t < T; t++ {
					bias[T+t] = float32(math.Inf(-1)) // sample 1: all keys masked
				}
			}
			kb = e.pair(bias, B, T)
		}
		out, lse := e.pair(nil, B, T, NH, HS), e.pair(nil, B, NH, T)
		dout, dqkv := e.pair(normals(62, B*T*C), B, T, NH, HS), e.pair(nil, B, T, 3, NH, HS)
		if mma {
			e.free(dout)
			dout = e.alignedPair(normals(62, B*T*C), B, T, NH, HS)
		}
		e.cpu.AttentionForward(out.c, lse.c, qkv.c, kb.c, B, T, NH, HS)
		e.cpu.AttentionBackward(dqkv.c, dout.c, out.c, lse.c, qkv.c, kb.c, B, T, NH, HS)
		for _, p := range paths {
			name := fmt.Sprintf("B%d T%d NH%d HS%d mask=%v %v/%v", B, T, NH, HS, c.mask, p[0], p[1])
			// NaN in the outputs first: every element must be written by the path itself.
			e.dev.Fill(out.d, nan)
			e.dev.Fill(lse.d, nan)
			e.dev.Fill(dqkv.d, nan)
			e.dev.attnBudget = p[0].budget(T, NH)
			e.dev.noAttnMMA = !p[0].mma()
			e.dev.AttentionForward(out.d, lse.d, qkv.d, kb.d, B, T, NH, HS)
			e.check(name+" out", out, tol, eps)
			e.check(name+" lse", lse, tol, eps)
			e.dev.attnBudget = p[1].budget(T, NH)
			e.dev.noAttnMMA, e.dev.dqShares = !p[1].mma(), p[1].shares()
			e.dev.AttentionBackward(dqkv.d, dout.d, out.d, lse.d, qkv.d, kb.d, B, T, NH, HS)
			e.dev.noAttnMMA, e.dev.dqShares = false, false
			e.check(name+" dqkv", dqkv, tol, eps)
		}
		e.free(qkv, out, lse, dout, dqkv)
		if c.mask {
			e.free(kb)
		}
	}
}
