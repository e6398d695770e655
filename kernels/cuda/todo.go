// Operations whose kernels are not written yet.
package cuda

import "github.com/alignkit/align/kernels"

func todo(op string) { panic("cuda: " + op + " is not implemented yet") }

func (d *Device) GeluForward(out, inp *kernels.Tensor)         { todo("GeluForward") }
func (d *Device) GeluBackward(dinp, inp, dout *kernels.Tensor) { todo("GeluBackward") }
func (d *Device) SiluForward(out, inp *kernels.Tensor)         { todo("SiluForward") }
func (d *Device) SiluBackward(dinp, inp, dout *kernels.Tensor) { todo("SiluBackward") }
func (d *Device) LayerNormForward(out, mean, rstd, inp, weight, bias *kernels.Tensor, N, C int, eps float32) {
	todo("LayerNormForward")
}
func (d *Device) LayerNormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd *kernels.Tensor, N, C int) {
	todo("LayerNormBackward")
}
func (d *Device) ModulateForward(out, x, shift, scale *kernels.Tensor, B, T, C int) { todo("") }
func (d *Device) ModulateBackward(dx, dshift, dscale, dout, x, scale *kernels.Tensor, B, T, C int) {
	todo("")
}
func (d *Device) GateForward(out, x, gate, y *kernels.Tensor, B, T, C int)           { todo("") }
func (d *Device) GateBackward(dy, dgate, dout, gate, y *kernels.Tensor, B, T, C int) { todo("") }
func (d *Device) SoftmaxForward(out, inp *kernels.Tensor, N, C int)                  { todo("") }
func (d *Device) SoftmaxBackward(dinp, dout, out *kernels.Tensor, N, C int)          { todo("") }
func (d *Device) AttentionForward(out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	todo("")
}
func (d *Device) AttentionBackward(dqkv, dout, out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	todo("")
}
func (d *Device) EmbeddingForward(out, table *kernels.Tensor, ids []int32, C int)         { todo("") }
func (d *Device) EmbeddingBackward(dtable, dout *kernels.Tensor, ids []int32, C int)      { todo("") }
func (d *Device) TimestepEmbedding(out, t *kernels.Tensor, B, dim int, maxPeriod float32) { todo("") }
func (d *Device) MeanPoolForward(out, inp, mask *kernels.Tensor, B, T, C int)             { todo("") }
func (d *Device) MeanPoolBackward(dinp, dout, mask *kernels.Tensor, B, T, C int)          { todo("") }
func (d *Device) Patchify(out, inp *kernels.Tensor, B, T, C, H, W, pt, p int)             { todo("") }
func (d *Device) Unpatchify(out, inp *kernels.Tensor, B, T, C, H, W, pt, p int)           { todo("") }
func (d *Device) Permute(out, inp *kernels.Tensor, shape, perm []int)                     { todo("") }
func (d *Device) Concat(out, a, b *kernels.Tensor, outer, na, nb int)                     { todo("") }
func (d *Device) Split(a, b, inp *kernels.Tensor, outer, na, nb int)                      { todo("") }
func (d *Device) Sum(x *kernels.Tensor) float64                                           { todo(""); return 0 }
func (d *Device) SumSquares(x *kernels.Tensor) float64                                    { todo(""); return 0 }
func (d *Device) MSEForward(loss, pred, target *kernels.Tensor, B, D int)                 { todo("") }
func (d *Device) MSEBackward(dpred, dloss, pred, target *kernels.Tensor, B, D int)        { todo("") }
func (d *Device) AdamW(param, grad, m, v *kernels.Tensor, h kernels.AdamWParams)          { todo("") }
func (d *Device) RandNormal(t *kernels.Tensor, seed, offset uint64)                       { todo("") }
func (d *Device) RandUniform(t *kernels.Tensor, seed, offset uint64)                      { todo("") }
