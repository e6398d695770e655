// A small builder for ONNX graphs on top of the generated onnx.proto code: named nodes,
// float and int64 constants (initializers), attributes, and the model wrapper (IR 9,
// opset 17, which ONNX Runtime 1.16 and later load).
//
// Test: go test ./rewards/onnx -run Export
package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	pb "github.com/alignkit/align/rewards/onnx/internal/onnxpb"
)

// The versions align writes: IR 9 with the default-domain opset 17 (LayerNormalization is in
// 17; ONNX Runtime 1.30 rejects IR 14, the newest).
const (
	irVersion    = 9
	opsetVersion = 17
)

// graph collects the nodes and initializers of one ONNX graph.
type graph struct {
	nodes []*pb.NodeProto
	inits []*pb.TensorProto
	seen  map[string]bool
	count map[string]int
}

func newGraph() *graph { return &graph{seen: map[string]bool{}, count: map[string]int{}} }

// fresh returns a value name based on hint that is not used yet ("ln", "ln_1", ...).
func (g *graph) fresh(hint string) string {
	name := hint
	for g.seen[name] {
		g.count[hint]++
		name = fmt.Sprintf("%s_%d", hint, g.count[hint])
	}
	g.seen[name] = true
	return name
}

// op appends a node with one output and returns the output's name.
func (g *graph) op(opType, hint string, inputs []string, attrs ...*pb.AttributeProto) string {
	out := g.fresh(hint)
	g.nodes = append(g.nodes, &pb.NodeProto{
		OpType:    proto.String(opType),
		Name:      proto.String(out),
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

// floats adds a float32 initializer of shape dims and returns its name.
func (g *graph) floats(hint string, dims []int64, data []float32) string {
	if n := numel(dims); n != int64(len(data)) {
		panic(fmt.Sprintf("onnx: initializer %s: %d values for shape %v", hint, len(data), dims))
	}
	raw := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	name := g.fresh(hint)
	g.inits = append(g.inits, &pb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(pb.TensorProto_FLOAT)), RawData: raw})
	return name
}

// scalar adds a float32 scalar initializer.
func (g *graph) scalar(hint string, v float32) string { return g.floats(hint, nil, []float32{v}) }

// ints adds an int64 initializer of shape dims (nil: a scalar) and returns its name.
func (g *graph) ints(hint string, dims []int64, data ...int64) string {
	if n := numel(dims); n != int64(len(data)) {
		panic(fmt.Sprintf("onnx: initializer %s: %d values for shape %v", hint, len(data), dims))
	}
	raw := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	name := g.fresh(hint)
	g.inits = append(g.inits, &pb.TensorProto{Name: proto.String(name), Dims: dims,
		DataType: proto.Int32(int32(pb.TensorProto_INT64)), RawData: raw})
	return name
}

// vec adds a 1-D int64 initializer (shapes, axes, pads).
func (g *graph) vec(hint string, data ...int64) string {
	return g.ints(hint, []int64{int64(len(data))}, data...)
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

func attrInt(name string, v int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrFloat(name string, v float32) *pb.AttributeProto {
	return &pb.AttributeProto{Name: proto.String(name), Type: pb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// valueInfo describes a graph input or output: element type and dims, where a negative dim
// is the symbolic batch dimension "batch".
func valueInfo(name string, elem pb.TensorProto_DataType, dims ...int64) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		dim := &pb.TensorShapeProto_Dimension{}
		if d < 0 {
			dim.Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: "batch"}
		} else {
			dim.Value = &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &pb.ValueInfoProto{Name: proto.String(name), Type: &pb.TypeProto{
		Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)), Shape: shape}}}}
}

// model wraps the graph into a ModelProto with align's IR and opset versions.
func (g *graph) model(name, doc string, inputs, outputs []*pb.ValueInfoProto, meta map[string]string) *pb.ModelProto {
	m := &pb.ModelProto{
		IrVersion:       proto.Int64(irVersion),
		ProducerName:    proto.String("align"),
		ProducerVersion: proto.String("1"),
		DocString:       proto.String(doc),
		OpsetImport:     []*pb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opsetVersion)}},
		Graph: &pb.GraphProto{
			Name:        proto.String(name),
			Node:        g.nodes,
			Initializer: g.inits,
			Input:       inputs,
			Output:      outputs,
		},
	}
	for _, k := range sortedKeys(meta) {
		m.MetadataProps = append(m.MetadataProps, &pb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(meta[k])})
	}
	return m
}

// ---- layers ----

// linear is y = x W^T + b for a weight (Out, In) stored row-major, on x of (B, In), or of
// (B, tokens, In) where tokens > 0: one Gemm (transB) on the rows, which adds the bias in
// the product, where MatMul then Add would pass over y again (ONNX Runtime fuses the two
// only on 2-D inputs); the reshapes around it move no data.
func (g *graph) linear(hint, x string, tokens int, w []float32, out, in int, b []float32) string {
	if tokens > 0 {
		x = g.op("Reshape", hint+".rows", []string{x, g.vec(hint+".rows_shape", -1, int64(in))})
	}
	ins := []string{x, g.floats(hint+".weight", []int64{int64(out), int64(in)}, w)}
	if b != nil {
		ins = append(ins, g.floats(hint+".bias", []int64{int64(out)}, b))
	}
	y := g.op("Gemm", hint+".gemm", ins, attrInt("transB", 1))
	if tokens > 0 {
		y = g.op("Reshape", hint+".out", []string{y, g.vec(hint+".out_shape", -1, int64(tokens), int64(out))})
	}
	return y
}

// layerNorm normalises the last axis with a learned scale and shift (LayerNormalization,
// opset 17).
func (g *graph) layerNorm(hint, x string, w, b []float32, eps float32) string {
	C := int64(len(w))
	return g.op("LayerNormalization", hint, []string{x,
		g.floats(hint+".weight", []int64{C}, w), g.floats(hint+".bias", []int64{C}, b)},
		attrInt("axis", -1), attrFloat("epsilon", eps))
}

// geluTanh is 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), nn.MLP's activation, from
// opset-17 elementwise ops (Gelu with approximate="tanh" arrived in opset 20), written as
// (0.5 u) (1 + tanh((sqrt(2/pi) u) (1 + 0.044715 u u))): the form, and the constants' float32
// values, that ONNX Runtime's FastGelu fusion recognises, so that it runs as one kernel
// instead of eight elementwise passes.
func (g *graph) geluTanh(hint, u string) string {
	cu := g.op("Mul", hint+".c1u", []string{u, g.scalar(hint+".c1", 0.044715)})
	cu2 := g.op("Mul", hint+".c1u2", []string{cu, u})
	poly := g.op("Add", hint+".poly", []string{cu2, g.scalar(hint+".one", 1)})
	su := g.op("Mul", hint+".c0u", []string{u, g.scalar(hint+".c0", float32(math.Sqrt(2/math.Pi)))})
	t := g.op("Tanh", hint+".tanh", []string{g.op("Mul", hint+".arg", []string{poly, su})})
	half := g.op("Mul", hint+".half", []string{u, g.scalar(hint+".c_half", 0.5)})
	return g.op("Mul", hint, []string{g.op("Add", hint+".one_plus", []string{t, g.scalar(hint+".c_one", 1)}), half})
}
