// Pairs from folders, in the preference layout of sd-scripts (kohya-ss/sd-scripts PR #1427):
//
//	DIR/w/0007.png   the preferred sample        DIR/l/0007.png   the other one
//	DIR/w/0007.txt   its prompt (or .caption)
//
// A pair is the entry of w/ and the entry of l/ of the same name, extensions aside (w/7.png
// and l/7.jpg pair). An entry is an image, GIF or video file, or a folder of PNG frames. The
// prompt is the caption file NAME.txt or NAME.caption in w/ or l/; where the pair has several,
// they must agree. Folders below DIR that hold w/ and l/ are read too (DIR/1_apples/w, ...).
// Other files (latent caches, notes) are left alone; hidden entries are skipped. Every
// problem (an entry without its other half, two samples of one name, a missing or
// disagreeing caption) comes back together, each naming its file.
//
// Test: go test ./dpo -run PairsDir

package dpo

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/alignkit/align/rewards/scoring"
)

// The sub-folders of a preference folder: the preferred samples, the others.
const (
	pairsDirWin  = "w"
	pairsDirLose = "l"
)

// captionExts are the extensions of caption files, in the order they are read.
var captionExts = []string{".txt", ".caption"}

// ReadPairsDir reads the pairs of a folder in the w/ and l/ layout (above). The pairs carry
// no labels: the file in w/ is chosen.
func ReadPairsDir(dir string) (*PairSet, error) {
	var roots []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		// w/ and l/ hold samples (and frame folders), not more pairs.
		if (d.Name() == pairsDirWin || d.Name() == pairsDirLose) && slices.Contains(roots, filepath.Dir(path)) {
			return filepath.SkipDir
		}
		if isDir(filepath.Join(path, pairsDirWin)) && isDir(filepath.Join(path, pairsDirLose)) {
			roots = append(roots, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%s: no pairs: a folder of pairs holds w/ (the preferred samples) and l/ (the others), "+
			"a sample and its caption NAME.txt in w/ for each name of l/", dir)
	}
	set := &PairSet{}
	var errs LineErrors
	for _, root := range roots {
		ps, es := readPairsRoot(root)
		set.Pairs = append(set.Pairs, ps...)
		errs = append(errs, es...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return set, nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// pairsFolder is the content of a w/ or l/ folder: the samples and the caption files by name.
type pairsFolder struct {
	samples  map[string]string
	captions map[string][]string
}

// readPairsFolder lists a w/ or l/ folder; errs receives two samples of one name.
func readPairsFolder(dir string, errs *LineErrors) (pairsFolder, error) {
	f := pairsFolder{samples: map[string]string{}, captions: map[string][]string{}}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return f, err
	}
	for _, e := range ents { // in name order: .caption before .txt, a.jpg before a.png
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		switch {
		case e.IsDir():
			stem = name
		case slices.Contains(captionExts, strings.ToLower(filepath.Ext(name))):
			f.captions[stem] = append(f.captions[stem], path)
			continue
		case !scoring.IsImageFile(name) && !scoring.IsVideoFile(name):
			continue
		}
		if other, ok := f.samples[stem]; ok {
			*errs = append(*errs, &LineError{Source{File: path}, fmt.Sprintf("a second sample named %q (beside %s): names pair the samples, so each must be unique",
				stem, filepath.Base(other))})
			continue
		}
		f.samples[stem] = path
	}
	return f, nil
}

// readPairsRoot reads the pairs of one folder holding w/ and l/, in name order.
func readPairsRoot(root string) ([]Pair, LineErrors) {
	var errs LineErrors
	win, err := readPairsFolder(filepath.Join(root, pairsDirWin), &errs)
	if err != nil {
		return nil, LineErrors{{Source{File: root}, err.Error()}}
	}
	lose, err := readPairsFolder(filepath.Join(root, pairsDirLose), &errs)
	if err != nil {
		return nil, LineErrors{{Source{File: root}, err.Error()}}
	}
	var pairs []Pair
	for _, name := range sortedKeys(win.samples) {
		chosen := win.samples[name]
		rejected, ok := lose.samples[name]
		if !ok {
			errs = append(errs, &LineError{Source{File: chosen}, fmt.Sprintf("no sample named %q in %s", name, filepath.Join(root, pairsDirLose))})
			continue
		}
		prompt, msg := pairCaption(name, append(slices.Clone(win.captions[name]), lose.captions[name]...))
		if msg != "" {
			errs = append(errs, &LineError{Source{File: chosen}, msg})
			continue
		}
		pairs = append(pairs, Pair{Prompt: prompt, Chosen: chosen, Rejected: rejected, Source: Source{File: chosen}})
	}
	for _, name := range sortedKeys(lose.samples) {
		if _, ok := win.samples[name]; !ok {
			errs = append(errs, &LineError{Source{File: lose.samples[name]}, fmt.Sprintf("no sample named %q in %s", name, filepath.Join(root, pairsDirWin))})
		}
	}
	return pairs, errs
}

// pairCaption is the prompt of the pair called name from its caption files, or a message
// saying what is wrong with them.
func pairCaption(name string, files []string) (string, string) {
	if len(files) == 0 {
		return "", fmt.Sprintf("no caption: %s.txt (or .caption) in w/ or l/ holds the prompt", name)
	}
	prompt, from := "", ""
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err.Error()
		}
		p := strings.Join(strings.Fields(strings.TrimPrefix(string(b), "\ufeff")), " ") // one line, as a prompt
		switch {
		case p == "":
			return "", fmt.Sprintf("%s: an empty caption", f)
		case from == "":
			prompt, from = p, f
		case p != prompt:
			return "", fmt.Sprintf("the captions differ: %s says %q, %s says %q (the two samples of a pair share one prompt)", from, prompt, f, p)
		}
	}
	return prompt, ""
}
