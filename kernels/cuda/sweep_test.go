// Boundary sweeps: sizes just below, at and above the warp (32), the row and column tiles
// and the grid-stride cap (32 blocks of 256 on the emulated driver), for the kernels whose
// indexing depends on them. The default run takes the boundaries at 32; ALIGN_CUDA_SWEEP=1
// runs the whole sweep (about a minute).
//
// Test: go test ./kernels/cuda -run Sweep      ALIGN_CUDA_SWEEP=1 go test ./kernels/cuda -run Sweep
package cuda

import (
	"fmt"
	"testing"
)

func TestSweep(t *testing.T) {
	dev := NewEmulated()
	t.Run("Attention", func(t *testing.T) {
		e := newEnv(t, dev)
		for _, T := range []int{1, 2, 31, 32, 33, 63, 64, 65, 97} {
			for _, HS := range []int{1, 7, 31, 32, 33, 63, 64, 65, 96, 127, 128} {
				attentionCases(e, []attentionCase{{2, T, 2, HS, T > 2}}, attnSweepPaths, tol32, eps32)
			}
		}
	})
	t.Run("Rows", func(t *testing.T) {
		e := newEnv(t, dev)
		for _, C := range []int{1, 31, 32, 33, 64, 65, 1000} {
			for _, N := range []int{1, 7, 8, 9, 17} {
				layerNormCases(e, [][2]int{{N, C}})
				x := e.pair(normals(70, N*C), N, C)
				out := e.pair(nil, N, C)
				e.dev.SoftmaxForward(out.d, x.d, N, C)
				e.cpu.SoftmaxForward(out.c, x.c, N, C)
				e.check(fmt.Sprintf("SoftmaxForward N%d C%d", N, C), out, tol32, eps32)
				db := e.pair(nil, C)
				e.dev.BiasBackward(db.d, x.d, N, C)
				e.cpu.BiasBackward(db.c, x.c, N, C)
				e.check(fmt.Sprintf("BiasBackward N%d C%d", N, C), db, tol32, eps32)
				e.free(x, out, db)
			}
		}
	})
	t.Run("GridStride", func(t *testing.T) {
		e := newEnv(t, dev)
		for _, n := range []int{255, 256, 257, 8191, 8192, 8193, 3*8192 + 5} {
			x, y := e.pair(normals(71, n), n), e.pair(normals(72, n), n)
			e.dev.Axpy(y.d, 0.5, x.d)
			e.cpu.Axpy(y.c, 0.5, x.c)
			e.check(fmt.Sprintf("Axpy n%d", n), y, tol32, eps32)
			if got, want := e.dev.SumSquares(x.d), e.cpu.SumSquares(x.c); got-want > 1e-12*want || want-got > 1e-12*want {
				t.Errorf("SumSquares n%d: got %.17g want %.17g", n, got, want)
			}
			u := e.pair(nil, n)
			e.dev.RandNormal(u.d, 7, 3)
			e.cpu.RandNormal(u.c, 7, 3)
			e.check(fmt.Sprintf("RandNormal n%d", n), u, 1e-6, 1e-6)
			e.free(x, y, u)
		}
	})
}
