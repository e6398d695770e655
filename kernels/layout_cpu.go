// Layout operations of the CPU device: Patchify / Unpatchify (image patches and video
// tubelets), Permute (up to 6 dimensions) and Concat / Split along the last axis. They move
// data without arithmetic, so results are exact; threads split the output rows.
//
// Test: go test ./kernels -run 'Patchify|Permute|Concat'
package kernels

import "fmt"

// patchGeometry checks a Patchify/Unpatchify call and returns the number of tokens per
// sample and the features per token.
func patchGeometry(op string, img, tok *Tensor, B, T, C, H, W, pt, p int) (ntok, F int) {
	if B <= 0 || T <= 0 || C <= 0 || H <= 0 || W <= 0 || pt <= 0 || p <= 0 ||
		T%pt != 0 || H%p != 0 || W%p != 0 {
		panic(fmt.Sprintf("kernels: %s: B=%d T=%d C=%d H=%d W=%d must be positive and T, H, W divisible by pt=%d, p=%d",
			op, B, T, C, H, W, pt, p))
	}
	ntok, F = (T/pt)*(H/p)*(W/p), C*pt*p*p
	mustLen(op+" image", img, B*T*C*H*W)
	mustLen(op+" tokens", tok, B*ntok*F)
	return ntok, F
}

// patchCopy moves data between images (B,T,C,H,W) and tokens (B,ntok,F) for the tokens
// [lo,hi) of the flattened (b, token) range; toTokens selects the direction.
//
//	tokens[b, (ti*(H/p)+hi)*(W/p)+wi, ((c*pt+dt)*p+dy)*p+dx] = img[b, ti*pt+dt, c, hi*p+dy, wi*p+dx]
func patchCopy(img, tok []float32, lo, hi, T, C, H, W, pt, p int, toTokens bool) {
	Tp, Hp, Wp := T/pt, H/p, W/p
	ntok, F := Tp*Hp*Wp, C*pt*p*p
	for r := lo; r < hi; r++ {
		b, k := r/ntok, r%ntok
		ti, hi2, wi := k/(Hp*Wp), (k/Wp)%Hp, k%Wp
		tr := tok[r*F : (r+1)*F]
		f := 0
		for c := 0; c < C; c++ {
			for dt := 0; dt < pt; dt++ {
				frame := ((b*T+ti*pt+dt)*C + c) * H * W
				for dy := 0; dy < p; dy++ {
					src := frame + (hi2*p+dy)*W + wi*p
					if toTokens {
						copy(tr[f:f+p], img[src:src+p])
					} else {
						copy(img[src:src+p], tr[f:f+p])
					}
					f += p
				}
			}
		}
	}
}

// Patchify cuts inp (B,T,C,H,W) into tubelets of pt frames and p x p pixels:
// out (B, (T/pt)*(H/p)*(W/p), C*pt*p*p), tokens ordered (t,h,w), features (c,dt,dy,dx).
// Images are T = pt = 1.
func (d *CPU) Patchify(out, inp *Tensor, B, T, C, H, W, pt, p int) {
	ntok, F := patchGeometry("Patchify", inp, out, B, T, C, H, W, pt, p)
	img, tok := Host(inp), Host(out)
	d.parallel(B*ntok, rowGrain(F), func(lo, hi int) {
		patchCopy(img, tok, lo, hi, T, C, H, W, pt, p, true)
	})
}

// Unpatchify is the inverse of Patchify (and therefore its backward): inp holds the tokens
// (B, (T/pt)*(H/p)*(W/p), C*pt*p*p) and out the images or videos (B,T,C,H,W).
func (d *CPU) Unpatchify(out, inp *Tensor, B, T, C, H, W, pt, p int) {
	ntok, F := patchGeometry("Unpatchify", out, inp, B, T, C, H, W, pt, p)
	img, tok := Host(out), Host(inp)
	d.parallel(B*ntok, rowGrain(F), func(lo, hi int) {
		patchCopy(img, tok, lo, hi, T, C, H, W, pt, p, false)
	})
}

// maxPermuteDims is the largest rank Permute accepts.
// MaxPermuteDims is the largest rank Permute takes.
const MaxPermuteDims = 6

// PermuteDims checks a Permute of inp, an array of shape `shape` (1 to MaxPermuteDims dims), by
// perm into out, and returns the copy's loop over the output, shared by the devices: the
// output's dims in order, each with its stride in the input, size-1 dims dropped and a dim
// merged into the one before it where the two are also neighbours in the input (so the inner
// loop is as long as possible; at least one dim), and the element count n.
func PermuteDims(out, inp *Tensor, shape, perm []int) (dims, strides []int, n int) {
	k := len(shape)
	if k == 0 || k > MaxPermuteDims || len(perm) != k {
		panic(fmt.Sprintf("kernels: Permute: shape %v and perm %v must have the same rank, 1 to %d", shape, perm, MaxPermuteDims))
	}
	var seen [MaxPermuteDims]bool
	for _, p := range perm {
		if p < 0 || p >= k || seen[p] {
			panic(fmt.Sprintf("kernels: Permute: %v is not a permutation of %d dims", perm, k))
		}
		seen[p] = true
	}
	n = numel(shape)
	mustLen("Permute inp", inp, n)
	mustLen("Permute out", out, n)
	var inStride [MaxPermuteDims]int
	s := 1
	for i := k - 1; i >= 0; i-- {
		inStride[i] = s
		s *= shape[i]
	}
	for _, p := range perm {
		if shape[p] == 1 {
			continue
		}
		if r := len(dims); r > 0 && strides[r-1] == inStride[p]*shape[p] {
			dims[r-1] *= shape[p]
			strides[r-1] = inStride[p]
			continue
		}
		dims, strides = append(dims, shape[p]), append(strides, inStride[p])
	}
	if len(dims) == 0 {
		return []int{1}, []int{1}, n
	}
	return dims, strides, n
}

// Permute writes out = inp transposed: inp has shape `shape` (1 to 6 dims), out has shape
// shape[perm[0]], ..., shape[perm[k]] and out[i_perm[0], ..., i_perm[k]] = inp[i_0, ..., i_k]
// (numpy's transpose(perm)). out must not alias inp.
func (d *CPU) Permute(out, inp *Tensor, shape, perm []int) {
	dims, strides, n := PermuteDims(out, inp, shape, perm)
	if n == 0 {
		return
	}
	r := len(dims)
	L, ls := dims[r-1], strides[r-1]
	rows := n / L
	o, x := Host(out), Host(inp)
	d.parallel(rows, rowGrain(L), func(lo, hi int) {
		// Odometer over the outer output dims, started at row lo.
		var idx [MaxPermuteDims]int
		base, rem := 0, lo
		for j := r - 2; j >= 0; j-- {
			idx[j] = rem % dims[j]
			rem /= dims[j]
			base += idx[j] * strides[j]
		}
		for row := lo; row < hi; row++ {
			dst := o[row*L : (row+1)*L]
			if ls == 1 {
				copy(dst, x[base:base+L])
			} else {
				for j, q := 0, base; j < L; j, q = j+1, q+ls {
					dst[j] = x[q]
				}
			}
			for j := r - 2; j >= 0; j-- {
				idx[j]++
				base += strides[j]
				if idx[j] < dims[j] {
					break
				}
				base -= idx[j] * strides[j]
				idx[j] = 0
			}
		}
	})
}

// Concat joins rows: out (outer, na+nb) = [a (outer,na) | b (outer,nb)].
func (d *CPU) Concat(out, a, b *Tensor, outer, na, nb int) {
	mustLen("Concat out", out, outer*(na+nb))
	mustLen("Concat a", a, outer*na)
	mustLen("Concat b", b, outer*nb)
	o, x, y := Host(out), Host(a), Host(b)
	w := na + nb
	d.parallel(outer, rowGrain(w), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(o[r*w:r*w+na], x[r*na:(r+1)*na])
			copy(o[r*w+na:(r+1)*w], y[r*nb:(r+1)*nb])
		}
	})
}

// Split is the inverse of Concat: a (outer,na) and b (outer,nb) from inp (outer, na+nb).
func (d *CPU) Split(a, b, inp *Tensor, outer, na, nb int) {
	mustLen("Split inp", inp, outer*(na+nb))
	mustLen("Split a", a, outer*na)
	mustLen("Split b", b, outer*nb)
	x, ya, yb := Host(inp), Host(a), Host(b)
	w := na + nb
	d.parallel(outer, rowGrain(w), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(ya[r*na:(r+1)*na], x[r*w:r*w+na])
			copy(yb[r*nb:(r+1)*nb], x[r*w+na:(r+1)*w])
		}
	})
}
