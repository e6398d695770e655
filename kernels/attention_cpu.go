// Multi-head self-attention on the CPU device, forward and backward, flash-style: the
// (T,T) probability matrix is never kept between the passes; the forward caches only the
// log-sum-exp of every score row and the backward recomputes the probabilities from it.
//
// Work is split over (batch, head) pairs, in the forward also over blocks of queries, and
// in the backward over ranges of query blocks when there are fewer heads than threads.
// Queries are processed attnQueryBlock at a time, so scratch memory is linear in T. Each
// goroutine gathers a head's Q, K, V rows out of the packed qkv into contiguous scratch and
// multiplies them itself (attnProduct: sgemmSerial, or the BF16 kernel in BF16 mode). Keys
// masked with -Inf are dropped while gathering, so padded text tokens cost nothing.
//
// In BF16 mode (SetGemmBF16) every product rounds its inputs to BF16 and sums in FP32, as
// the linear layers' do: Q, K and V; the exponentials exp(s - m) before P V; dO, and dS
// before dS K and dS^T Q. The softmax, its statistics and the scaling stay FP32. Measured
// against FP32 attention products on this project's 2-core machine (three alternations):
// the default image model's BF16 training step 186 -> 195 samples/s, its sampling 12.4 ->
// 12.7 images/s, the default video model's 3.14 -> 3.27 videos/s (diffusion's benchmarks).
//
// Test: go test ./kernels -run Attention
// Bench: go test ./kernels -run '^$' -bench Attention
package kernels

import (
	"math"
	"sync"
)

// attnQueryBlock is the largest number of query rows whose scores are held at once
// (scratch is attnQueryBlock x T floats per goroutine). Blocks are multiples of
// attnRowAlign rows, the register tile height of the GEMM micro-kernels (6 or 12 rows),
// so the products of full blocks have no partial tiles.
const (
	attnQueryBlock = 60
	attnRowAlign   = 12
)

// attnMaskedLSE is the lse written for a query whose keys are all masked. It is finite so
// the cached tensor stays free of Inf and NaN; the backward recognises such rows from
// keyBias (no key kept), never from this value, and gives them zero gradients.
const attnMaskedLSE = 0

// AttentionForward computes, for every batch b, head h and query i,
//
//	s_ij   = q_i·k_j / sqrt(HS) + keyBias[b,j]
//	lse_i  = log sum_j exp(s_ij)
//	out_i  = sum_j exp(s_ij - lse_i) v_j
//
// with q, k, v read from qkv (B,T,3,NH,HS); out is (B,T,NH,HS) and lse (B,NH,T). keyBias
// (B,T) may be nil; keys whose bias is -Inf are skipped. A query with no key left gets
// out_i = 0 and lse_i = attnMaskedLSE (0).
func (d *CPU) AttentionForward(out, lse, qkv, keyBias *Tensor, B, T, NH, HS int) {
	C := NH * HS
	mustLen("AttentionForward out", out, B*T*C)
	mustLen("AttentionForward lse", lse, B*NH*T)
	mustLen("AttentionForward qkv", qkv, B*T*3*C)
	if keyBias != nil {
		mustLen("AttentionForward keyBias", keyBias, B*T)
	}
	o, l, x, kb := Host(out), Host(lse), Host(qkv), host(keyBias)
	scale := float32(1 / math.Sqrt(float64(HS)))
	nqb, bq := attnBlocks(T)

	// Item w is query block w%nqb of head pair w/nqb; neighbouring items share a head,
	// so a goroutine gathers K and V again only when its head changes.
	d.parallel(B*NH*nqb, 1, func(lo, hi int) {
		sc := attnGetScratch(T, HS, bq)
		sc.product = d.attnProduct()
		defer attnScratchPool.Put(sc)
		cur := -1
		for w := lo; w < hi; w++ {
			bh := w / nqb
			b, h := bh/NH, bh%NH
			if bh != cur {
				sc.gatherKeys(x, kb, b, h, T, NH, HS)
				cur = bh
			}
			q0 := (w % nqb) * bq
			q1 := min(q0+bq, T)
			sc.forwardBlock(o, l, x, b, h, q0, q1, T, NH, HS, scale)
		}
	})
}

// forwardBlock computes out and lse for queries [q0,q1) of head (b,h); the head's kept
// keys and values must already be gathered.
func (sc *attnScratch) forwardBlock(o, l, x []float32, b, h, q0, q1, T, NH, HS int, scale float32) {
	C := NH * HS
	nq, nk := q1-q0, len(sc.kidx)
	lrow := l[(b*NH+h)*T:]
	if nk == 0 {
		for i := q0; i < q1; i++ {
			clear(o[(b*T+i)*C+h*HS:][:HS])
			lrow[i] = attnMaskedLSE
		}
		return
	}
	q, s := sc.q[:nq*HS], sc.s[:nq*nk]
	copyInto(q, HS, x[((b*T+q0)*3)*C+h*HS:], 3*C, nq, HS) // the block's queries, 3C apart in qkv
	sc.product(false, true, nq, nk, HS, scale, q, HS, sc.k, HS, 0, s, nk)
	for i := range nq {
		row := s[i*nk : (i+1)*nk]
		if sc.biased {
			for j, bj := range sc.kb {
				row[j] += bj
			}
		}
		m := rowMax(row)
		sum := attnExpRow(row, m)
		sc.dd[i] = 1 / sum
		lrow[q0+i] = m + float32(math.Log(float64(sum)))
	}
	// out = (exp(S - m) V) / sum, normalised after the product (HS values a row, not nk).
	// out rows of this head are C apart in (B,T,NH,HS): write them in place.
	sc.product(false, false, nq, HS, nk, 1, s, nk, sc.v, HS, 0, o[(b*T+q0)*C+h*HS:], C)
	for i := range nq {
		scaleInto(o[(b*T+q0+i)*C+h*HS:][:HS], sc.dd[i])
	}
}

// AttentionBackward writes dqkv (B,T,3,NH,HS) from dout (B,T,NH,HS), recomputing the
// probabilities from the forward's lse:
//
//	P_ij  = exp(s_ij - lse_i)        D_i = sum_c dout_ic out_ic
//	dV    = P^T dO                   dP  = dO V^T
//	dS    = P ⊙ (dP - D)
//	dQ    = dS K / sqrt(HS)          dK  = dS^T Q / sqrt(HS)
//
// Masked keys get dK = dV = 0; a query with no key left gets dQ = 0.
func (d *CPU) AttentionBackward(dqkv, dout, out, lse, qkv, keyBias *Tensor, B, T, NH, HS int) {
	C := NH * HS
	mustLen("AttentionBackward dqkv", dqkv, B*T*3*C)
	mustLen("AttentionBackward dout", dout, B*T*C)
	mustLen("AttentionBackward out", out, B*T*C)
	mustLen("AttentionBackward lse", lse, B*NH*T)
	mustLen("AttentionBackward qkv", qkv, B*T*3*C)
	if keyBias != nil {
		mustLen("AttentionBackward keyBias", keyBias, B*T)
	}
	dx, dO, o, l, x, kb := Host(dqkv), Host(dout), Host(out), Host(lse), Host(qkv), host(keyBias)
	scale := float32(1 / math.Sqrt(float64(HS)))
	nqb, bq := attnBlocks(T)

	// dK and dV of a head sum over all its query blocks, each block's share added to the
	// sum of those before it (backwardBlock). With at least as many heads as threads, one
	// item is one head. Otherwise each head's blocks are split into nsplit ranges that
	// write every block's share apart, and a second pass adds them in block order: the
	// same additions in the same order, so the bits do not depend on the thread count.
	BNH, nsplit := B*NH, 1
	if BNH < d.threads && nqb > 1 {
		nsplit = min((d.threads+BNH-1)/BNH, nqb)
	}
	var part []float32 // (BNH, nqb, 2, T, HS) when nsplit > 1: each block's dK, dV
	if nsplit > 1 {
		part = make([]float32, BNH*nqb*2*T*HS)
	}
	d.parallel(BNH*nsplit, 1, func(lo, hi int) {
		sc := attnGetScratch(T, HS, bq)
		sc.product = d.attnProduct()
		defer attnScratchPool.Put(sc)
		cur := -1
		for w := lo; w < hi; w++ {
			bh, sp := w/nsplit, w%nsplit
			b, h := bh/NH, bh%NH
			if bh != cur {
				sc.gatherKeys(x, kb, b, h, T, NH, HS)
				cur = bh
			}
			for qb := sp * nqb / nsplit; qb < (sp+1)*nqb/nsplit; qb++ {
				q0 := qb * bq
				q1 := min(q0+bq, T)
				if nsplit > 1 {
					p := part[(bh*nqb+qb)*2*T*HS:]
					sc.backwardBlock(dx, p[:T*HS], p[T*HS:2*T*HS], dO, o, l, x, b, h, q0, q1, T, NH, HS, scale, true)
				} else {
					sc.backwardBlock(dx, sc.dk, sc.dv, dO, o, l, x, b, h, q0, q1, T, NH, HS, scale, qb == 0)
				}
			}
			if nsplit == 1 {
				sc.scatterKeyGrads(dx, b, h, T, NH, HS, sc.dk, sc.dv)
			}
		}
	})
	if nsplit == 1 {
		return
	}
	d.parallel(BNH, 1, func(lo, hi int) {
		sc := attnGetScratch(T, HS, bq)
		defer attnScratchPool.Put(sc)
		for bh := lo; bh < hi; bh++ {
			b, h := bh/NH, bh%NH
			sc.gatherKeys(x, kb, b, h, T, NH, HS)
			n := len(sc.kidx) * HS
			dk, dv := sc.dk[:n], sc.dv[:n]
			for qb := range nqb {
				p := part[(bh*nqb+qb)*2*T*HS:]
				if qb == 0 {
					copy(dk, p[:n])
					copy(dv, p[T*HS:T*HS+n])
				} else {
					addInto(dk, dk, p[:n])
					addInto(dv, dv, p[T*HS:T*HS+n])
				}
			}
			sc.scatterKeyGrads(dx, b, h, T, NH, HS, dk, dv)
		}
	})
}

// backwardBlock handles queries [q0,q1) of head (b,h): it writes their dQ into dx and
// their share of dK, dV (kept keys, compacted, (nk,HS)) into dk, dv when first, else into
// scratch that it then adds to dk, dv (addInto: the same addition as the thread split's).
func (sc *attnScratch) backwardBlock(dx, dk, dv, dO, o, l, x []float32, b, h, q0, q1, T, NH, HS int,
	scale float32, first bool) {
	C := NH * HS
	nq, nk := q1-q0, len(sc.kidx)
	if nk == 0 {
		for i := q0; i < q1; i++ {
			clear(dx[((b*T+i)*3)*C+h*HS:][:HS])
		}
		return
	}
	q, do, s, dp, dd := sc.q[:nq*HS], sc.do[:nq*HS], sc.s[:nq*nk], sc.dp[:nq*nk], sc.dd[:nq]
	lrow := l[(b*NH+h)*T+q0:]
	copyInto(q, HS, x[((b*T+q0)*3)*C+h*HS:], 3*C, nq, HS)
	copyInto(do, HS, dO[(b*T+q0)*C+h*HS:], C, nq, HS)
	for i := range nq {
		orow := o[(b*T+q0+i)*C+h*HS:][:HS]
		dorow := dO[(b*T+q0+i)*C+h*HS:][:HS]
		var dot float32
		for c, g := range dorow {
			dot += g * orow[c]
		}
		dd[i] = dot
	}
	// dK, dV: this block's shares, added to dk, dv at the end unless first.
	sk, sv := dk, dv
	if !first {
		sk, sv = sc.tk[:nk*HS], sc.tv[:nk*HS]
	}
	// P = exp(scale*Q K^T + bias - lse).
	sc.product(false, true, nq, nk, HS, scale, q, HS, sc.k, HS, 0, s, nk)
	for i := range nq {
		row := s[i*nk : (i+1)*nk]
		li := lrow[i]
		if sc.biased {
			for j, bj := range sc.kb {
				row[j] += bj
			}
		}
		attnExpRow(row, li)
	}
	sc.product(true, false, nk, HS, nq, 1, s, nk, do, HS, 0, sv, HS)    // P^T dO
	sc.product(false, true, nq, nk, HS, 1, do, HS, sc.v, HS, 0, dp, nk) // dP = dO V^T
	for i := range nq {
		prow, dprow, di := s[i*nk:(i+1)*nk], dp[i*nk:(i+1)*nk], dd[i]
		for j, p := range prow {
			dprow[j] = p * (dprow[j] - di) // dS
		}
	}
	// dQ rows are 3C apart in dqkv: write them in place.
	sc.product(false, false, nq, HS, nk, scale, dp, nk, sc.k, HS, 0, dx[((b*T+q0)*3)*C+h*HS:], 3*C)
	sc.product(true, false, nk, HS, nq, scale, dp, nk, q, HS, 0, sk, HS) // dS^T Q/sqrt(HS)
	if !first {
		addInto(dk[:nk*HS], dk, sk)
		addInto(dv[:nk*HS], dv, sv)
	}
}

// ---- scratch ----

// attnScratch is one goroutine's working memory; k, v, kb, kidx describe the kept keys of
// the head last gathered.
type attnScratch struct {
	product attnProduct // the device's product: FP32, or BF16 in BF16 mode
	kidx    []int       // (nk) positions of the kept keys
	kb      []float32   // (nk) their bias
	biased  bool        // some kept key has a non-zero bias
	k, v    []float32   // (nk,HS) gathered keys and values
	q       []float32   // (bq,HS) queries of the current block
	s       []float32   // (bq,nk) scores, then (unnormalised) probabilities
	do      []float32   // (bq,HS) backward: dout of the current block
	dp      []float32   // (bq,nk) backward: dP, then dS
	dd      []float32   // (bq) forward: 1/sum_j exp(s_ij - m_i); backward: D_i
	dk, dv  []float32   // (T,HS) backward: dK, dV of the kept keys
	tk, tv  []float32   // (T,HS) backward: a query block's shares of them
}

var attnScratchPool = sync.Pool{New: func() any { return new(attnScratch) }}

// attnProduct is attention's product, sgemmSerial's arguments (one goroutine, no OpenBLAS).
type attnProduct func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int)

// attnProductBF16 is attention's product in BF16 mode: the BF16 kernel on one goroutine. A
// variable, so that a test can run attention with the reference product in its place.
var attnProductBF16 attnProduct = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmGoKernel(bf16GemmKernel, 1, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// attnProduct is the product attention runs on this device.
func (d *CPU) attnProduct() attnProduct {
	if d.bf16 {
		return attnProductBF16
	}
	return sgemmSerial
}

// attnGetScratch returns a scratch with room for T keys of size HS and bq queries.
func attnGetScratch(T, HS, bq int) *attnScratch {
	sc := attnScratchPool.Get().(*attnScratch)
	grow := func(s []float32, n int) []float32 {
		if cap(s) < n {
			return make([]float32, n)
		}
		return s[:n]
	}
	sc.kb = grow(sc.kb, T)
	sc.k, sc.v = grow(sc.k, T*HS), grow(sc.v, T*HS)
	sc.q, sc.do = grow(sc.q, bq*HS), grow(sc.do, bq*HS)
	sc.s, sc.dp = grow(sc.s, bq*T), grow(sc.dp, bq*T)
	sc.dd = grow(sc.dd, bq)
	sc.dk, sc.dv = grow(sc.dk, T*HS), grow(sc.dv, T*HS)
	sc.tk, sc.tv = grow(sc.tk, T*HS), grow(sc.tv, T*HS)
	if cap(sc.kidx) < T {
		sc.kidx = make([]int, 0, T)
	}
	return sc
}

// gatherKeys copies the keys and values of head (b,h) whose bias is not -Inf into sc.k,
// sc.v (contiguous rows of HS) and records their positions and bias.
func (sc *attnScratch) gatherKeys(x, keyBias []float32, b, h, T, NH, HS int) {
	C := NH * HS
	sc.kidx, sc.biased = sc.kidx[:0], false
	sc.kb, sc.k, sc.v = sc.kb[:T], sc.k[:T*HS], sc.v[:T*HS]
	n := 0
	// copyRun copies the keys and values of the kept tokens [t0, t1) (3C apart in qkv) after
	// the n already gathered.
	copyRun := func(t0, t1 int) {
		if t1 == t0 {
			return
		}
		base := ((b*T+t0)*3)*C + h*HS
		copyInto(sc.k[n*HS:], HS, x[base+C:], 3*C, t1-t0, HS)
		copyInto(sc.v[n*HS:], HS, x[base+2*C:], 3*C, t1-t0, HS)
		n += t1 - t0
	}
	run := 0 // the first kept token not copied yet
	for t := range T {
		var bias float32
		if keyBias != nil {
			bias = keyBias[b*T+t]
			if math.IsInf(float64(bias), -1) {
				copyRun(run, t)
				run = t + 1
				continue
			}
		}
		sc.kb[len(sc.kidx)] = bias
		sc.biased = sc.biased || bias != 0
		sc.kidx = append(sc.kidx, t)
	}
	copyRun(run, T)
	sc.kb = sc.kb[:n]
	sc.k, sc.v = sc.k[:n*HS], sc.v[:n*HS]
}

// scatterKeyGrads writes the dK, dV parts of dqkv for head (b,h): rows of dk, dv (compacted
// over the kept keys) go to their positions, masked keys get zeros.
func (sc *attnScratch) scatterKeyGrads(dx []float32, b, h, T, NH, HS int, dk, dv []float32) {
	C := NH * HS
	n := 0
	for t := range T {
		base := ((b*T+t)*3)*C + h*HS
		gk, gv := dx[base+C:][:HS], dx[base+2*C:][:HS]
		if n < len(sc.kidx) && sc.kidx[n] == t {
			copy(gk, dk[n*HS:])
			copy(gv, dv[n*HS:])
			n++
			continue
		}
		clear(gk)
		clear(gv)
	}
}

// attnBlocks splits T queries into nqb blocks of bq rows (the last may be shorter), with
// bq <= attnQueryBlock a multiple of attnRowAlign, the blocks as even as that allows.
func attnBlocks(T int) (nqb, bq int) {
	if T == 0 {
		return 0, attnRowAlign
	}
	nqb = (T + attnQueryBlock - 1) / attnQueryBlock
	bq = (T + nqb - 1) / nqb
	bq = (bq + attnRowAlign - 1) / attnRowAlign * attnRowAlign
	return (T + bq - 1) / bq, bq
}

// attnExpRow sets row[j] = exp(row[j] - sub) in float32 and returns the sum of the
// results: the vector loop of internal/gemmasm (ExpSumAVX2) over the first multiple of 8
// elements when the CPU has one, exp32 for the rest. exp32 computes exp(x) = 2^(n/64) * e^r
// with n = round(64 x / ln 2) and |r| <= ln2/128: 2^((n mod 64)/64) comes from
// attnExp2Table, 2^floor(n/64) goes into the exponent bits, and e^r ~ 1 + r + r^2/2 + r^3/6
// (truncation error < 4e-11); relative error about 2e-7. Adding 1.5*2^23 rounds 64x/ln2 to
// the integer n and leaves n in the low mantissa bits. Arguments above 88 saturate near
// MaxFloat32; below -87 the result is 0 (never a denormal, which would slow the products
// that follow); NaN stays NaN.
func attnExpRow(row []float32, sub float32) float32 {
	var sum float32
	if n8 := len(row) &^ 7; expSumAsm != nil && n8 > 0 {
		sum = expSumAsm(&row[0], &row[0], n8, sub)
		row = row[n8:]
	}
	for j, v := range row {
		e := exp32(min(v-sub, 88)) // min keeps NaN
		row[j] = e
		sum += e
	}
	return sum
}

// attnExp2Table holds the float32 bits of 2^(i/64), i = 0..63.
var attnExp2Table = func() (t [64]uint32) {
	for i := range t {
		t[i] = math.Float32bits(float32(math.Exp2(float64(i) / 64)))
	}
	return t
}()
