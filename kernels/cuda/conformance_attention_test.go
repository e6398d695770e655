// Conformance of the fused attention kernels with the CPU device: no mask, a key mask with
// -Inf and finite biases (one sample fully masked), odd head sizes, several key tiles.
//
// Test: go test ./kernels/cuda -run 'Conformance/Attention'
package cuda

import (
	"fmt"
	"math"
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
		{1, 9, 1, 128, false},
	})
}

func testAttentionSmall(e *env) { attentionCases(e, []attentionCase{{2, 37, 1, 24, true}}) }

func attentionCases(e *env, cases []attentionCase) {
	for _, c := range cases {
		B, T, NH, HS := c.B, c.T, c.NH, c.HS
		C := NH * HS
		name := fmt.Sprintf("B%d T%d NH%d HS%d mask=%v", B, T, NH, HS, c.mask)
		qkv := e.pair(normals(60, B*T*3*C), B, T, 3, NH, HS)
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
		e.dev.AttentionForward(out.d, lse.d, qkv.d, kb.d, B, T, NH, HS)
		e.cpu.AttentionForward(out.c, lse.c, qkv.c, kb.c, B, T, NH, HS)
		e.check(name+" out", out, tol32, eps32)
		e.check(name+" lse", lse, tol32, eps32)
		dout, dqkv := e.pair(normals(62, B*T*C), B, T, NH, HS), e.pair(nil, B, T, 3, NH, HS)
		e.dev.AttentionBackward(dqkv.d, dout.d, out.d, lse.d, qkv.d, kb.d, B, T, NH, HS)
		e.cpu.AttentionBackward(dqkv.c, dout.c, out.c, lse.c, qkv.c, kb.c, B, T, NH, HS)
		e.check(name+" dqkv", dqkv, tol32, eps32)
		e.free(qkv, out, lse, dout, dqkv)
		if c.mask {
			e.free(kb)
		}
	}
}
