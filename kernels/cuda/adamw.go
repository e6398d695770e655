// Launchers of the AdamW kernels (adamw.cu): one parameter (adamw), or an optimizer step
// over many with one launch (adamw_chunks, chunks.go). The bias corrections are computed
// here in float64, as on the CPU device.
//
// Test: go test ./kernels/cuda -run 'Conformance/AdamW|Chunk'
package cuda

import (
	"fmt"
	"math"

	"github.com/alignkit/align/kernels"
)

func (d *Device) AdamW(param, grad, m, v *kernels.Tensor, h kernels.AdamWParams) {
	n := param.Len()
	checkAdamW(param, grad, m, v, h)
	bc1, bc2 := biasCorrections(h)
	d.launch1("adamw", n, P(d.ptr(param)), P(d.rptr(grad)), P(d.ptr(m)), P(d.ptr(v)), I(n), F(h.Scale()),
		F(h.LR), F(h.Beta1), F(h.Beta2), F(h.Eps), F(h.LR*h.WeightDecay), F(bc1), F(bc2))
}

// AdamWEach updates every parameter with one launch of adamw_chunks where all share the
// hyper-parameters (and the gradient scale) but the weight decay (an optimizer step), else
// with one AdamW each. In
// BF16 mode the launch also writes each parameter's BF16 copy (halfOut), so that the next
// step's products do not convert the weights.
func (d *Device) AdamWEach(params, grads, ms, vs []*kernels.Tensor, hs []kernels.AdamWParams) {
	if len(grads) != len(params) || len(ms) != len(params) || len(vs) != len(params) || len(hs) != len(params) {
		panic(fmt.Sprintf("cuda: AdamWEach: %d params, %d grads, %d m, %d v, %d hyper-parameter sets",
			len(params), len(grads), len(ms), len(vs), len(hs)))
	}
	for i := range params {
		checkAdamW(params[i], grads[i], ms[i], vs[i], hs[i])
	}
	for _, h := range hs {
		if h.LR != hs[0].LR || h.Beta1 != hs[0].Beta1 || h.Beta2 != hs[0].Beta2 || h.Eps != hs[0].Eps || h.Step != hs[0].Step ||
			h.Scale() != hs[0].Scale() {
			for i := range params {
				d.AdamW(params[i], grads[i], ms[i], vs[i], hs[i])
			}
			return
		}
	}
	var words []uint64
	spans := map[*storage][3]int{} // first element, end, elements: the BF16 copies written in each storage
	for i, p := range params {
		pp, pg, pm, pv := uint64(d.ptr(p)), uint64(d.rptr(grads[i])), uint64(d.ptr(ms[i])), uint64(d.ptr(vs[i]))
		p16 := uint64(d.halfOut(p)) // in BF16 mode the next step's products read the weight's copy
		if p16 != 0 {
			s, lo, hi := d.storageOf(p), p.Offset, p.Offset+p.Len()
			if sp, ok := spans[s]; ok {
				spans[s] = [3]int{min(lo, sp[0]), max(hi, sp[1]), sp[2] + p.Len()}
			} else {
				spans[s] = [3]int{lo, hi, p.Len()}
			}
		}
		wd := uint64(math.Float32bits(hs[i].WeightDecay))
		d.eachChunk(p.Len(), func(off, size int) {
			o, o16 := uint64(4*off), uint64(0)
			if p16 != 0 {
				o16 = p16 + uint64(2*off)
			}
			words = append(words, pp+o, pg+o, pm+o, pv+o, uint64(size), wd, o16)
		})
	}
	if len(words) == 0 {
		return
	}
	// Parameters that are views of one storage (an AdaLNStack's blocks' rows) each marked
	// their own range as the copy; where together they cover a contiguous span, the launch
	// writes the copy of all of it, and a product reading the whole storage reads it.
	for s, sp := range spans {
		if sp[2] == sp[1]-sp[0] {
			s.half.off, s.half.n = sp[0], sp[2]
		}
	}
	h := hs[0]
	bc1, bc2 := biasCorrections(h)
	table := d.upload(&d.adamwTable, words)
	d.launch("adamw_chunks", Dim3{len(words) / adamwWords, 1, 1}, Dim3{blockSize, 1, 1}, 0, P(table),
		F(h.Scale()), F(h.LR), F(h.Beta1), F(h.Beta2), F(h.Eps), F(bc1), F(bc2))
}

// adamwWords is the number of table words per chunk of adamw_chunks.
const adamwWords = 7

func checkAdamW(param, grad, m, v *kernels.Tensor, h kernels.AdamWParams) {
	n := param.Len()
	mustLen("AdamW grad", grad, n)
	mustLen("AdamW m", m, n)
	mustLen("AdamW v", v, n)
	if h.Step < 1 {
		panic(fmt.Sprintf("cuda: AdamW: step %d, want >= 1", h.Step))
	}
}

// biasCorrections are 1 - b1^step and 1 - b2^step, computed in float64 as on the CPU device.
func biasCorrections(h kernels.AdamWParams) (bc1, bc2 float32) {
	return float32(1 - math.Pow(float64(h.Beta1), float64(h.Step))), float32(1 - math.Pow(float64(h.Beta2), float64(h.Step)))
}
