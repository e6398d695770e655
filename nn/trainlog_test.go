// Tests of the training log and atomic writes. Run: go test ./nn -run 'TrainLog|WriteFileAtomic'
package nn

import (
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type testLogEntry struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

func testStep(e *testLogEntry) int { return e.Step }

// A log written whole, appended to and read back up to a step: the lines in order, those
// past the step left out, reading stopping at a line cut off by a crash.
func TestTrainLog(t *testing.T) {
	dir := t.TempDir()
	path := LogPath(dir)
	if path != filepath.Join(dir, "logs.jsonl") {
		t.Fatalf("LogPath = %s", path)
	}
	if got := ReadLog(path, 10, testStep); got != nil {
		t.Fatalf("missing log read as %v", got)
	}
	if err := WriteLog(path, []testLogEntry{{1, 0.5}, {2, 0.25}}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []testLogEntry{{3, 0.125}, {4, 1.5}} {
		if err := AppendLog(path, e); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	if want := "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"loss\":0.25}\n{\"step\":3,\"loss\":0.125}\n{\"step\":4,\"loss\":1.5}\n"; string(b) != want {
		t.Fatalf("log file:\n%s\nwant:\n%s", b, want)
	}
	if got, want := ReadLog(path, 3, testStep), []testLogEntry{{1, 0.5}, {2, 0.25}, {3, 0.125}}; !reflect.DeepEqual(got, want) {
		t.Errorf("ReadLog up to 3 = %v, want %v", got, want)
	}
	// A resumed run rewrites the log with the entries up to its checkpoint.
	if err := WriteLog(path, ReadLog(path, 2, testStep)); err != nil {
		t.Fatal(err)
	}
	if got := ReadLog(path, 100, testStep); len(got) != 2 || got[1] != (testLogEntry{2, 0.25}) {
		t.Errorf("rewritten log reads %v", got)
	}
	// A line cut off by a crash ends the reading.
	os.WriteFile(path, []byte("{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"lo"), 0o644)
	if got := ReadLog(path, 100, testStep); len(got) != 1 || got[0].Step != 1 {
		t.Errorf("truncated log reads %v", got)
	}
	// An entry that JSON cannot hold is an error naming the file, and nothing is written.
	if err := AppendLog(path, testLogEntry{5, math.NaN()}); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("NaN entry: err = %v", err)
	}
	if b2, _ := os.ReadFile(path); string(b2) != "{\"step\":1,\"loss\":0.5}\n{\"step\":2,\"lo" {
		t.Errorf("a failed append changed the log: %q", b2)
	}
}

// A failed write names the file, leaves the old content and no temporary file; a written
// file is readable by others (0644).
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.txt")
	write := func(s string) error {
		return WriteFileAtomic(path, func(w io.Writer) error { _, err := io.WriteString(w, s); return err })
	}
	if err := write("first"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFileAtomic(path, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Errorf("failed write: err = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Errorf("content after a failed write %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after a failed write", len(ents))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", fi.Mode().Perm(), err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, "no", "dir", "x"), func(io.Writer) error { return nil }); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
