// Tests of PatchEmbed: forward against a float64 reference (host patchify of a video with
// tubelets, projection, position table), gradients of the input and the projection against
// finite differences, and the position table against DiT's 2D sin-cos formula.
//
// Test: go test ./nn -run 'PatchEmbed|PosEmbed'
package nn

import (
	"math"
	"testing"

	"github.com/alignkit/align/kernels"
)

// patchifyRef cuts x (B,T,Cin,H,W) into (B, L, Cin*pt*p*p): tokens (t,h,w), features (c,dt,dy,dx).
func patchifyRef(x []float32, B, T, Cin, H, W, pt, p int) []float64 {
	gt, gh, gw := T/pt, H/p, W/p
	F := Cin * pt * p * p
	out := make([]float64, 0, B*gt*gh*gw*F)
	for b := 0; b < B; b++ {
		for tt := 0; tt < gt; tt++ {
			for hh := 0; hh < gh; hh++ {
				for ww := 0; ww < gw; ww++ {
					for c := 0; c < Cin; c++ {
						for dt := 0; dt < pt; dt++ {
							for dy := 0; dy < p; dy++ {
								for dx := 0; dx < p; dx++ {
									i := (((b*T+tt*pt+dt)*Cin+c)*H+hh*p+dy)*W + ww*p + dx
									out = append(out, float64(x[i]))
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

func TestPatchEmbedForward(t *testing.T) {
	r := newHostRand(90)
	e := NewPatchEmbed(testDev, r, 3, 12, 2, 2)
	r.Normal(e.Proj.Bias)
	const B, T, Cin, H, W = 2, 4, 3, 6, 4
	x := r.tensor(1, B, T, Cin, H, W)
	y := e.Forward(x)
	L := (T / 2) * (H / 2) * (W / 2)
	mustShape("y", y, B, L, 12)
	want := linear64(patchifyRef(toHost(x), B, T, Cin, H, W, 2, 2), toHost(e.Proj.Weight), toHost(e.Proj.Bias), B*L, Cin*8, 12)
	pos := PosEmbed3D(12, T/2, H/2, W/2)
	for i := range want {
		want[i] += float64(pos[i%(L*12)])
	}
	assertClose(t, "y", toHost(y), want, 1e-5, 1e-5)
}

func TestPatchEmbedGrad(t *testing.T) {
	for _, video := range []bool{false, true} {
		r := newHostRand(91)
		var e *PatchEmbed
		var x *kernels.Tensor
		if video {
			e = NewPatchEmbed(testDev, r, 2, 8, 2, 2)
			x = r.tensor(1, 2, 4, 2, 4, 6)
		} else {
			e = NewPatchEmbed(testDev, r, 3, 8, 1, 2)
			x = r.tensor(1, 2, 3, 6, 4) // (B,Cin,H,W)
		}
		var dx *kernels.Tensor
		vars := append(paramVars(e.Params()), gcVar{"x", x, func() *kernels.Tensor { return dx }})
		gradCheck(t, func() *kernels.Tensor { return e.Forward(x) },
			func(d *kernels.Tensor) { dx = e.Backward(d) }, vars, gcOpts{})
		if !kernels.SameShape(dx, x) {
			t.Errorf("dx %v, x %v", dx, x)
		}
	}
}

// An image grid gets exactly DiT's get_2d_sincos_pos_embed: row (h,w) is
// [sin(w*om), cos(w*om), sin(h*om), cos(h*om)], om_i = 10000^(-i/(C/4)).
func TestPosEmbedImageIsDiT(t *testing.T) {
	const C, gh, gw = 16, 3, 5
	got := PosEmbed3D(C, 1, gh, gw)
	q := C / 4
	var want []float64
	for h := 0; h < gh; h++ {
		for w := 0; w < gw; w++ {
			row := make([]float64, C)
			for i := 0; i < q; i++ {
				om := 1 / math.Pow(10000, float64(i)/float64(q))
				row[i], row[q+i] = math.Sin(float64(w)*om), math.Cos(float64(w)*om)
				row[2*q+i], row[3*q+i] = math.Sin(float64(h)*om), math.Cos(float64(h)*om)
			}
			want = append(want, row...)
		}
	}
	assertClose(t, "pos", got, want, 1e-6, 1e-6)

	// A video grid adds the temporal code F(t) = PosEmbed1D(C, t) to the spatial table.
	vid := PosEmbed3D(C, 2, gh, gw)
	ft := PosEmbed1D(C, []float64{0, 1})
	for n := 0; n < gh*gw; n++ {
		for i := 0; i < C; i++ {
			for tt := 0; tt < 2; tt++ {
				w := want[n*C+i] + float64(ft[tt*C+i])
				if g := float64(vid[(tt*gh*gw+n)*C+i]); math.Abs(g-w) > 1e-6 {
					t.Fatalf("video pos (t=%d, n=%d, i=%d) = %g, want %g", tt, n, i, g, w)
				}
			}
		}
	}
}
