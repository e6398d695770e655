// Tests of int8 weights: per-row quantization of a hand-computed matrix, the error bound on
// random data, int8 files read back as the float file's tensors, and refusal of I8 tensors
// and scales that do not belong together.
//
// Test: go test ./nn -run Quantize
package nn

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestQuantizeI8HandComputed(t *testing.T) {
	w := []float32{
		0.5, -1.27, 0.01, // absmax 1.27: scale 1.27/127 = 0.01 (the float32 nearest 0.01)
		0, 0, 0, // zeros: scale 0
		127, 2.5, -0.5, // scale 1; ties round to even: 2.5 -> 2, -0.5 -> 0
	}
	q, scale, err := quantizeI8("w", w, 3)
	if err != nil {
		t.Fatal(err)
	}
	var qi []int8
	for _, b := range q {
		qi = append(qi, int8(b))
	}
	if want := []int8{50, -127, 1, 0, 0, 0, 127, 2, 0}; !slices.Equal(qi, want) {
		t.Errorf("q = %v, want %v", qi, want)
	}
	stCheckBits(t, "scale", scale, []float32{0.01, 0, 1})
	// 50*0.01, -127*0.01 and 1*0.01 round back to the float32 weights exactly.
	stCheckBits(t, "dequantized", dequantizeI8(q, scale), []float32{0.5, -1.27, 0.01, 0, 0, 0, 127, 2, 0})
}

func TestQuantizeI8Bound(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const rows, cols = 200, 37
	w := make([]float32, rows*cols)
	for i := range w {
		// Each row at its own magnitude, from 2^-20 to 2^20.
		w[i] = float32(r.NormFloat64() * math.Pow(2, float64(i/cols%41-20)))
	}
	q, scale, err := quantizeI8("w", w, rows)
	if err != nil {
		t.Fatal(err)
	}
	got := dequantizeI8(q, scale)
	for i, v := range w {
		s := float64(scale[i/cols])
		// Half a scale step, plus the float32 rounding of q*scale (half an ulp, 2^-24 relative).
		if d := math.Abs(float64(v) - float64(got[i])); d > s/2+math.Abs(float64(got[i]))*0x1p-24 {
			t.Fatalf("w[%d] = %g -> %g: error %g > scale/2 = %g", i, v, got[i], d, s/2)
		}
	}
	for rr := range rows { // the largest magnitude of each row maps to ±127
		peak := 0
		for _, b := range q[rr*cols : (rr+1)*cols] {
			peak = max(peak, int(math.Abs(float64(int8(b)))))
		}
		if peak != 127 {
			t.Errorf("row %d: max |q| = %d, want 127", rr, peak)
		}
	}
}

// qFloatExample is a small model with matrices, a 3-D tensor, an empty matrix and vectors.
func qFloatExample() []HostTensor {
	r := rand.New(rand.NewPCG(9, 10))
	mk := func(name string, shape ...int) HostTensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(r.NormFloat64())
		}
		return HostTensor{Name: name, DType: F32, Shape: shape, Data: data}
	}
	return []HostTensor{mk("blocks.0.attn.qkv.weight", 12, 4), mk("blocks.0.attn.qkv.bias", 12),
		mk("pos_embed", 1, 3, 4), mk("empty", 0, 5), mk("scale")}
}

func TestQuantizeI8FileRoundTrip(t *testing.T) {
	float := qFloatExample()
	quant := slices.Clone(float)
	for i := range quant {
		if len(quant[i].Shape) >= 2 {
			quant[i].DType = I8
		}
	}
	var fb, qb bytes.Buffer
	if err := (&Checkpoint{Tensors: float}).Encode(&fb); err != nil {
		t.Fatal(err)
	}
	if err := (&Checkpoint{Tensors: quant, Extra: map[string]string{"dims": "vq"}}).Encode(&qb); err != nil {
		t.Fatal(err)
	}

	// The file holds q and the scales of each quantized tensor.
	f := stMustParse(t, "int8.safetensors", qb.Bytes())
	if w, s := f.Tensor("blocks.0.attn.qkv.weight"), f.Tensor("blocks.0.attn.qkv.weight.q_scale"); w == nil || s == nil ||
		w.DType != I8 || !slices.Equal(w.Shape, []int{12, 4}) || s.DType != F32 || !slices.Equal(s.Shape, []int{12}) {
		t.Fatalf("file tensors: weight %+v, scales %+v", w, s)
	}
	if s := f.Tensor("pos_embed.q_scale"); s == nil || !slices.Equal(s.Shape, []int{1}) {
		t.Fatalf("pos_embed scales %+v", s)
	}

	fc, err := ReadCheckpoint("f32.safetensors", fb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	qc, err := ReadCheckpoint("int8.safetensors", qb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(qc.Tensors) != len(fc.Tensors) || qc.Extra["dims"] != "vq" {
		t.Fatalf("%d tensors (extra %v), float file has %d", len(qc.Tensors), qc.Extra, len(fc.Tensors))
	}
	// The same names and shapes (in the file's data order, which puts I8 last).
	for _, ft := range fc.Tensors {
		qt := qc.Tensor(ft.Name)
		if qt == nil || !slices.Equal(qt.Shape, ft.Shape) {
			t.Fatalf("tensor %s %v: int8 file has %+v", ft.Name, ft.Shape, qt)
		}
		want, dtype := ft.Data, F32
		if len(ft.Shape) >= 2 {
			q, scale, err := quantizeI8(ft.Name, ft.Data, ft.Shape[0])
			if err != nil {
				t.Fatal(err)
			}
			want, dtype = dequantizeI8(q, scale), I8
		}
		if qt.DType != dtype {
			t.Errorf("%s: dtype %s, want %s", qt.Name, qt.DType, dtype)
		}
		stCheckBits(t, qt.Name, qt.Data, want)
	}

	// It loads into the model the float file loads into.
	md := newCkptModel(11, map[string][]int{"blocks.0.attn.qkv.weight": {12, 4}, "blocks.0.attn.qkv.bias": {12},
		"pos_embed": {1, 3, 4}, "empty": {0, 5}, "scale": {}})
	if err := qc.CopyToParams(md.params); err != nil {
		t.Fatal(err)
	}
}

func TestQuantizeI8ReadErrors(t *testing.T) {
	const (
		w    = `"w":{"dtype":"I8","shape":[2,2],"data_offsets":[8,12]}`
		sF32 = `"w.q_scale":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	)
	scales := binary.LittleEndian.AppendUint32(nil, math.Float32bits(0.5))
	scales = binary.LittleEndian.AppendUint32(scales, math.Float32bits(2))
	q := []byte{1, 0xff, 0x80, 127} // 1, -1, -128, 127

	// The valid pair reads as q * scale, -128 included.
	c, err := ReadCheckpoint("int8.safetensors", stRawFile(`{`+w+`,`+sF32+`}`, append(slices.Clone(scales), q...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tensors) != 1 || c.Tensors[0].Name != "w" {
		t.Fatalf("tensors %+v", c.Tensors)
	}
	stCheckBits(t, "w", c.Tensors[0].Data, []float32{0.5, -0.5, -256, 254})

	cases := []struct {
		name string
		buf  []byte
		want string
	}{
		{"no scales", stRawFile(`{"w":{"dtype":"I8","shape":[2,2],"data_offsets":[0,4]}}`, q),
			`tensor "w": I8 without its scales "w.q_scale"`},
		{"scales BF16", stRawFile(`{`+w[:len(w)-6]+`4,8]},"w.q_scale":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, append(scales[:4:4], q...)),
			`tensor "w": its scales "w.q_scale" are BF16 [2], want F32 [2]`},
		{"scales shape", stRawFile(`{`+w+`,"w.q_scale":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}}`, append(slices.Clone(scales), q...)),
			`tensor "w": its scales "w.q_scale" are F32 [1 2], want F32 [2]`},
		{"scales of a float tensor", stRawFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},`+sF32+`}`, append(slices.Clone(scales), q...)),
			`tensor "w.q_scale": I8 scales without their I8 tensor "w"`},
		{"scales alone", stRawFile(`{`+sF32+`}`, scales),
			`tensor "w.q_scale": I8 scales without their I8 tensor "w"`},
		{"scalar", stRawFile(`{"w":{"dtype":"I8","shape":[],"data_offsets":[0,1]}}`, q[:1]),
			`tensor "w": an I8 tensor needs a first dimension`},
	}
	for _, c := range cases {
		_, err := ReadCheckpoint("int8.safetensors", c.buf)
		if err == nil || !strings.HasPrefix(err.Error(), "load int8.safetensors: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want load int8.safetensors: ...%s", c.name, err, c.want)
		}
	}
}

func TestQuantizeI8WriteErrors(t *testing.T) {
	cases := []struct {
		in   HostTensor
		want string
	}{
		{HostTensor{Name: "w", DType: I8, Shape: []int{2, 2}, Data: []float32{1, 2, float32(math.Inf(-1)), 0}}, `tensor "w": element 2 is -Inf; I8 stores finite values only`},
		{HostTensor{Name: "w", DType: I8, Shape: []int{1, 2}, Data: []float32{stNan, 0}}, `tensor "w": element 0 is NaN`},
		{HostTensor{Name: "s", DType: I8, Data: []float32{1}}, `tensor "s": I8 needs a first dimension`},
		{HostTensor{Name: "w.q_scale", DType: F32, Shape: []int{1}, Data: []float32{1}}, `tensor "w.q_scale": names ending in ".q_scale" are reserved`},
	}
	for _, c := range cases {
		var b bytes.Buffer
		err := WriteSafetensors(&b, []HostTensor{c.in}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.in.Name, err, c.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: wrote %d bytes before failing", c.in.Name, b.Len())
		}
	}
}
