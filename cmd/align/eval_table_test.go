package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/rewards/scoring"
)

func writeEvalReport(t *testing.T, path string, pairs int, dims map[string][2]float64) {
	t.Helper()
	rep := evalReport{Pairs: pairs}
	for _, role := range []string{"reward", "judge"} {
		m := evalModel{Role: role}
		for _, d := range []string{"vq", "ta"} {
			v := dims[role+" "+d]
			m.Dims = append(m.Dims, evalDim{Dim: d, Paired: scoring.Paired{N: pairs, WinRate: v[0],
				WinRateCI: [2]float64{v[0] - 0.05, v[0] + 0.05}, MeanChange: v[1]}})
		}
		rep.Models = append(rep.Models, m)
	}
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEvalTable(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json"), filepath.Join(dir, "c.json")
	writeEvalReport(t, a, 400, map[string][2]float64{"reward vq": {0.5, 0}, "reward ta": {0.7, 0.25}, "judge vq": {0.45, -0.1}, "judge ta": {0.625, 0.125}})
	writeEvalReport(t, b, 400, map[string][2]float64{"reward ta": {0.5125, 0.01}})
	writeEvalReport(t, c, 200, nil)
	code, stdout, stderr := runAlign(t, "eval", "table", "dpo-ta="+a, "sft="+b)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `| run (400 pairs) | reward vq | reward ta | judge vq | judge ta |
|---|---|---|---|---|
| dpo-ta | 50.0% [45.0, 55.0], Δz +0.00 | 70.0% [65.0, 75.0], Δz +0.25 | 45.0% [40.0, 50.0], Δz -0.10 | 62.5% [57.5, 67.5], Δz +0.12 |
| sft | 0.0% [-5.0, 5.0], Δz +0.00 | 51.2% [46.2, 56.2], Δz +0.01 | 0.0% [-5.0, 5.0], Δz +0.00 | 0.0% [-5.0, 5.0], Δz +0.00 |
`
	if stdout != want {
		t.Errorf("table:\n%s\nwant:\n%s", stdout, want)
	}
	if code, _, stderr := runAlign(t, "eval", "table", "a="+a, "c="+c); code != exitError || !strings.Contains(stderr, "not be comparable") {
		t.Errorf("reports of 400 and 200 pairs: exit %d, %s", code, stderr)
	}
	if code, _, _ := runAlign(t, "eval", "table", a); code != exitUsage {
		t.Errorf("argument without a label: exit %d, want %d", code, exitUsage)
	}
}
