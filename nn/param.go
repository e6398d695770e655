// Param: a named trainable tensor and its gradient (see doc.go for the package overview).
//
// Test: go test ./nn

package nn

import "github.com/alignkit/align/kernels"

// Param is one trainable tensor and its gradient. G is nil for a frozen parameter.
type Param struct {
	Name string          // dotted path, e.g. "blocks.3.attn.qkv.weight"
	W    *kernels.Tensor // value
	G    *kernels.Tensor // gradient, same shape as W; nil when frozen
}
