// Per-sample mean squared error of the CPU device, forward and backward (the flow-matching
// loss that Flow-DPO and Flow-RWR weight per sample). Sums are float64 over fixed chunks of
// reduceChunk elements added in order, so results do not depend on the number of threads.
//
// Test: go test ./kernels -run MSE
package kernels

// MSEForward: loss[b] = (1/D) * sum_d (pred[b,d] - target[b,d])^2; pred, target (B,D),
// loss (B).
func (d *CPU) MSEForward(loss, pred, target *Tensor, B, D int) {
	mustLen("MSEForward loss", loss, B)
	mustLen("MSEForward pred", pred, B*D)
	mustLen("MSEForward target", target, B*D)
	l, p, t := Host(loss), Host(pred), Host(target)
	if D == 0 {
		clear(l)
		return
	}
	nch := (D + reduceChunk - 1) / reduceChunk
	part := make([]float64, B*nch)
	d.parallel(B*nch, 1, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			b, k := j/nch, j%nch
			a, e := b*D+k*reduceChunk, b*D+min((k+1)*reduceChunk, D)
			pr, tr := p[a:e], t[a:e]
			s := 0.0
			for i, v := range pr {
				dv := float64(v) - float64(tr[i])
				s += dv * dv
			}
			part[j] = s
		}
	})
	for b := 0; b < B; b++ {
		s := 0.0
		for _, v := range part[b*nch : (b+1)*nch] {
			s += v
		}
		l[b] = float32(s / float64(D))
	}
}

// MSEBackward: dpred[b,d] = dloss[b] * 2*(pred[b,d] - target[b,d])/D (written); dloss (B).
// dpred may alias pred or target.
func (d *CPU) MSEBackward(dpred, dloss, pred, target *Tensor, B, D int) {
	mustLen("MSEBackward dpred", dpred, B*D)
	mustLen("MSEBackward dloss", dloss, B)
	mustLen("MSEBackward pred", pred, B*D)
	mustLen("MSEBackward target", target, B*D)
	dp, dl, p, t := Host(dpred), Host(dloss), Host(pred), Host(target)
	d.parallel(B*D, elemGrain, func(lo, hi int) {
		forEachBC(lo, hi, D, func(b, d0, d1 int) {
			k := dl[b] * 2 / float32(D)
			for i := b*D + d0; i < b*D+d1; i++ {
				dp[i] = k * (p[i] - t[i])
			}
		})
	})
}
