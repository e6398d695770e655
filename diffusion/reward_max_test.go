package diffusion

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/alignkit/align/nn"
)

// The maxima round-trip through a file's metadata; NaN values and unknown dimensions are
// left out, a file without the key reads as nil.
func TestRewardConditionMaxRoundTrip(t *testing.T) {
	c := &nn.Checkpoint{Tensors: []nn.HostTensor{{Name: "w", Shape: []int{1}, DType: nn.F32, Data: []float32{1}}}}
	if err := SetRewardConditionMax(c, []string{"vq", "ta"}, []float64{2.25, math.NaN()}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRewardConditionMax(path, []string{"ta", "vq", "mq"})
	if err != nil || !math.IsNaN(got[0]) || got[1] != 2.25 || !math.IsNaN(got[2]) {
		t.Fatalf("read %v, %v; want [NaN 2.25 NaN]", got, err)
	}
	plain := &nn.Checkpoint{Tensors: c.Tensors}
	p2 := filepath.Join(t.TempDir(), "p.safetensors")
	if err := plain.Save(p2); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadRewardConditionMax(p2, []string{"vq"}); err != nil || got != nil {
		t.Fatalf("file without maxima: %v, %v", got, err)
	}
	if err := SetRewardConditionMax(c, []string{"vq"}, []float64{1, 2}); err == nil {
		t.Error("two maxima for one dimension accepted")
	}
}

// A model carries its maxima: Save writes them, LoadDiT and LoadWeights read them back; a
// model without maxima saves none and loads nil.
func TestDiTCarriesRewardConditionMax(t *testing.T) {
	dir := t.TempDir()
	m := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 1)
	m.RewardConditionMax = []float64{1.75, math.NaN()}
	path := filepath.Join(dir, "m.safetensors")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	want := func(what string, got []float64) {
		t.Helper()
		if len(got) != 2 || got[0] != 1.75 || !math.IsNaN(got[1]) {
			t.Errorf("%s: maxima %v, want [1.75 NaN]", what, got)
		}
	}
	loaded, err := LoadDiT(testDev, path)
	if err != nil {
		t.Fatal(err)
	}
	want("LoadDiT", loaded.RewardConditionMax)
	other := newTinyModel(t, tinyConfig(KindImage, "vq", "ta"), 2)
	ck, err := nn.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.LoadWeights(ck); err != nil {
		t.Fatal(err)
	}
	want("LoadWeights", other.RewardConditionMax)

	m.RewardConditionMax = nil
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	if loaded, err := LoadDiT(testDev, path); err != nil || loaded.RewardConditionMax != nil {
		t.Errorf("model saved without maxima loads %v (%v)", loaded.RewardConditionMax, err)
	}
	m.RewardConditionMax = []float64{1}
	if err := m.Save(path); err == nil {
		t.Error("one maximum for two dimensions saved")
	}
}
