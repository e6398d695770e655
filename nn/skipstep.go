// The rule every training loop (pre-training, reward models, fine-tuning) applies to a step
// whose loss or gradient norm is not a finite number (NaN or ±Inf: an overflow, a poisoned
// sample, a run diverging):
//
//	SkipNonFinite  runs the step's update (the AdamW step, then the EMA) only when both are
//	               finite; a skipped step leaves the weights, the AdamW moments and step
//	               count and the EMA as they were, and says so through the loop's Notify
//	ZeroNonFinite  makes the step's log entry JSON-safe (JSON has no NaN or Inf): every
//	               non-finite number in it is written as 0, and its "skipped": true marker
//	               says that its numbers are no measurement, so the loss curve, the metrics
//	               plot and the progress bars leave a skipped step out instead of drawing a 0
//	CheckSkipped   ends the run with ErrDiverged once MaxSkippedSteps steps in a row were
//	               skipped, instead of spinning to max_train_steps
//
// A skipped step is still a step of the run: it consumed its batch and its random draws, its
// log line is written like any other, and the next step is s+1 with the learning rate and
// EMA decay of s+1 (both functions of the run's step alone: ScheduledLR,
// diffusion.UpdateEMA). AdamW.Steps, the t of the bias correction, counts the updates done
// and so falls behind the run's step by the steps skipped (as with PyTorch's GradScaler,
// which skips optimizer.step() while the LR scheduler steps on). All of it is in the
// checkpoint, so a resumed run reproduces the same log, skipped steps included.
//
// Test: go test ./nn -run 'SkipNonFinite|ZeroNonFinite|CheckSkipped'

package nn

import (
	"errors"
	"fmt"
	"math"
	"reflect"
)

// MaxSkippedSteps is how many skipped steps in a row end a run: one bad batch is survived,
// but a run whose every step is non-finite has diverged and would train nothing more.
const MaxSkippedSteps = 100

// ErrDiverged ends a run after MaxSkippedSteps skipped steps in a row (CheckSkipped wraps it
// with the steps); the loops write no checkpoint for it.
var ErrDiverged = errors.New("training diverged")

// SkipNonFinite applies the rule to step s: with a finite loss and gradient norm it runs
// update (the optimizer step and the EMA) and returns false; otherwise it leaves everything
// as it is, tells notify (when not nil) and returns true: the step is skipped.
func SkipNonFinite(s int, loss, gradNorm float64, notify func(msg string), update func()) (skipped bool) {
	if finite(loss) && finite(gradNorm) {
		update()
		return false
	}
	if notify != nil {
		notify(fmt.Sprintf("step %d: non-finite loss (%v) or gradient norm (%v); update skipped", s, loss, gradNorm))
	}
	return true
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// ZeroNonFinite replaces every NaN or infinite float in the log entry *e by 0: its exported
// fields, those of the structs it embeds or points to, the values of its maps and the
// elements of its slices.
func ZeroNonFinite[E any](e *E) { zeroNonFinite(reflect.ValueOf(e).Elem()) }

func zeroNonFinite(v reflect.Value) {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if !finite(v.Float()) {
			v.SetFloat(0)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			zeroNonFinite(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() { // what JSON writes
				zeroNonFinite(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			zeroNonFinite(v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() { // map values are not addressable: fix a copy, store it
			x := reflect.New(v.Type().Elem()).Elem()
			x.Set(v.MapIndex(k))
			zeroNonFinite(x)
			v.SetMapIndex(k, x)
		}
	}
}

// CheckSkipped returns ErrDiverged, wrapped with the steps, when the last MaxSkippedSteps
// entries of log were all skipped (step and skipped read an entry); a loop calls it after
// logging each step. It counts on the log, so a resumed run counts the skipped steps before
// its checkpoint too.
func CheckSkipped[E any](log []E, step func(*E) int, skipped func(*E) bool) error {
	n := len(log)
	for i := n - 1; i >= n-MaxSkippedSteps; i-- {
		if i < 0 || !skipped(&log[i]) {
			return nil
		}
	}
	first, last := step(&log[n-MaxSkippedSteps]), step(&log[n-1])
	return fmt.Errorf("step %d: %w: the %d steps %d-%d all had a non-finite loss or gradient norm and were skipped",
		last, ErrDiverged, MaxSkippedSteps, first, last)
}
