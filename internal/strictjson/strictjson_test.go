package strictjson

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	if err := Decode([]byte(`{"a": 3}`), &v); err != nil || v.A != 3 {
		t.Errorf("%v %+v", err, v)
	}
	for text, want := range map[string]string{
		`{"a": 1, "b": 2}`: `unknown field "b"`,
		`{"a": 1} {}`:      "data after the manifest object",
		`{"a": "x"}`:       "invalid JSON: json: cannot unmarshal",
		``:                 "invalid JSON: EOF",
	} {
		if err := Decode([]byte(text), &v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}

type positive struct {
	N int `json:"n"`
}

func (p *positive) Validate() error {
	if p.N <= 0 {
		return errors.New("n must be positive")
	}
	return nil
}

// Parse validates what it decodes; Load names the file in its errors.
func TestParseAndLoad(t *testing.T) {
	var p positive
	if err := Parse([]byte(`{"n": 2}`), &p); err != nil || p.N != 2 {
		t.Errorf("%v %+v", err, p)
	}
	if err := Parse([]byte(`{"n": -1}`), &p); err == nil || err.Error() != "n must be positive" {
		t.Errorf("invalid value: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "p.json")
	os.WriteFile(path, []byte(`{"n": 0}`), 0o644)
	if err := Load("thing", path, &p); err == nil || err.Error() != "thing "+path+": n must be positive" {
		t.Errorf("Load: %v", err)
	}
	if err := Load("thing", filepath.Join(dir, "none.json"), &p); err == nil || !strings.HasPrefix(err.Error(), "thing: open ") {
		t.Errorf("Load of a missing file: %v", err)
	}
}
