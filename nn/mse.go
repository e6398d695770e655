// MSELoss: the per-sample mean squared error of flow matching, whose per-sample values are
// what Flow-DPO and Flow-RWR weight.
//
// Test: go test ./nn -run MSE

package nn

import (
	"fmt"

	"github.com/alignkit/align/kernels"
)

// MSELoss computes, for pred and target (B, ...) with D elements per sample,
//
//	loss[b] = (1/D) sum_d (pred[b,d] - target[b,d])^2          (B)
//
// Backward: dpred[b,d] = dloss[b] * 2 (pred[b,d] - target[b,d]) / D. The target gets no
// gradient.
type MSELoss struct {
	dev          kernels.Device
	B, D         int
	pred, target *kernels.Tensor // (B,D) inputs of the last Forward
	loss         buffer          // (B)
	dpred        buffer          // pred's shape
}

// NewMSELoss returns the loss on dev.
func NewMSELoss(dev kernels.Device) *MSELoss { return &MSELoss{dev: dev} }

// Forward returns loss (B) for pred and target of the same shape (B, ...).
func (l *MSELoss) Forward(pred, target *kernels.Tensor) *kernels.Tensor {
	if !kernels.SameShape(pred, target) || len(pred.Shape) == 0 {
		panic(fmt.Sprintf("nn: MSELoss.Forward: pred %v, target %v", pred, target))
	}
	l.B = pred.Shape[0]
	l.D = pred.Len() / max(l.B, 1)
	l.pred, l.target = pred, target
	loss := l.loss.get(l.dev, l.B)
	l.dev.MSEForward(loss, pred, target, l.B, l.D)
	return loss
}

// Backward takes dloss (B) and returns dpred with pred's shape.
func (l *MSELoss) Backward(dloss *kernels.Tensor) *kernels.Tensor {
	mustShape("MSELoss.Backward", dloss, l.B)
	dpred := l.dpred.get(l.dev, l.pred.Shape...)
	l.dev.MSEBackward(dpred, dloss, l.pred, l.target, l.B, l.D)
	return dpred
}
