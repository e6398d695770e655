// ONNX Runtime's shared library: where it is looked for and the one-time initialisation of
// onnxruntime_go (the library is loaded with dlopen, never linked).
//
// Test: go test ./rewards/onnx -run Runtime
package onnx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/alignkit/align/internal/thirdparty"
)

// Environment variables naming the library, read in this order.
const (
	EnvLibrary       = "ALIGN_ONNXRUNTIME"               // align's own
	EnvLibraryCommon = "ONNXRUNTIME_SHARED_LIBRARY_PATH" // the name onnxruntime_go's tests use
)

// LibraryName is the file `make ort` puts under third_party/onnxruntime.
const LibraryName = "libonnxruntime.so.1"

// ErrNoRuntime is returned (wrapped) when ONNX Runtime cannot be loaded.
var ErrNoRuntime = errors.New("ONNX Runtime not available")

var (
	rtMu   sync.Mutex
	rtPath string // the library that was loaded
	rtErr  error  // a failed initialisation, remembered
	rtDone bool
)

// FindLibrary returns the library to load: explicit when set, else $ALIGN_ONNXRUNTIME,
// $ONNXRUNTIME_SHARED_LIBRARY_PATH, third_party/onnxruntime/libonnxruntime.so.1 in the
// working directory or one of its parents (a checkout after `make ort`), the same beside the
// executable's directory (bin/align in a checkout), and finally the bare name for the
// system's library path. found is false when none of the files exists (the bare name may
// still load).
func FindLibrary(explicit string) (path string, found bool) {
	for _, p := range []string{explicit, os.Getenv(EnvLibrary), os.Getenv(EnvLibraryCommon)} {
		if p != "" {
			_, err := os.Stat(p)
			return p, err == nil
		}
	}
	if p, ok := thirdparty.Find(filepath.Join("onnxruntime", LibraryName)); ok {
		return p, true
	}
	return LibraryName, false
}

// Init loads ONNX Runtime once per process (FindLibrary(explicit) picks the file). Later
// calls return the first call's result; the library cannot be swapped within a process.
func Init(explicit string) error {
	rtMu.Lock()
	defer rtMu.Unlock()
	if rtDone {
		return rtErr
	}
	rtDone = true
	path, _ := FindLibrary(explicit)
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		rtErr = fmt.Errorf("%w: %v\n"+
			"---> HINT: in an align checkout run `make ort` (extracts %s into third_party/onnxruntime),\n"+
			"            or set %s=/path/to/%s (ONNX Runtime 1.24 or newer, CPU build)",
			ErrNoRuntime, err, LibraryName, EnvLibrary, LibraryName)
		return rtErr
	}
	rtPath = path
	return nil
}

// RuntimeInfo describes the loaded library for `align info`: its path and ONNX Runtime's
// version, or why it is not loaded.
func RuntimeInfo() string {
	rtMu.Lock()
	defer rtMu.Unlock()
	switch {
	case !rtDone:
		p, found := FindLibrary("")
		if !found {
			return "not found (make ort)"
		}
		return "found at " + p + " (not loaded)"
	case rtErr != nil:
		return "not loaded: " + rtErr.Error()
	}
	return fmt.Sprintf("%s (ONNX Runtime %s)", rtPath, ort.GetVersion())
}
