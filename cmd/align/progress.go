// The progress of long work on stderr: a bar redrawn in place on a terminal, plain lines
// elsewhere (progressBar), and the running average a training command's bar shows of its
// per-step numbers (runningAverage); counts in its lines (counted).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alignkit/align/diffusion"
)

// progressBar draws "label [=====>    ] done/total elapsed<eta extra" on a terminal,
// redrawn in place; on anything else (a file, a pipe, a test buffer) it prints a plain line
// at most every 30 seconds and at the end.
type progressBar struct {
	w      io.Writer
	tty    bool
	label  string
	total  int
	start  time.Time
	last   time.Time
	every  time.Duration
	base   int // units done before this run (a resumed run): the rate counts only the rest
	done   int
	closed bool
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progressBar{w: w, tty: tty, label: label, total: max(total, 1), start: now, last: now, every: 30 * time.Second}
}

func fmtDuration(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%02d:%02d", s/60, s%60)
}

// Update reports done of total units with an extra note (e.g. the loss).
func (p *progressBar) Update(done int, extra string) {
	p.done = done
	now := time.Now()
	if !p.tty && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	el := now.Sub(p.start)
	eta := "--:--"
	if done > p.base {
		eta = fmtDuration(time.Duration(float64(el) / float64(done-p.base) * float64(p.total-done)))
	}
	if extra != "" {
		extra = " " + extra
	}
	if p.tty {
		const width = 24
		fill := width * done / p.total
		bar := strings.Repeat("=", fill)
		if fill < width {
			bar += ">" + strings.Repeat(" ", width-fill-1)
		}
		fmt.Fprintf(p.w, "\r%s [%s] %d/%d %s<%s%s\x1b[K", p.label, bar, done, p.total, fmtDuration(el), eta, extra)
		return
	}
	fmt.Fprintf(p.w, "%s: %d/%d %s<%s%s\n", p.label, done, p.total, fmtDuration(el), eta, extra)
}

// Note prints a message line without breaking the bar (it is redrawn on the next Update).
func (p *progressBar) Note(msg string) {
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s\n", msg)
		p.last = time.Time{}
		return
	}
	fmt.Fprintln(p.w, msg)
}

// Finish ends the bar with a summary line.
func (p *progressBar) Finish(extra string) {
	if p.closed {
		return
	}
	p.closed = true
	if extra != "" {
		extra = ", " + extra
	}
	prefix := ""
	if p.tty {
		prefix = "\r\x1b[K"
	}
	fmt.Fprintf(p.w, "%s%s: %d/%d in %s%s\n", prefix, p.label, p.done, p.total, fmtDuration(time.Since(p.start)), extra)
}

// counted is n with its noun, singular for one: "1 image", "3 images" (the nouns here take
// an s).
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// runningAverage is what a training command's bar shows of a per-step number (the loss, an
// accuracy): its exponential moving average over this run's steps with decay
// diffusion.LossSmoothing, as the loss plots draw it, s_k = a s_{k-1} + (1-a) v_k with
// a = min(LossSmoothing, 1 - 1/k), so the plain mean while k < 1/(1-LossSmoothing).
type runningAverage struct {
	steps int
	value float64
}

// add takes one step's value.
func (r *runningAverage) add(v float64) {
	r.steps++
	a := min(diffusion.LossSmoothing, 1-1/float64(r.steps))
	r.value = a*r.value + (1-a)*v
}

// lossNote is a training bar's closing note for r averaging the loss: "loss 0.1234", or
// nothing where this run took no step (a finished run resumed, e.g. to merge its adapters).
func (r *runningAverage) lossNote() string {
	if r.steps == 0 {
		return ""
	}
	return fmt.Sprintf("loss %.4f", r.value)
}
