package thirdparty

import (
	"os"
	"path/filepath"
	"testing"
)

// Find from a folder two levels below the checkout finds its third_party file; a folder of
// that name, or a name that is not there, is not found.
func TestFind(t *testing.T) {
	root := t.TempDir()
	want := filepath.Join(root, "third_party", "tool", "bin")
	os.MkdirAll(filepath.Dir(want), 0o755)
	os.WriteFile(want, []byte("x"), 0o755)
	os.MkdirAll(filepath.Join(root, "third_party", "tool", "dir"), 0o755)
	sub := filepath.Join(root, "a", "b")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	if p, ok := Find(filepath.Join("tool", "bin")); !ok || p != want {
		t.Errorf("Find: %q, %v; want %q", p, ok, want)
	}
	for _, rel := range []string{filepath.Join("tool", "dir"), filepath.Join("tool", "none")} {
		if p, ok := Find(rel); ok {
			t.Errorf("Find(%q): %q", rel, p)
		}
	}
}
