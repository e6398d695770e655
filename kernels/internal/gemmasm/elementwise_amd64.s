// Vector elementwise loops (AVX2, eight floats a step), see
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
