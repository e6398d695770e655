// Export of the native reward model (rewards.Native) as an ONNX graph plus its manifest, built
// op by op from the model's weights (no tracing): `align export onnx`.
//
// Test: go test ./rewards/onnx -run Export (ONNX Runtime's scores against the Go model's)
package onnx

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/nn"
	"github.com/alignkit/align/rewards"
	pb "github.com/alignkit/align/rewards/onnx/internal/onnxpb"
)

// Names of the exported graph's inputs and output.
const (
	ExportPixels = "pixels"    // (B,3,H,W) or (B,T,3,H,W) float32 in [-1, 1]
	ExportIDs    = "input_ids" // (B,L) int64, align's word tokenizer, 0 = padding
	ExportScores = "scores"    // (B,D) float32 raw scores in the order of the manifest's dims
)

// ExportNative builds the ONNX model of m and the manifest that describes it. The graph
// computes exactly rewards.Native.Forward (see that type for the formula):
//
//	inputs  pixels (B,3,H,W) [or (B,T,3,H,W)] in [-1, 1]; input_ids (B,L) int64
//	output  scores (B,D)
//
// The padding mask of the joint stage is derived in the graph from input_ids == 0 (PadID),
// so the two inputs are all a runtime has to supply. The manifest's model field is
// modelFile (the name the .onnx file will have, relative to the manifest).
func ExportNative(m *rewards.Native, modelFile string) ([]byte, *Manifest, error) {
	cfg := m.Config
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	w := map[string][]float32{}
	for _, t := range nn.HostParams(m.Params(), nn.F32) {
		w[t.Name] = t.Data
	}
	C, D, L, P := cfg.Width, len(cfg.Dims), cfg.MaxTextLen, cfg.NumPatches()
	S := D + L + P
	NH := cfg.Heads
	HS := C / NH
	g := newGraph()

	// ---- patches: Patchify as Reshape + Transpose, tokens (t,h,w), features (c,dt,dy,dx) ----
	gs := int64(cfg.ImageSize / cfg.PatchSize)
	p, pt, ch := int64(cfg.PatchSize), int64(cfg.TubeletFrames), int64(cfg.Channels)
	F := ch * pt * p * p
	var patches string
	pixDims := []int64{-1, ch, int64(cfg.ImageSize), int64(cfg.ImageSize)}
	if cfg.Kind == rewards.KindVideo {
		gt := int64(cfg.Frames / cfg.TubeletFrames)
		pixDims = []int64{-1, int64(cfg.Frames), ch, int64(cfg.ImageSize), int64(cfg.ImageSize)}
		r := g.op("Reshape", "patch.split", []string{ExportPixels, g.vec("patch.split_shape", 0, gt, pt, ch, gs, p, gs, p)})
		t := g.op("Transpose", "patch.order", []string{r}, attrInts("perm", 0, 1, 4, 6, 3, 2, 5, 7))
		patches = g.op("Reshape", "patch.tokens", []string{t, g.vec("patch.tokens_shape", 0, int64(P), F)})
	} else {
		r := g.op("Reshape", "patch.split", []string{ExportPixels, g.vec("patch.split_shape", 0, ch, gs, p, gs, p)})
		t := g.op("Transpose", "patch.order", []string{r}, attrInts("perm", 0, 2, 4, 1, 3, 5))
		patches = g.op("Reshape", "patch.tokens", []string{t, g.vec("patch.tokens_shape", 0, int64(P), F)})
	}
	xp := g.linear("patch_embed.proj", patches, P, w["patch_embed.proj.weight"], C, int(F), w["patch_embed.proj.bias"])
	pos := nn.PosEmbed3D(C, cfg.Frames/cfg.TubeletFrames, int(gs), int(gs))
	xp = g.op("Add", "patch_embed.out", []string{xp, g.floats("patch_embed.pos", []int64{int64(P), int64(C)}, pos)})

	// ---- caption: word vectors plus the fixed 1-D position code ----
	emb := g.op("Gather", "token_embedding.out", []string{g.floats("token_embedding.weight", []int64{int64(cfg.VocabSize), int64(C)}, w["token_embedding.weight"]), ExportIDs}, attrInt("axis", 0))
	tpos := make([]float64, L)
	for i := range tpos {
		tpos[i] = float64(i)
	}
	txt := g.op("Add", "text.out", []string{emb, g.floats("text.pos", []int64{int64(L), int64(C)}, nn.PosEmbed1D(C, tpos))})

	// ---- reward query tokens broadcast over the batch ----
	batch := g.op("Shape", "batch", []string{ExportIDs}, attrInt("start", 0), attrInt("end", 1))
	qshape := g.op("Concat", "queries.shape", []string{batch, g.vec("queries.dc", int64(D), int64(C))}, attrInt("axis", 0))
	q := g.op("Expand", "queries.out", []string{g.floats("reward_tokens", []int64{1, int64(D), int64(C)}, w["reward_tokens"]), qshape})
	h := g.op("Concat", "h0", []string{q, txt, xp}, attrInt("axis", 1))

	// ---- key biases: vision stage masks every caption key, joint stage the padding ----
	kb1 := make([]float32, S)
	for j := D; j < D+L; j++ {
		kb1[j] = float32(math.Inf(-1))
	}
	bias1 := g.floats("vision_key_bias", []int64{1, 1, 1, int64(S)}, kb1)
	isPad := g.op("Equal", "text.is_pad", []string{ExportIDs, g.ints("pad_id", nil, diffusion.PadID)})
	padBias := g.op("Where", "text.key_bias", []string{isPad, g.scalar("neg_inf", float32(math.Inf(-1))), g.scalar("zero", 0)})
	full := g.op("Pad", "joint_key_bias.flat", []string{padBias, g.vec("joint_key_bias.pads", 0, int64(D), 0, int64(P))})
	bias2 := g.op("Unsqueeze", "joint_key_bias", []string{full, g.vec("joint_key_bias.axes", 1, 2)})

	block := func(prefix, x, bias string, b *nn.TransformerBlock) string {
		eps := b.Norm1.Eps
		u := g.layerNorm(prefix+".norm1", x, w[prefix+".norm1.weight"], w[prefix+".norm1.bias"], eps)
		qkv := g.linear(prefix+".attn.qkv", u, S, w[prefix+".attn.qkv.weight"], 3*C, C, w[prefix+".attn.qkv.bias"])
		r := g.op("Reshape", prefix+".attn.heads", []string{qkv, g.vec(prefix+".attn.heads_shape", 0, int64(S), 3, int64(NH), int64(HS))})
		t := g.op("Transpose", prefix+".attn.qkv_first", []string{r}, attrInts("perm", 2, 0, 3, 1, 4)) // (3,B,NH,S,HS)
		qh := g.op("Gather", prefix+".attn.q", []string{t, g.ints(prefix+".attn.i0", nil, 0)}, attrInt("axis", 0))
		kh := g.op("Gather", prefix+".attn.k", []string{t, g.ints(prefix+".attn.i1", nil, 1)}, attrInt("axis", 0))
		vh := g.op("Gather", prefix+".attn.v", []string{t, g.ints(prefix+".attn.i2", nil, 2)}, attrInt("axis", 0))
		kt := g.op("Transpose", prefix+".attn.kt", []string{kh}, attrInts("perm", 0, 1, 3, 2))
		s := g.op("MatMul", prefix+".attn.qk", []string{qh, kt})
		s = g.op("Mul", prefix+".attn.scaled", []string{s, g.scalar(prefix+".attn.scale", float32(1/math.Sqrt(float64(HS))))})
		s = g.op("Add", prefix+".attn.biased", []string{s, bias})
		a := g.op("Softmax", prefix+".attn.probs", []string{s}, attrInt("axis", -1))
		a = g.op("MatMul", prefix+".attn.av", []string{a, vh})
		a = g.op("Transpose", prefix+".attn.merge", []string{a}, attrInts("perm", 0, 2, 1, 3))
		a = g.op("Reshape", prefix+".attn.flat", []string{a, g.vec(prefix+".attn.flat_shape", 0, int64(S), int64(C))})
		y := g.linear(prefix+".attn.proj", a, S, w[prefix+".attn.proj.weight"], C, C, w[prefix+".attn.proj.bias"])
		x1 := g.op("Add", prefix+".x1", []string{x, y})
		u2 := g.layerNorm(prefix+".norm2", x1, w[prefix+".norm2.weight"], w[prefix+".norm2.bias"], b.Norm2.Eps)
		hid := b.MLP.Hidden
		f1 := g.linear(prefix+".mlp.fc1", u2, S, w[prefix+".mlp.fc1.weight"], hid, C, w[prefix+".mlp.fc1.bias"])
		f2 := g.linear(prefix+".mlp.fc2", g.geluTanh(prefix+".mlp.gelu", f1), S, w[prefix+".mlp.fc2.weight"], C, hid, w[prefix+".mlp.fc2.bias"])
		return g.op("Add", prefix+".out", []string{x1, f2})
	}
	readout := func(hint, x string, norm *nn.LayerNorm, name string) string {
		rows := g.op("Slice", hint+".rows", []string{x, g.vec(hint+".starts", 0), g.vec(hint+".ends", int64(D)), g.vec(hint+".axes", 1)})
		return g.layerNorm(name, rows, w[name+".weight"], w[name+".bias"], norm.Eps) // (B,D,C)
	}

	for i, b := range m.Vision {
		h = block(fmt.Sprintf("vision_blocks.%d", i), h, bias1, b)
	}
	var q1, q2 string
	if slices.ContainsFunc(cfg.Dims, rewards.PromptFree) {
		q1 = readout("vision_readout", h, m.VisionNorm, "vision_norm")
	}
	for i, b := range m.Joint {
		h = block(fmt.Sprintf("joint_blocks.%d", i), h, bias2, b)
	}
	if slices.ContainsFunc(cfg.Dims, func(d string) bool { return !rewards.PromptFree(d) }) {
		q2 = readout("final_readout", h, m.FinalNorm, "final_norm")
	}
	var cols []string
	for d, name := range cfg.Dims {
		src := q2
		if rewards.PromptFree(name) {
			src = q1
		}
		row := g.op("Gather", "heads."+name+".in", []string{src, g.ints("heads."+name+".index", nil, int64(d))}, attrInt("axis", 1)) // (B,C)
		cols = append(cols, g.linear("heads."+name, row, 0, w["heads."+name+".weight"], 1, C, w["heads."+name+".bias"]))
	}
	out := g.op("Concat", ExportScores, cols, attrInt("axis", 1))
	if out != ExportScores {
		return nil, nil, fmt.Errorf("export: output named %q, want %q", out, ExportScores)
	}

	inputs := []*pb.ValueInfoProto{
		valueInfo(ExportPixels, pb.TensorProto_FLOAT, pixDims...),
		valueInfo(ExportIDs, pb.TensorProto_INT64, -1, int64(L)),
	}
	outputs := []*pb.ValueInfoProto{valueInfo(ExportScores, pb.TensorProto_FLOAT, -1, int64(D))}
	man := NativeManifest(m, modelFile)
	doc := fmt.Sprintf("align native %s reward model: dims %s; pixels in [-1, 1]; align word tokenizer (%d words, max length %d)",
		cfg.Kind, strings.Join(cfg.Dims, ","), cfg.VocabSize, L)
	meta := map[string]string{"align.model_type": rewards.ModelTypeNative, "align.dims": strings.Join(cfg.Dims, ",")}
	mp := g.model("align_reward_"+cfg.Kind, doc, inputs, outputs, meta)
	b, err := proto.Marshal(mp)
	if err != nil {
		return nil, nil, fmt.Errorf("export: %w", err)
	}
	return b, man, nil
}

// NativeManifest describes an exported native model: pixels NCHW (NTCHW for clips) at the
// model's size, mapped from [0, 1] to [-1, 1] by mean 0.5 and std 0.5, area-resized
// (box filter) with the aspect ratio ignored; the word tokenizer with the model's vocabulary;
// the calibration stored with the model.
func NativeManifest(m *rewards.Native, modelFile string) *Manifest {
	cfg := m.Config
	layout := LayoutNCHW
	frames := 0
	if cfg.Kind == rewards.KindVideo {
		layout, frames = LayoutNTCHW, cfg.Frames
	}
	man := &Manifest{
		Format:  ManifestFormat,
		Version: ManifestVersion,
		Name:    "align native " + cfg.Kind + " reward model",
		Model:   modelFile,
		Image: ImageSpec{
			Input:  ExportPixels,
			Layout: layout,
			Sizing: Sizing{Height: cfg.ImageSize, Width: cfg.ImageSize, Resize: ResizeStretch, Filter: FilterBox},
			Frames: frames,
			FPS:    cfg.SampleFPS,
			Mean:   []float64{0.5, 0.5, 0.5},
			Std:    []float64{0.5, 0.5, 0.5},
		},
		Text: &TextSpec{
			Input:     ExportIDs,
			Tokenizer: TokenizerWord,
			Vocab:     slices.Clone(m.Tokenizer.Vocab),
			MaxLen:    cfg.MaxTextLen,
			DType:     "int64",
		},
		Outputs: []OutputSpec{{Name: ExportScores, Dims: slices.Clone(cfg.Dims)}},
	}
	if m.Calib != nil {
		c := *m.Calib
		man.Calibration = &c
	}
	return man
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
