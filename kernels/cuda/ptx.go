// The PTX of the kernel families, generated from the .cu files by ptx.sh (`make ptx`),
// committed under ptx/ and embedded here: sm_80 (PTX ISA 7.0; also JIT-compiled for later
// Ampere and Ada GPUs) and sm_90 (PTX ISA 7.8, Hopper and later). The real driver loads one
// module per family; TestPTXFresh checks that the committed files match the sources.
//
// Test: go test ./kernels/cuda -run PTX
package cuda

import (
	"embed"
	"fmt"
	"io/fs"

	"regexp"
	"strings"
)

//go:embed ptx/sm_80/*.ptx ptx/sm_90/*.ptx
var ptxFiles embed.FS

// ptxArch returns the PTX directory for a GPU of compute capability major.minor.
func ptxArch(major, minor int) (string, error) {
	switch {
	case major >= 9:
		return "sm_90", nil
	case major == 8:
		return "sm_80", nil
	}
	return "", fmt.Errorf("compute capability %d.%d: the kernels need 8.0 or later", major, minor)
}

// ptxModules returns the PTX text of every family for an arch ("sm_80", "sm_90"), by
// family name.
func ptxModules(arch string) (map[string]string, error) {
	ents, err := fs.ReadDir(ptxFiles, "ptx/"+arch)
	if err != nil {
		return nil, err
	}
	mods := map[string]string{}
	for _, e := range ents {
		b, err := ptxFiles.ReadFile("ptx/" + arch + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		mods[strings.TrimSuffix(e.Name(), ".ptx")] = string(b)
	}
	return mods, nil
}

var ptxEntryRE = regexp.MustCompile(`\.entry\s+(\w+)\(([^)]*)\)`)
var ptxParamRE = regexp.MustCompile(`\.param\s+\.(\w+)`)

// ptxEntries returns the kernels of a PTX text with their parameter types (u64, u32, f32,
// f64), sorted by name.
func ptxEntries(text string) map[string][]string {
	out := map[string][]string{}
	for _, m := range ptxEntryRE.FindAllStringSubmatch(text, -1) {
		var params []string
		for _, p := range ptxParamRE.FindAllStringSubmatch(m[2], -1) {
			params = append(params, p[1])
		}
		out[m[1]] = params
	}
	return out
}

// ptxType is the PTX parameter type of an emulation signature letter.
func ptxType(c byte) string {
	switch c {
	case 'p', 'q':
		return "u64"
	case 'i', 'u':
		return "u32"
	case 'f':
		return "f32"
	case 'd':
		return "f64"
	}
	return "?"
}
