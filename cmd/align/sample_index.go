// samples.json: the report of `align sample` (what --json prints) that it always writes into
// its output directory, with the file paths relative to that directory so that the directory
// can be moved or copied; `align eval` reads it to pair the samples of two runs.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/alignkit/align/diffusion"
	"github.com/alignkit/align/rewards/scoring"
)

// sampleIndexFile is the name of the report in a sample output directory (align score reads
// its prompts and grid too).
const sampleIndexFile = scoring.SampleIndexFile

// writeSampleIndex writes rep, its paths made relative to dir, to dir/samples.json atomically.
func writeSampleIndex(dir string, rep sampleReport) error {
	rel := func(p string) (string, error) {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", sampleIndexFile, err)
		}
		return filepath.ToSlash(r), nil
	}
	var err error
	if rep.Grid, err = rel(rep.Grid); err != nil {
		return err
	}
	files := make([]sampleFile, len(rep.Files))
	for i, f := range rep.Files {
		if f.Path, err = rel(f.Path); err != nil {
			return err
		}
		files[i] = f
	}
	rep.Files = files
	return writeJSONFile(filepath.Join(dir, sampleIndexFile), rep)
}

// readSampleIndex reads dir/samples.json and resolves its relative paths against dir.
func readSampleIndex(dir string) (*sampleReport, error) {
	path := filepath.Join(dir, sampleIndexFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w\n---> HINT: %s is not an output directory of align sample (which writes %s beside its images)",
			err, dir, sampleIndexFile)
	}
	if err != nil {
		return nil, err
	}
	var rep sampleReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if rep.Kind != diffusion.KindImage && rep.Kind != diffusion.KindVideo {
		return nil, fmt.Errorf("%s: kind %q, want %s or %s", path, rep.Kind, diffusion.KindImage, diffusion.KindVideo)
	}
	if len(rep.Files) == 0 {
		return nil, fmt.Errorf("%s: no samples listed", path)
	}
	for i := range rep.Files {
		f := &rep.Files[i]
		if f.Path == "" || f.Prompt == "" {
			return nil, fmt.Errorf("%s: sample %d has no path or no prompt", path, i)
		}
		if p := filepath.FromSlash(f.Path); !filepath.IsAbs(p) {
			f.Path = filepath.Join(dir, p)
		}
	}
	if rep.Grid != "" && !filepath.IsAbs(filepath.FromSlash(rep.Grid)) {
		rep.Grid = filepath.Join(dir, filepath.FromSlash(rep.Grid))
	}
	return &rep, nil
}
