// Tests of the CPU per-sample MSE: forward and backward against float64 references for a
// small D and a D spanning several reduction chunks, the reference gradient against central
// differences, dpred aliasing pred, guarded views, and bit-identical losses across thread
// counts.
//
// Test: go test ./kernels -run MSE
package kernels

import (
	"fmt"
	"testing"
)

func refMSE(p, t []float64, B, D int) []float64 {
	l := make([]float64, B)
	for b := 0; b < B; b++ {
		for i := b * D; i < (b+1)*D; i++ {
			l[b] += (p[i] - t[i]) * (p[i] - t[i])
		}
		l[b] /= float64(D)
	}
	return l
}

func refMSEBackward(dl, p, t []float64, B, D int) []float64 {
	dp := make([]float64, B*D)
	for i := range dp {
		dp[i] = dl[i/D] * 2 * (p[i] - t[i]) / float64(D)
	}
	return dp
}

func TestMSEReferenceFiniteDifferences(t *testing.T) {
	B, D := 3, 5
	p, tg, dl := f64s(testNormals(151, B*D)), f64s(testNormals(152, B*D)), f64s(testNormals(153, B))
	fd := fdGrad(func(v []float64) float64 { return dot64(refMSE(v, tg, B, D), dl) }, p, 1e-5)
	assertClose64(t, "mse dpred", refMSEBackward(dl, p, tg, B, D), fd, 1e-9, 1e-7)
}

func TestMSECPU(t *testing.T) {
	for _, sz := range [][2]int{{3, 67}, {5, 20011}} {
		B, D := sz[0], sz[1]
		p, tg, dl := testNormals(154, B*D), testNormals(155, B*D), testNormals(156, B)
		wantL := refMSE(f64s(p), f64s(tg), B, D)
		wantDP := refMSEBackward(f64s(dl), f64s(p), f64s(tg), B, D)
		var first []float32
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("B=%d D=%d threads=%d", B, D, th)
			tp, tt, loss := guarded(d, p, B, D), guarded(d, tg, B, D), guarded(d, nil, B)
			d.MSEForward(loss, tp, tt, B, D)
			assertClose(t, "MSEForward "+tag, Host(loss), wantL, 1e-7, 1e-6)
			d.MSEBackward(tp, guarded(d, dl, B), tp, tt, B, D) // dpred aliases pred
			assertClose(t, "MSEBackward "+tag, Host(tp), wantDP, 1e-7, 1e-5)
			assertGuard(t, tag, loss)
			assertGuard(t, tag, tp)
			if first == nil {
				first = append([]float32(nil), Host(loss)...)
			} else {
				assertSame(t, "MSEForward deterministic "+tag, Host(loss), first)
			}
		}
	}
}
