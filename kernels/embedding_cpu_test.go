// Tests of the CPU embedding lookup: forward gathers, backward accumulation with repeated
// ids (bit-identical across thread counts), the adjoint identity against central
// differences, guarded views, and the panic on ids out of range.
//
// Test: go test ./kernels -run Embedding
package kernels

import (
	"fmt"
	"strings"
	"testing"
)

// embeddingIDs returns n ids in [0,V) with many repeats (and the first id repeated last).
func embeddingIDs(n, V int) []int32 {
	u := testUniforms(81, n, 0, float64(V))
	ids := make([]int32, n)
	for i, v := range u {
		ids[i] = int32(v) / 2 * 2 // even rows only: every used row repeats
	}
	ids[n-1] = ids[0]
	return ids
}

func TestEmbeddingCPU(t *testing.T) {
	for _, sz := range [][3]int{{37, 11, 67}, {301, 23, 67}, {40, 50, 1024}} {
		n, V, C := sz[0], sz[1], sz[2]
		ids := embeddingIDs(n, V)
		table, g, init := testNormals(82, V*C), testNormals(83, n*C), testNormals(84, V*C)
		wantY := make([]float64, n*C)
		wantDT := f64s(init)
		for i, id := range ids {
			for c := 0; c < C; c++ {
				wantY[i*C+c] = float64(table[int(id)*C+c])
				wantDT[int(id)*C+c] += float64(g[i*C+c])
			}
		}
		var first []float32
		for _, th := range threadCounts {
			d := NewCPU(th)
			tag := fmt.Sprintf("n=%d V=%d C=%d threads=%d", n, V, C, th)
			tt, out := guarded(d, table, V, C), guarded(d, nil, n, C)
			d.EmbeddingForward(out, tt, ids, C)
			assertSame(t, "EmbeddingForward "+tag, Host(out), func() []float32 {
				w := make([]float32, len(wantY))
				for i, v := range wantY {
					w[i] = float32(v)
				}
				return w
			}())
			dt := guarded(d, init, V, C)
			d.EmbeddingBackward(dt, guarded(d, g, n, C), ids, C)
			assertClose(t, "EmbeddingBackward "+tag, Host(dt), wantDT, 1e-5, 1e-6)
			assertGuard(t, tag, out)
			assertGuard(t, tag, dt)
			if first == nil {
				first = append([]float32(nil), Host(dt)...)
			} else {
				assertSame(t, "EmbeddingBackward deterministic "+tag, Host(dt), first)
			}
		}
	}
}

func TestEmbeddingAdjointFiniteDifferences(t *testing.T) {
	// d/dtable of sum(dout ⊙ table[ids]) is what EmbeddingBackward accumulates.
	n, V, C := 9, 5, 3
	ids := embeddingIDs(n, V)
	table, g := testNormals(85, V*C), testNormals(86, n*C)
	fd := fdGrad(func(tb []float64) float64 {
		s := 0.0
		for i, id := range ids {
			for c := 0; c < C; c++ {
				s += float64(g[i*C+c]) * tb[int(id)*C+c]
			}
		}
		return s
	}, f64s(table), 1e-3)
	d := NewCPU(2)
	dt := d.New(V, C)
	d.EmbeddingBackward(dt, d.FromHost(g, n, C), ids, C)
	assertClose(t, "EmbeddingBackward vs finite differences", Host(dt), fd, 1e-5, 1e-5)
}

func TestEmbeddingOutOfRangePanics(t *testing.T) {
	d := NewCPU(2)
	table, out := d.New(4, 3), d.New(2, 3)
	for _, ids := range [][]int32{{0, 4}, {-1, 0}} {
		for _, op := range []string{"EmbeddingForward", "EmbeddingBackward"} {
			func() {
				defer func() {
					r := recover()
					msg, _ := r.(string)
					if !strings.Contains(msg, "out of range") || !strings.Contains(msg, op) {
						t.Errorf("%s with ids %v: recovered %v, want an out-of-range panic", op, ids, r)
					}
				}()
				if op == "EmbeddingForward" {
					d.EmbeddingForward(out, table, ids, 3)
				} else {
					d.EmbeddingBackward(table, out, ids, 3)
				}
			}()
		}
	}
}
