// Tests of the native reward model: finite-difference gradients of a tiny model with respect
// to the input pixels and a few weights (image and video), prompt-freedom of vq and mq,
// ScoreAndGrad, save/load round trip and config errors.
//
// Run: go test ./rewards -run Native
package rewards

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

func tinyTokenizer(t testing.TB) *diffusion.Tokenizer {
	tok, err := diffusion.BuildTokenizer([]string{"red apple", "green apple", "a dog moving left", "blue car"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func tinyConfig(kind string) NativeConfig {
	c := NativeConfig{Kind: kind, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 16, VisionLayers: 1, JointLayers: 1, Heads: 2, MLPRatio: 2, Dims: []string{DimVQ, DimTA}}
	if kind == KindVideo {
		c.Frames, c.TubeletFrames, c.Dims = 4, 2, []string{DimVQ, DimTA, DimMQ}
	}
	return c
}

func hostTensor(r *rand.Rand, std float64, shape ...int) *kernels.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * std)
	}
	return testDev.FromHost(v, shape...)
}

func toHost(t *kernels.Tensor) []float32 {
	v := make([]float32, t.Len())
	t.Dev.CopyToHost(v, t)
	return v
}

// fdCheck compares the analytic gradient of loss = sum_bd R_bd r_bd, r the scores forward
// returns, with central differences for n random elements of x.
func fdCheck(t *testing.T, name string, forward func() [][]float32, R [][]float32,
	x *kernels.Tensor, grad []float32, n int, r *rand.Rand) {
	t.Helper()
	loss := func() float64 {
		s := forward()
		l := 0.0
		for b := range s {
			for d := range s[b] {
				l += float64(R[b][d]) * float64(s[b][d])
			}
		}
		return l
	}
	xs := toHost(x)
	bad := 0
	for range n {
		i := r.IntN(len(xs))
		const h = 1e-2
		old := xs[i]
		xs[i] = old + h
		x.Dev.CopyFromHost(x, xs)
		lp := loss()
		xs[i] = old - h
		x.Dev.CopyFromHost(x, xs)
		lm := loss()
		xs[i] = old
		x.Dev.CopyFromHost(x, xs)
		fd := (lp - lm) / (2 * h)
		if d := math.Abs(float64(grad[i]) - fd); d > 2e-3+2e-2*math.Abs(fd) {
			bad++
			if bad <= 5 {
				t.Errorf("%s[%d]: analytic %.6g, finite difference %.6g", name, i, grad[i], fd)
			}
		}
	}
}

func TestNativeGradients(t *testing.T) {
	for _, kind := range []string{KindImage, KindVideo} {
		t.Run(kind, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m, err := NewNative(testDev, &kernels.RNG{Seed: 11}, tinyConfig(kind), tinyTokenizer(t))
			if err != nil {
				t.Fatal(err)
			}
			// Larger head and query weights than at initialisation so every path matters.
			for _, p := range m.Params() {
				if strings.HasPrefix(p.Name, "heads.") || p.Name == "reward_tokens" {
					testDev.Copy(p.W, hostTensor(r, 0.5, p.W.Shape...))
				}
			}
			B := 2
			pixels := hostTensor(r, 0.5, append([]int{B}, m.Config.SampleShape()...)...)
			prompts := []string{"red apple", "a dog moving left green"}
			D := len(m.Config.Dims)
			R := zeros(B, D)
			for b := range R {
				for d := range R[b] {
					R[b][d] = float32(r.NormFloat64())
				}
			}
			nn.ZeroGrad(m.Params())
			forward := func() [][]float32 { return m.Forward(pixels, prompts) }
			forward()
			dx := toHost(m.Backward(R))
			fdCheck(t, "pixels", forward, R, pixels, dx, 24, r)
			for _, p := range m.Params() {
				switch p.Name {
				case "reward_tokens", "token_embedding.weight", "patch_embed.proj.weight", "heads.ta.weight",
					"vision_blocks.0.attn.qkv.weight", "joint_blocks.0.mlp.fc1.weight", "vision_norm.weight", "final_norm.bias":
					fdCheck(t, p.Name, forward, R, p.W, toHost(p.G), 8, r)
				}
			}
		})
	}
}

func TestNativePromptFree(t *testing.T) {
	if !kernels.BatchInvariant() {
		t.Skip("OpenBLAS multiplies here: a row's result depends on the batch (kernels.BatchInvariant)")
	}
	m, err := NewNative(testDev, &kernels.RNG{Seed: 5}, tinyConfig(KindVideo), tinyTokenizer(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	one := hostTensor(r, 0.5, append([]int{1}, m.Config.SampleShape()...)...)
	pixels := testDev.New(append([]int{2}, m.Config.SampleShape()...)...)
	testDev.Copy(pixels.Row(0), one.Row(0))
	testDev.Copy(pixels.Row(1), one.Row(0))
	s, err := m.Score(Batch{Pixels: pixels, Prompts: []string{"red apple", "blue car moving"}})
	if err != nil {
		t.Fatal(err)
	}
	if s[0][0] != s[1][0] || s[0][2] != s[1][2] {
		t.Errorf("vq/mq depend on the prompt: %v vs %v", s[0], s[1])
	}
	if s[0][1] == s[1][1] {
		t.Errorf("ta does not depend on the prompt: %v", s)
	}
	// The same pixel gradient of vq for both prompts.
	_, g, err := m.ScoreAndGrad(Batch{Pixels: pixels, Prompts: []string{"red apple", "blue car moving"}}, []float64{1, 0, 0})
	if err != nil {
		t.Fatal(err)
	}
	gh := toHost(g)
	half := len(gh) / 2
	for i := range half {
		if gh[i] != gh[half+i] {
			t.Fatalf("vq gradient differs at %d: %v vs %v", i, gh[i], gh[half+i])
		}
	}
	if _, _, err := m.ScoreAndGrad(Batch{Pixels: pixels, Prompts: []string{"a", "b"}}, []float64{1}); err == nil {
		t.Error("wrong number of weights accepted")
	}
	if _, err := m.Score(Batch{Pixels: testDev.New(2, 3, 8, 8), Prompts: []string{"a", "b"}}); err == nil {
		t.Error("image batch accepted by a video model")
	}
}

func TestNativeSaveLoad(t *testing.T) {
	m, err := NewNative(testDev, &kernels.RNG{Seed: 3}, tinyConfig(KindImage), tinyTokenizer(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Calib = &Calibration{Dims: m.Dims(), Mean: []float64{0.5, -1}, Std: []float64{2, 3}, N: 10, TieEps: []float64{0.1, 0.2}}
	path := filepath.Join(t.TempDir(), "reward.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadNative(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	pixels := hostTensor(r, 0.5, 3, 3, 8, 8)
	prompts := []string{"red apple", "", "unknown words here"}
	a := m.Forward(pixels, prompts)
	b := back.Forward(pixels, prompts)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("scores after load %v, before %v", b, a)
	}
	if back.Calib == nil || back.Calib.Std[1] != 3 || back.Calib.TieEps[0] != 0.1 {
		t.Errorf("calibration after load %+v", back.Calib)
	}
	for _, p := range back.Params() {
		if p.G != nil {
			t.Fatalf("%s trainable after LoadNative", p.Name)
		}
	}
	sc, err := ScoreBatch(back, Batch{Pixels: pixels, Prompts: prompts})
	if err != nil {
		t.Fatal(err)
	}
	if z := (float64(sc.Raw[1][1]) + 1) / 3; math.Abs(sc.Z[1][1]-z) > 1e-6 {
		t.Errorf("z-score %v, want %v", sc.Z[1][1], z)
	}
	// A frozen model still gives pixel gradients.
	_, g, err := back.ScoreAndGrad(Batch{Pixels: pixels, Prompts: prompts}, []float64{1, 1})
	if err != nil || g == nil || testDev.SumSquares(g) == 0 {
		t.Errorf("frozen ScoreAndGrad: %v", err)
	}
}

func TestNativeConfigErrors(t *testing.T) {
	tok := tinyTokenizer(t)
	for name, edit := range map[string]func(*NativeConfig){
		"mq on images":     func(c *NativeConfig) { c.Dims = []string{DimMQ} },
		"no vision layers": func(c *NativeConfig) { c.VisionLayers = 0 },
		"unused joint":     func(c *NativeConfig) { c.Dims = []string{DimVQ} },
		"heads":            func(c *NativeConfig) { c.Heads = 3 },
		"patch":            func(c *NativeConfig) { c.PatchSize = 3 },
		"repeated dim":     func(c *NativeConfig) { c.Dims = []string{DimTA, DimTA} },
		"vocab":            func(c *NativeConfig) { c.VocabSize = 99 },
	} {
		c := tinyConfig(KindImage)
		edit(&c)
		if _, err := NewNative(testDev, nil, c, tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := tinyConfig(KindImage)
	c.Dims, c.JointLayers = []string{DimVQ}, 0
	if _, err := NewNative(testDev, nil, c, tok); err != nil {
		t.Errorf("vq-only model: %v", err)
	}
	// A frame rate belongs to a clip model, and is a rate.
	for kind, fps := range map[string]float64{KindImage: 4, KindVideo: -1} {
		c := tinyConfig(kind)
		c.SampleFPS = fps
		if _, err := NewNative(testDev, nil, c, tok); err == nil || !strings.Contains(err.Error(), "sample_fps") {
			t.Errorf("%s model, sample_fps %v: %v", kind, fps, err)
		}
	}
	v := tinyConfig(KindVideo)
	v.SampleFPS = 4
	if _, err := NewNative(testDev, nil, v, tok); err != nil {
		t.Errorf("a clip model of 4 fps: %v", err)
	}
}
