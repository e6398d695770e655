// Package kernels holds the numeric core of align: the Tensor, the Device interface that
// every layer computes through, the CPU device (Go + OpenBLAS), and the CUDA device
// (build tag cuda) with its kernels in *.cu.
//
// Shape legend used in the comments of this package:
//
//	B  batch size            T  sequence length (tokens)    C  channels (width)
//	NH attention heads       HS head size (C = NH*HS)       N  rows (often B*T)
//	V  vocabulary size       D  elements per sample
//
// Conventions (as in llm.c): outputs come first, then inputs, then dimensions. Backward
// operations write (=) activation gradients and accumulate (+=) parameter gradients.
// Every operation may be asynchronous on devices that have streams; CopyToHost,
// Sum, SumSquares, SumSquaresEach and Synchronize wait for the work before them.
//
// Test: go test ./kernels
package kernels

// Device is the set of operations the diffusion transformer, the reward models and their
// training need. Implementations: CPU (cpu.go) and CUDA (package kernels/cuda: the real
// driver with the build tag cuda, and an emulated driver that runs the same kernels on the
// CPU for tests).
// Tensors passed to one call must all live on that device. Operations panic on shape
// violations (programmer errors); nothing here returns an error on the hot path.
type Device interface {
	// Name is a short label such as "cpu" or "cuda:0".
	Name() string

	// ---- memory (cpu.go) ----

	// New allocates a zero-filled tensor.
	New(shape ...int) *Tensor
	// FromHost allocates a tensor and copies data (len = product of shape) into it.
	FromHost(data []float32, shape ...int) *Tensor
	// CopyToHost copies src.Len() elements of src into dst and waits for them.
	CopyToHost(dst []float32, src *Tensor)
	// CopyFromHost copies dst.Len() elements of src into dst.
	CopyFromHost(dst *Tensor, src []float32)
	// Copy copies src into dst (same number of elements).
	Copy(dst, src *Tensor)
	// Fill sets every element of t to v.
	Fill(t *Tensor, v float32)
	// FillEach is Fill of each of xs (nil entries skipped), the same values in fewer
	// launches: clearing the gradients of a model sets a few hundred tensors per step.
	FillEach(xs []*Tensor, v float32)
	// Free returns t's storage to the device; t must not be used afterwards. Views of a
	// freed tensor are invalid too. Freeing is optional on the CPU (the GC reclaims it).
	Free(t *Tensor)
	// Synchronize waits for all queued work.
	Synchronize() error

	// ---- matrix multiply (gemm_cpu.go) ----

	// Gemm computes C = alpha*op(A)*op(B) + beta*C on contiguous row-major matrices.
	// op(A) is (m,k): A is (m,k), or (k,m) when transA. op(B) is (k,n): B is (k,n), or
	// (n,k) when transB. C is (m,n). beta == 0 means C is not read (NaNs in C vanish).
	Gemm(transA, transB bool, m, n, k int, alpha float32, a, b *Tensor, beta float32, c *Tensor)
	// Linear: y = x·Wᵀ + bias for x (N,in), w (out,in), bias (out) or nil, y (N,out), the
	// same as Gemm then AddBias; a GPU adds the bias in the product's epilogue.
	Linear(y, x, w, bias *Tensor, N, in, out int)
	// LinearBackward: Linear's gradients for dy (N,out): dx = dy·W (N,in), written; where not
	// nil, dw += dyᵀ·x (out,in) and dbias[c] += sum_n dy[n,c]. The same as Gemm, Gemm and
	// BiasBackward; a GPU sums the bias gradient in the weight gradient's epilogue.
	LinearBackward(dx, dw, dbias, dy, x, w *Tensor, N, in, out int)
	// LinearGelu: h = x·Wᵀ + bias (N,out), then g = GeluForward(h): the same as Linear and
	// GeluForward; a GPU applies GELU in the product's epilogue. h is kept for the backward;
	// h nil keeps nothing (a forward without a backward: g alone is written).
	LinearGelu(g, h, x, w, bias *Tensor, N, in, out int)
	// GeluLinearBackward is LinearBackward for a layer whose input x (N,in) = gelu(h) came out
	// of LinearGelu: instead of dx it writes dh = gelu'(h) ⊙ (dy·W) (N,in), and where not nil
	// dbiasH[c] += sum_n dh[n,c] (the bias gradient of the layer that produced h); dw and
	// dbias as in LinearBackward. The same as LinearBackward, GeluBackward and BiasBackward;
	// a GPU applies gelu' and sums dbiasH in the epilogue of dh's product.
	GeluLinearBackward(dh, dbiasH, dw, dbias, dy, x, w, h *Tensor, N, in, out int)
	// GemmStridedBatched runs batch independent Gemms; matrix i of A starts at element
	// i*strideA of a (likewise B and C).
	GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a *Tensor, strideA int,
		b *Tensor, strideB int, beta float32, c *Tensor, strideC int, batch int)

	// ---- elementwise (elementwise_cpu.go) ----

	// Add: out = a + b (all the same length; out may alias a or b).
	Add(out, a, b *Tensor)
	// Axpy: y += alpha*x.
	Axpy(y *Tensor, alpha float32, x *Tensor)
	// Axpby: out = a*x + b*y (out may alias x or y).
	Axpby(out *Tensor, a float32, x *Tensor, b float32, y *Tensor)
	// Scale: x *= alpha.
	Scale(x *Tensor, alpha float32)
	// Mul: out = a ⊙ b.
	Mul(out, a, b *Tensor)
	// AddRowScaled: out[r,:] = x[r,:] + s[r]*y[r,:]; x, y, out (rows,cols), s (rows).
	// Used for per-sample interpolation x_t = x0 + t*(eps - x0) and per-sample steps.
	AddRowScaled(out, x, s, y *Tensor, rows, cols int)
	// AddBias: out[n,c] = inp[n,c] + bias[c]; inp, out (N,C), bias (C). out may alias inp.
	AddBias(out, inp, bias *Tensor, N, C int)
	// BiasBackward: dbias[c] += sum_n dout[n,c].
	BiasBackward(dbias, dout *Tensor, N, C int)

	// ---- activations (activation_cpu.go) ----

	// GeluForward: out = 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))).
	GeluForward(out, inp *Tensor)
	// GeluBackward: dinp = gelu'(inp) * dout.
	GeluBackward(dinp, inp, dout *Tensor)
	// SiluForward: out = x*sigmoid(x).
	SiluForward(out, inp *Tensor)
	// SiluBackward: dinp = silu'(inp) * dout.
	SiluBackward(dinp, inp, dout *Tensor)

	// ---- normalisation (layernorm_cpu.go) ----

	// LayerNormForward normalises each row of inp (N,C):
	// out = (x-mean)*rstd*weight + bias, rstd = 1/sqrt(var+eps) (biased variance).
	// weight and bias (C) may both be nil (no affine). mean, rstd (N) are cached for backward.
	LayerNormForward(out, mean, rstd, inp, weight, bias *Tensor, N, C int, eps float32)
	// LayerNormBackward writes dinp (N,C) and accumulates dweight, dbias (C); either may be
	// nil (no affine, or a frozen affine). dinp may share dout's storage.
	LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd *Tensor, N, C int)

	// ---- adaLN (modulate_cpu.go) ----

	// ModulateForward: out[b,t,:] = x[b,t,:]*(1+scale[b,:]) + shift[b,:]; x, out (B,T,C),
	// shift, scale (B,C).
	ModulateForward(out, x, shift, scale *Tensor, B, T, C int)
	// LayerNormModulateForward: h = LayerNormForward of x (B,T,C) without affine (mean, rstd
	// (B*T) written), then out = ModulateForward of h; one pass over x on a GPU. h may be nil
	// (not stored: LayerNormModulateBackward recomputes it).
	LayerNormModulateForward(out, h, mean, rstd, x, shift, scale *Tensor, B, T, C int, eps float32)
	// GateLayerNormModulateForward is GateForward (x1 = x + gate*y, written) then
	// LayerNormModulateForward of x1 with a nil h; on a GPU one pass that does not read x1
	// back.
	GateLayerNormModulateForward(x1, out, mean, rstd, x, gate, y, shift, scale *Tensor, B, T, C int, eps float32)
	// LayerNormModulateBackward is LayerNormModulateForward's backward for dout (B,T,C), the
	// gradient of out, with a residual branch's gradient resid (B,T,C; nil: none):
	//	dinp = resid + LayerNormBackward of dout*(1+scale)          (written)
	//	dshift[b] += sum_t dout;  dscale[b] += sum_t dout*h          (accumulated)
	// with h the forward's normalised x, recomputed (the CPU device from x with eps as
	// LayerNormForward computes it, a GPU from mean and rstd). The same as ModulateBackward,
	// LayerNormBackward and Add; no pass writes the modulation's input gradient on a GPU.
	// dinp may share dout's storage, not resid's.
	LayerNormModulateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale *Tensor, B, T, C int, eps float32)
	// LayerNormModulateGateBackward is LayerNormModulateBackward, then GateBackward(dy, dgate,
	// dinp, gate, y) of its dinp: the backward of a norm whose input x is the output of a
	// gated branch (x = x0 + gate*y), dinp the gradient of x and of x0 (written), dy that of y;
	// on a GPU one pass that does not read dinp back.
	LayerNormModulateGateBackward(dinp, dshift, dscale, dout, resid, x, mean, rstd, scale, dy, dgate, gate, y *Tensor,
		B, T, C int, eps float32)
	// ModulateBackward: dx = dout*(1+scale); dshift[b] += sum_t dout; dscale[b] += sum_t dout*x.
	ModulateBackward(dx, dshift, dscale, dout, x, scale *Tensor, B, T, C int)
	// GateForward: out[b,t,:] = x[b,t,:] + gate[b,:]*y[b,t,:] (the gated residual of adaLN-Zero).
	GateForward(out, x, gate, y *Tensor, B, T, C int)
	// GateBackward: dy = gate*dout; dgate[b] += sum_t dout*y. (dx = dout is the caller's.)
	GateBackward(dy, dgate, dout, gate, y *Tensor, B, T, C int)

	// ---- softmax and attention (softmax_cpu.go, attention_cpu.go) ----

	// SoftmaxForward: row-wise softmax of inp (N,C); a row that is all -Inf gives zeros.
	SoftmaxForward(out, inp *Tensor, N, C int)
	// SoftmaxBackward: dinp = out ⊙ (dout - sum_c(dout ⊙ out)).
	SoftmaxBackward(dinp, dout, out *Tensor, N, C int)
	// AttentionForward: multi-head self-attention, no causal mask.
	// qkv (B,T,3,NH,HS) is the packed output of the QKV projection; out (B,T,NH,HS).
	// keyBias (B,T) is added to every score row of batch b (0 keeps a key, -Inf masks it;
	// nil means no mask). A query whose keys are all masked gets a zero output.
	// lse (B,NH,T) caches the log-sum-exp of each scaled score row for the backward pass,
	// which recomputes the probabilities, so memory stays linear in T.
	// Scores are q.k/sqrt(HS).
	AttentionForward(out, lse, qkv, keyBias *Tensor, B, T, NH, HS int)
	// AttentionBackward writes dqkv (B,T,3,NH,HS) from dout (B,T,NH,HS).
	AttentionBackward(dqkv, dout, out, lse, qkv, keyBias *Tensor, B, T, NH, HS int)

	// ---- embeddings and pooling (embedding_cpu.go, timestep_cpu.go, pool_cpu.go) ----

	// EmbeddingForward: out[i,:] = table[ids[i],:]; table (V,C), out (len(ids),C).
	// ids live on the host (they are small and come from the tokenizer).
	EmbeddingForward(out, table *Tensor, ids []int32, C int)
	// EmbeddingBackward: dtable[ids[i],:] += dout[i,:].
	EmbeddingBackward(dtable, dout *Tensor, ids []int32, C int)
	// TimestepEmbedding: sinusoidal embedding of t (B) into out (B,dim), dim even:
	// half = dim/2, freq_i = exp(-ln(maxPeriod)*i/half), out[b] = [cos(t*freq), sin(t*freq)].
	TimestepEmbedding(out, t *Tensor, B, dim int, maxPeriod float32)
	// MeanPoolForward: out[b,:] = sum_t m[b,t]*x[b,t,:] / sum_t m[b,t]; mask (B,T) of 0/1,
	// nil for all ones. A row with no valid token gives zeros.
	MeanPoolForward(out, inp, mask *Tensor, B, T, C int)
	// MeanPoolBackward: dinp[b,t,:] = m[b,t]*dout[b,:]/sum_t m[b,t].
	MeanPoolBackward(dinp, dout, mask *Tensor, B, T, C int)

	// ---- layout (layout_cpu.go) ----

	// Patchify cuts images or videos inp (B,T,C,H,W) into tubelets of pt frames and p x p
	// pixels: out (B, (T/pt)*(H/p)*(W/p), C*pt*p*p), tokens ordered (t,h,w), features
	// ordered (c, dt, dy, dx). Images are T = pt = 1.
	Patchify(out, inp *Tensor, B, T, C, H, W, pt, p int)
	// Unpatchify is the inverse of Patchify (and therefore its backward).
	Unpatchify(out, inp *Tensor, B, T, C, H, W, pt, p int)
	// Permute writes out = inp transposed: inp has shape `shape` (at most 6 dims) and
	// out[i_perm[0], ..., i_perm[k]] = inp[i_0, ..., i_k].
	Permute(out, inp *Tensor, shape, perm []int)
	// Concat joins rows: out (outer, na+nb) = [a (outer,na) | b (outer,nb)].
	Concat(out, a, b *Tensor, outer, na, nb int)
	// Split is the inverse of Concat.
	Split(a, b, inp *Tensor, outer, na, nb int)

	// ---- reductions and losses (reduce_cpu.go, loss_cpu.go) ----

	// Sum returns the sum of all elements (accumulated in float64).
	Sum(x *Tensor) float64
	// SumSquares returns the sum of squares of all elements (accumulated in float64).
	SumSquares(x *Tensor) float64
	// SumSquaresEach returns SumSquares of each of xs (0 for a nil entry), the same values
	// with one wait for all of them: gradient clipping sums a few hundred tensors per step.
	SumSquaresEach(xs []*Tensor) []float64
	// MSEForward: loss[b] = mean_d (pred[b,d]-target[b,d])^2; pred, target (B,D), loss (B).
	// Per-sample means are what Flow-DPO and Flow-RWR weight.
	MSEForward(loss, pred, target *Tensor, B, D int)
	// MSEBackward: dpred[b,d] = dloss[b] * 2*(pred[b,d]-target[b,d])/D.
	MSEBackward(dpred, dloss, pred, target *Tensor, B, D int)

	// ---- optimiser (adamw_cpu.go) ----

	// AdamW updates param in place from grad with moments m, v (decoupled weight decay).
	AdamW(param, grad, m, v *Tensor, h AdamWParams)
	// AdamWEach is AdamW of every params[i] with grads[i], ms[i], vs[i], hs[i], the same
	// values in fewer launches: an optimizer step updates a few hundred tensors.
	AdamWEach(params, grads, ms, vs []*Tensor, hs []AdamWParams)

	// ---- random numbers (rng_cpu.go) ----

	// RandNormal fills t with N(0,1) draws from Philox4x32-10 keyed by seed. Element i
	// comes from counter offset + i/4, so results do not depend on threads or devices.
	RandNormal(t *Tensor, seed, offset uint64)
	// RandUniform fills t with U(0,1) draws (open interval), same counter rule:
	// u = ((x>>8) + 0.5) * 2^-24 computed in float64, rounded to float32 and capped at
	// 1 - 2^-24 (the top value would otherwise round to exactly 1).
	RandUniform(t *Tensor, seed, offset uint64)
}

// AdamWParams are the hyper-parameters of one AdamW step (Loshchilov & Hutter, 2019), for
// g = grad*GradScale:
//
//	p -= lr*wd*p
//	m = b1*m + (1-b1)*g ;  v = b2*v + (1-b2)*g^2
//	p -= lr * (m/(1-b1^step)) / (sqrt(v/(1-b2^step)) + eps)
type AdamWParams struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	Step                               int // 1 for the first update
	// GradScale multiplies the gradient as the update reads it, g = grad*GradScale, in
	// float32 (global-norm clipping: ClipScale, without a pass of its own); 0 means 1.
	GradScale float32
}

// Scale is GradScale, 1 where it is 0.
func (h AdamWParams) Scale() float32 {
	if h.GradScale == 0 {
		return 1
	}
	return h.GradScale
}
