package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alignkit/align/dpo"
)

// Two scored sets of the same four samples (two prompts): B orders p1 as A does and p2 the
// other way, so ta's concordance and best-worst are 1/2; the JSON carries the same numbers;
// a file B lacks is left out; bad input exits non-zero naming the file.
func TestEvalAgreement(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.jsonl", `{"prompt":"p1","image":"1.png","scores":{"ta":1,"vq":0}}
{"prompt":"p1","image":"2.png","scores":{"ta":2,"vq":1}}
{"prompt":"p2","image":"3.png","scores":{"ta":0,"vq":0}}
{"prompt":"p2","image":"4.png","scores":{"ta":1,"vq":1}}
{"prompt":"p2","image":"5.png","scores":{"ta":9,"vq":9}}
`)
	b := write("b.jsonl", `{"prompt":"p2","image":"4.png","scores":{"ta":0,"vq":3}}
{"prompt":"p2","image":"3.png","scores":{"ta":1,"vq":2}}
{"prompt":"p1","image":"2.png","scores":{"ta":5,"vq":5}}
{"prompt":"p1","image":"1.png","scores":{"ta":4,"vq":4}}
`)
	code, stdout, stderr := runAlign(t, "eval", "agreement", a, b)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "ta   2        4        0.000  0.500        2      0.500") ||
		!strings.Contains(stdout, "vq   2        4        1.000  1.000        2      1.000") {
		t.Errorf("table:\n%s", stdout)
	}
	code, stdout, stderr = runAlign(t, "eval", "agreement", a, b, "--json")
	var got struct{ Dims []dpo.DimAgreement }
	if code != exitOK || json.Unmarshal([]byte(stdout), &got) != nil || len(got.Dims) != 2 || got.Dims[0].BestWorst != 0.5 {
		t.Fatalf("--json: exit %d, %s %s", code, stdout, stderr)
	}
	bad := write("bad.jsonl", `{"prompt":"p1","image":"1.png"}`+"\n")
	if code, _, stderr := runAlign(t, "eval", "agreement", a, bad); code != exitError || !strings.Contains(stderr, "bad.jsonl:1") {
		t.Errorf("bad file: exit %d: %s", code, stderr)
	}
	other := write("other.jsonl", `{"prompt":"x","image":"9.png","scores":{"ta":1}}
{"prompt":"x","image":"8.png","scores":{"ta":2}}
`)
	if code, _, stderr := runAlign(t, "eval", "agreement", a, other); code != exitError || !strings.Contains(stderr, "share no prompt") {
		t.Errorf("disjoint sets: exit %d: %s", code, stderr)
	}
	if code, _, _ := runAlign(t, "eval", "agreement", a); code != exitUsage {
		t.Errorf("one argument: exit %d", code)
	}
}
