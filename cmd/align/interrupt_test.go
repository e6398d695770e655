// Tests of the training commands' signal handling: the first SIGINT cancels the run's
// context, a second one ends the process (run in a child process of the test binary); and
// the errors a stopped run returns; align reward train stopped by SIGINT (those of align
// pretrain and align finetune are in their own tests, which wait for the first step with
// waitForFirstStep as well).
//
// Test: go test ./cmd/align -run 'Interrupt|SIGINT'
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alignkit/align/nn"
)

// interruptChildEnv makes the test binary play a training run that waits for signals.
const interruptChildEnv = "ALIGN_TEST_INTERRUPT_CHILD"

func TestTrainInterruptSecondSignal(t *testing.T) {
	if os.Getenv(interruptChildEnv) != "" {
		in := newTrainInterrupt()
		defer in.Stop()
		fmt.Println("ready")
		<-in.ctx.Done()
		fmt.Println("interrupted")
		// A run writing its checkpoint; only a second signal ends it early.
		time.Sleep(20 * time.Second)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrainInterruptSecondSignal$")
	cmd.Env = append(os.Environ(), interruptChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child: %q", lines.Text())
	}
	cmd.Process.Signal(syscall.SIGINT)
	if !lines.Scan() || lines.Text() != "interrupted" {
		t.Fatalf("child after the first signal: %q", lines.Text())
	}
	// The handler gives the signals back just after the context is cancelled: signal until
	// the child dies (a swallowed signal leaves it sleeping until the deadline).
	exited := make(chan error, 1)
	go func() {
		for lines.Scan() {
		}
		exited <- cmd.Wait()
	}()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
				t.Fatalf("child after the second signal: %v, want killed by SIGINT", err)
			}
			return
		case <-deadline:
			t.Fatal("a second SIGINT did not end the child")
		case <-time.After(20 * time.Millisecond):
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
}

func TestTrainInterruptRunStopped(t *testing.T) {
	interrupted, timeLimit, other := errors.New("interrupted"), errors.New("time limit reached"), errors.New("disk full")
	for _, c := range []struct {
		err         error
		stopped     bool
		want        error
		wantMessage bool
	}{
		{nil, false, nil, false},
		{other, false, other, false},
		{fmt.Errorf("%w after step 3", interrupted), true, errCancelled, true},
		{fmt.Errorf("%w after step 3", timeLimit), true, nil, true},
	} {
		var stderr bytes.Buffer
		stopped, err := runStopped(&stderr, "out", c.err, interrupted, timeLimit)
		if stopped != c.stopped || err != c.want {
			t.Errorf("%v: stopped %v, err %v; want %v, %v", c.err, stopped, err, c.stopped, c.want)
		}
		if msg := stderr.String(); c.wantMessage != strings.Contains(msg, "after step 3; resume with --resume-from-checkpoint latest -o out\n") {
			t.Errorf("%v: stderr %q", c.err, msg)
		}
	}
}

// align reward train stops on SIGINT with a checkpoint and exit code 2 (on negativesDataset:
// the committed fixture cannot be split). It writes its log with each checkpoint, so it
// checkpoints every step here.
func TestRewardTrainSIGINT(t *testing.T) {
	data := negativesDataset(t)
	out := filepath.Join(t.TempDir(), "int")
	var stdout, stderr bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main([]string{"reward", "train", "--data", data, "-o", out, "--max-train-steps", "100000", "--checkpointing-steps", "1",
			"--train-batch-size", "4", "--val-pairs", "8", "--eval-pairs", "0", "--hidden-size", "16", "--vision-layers", "1",
			"--joint-layers", "1", "--num-attention-heads", "2", "--patch-size", "8", "--max-text-length", "8", "--threads", "1"},
			&stdout, &stderr)
	}()
	waitForFirstStep(t, out)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	if code := <-done; code != exitCancel {
		t.Fatalf("exit %d, want %d: %s", code, exitCancel, stderr.String())
	}
	cs, _ := nn.Checkpoints(out)
	if len(cs) == 0 || !strings.Contains(stderr.String(), "resume with --resume-from-checkpoint latest") {
		t.Errorf("checkpoints %v; stderr %q", cs, stderr.String())
	}
}

// waitForFirstStep waits until the training run writing to out has logged a step: its
// signal handler is in place by then.
func waitForFirstStep(t *testing.T, out string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(out, "logs.jsonl")); err == nil && len(b) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no step logged")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
