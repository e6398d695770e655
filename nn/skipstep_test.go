// Tests of the rule for a non-finite step: which steps are skipped, the JSON-safe log entry,
// and the end of a run after too many skipped steps in a row.
// Run: go test ./nn -run 'SkipNonFinite|ZeroNonFinite|CheckSkipped'
package nn

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestSkipNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct {
		loss, norm float64
		skip       bool
	}{{0.5, 2, false}, {0, 0, false}, {nan, 2, true}, {inf, 2, true}, {-inf, 2, true}, {0.5, nan, true}, {0.5, inf, true}, {nan, nan, true}} {
		updated := false
		var msgs []string
		skipped := SkipNonFinite(7, c.loss, c.norm, func(m string) { msgs = append(msgs, m) }, func() { updated = true })
		if skipped != c.skip || updated == c.skip {
			t.Errorf("loss %v, norm %v: skipped %v, updated %v", c.loss, c.norm, skipped, updated)
		}
		if c.skip != (len(msgs) == 1) || (c.skip && !strings.HasPrefix(msgs[0], "step 7: non-finite")) {
			t.Errorf("loss %v, norm %v: notes %q", c.loss, c.norm, msgs)
		}
	}
	if !SkipNonFinite(1, math.NaN(), 1, nil, func() { t.Error("update of a skipped step") }) {
		t.Error("no notify: the step is still skipped")
	}
}

// Metrics is embedded as the fine-tuning log embeds its metrics (exported, as JSON needs).
type Metrics struct{ MSE float32 }

type testFullEntry struct {
	Step    int                `json:"step"`
	Loss    float64            `json:"loss"`
	DimLoss map[string]float64 `json:"dim_loss"`
	Series  []float64          `json:"series"`
	Skipped bool               `json:"skipped,omitempty"`
	*Metrics
	Other  *Metrics `json:"other"`
	hidden float64
}

// Every non-finite number JSON would write becomes 0, wherever it sits; the rest is kept.
func TestZeroNonFinite(t *testing.T) {
	nan := math.NaN()
	e := testFullEntry{Step: 3, Loss: nan, DimLoss: map[string]float64{"vq": math.Inf(-1), "ta": 0.25}, Series: []float64{1, math.Inf(1)},
		Skipped: true, Metrics: &Metrics{MSE: float32(nan)}, hidden: nan}
	if _, err := json.Marshal(e); err == nil {
		t.Fatal("json wrote NaN")
	}
	ZeroNonFinite(&e)
	want := testFullEntry{Step: 3, DimLoss: map[string]float64{"vq": 0, "ta": 0.25}, Series: []float64{1, 0}, Skipped: true,
		Metrics: &Metrics{}}
	if !math.IsNaN(e.hidden) {
		t.Error("an unexported field changed")
	}
	e.hidden = 0
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got %+v, want %+v", e, want)
	}
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"step":3,"loss":0,"dim_loss":{"ta":0.25,"vq":0},"series":[1,0],"skipped":true,"MSE":0,"other":null}` {
		t.Errorf("%s, %v", b, err)
	}
}

// A run ends after MaxSkippedSteps skipped steps in a row, not before, and the error names
// the steps.
func TestCheckSkipped(t *testing.T) {
	type entry struct {
		step    int
		skipped bool
	}
	step := func(e *entry) int { return e.step }
	skipped := func(e *entry) bool { return e.skipped }
	var log []entry
	for s := 1; s <= 50; s++ {
		log = append(log, entry{s, s%2 == 1})
	}
	for s := 51; s < 50+MaxSkippedSteps; s++ {
		log = append(log, entry{s, true})
		if err := CheckSkipped(log, step, skipped); err != nil {
			t.Fatalf("after step %d: %v", s, err)
		}
	}
	log = append(log, entry{50 + MaxSkippedSteps, true})
	err := CheckSkipped(log, step, skipped)
	if !errors.Is(err, ErrDiverged) || !strings.HasPrefix(err.Error(), "step 150: training diverged: the 100 steps 51-150 ") {
		t.Errorf("err = %v", err)
	}
	if err := CheckSkipped(log[len(log)-MaxSkippedSteps+1:], step, skipped); err != nil {
		t.Errorf("a log shorter than the limit: %v", err)
	}
}
