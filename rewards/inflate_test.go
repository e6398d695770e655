// Tests of the native reward model's inflation (inflate.go): a static clip of one tubelet in
// time scores as the image does on vq and ta; every copied tensor equals its source, the
// patch embedding follows its formula and a new dimension (mq) and the new words keep a
// fresh model's draws; the vocabulary keeps the image model's ids and appends the clip
// captions' new words; mismatched models are refused.
//
// Test: go test ./rewards -run Inflate
package rewards

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// randomImageModel is a tiny image reward model with every weight drawn at std 0.3 (heads
// and queries too, so that every path matters), for the tokenizer of tinyTokenizer.
func randomImageModel(t *testing.T) *Native {
	t.Helper()
	img, err := NewNative(testDev, nil, tinyConfig(KindImage), tinyTokenizer(t))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range img.Params() {
		testDev.Copy(p.W, hostTensor(r, 0.3, p.W.Shape...))
	}
	return img
}

// inflatedNativePair returns the video model of frames frames in tubelets of pt with dims
// inflated from img, and a fresh model built the same way (same seed) without the
// inflation. Its tokenizer extends img's with "up" and "zooming".
func inflatedNativePair(t *testing.T, img *Native, frames, pt int, dims []string, seed uint64) (vid, fresh *Native) {
	t.Helper()
	tok := img.Tokenizer.Extend([]string{"red apple moving up", "blue car zooming"})
	cfg := InflatedNativeConfig(img.Config, frames, pt, dims)
	cfg.VocabSize = tok.VocabSize()
	var err error
	for _, m := range []**Native{&vid, &fresh} {
		if *m, err = NewNative(testDev, &kernels.RNG{Seed: seed}, cfg, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := InflateNative(vid, img); err != nil {
		t.Fatal(err)
	}
	return vid, fresh
}

// With one tubelet in time and the image model's dimensions a static clip (the image in
// every frame) is the image's token sequence: vq and ta are the image model's scores. (A new
// dimension's query token would be one more key for every token.)
func TestInflateNativeStaticClip(t *testing.T) {
	img := randomImageModel(t)
	const frames = 2
	vid, _ := inflatedNativePair(t, img, frames, frames, []string{DimVQ, DimTA}, 7)
	r := rand.New(rand.NewPCG(5, 6))
	B, n := 3, 3*8*8
	x := toHost(hostTensor(r, 0.5, B, 3, 8, 8))
	clip := make([]float32, 0, B*frames*n)
	for b := range B {
		for range frames {
			clip = append(clip, x[b*n:(b+1)*n]...)
		}
	}
	// Words the image model knows, and "zebra", unknown to both models.
	prompts := []string{"red apple", "a dog moving left", "blue zebra"}
	want := img.Forward(testDev.FromHost(x, B, 3, 8, 8), prompts)
	got := vid.Forward(testDev.FromHost(clip, B, frames, 3, 8, 8), prompts)
	for b := range B {
		for d, name := range []string{DimVQ, DimTA} {
			if g, w := float64(got[b][d]), float64(want[b][d]); math.Abs(g-w) > 1e-5*(1+math.Abs(w)) {
				t.Errorf("sample %d %s: static clip %.7g, image %.7g", b, name, g, w)
			}
		}
	}
	if want[0][1] == want[2][1] {
		t.Errorf("ta does not depend on the prompt: %v", want)
	}
}

func TestInflateNativeCopiesWeights(t *testing.T) {
	img := randomImageModel(t)
	const frames, pt = 4, 2
	// Another order than the image model's: dimensions are matched by name.
	dims := []string{DimTA, DimMQ, DimVQ}
	vid, fresh := inflatedNativePair(t, img, frames, pt, dims, 9)
	C, pp, Vi := img.Config.Width, 16, img.Config.VocabSize
	if vid.Config.VocabSize != Vi+2 {
		t.Fatalf("vocabulary of %d words, want %d + 2", vid.Config.VocabSize, Vi)
	}
	src, freshW := map[string][]float32{}, map[string][]float32{}
	for _, p := range img.Params() {
		src[p.Name] = toHost(p.W)
	}
	for _, p := range fresh.Params() {
		freshW[p.Name] = toHost(p.W)
	}
	// mean_t F(t) over t = 0, 1 with F(t) = PosEmbed1D(C, t) written out: F(0) = [0.. | 1..],
	// F(1) = [sin w_i | cos w_i], w_i = 10000^(-i/(C/2)).
	meanF := make([]float64, C)
	for i := range C / 2 {
		w := math.Pow(10000, -float64(i)/float64(C/2))
		meanF[i], meanF[C/2+i] = math.Sin(w)/2, (1+math.Cos(w))/2
	}
	for _, p := range vid.Params() {
		got, s := toHost(p.W), src[p.Name]
		bad := func(i int, want float64) {
			t.Helper()
			if math.Abs(float64(got[i])-want) > 1e-6 {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, i, got[i], want)
			}
		}
		switch {
		case p.Name == "patch_embed.proj.weight": // (C, 3*pt*pp) = image (C, 3*pp) / pt on each frame
			for o := range C {
				for c := range 3 {
					for dt := range pt {
						for k := range pp {
							bad(o*3*pt*pp+(c*pt+dt)*pp+k, float64(s[o*3*pp+c*pp+k])/pt)
						}
					}
				}
			}
		case p.Name == "patch_embed.proj.bias": // b - mean_t F(t)
			for i := range C {
				bad(i, float64(s[i])-meanF[i])
			}
		case p.Name == "token_embedding.weight": // image rows, then a fresh model's rows
			if !slices.Equal(got[:Vi*C], s) || !slices.Equal(got[Vi*C:], freshW[p.Name][Vi*C:]) {
				t.Errorf("%s: old rows copied %v, new rows fresh %v", p.Name, slices.Equal(got[:Vi*C], s),
					slices.Equal(got[Vi*C:], freshW[p.Name][Vi*C:]))
			}
		case p.Name == "reward_tokens": // ta, vq: the image model's rows 1 and 0; mq: a fresh model's
			for d, from := range map[int][]float32{0: s[C : 2*C], 1: freshW[p.Name][C : 2*C], 2: s[:C]} {
				if !slices.Equal(got[d*C:(d+1)*C], from) {
					t.Errorf("reward token %d (%s) is not the expected one", d, dims[d])
				}
			}
		case strings.HasPrefix(p.Name, "heads.mq."):
			if !slices.Equal(got, freshW[p.Name]) {
				t.Errorf("%s is not a fresh model's", p.Name)
			}
		default:
			if !slices.Equal(got, s) {
				t.Errorf("%s is not the image model's", p.Name)
			}
		}
	}
	if vid.Calib != nil {
		t.Errorf("inflated model calibrated: %+v", vid.Calib)
	}
}

// The vocabulary of a video model inflated from an image model of the synthetic data keeps
// the image model's ids and appends the clip captions' new words.
func TestInflateNativeVocabulary(t *testing.T) {
	d, clips := synthData(true)
	imgGen, err := NewPairGen(d, nil, PairConfig{Dims: []string{DimVQ, DimTA}})
	if err != nil {
		t.Fatal(err)
	}
	vidGen, err := NewPairGen(d, clips, PairConfig{Dims: []string{DimVQ, DimTA, DimMQ}})
	if err != nil {
		t.Fatal(err)
	}
	base, err := BuildTokenizer(imgGen, 8)
	if err != nil {
		t.Fatal(err)
	}
	tok := ExtendTokenizer(base, vidGen)
	n := base.VocabSize()
	if tok.MaxLen != 8 || !slices.Equal(tok.Vocab[:n], base.Vocab) || !slices.Contains(tok.Vocab[n:], "moving") {
		t.Fatalf("extended vocabulary %q (max length %d), base %q", tok.Vocab, tok.MaxLen, base.Vocab)
	}
	for _, w := range tok.Vocab[n:] {
		if slices.Contains(base.Vocab, w) {
			t.Errorf("%q added twice", w)
		}
	}
	// Every word of a vocabulary built from scratch on the clips is there.
	scratch, _ := BuildTokenizer(vidGen, 8)
	for _, w := range scratch.Vocab {
		if !slices.Contains(tok.Vocab, w) {
			t.Errorf("clip word %q missing", w)
		}
	}
}

// An image reward model started from another (new words appended) scores as its source on
// the source's words.
func TestInflateNativeImage(t *testing.T) {
	img := randomImageModel(t)
	tok := img.Tokenizer.Extend([]string{"purple zebra"})
	cfg := img.Config
	cfg.VocabSize = tok.VocabSize()
	dst, err := NewNative(testDev, &kernels.RNG{Seed: 9}, cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := InflateNative(dst, img); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	B := 3
	x := toHost(hostTensor(r, 0.5, B, 3, 8, 8))
	prompts := []string{"red apple", "a dog moving left", "blue car"}
	want := img.Forward(testDev.FromHost(x, B, 3, 8, 8), prompts)
	got := dst.Forward(testDev.FromHost(x, B, 3, 8, 8), prompts)
	for b := range B {
		for d := range want[b] {
			if g, w := float64(got[b][d]), float64(want[b][d]); math.Abs(g-w) > 1e-6*(1+math.Abs(w)) {
				t.Errorf("sample %d dimension %d: %.7g, source %.7g", b, d, g, w)
			}
		}
	}
}

func TestInflateNativeErrors(t *testing.T) {
	img := randomImageModel(t)
	vid, _ := inflatedNativePair(t, img, 4, 2, []string{DimVQ, DimTA, DimMQ}, 1)
	tok := img.Tokenizer.Extend([]string{"red apple moving up"})
	build := func(edit func(*NativeConfig), tok2 ...string) *Native {
		t.Helper()
		k := tok
		if len(tok2) > 0 {
			k = tok.Extend(tok2)
			k.Vocab[3], k.Vocab[4] = k.Vocab[4], k.Vocab[3] // the image model's ids moved
		}
		cfg := InflatedNativeConfig(img.Config, 4, 2, []string{DimVQ, DimTA, DimMQ})
		edit(&cfg)
		cfg.VocabSize = k.VocabSize()
		m, err := NewNative(testDev, nil, cfg, k)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	imageOf := func(edit func(*NativeConfig)) *Native {
		t.Helper()
		cfg := img.Config
		edit(&cfg)
		m, err := NewNative(testDev, nil, cfg, img.Tokenizer)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for name, c := range map[string]struct {
		dst, src *Native
		want     string
	}{
		"video source":  {build(func(*NativeConfig) {}), vid, "the source is a video reward model"},
		"image width":   {imageOf(func(c *NativeConfig) { c.Width, c.Heads = 8, 2 }), img, "is not the image model's"},
		"width":         {build(func(c *NativeConfig) { c.Width, c.Heads = 8, 2 }), img, "is not the image model's inflated one"},
		"joint layers":  {build(func(c *NativeConfig) { c.JointLayers = 2 }), img, "is not the image model's inflated one"},
		"moved word id": {build(func(*NativeConfig) {}, "zooming"), img, "does not keep the image model's"},
	} {
		if err := InflateNative(c.dst, c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}
