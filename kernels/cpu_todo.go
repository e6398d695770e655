// Operations of the CPU device not written yet. Each stub is removed when its *_cpu.go
// file lands; this file disappears with the last one.
package kernels

func todo(op string) { panic("kernels: CPU " + op + " not implemented yet") }

func (d *CPU) Gemm(transA, transB bool, m, n, k int, alpha float32, a, b *Tensor, beta float32, c *Tensor) {
	todo("Gemm")
}
func (d *CPU) GemmStridedBatched(transA, transB bool, m, n, k int, alpha float32, a *Tensor, strideA int,
	b *Tensor, strideB int, beta float32, c *Tensor, strideC int, batch int) {
	todo("GemmStridedBatched")
}
