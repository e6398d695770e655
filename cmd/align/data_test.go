// Tests of `align data`: flag parsing through injected run functions, `inspect` on a dataset
// built from the committed fixture, and the offline error paths of `prepare` (bad cached tarball,
// no npm). Nothing is downloaded.
//
// Run: go test ./cmd/align -run Data
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alignkit/align/diffusion/dataset"
)

func TestNewCmdDataPrepare(t *testing.T) {
	defaults := DataPrepareOptions{CacheDir: filepath.Join("data", "cache"), OutputDir: filepath.Join("data", "emoji"), VideoClips: 20000, SpriteScale: 1}
	tests := []struct {
		name    string
		args    []string
		want    DataPrepareOptions
		wantErr string
	}{
		{name: "defaults", args: nil, want: defaults},
		{
			name: "all flags",
			args: []string{"--cache-dir", "c", "--sources-dir", "src", "-o", "out", "--video-clips", "64", "--seed", "9", "--clip-sprite-scale", "1.5", "--json"},
			want: DataPrepareOptions{CacheDir: "c", SourcesDir: "src", OutputDir: "out", VideoClips: 64, Seed: 9, SpriteScale: 1.5, JSON: true},
		},
		{name: "images only", args: []string{"--video-clips", "0"}, want: func() DataPrepareOptions { o := defaults; o.VideoClips = 0; return o }()},
		{name: "negative clips", args: []string{"--video-clips", "-1"}, wantErr: "--video-clips must be >= 0"},
		{name: "empty output", args: []string{"--output-dir", ""}, wantErr: "must not be empty"},
		{name: "sprite scale too large", args: []string{"--clip-sprite-scale", "2"}, wantErr: "--clip-sprite-scale must be within [0.5, 1.5], got 2"},
		{name: "sprite scale zero", args: []string{"--clip-sprite-scale", "0"}, wantErr: "--clip-sprite-scale must be within"},
		{name: "extra argument", args: []string{"dir"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *DataPrepareOptions
			cmd := newCmdData(&dataRunFuncs{prepare: func(o *DataPrepareOptions) error { got = o; return nil }})
			cmd.SetArgs(append([]string{"prepare"}, tt.args...))
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestNewCmdDataInspect(t *testing.T) {
	var got *DataInspectOptions
	cmd := newCmdData(&dataRunFuncs{inspect: func(o *DataInspectOptions) error { got = o; return nil }})
	cmd.SetArgs([]string{"inspect", "data/emoji", "--contact-sheet", "s.png", "--sheet-images", "16", "--json"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := DataInspectOptions{Dir: "data/emoji", ContactSheet: "s.png", SheetImages: 16, JSON: true}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("options %+v, want %+v", *got, want)
	}
	for _, args := range [][]string{{"inspect"}, {"inspect", "a", "b"}, {"inspect", "a", "--sheet-images", "0"}} {
		cmd := newCmdData(&dataRunFuncs{inspect: func(*DataInspectOptions) error { return nil }})
		cmd.SetArgs(args)
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		var ue usageError
		if err := cmd.Execute(); !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
}

func TestDataUsageExitCode(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"data", "prepare", "--video-clips", "-3"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
	}
}

// buildFixtureDataset writes a small dataset from the committed fixture.
func buildFixtureDataset(t *testing.T) string {
	t.Helper()
	src, err := dataset.SourcesFromDir(filepath.Join("..", "..", "diffusion", "dataset", "testdata", "fixture"))
	if err != nil {
		t.Fatal(err)
	}
	src.Packages = dataset.Packages
	dir := t.TempDir()
	if _, err := dataset.Build(context.Background(), src, dataset.Options{OutputDir: dir, VideoClips: 26, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDataInspect(t *testing.T) {
	dir := buildFixtureDataset(t)
	sheet := filepath.Join(t.TempDir(), "sheets", "contact.png")
	var stdout, stderr bytes.Buffer
	// --contact_sheet checks the global _ to - flag normalisation too.
	code := Main([]string{"data", "inspect", dir, "--json", "--contact_sheet", sheet, "--sheet-images", "12"}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var r inspectReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if r.Counts.Images != 28 || r.Counts.Clips != 26 || r.ImagesPerSet["twitter"] != 14 || len(r.Motions) != len(dataset.Motions) {
		t.Errorf("report %+v", r)
	}
	if r.MeanPixel[0] < 150 || r.MeanPixel[0] > 255 {
		t.Errorf("mean pixel %v: the images are mostly white background", r.MeanPixel)
	}
	if img := readPNG(t, sheet); img.Bounds().Dx() < 12*32 {
		t.Fatalf("contact sheet: %v", img.Bounds())
	}
	// The text report names every split.
	stdout.Reset()
	if code := Main([]string{"data", "inspect", dir}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, s := range []string{"concepts", "heldout 2", "move-up-left", "emoji-datasource-twitter@16.0.0"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, stdout.String())
		}
	}
}

func TestDataInspectMissing(t *testing.T) {
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	if code := Main([]string{"data", "inspect", dir}, &stdout, &stderr); code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), filepath.Join(dir, "manifest.json")) || !strings.Contains(stderr.String(), "align data prepare") {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestDataPrepareSourcesDir(t *testing.T) {
	// --sources-dir builds from unpacked members without npm (PATH is empty): the files are those
	// of dataset.Build on the same sources, and the manifest records no packages.
	fixture := filepath.Join("..", "..", "diffusion", "dataset", "testdata", "fixture")
	t.Setenv("PATH", t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"data", "prepare", "--sources-dir", fixture, "-o", out, "--video-clips", "13", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var s dataset.Summary
	if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	if s.Counts.Clips != 13 || s.Counts.Images == 0 {
		t.Errorf("counts %+v, want 13 clips and some images", s.Counts)
	}
	src, err := dataset.SourcesFromDir(fixture)
	if err != nil {
		t.Fatal(err)
	}
	ref := filepath.Join(t.TempDir(), "ref")
	if _, err := dataset.Build(context.Background(), src, dataset.Options{OutputDir: ref, VideoClips: 13}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"images.u8", "images.jsonl", "videos.u8", "videos.jsonl", "manifest.json"} {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(ref, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from dataset.Build's", name)
		}
	}

	// A directory without the layout is an error naming what is missing; nothing is written.
	empty := t.TempDir()
	out2 := filepath.Join(t.TempDir(), "out2")
	stderr.Reset()
	if code := Main([]string{"data", "prepare", "--sources-dir", empty, "-o", out2}, &bytes.Buffer{}, &stderr); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), filepath.Join(empty, "emoji.json")) {
		t.Errorf("stderr %q does not name the missing emoji.json", stderr.String())
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed prepare (err %v)", out2, err)
	}
}

func TestNewCmdDataSources(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		want    DataSourcesOptions
		wantErr string
	}{
		{args: []string{"-o", "src"}, want: DataSourcesOptions{CacheDir: filepath.Join("data", "cache"), OutputDir: "src"}},
		{args: []string{"-o", "src", "--cache-dir", "c"}, want: DataSourcesOptions{CacheDir: "c", OutputDir: "src"}},
		{args: nil, wantErr: "--output-dir and --cache-dir must not be empty"},
		{args: []string{"-o", "src", "extra"}, wantErr: "unknown command"},
	} {
		var got *DataSourcesOptions
		cmd := newCmdData(&dataRunFuncs{sources: func(o *DataSourcesOptions) error { got = o; return nil }})
		cmd.SetArgs(append([]string{"sources"}, tt.args...))
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		err := cmd.Execute()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: error %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got == nil || *got != tt.want {
			t.Errorf("%v: %+v (%v), want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestDataSourcesOffline(t *testing.T) {
	// Without the packages and without npm: a clear error, nothing written.
	t.Setenv("PATH", t.TempDir())
	out := filepath.Join(t.TempDir(), "src")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"data", "sources", "--cache-dir", t.TempDir(), "-o", out}, &stdout, &stderr); code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), "npm not found") {
		t.Errorf("stderr %q", stderr.String())
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s exists after a failed run (%v)", out, err)
	}
}

func TestDataPrepareOffline(t *testing.T) {
	// A corrupted cached tarball is reported and downloaded again; with no npm that fails clearly.
	cache := t.TempDir()
	bad := filepath.Join(cache, dataset.TwemojiPackage.Tarball())
	if err := os.WriteFile(bad, []byte("truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", t.TempDir())
	var stdout, stderr bytes.Buffer
	code := Main([]string{"data", "prepare", "--cache-dir", cache, "--output-dir", filepath.Join(t.TempDir(), "out")}, &stdout, &stderr)
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	for _, s := range []string{bad, "sha256 mismatch", dataset.TwemojiPackage.SHA256, "npm not found"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
		}
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing on failure", stdout.String())
	}
}
