// Tests of the safetensors reader and writer: exact F32 round trips, F16/BF16 rounding
// (ties to even, subnormals, Inf, NaN, -0), a file written by the Python reference
// implementation, and refusal of truncated and corrupt files with errors that name the file.
//
// Test: go test ./nn -run Safetensors
package nn

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/x448/float16"
)

// stBytes writes tensors with WriteSafetensors and fails the test on error.
func stBytes(t testing.TB, tensors []HostTensor, md map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := WriteSafetensors(&b, tensors, md); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stRawFile assembles a file from a header string and data bytes.
func stRawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func stMustParse(t *testing.T, name string, buf []byte) *SafetensorsFile {
	t.Helper()
	f, err := ParseSafetensors(name, buf)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func stReadFloats(t *testing.T, f *SafetensorsFile, name string) []float32 {
	t.Helper()
	st := f.Tensor(name)
	if st == nil {
		t.Fatalf("no tensor %q", name)
	}
	v, err := st.Float32()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// stSameBits reports whether got equals want bit for bit, every NaN counting as equal.
func stSameBits(got, want float32) bool {
	if want != want {
		return got != got
	}
	return math.Float32bits(got) == math.Float32bits(want)
}

func stCheckBits(t *testing.T, label string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", label, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if !stSameBits(got[i], want[i]) {
			t.Errorf("%s[%d] = %g (%#08x), want %g (%#08x)", label, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			if bad++; bad == 10 {
				t.FailNow()
			}
		}
	}
}

var (
	stInf  = float32(math.Inf(1))
	stNan  = float32(math.NaN())
	stNegZ = float32(math.Copysign(0, -1))
)

func TestSafetensorsF32RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, stNegZ, 1, -1, stInf, -stInf, stNan, math.SmallestNonzeroFloat32, math.MaxFloat32,
		math.Float32frombits(0x7f812345)} // a signalling NaN keeps its payload in F32
	for range 1000 {
		vals = append(vals, math.Float32frombits(r.Uint32()))
	}
	in := []HostTensor{
		{Name: "w", DType: F32, Shape: []int{len(vals) / 2, 2}, Data: vals},
		{Name: "scalar", DType: F32, Shape: nil, Data: []float32{3}},
		{Name: "empty", DType: F32, Shape: []int{0, 5}, Data: nil},
	}
	buf := stBytes(t, in, map[string]string{"k": "v <&> \u00e9"})
	f := stMustParse(t, "rt.safetensors", buf)
	if f.Metadata["k"] != "v <&> \u00e9" || len(f.Metadata) != 1 {
		t.Errorf("metadata %v", f.Metadata)
	}
	got := stReadFloats(t, f, "w")
	for i := range vals { // exact bits, NaN payloads included
		if math.Float32bits(got[i]) != math.Float32bits(vals[i]) {
			t.Fatalf("w[%d] = %#08x, want %#08x", i, math.Float32bits(got[i]), math.Float32bits(vals[i]))
		}
	}
	if s := f.Tensor("scalar"); len(s.Shape) != 0 || stReadFloats(t, f, "scalar")[0] != 3 {
		t.Errorf("scalar: shape %v", s.Shape)
	}
	if e := f.Tensor("empty"); !slices.Equal(e.Shape, []int{0, 5}) || len(e.Data) != 0 {
		t.Errorf("empty: shape %v, %d bytes", e.Shape, len(e.Data))
	}
	if !slices.Equal(f.Tensor("w").Shape, []int{len(vals) / 2, 2}) {
		t.Errorf("w shape %v", f.Tensor("w").Shape)
	}
}

func TestSafetensorsLayout(t *testing.T) {
	// Larger elements first, then by name; header padded to 8 bytes; offsets contiguous.
	in := []HostTensor{
		{Name: "c", DType: BF16, Shape: []int{3}, Data: make([]float32, 3)},
		{Name: "b", DType: F32, Shape: []int{1}, Data: make([]float32, 1)},
		{Name: "a", DType: F16, Shape: []int{1}, Data: make([]float32, 1)},
		{Name: "d", DType: F32, Shape: []int{2}, Data: make([]float32, 2)},
	}
	buf := stBytes(t, in, nil)
	if n := binary.LittleEndian.Uint64(buf); n%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", n)
	}
	f := stMustParse(t, "layout.safetensors", buf)
	var names []string
	for _, st := range f.Tensors {
		names = append(names, st.Name)
	}
	if want := []string{"b", "d", "a", "c"}; !slices.Equal(names, want) {
		t.Errorf("order %v, want %v", names, want)
	}
	if f.Metadata != nil {
		t.Errorf("metadata %v, want none", f.Metadata)
	}
	if !bytes.Contains(buf, []byte(`{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},`)) {
		t.Errorf("header %q", buf[8:8+binary.LittleEndian.Uint64(buf)])
	}
}

// stF16Values are exactly representable in F16: ±0, ±Inf, NaN, min subnormal, max
// subnormal, min normal, max, and a few ordinary numbers.
var stF16Values = []float32{0, stNegZ, stInf, -stInf, stNan, 0x1p-24, -0x1p-24, 1023 * 0x1p-24, 0x1p-14, 65504, -65504,
	1, -2.5, 0.333251953125, 1 + 0x1p-10}

func TestSafetensorsF16(t *testing.T) {
	in := slices.Clone(stF16Values)
	want := slices.Clone(stF16Values)
	// Rounding to nearest, ties to even.
	cases := [][2]float32{
		{1 + 0x1p-11, 1},                     // halfway, rounds to even 1
		{1 + 3*0x1p-11, 1 + 0x1p-9},          // halfway, rounds to even 1+2^-9
		{1 + 0x1p-11 + 0x1p-20, 1 + 0x1p-10}, // above halfway
		{65519.99, 65504},                    // below the halfway point to Inf
		{65520, stInf},                       // halfway between 65504 and 2^16: ties to even = Inf
		{1e6, stInf}, {-1e6, -stInf},
		{0x1p-25, 0},                 // halfway between 0 and min subnormal: to even 0
		{-0x1p-25, stNegZ},           // keeps the sign
		{3 * 0x1p-25, 2 * 0x1p-24},   // halfway between 1 and 2 subnormal units: to 2
		{0x1p-25 + 0x1p-30, 0x1p-24}, // above halfway
		{0x1p-14 - 0x1p-26, 0x1p-14}, // rounds up from the subnormal range to min normal
		{1e-10, 0},
	}
	for _, c := range cases {
		in = append(in, c[0])
		want = append(want, c[1])
	}
	buf := stBytes(t, []HostTensor{{Name: "h", DType: F16, Shape: []int{len(in)}, Data: in}}, nil)
	got := stReadFloats(t, stMustParse(t, "f16.safetensors", buf), "h")
	stCheckBits(t, "f16", got, want)

	// Every F16 bit pattern survives F16 -> float32 -> F16.
	for u := range 1 << 16 {
		h := float16.Frombits(uint16(u))
		back := float16.Fromfloat32(h.Float32())
		if h.IsNaN() {
			if !back.IsNaN() {
				t.Fatalf("%#04x: NaN became %#04x", u, back.Bits())
			}
			continue
		}
		if back.Bits() != uint16(u) {
			t.Fatalf("%#04x -> %g -> %#04x", u, h.Float32(), back.Bits())
		}
	}

	// Random values: relative error at most 2^-11 in the normal range.
	r := rand.New(rand.NewPCG(3, 4))
	vals := make([]float32, 2000)
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(28)-14)))
	}
	buf = stBytes(t, []HostTensor{{Name: "h", DType: F16, Shape: []int{len(vals)}, Data: vals}}, nil)
	got = stReadFloats(t, stMustParse(t, "f16.safetensors", buf), "h")
	for i, v := range vals {
		if a := math.Abs(float64(v)); a >= 0x1p-14 && a <= 65504 {
			if rel := math.Abs(float64(got[i])-float64(v)) / a; rel > 0x1p-11 {
				t.Fatalf("%g -> %g: relative error %g", v, got[i], rel)
			}
		}
	}
}

func TestSafetensorsBF16(t *testing.T) {
	// Every BF16 bit pattern survives BF16 -> float32 -> BF16; NaNs stay NaN.
	for u := range 1 << 16 {
		f := stBF16ToFloat32(uint16(u))
		back := stBF16FromFloat32(f)
		if f != f {
			if g := stBF16ToFloat32(back); g == g {
				t.Fatalf("%#04x: NaN became %#04x", u, back)
			}
			continue
		}
		if back != uint16(u) {
			t.Fatalf("%#04x -> %g -> %#04x", u, f, back)
		}
	}
	bf := func(u uint32) float32 { return math.Float32frombits(u) }
	cases := [][2]float32{
		{0, 0}, {stNegZ, stNegZ}, {stInf, stInf}, {-stInf, -stInf}, {1, 1}, {-2.5, -2.5},
		{1 + 0x1p-8, 1},                    // halfway: even (mantissa 0)
		{1 + 0x1p-7 + 0x1p-8, 1 + 0x1p-6},  // halfway: even (mantissa 2)
		{-(1 + 0x1p-8), -1},                // negative tie
		{1 + 0x1p-8 + 0x1p-20, 1 + 0x1p-7}, // just above halfway
		{1 + 0x1p-8 - 0x1p-20, 1},          // just below halfway
		{bf(0x7f7fffff), stInf},            // max float32 rounds up to Inf
		{bf(0x7f7f7fff), bf(0x7f7f0000)},   // stays finite
		{bf(0x00008000), 0},                // subnormal tie to even 0
		{bf(0x00018000), bf(0x00020000)},   // subnormal tie to even 2
		{bf(0x00010000), bf(0x00010000)},   // min BF16 subnormal is exact
		{bf(0x80008001), bf(0x80010000)},   // negative subnormal above halfway
	}
	var in, want []float32
	for _, c := range cases {
		in = append(in, c[0])
		want = append(want, c[1])
	}
	in = append(in, stNan, bf(0x7f800001), bf(0xff812345)) // NaNs, signalling ones too
	want = append(want, stNan, stNan, stNan)
	buf := stBytes(t, []HostTensor{{Name: "b", DType: BF16, Shape: []int{len(in)}, Data: in}}, nil)
	got := stReadFloats(t, stMustParse(t, "bf16.safetensors", buf), "b")
	stCheckBits(t, "bf16", got, want)
	if math.Float32bits(got[len(got)-1])>>31 != 1 {
		t.Errorf("negative NaN lost its sign")
	}

	// Random values: relative error at most 2^-8.
	r := rand.New(rand.NewPCG(5, 6))
	for range 10000 {
		v := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(200)-100)))
		g := stBF16ToFloat32(stBF16FromFloat32(v))
		if rel := math.Abs(float64(g)-float64(v)) / math.Abs(float64(v)); rel > 0x1p-8 {
			t.Fatalf("%g -> %g: relative error %g", v, g, rel)
		}
	}
}

func TestSafetensorsF8(t *testing.T) {
	for b := range 256 {
		v := stF8E4M3ToFloat32(byte(b))
		if b&0x7f == 0x7f {
			if v == v {
				t.Errorf("E4M3 %#02x = %g, want NaN", b, v)
			}
			continue
		}
		if math.IsInf(float64(v), 0) || math.Abs(float64(v)) > 448 {
			t.Errorf("E4M3 %#02x = %g out of range", b, v)
		}
	}
}

// TestSafetensorsPythonFixture reads testdata/python.safetensors, written by the safetensors
// Python package (testdata/make_python_fixture.py).
func TestSafetensorsPythonFixture(t *testing.T) {
	buf, err := os.ReadFile("testdata/python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	f := stMustParse(t, "python.safetensors", buf)
	if f.Metadata["format"] != "np" || f.Metadata["source"] != "make_python_fixture.py" {
		t.Errorf("metadata %v", f.Metadata)
	}
	bf := func(u uint32) float32 { return math.Float32frombits(u) }
	want := map[string][]float32{
		"f32":     {0, 1.5, -2.25, 1e-3, 3.4e38, stNegZ, stInf, -stInf, stNan},
		"f16":     {65504, 0x1p-14, 0x1p-24, -3 * 0x1p-24, -stInf, stNan, stNegZ},
		"f64":     {float32(0.1), stInf, stNegZ, 0x1p-149},
		"scalar":  {7},
		"empty":   {},
		"bf16":    {1, -2.5, bf(0x7f7f0000), bf(0x00010000), stInf, stNan, stNegZ},
		"f8_e4m3": {1, 448, -0x1p-9, stNan},
		"f8_e5m2": {1, stInf, 0x1p-16, -57344},
	}
	shapes := map[string][]int{"f32": {3, 3}, "scalar": {}, "empty": {0, 3}, "bf16": {1, 7}}
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for name, w := range want {
		stCheckBits(t, name, stReadFloats(t, f, name), w)
		if s, ok := shapes[name]; ok && !slices.Equal(f.Tensor(name).Shape, s) {
			t.Errorf("%s: shape %v, want %v", name, f.Tensor(name).Shape, s)
		}
	}
}

// stSmallFile is a valid two-tensor file with metadata.
func stSmallFile(t testing.TB) []byte {
	return stBytes(t, []HostTensor{
		{Name: "blocks.0.attn.qkv.weight", DType: F32, Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "norm.bias", DType: BF16, Shape: []int{3}, Data: []float32{-1, 0.5, 2}},
	}, map[string]string{"note": "small"})
}

func TestSafetensorsCorrupt(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	huge := binary.LittleEndian.AppendUint64(nil, 1<<63)
	huge = append(huge, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`...)
	cases := []struct {
		name string
		buf  []byte
		want string
	}{
		{"empty", nil, "file is 0 bytes, too short"},
		{"short", []byte{1, 2, 3}, "file is 3 bytes"},
		{"header 2^63", huge, "header length 9223372036854775808 is past the end of the file"},
		{"header past end", stRawFile(`{}`, nil)[:9], "header length 2 is past the end"},
		{"not json", stRawFile(`hello   `, nil), `header does not start with '{' (starts with "hello   ")`},
		{"array", stRawFile(`[1,2]`, nil), "header does not start with '{'"},
		{"null", stRawFile(`null`, nil), "header does not start with '{'"},
		{"empty header", stRawFile(``, nil), "header does not start with '{'"},
		{"unclosed", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, f32(1)), "header ends early"},
		{"bad json", stRawFile(`{"a":{"dtype":"F32",}}`, nil), `header is not valid JSON (at key "a")`},
		{"bytes after object", stRawFile(`{} {}`, nil), "bytes after the JSON object"},
		{"nul padding", stRawFile("{}\x00\x00", nil), "bytes after the JSON object"},
		{"duplicate", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2)), `duplicate key "a"`},
		{"unknown dtype", stRawFile(`{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, f32(1)), `tensor "a": unknown dtype "F7"`},
		{"no dtype", stRawFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, f32(1)), `tensor "a": entry has no "dtype"`},
		{"no shape", stRawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f32(1)), `tensor "a": entry has no "shape"`},
		{"no offsets", stRawFile(`{"a":{"dtype":"F32","shape":[1]}}`, f32(1)), `tensor "a": entry has no "data_offsets"`},
		{"extra key", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, f32(1)), `tensor "a": invalid entry: json: unknown field "x"`},
		{"entry not object", stRawFile(`{"a":[1]}`, nil), `tensor "a": invalid entry`},
		{"negative dim", stRawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32(1)), `tensor "a": invalid entry`},
		{"float dim", stRawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, f32(1)), `tensor "a": invalid entry`},
		{"three offsets", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32(1)), `data_offsets [0 4 8] must be [begin, end]`},
		{"reversed", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, f32(1)), `data offsets [4, 0) end before they begin`},
		{"past end", stRawFile(`{"blocks.0.attn.qkv.weight":{"dtype":"F32","shape":[475],"data_offsets":[100,2000]}}`, make([]byte, 1024)),
			`tensor "blocks.0.attn.qkv.weight": data offsets [100, 2000) past end of data (1024 bytes); file truncated?`},
		{"huge offsets", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}`, f32(1)), "past end of data"},
		{"shape mismatch", stRawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(2)), `tensor "a": shape [3] of F32 needs 12 bytes but data offsets [0, 8) hold 8`},
		{"shape overflow", stRawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f32(1)), "shape [4294967296 4294967296] is too large"},
		{"zero dim, absurd other", stRawFile(`{"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}`, nil), "is too large"},
		{"bytes overflow", stRawFile(`{"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}`, f32(2)), "needs more than 2^64 bytes"},
		{"overlap", stRawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2)), `tensor "b": data offsets [4, 8) overlap tensor "a", which ends at 8`},
		{"same range", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), "overlap tensor"},
		{"gap", stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2)), `tensor "a": data offsets [4, 8) leave a gap of 4 bytes after offset 0`},
		{"trailing data", append(stRawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), 0xff), "1 bytes of trailing data"},
		{"data without tensors", stRawFile(`{}`, f32(1)), "4 bytes of trailing data"},
		{"metadata not strings", stRawFile(`{"__metadata__":{"a":1}}`, nil), `header: __metadata__: value of "a" is 1, not a string`},
		{"metadata null value", stRawFile(`{"__metadata__":{"a":null}}`, nil), `value of "a" is null, not a string`},
		{"metadata array", stRawFile(`{"__metadata__":[]}`, nil), `header: __metadata__: must be an object of strings`},
	}
	for _, c := range cases {
		f, err := ParseSafetensors("bad.safetensors", c.buf)
		if err == nil {
			t.Errorf("%s: parsed (%d tensors), want error %q", c.name, len(f.Tensors), c.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "bad.safetensors: ") || !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q, want bad.safetensors: ...%s", c.name, msg, c.want)
		}
	}

	// Valid edge cases.
	for _, ok := range [][]byte{
		stRawFile(`{}`, nil),
		stRawFile(`{}      `, nil),
		stRawFile(`{"__metadata__":null}`, nil),
		stRawFile(`{"z":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil),
		stRawFile(`{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, f32(2)),
	} {
		if _, err := ParseSafetensors("ok.safetensors", ok); err != nil {
			t.Errorf("%q: %v", ok[8:], err)
		}
	}
	f := stMustParse(t, "int.safetensors", stRawFile(`{"i":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, f32(2)))
	if _, err := f.Tensors[0].Float32(); err == nil || !strings.Contains(err.Error(), `tensor "i": dtype I64 is not a float type`) {
		t.Errorf("I64 as float32: %v", err)
	}
}

// TestSafetensorsTruncated cuts a small file at every length.
func TestSafetensorsTruncated(t *testing.T) {
	buf := stSmallFile(t)
	for n := range len(buf) {
		_, err := ParseSafetensors("cut.safetensors", buf[:n])
		if err == nil {
			t.Fatalf("truncated to %d of %d bytes: parsed", n, len(buf))
		}
		if !strings.HasPrefix(err.Error(), "cut.safetensors: ") {
			t.Fatalf("truncated to %d: error %q does not name the file", n, err)
		}
		if n > len(buf)-24 && !strings.Contains(err.Error(), "file truncated?") { // inside the data
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
	stMustParse(t, "whole.safetensors", buf)
}

// TestSafetensorsFlippedBits flips every bit of a small file's length field and header:
// the parser must never panic, and must refuse the file or return a consistent one.
func TestSafetensorsFlippedBits(t *testing.T) {
	buf := stSmallFile(t)
	hdrEnd := 8 + int(binary.LittleEndian.Uint64(buf))
	accepted := 0
	for i := range hdrEnd {
		for bit := range 8 {
			b := slices.Clone(buf)
			b[i] ^= 1 << bit
			f, err := ParseSafetensors("flip.safetensors", b)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "flip.safetensors: ") {
					t.Fatalf("byte %d bit %d: %q does not name the file", i, bit, err)
				}
				continue
			}
			if i < 8 {
				t.Fatalf("byte %d bit %d of the header length: parsed", i, bit)
			}
			stCheckConsistent(t, f, len(b)-hdrEnd)
			accepted++ // e.g. a changed letter in a name or in the metadata
		}
	}
	t.Logf("%d of %d single-bit flips in the header still parse (names or metadata changed)", accepted, 8*hdrEnd)
}

// stCheckConsistent checks the invariants of a parsed file whose data section has n bytes.
func stCheckConsistent(t testing.TB, f *SafetensorsFile, n int) {
	t.Helper()
	total := 0
	for _, st := range f.Tensors {
		numel := 1
		for _, d := range st.Shape {
			if d < 0 {
				t.Fatalf("tensor %q: shape %v", st.Name, st.Shape)
			}
			numel *= d
		}
		if numel*st.DType.Size() != len(st.Data) {
			t.Fatalf("tensor %q: shape %v of %s with %d bytes", st.Name, st.Shape, st.DType, len(st.Data))
		}
		if stIsFloat(st.DType) {
			v, err := st.Float32()
			if err != nil || len(v) != numel {
				t.Fatalf("tensor %q: %d values, %v", st.Name, len(v), err)
			}
		}
		total += len(st.Data)
	}
	if total != n {
		t.Fatalf("tensors hold %d bytes of a %d-byte data section", total, n)
	}
}

func TestSafetensorsWriteErrors(t *testing.T) {
	cases := []struct {
		in   []HostTensor
		want string
	}{
		{[]HostTensor{{Name: "a", DType: F64, Shape: []int{1}, Data: []float32{1}}}, `tensor "a": cannot write dtype "F64"`},
		{[]HostTensor{{Name: "a", DType: "", Shape: []int{1}, Data: []float32{1}}}, `cannot write dtype ""`},
		{[]HostTensor{{Name: "a", DType: F32, Shape: []int{2}, Data: []float32{1}}}, `tensor "a": shape [2] holds 2 values, data has 1`},
		{[]HostTensor{{Name: "a", DType: F32, Shape: []int{-1}, Data: nil}}, "negative dimension"},
		{[]HostTensor{{Name: "a", DType: F32, Data: []float32{1}}, {Name: "a", DType: F16, Data: []float32{1}}}, `two tensors are named "a"`},
		{[]HostTensor{{Name: "__metadata__", DType: F32, Data: []float32{1}}}, "invalid tensor name"},
		{[]HostTensor{{Name: "\xff", DType: F32, Data: []float32{1}}}, "invalid tensor name"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		err := WriteSafetensors(&b, c.in, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.in, err, c.want)
		}
		if b.Len() != 0 {
			t.Errorf("%v: wrote %d bytes before failing", c.in, b.Len())
		}
	}
	if err := WriteSafetensors(&bytes.Buffer{}, nil, map[string]string{"k": "\xff"}); err == nil {
		t.Errorf("invalid UTF-8 metadata accepted")
	}
}

func BenchmarkSafetensorsBF16Write(b *testing.B) {
	data := make([]float32, 1<<20)
	for i := range data {
		data[i] = float32(i) * 1e-3
	}
	in := []HostTensor{{Name: "w", DType: BF16, Shape: []int{len(data)}, Data: data}}
	b.SetBytes(int64(4 * len(data)))
	for b.Loop() {
		if err := WriteSafetensors(io.Discard, in, nil); err != nil {
			b.Fatal(err)
		}
	}
}
