// Tests of fine-tuned model files as task vectors: MergeAdapters gives W + Σ w_i (W_i - W)
// for model files that record their base, mixed with adapters; it refuses model files without
// a recorded base, of other base weights, of another model or of other tensors; and a
// fine-tuning run records its base in model.safetensors, full or with the adapters merged.
//
// Test: go test ./dpo -run Mix

package dpo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/nn"
)

// fullFinetune is a model file of base's architecture with every weight drawn anew, as a full
// fine-tuning of base would write it (its base recorded).
func fullFinetune(t *testing.T, base func() *diffusion.DiT, seed uint64) *nn.Checkpoint {
	t.Helper()
	m := base()
	crc := fmt.Sprintf("%08x", baseFingerprint(m))
	randomize(m.Params(), seed, 0.2)
	c, err := m.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	recordBase(c, "base.safetensors", crc)
	c.Path = fmt.Sprintf("full-%d.safetensors", seed)
	return c
}

// checkWeights fails unless every weight of m is within tol (relative) of want.
func checkWeights(t *testing.T, what string, m *diffusion.DiT, want map[string][]float64, tol float64) {
	t.Helper()
	for _, p := range m.Params() {
		if p.G == nil {
			t.Fatalf("%s: %s frozen after the merge", what, p.Name)
		}
		for i, v := range hostOf(p.W) {
			if w := want[p.Name][i]; math.Abs(float64(v)-w) > tol*(1+math.Abs(w)) {
				t.Fatalf("%s: %s[%d] = %v, want %v", what, p.Name, i, v, w)
			}
		}
	}
}

func TestMixTaskVectors(t *testing.T) {
	base := func() *diffusion.DiT { return tinyModel(t, 5) }
	f1, f2 := fullFinetune(t, base, 11), fullFinetune(t, base, 12)
	a1 := randomAdapter(t, base, LoRAConfig{Rank: 2, Alpha: 4, Targets: []string{TargetQKV, TargetFC1}}, 1)
	if b, ok := FinetuneBase(f1); !ok || b != "base.safetensors" {
		t.Fatalf("FinetuneBase of a fine-tuned model file: %q, %v", b, ok)
	}
	if _, ok := AdapterBase(f1); ok {
		t.Fatal("a model file taken for an adapter file")
	}
	cs := []*nn.Checkpoint{f1, f2, a1}
	for _, ws := range [][]float64{{0.5, -1.5, 0.25}, {0.3, 0.7, 0}, {2, 0, 1}} {
		m := base()
		want := mixRef(t, m, cs, ws)
		if err := MergeAdapters(m, cs, ws); err != nil {
			t.Fatal(err)
		}
		checkWeights(t, fmt.Sprint(ws), m, want, 1e-6)
	}
	// One model file at weight 1 is that file; at 0 the base, bit for bit.
	for _, w := range []float64{1, 0} {
		m := base()
		if err := MergeAdapters(m, []*nn.Checkpoint{f1}, []float64{w}); err != nil {
			t.Fatal(err)
		}
		ref := base()
		for _, p := range ref.Params() {
			want := hostOf(p.W)
			if w == 1 {
				want = f1.Tensor(p.Name).Data
			}
			if got := hostOf(paramOf(t, m, p.Name)); !slices.Equal(got, want) {
				t.Fatalf("weight %v: %s differs from the %s", w, p.Name, map[float64]string{1: "file's", 0: "base's"}[w])
			}
		}
	}
}

func TestMixRefuses(t *testing.T) {
	base := func() *diffusion.DiT { return tinyModel(t, 5) }
	f1 := fullFinetune(t, base, 11)
	plain, err := base().Checkpoint() // records no base
	if err != nil {
		t.Fatal(err)
	}
	plain.Path = "plain.safetensors"
	stranger := fullFinetune(t, func() *diffusion.DiT { return tinyModel(t, 6) }, 13) // same architecture, other weights
	other := fullFinetune(t, func() *diffusion.DiT { return condModel(t, 3) }, 14)
	short := *f1
	short.Tensors = f1.Tensors[1:]
	for _, tc := range []struct {
		c    *nn.Checkpoint
		want string
	}{
		{plain, "records no base model"},
		{stranger, "other base weights"},
		{other, "fine-tuning of another model"},
		{&short, "tensors, the model has"},
	} {
		m := base()
		before := hostOf(m.Blocks[0].Attn.QKV.Weight)
		err := MergeAdapters(m, []*nn.Checkpoint{f1, tc.c}, []float64{1, 1})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.c.Source()) {
			t.Errorf("%s: %v, want %q", tc.c.Source(), err, tc.want)
		}
		if !slices.Equal(before, hostOf(m.Blocks[0].Attn.QKV.Weight)) {
			t.Errorf("%s: the first fine-tuning was merged before the second was checked", tc.c.Source())
		}
	}
	if err := MergeAdapters(base(), []*nn.Checkpoint{stranger}, []float64{1}); !errors.Is(err, ErrOtherBase) {
		t.Errorf("a fine-tuning of other weights: %v, want ErrOtherBase", err)
	}
	if _, _, err := ApplyAdapter(base(), f1); err == nil || !strings.Contains(err.Error(), "not a LoRA adapter file") {
		t.Errorf("a model file applied as an adapter: %v", err)
	}
}

// A run's model.safetensors records the base it started from, full or with the adapters
// merged, so that it mixes as its difference from that base: the full run's at weight 1 is
// the file's weights, the merged LoRA run's the adapter's update.
func TestMixFinetuneRecordsBase(t *testing.T) {
	D := tinyModel(t, 6).Config.SampleSize()
	run := func(full bool) *Trainer {
		cfg := tinyConfig(MethodSFT, 3)
		cfg.FullFinetune = full
		tr, err := NewTrainer(testDev, tinyModel(t, 6), cfg, memItems(4, D), filepath.Join(t.TempDir(), "run"))
		if err != nil {
			t.Fatal(err)
		}
		tr.BaseModel, tr.MergeLoRA = "base.safetensors", !full
		if err := tr.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	full, lora := run(true), run(false)
	for _, tr := range []*Trainer{full, lora} {
		c, err := nn.LoadCheckpoint(tr.ModelPath())
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := FinetuneBase(c); !ok || b != "base.safetensors" {
			t.Fatalf("%s: FinetuneBase = %q, %v", tr.ModelPath(), b, ok)
		}
		m := tinyModel(t, 6)
		want := mixRef(t, m, []*nn.Checkpoint{c}, []float64{0.5})
		if err := MergeAdapters(m, []*nn.Checkpoint{c}, []float64{0.5}); err != nil {
			t.Fatal(err)
		}
		checkWeights(t, tr.ModelPath(), m, want, 1e-6)
	}
	// The merged LoRA run's model file mixes as its adapter file does, within the rounding of
	// W + ΔW in float32.
	c, _ := nn.LoadCheckpoint(lora.ModelPath())
	ad, err := nn.LoadCheckpoint(lora.AdapterPath())
	if err != nil {
		t.Fatal(err)
	}
	viaModel, viaAdapter := tinyModel(t, 6), tinyModel(t, 6)
	if err := MergeAdapters(viaModel, []*nn.Checkpoint{c}, []float64{-2}); err != nil {
		t.Fatal(err)
	}
	if err := MergeAdapters(viaAdapter, []*nn.Checkpoint{ad}, []float64{-2}); err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, p := range viaAdapter.Params() {
		got, want := hostOf(paramOf(t, viaModel, p.Name)), hostOf(p.W)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("%s[%d]: %v through the model file, %v through the adapter", p.Name, i, got[i], want[i])
			}
		}
		if !slices.Equal(want, hostOf(paramOf(t, tinyModel(t, 6), p.Name))) {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the LoRA run's update moved no weight")
	}
}
