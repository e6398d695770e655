// Package thirdparty finds what make fetches into third_party/ (ONNX Runtime's library,
// ffmpeg) from wherever align runs: a checkout's bin/align, go test in a package folder, or
// a binary copied elsewhere with a third_party folder beside it.
package thirdparty

import (
	"os"
	"path/filepath"
)

// Find returns the first existing file third_party/rel in the working folder or a folder
// above it, then beside the executable or one folder up; false when there is none.
func Find(rel string) (string, bool) {
	rel = filepath.Join("third_party", rel)
	var dirs []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			dirs = append(dirs, d)
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe), filepath.Dir(filepath.Dir(exe)))
	}
	for _, d := range dirs {
		p := filepath.Join(d, rel)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}
