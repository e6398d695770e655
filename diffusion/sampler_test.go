// Tests of the samplers and the image output: Euler, Heun and SDE land exactly on the point
// an exact velocity field leads to; Heun's evaluation count; a fresh model returns its
// initial noise; seeds give the same sample regardless of batching; guidance matches
// separate conditional and unconditional passes; option errors; PNG, grid and GIF files.
//
// Test: go test ./diffusion -run 'Sample|Denoise|Guid|Image|GIF|Grid'

package diffusion

import (
	"errors"
	"image"
	"image/gif"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// The field v(x, s) = (x - c)/s moves every point along the straight line to c, so each
// sampler (Euler exactly, Heun exactly, SDE through its final Euler step) must end at c.
func TestDenoiseExactField(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	c := hostValues(r, 2*12, 1)
	ct := testDev.FromHost(c, 2, 12)
	for _, sampler := range Samplers {
		for _, shift := range []float64{1, 3} {
			sched, _ := NewFlowMatchEulerScheduler(shift)
			sched.SetTimesteps(7)
			x := testDev.FromHost(hostValues(r, 24, 1), 2, 12)
			calls := 0
			vbuf := testDev.New(2, 12)
			vel := func(x *kernels.Tensor, s float64) *kernels.Tensor {
				calls++
				testDev.Axpby(vbuf, float32(1/s), x, float32(-1/s), ct)
				return vbuf
			}
			Denoise(testDev, sched, x, vel, sampler, 0.7, sampleStreams(3, 0, 2), nil)
			got := toHost(x)
			for i := range c {
				if math.Abs(float64(got[i]-c[i])) > 2e-5 {
					t.Fatalf("%s shift %v: x[%d] = %v, want %v", sampler, shift, i, got[i], c[i])
				}
			}
			want := 7
			if sampler == SamplerHeun {
				want = 13
			}
			if calls != want {
				t.Errorf("%s: %d velocity evaluations, want %d", sampler, calls, want)
			}
		}
	}
}

// A fresh model (v = 0) returns its initial noise; seeds and stream numbering make sample i
// independent of the batch it is generated in.
func TestSampleSeeds(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 1)
	o := DefaultSampleOptions()
	o.NumInferenceSteps, o.Seed = 3, 42
	x, _, err := Sample(m, []string{"red apple", "blue car"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesEqual(toHost(x), toHost(InitialNoise(testDev, &m.Config, 2, 42, 0))) {
		t.Fatal("a fresh model did not return its initial noise")
	}

	randomizeParams(m, rand.New(rand.NewPCG(2, 2)), 0.3)
	for _, sampler := range Samplers {
		o.Sampler = sampler
		a, _, _ := Sample(m, []string{"red apple", "blue car"}, o)
		b, _, _ := Sample(m, []string{"red apple", "blue car"}, o)
		if !slicesEqual(toHost(a), toHost(b)) {
			t.Fatalf("%s: same seed, different samples", sampler)
		}
		o1 := o
		o1.FirstIndex = 1
		single, _, _ := Sample(m, []string{"blue car"}, o1)
		D := m.Config.SampleSize()
		if kernels.BatchInvariant() && !slicesEqual(toHost(a)[D:], toHost(single)) {
			t.Fatalf("%s: sample 1 depends on its batch", sampler)
		}
		o2 := o
		o2.Seed = 43
		c, _, _ := Sample(m, []string{"red apple", "blue car"}, o2)
		if slicesEqual(toHost(a), toHost(c)) {
			t.Fatalf("%s: seeds 42 and 43 give the same samples", sampler)
		}
	}
	// Latents replace the seeded noise.
	o.Sampler = SamplerEuler
	lat := InitialNoise(testDev, &m.Config, 2, 42, 0)
	o.Latents = lat
	o.Seed = 7
	a, _, _ := Sample(m, []string{"red apple", "blue car"}, o)
	o.Latents, o.Seed = nil, 42
	b, _, _ := Sample(m, []string{"red apple", "blue car"}, o)
	if !slicesEqual(toHost(a), toHost(b)) {
		t.Fatal("latents are not used as the initial noise")
	}
}

func TestGuidedVelocityMatchesSeparatePasses(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage, "vq"), 3)
	r := rand.New(rand.NewPCG(3, 3))
	randomizeParams(m, r, 0.3)
	x := testDev.FromHost(hostValues(r, 2*m.Config.SampleSize(), 1), m.Config.BatchShape(2)...)
	cond := EncodePrompts(m.Tokenizer, []string{"red apple", "blue car"})
	reward := []float32{1.5, -0.5}
	g := NewGuidedVelocity(m, cond, reward, 3)
	got := toHost(g.Velocity(x, 0.6))
	ts := []float32{0.6, 0.6}
	vc := toHost(m.Forward(x, ts, cond.IDs, cond.Lengths, reward))
	null := NullPrompts(2, m.Config.MaxTextLen)
	vu := toHost(m.Forward(x, ts, null.IDs, null.Lengths, nil))
	for i := range got {
		want := vu[i] + 3*(vc[i]-vu[i])
		if math.Abs(float64(got[i]-want)) > 1e-4 {
			t.Fatalf("guided v[%d] = %v, want %v", i, got[i], want)
		}
	}
	// Scale 1: the conditional branch alone.
	g1 := NewGuidedVelocity(m, cond, reward, 1)
	if !slicesEqual(toHost(g1.Velocity(x, 0.6)), vc) {
		t.Fatal("guidance scale 1 is not the conditional velocity")
	}
}

func TestSampleOptionErrors(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 4)
	for _, tt := range []struct {
		edit func(o *SampleOptions)
		want string
	}{
		{func(o *SampleOptions) { o.NumInferenceSteps = 0 }, "--num-inference-steps must be >= 1"},
		{func(o *SampleOptions) { o.GuidanceScale = -1 }, "--guidance-scale must be a finite number >= 0"},
		{func(o *SampleOptions) { o.Sampler = "dpm" }, `--sampler "dpm"`},
		{func(o *SampleOptions) { o.Shift = -2 }, "--shift"},
		{func(o *SampleOptions) { o.Reward = []float32{1} }, "no reward-condition slot"},
	} {
		o := DefaultSampleOptions()
		tt.edit(&o)
		if _, _, err := Sample(m, []string{"red apple"}, o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
	if _, _, err := Sample(m, nil, DefaultSampleOptions()); err == nil {
		t.Error("no prompts accepted")
	}
	_, p, err := Sample(m, []string{"purple apple"}, SampleOptions{NumInferenceSteps: 1})
	if err != nil || len(p.Unknown) != 1 || p.Unknown[0] != "purple" {
		t.Errorf("unknown words %v, err %v", p.Unknown, err)
	}
}

func TestImageConversionAndFiles(t *testing.T) {
	data := []float32{-1, 1, 0, 2, -1, 1, 0.5, -0.5, -1, 1, 1, 1} // (3,2,2)
	img := ImageFromCHW(data, 3, 2, 2)
	if got := img.NRGBAAt(0, 0); got.R != 0 || got.G != 0 || got.B != 0 || got.A != 255 {
		t.Errorf("pixel (0,0) = %v", got)
	}
	if got := img.NRGBAAt(1, 0); got.R != 255 || got.G != 255 || got.B != 255 {
		t.Errorf("pixel (1,0) = %v", got)
	}
	if got := img.NRGBAAt(0, 1); got.R != 128 || got.G != 191 || got.B != 255 {
		t.Errorf("pixel (0,1) = %v", got)
	}
	g := Grid([]image.Image{img, img, img}, 0, 3, 1)
	if g.Bounds().Dx() != 2*6+3 || g.Bounds().Dy() != 2*6+3 {
		t.Errorf("grid of 3 is %v", g.Bounds())
	}

	dir := t.TempDir()
	p := filepath.Join(dir, "a.png")
	if err := WritePNG(p, img); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	back, err := png.Decode(f)
	f.Close()
	if err != nil || back.Bounds().Dx() != 2 {
		t.Fatalf("png read back: %v", err)
	}
	gp := filepath.Join(dir, "a.gif")
	if err := WriteGIF(gp, []image.Image{img, g}, 10); err != nil {
		t.Fatal(err)
	}
	f, _ = os.Open(gp)
	anim, err := gif.DecodeAll(f)
	f.Close()
	if err != nil || len(anim.Image) != 2 {
		t.Fatalf("gif read back: %v", err)
	}
	if c := anim.Image[0].At(1, 0).(interface{ RGBA() (r, g, b, a uint32) }); c != nil {
		if r, _, _, _ := c.RGBA(); r>>8 != 255 {
			t.Errorf("gif pixel (1,0) red %d", r>>8)
		}
	}

	// A failing write leaves nothing behind.
	boom := errors.New("boom")
	if err := WriteFileAtomic(filepath.Join(dir, "b.png"), func(w io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v after a failed write", names)
	}
	if err := WritePNG(filepath.Join(dir, "no", "such", "dir.png"), img); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestSampleFramesVideo(t *testing.T) {
	cfg := tinyConfig(KindVideo)
	x := InitialNoise(testDev, &cfg, 2, 1, 0)
	fr := SampleFrames(x, &cfg)
	if len(fr) != 2 || len(fr[0]) != cfg.Frames || fr[1][3].Bounds().Dx() != cfg.ImageSize {
		t.Fatalf("frames %d x %d", len(fr), len(fr[0]))
	}
	anim := GridFrames(fr, 2, 2, 1)
	if len(anim) != cfg.Frames {
		t.Errorf("animated grid has %d frames", len(anim))
	}
}

// recordGuidance adds c to every velocity and records the steps it saw; it fails at step
// failAt (>= 0).
type recordGuidance struct {
	c      float32
	steps  []int
	failAt int
	out    *kernels.Tensor
}

func (g *recordGuidance) Guide(x, v *kernels.Tensor, step int, sigma float64) (*kernels.Tensor, error) {
	g.steps = append(g.steps, step)
	if step == g.failAt {
		return nil, errors.New("guidance failed")
	}
	if g.out == nil {
		g.out = testDev.New(v.Shape...)
	}
	testDev.Copy(g.out, v)
	testDev.Axpy(g.out, g.c, testDev.FromHost(onesOf(v.Len()), v.Shape...))
	return g.out, nil
}

func onesOf(n int) []float32 {
	o := make([]float32, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// The guidance hook sees every step after CFG and its velocity is the one stepped with: a
// fresh model (v = 0) plus a constant c ends at x_1 - c; an error stops the run.
func TestSampleGuidanceHook(t *testing.T) {
	m := newTinyModel(t, tinyConfig(KindImage), 1)
	o := DefaultSampleOptions()
	o.NumInferenceSteps, o.Seed = 4, 5
	g := &recordGuidance{c: 0.5, failAt: -1}
	o.Guidance = g
	x, _, err := Sample(m, []string{"red apple"}, o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.steps, []int{0, 1, 2, 3}) {
		t.Fatalf("guidance saw steps %v, want 0..3", g.steps)
	}
	x1 := toHost(InitialNoise(testDev, &m.Config, 1, 5, 0))
	for i, v := range toHost(x) {
		if math.Abs(float64(v-(x1[i]-0.5))) > 1e-5 {
			t.Fatalf("x[%d] = %v, want %v", i, v, x1[i]-0.5)
		}
	}
	o.Guidance = &recordGuidance{failAt: 2}
	if _, _, err := Sample(m, []string{"red apple"}, o); err == nil || !strings.Contains(err.Error(), "guidance failed") {
		t.Fatalf("err = %v, want the guidance's error", err)
	}
}
