// Tests of inflation (inflate.go): every copied tensor equals its source and the reshaped
// ones follow their formulas; a static clip embeds as the image does up to the temporal
// code; with one tubelet in time and the same noise in every frame the video model's
// velocity is the image model's per frame; on static clips a model inflated from a trained
// image model starts with a flow-matching loss far below a fresh video model's; mismatched
// models are refused.
//
// Test: go test ./diffusion -run Inflate

package diffusion

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/kernels"
)

// videoCaptions are clip captions: "moving", "up", "zooming" are new to tinyTokenizer.
var videoCaptions = []string{"red apple moving up", "blue car zooming", "green apple moving left"}

// inflatedPair returns the video model of frames frames in tubelets of pt inflated from
// img, and a fresh model built the same way (same seed) without the inflation.
func inflatedPair(t *testing.T, img *DiT, frames, pt int, seed uint64) (vid, fresh *DiT) {
	t.Helper()
	tok := img.Tokenizer.Extend(videoCaptions)
	cfg := InflatedConfig(img.Config, frames, pt)
	cfg.VocabSize = tok.VocabSize()
	var err error
	for _, m := range []**DiT{&vid, &fresh} {
		if *m, err = NewDiT(testDev, &kernels.RNG{Seed: seed}, cfg); err != nil {
			t.Fatal(err)
		}
		(*m).Tokenizer = tok
	}
	if err := InflateImageModel(vid, img); err != nil {
		t.Fatal(err)
	}
	return vid, fresh
}

// temporalCode is F(t) - mean_t F(t) with F(t) = PosEmbed1D(C, t) written out, the
// difference between the tokens of time t of a static clip and the image tokens.
func temporalCode(C, gt int) [][]float64 {
	F := make([][]float64, gt)
	mean := make([]float64, C)
	for t := range gt {
		F[t] = make([]float64, C)
		for i := range C / 2 {
			w := math.Pow(10000, -float64(i)/float64(C/2))
			F[t][i], F[t][C/2+i] = math.Sin(float64(t)*w), math.Cos(float64(t)*w)
		}
		for i := range C {
			mean[i] += F[t][i] / float64(gt)
		}
	}
	for t := range gt {
		for i := range C {
			F[t][i] -= mean[i]
		}
	}
	return F
}

func TestInflateCopiesWeights(t *testing.T) {
	img := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 1)
	randomizeParams(img, rand.New(rand.NewPCG(1, 2)), 0.3)
	img.RewardConditionMax = []float64{1.5, math.NaN()}
	const frames, pt = 4, 2
	vid, fresh := inflatedPair(t, img, frames, pt, 9)
	cfg := vid.Config
	C, cin, pp, Vi := cfg.Width, cfg.Channels, cfg.PatchSize*cfg.PatchSize, img.Config.VocabSize
	if cfg.Kind != KindVideo || cfg.Frames != frames || cfg.TubeletFrames != pt || cfg.VocabSize != Vi+2 {
		t.Fatalf("inflated config %+v", cfg)
	}
	src := map[string][]float32{}
	for _, p := range img.Params() {
		src[p.Name] = toHost(p.W)
	}
	freshW := map[string][]float32{}
	for _, p := range fresh.Params() {
		freshW[p.Name] = toHost(p.W)
	}
	code0 := temporalCode(C, frames/pt)[0] // F(0) - mean F
	for _, p := range vid.Params() {
		got, s := toHost(p.W), src[p.Name]
		bad := func(i int, want float64) {
			if math.Abs(float64(got[i])-want) > 1e-6 {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, i, got[i], want)
			}
		}
		switch p.Name {
		case "x_embedder.proj.weight": // (C, cin*pt*pp) = image (C, cin*pp) / pt on each frame
			for o := range C {
				for c := range cin {
					for dt := range pt {
						for k := range pp {
							bad(o*cin*pt*pp+(c*pt+dt)*pp+k, float64(s[o*cin*pp+c*pp+k])/pt)
						}
					}
				}
			}
		case "x_embedder.proj.bias": // b - mean_t F(t), mean_t F(t) = F(0) - (F(0) - mean F), F(0) = [0.. | 1..]
			for i := range C {
				F0 := 0.0
				if i >= C/2 {
					F0 = 1
				}
				bad(i, float64(s[i])-(F0-code0[i]))
			}
		case "final_layer.linear.weight", "final_layer.linear.bias": // rows (c,dt,k) = image rows (c,k)
			n := len(s) / (cin * pp)
			for c := range cin {
				for dt := range pt {
					for k := range pp {
						for j := range n {
							bad(((c*pt+dt)*pp+k)*n+j, float64(s[(c*pp+k)*n+j]))
						}
					}
				}
			}
		case "text_encoder.token_embedding.weight": // image rows, then a fresh model's rows
			Ct := cfg.TextWidth
			if !slices.Equal(got[:Vi*Ct], s) || !slices.Equal(got[Vi*Ct:], freshW[p.Name][Vi*Ct:]) {
				t.Errorf("%s: old rows copied %v, new rows fresh %v", p.Name, slices.Equal(got[:Vi*Ct], s),
					slices.Equal(got[Vi*Ct:], freshW[p.Name][Vi*Ct:]))
			}
		default:
			if !slices.Equal(got, s) {
				t.Errorf("%s is not the image model's", p.Name)
			}
		}
	}
	if len(vid.RewardConditionMax) != 2 || vid.RewardConditionMax[0] != 1.5 || !math.IsNaN(vid.RewardConditionMax[1]) {
		t.Errorf("reward-condition maxima %v", vid.RewardConditionMax)
	}
	img.RewardConditionMax[0] = 2
	if vid.RewardConditionMax[0] != 1.5 {
		t.Error("the maxima are shared with the source, not copied")
	}
}

// A static clip's tokens are the image's tokens plus F(t) - mean_t F(t): on average over
// the tubelet times exactly the image's.
func TestInflateStaticClipEmbedding(t *testing.T) {
	cfg := tinyConfig(KindImage)
	cfg.ImageSize, cfg.Width, cfg.TextWidth = 8, 16, 16
	img := newTinyModel(t, cfg, 2)
	r := rand.New(rand.NewPCG(2, 2))
	randomizeParams(img, r, 0.3)
	const frames, pt = 6, 2
	vid, _ := inflatedPair(t, img, frames, pt, 3)
	B, D := 2, cfg.SampleSize()
	x := hostValues(r, B*D, 1)
	clip := make([]float32, 0, B*frames*D)
	for b := range B {
		for range frames {
			clip = append(clip, x[b*D:(b+1)*D]...)
		}
	}
	it := toHost(img.XEmbedder.Forward(testDev.FromHost(x, cfg.BatchShape(B)...)))
	vt := toHost(vid.XEmbedder.Forward(testDev.FromHost(clip, vid.Config.BatchShape(B)...)))
	gt, P, C := frames/pt, cfg.NumPatches(), cfg.Width
	code := temporalCode(C, gt)
	worst := 0.0
	for b := range B {
		for tt := range gt {
			for j := range P * C {
				want := float64(it[b*P*C+j]) + code[tt][j%C]
				worst = max(worst, math.Abs(float64(vt[(b*gt+tt)*P*C+j])-want))
			}
		}
	}
	if worst > 1e-5 {
		t.Errorf("static clip tokens differ from image tokens + temporal code by up to %g", worst)
	}
}

// With one tubelet in time there is no temporal code and no repeated patch: a static clip
// with the same noise in every frame gets the image model's velocity in every frame.
func TestInflateOneTubeletMatchesImage(t *testing.T) {
	img := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 4)
	r := rand.New(rand.NewPCG(4, 2))
	randomizeParams(img, r, 0.3)
	const frames = 3
	vid, _ := inflatedPair(t, img, frames, frames, 5)
	x, ts, p, rw := tinyInputs(t, img, r)
	want := toHost(img.Forward(x, ts, p.IDs, p.Lengths, rw))
	xs := toHost(x)
	B, D := 2, img.Config.SampleSize()
	clip := make([]float32, 0, B*frames*D)
	for b := range B {
		for range frames {
			clip = append(clip, xs[b*D:(b+1)*D]...)
		}
	}
	got := toHost(vid.Forward(testDev.FromHost(clip, vid.Config.BatchShape(B)...), ts, p.IDs, p.Lengths, rw))
	scale, worst := 0.0, 0.0
	for b := range B {
		for f := range frames {
			for j := range D {
				w := float64(want[b*D+j])
				scale = max(scale, math.Abs(w))
				worst = max(worst, math.Abs(float64(got[(b*frames+f)*D+j])-w))
			}
		}
	}
	if scale < 0.1 || worst > 1e-5*scale {
		t.Errorf("video velocity differs from the image model's by %g (scale %g)", worst, scale)
	}
}

// flowLoss is the flow-matching loss mean (v(x_t) - (eps - x0))^2 of m on x0 with noise eps
// at times ts (one per sample) for captions.
func flowLoss(m *DiT, x0, eps, ts []float32, captions []string) float64 {
	B := len(ts)
	n := len(x0) / B
	xt := make([]float32, len(x0))
	for i := range xt {
		t := ts[i/n]
		xt[i] = (1-t)*x0[i] + t*eps[i]
	}
	p := EncodePrompts(m.Tokenizer, captions)
	v := toHost(m.Forward(testDev.FromHost(xt, m.Config.BatchShape(B)...), ts, p.IDs, p.Lengths, nil))
	s := 0.0
	for i := range v {
		d := float64(v[i] - (eps[i] - x0[i]))
		s += d * d
	}
	return s / float64(len(v))
}

// discImages are n emoji-like images of size x size: a disc of its own colour on a grey
// background, values in [-1, 1], in (C,H,W) order.
func discImages(n, size int) [][]float32 {
	out := make([][]float32, n)
	for i := range out {
		cx, cy := float64(2+i%3), float64(2+i/2)
		for c := range 3 {
			col := float32(0.8 * math.Cos(float64(i*3+c)))
			for y := range size {
				for x := range size {
					v := float32(-0.6)
					if dx, dy := float64(x)-cx, float64(y)-cy; dx*dx+dy*dy < 6 {
						v = col
					}
					out[i] = append(out[i], v)
				}
			}
		}
	}
	return out
}

// On static clips of the images an image model was trained on, the inflated model's first
// loss is near the image model's plus the 1 - 1/pt that tied frames cost (inflate.go), and
// far below a fresh video model's, which predicts v = 0. (Without the division by pt, or
// without the bias taking the mean temporal code away, it is above the fresh model's.)
func TestInflateLossOnStaticClips(t *testing.T) {
	cfg := ModelConfig{Kind: KindImage, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 2, TubeletFrames: 1,
		Width: 32, Depth: 2, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 16, TextHeads: 2, MaxTextLen: 4,
		RewardFreq: 4, RewardDims: []string{}, Shift: 1}
	captions := []string{"red apple", "blue car", "green apple", "a"}
	data := &memData{caps: captions, samples: discImages(len(captions), cfg.ImageSize)}
	pc := tinyPretrain(400)
	pc.TrainBatchSize, pc.CheckpointingSteps, pc.ValidationPrompts = 8, 1000, nil
	pc.Objective.CaptionDropout = 0
	tr, err := NewTrainer(testDev, cfg, tinyTokenizer(t), pc, data, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for range pc.MaxTrainSteps {
		tr.TrainOneStep()
	}
	img := tr.EMA
	const frames, pt = 4, 2
	vid, fresh := inflatedPair(t, img, frames, pt, 7)

	r := rand.New(rand.NewPCG(7, 2))
	const B = 32
	var clips, ts, tsFrames []float32
	var caps, capsFrames []string
	for b := range B {
		i := b % len(captions)
		u := float32(1 / (1 + math.Exp(-r.NormFloat64()))) // logit-normal, as in training
		ts = append(ts, u)
		caps = append(caps, captions[i])
		for range frames {
			clips = append(clips, data.samples[i]...)
			tsFrames = append(tsFrames, u)
			capsFrames = append(capsFrames, captions[i])
		}
	}
	eps := hostValues(r, len(clips), 1) // independent noise in every frame, as in training
	lImg := flowLoss(img, clips, eps, tsFrames, capsFrames)
	lVid := flowLoss(vid, clips, eps, ts, caps)
	lFresh := flowLoss(fresh, clips, eps, ts, caps)
	t.Logf("first loss on static clips: image model per frame %.4f, inflated %.4f, fresh %.4f", lImg, lVid, lFresh)
	if lImg > 0.1 {
		t.Fatalf("the image model did not learn its images: loss %.4f", lImg)
	}
	if bound := lImg + (1 - 1.0/pt) + 0.2; lVid > bound || lVid > 0.6*lFresh {
		t.Errorf("inflated loss %.4f: want <= %.4f (image + 1 - 1/pt + 0.2) and <= 0.6 x the fresh model's %.4f", lVid, bound, lFresh)
	}
}

func TestInflateRefusesMismatch(t *testing.T) {
	img := newTinyModel(t, tinyConfig(KindImage), 8)
	vid, _ := inflatedPair(t, img, 4, 2, 8)
	if err := InflateImageModel(vid, vid); err == nil || !strings.Contains(err.Error(), "must be an image model") {
		t.Errorf("video source: err = %v", err)
	}
	if err := InflateImageModel(img, img); err == nil || !strings.Contains(err.Error(), "must be a video model") {
		t.Errorf("image destination: err = %v", err)
	}
	wide := tinyConfig(KindImage)
	wide.Width = 12
	if err := InflateImageModel(vid, newTinyModel(t, wide, 8)); err == nil || !strings.Contains(err.Error(), "hidden_size: 12 vs 8") {
		t.Errorf("other width: err = %v", err)
	}
	shuffled := *vid.Tokenizer
	shuffled.Vocab = slices.Clone(shuffled.Vocab)
	shuffled.Vocab[3], shuffled.Vocab[4] = shuffled.Vocab[4], shuffled.Vocab[3]
	vid.Tokenizer = &shuffled
	if err := InflateImageModel(vid, img); err == nil || !strings.Contains(err.Error(), "does not keep the image model's 11 words") {
		t.Errorf("reordered vocabulary: err = %v", err)
	}
}

// A run inflated from an image model resumes exactly and keeps its init source and its
// reward-condition maxima; a resume naming another source is refused, the same file under
// another name is not.
func TestPretrainInflatedExactResume(t *testing.T) {
	img := newTinyModel(t, tinyConfig(KindImage, "vq"), 10)
	randomizeParams(img, rand.New(rand.NewPCG(10, 2)), 0.3)
	img.RewardConditionMax = []float64{0.8}
	vcfg := InflatedConfig(img.Config, 4, 2)
	tok := img.Tokenizer.Extend(videoCaptions)
	data := newMemData(10, vcfg.SampleSize(), 3)
	source := InitSource{Path: "image.safetensors", SHA256: "ab12"}
	newTrainer := func(dir string, cfg PretrainConfig) *Trainer {
		tr, err := NewTrainer(testDev, vcfg, tok, cfg, data, dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.InflateFrom(img, source); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	dir, resumed := checkExactResume(t, newTrainer, data)
	if resumed.Cfg.InitFrom == nil || *resumed.Cfg.InitFrom != source {
		t.Errorf("resumed run's init source %+v, want %+v", resumed.Cfg.InitFrom, source)
	}
	if m := resumed.EMA.RewardConditionMax; len(m) != 1 || m[0] != 0.8 {
		t.Errorf("resumed run's reward-condition maxima %v, want [0.8]", m)
	}
	ck, mcfg, tok2, err := ReadTrainingCheckpoint(resumed.CheckpointPath(resumed.Step))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		init    *InitSource
		wantErr string
	}{
		{&InitSource{Path: "other.safetensors", SHA256: "cd34"}, "initialised from image.safetensors (sha256 ab12), not from other.safetensors"},
		{&InitSource{Path: "copy.safetensors", SHA256: "ab12"}, ""},
	} {
		cfg := tinyPretrain(10)
		cfg.InitFrom = tt.init
		tr, _ := NewTrainer(testDev, mcfg, tok2, cfg, data, dir)
		err := tr.Resume(ck)
		switch {
		case tt.wantErr == "" && (err != nil || tr.Cfg.InitFrom.Path != source.Path):
			t.Errorf("resume with %+v: err %v, init %+v", tt.init, err, tr.Cfg.InitFrom)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("resume with %+v: err = %v, want %q", tt.init, err, tt.wantErr)
		}
	}
	if err := resumed.InflateFrom(img, source); err == nil || !strings.Contains(err.Error(), "before its first step") {
		t.Errorf("inflating a trained run: err = %v", err)
	}
}
