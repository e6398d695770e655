//go:build amd64 && gc && !purego

package gemmasm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// gemm_amd64.s is what gemm_amd64_gen.go writes: the generator runs in a scratch folder and
// its output must equal the committed file (regenerate: go run gemm_amd64_gen.go here).
func TestGemmAssemblyFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with go run")
	}
	dir := t.TempDir()
	src, err := os.ReadFile("gemm_amd64_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gemm_amd64_gen.go"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on the PATH")
	}
	cmd := exec.Command(goCmd, "run", "gemm_amd64_gen.go")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gemm_amd64_gen.go: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dir, "gemm_amd64.s"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("gemm_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("gemm_amd64.s differs from gemm_amd64_gen.go's output: cd kernels/internal/gemmasm && go run gemm_amd64_gen.go")
	}
}
