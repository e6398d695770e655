// Inflation of the native reward model: a video reward model started from a trained image
// reward model of the same width, blocks, heads, MLP ratio, patch size and caption length,
// as diffusion/inflate.go starts a video generator from an image one (the I3D idea). A
// video model trained from scratch must learn object identity over its tubelet tokens from
// the clip pairs alone; the image model already reads it.
//
// Every weight that means the same in both models is copied: the vision and joint blocks,
// both norms, the caption's word vectors of the image model's ids, and the query token and
// head of every dimension both models have (vq, ta; matched by name). The patch embedding
// changes shape because a token is a tubelet of pt frames instead of one frame, the same
// way as the generator's (diffusion.InflatePatchWeight, diffusion.InflatePatchBias):
//
//	W_v[o, (c,dt,dy,dx)] = W_i[o, (c,dy,dx)] / pt      b_v = b_i - mean_t F(t)
//
// so a static tubelet (every frame x) embeds as the image patch does, sum_dt W_i x / pt =
// W_i x. What the destination was built with stays for the rest: the word vectors of the
// clip captions' new words (Tokenizer.Extend appends them after the image model's ids) and
// the query token and head of a new dimension (mq), i.e. the seeded draws of NewNative, the
// same as a from-scratch model of the same config and seed.
//
// Positions are fixed, not weights: the caption's PosEmbed1D(C, j) is the same in both
// models; a video token (t,h,w) gets pos2D(h,w) + F(t) (nn.PosEmbed3D), pos2D being the
// image table itself and F(t) = PosEmbed1D(C, t) added only when there are gt = T/pt > 1
// tubelets in time. The bias takes mean_t F(t) away, so the tokens of a static clip are the
// image tokens plus F(t) - mean F.
//
// With gt = 1 and the image model's dimensions a static clip is the image's token sequence
// exactly and scores as the image does. Otherwise it is close, not equal: F(t) - mean F
// remains, each patch appears gt times (which multiplies the attention mass on the patches
// by gt against the query and caption tokens), and a new dimension's query token is one more
// key for every token. Measured with the embedded image reward model inflated to the default
// video model (gt = 4, mq added, seed 0) on static clips of 128 held-out items: rms of the
// score change vq 1.86, ta 0.57 against rms scores 4.66 and 1.87; without the bias
// correction 7.21 and 2.52. Before any training, on 1024 held-out clip pairs, the inflated
// model ranks vq 99.6%, ta 44.8% (ta/random 55.6%), mq 43.0%, a fresh one vq 82.0%, ta
// 48.0%, mq 47.1%. The image model itself tells a clip frame's caption from another
// concept's in 58% of 256 held-out clips (72% on the items' own images): a sprite scaled
// down and moving is new to it, whichever caption form (the item's, or the clip's "a ...
// moving left") is used. After
// 300 steps (seed 0, default settings) the held-out accuracy is vq 99.8%, ta 50.6%
// (ta/random 57.3%), mq 76.3% inflated against vq 99.5%, ta 42.4% (45.7%), mq 79.4% from
// scratch.
//
// An image reward model starts from another the same way with nothing to inflate: the patch
// embedding is copied too, so with the same dimensions and words it scores as its source
// (a run that goes on from a trained model with other pairs, e.g. an annotator's: --pairs).
//
// Test: go test ./rewards -run Inflate
package rewards

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
)

// InflatedNativeConfig is the video config that InflateNative fills from an image model of
// config img: img's architecture and caption length, frames frames cut into tubelets of
// tubeletFrames, dimensions dims. The vocabulary size is img's; a tokenizer extended with
// new words raises it.
func InflatedNativeConfig(img NativeConfig, frames, tubeletFrames int, dims []string) NativeConfig {
	c := img
	c.Kind, c.Frames, c.TubeletFrames, c.Dims = KindVideo, frames, tubeletFrames, slices.Clone(dims)
	return c
}

// ExtendTokenizer is base (an image reward model's tokenizer) with the words of the training
// split's captions that it lacks appended after its ids (diffusion.Tokenizer.Extend), the
// vocabulary of a video reward model inflated from base's model.
func ExtendTokenizer(base *diffusion.Tokenizer, gen *PairGen) *diffusion.Tokenizer {
	return base.Extend(trainCaptions(gen))
}

// InflateNative writes the weights of the image reward model src into the video reward
// model dst (see the file header): dst's config must be InflatedNativeConfig of src's with a
// vocabulary of at least src's, and dst's tokenizer must keep src's words at their ids. An
// image reward model dst takes them as they are: its config must be src's but for its
// dimensions and vocabulary. dst's calibration is left as it is (a trained model is
// calibrated at the end of its run).
func InflateNative(dst, src *Native) error {
	sc, dc := &src.Config, &dst.Config
	if sc.Kind != KindImage {
		return errors.New("inflate: the source is a video reward model; it must be an image reward model")
	}
	want, what := *sc, "the image model's"
	want.Dims = slices.Clone(dc.Dims)
	if dc.Kind == KindVideo {
		want, what = InflatedNativeConfig(*sc, dc.Frames, dc.TubeletFrames, dc.Dims), "the image model's inflated one"
	}
	want.VocabSize = dc.VocabSize
	if !reflect.DeepEqual(want, *dc) {
		w, _ := json.Marshal(want)
		d, _ := json.Marshal(dc)
		return fmt.Errorf("inflate: the %s reward model's config %s is not %s %s", dc.Kind, d, what, w)
	}
	if !dst.Tokenizer.Extends(src.Tokenizer) {
		return fmt.Errorf("inflate: the video tokenizer does not keep the image model's %d words and their ids (Tokenizer.Extend keeps them)",
			src.Tokenizer.VocabSize())
	}
	host := func(t *kernels.Tensor) []float32 {
		v := make([]float32, t.Len())
		t.Dev.CopyToHost(v, t)
		return v
	}
	srcW := map[string][]float32{}
	for _, p := range src.Params() {
		srcW[p.Name] = host(p.W)
	}
	C, pt := dc.Width, dc.TubeletFrames
	for _, p := range dst.Params() {
		s, ok := srcW[p.Name]
		var out []float32
		switch {
		case p.Name == "patch_embed.proj.weight" && dc.Kind == KindVideo:
			out = diffusion.InflatePatchWeight(s, C, dc.Channels, pt, dc.PatchSize)
		case p.Name == "patch_embed.proj.bias" && dc.Kind == KindVideo:
			out = diffusion.InflatePatchBias(s, dc.Frames/pt)
		case p.Name == "token_embedding.weight": // the image model's rows, then the new words' as built
			out = host(p.W)
			copy(out, s)
		case p.Name == "reward_tokens": // (D, C): the rows of the image model's dimensions; the others as built
			out = host(p.W)
			for d, name := range dc.Dims {
				if i := DimIndex(sc.Dims, name); i >= 0 {
					copy(out[d*C:(d+1)*C], s[i*C:(i+1)*C])
				}
			}
		case strings.HasPrefix(p.Name, "heads.") && !ok: // a dimension the image model lacks
			continue
		case !ok:
			return fmt.Errorf("inflate: the image reward model has no %s", p.Name)
		default:
			out = s
		}
		if len(out) != p.W.Len() {
			return fmt.Errorf("inflate: %s: %d values for a %v tensor", p.Name, len(out), p.W.Shape)
		}
		p.W.Dev.CopyFromHost(p.W, out)
	}
	return nil
}

// InflateFrom starts a fresh run from the image reward model src (inflated for a video
// run) instead of the seeded weights (InflateNative; the trainer's tokenizer must extend src's, ExtendTokenizer)
// and records source as the run's InitFrom. Call it before the first step.
func (t *Trainer) InflateFrom(src *Native, source diffusion.InitSource) error {
	if t.Model == nil {
		return errors.New("reward train: a latent reward model is not inflated")
	}
	if t.Step != 0 {
		return fmt.Errorf("reward train: inflating after step %d; a run is inflated before its first step", t.Step)
	}
	if err := InflateNative(t.Model, src); err != nil {
		return fmt.Errorf("%s: %w", source.Path, err)
	}
	t.Cfg.InitFrom = &source
	return nil
}
