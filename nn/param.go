// Package nn holds the layers of align's models as structs with explicit Forward and
// Backward passes in the llm.c manner: Forward caches what Backward needs; Backward
// writes (=) activation gradients and accumulates (+=) parameter gradients. Layers only
// call kernels.Device operations, so they run unchanged on every device.
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
