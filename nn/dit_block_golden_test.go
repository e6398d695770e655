// Golden test of DiTBlock against JAX: scripts/golden/dit_block.py computes one block in
// float64 (weights, inputs, output and every gradient of sum(out ⊙ dout)) and stores it in
// testdata/dit_block_golden.safetensors; this test runs the Go block with the same weights
// and compares every tensor, printing "TENSOR OK maxdiff=..." per tensor with -v.
//
// Test: go test ./nn -run DiTBlockGolden -v
package nn

import (
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/alignkit/align/kernels"
)

// readF32Safetensors reads a golden fixture through the package's own safetensors parser,
// returning values, shapes and the metadata.
func readF32Safetensors(t *testing.T, path string) (map[string][]float32, map[string][]int, map[string]string) {
	t.Helper()
	buf, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	f, err := ParseSafetensors(path, buf)
	if err != nil {
		t.Fatal(err)
	}
	vals, shapes := map[string][]float32{}, map[string][]int{}
	for i := range f.Tensors {
		st := &f.Tensors[i]
		v, err := st.Float32()
		if err != nil {
			t.Fatalf("fixture tensor %s: %v", st.Name, err)
		}
		vals[st.Name], shapes[st.Name] = v, st.Shape
	}
	return vals, shapes, f.Metadata
}

func TestDiTBlockGolden(t *testing.T) {
	g, shapes, meta := readF32Safetensors(t, "testdata/dit_block_golden.safetensors")
	atoi := func(k string) int {
		v, err := strconv.Atoi(meta[k])
		if err != nil {
			t.Fatalf("metadata %s = %q", k, meta[k])
		}
		return v
	}
	B, T, C, NH, Dc, ratio := atoi("B"), atoi("T"), atoi("C"), atoi("NH"), atoi("DC"), atoi("MLP_RATIO")
	d := NewDiTBlock(testDev, nil, DiTBlockConfig{C: C, NH: NH, Dc: Dc, MLPRatio: float64(ratio), Eps: 1e-6})
	// Fixture names use "ada" for the adaLN linear.
	fixtureName := func(p string) string {
		if len(p) > 19 && p[:19] == "adaLN_modulation.1." {
			return "ada." + p[19:]
		}
		return p
	}
	ps := d.Params()
	for _, p := range ps {
		w, ok := g["param."+fixtureName(p.Name)]
		if !ok {
			t.Fatalf("fixture has no param.%s", fixtureName(p.Name))
		}
		testDev.CopyFromHost(p.W, w)
	}
	valid := g["in.key_valid"]
	kb := make([]float32, len(valid))
	for i, v := range valid {
		if v == 0 {
			kb[i] = float32(math.Inf(-1))
		}
	}
	x := testDev.FromHost(g["in.x"], shapes["in.x"]...)
	c := testDev.FromHost(g["in.c"], shapes["in.c"]...)
	out := d.Forward(x, c, testDev.FromHost(kb, B, T))
	dx, dc := d.Backward(testDev.FromHost(g["in.dout"], B, T, C))

	check := func(name string, got *kernels.Tensor, want []float32) {
		t.Helper()
		w := to64(want)
		scale := 0.0
		for _, v := range w {
			scale = math.Max(scale, math.Abs(v))
		}
		// float32 against float64: the atol tracks the tensor's magnitude (sums over up to
		// B*T = 44 rows of products).
		if assertClose(t, name, toHost(got), w, 2e-5*math.Max(scale, 1), 1e-4) {
			maxd := 0.0
			for i, v := range toHost(got) {
				maxd = math.Max(maxd, math.Abs(float64(v)-w[i]))
			}
			t.Logf("TENSOR OK %-28s maxdiff=%.3g (max |ref| %.3g)", name, maxd, scale)
		}
	}
	check("out", out, g["out.out"])
	check("grad.x", dx, g["grad.x"])
	check("grad.c", dc, g["grad.c"])
	for _, p := range ps {
		check("grad."+p.Name, p.G, g["grad."+fixtureName(p.Name)])
	}
}
