// Inflation: a video DiT started from a trained image DiT of the same width, depth, heads,
// MLP ratio, text encoder and patch size, the way I3D inflates 2D kernels into 3D and
// video DiTs (Latte, Open-Sora) start from image weights. Every weight that means the same
// in both models is copied: the DiT blocks, the timestep embedder, the text encoder and its
// projections, the reward-condition slot, the final layer's modulation. Two layers change
// shape because a token is a tubelet of pt frames instead of one frame:
//
//	patch embedding  W_v[o, (c,dt,dy,dx)] = W_i[o, (c,dy,dx)] / pt      b_v = b_i - mean_t F(t)
//	final linear     U_v[(c,dt,dy,dx), o] = U_i[(c,dy,dx), o]           u_v[(c,dt,dy,dx)] = u_i[(c,dy,dx)]
//
// so a static tubelet (every frame x) embeds as the image patch does, sum_dt W_i x / pt =
// W_i x, and each frame of a tubelet reads the velocity the image model predicts for its
// patch. The token-embedding table keeps the image model's rows for the image model's ids
// (Tokenizer.Extend appends the new words after them); the rows of the new words keep the
// values the destination was built with, i.e. a fresh model's seeded draws.
//
// Positions are fixed, not weights (nn.PosEmbed3D): a video token (t,h,w) gets
// pos2D(h,w) + F(t), where pos2D is the image model's table itself (the same C/2 split
// between column and row) and F(t) = PosEmbed1D(C, t) is the temporal code, added only
// when there are gt = T/pt > 1 tubelets in time. For t < gt = 4 most of F(t) is one
// vector (sin 0 = 0 and cos 0 = 1 on the low frequencies), an offset the image model never
// saw; the bias takes its mean over t away, so the tokens of a static clip are the image
// tokens plus F(t) - mean F, zero on average over t and small but for the high frequencies.
//
// The inflated model is close to, not equal to, the image model per frame: a tubelet token
// holds the mean of its frames, so the outputs of its pt frames are equal and cannot follow
// the noise of each frame, which on the target v = eps - x0 costs E|eps_dt - mean_dt eps|^2
// = 1 - 1/pt per value until training separates the frames; F(t) - mean F remains; and
// attention sees gt copies of every patch against the same text tokens. With gt = 1 and
// the same noise in every frame the velocity is the image model's exactly. Measured with
// the embedded image model (step 6849) on 64 training clips of the default video model,
// first flow-matching loss: the image model per frame 0.08, inflated 0.61 (0.08 + 1/2 for
// the tied frames, and little else: 0.59 with no temporal code at all), inflated without
// the bias correction 1.26, a fresh video model 1.89.
//
// Test: go test ./diffusion -run Inflate

package diffusion

import (
	"errors"
	"fmt"
	"slices"

	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// InitSource names the model file a run was initialised from.
type InitSource struct {
	Path   string `json:"path"`   // as given to --init-from: a file, or "default" (the embedded image model)
	SHA256 string `json:"sha256"` // hex sha256 of the file's bytes
}

// InflatedConfig is the video config that InflateImageModel fills from an image model of
// config img: img's architecture with frames frames cut into tubelets of tubeletFrames.
// The vocabulary size is img's; a tokenizer extended with new words raises it.
func InflatedConfig(img ModelConfig, frames, tubeletFrames int) ModelConfig {
	c := img
	c.RewardDims = slices.Clone(img.RewardDims)
	c.Kind, c.Frames, c.TubeletFrames = KindVideo, frames, tubeletFrames
	return c
}

// InflateImageModel writes the weights of the image model src into the video model dst
// (see the file header): dst's config must be InflatedConfig(src's) with a vocabulary of
// at least src's, and dst's tokenizer must start with src's words in src's order. dst's
// reward-condition maxima become src's. The rows of dst's token table past src's
// vocabulary are left as they are.
func InflateImageModel(dst, src *DiT) error {
	sc, dc := &src.Config, &dst.Config
	if sc.Kind != KindImage {
		return fmt.Errorf("inflate: the source is a %s model; it must be an image model", sc.Kind)
	}
	if dc.Kind != KindVideo {
		return fmt.Errorf("inflate: the destination is a %s model; it must be a video model", dc.Kind)
	}
	want := InflatedConfig(*sc, dc.Frames, dc.TubeletFrames)
	want.VocabSize = dc.VocabSize
	if d := want.Diff(dc); d != "" {
		return fmt.Errorf("inflate: the video model's config differs from the image model's inflated one (%s)", d)
	}
	if src.Tokenizer == nil || dst.Tokenizer == nil {
		return errors.New("inflate: both models need their tokenizers")
	}
	if !dst.Tokenizer.Extends(src.Tokenizer) {
		return fmt.Errorf("inflate: the video tokenizer does not keep the image model's %d words and their ids (Tokenizer.Extend keeps them)",
			src.Tokenizer.VocabSize())
	}
	srcParams := map[string]*paramHost{}
	sp, dp := src.Params(), dst.Params()
	if len(sp) != len(dp) {
		return fmt.Errorf("inflate: %d image parameters for %d video parameters (LoRA adapters not merged?)", len(sp), len(dp))
	}
	for _, p := range sp {
		srcParams[p.Name] = &paramHost{shape: p.W.Shape, data: hostCopy(p.W)}
	}
	pt, pp := dc.TubeletFrames, dc.PatchSize*dc.PatchSize
	for _, p := range dp {
		s, ok := srcParams[p.Name]
		if !ok {
			return fmt.Errorf("inflate: the image model has no %s", p.Name)
		}
		var out []float32
		switch p.Name {
		case "x_embedder.proj.weight":
			out = InflatePatchWeight(s.data, dc.Width, dc.Channels, pt, dc.PatchSize)
		case "x_embedder.proj.bias":
			out = InflatePatchBias(s.data, dc.Frames/pt)
		case "final_layer.linear.weight": // (Cin*p*p, C) -> (Cin*pt*p*p, C)
			out = tileTubelet(s.data, 1, dc.Channels, pt, pp*dc.Width, 1)
		case "final_layer.linear.bias": // (Cin*p*p) -> (Cin*pt*p*p)
			out = tileTubelet(s.data, 1, dc.Channels, pt, pp, 1)
		case "text_encoder.token_embedding.weight": // image rows first, new rows kept
			out = hostCopy(p.W)
			copy(out, s.data)
		default:
			if !slices.Equal(s.shape, p.W.Shape) {
				return fmt.Errorf("inflate: %s is %v in the image model and %v in the video model", p.Name, s.shape, p.W.Shape)
			}
			out = s.data
		}
		if len(out) != p.W.Len() {
			return fmt.Errorf("inflate: %s: %d values for a %v tensor", p.Name, len(out), p.W.Shape)
		}
		dst.dev.CopyFromHost(p.W, out)
	}
	dst.RewardConditionMax = slices.Clone(src.RewardConditionMax)
	return nil
}

// InflatePatchWeight maps the weight (C, cin*p*p) of an image nn.PatchEmbed to the
// weight (C, cin*pt*p*p) of tubelets of pt frames: W_v[o, (c,dt,dy,dx)] = W_i[o, (c,dy,dx)] / pt,
// so that a static tubelet embeds as the image patch does. The native reward model's
// inflation (rewards.InflateNative) uses it too.
func InflatePatchWeight(w []float32, width, cin, pt, patchSize int) []float32 {
	return tileTubelet(w, width, cin, pt, patchSize*patchSize, 1/float32(pt))
}

// InflatePatchBias maps the bias (C) of an image nn.PatchEmbed to the bias of a clip of gt
// tubelets in time: b_v = b_i - mean_t F(t), F(t) being what nn.PosEmbed3D adds to the
// spatial table of the tokens of time t (no change when gt = 1).
func InflatePatchBias(b []float32, gt int) []float32 {
	C := len(b)
	spatial, full := nn.PosEmbed3D(C, 1, 1, 1), nn.PosEmbed3D(C, gt, 1, 1)
	out := slices.Clone(b)
	for t := range gt {
		for i := range out {
			out[i] -= (full[t*C+i] - spatial[i]) / float32(gt)
		}
	}
	return out
}

// ResumedInitSource is the InitSource of a resumed run: was, the run's own record (nil: the
// run started from seeded weights), whatever path named the same file. want is what
// --init-from names on the resume (nil: nothing); naming another file, or naming one for a
// run that was not initialised from a model, is an error.
func ResumedInitSource(was, want *InitSource) (*InitSource, error) {
	switch {
	case want != nil && was == nil:
		return nil, fmt.Errorf("the run was not initialised from a model; --init-from %s starts a new run", want.Path)
	case want != nil && want.SHA256 != was.SHA256:
		return nil, fmt.Errorf("the run was initialised from %s (sha256 %s), not from %s (sha256 %s); resume without --init-from",
			was.Path, was.SHA256, want.Path, want.SHA256)
	}
	return was, nil
}

type paramHost struct {
	shape []int
	data  []float32
}

// tileTubelet maps a tensor with the patch features (c, dy, dx) between an outer and an
// inner axis, src (outer, cin, n) with n = p*p*inner, to the tubelet features (c, dt, dy,
// dx): dst[o, c, dt, j] = scale * src[o, c, j] for dt < pt, j < n.
func tileTubelet(src []float32, outer, cin, pt, n int, scale float32) []float32 {
	dst := make([]float32, 0, len(src)*pt)
	for o := range outer {
		for c := range cin {
			row := src[(o*cin+c)*n:][:n]
			for range pt {
				for _, v := range row {
					dst = append(dst, scale*v)
				}
			}
		}
	}
	return dst
}

// hostCopy returns t's values on the host.
func hostCopy(t *kernels.Tensor) []float32 {
	out := make([]float32, t.Len())
	t.Dev.CopyToHost(out, t)
	return out
}
