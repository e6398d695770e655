package kernels

import (
	"fmt"
	"testing"
)

// The Go GEMM's epilogue gives the bits of the product followed by AddBias and GeluForward
// over the whole output: every micro-kernel, 1 to 3 threads, products crossing the cache
// blocks (k > kc, n > nc, m > mc) with edge tiles, GELU into C itself or into another
// tensor, with and without a bias, k = 0.
func TestLinearEpilogue(t *testing.T) {
	ref := NewCPU(1)
	for _, kern := range gemmKernels {
		for _, s := range [][3]int{{13, 24, 7}, {37, 40, 390}, {397, 656, 45}, {50, 700, 400}, {5, 16, 0}} {
			m, n, k := s[0], s[1], s[2]
			a, b, bias := testNormals(1, m*k), testNormals(2, n*k), testNormals(3, n)
			for _, threads := range []int{1, 2, 3} {
				for _, c := range []struct {
					bias, gelu, inPlace bool
				}{{true, false, false}, {true, true, true}, {true, true, false}, {false, true, false}} {
					if c.gelu && !geluFusable(kern, n) {
						continue
					}
					name := fmt.Sprintf("%s m=%d n=%d k=%d threads=%d bias=%v gelu=%v in place=%v",
						kern.name, m, n, k, threads, c.bias, c.gelu, c.inPlace)
					// The separate passes.
					want := make([]float32, m*n)
					gemmGoKernel(kern, threads, false, true, m, n, k, 1, a, max(k, 1), b, max(k, 1), 0, want, n)
					tw := ref.FromHost(want, m, n)
					if c.bias {
						ref.AddBias(tw, tw, ref.FromHost(bias, n), m, n)
					}
					want = Host(tw)
					var wantG []float32
					if c.gelu {
						tg := ref.New(m, n)
						ref.GeluForward(tg, tw)
						wantG = Host(tg)
					}
					// The epilogue.
					got := testNormals(4, m*n) // overwritten: beta 0
					epi := &gemmEpilogue{gelu: c.gelu}
					if c.bias {
						epi.bias = bias
					}
					gotG := got
					if c.gelu && !c.inPlace {
						gotG = make([]float32, m*n)
					}
					epi.g, epi.ldg = gotG, n
					gemmGoEpilogue(kern, threads, false, true, m, n, k, 1, a, max(k, 1), b, max(k, 1), 0, got, n, epi)
					if c.gelu {
						sameBits(t, name+" G", gotG, wantG)
						if !c.inPlace {
							sameBits(t, name+" C", got, want)
						}
					} else {
						sameBits(t, name+" C", got, want)
					}
				}
			}
		}
	}
}

// Linear and LinearGelu on the CPU device (through the epilogue where the Go GEMM
// multiplies) give the bits of Gemm, AddBias and GeluForward, on widths GELU can fuse and
// widths it cannot.
func TestLinearEpilogueDevice(t *testing.T) {
	d := NewCPU(2)
	for _, out := range []int{64, 61} {
		const N, in = 70, 33
		x, w, bias := d.FromHost(testNormals(1, N*in), N, in), d.FromHost(testNormals(2, out*in), out, in), d.FromHost(testNormals(3, out), out)
		want, wantG := d.New(N, out), d.New(N, out)
		d.Gemm(false, true, N, out, in, 1, x, w, 0, want)
		d.AddBias(want, want, bias, N, out)
		d.GeluForward(wantG, want)

		y, h, g, g2 := d.New(N, out), d.New(N, out), d.New(N, out), d.New(N, out)
		d.Linear(y, x, w, bias, N, in, out)
		sameBits(t, fmt.Sprintf("Linear out=%d", out), Host(y), Host(want))
		d.LinearGelu(g, h, x, w, bias, N, in, out)
		sameBits(t, fmt.Sprintf("LinearGelu h out=%d", out), Host(h), Host(want))
		sameBits(t, fmt.Sprintf("LinearGelu g out=%d", out), Host(g), Host(wantG))
		d.LinearGelu(g2, nil, x, w, bias, N, in, out)
		sameBits(t, fmt.Sprintf("LinearGelu in place out=%d", out), Host(g2), Host(wantG))
	}
}
