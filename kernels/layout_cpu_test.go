// Tests of the CPU layout operations: Patchify against an index-formula reference (images,
// non-square images, video tubelets), Unpatchify(Patchify(x)) == x exactly, the adjoint
// identity <Patchify x, y> = <x, Unpatchify y>; Permute against a reference index map for
// every permutation of ranks 1-4 and sampled ones of ranks 5-6 (size-1 dims included);
// Concat/Split exactly and round trip. All on guarded views, across thread counts.
//
// Test: go test ./kernels -run 'Patchify|Permute|Concat'
package kernels

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func refPatchify(x []float32, B, T, C, H, W, pt, p int) []float32 {
	Tp, Hp, Wp := T/pt, H/p, W/p
	F := C * pt * p * p
	out := make([]float32, len(x))
	for b := 0; b < B; b++ {
		for t := 0; t < T; t++ {
			for c := 0; c < C; c++ {
				for y := 0; y < H; y++ {
					for xx := 0; xx < W; xx++ {
						tok := ((t/pt)*Hp+y/p)*Wp + xx/p
						f := ((c*pt+t%pt)*p+y%p)*p + xx%p
						out[(b*Tp*Hp*Wp+tok)*F+f] = x[(((b*T+t)*C+c)*H+y)*W+xx]
					}
				}
			}
		}
	}
	return out
}

func TestPatchifyUnpatchify(t *testing.T) {
	cases := []struct{ B, T, C, H, W, pt, p int }{
		{3, 1, 3, 12, 12, 1, 2}, // images
		{2, 1, 4, 6, 10, 1, 2},  // non-square
		{2, 4, 3, 12, 12, 2, 2}, // video tubelets
		{2, 4, 3, 12, 12, 1, 3}, // video, one frame per tubelet
		{2, 6, 4, 32, 32, 3, 4}, // larger: splits over threads
	}
	for _, cs := range cases {
		n := cs.B * cs.T * cs.C * cs.H * cs.W
		ntok, F := (cs.T/cs.pt)*(cs.H/cs.p)*(cs.W/cs.p), cs.C*cs.pt*cs.p*cs.p
		x, y := testNormals(111, n), testNormals(112, n)
		want := refPatchify(x, cs.B, cs.T, cs.C, cs.H, cs.W, cs.pt, cs.p)
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("%+v threads=%d", cs, th)
			tx, tok := guarded(d, x, cs.B, cs.T, cs.C, cs.H, cs.W), guarded(d, nil, cs.B, ntok, F)
			d.Patchify(tok, tx, cs.B, cs.T, cs.C, cs.H, cs.W, cs.pt, cs.p)
			assertSame(t, "Patchify "+tag, Host(tok), want)
			back := guarded(d, nil, cs.B, cs.T, cs.C, cs.H, cs.W)
			d.Unpatchify(back, tok, cs.B, cs.T, cs.C, cs.H, cs.W, cs.pt, cs.p)
			assertSame(t, "Unpatchify(Patchify(x)) "+tag, Host(back), x)
			// Adjoint: <Patchify x, y> = <x, Unpatchify y>.
			ty, uy := guarded(d, y, cs.B, ntok, F), guarded(d, nil, cs.B, cs.T, cs.C, cs.H, cs.W)
			d.Unpatchify(uy, ty, cs.B, cs.T, cs.C, cs.H, cs.W, cs.pt, cs.p)
			lhs, rhs := dot64(f64s(Host(tok)), f64s(y)), dot64(f64s(x), f64s(Host(uy)))
			assertClose64(t, "Patchify adjoint "+tag, []float64{lhs}, []float64{rhs}, 1e-9, 1e-12)
			for _, v := range []*Tensor{tx, tok, back, uy} {
				assertGuard(t, tag, v)
			}
		}
	}
}

func TestPatchifyBadShapePanics(t *testing.T) {
	d := NewCPU(1)
	defer func() {
		if recover() == nil {
			t.Error("Patchify with H not divisible by p did not panic")
		}
	}()
	d.Patchify(d.New(1, 30), d.New(1, 1, 1, 5, 6), 1, 1, 1, 5, 6, 1, 2)
}

// refPermute applies numpy's transpose(perm) by the index map.
func refPermute(x []float32, shape, perm []int) []float32 {
	k := len(shape)
	outShape := make([]int, k)
	for j, p := range perm {
		outShape[j] = shape[p]
	}
	out := make([]float32, len(x))
	ic := make([]int, k)
	for i := range x {
		rem := i
		for a := k - 1; a >= 0; a-- {
			ic[a] = rem % shape[a]
			rem /= shape[a]
		}
		o := 0
		for j := 0; j < k; j++ {
			o = o*outShape[j] + ic[perm[j]]
		}
		out[o] = x[i]
	}
	return out
}

// permutations returns every permutation of 0..k-1.
func permutations(k int) [][]int {
	if k == 0 {
		return [][]int{{}}
	}
	var all [][]int
	for _, p := range permutations(k - 1) {
		for pos := 0; pos <= len(p); pos++ {
			q := append(append(append([]int(nil), p[:pos]...), k-1), p[pos:]...)
			all = append(all, q)
		}
	}
	return all
}

func TestPermute(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	shapes := [][]int{{7}, {5, 3}, {3, 1, 5}, {2, 3, 1, 5}, {3, 5, 2, 7}, {2, 3, 2, 1, 5, 3}, {2, 3, 4, 1, 5}, {3, 301, 2, 67}}
	for _, shape := range shapes {
		k := len(shape)
		var perms [][]int
		if k <= 4 && numel(shape) < 1000 {
			perms = permutations(k)
		} else {
			perms = [][]int{{}}
			perms[0] = make([]int, k)
			for i := range perms[0] {
				perms[0][i] = i // identity
			}
			for len(perms) < 8 {
				perms = append(perms, r.Perm(k))
			}
		}
		x := testNormals(121, numel(shape))
		for _, perm := range perms {
			want := refPermute(x, shape, perm)
			for _, th := range []int{1, 7} {
				d := NewCPU(th)
				tag := fmt.Sprintf("shape %v perm %v threads=%d", shape, perm, th)
				out := guarded(d, nil, len(x))
				d.Permute(out, guarded(d, x, shape...), shape, perm)
				assertSame(t, "Permute "+tag, Host(out), want)
				assertGuard(t, tag, out)
			}
		}
	}
}

func TestPermuteBadPermPanics(t *testing.T) {
	d := NewCPU(1)
	for _, perm := range [][]int{{0, 0}, {0, 2}, {0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Permute with perm %v did not panic", perm)
				}
			}()
			d.Permute(d.New(6), d.New(2, 3), []int{2, 3}, perm)
		}()
	}
}

// PermuteDims' loop by hand: (2,3,4,5) by (0,2,3,1) has output dims 2, 4, 5, 3 with input
// strides 60, 5, 1, 20; 4 and 5 merge (5 == 1*5) into 20 of stride 1. Size-1 dims drop, an
// identity merges into one dim, and an all-ones shape keeps one dim of 1.
func TestPermuteDims(t *testing.T) {
	for _, c := range []struct{ shape, perm, dims, strides []int }{
		{[]int{2, 3, 4, 5}, []int{0, 2, 3, 1}, []int{2, 20, 3}, []int{60, 1, 20}},
		{[]int{1, 3}, []int{1, 0}, []int{3}, []int{1}},
		{[]int{2, 3, 4}, []int{0, 1, 2}, []int{24}, []int{1}},
		{[]int{4, 1, 3}, []int{2, 1, 0}, []int{3, 4}, []int{1, 3}},
		{[]int{1, 1}, []int{1, 0}, []int{1}, []int{1}},
	} {
		d, n := NewCPU(1), numel(c.shape)
		dims, strides, _ := PermuteDims(d.New(n), d.New(n), c.shape, c.perm)
		if !slices.Equal(dims, c.dims) || !slices.Equal(strides, c.strides) {
			t.Errorf("PermuteDims(%v, %v) = %v, %v; want %v, %v", c.shape, c.perm, dims, strides, c.dims, c.strides)
		}
	}
}

func TestConcatSplit(t *testing.T) {
	for _, sz := range [][3]int{{37, 5, 67}, {601, 67, 13}, {4, 0, 3}} {
		outer, na, nb := sz[0], sz[1], sz[2]
		a, b := testNormals(131, outer*na), testNormals(132, outer*nb)
		want := make([]float32, 0, outer*(na+nb))
		for r := 0; r < outer; r++ {
			want = append(append(want, a[r*na:(r+1)*na]...), b[r*nb:(r+1)*nb]...)
		}
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("outer=%d na=%d nb=%d threads=%d", outer, na, nb, th)
			out := guarded(d, nil, outer, na+nb)
			d.Concat(out, guarded(d, a, outer, na), guarded(d, b, outer, nb), outer, na, nb)
			assertSame(t, "Concat "+tag, Host(out), want)
			ta, tb := guarded(d, nil, outer, na), guarded(d, nil, outer, nb)
			d.Split(ta, tb, out, outer, na, nb)
			assertSame(t, "Split a "+tag, Host(ta), a)
			assertSame(t, "Split b "+tag, Host(tb), b)
			for _, v := range []*Tensor{out, ta, tb} {
				assertGuard(t, tag, v)
			}
		}
	}
}
