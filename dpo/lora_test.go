// Tests of adapter mixing: MergeAdapters gives W + Σ w_i (alpha_i/r_i) B_i A_i for adapters
// of different targets, ranks and weights, checks every adapter before merging any, and
// refuses adapters of other base weights and disagreeing reward-condition maxima.
//
// Test: go test ./dpo -run LoRA

package dpo

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/kernels"
	"github.com/alignkit/align/nn"
)

// randomAdapter is an adapter file of base with A and B drawn at random, as a trained one
// (base is left as it was).
func randomAdapter(t *testing.T, base func() *diffusion.DiT, c LoRAConfig, seed uint64) *nn.Checkpoint {
	t.Helper()
	m := base()
	ls := EnableLoRA(m, &kernels.RNG{Seed: seed}, c)
	for i, l := range ls {
		randomize([]nn.Param{{W: l.LoRA.B}}, seed*100+uint64(i), 0.1)
	}
	ck, err := AdapterCheckpoint(m, c, "base.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ck.Path = fmt.Sprintf("adapter-%d.safetensors", seed)
	return ck
}

// mixRef is m's weights with w_i times fine-tuning i's update added, in float64 from the
// files' tensors: an adapter's (alpha/r) B A, a model file's difference from m's weights.
// It is the reference MergeAdapters is held to.
func mixRef(t *testing.T, m *diffusion.DiT, cs []*nn.Checkpoint, ws []float64) map[string][]float64 {
	t.Helper()
	out, base := map[string][]float64{}, map[string][]float32{}
	for _, p := range m.Params() {
		base[p.Name] = hostOf(p.W)
		for _, v := range base[p.Name] {
			out[p.Name] = append(out[p.Name], float64(v))
		}
	}
	for i, c := range cs {
		if c.Extra[metaModelType] == modelTypeDiT {
			for _, f := range c.Tensors {
				for j, v := range f.Data {
					out[f.Name][j] += ws[i] * (float64(v) - float64(base[f.Name][j]))
				}
			}
			continue
		}
		var lc LoRAConfig
		if err := json.Unmarshal([]byte(c.Extra[metaLoRA]), &lc); err != nil {
			t.Fatal(err)
		}
		rank := lc.Rank
		s := ws[i] * lc.Alpha / float64(rank)
		for _, a := range c.Tensors {
			layer, ok := strings.CutSuffix(a.Name, ".lora_A.weight")
			if !ok {
				continue
			}
			b := c.Tensor(layer + ".lora_B.weight")
			w := out[layer+".weight"]
			in, outDim := a.Shape[1], b.Shape[0]
			if len(w) != outDim*in || a.Shape[0] != rank {
				t.Fatalf("%s: A %v, B %v, base weight of %d values", layer, a.Shape, b.Shape, len(w))
			}
			for o := range outDim {
				for j := range in {
					var d float64
					for k := range rank {
						d += float64(b.Data[o*rank+k]) * float64(a.Data[k*in+j])
					}
					w[o*in+j] += s * d
				}
			}
		}
	}
	return out
}

func TestLoRAMergeAdapters(t *testing.T) {
	base := func() *diffusion.DiT { return tinyModel(t, 5) }
	a1 := randomAdapter(t, base, LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{TargetQKV, TargetProj}}, 1)
	a2 := randomAdapter(t, base, LoRAConfig{Rank: 3, Alpha: 3, Targets: []string{TargetProj, TargetFC2}}, 2)
	for _, ws := range [][]float64{{0.5, 0.5}, {1, 0}, {0.25, -1.5}} {
		m := base()
		want := mixRef(t, m, []*nn.Checkpoint{a1, a2}, ws)
		if err := MergeAdapters(m, []*nn.Checkpoint{a1, a2}, ws); err != nil {
			t.Fatal(err)
		}
		moved := 0
		for _, p := range m.Params() {
			if isLoRAParam(p.Name) {
				t.Fatalf("weights %v: %s still attached", ws, p.Name)
			}
			if p.G == nil {
				t.Fatalf("weights %v: %s frozen after the merge", ws, p.Name)
			}
			got, w := hostOf(p.W), want[p.Name]
			for i := range got {
				if math.Abs(float64(got[i])-w[i]) > 1e-6*(1+math.Abs(w[i])) {
					t.Fatalf("weights %v: %s[%d] = %v, want %v", ws, p.Name, i, got[i], w[i])
				}
			}
			if !slices.Equal(got, hostOf(paramOf(t, base(), p.Name))) {
				moved++
			}
		}
		// qkv, proj and fc2 of each block, fc2 not at all with a2's weight 0.
		if wantMoved := map[float64]int{0: 2, 0.5: 3, -1.5: 3}[ws[1]] * len(m.Blocks); moved != wantMoved {
			t.Fatalf("weights %v: %d weights changed by the merge, want %d", ws, moved, wantMoved)
		}
	}
}

// paramOf is m's parameter called name.
func paramOf(t *testing.T, m *diffusion.DiT, name string) *kernels.Tensor {
	t.Helper()
	for _, p := range m.Params() {
		if p.Name == name {
			return p.W
		}
	}
	t.Fatalf("no parameter %s", name)
	return nil
}

func TestLoRAMergeAdaptersRefuses(t *testing.T) {
	a1 := randomAdapter(t, func() *diffusion.DiT { return tinyModel(t, 5) }, DefaultLoRAConfig(), 1)
	stranger := randomAdapter(t, func() *diffusion.DiT { return tinyModel(t, 6) }, DefaultLoRAConfig(), 2) // same architecture, other weights

	m := tinyModel(t, 5)
	before := hostOf(m.Blocks[0].Attn.QKV.Weight)
	err := MergeAdapters(m, []*nn.Checkpoint{a1, stranger}, []float64{1, 1})
	if err == nil || !strings.Contains(err.Error(), stranger.Path) || !strings.Contains(err.Error(), "other base weights") {
		t.Fatalf("an adapter of other base weights: %v", err)
	}
	if !slices.Equal(before, hostOf(m.Blocks[0].Attn.QKV.Weight)) {
		t.Error("the first adapter was merged before the second was checked")
	}
	if err := MergeAdapters(m, []*nn.Checkpoint{a1}, []float64{1, 2}); err == nil {
		t.Error("one adapter with two weights accepted")
	}

	// Reward-condition maxima: adapters that agree mix (a dimension without a maximum in
	// both included), ones that differ do not.
	cond := func() *diffusion.DiT { return condModel(t, 3) }
	withMax := func(seed uint64, maxes []float64) *nn.Checkpoint {
		ck := randomAdapter(t, cond, DefaultLoRAConfig(), seed)
		if err := diffusion.SetRewardConditionMax(ck, []string{"vq", "ta"}, maxes); err != nil {
			t.Fatal(err)
		}
		return ck
	}
	plain := randomAdapter(t, cond, DefaultLoRAConfig(), 4)
	b1, b2, b3 := withMax(5, []float64{2, math.NaN()}), withMax(6, []float64{2, math.NaN()}), withMax(7, []float64{2.5, 1})
	m = cond()
	if err := MergeAdapters(m, []*nn.Checkpoint{plain, b1, b2}, []float64{1, 0.5, 0.5}); err != nil {
		t.Fatal(err)
	}
	if got := m.RewardConditionMax; len(got) != 2 || got[0] != 2 || !math.IsNaN(got[1]) {
		t.Errorf("reward-condition maxima of the mix: %v, want [2 NaN]", got)
	}
	err = MergeAdapters(cond(), []*nn.Checkpoint{b1, b3}, []float64{1, 1})
	if err == nil || !strings.Contains(err.Error(), "reward-condition maxima") || !strings.Contains(err.Error(), b3.Path) {
		t.Errorf("adapters of different maxima: %v", err)
	}
}
