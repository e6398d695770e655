package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion"
)

// $ALIGN_DEVICE sets --device's default: an unknown name in it fails like the flag, naming the
// variable; the flag given on the command line wins over it.
func TestDeviceFromEnv(t *testing.T) {
	dir := t.TempDir()
	model := saveTinyModel(t, dir, diffusion.KindImage)
	args := []string{"sample", "--model", model, "--prompt", "red apple", "--num-inference-steps", "2"}

	t.Setenv(deviceEnv, "nosuch")
	code, _, stderr := runAlign(t, append(args, "-o", filepath.Join(dir, "env"))...)
	if code != exitUsage || !strings.Contains(stderr, "$ALIGN_DEVICE") || !strings.Contains(stderr, "nosuch") {
		t.Errorf("ALIGN_DEVICE=nosuch: exit %d, %q", code, stderr)
	}
	code, _, stderr = runAlign(t, append(args, "--device", "cpu", "-o", filepath.Join(dir, "flag"))...)
	if code != exitOK {
		t.Errorf("--device cpu with ALIGN_DEVICE=nosuch: exit %d, %q", code, stderr)
	}

	t.Setenv(deviceEnv, "cpu")
	if code, _, stderr = runAlign(t, append(args, "-o", filepath.Join(dir, "cpu"))...); code != exitOK {
		t.Errorf("ALIGN_DEVICE=cpu: exit %d, %q", code, stderr)
	}
	code, _, stderr = runAlign(t, append(args, "--device", "nosuch", "-o", filepath.Join(dir, "bad"))...)
	if code != exitUsage || strings.Contains(stderr, "$ALIGN_DEVICE") {
		t.Errorf("--device nosuch: exit %d, %q (the error names the flag's value, not the variable)", code, stderr)
	}
}
