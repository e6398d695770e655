// Operations whose kernels are not written yet.
package cuda

import "github.com/alignkit/align/kernels"

func todo(op string) { panic("cuda: " + op + " is not implemented yet") }

func (d *Device) AttentionForward(out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	todo("AttentionForward")
}
func (d *Device) AttentionBackward(dqkv, dout, out, lse, qkv, keyBias *kernels.Tensor, B, T, NH, HS int) {
	todo("AttentionBackward")
}
