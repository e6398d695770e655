// Tests of the ONNX export: the exported native reward model (image and video, tiny and default
// sizes, random weights) run by ONNX Runtime through the manifest matches the Go model's
// scores to 1e-4; the graph uses IR 9 / opset 17; the manifest round-trips; ONNX Runtime
// fuses the GELU into one kernel and every linear layer is one Gemm.
//
// Needs ONNX Runtime (make ort): skipped without it, failed under CI=true.
//
// Test: go test ./rewards/onnx -run Export -v   (prints the max difference)
package onnx

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/rewards"
	pb "github.com/alignkit/align/rewards/onnx/internal/onnxpb"
)

// requireORT loads ONNX Runtime or skips the test; under CI=true (where `make test` has
// installed the library) a missing library fails the test instead.
func requireORT(t testing.TB) {
	t.Helper()
	if err := Init(""); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but ONNX Runtime cannot be loaded (make test runs make ort first): %v", err)
		}
		t.Skipf("ONNX Runtime not available, skipping (run `make ort`): %v", err)
	}
}

var testDev = kernels.NewCPU(2)

func testTokenizer(t testing.TB, maxLen int) *diffusion.Tokenizer {
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "green apple", "a dog moving left", "blue car", "a cat"}, 1, maxLen)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// exportDefault exports a default-size image model of random weights (randomNative, seed).
func exportDefault(t testing.TB, seed uint64) (*rewards.Native, []byte, *Manifest) {
	t.Helper()
	cfg := rewards.DefaultNativeImageConfig()
	cfg.VocabSize, cfg.MaxTextLen = 0, 0
	m := randomNative(t, cfg, testTokenizer(t, 16), seed)
	data, man, err := ExportNative(m, "reward.onnx")
	if err != nil {
		t.Fatal(err)
	}
	return m, data, man
}

// randomNative builds a model whose every parameter is redrawn from N(0, std^2) (LayerNorm
// scales around 1), so that no part of the graph is trivially zero or identity.
func randomNative(t testing.TB, cfg rewards.NativeConfig, tok *diffusion.Tokenizer, seed uint64) *rewards.Native {
	t.Helper()
	m, err := rewards.NewNative(testDev, &kernels.RNG{Seed: seed}, cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	for _, p := range m.Params() {
		v := make([]float32, p.W.Len())
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.3)
			if filepath.Ext(p.Name) == ".weight" && (contains(p.Name, "norm")) {
				v[i] += 1
			}
		}
		testDev.CopyFromHost(p.W, v)
	}
	m.SetTrainable(false)
	m.Calib = &rewards.Calibration{Dims: m.Dims(), Mean: make([]float64, len(m.Dims())), Std: make([]float64, len(m.Dims())), N: 10}
	for d := range m.Calib.Std {
		m.Calib.Mean[d], m.Calib.Std[d] = 0.1*float64(d), 1+float64(d)
	}
	return m
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func randomPixels(r *rand.Rand, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*r.Float64() - 1)
	}
	return testDev.FromHost(v, shape...)
}

var testPrompts = []string{"red apple", "", "a dog moving left and a zebra", "blue car blue car blue car", "green"}

func TestExportNativeMatchesGo(t *testing.T) {
	requireORT(t)
	tiny := func(kind string) rewards.NativeConfig {
		c := rewards.NativeConfig{Kind: kind, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
			Width: 16, VisionLayers: 1, JointLayers: 2, Heads: 2, MLPRatio: 2, Dims: []string{rewards.DimVQ, rewards.DimTA}}
		if kind == rewards.KindVideo {
			c.Frames, c.TubeletFrames, c.Dims = 4, 2, []string{rewards.DimTA, rewards.DimVQ, rewards.DimMQ}
		}
		return c
	}
	cases := []struct {
		name string
		cfg  rewards.NativeConfig
		L    int
	}{
		{"image-tiny", tiny(rewards.KindImage), 4},
		{"video-tiny", tiny(rewards.KindVideo), 4},
		{"image-default", rewards.DefaultNativeImageConfig(), 16},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			cs.cfg.VocabSize, cs.cfg.MaxTextLen = 0, 0
			m := randomNative(t, cs.cfg, testTokenizer(t, cs.L), 7)
			data, man, err := ExportNative(m, "reward.onnx")
			if err != nil {
				t.Fatal(err)
			}
			var mp pb.ModelProto
			if err := proto.Unmarshal(data, &mp); err != nil {
				t.Fatal(err)
			}
			if mp.GetIrVersion() != irVersion || mp.GetOpsetImport()[0].GetVersion() != opsetVersion {
				t.Errorf("IR %d opset %d, want %d and %d", mp.GetIrVersion(), mp.GetOpsetImport()[0].GetVersion(), irVersion, opsetVersion)
			}
			js, err := man.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			man2, err := ParseManifest(js)
			if err != nil {
				t.Fatalf("exported manifest does not parse: %v\n%s", err, js)
			}
			om, err := New(data, man2, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer om.Close()

			r := rand.New(rand.NewPCG(3, 4))
			B := len(testPrompts)
			pixels := randomPixels(r, append([]int{B}, m.Config.SampleShape()...)...)
			want := m.Forward(pixels, testPrompts)
			b := rewards.Batch{Pixels: pixels, Prompts: testPrompts}
			got, err := om.Score(b)
			if err != nil {
				t.Fatal(err)
			}
			maxDiff, maxAbs := 0.0, 0.0
			for i := range want {
				for d := range want[i] {
					maxDiff = math.Max(maxDiff, math.Abs(float64(got[i][d]-want[i][d])))
					maxAbs = math.Max(maxAbs, math.Abs(float64(want[i][d])))
				}
			}
			t.Logf("%s: %d params, onnx %d bytes, ORT vs Go max |diff| %.3g (scores up to %.3g)", cs.name, len(m.Params()), len(data), maxDiff, maxAbs)
			if maxDiff > 1e-4 {
				t.Errorf("ORT vs Go: max |diff| %.3g > 1e-4\n got %v\nwant %v", maxDiff, got, want)
			}
			// The calibration travels in the manifest.
			zs, err := rewards.ScoreBatch(om, b)
			if err != nil {
				t.Fatal(err)
			}
			zn, _ := rewards.ScoreBatch(m, b)
			for i := range zs.Z {
				for d := range zs.Z[i] {
					if math.Abs(zs.Z[i][d]-zn.Z[i][d]) > 1e-4 {
						t.Fatalf("z-scores differ: %v vs %v", zs.Z, zn.Z)
					}
				}
			}
			// Batch of one (a dynamic batch dimension, not a fixed one).
			one := rewards.Batch{Pixels: pixels.View(0, append([]int{1}, m.Config.SampleShape()...)...), Prompts: testPrompts[:1]}
			got1, err := om.Score(one)
			if err != nil {
				t.Fatal(err)
			}
			for d := range got1[0] {
				if math.Abs(float64(got1[0][d]-got[0][d])) > 1e-5 {
					t.Errorf("batch of one: %v vs %v", got1[0], got[0])
				}
			}
		})
	}
}

// TestExportFusesInONNXRuntime reads back the graph ONNX Runtime runs after its
// optimisations: every MLP's GELU is one FastGelu (the export writes the tanh form in the
// shape its fusion recognises: eight elementwise passes otherwise, a seventh of the default
// model's time in ONNX Runtime), and every linear layer is one Gemm with its bias, no MatMul
// followed by an Add.
func TestExportFusesInONNXRuntime(t *testing.T) {
	requireORT(t)
	m, data, _ := exportDefault(t, 5)
	cfg := m.Config
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer so.Destroy()
	optimized := filepath.Join(t.TempDir(), "optimized.onnx")
	if err := so.SetOptimizedModelFilePath(optimized); err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{ExportPixels, ExportIDs}, []string{ExportScores}, so)
	if err != nil {
		t.Fatal(err)
	}
	sess.Destroy()
	raw, err := os.ReadFile(optimized)
	if err != nil {
		t.Fatal(err)
	}
	var mp pb.ModelProto
	if err := proto.Unmarshal(raw, &mp); err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, n := range mp.GetGraph().GetNode() {
		ops[n.GetOpType()]++
	}
	blocks := cfg.VisionLayers + cfg.JointLayers
	// patch embedding, four per block, a head per dimension
	linears := 1 + 4*blocks + len(cfg.Dims)
	if ops["FastGelu"] != blocks || ops["Tanh"] != 0 {
		t.Errorf("%d FastGelu and %d Tanh nodes, want %d and 0 (the GELU was not fused): %v", ops["FastGelu"], ops["Tanh"], blocks, ops)
	}
	if ops["Gemm"] != linears {
		t.Errorf("%d Gemm nodes, want %d (one per linear layer): %v", ops["Gemm"], linears, ops)
	}
}
