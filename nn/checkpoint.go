// Checkpoints: model weights, AdamW state, RNG state, step and the architecture config in
// one safetensors file (safetensors.go).
//
// The file's __metadata__ holds one key "align" whose value is a JSON object
//
//	{"format":"align.checkpoint","version":1,"step":1200,"rng":{"seed":7,"offset":96},
//	 "config":{...},"adamw":{"step":1200},"compute":{"device":"cpu","precision":"fp32"},
//	 "data_crc32c":3735928559}
//
// and the Extra entries as further keys. Optimizer moments are F32 tensors named
// "optim.m.<param>" and "optim.v.<param>"; weights are F32, F16, BF16 or I8 with per-row
// scales (quantize.go), which load as float32 like the others. data_crc32c is
// the CRC-32C of the data section, so flipped data bytes are refused as well as a broken
// header. Save writes a temporary file beside the target, syncs it and renames it over
// the target: a failed save leaves an existing checkpoint untouched.
//
// A file without the "align" key (from another tool) loads as plain weights with all of
// its metadata in Extra.
//
// Test: go test ./nn -run Checkpoint

package nn

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alignkit/align/kernels"
)

// Checkpoint is the content of a checkpoint file, in host memory.
type Checkpoint struct {
	Tensors []HostTensor      // model weights
	Config  json.RawMessage   // architecture config (any JSON); nil for none
	Step    int               // training steps taken
	RNG     RNGState          // position of the run's random stream
	AdamW   *AdamWState       // optimizer state; nil for none
	Compute Compute           // where the run that wrote it computed; zero for unknown
	Extra   map[string]string // further __metadata__ entries (dims, calibration, notes)

	// Path is the file the checkpoint was read from (set by LoadCheckpoint and
	// ReadCheckpoint); errors of CopyToParams and CopyToAdamW name it.
	Path string
}

// RNGState is the state of the run's counter-based generator: its key and the next
// counter offset (kernels.Device.RandNormal).
type RNGState struct {
	Seed   uint64 `json:"seed"`
	Offset uint64 `json:"offset"`
}

// Compute is where a run computes: the device's name and its products' precision. A training
// checkpoint records the run that wrote it, so that a run resumed on another device or in
// another precision can say that its numbers are not those of one uninterrupted run.
type Compute struct {
	Device    string `json:"device"`
	Precision string `json:"precision"`
}

// ComputeOf is where dev computes.
func ComputeOf(dev kernels.Device) Compute {
	return Compute{Device: dev.Name(), Precision: kernels.PrecisionOf(dev)}
}

// AdamWState is AdamW's state: the number of updates taken and, per parameter, the first
// (M) and second (V) moments, named after their parameters. They are stored as F32.
type AdamWState struct {
	Step int
	M, V []HostTensor
}

const (
	ckptMetaKey      = "align"
	ckptFormat       = "align.checkpoint"
	ckptVersion      = 1
	ckptOptimMPrefix = "optim.m."
	ckptOptimVPrefix = "optim.v."
)

// ckptMeta is the JSON under the "align" metadata key.
type ckptMeta struct {
	Format  string          `json:"format"`
	Version int             `json:"version"`
	Step    int             `json:"step"`
	RNG     RNGState        `json:"rng"`
	Config  json.RawMessage `json:"config,omitempty"`
	AdamW   *struct {
		Step int `json:"step"`
	} `json:"adamw,omitempty"`
	Compute    *Compute `json:"compute,omitempty"`
	DataCRC32C *uint32  `json:"data_crc32c,omitempty"`
}

var ckptCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// ---- building a checkpoint from a model ----

// HostParams copies the weights W of params to the host, to be written as dtype.
func HostParams(params []Param, dtype DType) []HostTensor {
	out := make([]HostTensor, len(params))
	for i, p := range params {
		out[i] = ckptToHost(p.Name, p.W, dtype)
	}
	return out
}

// HostAdamW copies AdamW's moments to the host; m[i] and v[i] belong to params[i].
func HostAdamW(params []Param, m, v []*kernels.Tensor, step int) *AdamWState {
	if len(m) != len(params) || len(v) != len(params) {
		panic(fmt.Sprintf("nn: HostAdamW: %d params, %d first and %d second moments", len(params), len(m), len(v)))
	}
	st := &AdamWState{Step: step, M: make([]HostTensor, len(params)), V: make([]HostTensor, len(params))}
	for i, p := range params {
		if !kernels.SameShape(m[i], p.W) || !kernels.SameShape(v[i], p.W) {
			panic(fmt.Sprintf("nn: HostAdamW: %q is %v, moments %v and %v", p.Name, p.W.Shape, m[i].Shape, v[i].Shape))
		}
		st.M[i] = ckptToHost(p.Name, m[i], F32)
		st.V[i] = ckptToHost(p.Name, v[i], F32)
	}
	return st
}

func ckptToHost(name string, t *kernels.Tensor, dtype DType) HostTensor {
	data := make([]float32, t.Len())
	t.Dev.CopyToHost(data, t)
	return HostTensor{Name: name, DType: dtype, Shape: slices.Clone(t.Shape), Data: data}
}

// ---- writing ----

// Encode writes the checkpoint to w as a safetensors file.
func (c *Checkpoint) Encode(w io.Writer) error {
	l, err := c.layout()
	if err != nil {
		return err
	}
	return l.write(w)
}

// Save writes the checkpoint to path atomically: into a temporary file in the same
// directory, synced to disk, then renamed over path. On any error the temporary file is
// removed and an existing file at path is left as it was.
func (c *Checkpoint) Save(path string) error { return c.save(path, nil) }

// save is Save with a hook that wraps the file's writer (tests inject failures).
func (c *Checkpoint) save(path string, wrap func(io.Writer) io.Writer) error {
	l, err := c.layout()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	// A checkpoint replaced in place keeps the permissions its owner gave it.
	mode := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	err = writeFileAtomic(path, mode, func(w io.Writer) error {
		if wrap != nil {
			w = wrap(w)
		}
		bw := bufio.NewWriterSize(w, 1<<20) // 1 MiB writes: checkpoints are large
		if err := l.write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	// Make the rename itself durable; not every file system can sync a directory.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// layout validates the checkpoint and lays out its file, checksum included.
func (c *Checkpoint) layout() (*stLayout, error) {
	if len(c.Config) > 0 && !json.Valid(c.Config) {
		return nil, errors.New("checkpoint: Config is not valid JSON")
	}
	if _, ok := c.Extra[ckptMetaKey]; ok {
		return nil, fmt.Errorf("checkpoint: Extra may not use the key %q", ckptMetaKey)
	}
	tensors := slices.Clone(c.Tensors)
	meta := ckptMeta{Format: ckptFormat, Version: ckptVersion, Step: c.Step, RNG: c.RNG, Config: c.Config}
	if c.Compute != (Compute{}) {
		meta.Compute = &c.Compute
	}
	if a := c.AdamW; a != nil {
		meta.AdamW = &struct {
			Step int `json:"step"`
		}{a.Step}
		for _, t := range c.Tensors {
			if strings.HasPrefix(t.Name, "optim.") {
				return nil, fmt.Errorf("checkpoint: weight %q uses the optimizer's name prefix \"optim.\"", t.Name)
			}
		}
		for _, m := range []struct {
			prefix string
			ts     []HostTensor
		}{{ckptOptimMPrefix, a.M}, {ckptOptimVPrefix, a.V}} {
			for _, t := range m.ts {
				t.Name, t.DType = m.prefix+t.Name, F32
				tensors = append(tensors, t)
			}
		}
	}
	// The checksum covers the data section, which does not depend on the metadata.
	l, err := stLayoutTensors(tensors)
	if err != nil {
		return nil, err
	}
	h := crc32.New(ckptCastagnoli)
	if err := l.writeData(h); err != nil {
		return nil, err
	}
	sum := h.Sum32()
	meta.DataCRC32C = &sum
	var js strings.Builder
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(meta); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	md := make(map[string]string, len(c.Extra)+1)
	for k, v := range c.Extra {
		md[k] = v
	}
	md[ckptMetaKey] = strings.TrimSuffix(js.String(), "\n")
	if err := l.setHeader(md); err != nil {
		return nil, err
	}
	return l, nil
}

// ---- reading ----

// LoadCheckpoint reads and validates the checkpoint file at path.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %w", err) // "load open <path>: ..."
	}
	return ReadCheckpoint(path, buf)
}

// ReadCheckpoint reads a checkpoint from the bytes of a whole file, e.g. one embedded in the
// binary. name (a path or label) appears in errors and in the result's Path. The tensors are
// copied out of buf.
func ReadCheckpoint(name string, buf []byte) (*Checkpoint, error) {
	c, err := ckptRead(name, buf)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return c, nil
}

func ckptRead(name string, buf []byte) (*Checkpoint, error) {
	f, err := stParseSafetensors(buf)
	if err != nil {
		return nil, err
	}
	c := &Checkpoint{Path: name}
	for k, v := range f.Metadata {
		if k == ckptMetaKey {
			continue
		}
		if c.Extra == nil {
			c.Extra = make(map[string]string)
		}
		c.Extra[k] = v
	}
	if js, ok := f.Metadata[ckptMetaKey]; ok {
		var meta ckptMeta
		if err := json.Unmarshal([]byte(js), &meta); err != nil {
			return nil, fmt.Errorf("metadata %q: invalid JSON: %v", ckptMetaKey, stJSONErr(err))
		}
		switch {
		case meta.Format != ckptFormat:
			return nil, fmt.Errorf("metadata %q: format is %q, want %q", ckptMetaKey, meta.Format, ckptFormat)
		case meta.Version > ckptVersion:
			return nil, fmt.Errorf("metadata %q: format version %d is newer than this program's (%d)", ckptMetaKey, meta.Version, ckptVersion)
		}
		if meta.DataCRC32C != nil {
			data := buf[len(buf)-ckptDataLen(f):]
			if got := crc32.Checksum(data, ckptCastagnoli); got != *meta.DataCRC32C {
				return nil, fmt.Errorf("tensor data checksum mismatch (CRC-32C %08x, header says %08x); file corrupt?", got, *meta.DataCRC32C)
			}
		}
		c.Step, c.RNG, c.Config = meta.Step, meta.RNG, meta.Config
		if meta.AdamW != nil {
			c.AdamW = &AdamWState{Step: meta.AdamW.Step}
		}
		if meta.Compute != nil {
			c.Compute = *meta.Compute
		}
	}
	tensors, err := f.floatTensors()
	if err != nil {
		return nil, err
	}
	for _, ht := range tensors {
		switch {
		case c.AdamW != nil && strings.HasPrefix(ht.Name, ckptOptimMPrefix):
			ht.Name = strings.TrimPrefix(ht.Name, ckptOptimMPrefix)
			c.AdamW.M = append(c.AdamW.M, ht)
		case c.AdamW != nil && strings.HasPrefix(ht.Name, ckptOptimVPrefix):
			ht.Name = strings.TrimPrefix(ht.Name, ckptOptimVPrefix)
			c.AdamW.V = append(c.AdamW.V, ht)
		default:
			c.Tensors = append(c.Tensors, ht)
		}
	}
	return c, nil
}

// ckptDataLen is the size of the data section of a parsed file.
func ckptDataLen(f *SafetensorsFile) int {
	n := 0
	for _, t := range f.Tensors {
		n += len(t.Data)
	}
	return n
}

// Tensor returns the weight called name, or nil.
func (c *Checkpoint) Tensor(name string) *HostTensor {
	for i := range c.Tensors {
		if c.Tensors[i].Name == name {
			return &c.Tensors[i]
		}
	}
	return nil
}

// ---- copying into a model ----

// MismatchError lists every difference between a checkpoint's tensors and a model's
// parameters. Nothing is copied when it is returned.
type MismatchError struct {
	File       string
	What       string // "" for weights, "AdamW first moment" and the like otherwise
	Shape      []ShapeMismatch
	Missing    []string // parameters the file lacks
	Unexpected []string // tensors of the file that are no parameter
}

// ShapeMismatch is one tensor whose shape differs between file and model.
type ShapeMismatch struct {
	Name        string
	File, Model []int
}

func (e *MismatchError) Error() string {
	var parts []string
	for _, s := range e.Shape {
		parts = append(parts, fmt.Sprintf("shape mismatch for %q: file %v, model %v", s.Name, s.File, s.Model))
	}
	if len(e.Missing) > 0 {
		parts = append(parts, "missing "+ckptQuoteList(e.Missing))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, "unexpected "+ckptQuoteList(e.Unexpected))
	}
	what := ""
	if e.What != "" {
		what = e.What + ": "
	}
	return fmt.Sprintf("%s: %s%s", e.File, what, strings.Join(parts, "; "))
}

func ckptQuoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// CopyToParams copies the checkpoint's weights into the W of params, matched by name.
// Every parameter must have a tensor of the same shape and every tensor a parameter;
// otherwise nothing is copied and the *MismatchError lists all differences.
func (c *Checkpoint) CopyToParams(params []Param) error {
	ws := make([]*kernels.Tensor, len(params))
	for i, p := range params {
		ws[i] = p.W
	}
	return c.copyTo(params, ws, c.Tensors, "")
}

// CopyToAdamW copies the optimizer moments into m and v (m[i] and v[i] belong to
// params[i]) and returns AdamW's step. It fails when the checkpoint holds no AdamW state
// or its moments do not match params (a *MismatchError); nothing is copied then.
func (c *Checkpoint) CopyToAdamW(params []Param, m, v []*kernels.Tensor) (step int, err error) {
	if len(m) != len(params) || len(v) != len(params) {
		panic(fmt.Sprintf("nn: CopyToAdamW: %d params, %d first and %d second moments", len(params), len(m), len(v)))
	}
	if c.AdamW == nil {
		return 0, fmt.Errorf("%s: no AdamW state in the checkpoint", c.Source())
	}
	if err := c.check(params, m, c.AdamW.M, "AdamW first moment"); err != nil {
		return 0, err
	}
	if err := c.check(params, v, c.AdamW.V, "AdamW second moment"); err != nil {
		return 0, err
	}
	c.copyChecked(params, m, c.AdamW.M)
	c.copyChecked(params, v, c.AdamW.V)
	return c.AdamW.Step, nil
}

// Source names the checkpoint in errors: its Path, or "checkpoint" when it was not read from
// a file.
func (c *Checkpoint) Source() string {
	if c.Path == "" {
		return "checkpoint"
	}
	return c.Path
}

func (c *Checkpoint) copyTo(params []Param, dst []*kernels.Tensor, src []HostTensor, what string) error {
	if err := c.check(params, dst, src, what); err != nil {
		return err
	}
	c.copyChecked(params, dst, src)
	return nil
}

// check compares tensors src with dst (named after params) and reports every difference.
func (c *Checkpoint) check(params []Param, dst []*kernels.Tensor, src []HostTensor, what string) error {
	byName := make(map[string]*HostTensor, len(src))
	for i := range src {
		byName[src[i].Name] = &src[i]
	}
	e := &MismatchError{File: c.Source(), What: what}
	want := make(map[string]bool, len(params))
	for i, p := range params {
		if want[p.Name] {
			return fmt.Errorf("%s: two parameters are named %q", c.Source(), p.Name)
		}
		want[p.Name] = true
		t, ok := byName[p.Name]
		switch {
		case !ok:
			e.Missing = append(e.Missing, p.Name)
		case !slices.Equal(t.Shape, dst[i].Shape):
			e.Shape = append(e.Shape, ShapeMismatch{Name: p.Name, File: t.Shape, Model: slices.Clone(dst[i].Shape)})
		}
	}
	for _, t := range src {
		if !want[t.Name] {
			e.Unexpected = append(e.Unexpected, t.Name)
		}
	}
	if len(e.Shape)+len(e.Missing)+len(e.Unexpected) > 0 {
		return e
	}
	return nil
}

func (c *Checkpoint) copyChecked(params []Param, dst []*kernels.Tensor, src []HostTensor) {
	byName := make(map[string]*HostTensor, len(src))
	for i := range src {
		byName[src[i].Name] = &src[i]
	}
	for i, p := range params {
		dst[i].Dev.CopyFromHost(dst[i], byName[p.Name].Data)
	}
}
