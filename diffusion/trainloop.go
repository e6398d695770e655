// The loop of a generator's training run, shared by pre-training (Trainer.Run) and
// fine-tuning (dpo.Trainer.Run): train a step, append its log entry to the log file, report
// progress, stop on divergence (nn.CheckSkipped), checkpoint every `every` steps and after
// the last; on ctx cancellation or past the time limit, finish the step, checkpoint and stop.
package diffusion

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alignkit/align/nn"
)

// ErrInterrupted is returned by a training loop whose context was cancelled; a checkpoint of
// the last completed step has been written.
var ErrInterrupted = errors.New("training interrupted")

// ErrTimeLimit is returned by a training loop that reached its time limit; a checkpoint of
// the last completed step has been written.
var ErrTimeLimit = errors.New("time limit reached")

// TrainLoop is what RunTrainLoop needs of a trainer whose log entries are E.
type TrainLoop[E any] struct {
	LogPath      string // the JSONL log file, one entry appended per step
	MaxSteps     int    // --max-train-steps
	Every        int    // --checkpointing-steps
	Step         *int   // the trainer's count of completed steps, advanced by TrainOneStep
	Log          *[]E   // the trainer's log
	TrainOneStep func() E
	Checkpoint   func() error
	Progress     func(e E, elapsed time.Duration) // nil: none
	// StepOf and Skipped read an entry's step and whether the step was skipped (nn.CheckSkipped).
	StepOf  func(*E) int
	Skipped func(*E) bool
}

// RunTrainLoop trains from *l.Step to l.MaxSteps (see the file header). It returns nil at the
// end, ErrInterrupted or ErrTimeLimit (wrapped, with the step reached) when stopped early,
// or nn.ErrDiverged (wrapped) with no checkpoint for the skipped steps.
func RunTrainLoop[E any](ctx context.Context, timeLimit time.Duration, l TrainLoop[E]) error {
	start := time.Now()
	startStep := *l.Step
	for *l.Step < l.MaxSteps {
		e := l.TrainOneStep()
		nn.ZeroNonFinite(&e)
		*l.Log = append(*l.Log, e)
		if err := nn.AppendLog(l.LogPath, e); err != nil {
			return err
		}
		if l.Progress != nil {
			l.Progress(e, time.Since(start))
		}
		if err := nn.CheckSkipped(*l.Log, l.StepOf, l.Skipped); err != nil {
			return err
		}
		step := *l.Step
		final := step == l.MaxSteps
		atCheckpoint := step%l.Every == 0 || final
		if atCheckpoint {
			if err := l.Checkpoint(); err != nil {
				return err
			}
		}
		var stop error
		if ctx.Err() != nil {
			stop = ErrInterrupted
		} else if timeLimit > 0 && time.Since(start) >= timeLimit {
			stop = ErrTimeLimit
		}
		if stop != nil && !final {
			if !atCheckpoint {
				if err := l.Checkpoint(); err != nil {
					return err
				}
			}
			return fmt.Errorf("%w after step %d (%d this run)", stop, step, step-startStep)
		}
	}
	return nil
}
