// Tests of checkpoints: weights, AdamW state, RNG, step, config and Extra round trips;
// loading from bytes; mismatch reports; refusal of truncated and corrupt files; atomic
// saves that leave the old file intact when writing fails.
//
// Test: go test ./nn -run Checkpoint
package nn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// ckptModel is a tiny parameter set with moments, on the CPU.
type ckptModel struct {
	params []Param
	m, v   []*kernels.Tensor
}

func newCkptModel(seed uint64, shapes map[string][]int) *ckptModel {
	dev := kernels.NewCPU(1)
	r := rand.New(rand.NewPCG(seed, 9))
	fill := func(shape []int) *kernels.Tensor {
		t := dev.New(shape...)
		data := make([]float32, t.Len())
		for i := range data {
			data[i] = float32(r.NormFloat64())
		}
		dev.CopyFromHost(t, data)
		return t
	}
	md := &ckptModel{}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range shapes {
			if !yield(k) {
				return
			}
		}
	}) {
		s := shapes[name]
		md.params = append(md.params, Param{Name: name, W: fill(s), G: dev.New(s...)})
		md.m = append(md.m, fill(s))
		md.v = append(md.v, fill(s))
	}
	return md
}

var ckptShapes = map[string][]int{
	"blocks.0.attn.qkv.weight": {4, 12},
	"blocks.0.attn.qkv.bias":   {12},
	"pos_embed":                {1, 3, 4},
	"scale":                    {},
}

func ckptHost(t *kernels.Tensor) []float32 {
	out := make([]float32, t.Len())
	t.Dev.CopyToHost(out, t)
	return out
}

func ckptExample(md *ckptModel, dtype DType) *Checkpoint {
	return &Checkpoint{
		Tensors: HostParams(md.params, dtype),
		Config:  json.RawMessage(`{"depth": 2, "width": 4, "name": "tiny <dit>"}`),
		Step:    1200,
		RNG:     RNGState{Seed: math.MaxUint64, Offset: 1<<53 + 1}, // beyond float64 precision
		AdamW:   HostAdamW(md.params, md.m, md.v, 1200),
		Extra:   map[string]string{"dims": "vq,ta,mq", "calibration": `{"vq":[0.1,1.2]}`},
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, dtype := range []DType{F32, F16, BF16} {
		t.Run(string(dtype), func(t *testing.T) {
			src := newCkptModel(1, ckptShapes)
			path := filepath.Join(t.TempDir(), "model.safetensors")
			if err := ckptExample(src, dtype).Save(path); err != nil {
				t.Fatal(err)
			}
			c, err := LoadCheckpoint(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != path || c.Step != 1200 || c.RNG != (RNGState{math.MaxUint64, 1<<53 + 1}) {
				t.Errorf("path %q step %d rng %+v", c.Path, c.Step, c.RNG)
			}
			if string(c.Config) != `{"depth":2,"width":4,"name":"tiny <dit>"}` {
				t.Errorf("config %s", c.Config)
			}
			if len(c.Extra) != 2 || c.Extra["dims"] != "vq,ta,mq" || c.Extra["calibration"] != `{"vq":[0.1,1.2]}` {
				t.Errorf("extra %v", c.Extra)
			}
			if len(c.Tensors) != len(ckptShapes) {
				t.Errorf("%d weights, want %d", len(c.Tensors), len(ckptShapes))
			}
			for _, ht := range c.Tensors {
				if ht.DType != dtype {
					t.Errorf("%s stored as %s, want %s", ht.Name, ht.DType, dtype)
				}
			}

			dst := newCkptModel(2, ckptShapes) // different values, same shapes
			if err := c.CopyToParams(dst.params); err != nil {
				t.Fatal(err)
			}
			step, err := c.CopyToAdamW(dst.params, dst.m, dst.v)
			if err != nil || step != 1200 {
				t.Fatalf("CopyToAdamW: step %d, %v", step, err)
			}
			for i, p := range src.params {
				want, got := ckptHost(p.W), ckptHost(dst.params[i].W)
				for j := range want {
					var ok bool
					switch dtype {
					case F32:
						ok = math.Float32bits(got[j]) == math.Float32bits(want[j])
					case F16: // within half an F16 ulp (values here are normal in F16)
						ok = math.Abs(float64(got[j]-want[j])) <= math.Abs(float64(want[j]))*0x1p-11
					case BF16:
						ok = math.Abs(float64(got[j]-want[j])) <= math.Abs(float64(want[j]))*0x1p-8
					}
					if !ok {
						t.Fatalf("%s[%d] = %g, saved %g", p.Name, j, got[j], want[j])
					}
				}
				// Optimizer state is always F32, so exact.
				for _, mv := range [][2]*kernels.Tensor{{src.m[i], dst.m[i]}, {src.v[i], dst.v[i]}} {
					if !slices.Equal(ckptHost(mv[0]), ckptHost(mv[1])) {
						t.Fatalf("%s: moments differ", p.Name)
					}
				}
			}
		})
	}
}

// A checkpoint keeps where its run computed; one saved without the record loads without one
// (and its metadata has no "compute" key).
func TestCheckpointCompute(t *testing.T) {
	if got := ComputeOf(kernels.NewCPU(1)); got != (Compute{Device: "cpu", Precision: "fp32"}) {
		t.Errorf("ComputeOf(CPU) = %+v", got)
	}
	md := newCkptModel(1, ckptShapes)
	for _, want := range []Compute{{Device: "cuda:0", Precision: "bf16"}, {}} {
		c := ckptExample(md, F32)
		c.Compute = want
		var buf bytes.Buffer
		if err := c.Encode(&buf); err != nil {
			t.Fatal(err)
		}
		got, err := ReadCheckpoint("ck", buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if got.Compute != want || strings.Contains(buf.String(), "compute") != (want != Compute{}) {
			t.Errorf("saved %+v, loaded %+v", want, got.Compute)
		}
	}
}

func TestCheckpointReadBytes(t *testing.T) {
	md := newCkptModel(3, map[string][]int{"w": {2, 2}})
	c := &Checkpoint{Tensors: HostParams(md.params, F32)}
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint("assets/t2i.safetensors", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != "assets/t2i.safetensors" || got.AdamW != nil || got.Config != nil || got.Extra != nil || got.Step != 0 {
		t.Errorf("%+v", got)
	}
	if w := got.Tensor("w"); w == nil || !slices.Equal(w.Data, ckptHost(md.params[0].W)) {
		t.Errorf("w = %v", w)
	}
	if got.Tensor("nope") != nil {
		t.Errorf("found a tensor that is not there")
	}
	if _, err := got.CopyToAdamW(md.params, md.m, md.v); err == nil || err.Error() != "assets/t2i.safetensors: no AdamW state in the checkpoint" {
		t.Errorf("CopyToAdamW without state: %v", err)
	}
}

func TestCheckpointMismatch(t *testing.T) {
	c := &Checkpoint{Path: "model.safetensors", Tensors: []HostTensor{
		{Name: "x", DType: F32, Shape: []int{4, 8}, Data: make([]float32, 32)},
		{Name: "z", DType: F32, Shape: []int{1}, Data: []float32{5}},
	}}
	md := newCkptModel(4, map[string][]int{"x": {4, 16}, "y": {2}, "z": {1}})
	before := ckptHost(md.params[2].W)
	err := c.CopyToParams(md.params)
	want := `model.safetensors: shape mismatch for "x": file [4 8], model [4 16]; missing "y"`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
	if !slices.Equal(ckptHost(md.params[2].W), before) {
		t.Errorf("z was copied although the load failed")
	}
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Shape) != 1 || !slices.Equal(me.Missing, []string{"y"}) || me.Unexpected != nil {
		t.Errorf("%#v", me)
	}

	c.Tensors = append(c.Tensors, HostTensor{Name: "extra.a", DType: F32, Shape: []int{1}, Data: []float32{1}},
		HostTensor{Name: "extra.b", DType: F32, Shape: []int{1}, Data: []float32{1}})
	err = c.CopyToParams(md.params)
	if err == nil || !strings.HasSuffix(err.Error(), `; missing "y"; unexpected "extra.a", "extra.b"`) {
		t.Errorf("error %v", err)
	}

	// Moments are checked as well.
	src := newCkptModel(5, map[string][]int{"x": {4, 16}, "y": {2}})
	ck := &Checkpoint{Path: "run/ckpt.safetensors", Tensors: HostParams(src.params, F32), AdamW: HostAdamW(src.params, src.m, src.v, 7)}
	ck.AdamW.V = ck.AdamW.V[:1]
	dst := newCkptModel(6, map[string][]int{"x": {4, 16}, "y": {2}})
	if _, err := ck.CopyToAdamW(dst.params, dst.m, dst.v); err == nil || err.Error() != `run/ckpt.safetensors: AdamW second moment: missing "y"` {
		t.Errorf("error %v", err)
	}
	dup := []Param{src.params[0], src.params[0]}
	if err := ck.CopyToParams(dup); err == nil || !strings.Contains(err.Error(), `two parameters are named "x"`) {
		t.Errorf("duplicate params: %v", err)
	}
}

// ckptFile saves a small checkpoint to dir and returns its path and bytes.
func ckptFile(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	md := newCkptModel(7, map[string][]int{"a": {3}, "b": {2, 2}})
	path := filepath.Join(dir, "ckpt.safetensors")
	if err := ckptExample(md, BF16).Save(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func TestCheckpointCorrupt(t *testing.T) {
	dir := t.TempDir()
	path, good := ckptFile(t, dir)
	hdrEnd := 8 + int(binary.LittleEndian.Uint64(good))

	write := func(b []byte) string {
		p := filepath.Join(dir, "bad.safetensors")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// expectErr checks ReadCheckpoint on b (fast, for the loops) or LoadCheckpoint on a file.
	expectErr := func(label string, b []byte, want string) {
		t.Helper()
		p, err := "mem/ckpt.safetensors", error(nil)
		if strings.HasPrefix(label, "file") {
			p = write(b)
			_, err = LoadCheckpoint(p)
		} else {
			_, err = ReadCheckpoint(p, b)
		}
		if err == nil || !strings.HasPrefix(err.Error(), "load "+p+": ") || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: error %v, want load %s: ...%s", label, err, p, want)
		}
	}
	// Every truncation.
	for n := range len(good) {
		expectErr(fmt.Sprintf("truncated to %d", n), good[:n], "")
	}
	expectErr("file truncated", good[:len(good)-1], "past end of data (")
	// Any flipped data bit fails the checksum.
	for i := hdrEnd; i < len(good); i++ {
		b := slices.Clone(good)
		b[i] ^= 0x10
		expectErr("flipped data", b, "tensor data checksum mismatch")
	}
	b := slices.Clone(good)
	b[len(b)-1] ^= 1
	expectErr("file flipped", b, "tensor data checksum mismatch (CRC-32C ")
	// Bad "align" metadata.
	for _, c := range []struct{ meta, want string }{
		{`{`, `metadata "align": invalid JSON`},
		{`{"format":"other","version":1}`, `metadata "align": format is "other", want "align.checkpoint"`},
		{`{"format":"align.checkpoint","version":2}`, `format version 2 is newer`},
		{`{"format":"align.checkpoint","version":1,"step":"x"}`, `metadata "align": invalid JSON: "step": cannot use JSON string here`},
	} {
		var b bytes.Buffer
		if err := WriteSafetensors(&b, nil, map[string]string{"align": c.meta}); err != nil {
			t.Fatal(err)
		}
		expectErr(c.meta, b.Bytes(), c.want)
	}
	expectErr("file 2^63 header", append(binary.LittleEndian.AppendUint64(nil, 1<<63), good[8:]...), "header length 9223372036854775808 is past the end of the file")

	if _, err := LoadCheckpoint(filepath.Join(dir, "none.safetensors")); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := LoadCheckpoint(path); err != nil {
		t.Errorf("the good file: %v", err)
	}
}

// ckptFailingWriter fails once more than n bytes have been written.
type ckptFailingWriter struct {
	w io.Writer
	n int
}

func (f *ckptFailingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errors.New("disk full (injected)")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestCheckpointAtomicSave(t *testing.T) {
	dir := t.TempDir()
	path, old := ckptFile(t, dir)
	md := newCkptModel(8, map[string][]int{"big": {64, 64}})
	c := ckptExample(md, F32)

	for _, n := range []int{0, 100, 20000} {
		err := c.save(path, func(w io.Writer) io.Writer { return &ckptFailingWriter{w: w, n: n} })
		if err == nil || !strings.HasPrefix(err.Error(), "save "+path+": ") || !strings.Contains(err.Error(), "disk full (injected)") {
			t.Fatalf("failing writer after %d bytes: %v", n, err)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
			t.Fatalf("failed save after %d bytes changed the existing file", n)
		}
		ckptOnlyFile(t, dir, "ckpt.safetensors")
	}

	// Invalid content fails before anything is written.
	bad := *c
	bad.Config = json.RawMessage(`{"depth":`)
	if err := bad.Save(path); err == nil || !strings.Contains(err.Error(), "Config is not valid JSON") {
		t.Errorf("bad config: %v", err)
	}
	bad = *c
	bad.Extra = map[string]string{"align": "x"}
	if err := bad.Save(path); err == nil || !strings.Contains(err.Error(), `Extra may not use the key "align"`) {
		t.Errorf("Extra[align]: %v", err)
	}
	bad = *c
	bad.Tensors = append(slices.Clone(c.Tensors), HostTensor{Name: "optim.m.big", DType: F32, Shape: []int{1}, Data: []float32{1}})
	if err := bad.Save(path); err == nil || !strings.Contains(err.Error(), `weight "optim.m.big" uses the optimizer's name prefix`) {
		t.Errorf("optim prefix: %v", err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
		t.Fatalf("a refused save changed the existing file")
	}
	ckptOnlyFile(t, dir, "ckpt.safetensors")

	// A directory that does not exist.
	if err := c.Save(filepath.Join(dir, "no", "such", "x.safetensors")); err == nil || !strings.Contains(err.Error(), "save "+filepath.Join(dir, "no", "such", "x.safetensors")) {
		t.Errorf("missing directory: %v", err)
	}

	// A read-only directory (root ignores permissions, so only as another user).
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		err := c.Save(path)
		os.Chmod(dir, 0o755)
		if err == nil {
			t.Errorf("save into a read-only directory succeeded")
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, old) {
			t.Errorf("save into a read-only directory changed the file")
		}
	}

	// A successful save replaces the file and keeps its permissions.
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	ckptOnlyFile(t, dir, "ckpt.safetensors")
	got, err := LoadCheckpoint(path)
	if err != nil || got.Tensor("big") == nil {
		t.Fatalf("after replacing: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after replacing: %v %v", fi.Mode(), err)
	}
	// A relative path in the working directory.
	t.Chdir(dir)
	if err := c.Save("rel.safetensors"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat("rel.safetensors"); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("new file: %v %v", fi, err)
	}
}

// ckptOnlyFile fails unless dir holds exactly the named files (no temporary leftovers).
func ckptOnlyFile(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("directory holds %v, want %v", got, names)
	}
}

// TestCheckpointForeignFile loads the Python-written fixture: plain weights, metadata in Extra.
func TestCheckpointForeignFile(t *testing.T) {
	c, err := LoadCheckpoint("testdata/python.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if c.AdamW != nil || c.Step != 0 || c.Config != nil || c.Extra["format"] != "np" || len(c.Extra) != 2 {
		t.Errorf("%+v", c)
	}
	if w := c.Tensor("bf16"); w == nil || w.DType != BF16 || !slices.Equal(w.Shape, []int{1, 7}) || w.Data[1] != -2.5 {
		t.Errorf("bf16: %+v", w)
	}
	// It saves again once its read-only dtypes are given writable ones.
	for i := range c.Tensors {
		if !c.Tensors[i].DType.Writable() {
			c.Tensors[i].DType = F32
		}
	}
	var b bytes.Buffer
	if err := c.Encode(&b); err != nil {
		t.Fatal(err)
	}
	c2, err := ReadCheckpoint("again", b.Bytes())
	if err != nil || len(c2.Tensors) != len(c.Tensors) || c2.Extra["source"] != "make_python_fixture.py" {
		t.Fatalf("%v", err)
	}
}
