// Int8 weights: symmetric per-row absmax quantization, which stores a model file at about
// half of BF16's size (align export safetensors --dtype int8). A scale per row (first
// dimension) follows each row's own range, so one row of large weights does not coarsen
// the others, for 4 bytes a row; without a zero point, dequantizing is one product.
//
// A float tensor NAME of shape (R, ...) is stored as two tensors of the safetensors file:
//
//	NAME          I8   (R, ...)  q, int8 two's complement
//	NAME.q_scale  F32  (R)       one scale per row (first dimension)
//
// For row r with elements w_rj (float32):
//
//	scale_r = max_j |w_rj| / 127                                  (float32 division)
//	q_rj    = clamp(round_half_to_even(w_rj / scale_r), -127, 127)  (exact quotient)
//	w'_rj   = q_rj * scale_r                                       (float32 product)
//
// so that |w_rj - w'_rj| <= scale_r / 2, plus the float32 rounding of the product, wherever
// scale_r is a normal float32 (max_j |w_rj| >= 127 * 2^-126; smaller weights are zero for
// any model). A row of zeros gets scale 0 and q 0, as does a row whose scale rounds to 0.
// The range is symmetric: -128 is never written, though a file holding it reads as
// -128 * scale_r. Inf and NaN have no int8 form: writing them is an error.
//
// Writing a HostTensor of DType I8 quantizes its Data (stLayoutTensors); the suffix
// ".q_scale" is reserved for the scales. Reading (floatTensors, under ReadCheckpoint)
// dequantizes every I8 tensor with its scales and drops the scales, so a checkpoint read
// from an int8 file holds the same tensors, names and shapes as one read from the float
// file, with DType I8. An I8 tensor without its scales, scales that are not F32 of shape
// (R), and scales without their I8 tensor are errors naming the tensor.
//
// Test: go test ./nn -run Quantize

package nn

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// qScaleSuffix ends the name of the tensor that holds an I8 tensor's row scales.
const qScaleSuffix = ".q_scale"

// quantizeI8 quantizes w, row-major with rows rows of equal length, to int8 bytes q and
// one scale per row (the formula above). name labels errors.
func quantizeI8(name string, w []float32, rows int) (q []byte, scale []float32, err error) {
	q = make([]byte, len(w))
	scale = make([]float32, rows)
	if rows == 0 {
		return q, scale, nil
	}
	cols := len(w) / rows
	for r := range rows {
		row := w[r*cols : (r+1)*cols]
		var amax float32
		for j, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, nil, fmt.Errorf("tensor %q: element %d is %v; I8 stores finite values only", name, r*cols+j, v)
			}
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		s := amax / 127
		scale[r] = s
		if s == 0 {
			continue // q stays 0
		}
		for j, v := range row {
			// float64 holds the quotient of two float32 closely enough that rounding it
			// to an integer gives the same result as rounding the exact quotient.
			x := math.RoundToEven(float64(v) / float64(s))
			q[r*cols+j] = byte(int8(min(max(x, -127), 127)))
		}
	}
	return q, scale, nil
}

// dequantizeI8 returns w' = q * scale row by row, q being int8 bytes of len(scale) rows.
func dequantizeI8(q []byte, scale []float32) []float32 {
	w := make([]float32, len(q))
	if len(scale) == 0 {
		return w
	}
	cols := len(q) / len(scale)
	for r, s := range scale {
		for j := r * cols; j < (r+1)*cols; j++ {
			w[j] = float32(int8(q[j])) * s
		}
	}
	return w
}

// floatTensors reads every tensor of f as float32, in file order: float dtypes converted,
// I8 tensors dequantized with their NAME.q_scale scales, which are not returned themselves.
func (f *SafetensorsFile) floatTensors() ([]HostTensor, error) {
	byName := make(map[string]*SafetensorsTensor, len(f.Tensors))
	for i := range f.Tensors {
		byName[f.Tensors[i].Name] = &f.Tensors[i]
	}
	out := make([]HostTensor, 0, len(f.Tensors))
	for i := range f.Tensors {
		t := &f.Tensors[i]
		var data []float32
		var err error
		switch {
		case strings.HasSuffix(t.Name, qScaleSuffix):
			base := strings.TrimSuffix(t.Name, qScaleSuffix)
			if b := byName[base]; b == nil || b.DType != I8 {
				return nil, fmt.Errorf("tensor %q: I8 scales without their I8 tensor %q", t.Name, base)
			}
			continue // read with its I8 tensor
		case t.DType == I8:
			data, err = t.dequantizeI8(byName[t.Name+qScaleSuffix])
		default:
			data, err = t.Float32()
		}
		if err != nil {
			return nil, err
		}
		out = append(out, HostTensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: data})
	}
	return out, nil
}

// dequantizeI8 returns the weights of I8 tensor t given its scales s (nil when the file
// has none).
func (t *SafetensorsTensor) dequantizeI8(s *SafetensorsTensor) ([]float32, error) {
	scaleName := t.Name + qScaleSuffix
	switch {
	case len(t.Shape) == 0:
		return nil, fmt.Errorf("tensor %q: an I8 tensor needs a first dimension (rows) for its scales; a scalar has none", t.Name)
	case s == nil:
		return nil, fmt.Errorf("tensor %q: I8 without its scales %q", t.Name, scaleName)
	case s.DType != F32 || !slices.Equal(s.Shape, t.Shape[:1]):
		return nil, fmt.Errorf("tensor %q: its scales %q are %s %v, want F32 [%d]", t.Name, scaleName, s.DType, s.Shape, t.Shape[0])
	}
	scale, err := s.Float32()
	if err != nil {
		return nil, err
	}
	return dequantizeI8(t.Data, scale), nil
}
