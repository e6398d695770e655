// Vector elementwise loops (AVX2, eight floats a step; four doubles in AccumF64AVX2), see
// elementwise_amd64.go.
// Test: go test -run 'Vector' ./kernels

//go:build amd64 && gc && !purego

#include "textflag.h"

// func AddAVX2(dst, a, b *float32, n int)
TEXT ·AddAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   add_done

add_loop:
	VMOVUPS (SI), Y0
	VADDPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     add_loop

add_done:
	VZEROUPPER
	RET

// func MulAddAVX2(dst, x, s, t *float32, n int)
TEXT ·MulAddAVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), DX
	MOVQ t+24(FP), R8
	MOVQ n+32(FP), CX
	SHRQ $3, CX
	JZ   muladd_done

muladd_loop:
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y0, Y0
	VADDPS  (R8), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, R8
	ADDQ    $32, DI
	DECQ    CX
	JNZ     muladd_loop

muladd_done:
	VZEROUPPER
	RET

// func AccumF64AVX2(acc *float64, x *float32, n int)
TEXT ·AccumF64AVX2(SB), NOSPLIT, $0-24
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $2, CX
	JZ   accum_done

accum_loop:
	VCVTPS2PD (SI), Y0
	VADDPD    (DI), Y0, Y0
	VMOVUPD   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       accum_loop

accum_done:
	VZEROUPPER
	RET

// func AccumMulF64AVX2(acc *float64, x, y *float32, n int)
TEXT ·AccumMulF64AVX2(SB), NOSPLIT, $0-32
	MOVQ acc+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $2, CX
	JZ   accummul_done

accummul_loop:
	VCVTPS2PD (SI), Y0
	VCVTPS2PD (DX), Y1
	VMULPD    Y1, Y0, Y0
	VADDPD    (DI), Y0, Y0
	VMOVUPD   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $16, DX
	ADDQ      $32, DI
	DECQ      CX
	JNZ       accummul_loop

accummul_done:
	VZEROUPPER
	RET

// func MulAVX2(dst, a, b *float32, n int)
TEXT ·MulAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   mul_done

mul_loop:
	VMOVUPS (SI), Y0
	VMULPS  (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     mul_loop

mul_done:
	VZEROUPPER
	RET

// func AdamWAVX2(param, grad, m, v *float32, n int, k *[10]float32)
// Y6-Y15 hold k's constants in order; Go's operand order is src2, src1, dst.
TEXT ·AdamWAVX2(SB), NOSPLIT, $0-48
	MOVQ param+0(FP), DI
	MOVQ grad+8(FP), SI
	MOVQ m+16(FP), DX
	MOVQ v+24(FP), R8
	MOVQ n+32(FP), CX
	MOVQ k+40(FP), AX
	VBROADCASTSS 0(AX), Y6
	VBROADCASTSS 4(AX), Y7
	VBROADCASTSS 8(AX), Y8
	VBROADCASTSS 12(AX), Y9
	VBROADCASTSS 16(AX), Y10
	VBROADCASTSS 20(AX), Y11
	VBROADCASTSS 24(AX), Y12
	VBROADCASTSS 28(AX), Y13
	VBROADCASTSS 32(AX), Y14
	VBROADCASTSS 36(AX), Y15
	SHRQ $3, CX
	JZ   adamw_done

adamw_loop:
	VMULPS  (SI), Y6, Y0   // gi = g*scale
	VMULPS  (DX), Y7, Y1   // b1*m
	VMULPS  Y0, Y8, Y2     // (1-b1)*gi
	VADDPS  Y2, Y1, Y1     // m
	VMOVUPS Y1, (DX)
	VMULPS  (R8), Y9, Y2   // b2*v
	VMULPS  Y0, Y10, Y3    // (1-b2)*gi
	VMULPS  Y0, Y3, Y3     // ((1-b2)*gi)*gi
	VADDPS  Y3, Y2, Y2     // v
	VMOVUPS Y2, (R8)
	VMOVUPS (DI), Y3       // p
	VMULPS  Y3, Y11, Y4    // decay*p
	VSUBPS  Y4, Y3, Y3     // p - decay*p
	VDIVPS  Y12, Y2, Y2    // v/bc2
	VSQRTPS Y2, Y2
	VADDPS  Y13, Y2, Y2    // sqrt(v/bc2) + eps
	VDIVPS  Y15, Y1, Y1    // m/bc1
	VMULPS  Y1, Y14, Y1    // lr*(m/bc1)
	VDIVPS  Y2, Y1, Y1     // / (sqrt(v/bc2) + eps)
	VSUBPS  Y1, Y3, Y3
	VMOVUPS Y3, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, R8
	DECQ    CX
	JNZ     adamw_loop

adamw_done:
	VZEROUPPER
	RET

// func ScaleAVX2(dst *float32, n int, s float32)
TEXT ·ScaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         dst+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS s+16(FP), Y1
	SHRQ         $3, CX
	JZ           scale_done

scale_loop:
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scale_loop

scale_done:
	VZEROUPPER
	RET

// func MaxAVX2(x *float32, n int, m float32) float32
// Each lane keeps (v > m) ? v : m over its elements (VMAXPS with v first returns m when v is
// NaN), then the lanes are folded the same way.
TEXT ·MaxAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y0
	SHRQ         $3, CX
	JZ           max_fold

max_loop:
	VMOVUPS (SI), Y1
	VMAXPS  Y0, Y1, Y0
	ADDQ    $32, SI
	DECQ    CX
	JNZ     max_loop

max_fold:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X0, X1, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X0, X1, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X0, X1, X0
	VZEROUPPER
	MOVSS        X0, ret+24(FP)
	RET
