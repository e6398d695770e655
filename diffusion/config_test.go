// Tests of ModelConfig: the defaults are valid, every rule gives a clear error, JSON round
// trips and unknown fields are refused.
//
// Test: go test ./diffusion -run Config

package diffusion

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConfigDefaultsValid(t *testing.T) {
	for _, c := range []ModelConfig{DefaultImageConfig(), DefaultVideoConfig(), tinyConfig(KindImage, "vq", "ta", "mq")} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.Kind, err)
		}
	}
	img := DefaultImageConfig()
	if img.NumPatches() != 64 || img.SeqLen() != 80 || img.SampleSize() != 3072 {
		t.Errorf("image: %d patches, sequence %d, sample %d", img.NumPatches(), img.SeqLen(), img.SampleSize())
	}
	vid := DefaultVideoConfig()
	if vid.NumPatches() != 4*8*8 || vid.SampleSize() != 8*3072 {
		t.Errorf("video: %d patches, sample %d", vid.NumPatches(), vid.SampleSize())
	}
}

func TestConfigValidateErrors(t *testing.T) {
	tests := []struct {
		edit func(c *ModelConfig)
		want string
	}{
		{func(c *ModelConfig) { c.Kind = "audio" }, `kind is "audio"`},
		{func(c *ModelConfig) { c.PatchSize = 3 }, "sample_size 32 is not a multiple of patch_size 3"},
		{func(c *ModelConfig) { c.PatchSize = 0 }, "patch_size must be >= 1"},
		{func(c *ModelConfig) { c.Heads = 3 }, "num_attention_heads 3 does not divide hidden_size 256"},
		{func(c *ModelConfig) { c.Width = 250 }, "hidden_size must be a positive multiple of 4"},
		{func(c *ModelConfig) { c.TextHeads = 5 }, "text_heads 5 does not divide text_width 256"},
		{func(c *ModelConfig) { c.Frames = 8 }, "num_frames is 8; an image model has 1"},
		{func(c *ModelConfig) { c.Kind, c.Frames, c.TubeletFrames = KindVideo, 8, 3 }, "num_frames 8 is not a multiple of tubelet_frames 3"},
		{func(c *ModelConfig) { c.Depth = 0 }, "num_layers must be >= 1"},
		{func(c *ModelConfig) { c.MLPRatio = 0 }, "mlp_ratio must be a positive number"},
		{func(c *ModelConfig) { c.MaxTextLen = 0 }, "max_text_len must be >= 1"},
		{func(c *ModelConfig) { c.VocabSize = 2 }, "vocab_size must be >= 3"},
		{func(c *ModelConfig) { c.RewardDims = []string{"vq", "vq"} }, `reward dimension "vq" appears twice`},
		{func(c *ModelConfig) { c.RewardDims = []string{"VQ"} }, `reward dimension "VQ": names are lower-case`},
		{func(c *ModelConfig) { c.RewardDims, c.RewardFreq = []string{"vq"}, 3 }, "reward_freq must be a positive even number"},
		{func(c *ModelConfig) { c.Shift = 0 }, "shift must be a positive number"},
	}
	for _, tt := range tests {
		c := DefaultImageConfig()
		tt.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want it to contain %q", err, tt.want)
		}
	}
	// Several problems are reported together.
	c := DefaultImageConfig()
	c.Depth, c.Heads = 0, 3
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "num_layers") || !strings.Contains(err.Error(), "num_attention_heads") {
		t.Errorf("joined errors: %v", err)
	}
}

func TestConfigJSON(t *testing.T) {
	c := DefaultVideoConfig()
	c.RewardDims = []string{"vq", "ta", "mq"}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseModelConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(&c) {
		t.Errorf("round trip differs: %s", got.Diff(&c))
	}
	empty := DefaultImageConfig()
	empty.RewardDims = nil
	b, _ = json.Marshal(empty)
	if !strings.Contains(string(b), `"reward_dims":[]`) {
		t.Errorf("empty reward dims written as %s", b)
	}
	if _, err := ParseModelConfig([]byte(`{"kind":"image","depthh":3}`)); err == nil || !strings.Contains(err.Error(), "depthh") {
		t.Errorf("unknown field: err = %v", err)
	}
	d := DefaultImageConfig()
	d.Depth = 9
	if diff := c.Diff(&d); !strings.Contains(diff, "num_layers: 6 vs 9") || !strings.Contains(diff, "kind: video vs image") {
		t.Errorf("Diff = %q", diff)
	}
}

func TestForwardFLOPsHandComputed(t *testing.T) {
	// C = 8, Ct = 4, ratio 2 (H = 16, Ht = 8), 8x8 image, p = 4 (P = 4, F = 48), Lt = 2,
	// T = 6, one block of each kind, no reward slot:
	//   patch 2*4*48*8 = 3072; timestep 2*(256*8 + 64) = 4224; pooled 128
	//   text  2*2*(4*16 + 2*4*8) + 4*4*4 = 512 + 64 = 576; projection 2*2*4*8 = 128
	//   DiT   2*6*(4*64 + 2*8*16) + 4*36*8 + 2*8*48 = 6144 + 1152 + 768 = 8064
	//   final 2*8*16 + 2*4*8*48 = 256 + 3072 = 3328
	c := ModelConfig{Kind: KindImage, ImageSize: 8, Channels: 3, Frames: 1, PatchSize: 4, TubeletFrames: 1,
		Width: 8, Depth: 1, Heads: 2, MLPRatio: 2, TextLayers: 1, TextWidth: 4, TextHeads: 2, MaxTextLen: 2}
	want := 3072.0 + 4224 + 128 + 576 + 128 + 8064 + 3328
	if got := c.ForwardFLOPs(); got != want {
		t.Fatalf("ForwardFLOPs = %v, want %v", got, want)
	}
	// The captions' part: pooled 128 + text 576 + projection 128; a 3-step guided run
	// encodes them once per branch.
	if got := c.TextFLOPs(); got != 832 {
		t.Fatalf("TextFLOPs = %v, want 832", got)
	}
	if got, want := c.SampleFLOPs(3, 2), 2*(3*(want-832)+832); got != want {
		t.Fatalf("SampleFLOPs(3, 2) = %v, want %v", got, want)
	}
	c.RewardDims, c.RewardFreq = []string{"vq", "ta"}, 4 // + 2*(2*4*8 + 64) = 256
	if got := c.ForwardFLOPs(); got != want+256 {
		t.Fatalf("with a reward slot: %v, want %v", got, want+256)
	}
}

// FuzzParseModelConfig: a config file that parses is valid and writes back to the same
// architecture; a refused one says "model config" or which field is wrong.
// Fuzz: go test ./diffusion -run '^$' -fuzz FuzzParseModelConfig -fuzztime 30s
func FuzzParseModelConfig(f *testing.F) {
	for _, c := range []ModelConfig{DefaultImageConfig(), DefaultVideoConfig(), tinyConfig(KindImage, "vq", "ta")} {
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"image","depthh":3}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseModelConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseModelConfig(b)
		if err != nil || !again.Equal(&c) {
			t.Fatalf("round trip: %v; %s", err, again.Diff(&c))
		}
	})
}
