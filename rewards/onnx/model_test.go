// Tests of geometry (resampling, crop, pad) and of Model on small graphs built here: NHWC
// and clip layouts, 0-255 range with mean/std, word ids with an attention mask, int32 ids,
// max_batch chunking, (B), (B,1) and (B,K) outputs with a skipped column, image models
// averaging clip frames, and manifest/graph mismatches reported at load time.
//
// Test: go test ./rewards/onnx -run 'Geometry|Resample|Model' (Model needs ONNX Runtime)
package onnx

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/alignkit/align/rewards"
	pb "github.com/alignkit/align/rewards/onnx/internal/onnxpb"
)

func TestResampleBoxIsAreaMean(t *testing.T) {
	src := make([]float32, 4*6)
	for i := range src {
		src[i] = float32(i%7)/7 - 0.5
	}
	dst := make([]float32, 2*3)
	Resample(dst, src, 1, 4, 6, 2, 3, FilterBox)
	for y := range 2 {
		for x := range 3 {
			m := (src[(2*y)*6+2*x] + src[(2*y)*6+2*x+1] + src[(2*y+1)*6+2*x] + src[(2*y+1)*6+2*x+1]) / 4
			if math.Abs(float64(dst[y*3+x]-m)) > 1e-6 {
				t.Fatalf("(%d,%d): %v, want %v", y, x, dst[y*3+x], m)
			}
		}
	}
	for _, f := range []string{FilterNearest, FilterBilinear, FilterBicubic, FilterBox} {
		same := make([]float32, len(src))
		Resample(same, src, 1, 4, 6, 4, 6, f)
		for i := range src {
			if math.Abs(float64(same[i]-src[i])) > 1e-6 {
				t.Fatalf("%s at the same size changed pixel %d: %v -> %v", f, i, src[i], same[i])
			}
		}
		flat := make([]float32, 3*5*9)
		for i := range flat {
			flat[i] = 0.25
		}
		out := make([]float32, 3*7*4)
		Resample(out, flat, 3, 5, 9, 7, 4, f)
		for _, v := range out {
			if math.Abs(float64(v-0.25)) > 1e-6 {
				t.Fatalf("%s: a flat image became %v", f, v)
			}
		}
	}
}

func TestGeometryCropAndPad(t *testing.T) {
	// A 20x10 (W x H) image whose left half is -1 and right half +1.
	src := make([]float32, 10*20)
	for y := range 10 {
		for x := range 20 {
			if x >= 10 {
				src[y*20+x] = 1
			} else {
				src[y*20+x] = -1
			}
		}
	}
	dst := make([]float32, 10*10)
	g := Geometry{Height: 10, Width: 10, Resize: ResizeShorter, Filter: FilterBilinear}
	if err := g.Apply(dst, src, 1, 10, 20); err != nil {
		t.Fatal(err)
	}
	if dst[0] != -1 || dst[9] != 1 { // centre crop keeps columns 5..14
		t.Errorf("shorter: row 0 = %v", dst[:10])
	}
	g = Geometry{Height: 10, Width: 10, Resize: ResizeLonger, Filter: FilterBox, PadValue: 0.5}
	if err := g.Apply(dst, src, 1, 10, 20); err != nil {
		t.Fatal(err)
	}
	// Resized to 10x5, placed at rows 2..6; rows 0, 1, 7, 8, 9 are padding (0.5 -> 0).
	if dst[0] != 0 || dst[9*10] != 0 || dst[2*10] != -1 || dst[2*10+9] != 1 {
		t.Errorf("longer: rows %v / %v / %v", dst[:10], dst[20:30], dst[90:])
	}
	g = Geometry{Height: 10, Width: 10, Resize: ResizeNone}
	if err := g.Apply(dst, src, 1, 10, 20); err == nil || !strings.Contains(err.Error(), "resize none") {
		t.Errorf("resize none with a wrong size: %v", err)
	}
}

// testGraph: pixels NHWC (B,4,4,3) in, "a" (B) = mean of channel 0 and "b" (B,3) =
// [sum(ids*mask), mean of channel 2, 7] out.
func testGraph(t *testing.T, idType pb.TensorProto_DataType) []byte {
	g := newGraph()
	c0 := g.op("Slice", "c0", []string{"img", g.vec("s0", 0), g.vec("e0", 1), g.vec("ax0", 3)})
	a := g.op("ReduceMean", "a_keep", []string{c0}, attrInts("axes", 1, 2, 3), attrInt("keepdims", 0))
	g.op("Identity", "a", []string{a})
	c2 := g.op("Slice", "c2", []string{"img", g.vec("s2", 2), g.vec("e2", 3), g.vec("ax2", 3)})
	m2 := g.op("ReduceMean", "m2", []string{c2}, attrInts("axes", 1, 2, 3), attrInt("keepdims", 0))
	ids := g.op("Cast", "ids_f", []string{"ids"}, attrInt("to", int64(pb.TensorProto_FLOAT)))
	mask := g.op("Cast", "mask_f", []string{"mask"}, attrInt("to", int64(pb.TensorProto_FLOAT)))
	s := g.op("ReduceSum", "idsum", []string{g.op("Mul", "im", []string{ids, mask}), g.vec("sum_axes", 1)}, attrInt("keepdims", 0))
	seven := g.op("Add", "seven", []string{g.op("Mul", "zero_s", []string{s, g.scalar("z", 0)}), g.scalar("c7", 7)})
	cols := []string{}
	for _, v := range []string{s, m2, seven} {
		cols = append(cols, g.op("Unsqueeze", v+"_col", []string{v, g.vec(v+"_ax", 1)}))
	}
	g.op("Concat", "b", cols, attrInt("axis", 1))
	mp := g.model("test", "", []*pb.ValueInfoProto{
		valueInfo("img", pb.TensorProto_FLOAT, -1, 4, 4, 3),
		valueInfo("ids", idType, -1, 4),
		valueInfo("mask", idType, -1, 4),
	}, []*pb.ValueInfoProto{valueInfo("a", pb.TensorProto_FLOAT, -1), valueInfo("b", pb.TensorProto_FLOAT, -1, 3)}, nil)
	data, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testManifest() *Manifest {
	return &Manifest{Format: ManifestFormat, Version: 1, Model: "t.onnx", MaxBatch: 2,
		Image: ImageSpec{Input: "img", Layout: LayoutNHWC, Sizing: Sizing{Size: 4, Resize: ResizeStretch, Filter: FilterBox}, Range: 255,
			Mean: []float64{10, 0, 100}, Std: []float64{2, 1, 5}},
		Text: &TextSpec{Input: "ids", Tokenizer: TokenizerWord, Vocab: []string{"<pad>", "<unk>", "<null>", "red", "apple"},
			MaxLen: 4, AttentionMask: "mask"},
		Outputs: []OutputSpec{{Name: "a", Dims: []string{"red"}}, {Name: "b", Dims: []string{"ids", "blue", ""}}},
	}
}

func TestModelLayoutsAndOutputs(t *testing.T) {
	requireORT(t)
	for _, dt := range []string{"int64", "int32"} {
		man := testManifest()
		idType := pb.TensorProto_INT64
		if dt == "int32" {
			man.Text.DType, idType = dt, pb.TensorProto_INT32
		}
		mod, err := New(testGraph(t, idType), man, Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		if d := mod.Dims(); strings.Join(d, ",") != "red,ids,blue" {
			t.Fatalf("dims %v", d)
		}
		// 3 images of 8x8 (box-resized to 4x4): channel c of image b is the constant v(b,c).
		v := func(b, c int) float32 { return float32(b)*0.25 - 0.5 + float32(c)*0.1 }
		const B, H, W = 3, 8, 8
		host := make([]float32, B*3*H*W)
		for b := range B {
			for c := range 3 {
				for i := range H * W {
					host[(b*3+c)*H*W+i] = v(b, c)
				}
			}
		}
		x := testDev.FromHost(host, B, 3, H, W)
		prompts := []string{"red apple", "", "apple zebra red red red"}
		got, err := mod.Score(rewards.Batch{Pixels: x, Prompts: prompts})
		if err != nil {
			t.Fatal(err)
		}
		idsum := []float32{3 + 4, 2, 4 + 1 + 3 + 3} // words truncated to 4; "" is <null>
		for b := range B {
			px := func(c int) float32 { return (v(b, c) + 1) * 127.5 }
			want := []float32{(px(0) - 10) / 2, idsum[b], (px(2) - 100) / 5}
			for d := range want {
				if math.Abs(float64(got[b][d]-want[d])) > 1e-3 {
					t.Errorf("%s sample %d: %v, want %v", dt, b, got[b], want)
				}
			}
		}
		// Clips to an image model: the mean of the frames' scores.
		clip := make([]float32, 2*3*4*4)
		for i := range clip {
			clip[i] = -1
			if i >= 3*4*4 {
				clip[i] = 1
			}
		}
		cs, err := mod.Score(rewards.Batch{Pixels: testDev.FromHost(clip, 1, 2, 3, 4, 4), Prompts: []string{"red"}})
		if err != nil {
			t.Fatal(err)
		}
		if want := float32((0-10)/2.0+(255-10)/2.0) / 2; math.Abs(float64(cs[0][0]-want)) > 1e-3 {
			t.Errorf("clip mean: %v, want %v", cs[0][0], want)
		}
		mod.Close()
		if _, err := mod.Score(rewards.Batch{Pixels: x, Prompts: prompts}); err == nil {
			t.Error("a closed model scored")
		}
	}
}

func TestModelManifestMismatch(t *testing.T) {
	requireORT(t)
	data := testGraph(t, pb.TensorProto_INT64)
	cases := map[string]func(m *Manifest){
		"input name":   func(m *Manifest) { m.Image.Input = "pixel_values" },
		"layout rank":  func(m *Manifest) { m.Image.Layout, m.Image.Frames = LayoutNTHWC, 2 },
		"static size":  func(m *Manifest) { m.Image.Size, m.Image.Height, m.Image.Width = 0, 5, 4 },
		"channels":     func(m *Manifest) { m.Image.Layout = LayoutNCHW },
		"output name":  func(m *Manifest) { m.Outputs[0].Name = "score" },
		"unfed input":  func(m *Manifest) { m.Text.AttentionMask = "" },
		"id dtype":     func(m *Manifest) { m.Text.DType = "int32" },
		"no text spec": func(m *Manifest) { m.Text = nil; m.Outputs = m.Outputs[:1] },
	}
	for name, edit := range cases {
		man := testManifest()
		edit(man)
		_, err := New(data, man, Options{})
		if err == nil {
			t.Errorf("%s: loaded", name)
		} else if !strings.Contains(err.Error(), "img") && !strings.Contains(err.Error(), "input") {
			t.Errorf("%s: error does not list the graph's inputs: %v", name, err)
		}
	}
}
