// Vector exp loops (AVX2+FMA, eight floats a step): exp(x) = 2^n * p(r), see exp_amd64.go.
// Test: go test -run 'Gelu|Attention|Exp' ./kernels

//go:build amd64 && gc && !purego

#include "textflag.h"

DATA explo<>+0(SB)/4, $0xc2ae0000
DATA explo<>+4(SB)/4, $0xc2ae0000
DATA explo<>+8(SB)/4, $0xc2ae0000
DATA explo<>+12(SB)/4, $0xc2ae0000
DATA explo<>+16(SB)/4, $0xc2ae0000
DATA explo<>+20(SB)/4, $0xc2ae0000
DATA explo<>+24(SB)/4, $0xc2ae0000
DATA explo<>+28(SB)/4, $0xc2ae0000
GLOBL explo<>(SB), RODATA|NOPTR, $32

DATA exphi<>+0(SB)/4, $0x42b00000
DATA exphi<>+4(SB)/4, $0x42b00000
DATA exphi<>+8(SB)/4, $0x42b00000
DATA exphi<>+12(SB)/4, $0x42b00000
DATA exphi<>+16(SB)/4, $0x42b00000
DATA exphi<>+20(SB)/4, $0x42b00000
DATA exphi<>+24(SB)/4, $0x42b00000
DATA exphi<>+28(SB)/4, $0x42b00000
GLOBL exphi<>(SB), RODATA|NOPTR, $32

DATA gelhi<>+0(SB)/4, $0x42a00000
DATA gelhi<>+4(SB)/4, $0x42a00000
DATA gelhi<>+8(SB)/4, $0x42a00000
DATA gelhi<>+12(SB)/4, $0x42a00000
DATA gelhi<>+16(SB)/4, $0x42a00000
DATA gelhi<>+20(SB)/4, $0x42a00000
DATA gelhi<>+24(SB)/4, $0x42a00000
DATA gelhi<>+28(SB)/4, $0x42a00000
GLOBL gelhi<>(SB), RODATA|NOPTR, $32

DATA log2e<>+0(SB)/4, $0x3fb8aa3b
DATA log2e<>+4(SB)/4, $0x3fb8aa3b
DATA log2e<>+8(SB)/4, $0x3fb8aa3b
DATA log2e<>+12(SB)/4, $0x3fb8aa3b
DATA log2e<>+16(SB)/4, $0x3fb8aa3b
DATA log2e<>+20(SB)/4, $0x3fb8aa3b
DATA log2e<>+24(SB)/4, $0x3fb8aa3b
DATA log2e<>+28(SB)/4, $0x3fb8aa3b
GLOBL log2e<>(SB), RODATA|NOPTR, $32

DATA magic<>+0(SB)/4, $0x4b400000
DATA magic<>+4(SB)/4, $0x4b400000
DATA magic<>+8(SB)/4, $0x4b400000
DATA magic<>+12(SB)/4, $0x4b400000
DATA magic<>+16(SB)/4, $0x4b400000
DATA magic<>+20(SB)/4, $0x4b400000
DATA magic<>+24(SB)/4, $0x4b400000
DATA magic<>+28(SB)/4, $0x4b400000
GLOBL magic<>(SB), RODATA|NOPTR, $32

DATA ln2hi<>+0(SB)/4, $0x3f318000
DATA ln2hi<>+4(SB)/4, $0x3f318000
DATA ln2hi<>+8(SB)/4, $0x3f318000
DATA ln2hi<>+12(SB)/4, $0x3f318000
DATA ln2hi<>+16(SB)/4, $0x3f318000
DATA ln2hi<>+20(SB)/4, $0x3f318000
DATA ln2hi<>+24(SB)/4, $0x3f318000
DATA ln2hi<>+28(SB)/4, $0x3f318000
GLOBL ln2hi<>(SB), RODATA|NOPTR, $32

DATA ln2lo<>+0(SB)/4, $0xb95e8083
DATA ln2lo<>+4(SB)/4, $0xb95e8083
DATA ln2lo<>+8(SB)/4, $0xb95e8083
DATA ln2lo<>+12(SB)/4, $0xb95e8083
DATA ln2lo<>+16(SB)/4, $0xb95e8083
DATA ln2lo<>+20(SB)/4, $0xb95e8083
DATA ln2lo<>+24(SB)/4, $0xb95e8083
DATA ln2lo<>+28(SB)/4, $0xb95e8083
GLOBL ln2lo<>(SB), RODATA|NOPTR, $32

DATA p5<>+0(SB)/4, $0x39506967
DATA p5<>+4(SB)/4, $0x39506967
DATA p5<>+8(SB)/4, $0x39506967
DATA p5<>+12(SB)/4, $0x39506967
DATA p5<>+16(SB)/4, $0x39506967
DATA p5<>+20(SB)/4, $0x39506967
DATA p5<>+24(SB)/4, $0x39506967
DATA p5<>+28(SB)/4, $0x39506967
GLOBL p5<>(SB), RODATA|NOPTR, $32

DATA p4<>+0(SB)/4, $0x3ab743ce
DATA p4<>+4(SB)/4, $0x3ab743ce
DATA p4<>+8(SB)/4, $0x3ab743ce
DATA p4<>+12(SB)/4, $0x3ab743ce
DATA p4<>+16(SB)/4, $0x3ab743ce
DATA p4<>+20(SB)/4, $0x3ab743ce
DATA p4<>+24(SB)/4, $0x3ab743ce
DATA p4<>+28(SB)/4, $0x3ab743ce
GLOBL p4<>(SB), RODATA|NOPTR, $32

DATA p3<>+0(SB)/4, $0x3c088908
DATA p3<>+4(SB)/4, $0x3c088908
DATA p3<>+8(SB)/4, $0x3c088908
DATA p3<>+12(SB)/4, $0x3c088908
DATA p3<>+16(SB)/4, $0x3c088908
DATA p3<>+20(SB)/4, $0x3c088908
DATA p3<>+24(SB)/4, $0x3c088908
DATA p3<>+28(SB)/4, $0x3c088908
GLOBL p3<>(SB), RODATA|NOPTR, $32

DATA p2<>+0(SB)/4, $0x3d2aa9c1
DATA p2<>+4(SB)/4, $0x3d2aa9c1
DATA p2<>+8(SB)/4, $0x3d2aa9c1
DATA p2<>+12(SB)/4, $0x3d2aa9c1
DATA p2<>+16(SB)/4, $0x3d2aa9c1
DATA p2<>+20(SB)/4, $0x3d2aa9c1
DATA p2<>+24(SB)/4, $0x3d2aa9c1
DATA p2<>+28(SB)/4, $0x3d2aa9c1
GLOBL p2<>(SB), RODATA|NOPTR, $32

DATA p1<>+0(SB)/4, $0x3e2aaaaa
DATA p1<>+4(SB)/4, $0x3e2aaaaa
DATA p1<>+8(SB)/4, $0x3e2aaaaa
DATA p1<>+12(SB)/4, $0x3e2aaaaa
DATA p1<>+16(SB)/4, $0x3e2aaaaa
DATA p1<>+20(SB)/4, $0x3e2aaaaa
DATA p1<>+24(SB)/4, $0x3e2aaaaa
DATA p1<>+28(SB)/4, $0x3e2aaaaa
GLOBL p1<>(SB), RODATA|NOPTR, $32

DATA p0<>+0(SB)/4, $0x3f000000
DATA p0<>+4(SB)/4, $0x3f000000
DATA p0<>+8(SB)/4, $0x3f000000
DATA p0<>+12(SB)/4, $0x3f000000
DATA p0<>+16(SB)/4, $0x3f000000
DATA p0<>+20(SB)/4, $0x3f000000
DATA p0<>+24(SB)/4, $0x3f000000
DATA p0<>+28(SB)/4, $0x3f000000
GLOBL p0<>(SB), RODATA|NOPTR, $32

DATA one<>+0(SB)/4, $0x3f800000
DATA one<>+4(SB)/4, $0x3f800000
DATA one<>+8(SB)/4, $0x3f800000
DATA one<>+12(SB)/4, $0x3f800000
DATA one<>+16(SB)/4, $0x3f800000
DATA one<>+20(SB)/4, $0x3f800000
DATA one<>+24(SB)/4, $0x3f800000
DATA one<>+28(SB)/4, $0x3f800000
GLOBL one<>(SB), RODATA|NOPTR, $32

DATA gelc0<>+0(SB)/4, $0xbfcc422a
DATA gelc0<>+4(SB)/4, $0xbfcc422a
DATA gelc0<>+8(SB)/4, $0xbfcc422a
DATA gelc0<>+12(SB)/4, $0xbfcc422a
DATA gelc0<>+16(SB)/4, $0xbfcc422a
DATA gelc0<>+20(SB)/4, $0xbfcc422a
DATA gelc0<>+24(SB)/4, $0xbfcc422a
DATA gelc0<>+28(SB)/4, $0xbfcc422a
GLOBL gelc0<>(SB), RODATA|NOPTR, $32

DATA gelc1<>+0(SB)/4, $0xbd922279
DATA gelc1<>+4(SB)/4, $0xbd922279
DATA gelc1<>+8(SB)/4, $0xbd922279
DATA gelc1<>+12(SB)/4, $0xbd922279
DATA gelc1<>+16(SB)/4, $0xbd922279
DATA gelc1<>+20(SB)/4, $0xbd922279
DATA gelc1<>+24(SB)/4, $0xbd922279
DATA gelc1<>+28(SB)/4, $0xbd922279
GLOBL gelc1<>(SB), RODATA|NOPTR, $32

DATA geld0<>+0(SB)/4, $0x3fcc422a
DATA geld0<>+4(SB)/4, $0x3fcc422a
DATA geld0<>+8(SB)/4, $0x3fcc422a
DATA geld0<>+12(SB)/4, $0x3fcc422a
DATA geld0<>+16(SB)/4, $0x3fcc422a
DATA geld0<>+20(SB)/4, $0x3fcc422a
DATA geld0<>+24(SB)/4, $0x3fcc422a
DATA geld0<>+28(SB)/4, $0x3fcc422a
GLOBL geld0<>(SB), RODATA|NOPTR, $32

DATA geld1<>+0(SB)/4, $0x3e5b33b6
DATA geld1<>+4(SB)/4, $0x3e5b33b6
DATA geld1<>+8(SB)/4, $0x3e5b33b6
DATA geld1<>+12(SB)/4, $0x3e5b33b6
DATA geld1<>+16(SB)/4, $0x3e5b33b6
DATA geld1<>+20(SB)/4, $0x3e5b33b6
DATA geld1<>+24(SB)/4, $0x3e5b33b6
DATA geld1<>+28(SB)/4, $0x3e5b33b6
GLOBL geld1<>(SB), RODATA|NOPTR, $32

// EXP sets Y0 = exp(clamp(Y0, Y15, Y14)), or 0 where Y0 < Y15 (-87); Y12 = magic,
// Y13 = log2e. Clobbers Y1 to Y5. VMAXPS/VMINPS return their last Go operand when either is
// NaN, and the mask Y2 = !(Y0 < Y15) is true for NaN, so NaN in Y0 survives.
#define EXP \
	VCMPPS $5, Y15, Y0, Y2; \
	VMAXPS Y0, Y15, Y0; \
	VMINPS Y0, Y14, Y0; \
	VMOVAPS Y12, Y1; \
	VFMADD231PS Y13, Y0, Y1; \
	VSUBPS Y12, Y1, Y4; \
	VPSLLD $23, Y1, Y1; \
	VFNMADD231PS ln2hi<>(SB), Y4, Y0; \
	VFNMADD231PS ln2lo<>(SB), Y4, Y0; \
	VMOVUPS p5<>(SB), Y3; \
	VFMADD213PS p4<>(SB), Y0, Y3; \
	VFMADD213PS p3<>(SB), Y0, Y3; \
	VFMADD213PS p2<>(SB), Y0, Y3; \
	VFMADD213PS p1<>(SB), Y0, Y3; \
	VFMADD213PS p0<>(SB), Y0, Y3; \
	VMULPS Y0, Y0, Y5; \
	VFMADD213PS Y0, Y5, Y3; \
	VADDPS one<>(SB), Y3, Y3; \
	VPADDD Y1, Y3, Y0; \
	VANDPS Y2, Y0, Y0

// func ExpSumAVX2(dst, src *float32, n int, sub float32) float32
TEXT ·ExpSumAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS sub+24(FP), Y11
	VMOVUPS explo<>(SB), Y15
	VMOVUPS exphi<>(SB), Y14
	VMOVUPS log2e<>(SB), Y13
	VMOVUPS magic<>(SB), Y12
	VXORPS Y10, Y10, Y10
	SHRQ $3, CX
	JZ expsum_done
expsum_loop:
	VMOVUPS (SI), Y0
	VSUBPS Y11, Y0, Y0
	EXP
	VMOVUPS Y0, (DI)
	VADDPS Y0, Y10, Y10
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ expsum_loop
expsum_done:
	VEXTRACTF128 $1, Y10, X1
	VADDPS X1, X10, X10
	VHADDPS X10, X10, X10
	VHADDPS X10, X10, X10
	VZEROUPPER
	MOVSS X10, ret+32(FP)
	RET

// func GeluAVX2(dst, src *float32, n int)
TEXT ·GeluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS explo<>(SB), Y15
	VMOVUPS gelhi<>(SB), Y14
	VMOVUPS log2e<>(SB), Y13
	VMOVUPS magic<>(SB), Y12
	SHRQ $3, CX
	JZ gelu_done
gelu_loop:
	VMOVUPS (SI), Y6
	VMULPS Y6, Y6, Y0
	VMULPS gelc1<>(SB), Y0, Y0
	VADDPS gelc0<>(SB), Y0, Y0
	VMULPS Y6, Y0, Y0
	EXP
	VADDPS one<>(SB), Y0, Y0
	VDIVPS Y0, Y6, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ gelu_loop
gelu_done:
	VZEROUPPER
	RET

// func GeluBackwardAVX2(dx, x, dout *float32, n int)
TEXT ·GeluBackwardAVX2(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dout+16(FP), DX
	MOVQ n+24(FP), CX
	VMOVUPS explo<>(SB), Y15
	VMOVUPS gelhi<>(SB), Y14
	VMOVUPS log2e<>(SB), Y13
	VMOVUPS magic<>(SB), Y12
	SHRQ $3, CX
	JZ gelub_done
gelub_loop:
	VMOVUPS (SI), Y6
	VMULPS Y6, Y6, Y7
	VMULPS gelc1<>(SB), Y7, Y0
	VADDPS gelc0<>(SB), Y0, Y0
	VMULPS Y6, Y0, Y0
	EXP
	VADDPS one<>(SB), Y0, Y2
	VMOVUPS one<>(SB), Y3
	VDIVPS Y2, Y3, Y3
	VMULPS Y3, Y0, Y0
	VMULPS geld1<>(SB), Y7, Y7
	VADDPS geld0<>(SB), Y7, Y7
	VMULPS Y6, Y7, Y7
	VMULPS Y3, Y7, Y7
	VMULPS Y0, Y7, Y7
	VADDPS Y3, Y7, Y7
	VMULPS (DX), Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNZ gelub_loop
gelub_done:
	VZEROUPPER
	RET

// EXP512 is EXP on sixteen lanes (Z registers, the constants broadcast from their first
// lane): the same operations lane by lane, so the same bits. The mask of lanes not below
// Z15 goes to K1.
#define EXP512 \
	VCMPPS $5, Z15, Z0, K1; \
	VMAXPS Z0, Z15, Z0; \
	VMINPS Z0, Z14, Z0; \
	VMOVAPS Z12, Z1; \
	VFMADD231PS Z13, Z0, Z1; \
	VSUBPS Z12, Z1, Z4; \
	VPSLLD $23, Z1, Z1; \
	VFNMADD231PS.BCST ln2hi<>(SB), Z4, Z0; \
	VFNMADD231PS.BCST ln2lo<>(SB), Z4, Z0; \
	VBROADCASTSS p5<>(SB), Z3; \
	VFMADD213PS.BCST p4<>(SB), Z0, Z3; \
	VFMADD213PS.BCST p3<>(SB), Z0, Z3; \
	VFMADD213PS.BCST p2<>(SB), Z0, Z3; \
	VFMADD213PS.BCST p1<>(SB), Z0, Z3; \
	VFMADD213PS.BCST p0<>(SB), Z0, Z3; \
	VMULPS Z0, Z0, Z5; \
	VFMADD213PS Z0, Z5, Z3; \
	VADDPS.BCST one<>(SB), Z3, Z3; \
	VPADDD Z1, Z3, Z0; \
	VMOVAPS.Z Z0, K1, Z0

// func GeluAVX512(dst, src *float32, n int)
TEXT ·GeluAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS explo<>(SB), Z15
	VBROADCASTSS gelhi<>(SB), Z14
	VBROADCASTSS log2e<>(SB), Z13
	VBROADCASTSS magic<>(SB), Z12
	SHRQ $4, CX
	JZ gelu512_done
gelu512_loop:
	VMOVUPS (SI), Z6
	VMULPS Z6, Z6, Z0
	VMULPS.BCST gelc1<>(SB), Z0, Z0
	VADDPS.BCST gelc0<>(SB), Z0, Z0
	VMULPS Z6, Z0, Z0
	EXP512
	VADDPS.BCST one<>(SB), Z0, Z0
	VDIVPS Z0, Z6, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ gelu512_loop
gelu512_done:
	VZEROUPPER
	RET

// func GeluBackwardAVX512(dx, x, dout *float32, n int)
TEXT ·GeluBackwardAVX512(SB), NOSPLIT, $0-32
	MOVQ dx+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ dout+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS explo<>(SB), Z15
	VBROADCASTSS gelhi<>(SB), Z14
	VBROADCASTSS log2e<>(SB), Z13
	VBROADCASTSS magic<>(SB), Z12
	SHRQ $4, CX
	JZ gelub512_done
gelub512_loop:
	VMOVUPS (SI), Z6
	VMULPS Z6, Z6, Z7
	VMULPS.BCST gelc1<>(SB), Z7, Z0
	VADDPS.BCST gelc0<>(SB), Z0, Z0
	VMULPS Z6, Z0, Z0
	EXP512
	VADDPS.BCST one<>(SB), Z0, Z2
	VBROADCASTSS one<>(SB), Z3
	VDIVPS Z2, Z3, Z3
	VMULPS Z3, Z0, Z0
	VMULPS.BCST geld1<>(SB), Z7, Z7
	VADDPS.BCST geld0<>(SB), Z7, Z7
	VMULPS Z6, Z7, Z7
	VMULPS Z3, Z7, Z7
	VMULPS Z0, Z7, Z7
	VADDPS Z3, Z7, Z7
	VMULPS (DX), Z7, Z7
	VMOVUPS Z7, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	DECQ CX
	JNZ gelub512_loop
gelub512_done:
	VZEROUPPER
	RET

// func ExpSumAVX512(dst, src *float32, n int, sub float32) float32
// Sixteen exps a step (EXP512), added to the eight-lane sum as ExpSumAVX2 adds them: the
// low eight, then the high eight; a last eight by EXP. The same bits.
TEXT ·ExpSumAVX512(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS sub+24(FP), Z11
	VBROADCASTSS explo<>(SB), Z15
	VBROADCASTSS exphi<>(SB), Z14
	VBROADCASTSS log2e<>(SB), Z13
	VBROADCASTSS magic<>(SB), Z12
	VXORPS Y10, Y10, Y10
	MOVQ CX, BX
	SHRQ $4, BX
	JZ expsum512_tail
expsum512_loop:
	VMOVUPS (SI), Z0
	VSUBPS Z11, Z0, Z0
	EXP512
	VMOVUPS Z0, (DI)
	VADDPS Y0, Y10, Y10
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y10, Y10
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ BX
	JNZ expsum512_loop
expsum512_tail:
	TESTQ $8, CX
	JZ expsum512_done
	VMOVUPS (SI), Y0
	VSUBPS Y11, Y0, Y0
	EXP
	VMOVUPS Y0, (DI)
	VADDPS Y0, Y10, Y10
expsum512_done:
	VEXTRACTF128 $1, Y10, X1
	VADDPS X1, X10, X10
	VHADDPS X10, X10, X10
	VHADDPS X10, X10, X10
	VZEROUPPER
	MOVSS X10, ret+32(FP)
	RET
