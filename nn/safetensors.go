// safetensors: a validating reader and a writer for the safetensors format, the file
// format of align's weights and checkpoints (checkpoint.go builds on it).
//
// Layout: an 8-byte little-endian header length n, n bytes of JSON header padded with
// spaces, then the tensor data (little-endian, row-major). The header is an object
//
//	{"__metadata__": {"key": "value", ...},
//	 "name": {"dtype": "F32", "shape": [3, 4], "data_offsets": [begin, end]}, ...}
//
// with offsets relative to the start of the data. The reader refuses anything that does
// not describe the data exactly: a header length past the end of the file, a header that
// is not one JSON object, unknown dtypes or keys, a shape that does not match its byte
// range, offsets past the end of the data, overlaps, gaps, duplicate names and trailing
// bytes. Every error names the file and what is wrong. The reader parses a byte slice
// without copying the data, so embedded files (go:embed) cost no extra memory.
//
// Floats are read from F64, F32, F16, BF16, F8_E4M3 and F8_E5M2 into float32 and written
// as F32, F16 or BF16, rounding to nearest with ties to even. Weights may also be written as
// I8 with per-row scales in a companion tensor (quantize.go); the checkpoint reader turns
// them back into float32.
//
// Test: go test ./nn -run Safetensors ; fuzz: go test -fuzz FuzzSafetensorsHeader ./nn

package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/x448/float16"
)

// DType is the element type of a tensor in a safetensors file, spelled as in the header.
type DType string

// The float element types align reads; F32, F16 and BF16 are also written. I8 holds
// quantized weights with their per-row scales (quantize.go); it is read and written too.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F8E4M3 DType = "F8_E4M3" // 1 sign, 4 exponent (bias 7), 3 mantissa bits; no Inf
	F8E5M2 DType = "F8_E5M2" // the upper byte of an F16
	I8     DType = "I8"      // int8 two's complement
)

// dtypeSize is the element size in bytes of every dtype the reader accepts. Integer and
// bool tensors parse (a file that holds some still opens) but cannot be read as floats,
// except I8 weights with their scales (quantize.go).
var dtypeSize = map[DType]uint64{
	"BOOL": 1, "U8": 1, I8: 1, F8E4M3: 1, F8E5M2: 1,
	"I16": 2, "U16": 2, F16: 2, BF16: 2,
	"I32": 4, "U32": 4, F32: 4,
	"I64": 8, "U64": 8, F64: 8,
}

// Size is the element size in bytes, 0 for an unknown dtype.
func (d DType) Size() int { return int(dtypeSize[d]) }

// Writable reports whether WriteSafetensors can store elements of dtype d.
func (d DType) Writable() bool { return d == F32 || d == F16 || d == BF16 || d == I8 }

// HostTensor is a named float32 array in host memory. DType is its element type in a
// file: the type it was read from, or the type it is to be written as. For I8, Data holds
// the weights, not the int8 values: the writer quantizes them, the reader dequantizes.
type HostTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []float32 // row-major, len = product of Shape
}

// SafetensorsFile is a parsed safetensors file. Tensor data are views into the buffer
// that was parsed.
type SafetensorsFile struct {
	Name     string            // the file name given to ParseSafetensors, used in errors
	Metadata map[string]string // the "__metadata__" object; nil when absent
	Tensors  []SafetensorsTensor
}

// SafetensorsTensor is one tensor of a SafetensorsFile, in data order.
type SafetensorsTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // raw little-endian elements, a view into the parsed buffer
}

// Tensor returns the tensor called name, or nil.
func (f *SafetensorsFile) Tensor(name string) *SafetensorsTensor {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i]
		}
	}
	return nil
}

// Float32 converts the tensor's elements to float32. F64 values round to nearest; values
// beyond the float32 range become ±Inf. Integer and bool dtypes are refused.
func (t *SafetensorsTensor) Float32() ([]float32, error) {
	size := t.DType.Size()
	if size == 0 || !stIsFloat(t.DType) {
		return nil, fmt.Errorf("tensor %q: dtype %s is not a float type (want F64, F32, F16, BF16, F8_E4M3 or F8_E5M2)", t.Name, t.DType)
	}
	n := len(t.Data) / size
	out := make([]float32, n)
	stDecodeFloats(out, t.DType, t.Data)
	return out, nil
}

func stIsFloat(d DType) bool {
	switch d {
	case F64, F32, F16, BF16, F8E4M3, F8E5M2:
		return true
	}
	return false
}

// stMaxHeaderLen bounds the JSON header, as the reference implementation does.
const stMaxHeaderLen = 100 << 20

// ParseSafetensors parses a whole safetensors file held in buf. name (usually the path)
// starts every error message.
func ParseSafetensors(name string, buf []byte) (*SafetensorsFile, error) {
	f, err := stParseSafetensors(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f.Name = name
	return f, nil
}

// stTensorHeader is one tensor entry of the JSON header. Pointers tell a missing key from
// a zero value.
type stTensorHeader struct {
	DType       *string   `json:"dtype"`
	Shape       *[]uint64 `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

type stOffsetEntry struct {
	name       string
	begin, end uint64
}

func stParseSafetensors(buf []byte) (*SafetensorsFile, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("file is %d bytes, too short for the 8-byte header length; file truncated?", len(buf))
	}
	n := binary.LittleEndian.Uint64(buf)
	avail := uint64(len(buf) - 8)
	if n > avail {
		return nil, fmt.Errorf("header length %d is past the end of the file (%d bytes after the length field); file truncated or not safetensors?", n, avail)
	}
	if n > stMaxHeaderLen {
		return nil, fmt.Errorf("header length %d is over the %d-byte limit", n, stMaxHeaderLen)
	}
	hdr, data := buf[8:8+n], buf[8+n:]
	if len(hdr) == 0 || hdr[0] != '{' {
		start := hdr[:min(len(hdr), 16)]
		return nil, fmt.Errorf("header does not start with '{' (starts with %q); not a safetensors file?", start)
	}

	f := &SafetensorsFile{}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // the '{' checked above
		return nil, fmt.Errorf("header: %v", err)
	}
	seen := map[string]bool{}
	var entries []stOffsetEntry
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %v", stEOFErr(err))
		}
		key, ok := tok.(string)
		if !ok { // the decoder reports non-string keys itself; kept as a guard
			return nil, fmt.Errorf("header is not valid JSON: key %v is not a string", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("header is not valid JSON (at key %q): %v", key, stEOFErr(err))
		}
		if seen[key] {
			return nil, fmt.Errorf("header: duplicate key %q", key)
		}
		seen[key] = true
		if key == "__metadata__" {
			if f.Metadata, err = stParseMetadata(raw); err != nil {
				return nil, fmt.Errorf("header: __metadata__: %v", err)
			}
			continue
		}
		t, off, err := stParseTensorHeader(key, raw, uint64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %v", key, err)
		}
		t.Data = data[off.begin:off.end]
		f.Tensors = append(f.Tensors, t)
		entries = append(entries, off)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header is not valid JSON: %v", stEOFErr(err))
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("header: bytes after the JSON object: %v", err)
		}
		return nil, fmt.Errorf("header: bytes after the JSON object (%v)", tok)
	}

	// The tensors must tile the data section exactly, in offset order.
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ea, eb := entries[a], entries[b]
		if ea.begin != eb.begin {
			return stCmpU64(ea.begin, eb.begin)
		}
		return stCmpU64(ea.end, eb.end)
	})
	var pos uint64
	prev := ""
	for _, i := range order {
		e := entries[i]
		switch {
		case e.begin < pos:
			return nil, fmt.Errorf("tensor %q: data offsets [%d, %d) overlap tensor %q, which ends at %d", e.name, e.begin, e.end, prev, pos)
		case e.begin > pos:
			return nil, fmt.Errorf("tensor %q: data offsets [%d, %d) leave a gap of %d bytes after offset %d", e.name, e.begin, e.end, e.begin-pos, pos)
		}
		pos, prev = e.end, e.name
	}
	if pos != uint64(len(data)) {
		return nil, fmt.Errorf("%d bytes of trailing data: the tensors end at offset %d of a %d-byte data section", uint64(len(data))-pos, pos, len(data))
	}
	sorted := make([]SafetensorsTensor, len(order))
	for k, i := range order {
		sorted[k] = f.Tensors[i]
	}
	f.Tensors = sorted
	return f, nil
}

func stParseTensorHeader(name string, raw json.RawMessage, ckptDataLen uint64) (SafetensorsTensor, stOffsetEntry, error) {
	var h stTensorHeader
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("invalid entry: %v", stJSONErr(err))
	}
	switch {
	case h.DType == nil:
		return SafetensorsTensor{}, stOffsetEntry{}, errors.New(`entry has no "dtype"`)
	case h.Shape == nil:
		return SafetensorsTensor{}, stOffsetEntry{}, errors.New(`entry has no "shape"`)
	case h.DataOffsets == nil:
		return SafetensorsTensor{}, stOffsetEntry{}, errors.New(`entry has no "data_offsets"`)
	case len(*h.DataOffsets) != 2:
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("data_offsets %v must be [begin, end]", *h.DataOffsets)
	}
	dt := DType(*h.DType)
	size := dtypeSize[dt]
	if size == 0 {
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("unknown dtype %q", *h.DType)
	}
	// numel is the element count; dims must also multiply (zeros skipped) within an int
	// so that a zero-sized tensor cannot carry absurd dimensions into the layers.
	numel, nonzero := uint64(1), uint64(1)
	shape := make([]int, len(*h.Shape))
	for i, d := range *h.Shape {
		if d != 0 {
			hi, lo := bits.Mul64(nonzero, d)
			if hi != 0 || lo > math.MaxInt {
				return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("shape %v is too large", *h.Shape)
			}
			nonzero = lo
		}
		numel *= d // cannot overflow: bounded by nonzero, or zero
		shape[i] = int(d)
	}
	hi, nbytes := bits.Mul64(numel, size)
	begin, end := (*h.DataOffsets)[0], (*h.DataOffsets)[1]
	switch {
	case begin > end:
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("data offsets [%d, %d) end before they begin", begin, end)
	case end > ckptDataLen:
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("data offsets [%d, %d) past end of data (%d bytes); file truncated?", begin, end, ckptDataLen)
	case hi != 0:
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("shape %v of %s needs more than 2^64 bytes but data offsets [%d, %d) hold %d", *h.Shape, dt, begin, end, end-begin)
	case nbytes != end-begin:
		return SafetensorsTensor{}, stOffsetEntry{}, fmt.Errorf("shape %v of %s needs %d bytes but data offsets [%d, %d) hold %d", *h.Shape, dt, nbytes, begin, end, end-begin)
	}
	return SafetensorsTensor{Name: name, DType: dt, Shape: shape}, stOffsetEntry{name, begin, end}, nil
}

// stParseMetadata decodes the "__metadata__" object, which maps strings to strings
// (null counts as absent).
func stParseMetadata(raw json.RawMessage) (map[string]string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("must be an object of strings: %v", stJSONErr(err))
	}
	if fields == nil {
		return nil, nil
	}
	md := make(map[string]string, len(fields))
	for k, v := range fields {
		var s string
		if err := json.Unmarshal(v, &s); err != nil || bytes.Equal(v, []byte("null")) {
			return nil, fmt.Errorf("value of %q is %.40s, not a string", k, v)
		}
		md[k] = s
	}
	return md, nil
}

// stEOFErr names an early end of the header.
func stEOFErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("header ends early")
	}
	return err
}

// stJSONErr drops the Go type names from encoding/json errors.
func stJSONErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("%q: cannot use JSON %s here", te.Field, te.Value)
		}
		return fmt.Sprintf("cannot use JSON %s here", te.Value)
	}
	return err.Error()
}

func stCmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---- writing ----

// WriteSafetensors writes tensors and metadata (nil for none) to w in the safetensors
// format. Tensors are stored in the order of the reference implementation: by descending
// element size, then by name, so that every tensor is aligned to its element size. Each
// tensor is written as its DType, which must be F32, F16, BF16 or I8; an I8 tensor is
// quantized and adds its F32 scales NAME.q_scale (quantize.go).
func WriteSafetensors(w io.Writer, tensors []HostTensor, metadata map[string]string) error {
	l, err := stLayoutSafetensors(tensors, metadata)
	if err != nil {
		return err
	}
	return l.write(w)
}

// stLayout is a validated, ordered set of tensors with its JSON header.
type stLayout struct {
	header  []byte // with the 8-byte length and the padding
	entries []stEntry
}

// stEntry is one tensor of a file as written: data encoded as dtype, or for I8 the
// quantized bytes in q.
type stEntry struct {
	name  string
	dtype DType
	shape []int
	data  []float32
	q     []byte
}

func (e *stEntry) nbytes() int {
	if e.dtype == I8 {
		return len(e.q)
	}
	return len(e.data) * e.dtype.Size()
}

func stLayoutSafetensors(tensors []HostTensor, metadata map[string]string) (*stLayout, error) {
	l, err := stLayoutTensors(tensors)
	if err != nil {
		return nil, err
	}
	if err := l.setHeader(metadata); err != nil {
		return nil, err
	}
	return l, nil
}

// stLayoutTensors validates tensors, quantizes the I8 ones and orders them; the header
// is left to setHeader.
func stLayoutTensors(tensors []HostTensor) (*stLayout, error) {
	l := &stLayout{entries: make([]stEntry, 0, len(tensors))}
	seen := make(map[string]bool, len(tensors))
	for i := range tensors {
		t := &tensors[i]
		if err := stCheckWritable(t); err != nil {
			return nil, err
		}
		if seen[t.Name] {
			return nil, fmt.Errorf("safetensors: two tensors are named %q", t.Name)
		}
		seen[t.Name] = true
		if t.DType != I8 {
			l.entries = append(l.entries, stEntry{name: t.Name, dtype: t.DType, shape: t.Shape, data: t.Data})
			continue
		}
		// The scales' name cannot be taken: stCheckWritable reserves the suffix.
		q, scale, err := quantizeI8(t.Name, t.Data, t.Shape[0])
		if err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
		l.entries = append(l.entries,
			stEntry{name: t.Name, dtype: I8, shape: t.Shape, q: q},
			stEntry{name: t.Name + qScaleSuffix, dtype: F32, shape: []int{t.Shape[0]}, data: scale})
	}
	slices.SortFunc(l.entries, func(a, b stEntry) int {
		if sa, sb := a.dtype.Size(), b.dtype.Size(); sa != sb {
			return sb - sa
		}
		return strings.Compare(a.name, b.name)
	})
	return l, nil
}

// setHeader writes the JSON header of the laid-out tensors with metadata (nil for none).
func (l *stLayout) setHeader(metadata map[string]string) error {
	var h bytes.Buffer
	h.Write(make([]byte, 8))
	h.WriteByte('{')
	if len(metadata) > 0 {
		h.WriteString(`"__metadata__":{`)
		for i, k := range slices.Sorted(maps.Keys(metadata)) {
			v := metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return fmt.Errorf("safetensors: metadata %q is not valid UTF-8", k)
			}
			if i > 0 {
				h.WriteByte(',')
			}
			stWriteJSONString(&h, k)
			h.WriteByte(':')
			stWriteJSONString(&h, v)
		}
		h.WriteByte('}')
	}
	var off uint64
	for i := range l.entries {
		e := &l.entries[i]
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		stWriteJSONString(&h, e.name)
		fmt.Fprintf(&h, `:{"dtype":"%s","shape":[`, e.dtype)
		for j, d := range e.shape {
			if j > 0 {
				h.WriteByte(',')
			}
			fmt.Fprint(&h, d)
		}
		n := uint64(e.nbytes())
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, off+n)
		off += n
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	l.header = h.Bytes()
	binary.LittleEndian.PutUint64(l.header, uint64(len(l.header)-8))
	return nil
}

func stCheckWritable(t *HostTensor) error {
	if !t.DType.Writable() {
		return fmt.Errorf("safetensors: tensor %q: cannot write dtype %q (want F32, F16, BF16 or I8)", t.Name, t.DType)
	}
	if t.Name == "__metadata__" || !utf8.ValidString(t.Name) {
		return fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
	}
	if strings.HasSuffix(t.Name, qScaleSuffix) {
		return fmt.Errorf("safetensors: tensor %q: names ending in %q are reserved for the scales of I8 tensors", t.Name, qScaleSuffix)
	}
	if t.DType == I8 && len(t.Shape) == 0 {
		return fmt.Errorf("safetensors: tensor %q: I8 needs a first dimension (rows) for its scales; a scalar has none", t.Name)
	}
	n := 1
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %v", t.Name, t.Shape)
		}
		n *= d
	}
	if n != len(t.Data) {
		return fmt.Errorf("safetensors: tensor %q: shape %v holds %d values, data has %d", t.Name, t.Shape, n, len(t.Data))
	}
	return nil
}

// stWriteJSONString writes s as a JSON string without HTML escaping.
func stWriteJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // cannot fail for a string
	b.Truncate(b.Len() - 1)
}

func (l *stLayout) write(w io.Writer) error {
	if _, err := w.Write(l.header); err != nil {
		return err
	}
	return l.writeData(w)
}

// writeData encodes the tensor data in chunks of at most 64 KiB; quantized I8 bytes are
// written as they are.
func (l *stLayout) writeData(w io.Writer) error {
	buf := make([]byte, 64<<10)
	for _, e := range l.entries {
		if e.dtype == I8 {
			if _, err := w.Write(e.q); err != nil {
				return err
			}
			continue
		}
		size := e.dtype.Size()
		per := len(buf) / size
		for lo := 0; lo < len(e.data); lo += per {
			hi := min(lo+per, len(e.data))
			b := buf[:(hi-lo)*size]
			stEncodeFloats(b, e.dtype, e.data[lo:hi])
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- element conversions ----

// stBF16FromFloat32 rounds f to bfloat16 bits, to nearest with ties to even. NaN stays NaN
// (quiet), keeping its sign and upper payload bits.
func stBF16FromFloat32(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// stBF16ToFloat32 widens bfloat16 bits to float32 exactly.
func stBF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// stF8E4M3ToFloat32 decodes an F8_E4M3 (the "fn" variant: no Inf, S.1111.111 is NaN).
func stF8E4M3ToFloat32(b byte) float32 {
	e, m := int(b>>3)&0xf, int(b&7)
	var v float64
	switch {
	case e == 15 && m == 7:
		v = math.NaN()
	case e == 0:
		v = math.Ldexp(float64(m), -9)
	default:
		v = math.Ldexp(float64(8+m), e-10)
	}
	if b&0x80 != 0 {
		v = -v
	}
	return float32(v)
}

func stDecodeFloats(dst []float32, dt DType, src []byte) {
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case F16:
		for i := range dst {
			dst[i] = float16.Frombits(binary.LittleEndian.Uint16(src[2*i:])).Float32()
		}
	case BF16:
		for i := range dst {
			dst[i] = stBF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = float16.Frombits(uint16(src[i]) << 8).Float32()
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = stF8E4M3ToFloat32(src[i])
		}
	default:
		panic("nn: stDecodeFloats: dtype " + string(dt))
	}
}

func stEncodeFloats(dst []byte, dt DType, src []float32) {
	switch dt {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], float16.Fromfloat32(v).Bits())
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], stBF16FromFloat32(v))
		}
	default:
		panic("nn: stEncodeFloats: dtype " + string(dt))
	}
}
