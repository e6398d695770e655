// Tests of the DiT velocity model: finite-difference gradients of a tiny model (parameters
// of every part and the noisy input), the reward slot being a no-op in a fresh model,
// padding invariance, image and video shapes, LoRA switches, and save/load (round trip,
// embedded bytes, mismatched or corrupt files refused with the file's name).
//
// Test: go test ./diffusion -run DiT

package diffusion

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

var testDev kernels.Device = kernels.NewCPU(0)

// tinyConfig is a model small enough for finite differences.
func tinyConfig(kind string, dims ...string) ModelConfig {
	c := ModelConfig{Kind: kind, ImageSize: 4, Channels: 3, Frames: 1, PatchSize: 2, TubeletFrames: 1,
		Width: 8, Depth: 2, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 6, TextHeads: 2, MaxTextLen: 4,
		VocabSize: 11, RewardFreq: 4, RewardDims: dims, Shift: 1}
	if kind == KindVideo {
		c.Frames, c.TubeletFrames = 4, 2
	}
	if c.RewardDims == nil {
		c.RewardDims = []string{}
	}
	return c
}

// tinyTokenizer has 8 words besides the special tokens (vocab 11) and max length 4.
func tinyTokenizer(t testing.TB) *Tokenizer {
	tok, err := BuildTokenizer([]string{"red apple", "green apple moving left", "blue car", "a"}, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 11 {
		t.Fatalf("tiny tokenizer has %d words", tok.VocabSize())
	}
	return tok
}

// hostValues returns n draws from N(0, std^2).
func hostValues(r *rand.Rand, n int, std float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64() * std)
	}
	return out
}

func toHost(x *kernels.Tensor) []float32 {
	out := make([]float32, x.Len())
	x.Dev.CopyToHost(out, x)
	return out
}

// randomizeParams gives every parameter (zero-initialised ones included) random values, as
// a trained model has, so no gradient path is switched off; skip names are left alone.
func randomizeParams(m *DiT, r *rand.Rand, std float64, skip ...string) {
outer:
	for _, p := range m.Params() {
		for _, s := range skip {
			if strings.HasPrefix(p.Name, s) {
				continue outer
			}
		}
		testDev.CopyFromHost(p.W, hostValues(r, p.W.Len(), std))
	}
}

func newTinyModel(t testing.TB, cfg ModelConfig, seed uint64) *DiT {
	m, err := NewDiT(testDev, &kernels.RNG{Seed: seed}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokenizer = tinyTokenizer(t)
	return m
}

// tinyInputs returns x_t, t, prompts (one padded, one full) and a reward condition with a
// dropped entry.
func tinyInputs(t testing.TB, m *DiT, r *rand.Rand) (*kernels.Tensor, []float32, Prompts, []float32) {
	B := 2
	x := testDev.FromHost(hostValues(r, B*m.Config.SampleSize(), 1), m.Config.BatchShape(B)...)
	p := EncodePrompts(m.Tokenizer, []string{"red apple", "green apple moving left"})
	var rw []float32
	if D := len(m.Config.RewardDims); D > 0 {
		rw = hostValues(r, B*D, 0.01)
		rw[1] = float32(math.NaN())
	}
	return x, []float32{0.3, 0.85}, p, rw
}

// fdCheck compares the analytic gradient of L = sum(v ⊙ R) with central differences for a
// random subset of the elements of each tensor in vars.
// R holds the loss weights the analytic pass used.
func fdCheck(t *testing.T, fwd func() *kernels.Tensor, R []float32, vars map[string]*kernels.Tensor, grads map[string]func() []float32, r *rand.Rand) {
	t.Helper()
	loss := func() float64 {
		y := toHost(fwd())
		s := 0.0
		for i := range y {
			s += float64(y[i]) * float64(R[i])
		}
		return s
	}
	for name, x := range vars {
		g := grads[name]()
		xs := toHost(x)
		idx := r.Perm(len(xs))
		if len(idx) > 12 {
			idx = idx[:12]
		}
		scale := 0.0
		type pair struct{ got, want float64 }
		var res []pair
		for _, i := range idx {
			const h = 3e-3
			orig := xs[i]
			xs[i] = orig + h
			testDev.CopyFromHost(x, xs)
			fp := loss()
			xs[i] = orig - h
			testDev.CopyFromHost(x, xs)
			fm := loss()
			xs[i] = orig
			testDev.CopyFromHost(x, xs)
			want := (fp - fm) / (2 * h)
			scale = math.Max(scale, math.Abs(want))
			res = append(res, pair{float64(g[i]), want})
		}
		for k, p := range res {
			if d := math.Abs(p.got - p.want); d > 2e-3+0.03*scale+0.02*math.Abs(p.want) {
				t.Errorf("grad %s[%d]: analytic %.6g, finite difference %.6g", name, idx[k], p.got, p.want)
			}
		}
	}
}

// checkModelGrad runs fdCheck over a few parameters of every part and the input x_t.
func checkModelGrad(t *testing.T, m *DiT, names []string, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	randomizeParams(m, r, 0.3)
	x, ts, p, rw := tinyInputs(t, m, r)
	fwd := func() *kernels.Tensor { return m.Forward(x, ts, p.IDs, p.Lengths, rw) }
	// The backward pass once, with the loss weights fdCheck will use.
	byName := map[string]nn.Param{}
	for _, q := range m.Params() {
		byName[q.Name] = q
	}
	vars := map[string]*kernels.Tensor{"x_t": x}
	grads := map[string]func() []float32{}
	for _, n := range names {
		q, ok := byName[n]
		if !ok {
			t.Fatalf("no parameter %q", n)
		}
		vars[n] = q.W
		grads[n] = func() []float32 { return toHost(q.G) }
	}
	var dx []float32
	grads["x_t"] = func() []float32 { return dx }
	out := fwd()
	R := hostValues(r, out.Len(), 1)
	nn.ZeroGrad(m.Params())
	dx = toHost(m.Backward(testDev.FromHost(R, out.Shape...)))
	fdCheck(t, fwd, R, vars, grads, r)
}

func TestDiTGradImage(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 1)
	checkModelGrad(t, m, []string{
		"x_embedder.proj.weight", "t_embedder.mlp.0.weight", "t_embedder.mlp.2.bias",
		"text_encoder.token_embedding.weight", "text_encoder.layers.0.attn.qkv.weight",
		"text_encoder.layers.0.norm1.weight", "text_encoder.final_norm.bias", "text_proj.weight",
		"pooled_text_proj.weight", "reward_embedder.null_embedding", "reward_embedder.mlp.0.weight",
		"reward_embedder.mlp.2.weight", "blocks.0.attn.proj.weight", "blocks.1.adaLN_modulation.1.weight",
		"blocks.1.mlp.fc1.weight", "final_layer.linear.weight", "final_layer.adaLN_modulation.1.bias",
	}, 7)
}

func TestDiTGradVideo(t *testing.T) {
	cfg := tinyConfig(KindVideo)
	cfg.TextWidth = cfg.Width // no text_proj
	m := newTinyModel(t, cfg, 2)
	checkModelGrad(t, m, []string{"x_embedder.proj.weight", "text_encoder.token_embedding.weight",
		"blocks.0.attn.qkv.weight", "final_layer.linear.weight"}, 8)
}

func TestDiTShapesAndFreshOutput(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 1))
	for _, kind := range []string{KindImage, KindVideo} {
		m := newTinyModel(t, tinyConfig(kind), 3)
		x, ts, p, _ := tinyInputs(t, m, r)
		v := m.Forward(x, ts, p.IDs, p.Lengths, nil)
		if !slices.Equal(v.Shape, x.Shape) {
			t.Errorf("%s: v %v for x_t %v", kind, v.Shape, x.Shape)
		}
		for i, y := range toHost(v) {
			if y != 0 {
				t.Fatalf("%s: a fresh model predicts v[%d] = %g, want 0 (zero final layer)", kind, i, y)
			}
		}
		dx := m.Backward(testDev.FromHost(hostValues(r, v.Len(), 1), v.Shape...))
		if !slices.Equal(dx.Shape, x.Shape) {
			t.Errorf("%s: dx %v for x_t %v", kind, dx.Shape, x.Shape)
		}
	}
	want := map[string][]int{KindImage: {2, 3, 4, 4}, KindVideo: {2, 4, 3, 4, 4}}
	for kind, s := range want {
		c := tinyConfig(kind)
		if got := c.BatchShape(2); !slices.Equal(got, s) {
			t.Errorf("%s batch shape %v, want %v", kind, got, s)
		}
	}
}

func TestDiTParamCount(t *testing.T) {
	for _, cfg := range []ModelConfig{tinyConfig(KindImage, "vq", "ta", "mq"), tinyConfig(KindVideo), DefaultImageConfig()} {
		m, err := NewDiT(testDev, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		seen := map[string]bool{}
		for _, p := range m.Params() {
			if seen[p.Name] {
				t.Errorf("duplicate parameter name %q", p.Name)
			}
			seen[p.Name] = true
			n += p.W.Len()
		}
		if got := cfg.ParamCount(); got != n {
			t.Errorf("%s: ParamCount %d, model has %d", cfg.Kind, got, n)
		}
	}
}

// A fresh model ignores the reward condition exactly: the reward MLP's last layer is zero.
func TestDiTFreshRewardSlotIsNoOp(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 4)
	r := rand.New(rand.NewPCG(4, 1))
	// A "trained" generator whose reward slot was never trained.
	randomizeParams(m, r, 0.3, "reward_embedder")
	x, ts, p, _ := tinyInputs(t, m, r)
	without := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	with := toHost(m.Forward(x, ts, p.IDs, p.Lengths, []float32{2, -1, 0.5, 3}))
	if !slicesEqual(without, with) {
		t.Fatal("a fresh reward slot changed the output")
	}
	// Once the slot has weights, the condition matters.
	testDev.CopyFromHost(m.Reward.FC2.Weight, hostValues(r, m.Reward.FC2.Weight.Len(), 0.3))
	with = toHost(m.Forward(x, ts, p.IDs, p.Lengths, []float32{2, -1, 0.5, 3}))
	if slicesEqual(without, with) {
		t.Fatal("a trained reward slot does not change the output")
	}
}

// RemakeRewardSlot replaces a slot trained on ∅ only (as pre-training leaves it) with one for
// other dimensions that ignores the condition and gives the same output as before; a slot
// with condition maxima (taught by reward-cond) is refused and kept.
func TestDiTRemakeRewardSlot(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindVideo, "vq", "ta"), 7)
	r := rand.New(rand.NewPCG(7, 1))
	randomizeParams(m, r, 0.3) // the reward slot too: its ∅ output is not zero
	x, ts, p, _ := tinyInputs(t, m, r)
	before := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	if err := m.RemakeRewardSlot(&kernels.RNG{Seed: 1}, []string{"vq", "ta", "mq"}); err != nil {
		t.Fatal(err)
	}
	if got := m.Config.RewardDims; !slices.Equal(got, []string{"vq", "ta", "mq"}) || len(m.Reward.Dims) != 3 {
		t.Fatalf("remade slot: dims %v / %v", got, m.Reward.Dims)
	}
	B := x.Shape[0]
	cond := make([]float32, 3*B)
	for i := range cond {
		cond[i] = float32(i) - 1.5
	}
	for _, c := range [][]float32{nil, cond} {
		if after := toHost(m.Forward(x, ts, p.IDs, p.Lengths, c)); !slicesEqual(before, after) {
			t.Fatalf("condition %v: the remade slot changed the output", c)
		}
	}
	m.RewardConditionMax = []float64{math.NaN(), 1.5, math.NaN()}
	if err := m.RemakeRewardSlot(&kernels.RNG{Seed: 1}, []string{"ta"}); err == nil || !strings.Contains(err.Error(), "has been taught") {
		t.Fatalf("remaking a taught slot: %v", err)
	}
	if len(m.Config.RewardDims) != 3 {
		t.Fatalf("a refused remake changed the dims to %v", m.Config.RewardDims)
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// The ids at padding positions must not matter.
func TestDiTPaddingInvariance(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 5)
	r := rand.New(rand.NewPCG(5, 1))
	randomizeParams(m, r, 0.3)
	x, ts, p, _ := tinyInputs(t, m, r)
	a := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	ids := append([]int32(nil), p.IDs...)
	ids[2], ids[3] = 7, 9 // caption 0 has 2 real tokens
	b := toHost(m.Forward(x, ts, ids, p.Lengths, nil))
	if !slicesEqual(a, b) {
		t.Fatal("changing padding ids changed the output")
	}
}

func TestDiTLoRA(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 6)
	r := rand.New(rand.NewPCG(6, 1))
	randomizeParams(m, r, 0.3)
	x, ts, p, _ := tinyInputs(t, m, r)
	base := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	m.EnableLoRA(&kernels.RNG{Seed: 9}, 2, 4)
	for _, q := range m.Params() {
		if (q.G != nil) != strings.Contains(q.Name, "lora_") {
			t.Errorf("after EnableLoRA %s trainable = %v", q.Name, q.G != nil)
		}
	}
	if got := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil)); !slicesEqual(base, got) {
		t.Fatal("a fresh adapter changed the output")
	}
	for _, q := range m.Params() {
		if strings.HasSuffix(q.Name, "lora_B.weight") {
			testDev.CopyFromHost(q.W, hostValues(r, q.W.Len(), 0.3))
		}
	}
	adapted := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	m.SetLoRAEnabled(false)
	if got := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil)); !slicesEqual(base, got) {
		t.Fatal("disabled adapters do not give back the base model")
	}
	m.SetLoRAEnabled(true)
	if err := m.Save(filepath.Join(t.TempDir(), "m.safetensors")); err == nil {
		t.Error("saving a model with adapters should ask for a merge")
	}
	m.MergeLoRA()
	got := toHost(m.Forward(x, ts, p.IDs, p.Lengths, nil))
	for i := range got {
		if math.Abs(float64(got[i]-adapted[i])) > 1e-4 {
			t.Fatalf("merged model differs at %d: %g vs %g", i, got[i], adapted[i])
		}
	}
}

func TestDiTSaveLoadRoundTrip(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindVideo, "vq"), 7)
	r := rand.New(rand.NewPCG(7, 1))
	randomizeParams(m, r, 0.3)
	x, ts, p, rw := tinyInputs(t, m, r)
	want := toHost(m.Forward(x, ts, p.IDs, p.Lengths, rw))
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadDiT(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	if !m2.Config.Equal(&m.Config) {
		t.Fatalf("config after load differs: %s", m.Config.Diff(&m2.Config))
	}
	if got := toHost(m2.Forward(x, ts, p.IDs, p.Lengths, rw)); !slicesEqual(want, got) {
		t.Fatal("loaded model gives different outputs")
	}
	if ids, _, _, _ := m2.Tokenizer.Encode("green apple"); ids[0] != p.IDs[4] {
		t.Error("tokenizer not restored")
	}
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m3, err := LoadDiTFromBytes(testDev, "embedded:model", buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := toHost(m3.Forward(x, ts, p.IDs, p.Lengths, rw)); !slicesEqual(want, got) {
		t.Fatal("model loaded from bytes gives different outputs")
	}
}

func TestDiTLoadRefusesMismatch(t *testing.T) {
	dir := t.TempDir()
	m := newTinyModel(t, tinyConfig(KindImage), 8)
	path := filepath.Join(dir, "model.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	ck, err := nn.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}

	// A config that does not describe the tensors.
	cfg := m.Config
	cfg.Depth = 3
	ck.Config, _ = json.Marshal(cfg)
	bad := filepath.Join(dir, "deeper.safetensors")
	if err := ck.Save(bad); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDiT(testDev, bad)
	var me *nn.MismatchError
	if err == nil || !errors.As(err, &me) || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "blocks.2") {
		t.Errorf("deeper config: err = %v, want a mismatch naming %s and blocks.2", err, bad)
	}

	// LoadWeights into a model of another architecture.
	other := newTinyModel(t, tinyConfig(KindVideo), 8)
	ck2, _ := nn.LoadCheckpoint(path)
	if err := other.LoadWeights(ck2); err == nil || !strings.Contains(err.Error(), "kind") || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadWeights into a video model: err = %v", err)
	}

	// An invalid config, a missing tokenizer, a corrupt file.
	ck3, _ := nn.LoadCheckpoint(path)
	ck3.Config = []byte(`{"kind":"audio"}`)
	p3 := filepath.Join(dir, "audio.safetensors")
	ck3.Save(p3)
	if _, err := LoadDiT(testDev, p3); err == nil || !strings.Contains(err.Error(), p3) || !strings.Contains(err.Error(), "kind") {
		t.Errorf("invalid config: err = %v", err)
	}
	ck4, _ := nn.LoadCheckpoint(path)
	delete(ck4.Extra, metaTokenizer)
	p4 := filepath.Join(dir, "notok.safetensors")
	ck4.Save(p4)
	if _, err := LoadDiT(testDev, p4); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("no tokenizer: err = %v", err)
	}
	buf, _ := os.ReadFile(path)
	buf[len(buf)-3] ^= 0xff
	p5 := filepath.Join(dir, "corrupt.safetensors")
	os.WriteFile(p5, buf, 0o644)
	if _, err := LoadDiT(testDev, p5); err == nil || !strings.Contains(err.Error(), p5) {
		t.Errorf("corrupt file: err = %v", err)
	}
	if _, err := LoadDiT(testDev, filepath.Join(dir, "none.safetensors")); err == nil || !strings.Contains(err.Error(), "none.safetensors") {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := LoadDiTFromBytes(testDev, "junk", bytes.Repeat([]byte{1}, 20)); err == nil || !strings.Contains(err.Error(), "junk") {
		t.Errorf("junk bytes: err = %v", err)
	}
}

// A frozen model (guidance needs only dv/dx_t) gives the same input gradient and touches no
// parameter gradient.
func TestDiTFrozenInputGradient(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage, "vq"), 9)
	r := rand.New(rand.NewPCG(9, 1))
	randomizeParams(m, r, 0.3)
	x, ts, p, rw := tinyInputs(t, m, r)
	v := m.Forward(x, ts, p.IDs, p.Lengths, rw)
	dv := testDev.FromHost(hostValues(r, v.Len(), 1), v.Shape...)
	want := toHost(m.Backward(dv))
	m.SetTrainable(false)
	for _, q := range m.Params() {
		if q.G != nil {
			t.Fatalf("%s still has a gradient", q.Name)
		}
	}
	m.Forward(x, ts, p.IDs, p.Lengths, rw)
	if got := toHost(m.Backward(dv)); !slicesEqual(got, want) {
		t.Fatal("frozen model gives another dx_t")
	}
}

// ForwardText with the captions encoded once, and ForwardNoGrad, give Forward's velocity
// bit for bit, step after step, with and without text_proj and a reward condition, the
// blocks' modulations stacked or not (their MLPs keep no pre-activations, the blocks past
// the first two run in the buffers of the first two); Backward after either panics, and a
// Forward restores it.
func TestForwardTextMatchesForward(t *testing.T) {
	image, video := tinyConfig(KindImage, "vq", "ta"), tinyConfig(KindVideo)
	video.TextWidth = video.Width // no text_proj
	image.Depth, video.Depth = 5, 4
	for _, name := range []string{"image", "video", "image unstacked"} {
		cfg := image
		if name == "video" {
			cfg = video
		}
		m := newTinyModel(t, cfg, 3)
		if name == "image unstacked" {
			m.UnstackAdaLN()
		}
		r := rand.New(rand.NewPCG(4, 5))
		randomizeParams(m, r, 0.3) // no zero-initialized projection hides a part of the text path
		x, ts, p, rw := tinyInputs(t, m, r)
		enc := m.EncodeText(p.IDs, p.Lengths)
		for step := range 3 {
			ts := []float32{ts[0] / float32(step+1), ts[1] / float32(step+1)}
			want := toHost(m.Forward(x, ts, p.IDs, p.Lengths, rw))
			got := toHost(m.ForwardText(x, ts, enc, rw))
			if !slices.Equal(got, want) {
				t.Fatalf("%s step %d: ForwardText differs from Forward", name, step)
			}
			if got := toHost(m.ForwardNoGrad(x, ts, p.IDs, p.Lengths, rw)); !slices.Equal(got, want) {
				t.Fatalf("%s step %d: ForwardNoGrad differs from Forward", name, step)
			}
			dev := x.Dev
			dev.Scale(x, 0.9) // the next step's x
		}
		for _, last := range []string{"ForwardText", "ForwardNoGrad"} {
			if last == "ForwardText" {
				m.ForwardText(x, ts, enc, rw)
			} else {
				m.ForwardNoGrad(x, ts, p.IDs, p.Lengths, rw)
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s: Backward after %s did not panic", name, last)
					}
				}()
				m.Backward(testDev.FromHost(make([]float32, x.Len()), x.Shape...))
			}()
		}
		m.Forward(x, ts, p.IDs, p.Lengths, rw)
		m.Backward(testDev.FromHost(make([]float32, x.Len()), x.Shape...)) // must not panic
		one := m.EncodeText(p.IDs[:m.Config.MaxTextLen], p.Lengths[:1])
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: ForwardText of a batch of 2 with 1 caption did not panic", name)
				}
			}()
			m.ForwardText(x, ts, one, rw)
		}()
		one.Free()
		enc.Free()
	}
}

// BackwardParams accumulates the gradients of the parameters that learn (finite
// differences, fdCheck), whichever parts learn: all of it, LoRA adapters on the blocks (the
// conditioning, text encoder and patch embedding frozen: their passes left out), the text
// encoder alone (its gradient reaches it through the text tokens and the pooled caption), the
// timestep, reward and pooled-caption embedders alone, the patch embedding alone, the
// blocks' modulations alone.
func TestDiTBackwardParams(t *testing.T) {
	for _, c := range []struct {
		name  string
		learn func(m *DiT)
	}{
		{"all", func(m *DiT) {}},
		{"lora", func(m *DiT) { m.EnableLoRA(&kernels.RNG{Seed: 9}, 2, 4) }},
		{"text encoder", func(m *DiT) { m.SetTrainable(false); m.Text.SetTrainable(true) }},
		{"timestep embedder", func(m *DiT) { m.SetTrainable(false); m.TEmbedder.FC1.SetTrainable(true) }},
		{"patch embedding", func(m *DiT) { m.SetTrainable(false); m.XEmbedder.Proj.SetTrainable(true) }},
		{"reward embedder", func(m *DiT) { m.SetTrainable(false); m.Reward.SetTrainable(true) }},
		{"pooled caption", func(m *DiT) { m.SetTrainable(false); m.PooledTextProj.SetTrainable(true) }},
		{"adaLN stack", func(m *DiT) { m.SetTrainable(false); m.AdaLN.SetTrainable(true) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := newTinyModel(t, tinyConfig(KindImage, "vq"), 12)
			r := rand.New(rand.NewPCG(12, 1))
			randomizeParams(m, r, 0.3)
			c.learn(m)
			vars := map[string]*kernels.Tensor{}
			grads := map[string]func() []float32{}
			for _, q := range m.Params() {
				if strings.HasSuffix(q.Name, "lora_B.weight") { // a trained adapter: B != 0
					testDev.CopyFromHost(q.W, hostValues(r, q.W.Len(), 0.3))
				}
				if q.G != nil {
					vars[q.Name] = q.W
					grads[q.Name] = func() []float32 { return toHost(q.G) }
				}
			}
			x, ts, p, rw := tinyInputs(t, m, r)
			fwd := func() *kernels.Tensor { return m.Forward(x, ts, p.IDs, p.Lengths, rw) }
			out := fwd()
			R := hostValues(r, out.Len(), 1)
			nn.ZeroGrad(m.Params())
			m.BackwardParams(testDev.FromHost(R, out.Shape...))
			fdCheck(t, fwd, R, vars, grads, r)
		})
	}
}
