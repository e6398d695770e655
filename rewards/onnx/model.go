// Model: an ONNX reward model run through ONNX Runtime (onnxruntime_go), fed and read as its
// manifest says. It implements rewards.Model and rewards.Calibrated; it is score-only (ONNX
// Runtime's inference sessions return no input gradients).
//
// Test: go test ./rewards/onnx -run Model (needs the library: make ort)
package onnx

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/alignkit/align/rewards"
)

// Options configure loading.
type Options struct {
	Library string // ONNX Runtime library; "" uses FindLibrary
	Threads int    // intra-op threads; 0: ONNX Runtime's default (one per core)
}

// Model is a loaded ONNX reward model.
type Model struct {
	Manifest *Manifest

	dims     []string
	cal      *rewards.Calibration
	text     textEncoder
	sess     *ort.DynamicAdvancedSession
	inNames  []string
	outNames []string
	outCols  [][]int // per output: column -> dimension index, -1 to skip
}

// ManifestPathFor returns the manifest that belongs to a reward file: the file itself when
// it is a .json manifest, else the .onnx path with its extension replaced by .json
// (reward.onnx -> reward.json).
func ManifestPathFor(path string) string {
	if strings.EqualFold(filepathExt(path), ".json") {
		return path
	}
	return strings.TrimSuffix(path, filepathExt(path)) + ".json"
}

func filepathExt(p string) string {
	for i := len(p) - 1; i >= 0 && p[i] != '/'; i-- {
		if p[i] == '.' {
			return p[i:]
		}
	}
	return ""
}

// Load reads the manifest at manifestPath and the .onnx file it names, and opens a session.
func Load(manifestPath string, opts Options) (*Model, error) {
	man, err := LoadManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(man.Path(man.Model))
	if err != nil {
		return nil, fmt.Errorf("reward model (manifest %s): %w", manifestPath, err)
	}
	m, err := New(data, man, opts)
	if err != nil {
		return nil, fmt.Errorf("reward model %s: %w", man.Path(man.Model), err)
	}
	return m, nil
}

// New opens a session on the ONNX bytes data described by man (validated here; relative
// files of the text spec resolve against man's directory).
func New(data []byte, man *Manifest, opts Options) (*Model, error) {
	if err := man.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := Init(opts.Library); err != nil {
		return nil, err
	}
	m := &Manifest{}
	*m = *man
	mod := &Model{Manifest: m, dims: m.Dims()}
	if m.Calibration != nil {
		mod.cal = m.Calibration
	} else {
		mod.cal = rewards.IdentityCalibration(mod.dims)
	}
	if m.Text != nil {
		enc, err := newTextEncoder(m)
		if err != nil {
			return nil, err
		}
		mod.text = enc
	}
	if err := mod.checkGraph(data); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	if opts.Threads > 0 {
		if err := so.SetIntraOpNumThreads(opts.Threads); err != nil {
			return nil, err
		}
	}
	// Idle intra-op threads sleep instead of spinning: the scorer decodes the next inputs
	// on the same cores while the model runs (measured on 2 cores, 512 images of the default
	// model: 120 images/s spinning, see the README for the numbers without).
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
		return nil, err
	}
	mod.sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, mod.inNames, mod.outNames, so)
	if err != nil {
		return nil, err
	}
	return mod, nil
}

// checkGraph compares the manifest with the graph's declared inputs and outputs, so that a
// wrong name or layout fails at load time with both lists in the message.
func (mod *Model) checkGraph(data []byte) error {
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return fmt.Errorf("reading the graph: %w", err)
	}
	info := map[string]ort.InputOutputInfo{}
	var inList, outList []string
	for _, i := range ins {
		info["in:"+i.Name] = i
		inList = append(inList, fmt.Sprintf("%s %v %v", i.Name, i.DataType, i.Dimensions))
	}
	for _, o := range outs {
		info["out:"+o.Name] = o
		outList = append(outList, fmt.Sprintf("%s %v %v", o.Name, o.DataType, o.Dimensions))
	}
	m := mod.Manifest
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	want := map[string]bool{}
	needIn := func(name string, dtype ort.TensorElementDataType, rank int) {
		want[name] = true
		i, ok := info["in:"+name]
		switch {
		case !ok:
			bad("the manifest names input %q, the graph has none", name)
		case i.DataType != dtype:
			bad("input %q is %v, the manifest says %v", name, i.DataType, dtype)
		case len(i.Dimensions) != rank:
			bad("input %q has shape %v, the manifest's layout needs rank %d", name, i.Dimensions, rank)
		}
	}
	rank := 4
	if m.Image.IsClip() {
		rank = 5
	}
	needIn(m.Image.Input, ort.TensorElementDataTypeFloat, rank)
	if i, ok := info["in:"+m.Image.Input]; ok && len(i.Dimensions) == rank {
		want := layoutShape(&m.Image, 0)
		for k := 1; k < rank; k++ {
			if d := i.Dimensions[k]; d > 0 && d != want[k] {
				bad("input %q has shape %v, the manifest's %s at %dx%d (frames %d) gives %v", m.Image.Input, i.Dimensions,
					m.Image.Layout, m.Image.Width, m.Image.Height, m.Image.Frames, want[1:])
				break
			}
		}
	}
	mod.inNames = []string{m.Image.Input}
	if t := m.Text; t != nil {
		var dt ort.TensorElementDataType = ort.TensorElementDataTypeInt64
		if t.DType == "int32" {
			dt = ort.TensorElementDataTypeInt32
		}
		needIn(t.Input, dt, 2)
		mod.inNames = append(mod.inNames, t.Input)
		if t.AttentionMask != "" {
			needIn(t.AttentionMask, dt, 2)
			mod.inNames = append(mod.inNames, t.AttentionMask)
		}
	}
	for _, i := range ins {
		if !want[i.Name] {
			bad("the graph's input %q is not fed by the manifest", i.Name)
		}
	}
	for _, o := range m.Outputs {
		oi, ok := info["out:"+o.Name]
		if !ok {
			bad("the manifest names output %q, the graph has none", o.Name)
			continue
		}
		if oi.DataType != ort.TensorElementDataTypeFloat {
			bad("output %q is %v; only float32 outputs are read", o.Name, oi.DataType)
		}
		mod.outNames = append(mod.outNames, o.Name)
		cols := make([]int, len(o.Dims))
		for k, d := range o.Dims {
			cols[k] = slices.Index(mod.dims, d)
		}
		mod.outCols = append(mod.outCols, cols)
	}
	if len(errs) > 0 {
		return fmt.Errorf("the manifest does not match the graph (inputs: %s; outputs: %s): %w",
			strings.Join(inList, ", "), strings.Join(outList, ", "), errors.Join(errs...))
	}
	return nil
}

// layoutShape is the pixel input's shape for a batch of B.
func layoutShape(s *ImageSpec, B int) []int64 {
	b, t, h, w := int64(B), int64(s.Frames), int64(s.Height), int64(s.Width)
	switch s.Layout {
	case LayoutNHWC:
		return []int64{b, h, w, 3}
	case LayoutNTCHW:
		return []int64{b, t, 3, h, w}
	case LayoutNCTHW:
		return []int64{b, 3, t, h, w}
	case LayoutNTHWC:
		return []int64{b, t, h, w, 3}
	}
	return []int64{b, 3, h, w}
}

// Dims implements rewards.Model.
func (mod *Model) Dims() []string { return slices.Clone(mod.dims) }

// Calibration implements rewards.Calibrated (the identity when the manifest has none).
func (mod *Model) Calibration() *rewards.Calibration { return mod.cal }

// Geometry is the resize the model's image input asks for.
func (mod *Model) Geometry() Geometry { return mod.Manifest.Image.Geometry() }

// Frames is the number of frames of a clip model (0 for an image model).
func (mod *Model) Frames() int { return mod.Manifest.Image.Frames }

// RejectsClips reports whether an image model's manifest refuses clips (clip_reduce reject).
func (mod *Model) RejectsClips() bool { return mod.Manifest.Image.ClipReduce == ClipReject }

// IsClip reports whether the model reads clips.
func (mod *Model) IsClip() bool { return mod.Manifest.Image.IsClip() }

// Close releases the session.
func (mod *Model) Close() error {
	if mod.sess == nil {
		return nil
	}
	err := mod.sess.Destroy()
	mod.sess = nil
	return err
}

// Score implements rewards.Model. Pixels of any size are resized to the model's input as
// the manifest says; an image model given clips scores every frame and averages per clip
// (clip_reduce "mean").
func (mod *Model) Score(b rewards.Batch) ([][]float32, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	if mod.sess == nil {
		return nil, errors.New("onnx reward model: closed")
	}
	im := &mod.Manifest.Image
	s := b.Pixels.Shape
	B := s[0]
	T, H, W := 1, s[2], s[3]
	if b.IsVideo() {
		T, H, W = s[1], s[3], s[4]
	}
	host := make([]float32, b.Pixels.Len())
	b.Pixels.Dev.CopyToHost(host, b.Pixels)
	frame := 3 * H * W

	switch {
	case im.IsClip() && !b.IsVideo():
		return nil, fmt.Errorf("onnx reward model: the model reads clips of %d frames, got images", im.Frames)
	case im.IsClip() && T != im.Frames:
		return nil, fmt.Errorf("onnx reward model: clips of %d frames, the model reads %d", T, im.Frames)
	case !im.IsClip() && b.IsVideo():
		if im.ClipReduce == ClipReject {
			return nil, errors.New("onnx reward model: an image model given clips (clip_reduce is reject)")
		}
		// Every frame becomes a sample; scores are averaged per clip.
		prompts := make([]string, 0, B*T)
		for _, p := range b.Prompts {
			for range T {
				prompts = append(prompts, p)
			}
		}
		raw, err := mod.run(host, B*T, 1, H, W, frame, prompts)
		if err != nil {
			return nil, err
		}
		out := make([][]float32, B)
		for i := range out {
			out[i] = make([]float32, len(mod.dims))
			for t := range T {
				for d, v := range raw[i*T+t] {
					out[i][d] += v / float32(T)
				}
			}
		}
		return out, nil
	}
	return mod.run(host, B, T, H, W, frame, b.Prompts)
}

// run scores n samples of T frames (3,H,W) from host in chunks of MaxBatch.
func (mod *Model) run(host []float32, n, T, H, W, frame int, prompts []string) ([][]float32, error) {
	chunk := n
	if mb := mod.Manifest.MaxBatch; mb > 0 {
		chunk = mb
	}
	out := make([][]float32, 0, n)
	for lo := 0; lo < n; lo += chunk {
		hi := min(n, lo+chunk)
		rows, err := mod.runChunk(host[lo*T*frame:hi*T*frame], hi-lo, T, H, W, prompts[lo:hi])
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (mod *Model) runChunk(host []float32, B, T, H, W int, prompts []string) ([][]float32, error) {
	m := mod.Manifest
	im := &m.Image
	geo := im.Geometry()
	h, w := im.Height, im.Width
	shape := layoutShape(im, B)
	pix := make([]float32, numel(shape))
	fitted := make([]float32, 3*h*w)
	for bi := range B {
		for t := range T {
			src := host[(bi*T+t)*3*H*W:][:3*H*W]
			if err := geo.Apply(fitted, src, 3, H, W); err != nil {
				return nil, err
			}
			for c := range 3 {
				mean, std := float32(im.Mean[c]), float32(im.Std[c])
				scale := float32(im.Range) / 2
				for y := range h {
					for x := range w {
						v := ((fitted[(c*h+y)*w+x]+1)*scale - mean) / std
						pix[pixelIndex(im.Layout, bi, t, c, y, x, T, h, w)] = v
					}
				}
			}
		}
	}
	var inputs []ort.Value
	defer func() {
		for _, v := range inputs {
			v.Destroy()
		}
	}()
	pt, err := ort.NewTensor(ort.NewShape(shape...), pix)
	if err != nil {
		return nil, err
	}
	inputs = append(inputs, pt)
	if tx := m.Text; tx != nil {
		L := tx.MaxLen
		ids, mask := make([]int64, 0, B*L), make([]int64, 0, B*L)
		for _, p := range prompts {
			i, k := mod.text.encode(p)
			ids, mask = append(ids, i...), append(mask, k...)
		}
		add := func(v []int64) error {
			var t ort.Value
			var err error
			if tx.DType == "int32" {
				v32 := make([]int32, len(v))
				for i, x := range v {
					v32[i] = int32(x)
				}
				t, err = ort.NewTensor(ort.NewShape(int64(B), int64(L)), v32)
			} else {
				t, err = ort.NewTensor(ort.NewShape(int64(B), int64(L)), v)
			}
			if err == nil {
				inputs = append(inputs, t)
			}
			return err
		}
		if err := add(ids); err != nil {
			return nil, err
		}
		if tx.AttentionMask != "" {
			if err := add(mask); err != nil {
				return nil, err
			}
		}
	}
	outputs := make([]ort.Value, len(mod.outNames))
	defer func() {
		for _, v := range outputs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := mod.sess.Run(inputs, outputs); err != nil {
		return nil, fmt.Errorf("onnx reward model: %w", err)
	}
	rows := make([][]float32, B)
	flat := make([]float32, B*len(mod.dims))
	for i := range rows {
		rows[i] = flat[i*len(mod.dims) : (i+1)*len(mod.dims)]
	}
	for o, v := range outputs {
		t, ok := v.(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnx reward model: output %q is not a float32 tensor", mod.outNames[o])
		}
		shp, data := t.GetShape(), t.GetData()
		K := len(mod.outCols[o])
		okShape := len(shp) >= 1 && shp[0] == int64(B) && int64(len(data)) == int64(B*K)
		if len(shp) == 1 {
			okShape = okShape && K == 1
		}
		if !okShape {
			return nil, fmt.Errorf("onnx reward model: output %q has shape %v for a batch of %d, the manifest maps %d column(s)", mod.outNames[o], shp, B, K)
		}
		for bi := range B {
			for k, d := range mod.outCols[o] {
				if d >= 0 {
					rows[bi][d] = data[bi*K+k]
				}
			}
		}
	}
	return rows, nil
}

// pixelIndex is the offset of sample b, frame t, channel c, pixel (y, x) in a layout.
func pixelIndex(layout string, b, t, c, y, x, T, H, W int) int {
	switch layout {
	case LayoutNHWC:
		return ((b*H+y)*W+x)*3 + c
	case LayoutNTCHW:
		return (((b*T+t)*3+c)*H+y)*W + x
	case LayoutNCTHW:
		return (((b*3+c)*T+t)*H+y)*W + x
	case LayoutNTHWC:
		return (((b*T+t)*H+y)*W+x)*3 + c
	}
	return ((b*3+c)*H+y)*W + x
}

var (
	_ rewards.Model      = (*Model)(nil)
	_ rewards.Calibrated = (*Model)(nil)
)
