// How the training commands (align pretrain, align finetune, align reward train) stop
// early: the first SIGINT (Ctrl-C) or SIGTERM lets the run finish its step, write a
// checkpoint and exit with code 2; a second one aborts at once, without a checkpoint. A run
// that reaches --time-limit also writes a checkpoint, and exits 0. Both print how to resume.
//
// Test: go test ./cmd/align -run 'Interrupt|SIGINT'
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// trainInterrupt is the signal handling of one training run.
type trainInterrupt struct {
	ctx     context.Context // cancelled by the first signal; the run's Run takes it
	release func()
	noted   bool
}

// newTrainInterrupt starts catching SIGINT and SIGTERM; Stop releases them.
func newTrainInterrupt() *trainInterrupt {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	finished := make(chan struct{})
	go func() {
		// Handing the signals back after the first one restores their default action, so
		// that a second Ctrl-C ends the process at once.
		select {
		case <-ctx.Done():
			stop()
		case <-finished:
		}
	}()
	return &trainInterrupt{ctx: ctx, release: sync.OnceFunc(func() { close(finished); stop() })}
}

// Stop releases the signals; call it once the run has returned.
func (in *trainInterrupt) Stop() { in.release() }

// Note tells the user on bar, once the first signal has come, that a checkpoint is being
// written and how to skip it. The run's progress callback calls it after every step.
func (in *trainInterrupt) Note(bar *progressBar) {
	if in.ctx.Err() != nil && !in.noted {
		in.noted = true
		bar.Note("interrupted: writing a checkpoint (Ctrl-C again aborts without one)")
	}
}

// runStopped sorts the error that a training loop's Run returned. After an interruption
// (err wraps interrupted) or the time limit (timeLimit), each with a checkpoint written, it
// prints how to resume the run in outDir and reports stopped, with errCancelled (exit code
// 2) for an interruption and nil for the time limit. Any other error comes back as it is.
func runStopped(stderr io.Writer, outDir string, err, interrupted, timeLimit error) (stopped bool, _ error) {
	if !errors.Is(err, interrupted) && !errors.Is(err, timeLimit) {
		return false, err
	}
	fmt.Fprintf(stderr, "%v; resume with --resume-from-checkpoint latest -o %s\n", err, outDir)
	if errors.Is(err, interrupted) {
		return true, errCancelled
	}
	return true, nil
}
