// The JSONL log of a training run, logs.jsonl in its output directory: one JSON object per
// optimizer step. Every training loop (pre-training, reward models, fine-tuning) keeps it
// the same way:
//
//	AppendLog    after each step (a crash loses at most the line being written)
//	WriteLog     the whole log, atomically: when a run starts or resumes (dropping lines past
//	             the checkpoint it resumes) and with every checkpoint
//	ReadLog      on resume, the lines up to the checkpoint's step
//
// and WriteFileAtomic, the atomic write it uses, serves every other output file too. A step
// skipped for a non-finite loss or gradient norm has its line like any other, marked
// "skipped": true, its non-finite numbers written as 0 (skipstep.go).
//
// Test: go test ./nn -run 'TrainLog|WriteFileAtomic'

package nn

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// LogFile is the name of a run's log in its output directory.
const LogFile = "logs.jsonl"

// LogPath is the log of the run in dir.
func LogPath(dir string) string { return filepath.Join(dir, LogFile) }

// WriteLog replaces the log at path, atomically, by entries, one JSON object per line.
func WriteLog[E any](path string, entries []E) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	})
}

// AppendLog appends e as one line to the log at path (created when missing).
func AppendLog[E any](path string, e E) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("append to %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ReadLog returns the entries of the log at path whose step (as step reports it) is at most
// upTo, in file order. Reading stops at the first line that does not decode (the line a
// crash cut off); a missing or unreadable log reads as none: the log is a record, not state
// a resumed run needs.
func ReadLog[E any](path string, upTo int, step func(*E) int) []E {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []E
	dec := json.NewDecoder(f)
	for {
		var e E
		if err := dec.Decode(&e); err != nil {
			return out
		}
		if step(&e) <= upTo {
			out = append(out, e)
		}
	}
}

// WriteFileAtomic writes path through fill into a temporary file in the same directory,
// syncs it and renames it into place, readable by all (0644). On error nothing is left
// behind.
func WriteFileAtomic(path string, fill func(w io.Writer) error) error {
	if err := writeFileAtomic(path, 0o644, fill); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeFileAtomic is WriteFileAtomic with the file's mode chosen by the caller and its
// errors left for the caller to name: a checkpoint keeps the mode of the file it replaces
// and reports a failure as a failed save.
func writeFileAtomic(path string, mode os.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriter(f)
	if err = fill(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
