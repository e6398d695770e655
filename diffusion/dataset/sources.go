// Source packages of the emoji dataset: pinned npm tarballs, their sha256 checksums, the download
// (npm pack) into a cache directory, and the extraction of the few members the dataset needs.
//
// Test: go test ./diffusion/dataset -run 'Checksum|Ensure|Tarball'

package dataset

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Package is one pinned npm package the dataset is built from.
type Package struct {
	Name    string `json:"package"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`  // of the .tgz written by `npm pack`
	License string `json:"license"` // of the content the dataset uses
}

// Tarball is the file name `npm pack` writes for the package.
func (p Package) Tarball() string { return p.Name + "-" + p.Version + ".tgz" }

// Spec is the argument given to `npm pack`.
func (p Package) Spec() string { return p.Name + "@" + p.Version }

// The pinned packages (versions and checksums from docs/data.md).
var (
	TwemojiPackage = Package{
		Name: "emoji-datasource-twitter", Version: "16.0.0",
		SHA256:  "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
		License: "graphics: Twemoji, CC-BY-4.0; emoji.json: MIT",
	}
	NotoPackage = Package{
		Name: "emoji-datasource-google", Version: "16.0.0",
		SHA256:  "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
		License: "graphics: Noto Emoji, Apache-2.0",
	}
	EmojilibPackage = Package{
		Name: "emojilib", Version: "4.0.3",
		SHA256:  "7f9a6b43cff31d18985b7d65d11faba5bd971cbcc60020cf6d09322fbaaaf303",
		License: "keywords: MIT",
	}
)

// Packages lists the packages Prepare downloads, in a fixed order.
var Packages = []Package{TwemojiPackage, NotoPackage, EmojilibPackage}

// ChecksumError reports a file whose sha256 is not the pinned one.
type ChecksumError struct {
	File string
	Got  string
	Want string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 mismatch: got %s, want %s (the file is corrupted, truncated or not the pinned version)",
		e.File, e.Got, e.Want)
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// VerifyFile checks the sha256 of a file; a mismatch is a *ChecksumError.
func VerifyFile(name, want string) error {
	got, err := FileSHA256(name)
	if err != nil {
		return err
	}
	if got != want {
		return &ChecksumError{File: name, Got: got, Want: want}
	}
	return nil
}

// Fetcher downloads the tarball of pkg into dir and returns the path of the written file.
type Fetcher func(ctx context.Context, pkg Package, dir string) (string, error)

// NPMPack is the default Fetcher: it runs `npm pack --pack-destination dir name@version`.
func NPMPack(ctx context.Context, pkg Package, dir string) (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", fmt.Errorf("npm not found in PATH (needed to download %s)\n"+
			"---> HINT: install Node.js and npm, or put a verified %s into %s by hand", pkg.Spec(), pkg.Tarball(), dir)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, npm, "pack", "--loglevel=error", "--pack-destination", dir, pkg.Spec())
	cmd.Dir = dir
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("npm pack %s: %w: %s", pkg.Spec(), err, strings.TrimSpace(stderr.String()))
	}
	out := filepath.Join(dir, pkg.Tarball())
	if _, err := os.Stat(out); err != nil {
		return "", fmt.Errorf("npm pack %s did not write %s: %s", pkg.Spec(), out, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// EnsurePackages makes sure cacheDir holds a verified tarball of every package and returns their
// paths in the order of pkgs. A tarball already there with the right sha256 is not downloaded
// again; one with a wrong sha256 is replaced. A fresh download with a wrong sha256 is an error
// (a *ChecksumError naming the file and both hashes) and is not kept.
func EnsurePackages(ctx context.Context, cacheDir string, pkgs []Package, fetch Fetcher, log io.Writer) ([]string, error) {
	if fetch == nil {
		fetch = NPMPack
	}
	if log == nil {
		log = io.Discard
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	paths := make([]string, len(pkgs))
	for i, pkg := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dst := filepath.Join(cacheDir, pkg.Tarball())
		if _, err := os.Stat(dst); err == nil {
			err := VerifyFile(dst, pkg.SHA256)
			if err == nil {
				fmt.Fprintf(log, "cached   %s (sha256 ok)\n", dst)
				paths[i] = dst
				continue
			}
			var ce *ChecksumError
			if !errors.As(err, &ce) {
				return nil, err
			}
			fmt.Fprintf(log, "warning: %v; downloading it again\n", err)
		}
		fmt.Fprintf(log, "download %s\n", pkg.Spec())
		tmp, err := os.MkdirTemp(cacheDir, ".download-")
		if err != nil {
			return nil, err
		}
		got, err := fetch(ctx, pkg, tmp)
		if err == nil {
			err = VerifyFile(got, pkg.SHA256)
			if ce := (*ChecksumError)(nil); errors.As(err, &ce) {
				ce.File = dst // name the file the user knows about
			}
		}
		if err == nil {
			err = os.Rename(got, dst)
		}
		os.RemoveAll(tmp)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", pkg.Spec(), err)
		}
		fmt.Fprintf(log, "         %s (sha256 ok)\n", dst)
		paths[i] = dst
	}
	return paths, nil
}

// maxMemberSize bounds one extracted tar member (the largest needed, emoji.json, is 1.3 MB).
const maxMemberSize = 64 << 20

// readTarGz streams a .tgz and returns the members (by their path inside the archive) for which
// keep returns true. Nothing is written to disk.
func readTarGz(r io.Reader, keep func(name string) bool) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !keep(h.Name) {
			continue
		}
		if h.Size > maxMemberSize {
			return nil, fmt.Errorf("member %s is %d bytes, more than the %d allowed", h.Name, h.Size, maxMemberSize)
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxMemberSize+1))
		if err != nil {
			return nil, fmt.Errorf("member %s: %w", h.Name, err)
		}
		out[h.Name] = b
	}
}

// Image sets, in the order items are written.
const (
	SetTwitter = "twitter"
	SetGoogle  = "google"
)

// Sets lists the image sets; each concept has one rendering per set.
var Sets = []string{SetTwitter, SetGoogle}

// Sources is the raw input of the builder: the metadata, the keywords and the 64 px PNGs.
type Sources struct {
	EmojiJSON []byte                       // emoji-datasource emoji.json
	Keywords  []byte                       // emojilib dist/emoji-en-US.json
	Images    map[string]map[string][]byte // set -> image file name (e.g. "1f34e.png") -> PNG
	Packages  []Package                    // what the input came from (recorded in the manifest)
}

// SourcesFromTarballs extracts the needed members of the three package tarballs, given in the
// order of Packages (Twemoji, Noto, emojilib).
func SourcesFromTarballs(paths []string, pkgs []Package) (*Sources, error) {
	if len(paths) != 3 || len(pkgs) != 3 {
		return nil, fmt.Errorf("want 3 tarballs (twitter, google, emojilib), got %d", len(paths))
	}
	s := &Sources{Images: map[string]map[string][]byte{}, Packages: pkgs}
	for i, set := range Sets {
		prefix := "package/img/" + set + "/64/"
		m, err := readTarFile(paths[i], func(name string) bool {
			return (i == 0 && name == "package/emoji.json") ||
				(strings.HasPrefix(name, prefix) && strings.HasSuffix(name, ".png"))
		})
		if err != nil {
			return nil, err
		}
		imgs := map[string][]byte{}
		for name, b := range m {
			if strings.HasPrefix(name, prefix) {
				imgs[path.Base(name)] = b
			}
		}
		if len(imgs) == 0 {
			return nil, fmt.Errorf("%s: no PNG under %s", paths[i], prefix)
		}
		s.Images[set] = imgs
		if i == 0 {
			if s.EmojiJSON = m["package/emoji.json"]; s.EmojiJSON == nil {
				return nil, fmt.Errorf("%s: package/emoji.json missing", paths[i])
			}
		}
	}
	m, err := readTarFile(paths[2], func(name string) bool { return name == "package/dist/emoji-en-US.json" })
	if err != nil {
		return nil, err
	}
	if s.Keywords = m["package/dist/emoji-en-US.json"]; s.Keywords == nil {
		return nil, fmt.Errorf("%s: package/dist/emoji-en-US.json missing", paths[2])
	}
	return s, nil
}

func readTarFile(name string, keep func(string) bool) (map[string][]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := readTarGz(f, keep)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// SourcesFromDir reads an unpacked layout: DIR/emoji.json, DIR/emoji-en-US.json and
// DIR/img/{twitter,google}/64/*.png (the layout of testdata/fixture).
func SourcesFromDir(dir string) (*Sources, error) {
	s := &Sources{Images: map[string]map[string][]byte{}}
	var err error
	if s.EmojiJSON, err = os.ReadFile(filepath.Join(dir, "emoji.json")); err != nil {
		return nil, err
	}
	if s.Keywords, err = os.ReadFile(filepath.Join(dir, "emoji-en-US.json")); err != nil {
		return nil, err
	}
	for _, set := range Sets {
		files, err := filepath.Glob(filepath.Join(dir, "img", set, "64", "*.png"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: no PNG under img/%s/64", dir, set)
		}
		sort.Strings(files)
		imgs := map[string][]byte{}
		for _, f := range files {
			if imgs[filepath.Base(f)], err = os.ReadFile(f); err != nil {
				return nil, err
			}
		}
		s.Images[set] = imgs
	}
	return s, nil
}

// WriteSourcesDir writes src into dir in the layout SourcesFromDir reads (emoji.json,
// emoji-en-US.json, img/{twitter,google}/64/*.png), for `align data prepare --sources-dir` on a
// machine without network. The PNGs are re-encoded without deflate compression: they decode to
// the same pixels in the same colour model, so the dataset built from dir is the one built from
// the tarballs, and a compressor run over the whole folder (xz) finds the redundancy across
// sprites that per-file deflate hides: the full set packs into 15 MB instead of 24 MB.
func WriteSourcesDir(src *Sources, dir string) error {
	files := map[string][]byte{"emoji.json": src.EmojiJSON, "emoji-en-US.json": src.Keywords}
	enc := png.Encoder{CompressionLevel: png.NoCompression}
	for _, set := range Sets {
		for name, b := range src.Images[set] {
			im, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s image %s: %w", set, name, err)
			}
			var buf bytes.Buffer
			if err := enc.Encode(&buf, im); err != nil {
				return fmt.Errorf("%s image %s: %w", set, name, err)
			}
			files[filepath.Join("img", set, "64", name)] = buf.Bytes()
		}
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
