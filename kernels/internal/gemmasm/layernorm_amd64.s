// Layer normalisation loops (AVX2), see layernorm_amd64.go.
// Test: go test -run 'LayerNorm' ./kernels

//go:build amd64 && gc && !purego

#include "textflag.h"

// TRANSPOSE4 turns X0..X3, four columns of rows a..d each, into X4..X7, the four rows of
// one column each (X4 = a0 b0 c0 d0: lane k = row k): X12 = a0 b0 a1 b1, X13 = a2 b2 a3 b3,
// X14 = c0 d0 c1 d1, X15 = c2 d2 c3 d3, then their low and high halves paired.
#define TRANSPOSE4 \
	VUNPCKLPS X1, X0, X12 \
	VUNPCKHPS X1, X0, X13 \
	VUNPCKLPS X3, X2, X14 \
	VUNPCKHPS X3, X2, X15 \
	VUNPCKLPD X14, X12, X4 \
	VUNPCKHPD X14, X12, X5 \
	VUNPCKLPD X15, X13, X6 \
	VUNPCKHPD X15, X13, X7

// LOAD4 loads four columns from each of the rows at SI, SI+R8, SI+2*R8, SI+R9 (R9 = 3*R8).
#define LOAD4 \
	VMOVUPS (SI), X0 \
	VMOVUPS (SI)(R8*1), X1 \
	VMOVUPS (SI)(R8*2), X2 \
	VMOVUPS (SI)(R9*1), X3

// SUM4(acc) adds the four columns X4..X7 to acc's lanes in column order.
#define SUM4(acc) \
	VCVTPS2PD X4, Y4 \
	VADDPD    Y4, acc, acc \
	VCVTPS2PD X5, Y5 \
	VADDPD    Y5, acc, acc \
	VCVTPS2PD X6, Y6 \
	VADDPD    Y6, acc, acc \
	VCVTPS2PD X7, Y7 \
	VADDPD    Y7, acc, acc

// SQDEV(col, m, acc): acc += (float64(col) - m)^2, the square rounded before the add.
#define SQDEV(col, wide, m, acc) \
	VCVTPS2PD col, wide \
	VSUBPD    m, wide, wide \
	VMULPD    wide, wide, wide \
	VADDPD    wide, acc, acc

#define SQDEV4(m, acc) \
	SQDEV(X4, Y4, m, acc) \
	SQDEV(X5, Y5, m, acc) \
	SQDEV(X6, Y6, m, acc) \
	SQDEV(X7, Y7, m, acc)

// func RowMeanVar8AVX2(x *float32, C int, mv *[16]float64)
//
// Rows 0-3 go through lanes of Y8 and Y10, rows 4-7 through Y9 and Y11: two chains of
// dependent adds in flight, so that each add's latency is hidden behind the other chain's.
TEXT ·RowMeanVar8AVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ C+8(FP), DX
	MOVQ mv+16(FP), BX
	MOVQ DX, R8
	SHLQ $2, R8          // row stride in bytes
	LEAQ (R8)(R8*2), R9  // three rows
	LEAQ (DI)(R8*4), R10 // row 4
	SHRQ $2, DX          // column groups of 4

	// The sums: lane k += float64(row k, column c), c = 0, 1, 2, ...
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	MOVQ   DI, SI
	MOVQ   R10, R11
	MOVQ   DX, CX

sum_loop:
	LOAD4
	TRANSPOSE4
	SUM4(Y8)
	XCHGQ SI, R11
	LOAD4
	TRANSPOSE4
	SUM4(Y9)
	XCHGQ SI, R11
	ADDQ  $16, SI
	ADDQ  $16, R11
	DECQ  CX
	JNZ   sum_loop

	// m = sum / float64(C)
	MOVQ         C+8(FP), AX
	VCVTSI2SDQ   AX, X12, X12
	VBROADCASTSD X12, Y12
	VDIVPD       Y12, Y8, Y10
	VDIVPD       Y12, Y9, Y11
	VMOVUPD      Y10, (BX)
	VMOVUPD      Y11, 32(BX)

	// The squared deviations.
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	MOVQ   DI, SI
	MOVQ   R10, R11
	MOVQ   DX, CX

var_loop:
	LOAD4
	TRANSPOSE4
	SQDEV4(Y10, Y8)
	XCHGQ SI, R11
	LOAD4
	TRANSPOSE4
	SQDEV4(Y11, Y9)
	XCHGQ SI, R11
	ADDQ  $16, SI
	ADDQ  $16, R11
	DECQ  CX
	JNZ   var_loop

	VMOVUPD Y8, 64(BX)
	VMOVUPD Y9, 96(BX)
	VZEROUPPER
	RET

// NORM_X sets Y0 = (float64(x[i:i+4]) - m) * r for x at SI, m in Y8, r in Y9.
#define NORM_X \
	VCVTPS2PD (SI), Y0 \
	VSUBPD    Y8, Y0, Y0 \
	VMULPD    Y9, Y0, Y0

// ROW4_NEXT moves the four pointers on by four floats and counts the step down.
#define ROW4_NEXT \
	ADDQ $16, SI \
	ADDQ $16, DX \
	ADDQ $16, R8 \
	ADDQ $16, DI \
	DECQ CX

// func NormRowAVX2(out, x *float32, n int, m, r float64)
TEXT ·NormRowAVX2(SB), NOSPLIT, $0-40
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSD m+24(FP), Y8
	VBROADCASTSD r+32(FP), Y9
	SHRQ         $2, CX
	JZ           norm_done

norm_loop:
	NORM_X
	VCVTPD2PSY Y0, X0
	VMOVUPS    X0, (DI)
	ADDQ       $16, SI
	ADDQ       $16, DI
	DECQ       CX
	JNZ        norm_loop

norm_done:
	VZEROUPPER
	RET

// func NormRowAffineAVX2(out, x, p, q *float32, n int, m, r float64): p = w, q = b.
TEXT ·NormRowAffineAVX2(SB), NOSPLIT, $0-56
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         p+16(FP), DX
	MOVQ         q+24(FP), R8
	MOVQ         n+32(FP), CX
	VBROADCASTSD m+40(FP), Y8
	VBROADCASTSD r+48(FP), Y9
	SHRQ         $2, CX
	JZ           affine_done

affine_loop:
	NORM_X
	VCVTPS2PD  (DX), Y1
	VMULPD     Y1, Y0, Y0
	VCVTPS2PD  (R8), Y2
	VADDPD     Y2, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS    X0, (DI)
	ROW4_NEXT
	JNZ        affine_loop

affine_done:
	VZEROUPPER
	RET

// func NormModulateRowAVX2(out, x, p, q *float32, n int, m, r float64): p = s, q = t.
TEXT ·NormModulateRowAVX2(SB), NOSPLIT, $0-56
	MOVQ         out+0(FP), DI
	MOVQ         x+8(FP), SI
	MOVQ         p+16(FP), DX
	MOVQ         q+24(FP), R8
	MOVQ         n+32(FP), CX
	VBROADCASTSD m+40(FP), Y8
	VBROADCASTSD r+48(FP), Y9
	SHRQ         $2, CX
	JZ           modulate_done

modulate_loop:
	NORM_X
	VCVTPD2PSY Y0, X0
	VMULPS     (DX), X0, X0
	VADDPS     (R8), X0, X0
	VMOVUPS    X0, (DI)
	ROW4_NEXT
	JNZ        modulate_loop

modulate_done:
	VZEROUPPER
	RET

// LOAD4_TO(a, b, c, d) loads four columns from each of the rows at SI, SI+R8, SI+2*R8 and
// SI+R9 into a..d.
#define LOAD4_TO(a, b, c, d) \
	VMOVUPS (SI), a \
	VMOVUPS (SI)(R8*1), b \
	VMOVUPS (SI)(R8*2), c \
	VMOVUPS (SI)(R9*1), d

// TRANSPOSE4_TO(a, b, c, d) turns a..d, four columns of four rows each, into the four rows
// of one column each, in a..d (a = a0 b0 c0 d0), through X8..X11.
#define TRANSPOSE4_TO(a, b, c, d) \
	VUNPCKLPS b, a, X8 \
	VUNPCKHPS b, a, X9 \
	VUNPCKLPS d, c, X10 \
	VUNPCKHPS d, c, X11 \
	VUNPCKLPD X10, X8, a \
	VUNPCKHPD X10, X8, b \
	VUNPCKLPD X11, X9, c \
	VUNPCKHPD X11, X9, d

// GRAD_COL(woff, gx, gy, xx, xy) adds a column of the group (g's in gx, x's in xx, its
// weight at woff(DX), broadcast in Y8) to the sums: Y12 += gv = g*w, Y13 += (gv*(x - m))*r,
// m in Y14, r in Y15.
#define GRAD_COL(woff, gx, gy, xx, xy) \
	VBROADCASTSD woff(DX), Y8 \
	VCVTPS2PD    gx, gy \
	VMULPD       Y8, gy, gy \
	VADDPD       gy, Y12, Y12 \
	VCVTPS2PD    xx, xy \
	VSUBPD       Y14, xy, xy \
	VMULPD       xy, gy, xy \
	VMULPD       Y15, xy, xy \
	VADDPD       xy, Y13, Y13

// func RowGradSums4AVX2(dout, x *float32, w *float64, C int, mr, sums *[8]float64)
TEXT ·RowGradSums4AVX2(SB), NOSPLIT, $0-48
	MOVQ    dout+0(FP), AX
	MOVQ    x+8(FP), BX
	MOVQ    w+16(FP), DX
	MOVQ    C+24(FP), CX
	MOVQ    mr+32(FP), DI
	VMOVUPD (DI), Y14   // m of the four rows
	VMOVUPD 32(DI), Y15 // r
	MOVQ    CX, R8
	SHLQ    $2, R8          // row stride in bytes
	LEAQ    (R8)(R8*2), R9  // three rows
	SHRQ    $2, CX          // column groups of 4
	VXORPD  Y12, Y12, Y12
	VXORPD  Y13, Y13, Y13

gradsums_loop:
	MOVQ AX, SI
	LOAD4_TO(X4, X5, X6, X7)
	TRANSPOSE4_TO(X4, X5, X6, X7)
	MOVQ BX, SI
	LOAD4_TO(X0, X1, X2, X3)
	TRANSPOSE4_TO(X0, X1, X2, X3)
	GRAD_COL(0, X4, Y4, X0, Y0)
	GRAD_COL(8, X5, Y5, X1, Y1)
	GRAD_COL(16, X6, Y6, X2, Y2)
	GRAD_COL(24, X7, Y7, X3, Y3)
	ADDQ $16, AX
	ADDQ $16, BX
	ADDQ $32, DX
	DECQ CX
	JNZ  gradsums_loop

	MOVQ    sums+40(FP), DI
	VMOVUPD Y12, (DI)
	VMOVUPD Y13, 32(DI)
	VZEROUPPER
	RET

// func GradRowAVX2(dx, dout, x *float32, w *float64, n int, m, r, meanG, meanGN float64)
TEXT ·GradRowAVX2(SB), NOSPLIT, $0-72
	MOVQ         dx+0(FP), DI
	MOVQ         dout+8(FP), SI
	MOVQ         x+16(FP), BX
	MOVQ         w+24(FP), DX
	MOVQ         n+32(FP), CX
	VBROADCASTSD m+40(FP), Y8
	VBROADCASTSD r+48(FP), Y9
	VBROADCASTSD meanG+56(FP), Y10
	VBROADCASTSD meanGN+64(FP), Y11
	SHRQ         $2, CX
	JZ           gradrow_done

gradrow_loop:
	VCVTPS2PD  (SI), Y0
	VMULPD     (DX), Y0, Y0 // gv = g*w
	VCVTPS2PD  (BX), Y1
	VSUBPD     Y8, Y1, Y1
	VMULPD     Y9, Y1, Y1   // norm = (x-m)*r
	VMULPD     Y11, Y1, Y1  // norm*meanGN
	VSUBPD     Y10, Y0, Y0  // gv - meanG
	VSUBPD     Y1, Y0, Y0
	VMULPD     Y9, Y0, Y0
	VCVTPD2PSY Y0, X0
	VMOVUPS    X0, (DI)
	ADDQ       $16, SI
	ADDQ       $16, BX
	ADDQ       $32, DX
	ADDQ       $16, DI
	DECQ       CX
	JNZ        gradrow_loop

gradrow_done:
	VZEROUPPER
	RET
