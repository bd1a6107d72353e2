package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/threadlift/threadlift/pipeline"
)

var _ pipeline.SkipProgress = (*progress)(nil)

// fakeClock is the progress's clock in tests: time moves when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} }
func logLineOf(t *testing.T, b *bytes.Buffer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("log line %q: %v", b.String(), err)
	}
	b.Reset()
	return m
}

// work makes the run work on n threads at perSecond, in steps of 100 ms.
func work(pr *progress, c *fakeClock, n, perSecond int) {
	step := 100 * time.Millisecond
	per := perSecond / 10
	for n > 0 {
		c.advance(step)
		for range min(per, n) {
			pr.ThreadDone()
		}
		n -= per
	}
}

// TestProgressETAFromRate: the ETA is the threads left over the rate at
// which threads were worked on lately, not "one second per thread"
// (1,043 left showed 17m23s, and the run ended 14 s later), and neither
// the time spent reading the sources nor the threads skipped at once
// (complete already) make it look faster or slower.
func TestProgressETAFromRate(t *testing.T) {
	c := newFakeClock()
	var logs bytes.Buffer
	pr := newProgressAt(zerolog.New(&logs), "import", 0, c.now)
	c.advance(60 * time.Second) // reading and threading the sources
	pr.Threads(5000)
	for range 957 {
		pr.ThreadSkipped()
	}
	work(pr, c, 800, 80) // 10 s at 80 threads/s: 3,243 left
	eta, ok := pr.eta(c.now())
	if !ok || eta < 38*time.Second || eta > 43*time.Second {
		t.Errorf("ETA with 3,243 threads left at 80/s = %v (%v), want about 41s", eta, ok)
	}
	if got := pr.etaText(decorStats()); got != "ETA "+eta.String() {
		t.Errorf("bar ETA = %q, want %q", got, "ETA "+eta.String())
	}
	pr.logLine()
	m := logLineOf(t, &logs)
	if m["eta"] != eta.String() || m["threads_done"] != float64(1757) || m["threads_total"] != float64(5000) {
		t.Errorf("log line = %v, want eta %s, 1,757 of 5,000 done", m, eta)
	}
	if r, _ := m["threads_per_second"].(float64); r < 78 || r > 82 {
		t.Errorf("log line threads_per_second = %v, want about 80", m["threads_per_second"])
	}

	// The pace changes: 10 threads/s for 40 s. The window forgets the
	// faster pace.
	work(pr, c, 400, 10)
	left := 5000 - 957 - 800 - 400
	if eta, ok := pr.eta(c.now()); !ok || eta < time.Duration(left/11)*time.Second || eta > time.Duration(left/9)*time.Second {
		t.Errorf("ETA with %d left at 10/s = %v (%v), want about %ds", left, eta, ok, left/10)
	}

	// Nothing moves for a minute (paused by Zendesk): no rate, no ETA.
	c.advance(time.Minute)
	if eta, ok := pr.eta(c.now()); ok {
		t.Errorf("ETA after a minute without progress = %v, want none", eta)
	}
	if got := pr.etaText(decorStats()); got != "ETA -" {
		t.Errorf("bar ETA = %q, want ETA -", got)
	}
}

// TestProgressETANoRateYet: before a second of work, there is no ETA.
func TestProgressETANoRateYet(t *testing.T) {
	c := newFakeClock()
	pr := newProgressAt(zerolog.Nop(), "validate", 0, c.now)
	pr.Threads(10)
	c.advance(500 * time.Millisecond)
	pr.ThreadDone()
	if eta, ok := pr.eta(c.now()); ok {
		t.Errorf("ETA after half a second = %v, want none", eta)
	}
}

// TestProgressTotalRespectsLimit: with --limit 10, the bar's total is the
// threads skipped so far plus the 10 the run may work on, not every
// thread of the archive; the ETA counts what the limit leaves.
func TestProgressTotalRespectsLimit(t *testing.T) {
	c := newFakeClock()
	pr := newProgressAt(zerolog.Nop(), "import", 10, c.now)
	pr.Threads(1000)
	if got := pr.barTotal(); got != 10 {
		t.Errorf("total before anything = %d, want 10", got)
	}
	for i := range 300 {
		pr.ThreadSkipped()
		if i%60 == 0 {
			c.advance(time.Second)
			pr.ThreadDone()
		}
	}
	if got, want := pr.barTotal(), int64(300+10); got != want {
		t.Errorf("total after 300 skipped and 5 worked = %d, want %d", got, want)
	}
	if got := pr.left(); got != 5 {
		t.Errorf("left = %d, want 5", got)
	}
	if eta, ok := pr.eta(c.now()); !ok || eta != 5*time.Second {
		t.Errorf("ETA with 5 left at 1/s = %v, %v, want 5s", eta, ok)
	}
	for range 5 {
		c.advance(time.Second)
		pr.ThreadDone()
	}
	if got := pr.barTotal(); got != 310 || pr.done() != 310 {
		t.Errorf("at the limit: %d of %d, want 310 of 310", pr.done(), got)
	}
	if eta, ok := pr.eta(c.now()); !ok || eta != 0 {
		t.Errorf("ETA at the limit = %v, %v, want 0", eta, ok)
	}
	// Without a limit, the total is every thread.
	pr2 := newProgressAt(zerolog.Nop(), "import", 0, c.now)
	pr2.Threads(1000)
	if got := pr2.barTotal(); got != 1000 {
		t.Errorf("total without limit = %d, want 1000", got)
	}
}

func decorStats() decor.Statistics { return decor.Statistics{} }

// TestProgressMoreThreads: an import in chunks adds each chunk's threads
// to the total; the ETA counts them.
func TestProgressMoreThreads(t *testing.T) {
	c := newFakeClock()
	pr := newProgressAt(zerolog.Nop(), "import", 0, c.now)
	pr.Threads(4)
	for range 4 {
		c.advance(time.Second)
		pr.ThreadDone()
	}
	if eta, ok := pr.eta(c.now()); !ok || eta != 0 {
		t.Errorf("ETA at the end of the first chunk = %v, %v, want 0", eta, ok)
	}
	pr.MoreThreads(6)
	if got := pr.barTotal(); got != 10 {
		t.Errorf("total after a second chunk of 6 = %d, want 10", got)
	}
	if eta, ok := pr.eta(c.now()); !ok || eta != 6*time.Second {
		t.Errorf("ETA with 6 left at 1/s = %v, %v, want 6s", eta, ok)
	}
}
