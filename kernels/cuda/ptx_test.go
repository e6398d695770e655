// Checks of the committed PTX: it matches what ptx.sh makes from the .cu sources now
// (clang-19; skipped without it, except under CI=true where that is a failure), every
// kernel of the emulation exists in it with the same parameter types for both archs, and,
// where ptxas is available (make ptx-tools installs it), it assembles for sm_80 and sm_90.
//
// Test: go test ./kernels/cuda -run PTX
package cuda

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// emuOnly are the kernels that exist for the emulation's own tests.
func emuOnly(name string) bool {
	return strings.HasPrefix(name, "emu_test_") || strings.HasPrefix(name, "kmath_")
}

func TestPTXKernelTable(t *testing.T) {
	for _, arch := range []string{"sm_80", "sm_90"} {
		mods, err := ptxModules(arch)
		if err != nil {
			t.Fatal(err)
		}
		entries := map[string][]string{}
		for _, text := range mods {
			for k, p := range ptxEntries(text) {
				if _, dup := entries[k]; dup {
					t.Errorf("%s: kernel %s defined in two modules", arch, k)
				}
				entries[k] = p
			}
		}
		for _, k := range emuKernels() {
			if emuOnly(k.Name) {
				continue
			}
			params, ok := entries[k.Name]
			if !ok {
				t.Errorf("%s: kernel %s is in the emulation but not in the PTX (run make ptx)", arch, k.Name)
				continue
			}
			want := make([]string, len(k.Sig))
			for i := range k.Sig {
				want[i] = ptxType(k.Sig[i])
			}
			if !slices.Equal(params, want) {
				t.Errorf("%s: kernel %s: PTX parameters %v, emulation %v (%s)", arch, k.Name, params, want, k.Sig)
			}
			delete(entries, k.Name)
		}
		for k := range entries {
			t.Errorf("%s: kernel %s is in the PTX but not registered with EMU_KERNEL", arch, k)
		}
	}
}

func TestPTXFresh(t *testing.T) {
	clang := os.Getenv("CLANG")
	if clang == "" {
		clang = "clang-19"
	}
	if _, err := exec.LookPath(clang); err != nil {
		msg := clang + " not found: the committed PTX was not compared with the sources (make ptx-tools installs it)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out := t.TempDir()
	cmd := exec.Command("sh", "ptx.sh", out)
	cmd.Env = append(os.Environ(), "PTX_COMPILER=clang", "CLANG="+clang)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ptx.sh: %v\n%s", err, b)
	}
	for _, arch := range []string{"sm_80", "sm_90"} {
		mods, err := ptxModules(arch)
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := filepath.Glob(filepath.Join(out, arch, "*.ptx"))
		if err != nil {
			t.Fatal(err)
		}
		if len(fresh) != len(mods) {
			t.Errorf("%s: ptx.sh made %d files, %d are committed (run make ptx)", arch, len(fresh), len(mods))
		}
		for _, f := range fresh {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fam := strings.TrimSuffix(filepath.Base(f), ".ptx")
			if !bytes.Equal(b, []byte(mods[fam])) {
				t.Errorf("ptx/%s/%s.ptx is stale: run make ptx and commit it", arch, fam)
			}
		}
	}
}

// TestPTXAssembles runs NVIDIA's ptxas (from PTXAS, PATH, or where make ptx-tools puts it)
// on the committed PTX, and checks that no kernel spills more registers to local memory than
// spillBudget allows: a kernel that starts to spill is slower on the GPU, which the tests on a
// machine without one would not show (make sass-stats tells where).
func TestPTXAssembles(t *testing.T) {
	ptxas := os.Getenv("PTXAS")
	if ptxas == "" {
		if p, err := exec.LookPath("ptxas"); err == nil {
			ptxas = p
		} else if p := "../../third_party/cuda-nvcc/nvidia/cuda_nvcc/bin/ptxas"; fileExists(p) {
			ptxas = p
		}
	}
	if ptxas == "" {
		t.Skip("ptxas not found (make ptx-tools installs it under third_party/): the PTX was not assembled")
	}
	for _, arch := range []string{"sm_80", "sm_90"} {
		files, _ := filepath.Glob(filepath.Join("ptx", arch, "*.ptx"))
		for _, f := range files {
			b, err := exec.Command(ptxas, "-v", "-arch="+arch, "-o", os.DevNull, f).CombinedOutput()
			if err != nil {
				t.Errorf("ptxas -arch=%s %s: %v\n%s", arch, f, err, b)
				continue
			}
			spills, err := ptxasSpills(string(b))
			if err != nil {
				t.Fatalf("ptxas -v -arch=%s %s: %v", arch, f, err)
			}
			for name, n := range spills {
				if n > spillBudget[arch+" "+name] {
					t.Errorf("%s on %s: %d bytes of spill stores, at most %d before (make sass-stats SASS_FAMILY=%s SASS_KERNELS=%s)",
						name, arch, n, spillBudget[arch+" "+name], strings.TrimSuffix(filepath.Base(f), ".ptx"), name)
				}
			}
		}
	}
}

// spillBudget is the bytes of spill stores a kernel had when this check was written, by
// "arch kernel"; any other kernel has none. Both are outside the kernels' main loops.
var spillBudget = map[string]int{
	"sm_90 attention_forward_mma":       16, // bounded to 3 blocks per multiprocessor
	"sm_90 layernorm_modulate_backward": 4,
}

// ptxasSpills reads ptxas -v's report: the bytes of spill stores of each entry function.
func ptxasSpills(out string) (map[string]int, error) {
	spills := map[string]int{}
	entry := ""
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "Compiling entry function '"); ok {
			entry, _, _ = strings.Cut(rest, "'")
			continue
		}
		if entry != "" && strings.Contains(line, "bytes spill stores") {
			var frame, stores, loads int
			if _, err := fmt.Sscanf(strings.TrimSpace(line), "%d bytes stack frame, %d bytes spill stores, %d bytes spill loads",
				&frame, &stores, &loads); err != nil {
				return nil, fmt.Errorf("%s: %q: %v", entry, line, err)
			}
			spills[entry] = stores
			entry = ""
		}
	}
	if len(spills) == 0 {
		return nil, fmt.Errorf("no spill report in %q", out)
	}
	return spills, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
