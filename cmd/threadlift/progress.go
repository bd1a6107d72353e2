package main

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress shows a run's progress: bars on a terminal, otherwise one log
// line at most every 10 s (contract §1).
//
// The ETA is the threads left to work on over the rate at which threads
// were worked on lately (rateWindow): threads the run had nothing to do
// for (ThreadSkipped: complete already, failed and waiting for retry) go
// by in a moment and count neither in the rate nor in what is left. With
// --limit, at most that many threads are worked on, and the bar's total
// says so.
type progress struct {
	log   zerolog.Logger
	what  string
	now   func() time.Time
	limit int64 // --limit: threads worked on at most (0: no limit)
	bytes atomic.Int64
	total atomic.Int64
	start time.Time

	skipped atomic.Int64 // ThreadSkipped
	worked  atomic.Int64 // ThreadDone
	rate    rateMeter    // of worked

	p        *mpb.Progress
	bytesBar *mpb.Bar
	mu       sync.Mutex
	bar      *mpb.Bar
	stop     chan struct{}
	wg       sync.WaitGroup

	// The second phase of verify: tickets read back (TicketsDone).
	tickets     atomic.Int64
	ticketsDone atomic.Int64
	ticketStart atomic.Int64 // unix nanoseconds
	ticketBar   *mpb.Bar
}

// newProgress starts the display of a run. An import sets limit (--limit)
// before the first call to Threads.
func newProgress(g *globalOptions, log zerolog.Logger, what string) *progress {
	pr := newProgressAt(log, what, 0, time.Now)
	if g.noProgress {
		return pr
	}
	if g.stderrIsTerminal() {
		pr.p = mpb.New(mpb.WithOutput(g.stderr.(*os.File)), mpb.WithRefreshRate(200*time.Millisecond))
		pr.bytesBar = pr.p.AddBar(0,
			mpb.PrependDecorators(decor.Name("read    "), decor.Current(decor.SizeB1024(0), "% .1f")),
			mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f")),
		)
		return pr
	}
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				pr.logLine()
			case <-pr.stop:
				return
			}
		}
	}()
	return pr
}

// newProgressAt is a progress without display, on the clock now.
func newProgressAt(log zerolog.Logger, what string, limit int, now func() time.Time) *progress {
	t := now()
	pr := &progress{log: log, what: what, now: now, limit: int64(limit), start: t, stop: make(chan struct{})}
	pr.rate.add(t, 0)
	return pr
}

func (pr *progress) logLine() {
	now := pr.now()
	if t := pr.tickets.Load(); t > 0 {
		d := pr.ticketsDone.Load()
		ev := pr.log.Info().Str("phase", pr.what).Int64("tickets_done", d).Int64("tickets_total", t)
		if el := now.Sub(time.Unix(0, pr.ticketStart.Load())).Seconds(); d > 0 && el > 0 {
			rate := float64(d) / el
			ev = ev.Float64("tickets_per_second", rate).Str("eta", time.Duration(float64(t-d)/rate*float64(time.Second)).Round(time.Second).String())
		}
		ev.Msg("progress")
		return
	}
	ev := pr.log.Info().Str("phase", pr.what).Int64("bytes_read", pr.bytes.Load()).
		Int64("threads_done", pr.done()).Int64("threads_total", pr.barTotal())
	if rate, ok := pr.rate.perSecond(now, pr.worked.Load()); ok && rate > 0 {
		ev = ev.Float64("threads_per_second", rate)
	}
	if eta, ok := pr.eta(now); ok {
		ev = ev.Str("eta", eta.String())
	}
	ev.Msg("progress")
}

// done is the threads finished: worked on or skipped.
func (pr *progress) done() int64 { return pr.skipped.Load() + pr.worked.Load() }

// left is the threads still to work on: those not finished yet, and with
// --limit no more than the limit allows.
func (pr *progress) left() int64 {
	left := pr.total.Load() - pr.done()
	if pr.limit > 0 {
		left = min(left, pr.limit-pr.worked.Load())
	}
	return max(left, 0)
}

// barTotal is the threads this run finishes at most: those it skips, and
// those it works on, no more than --limit.
func (pr *progress) barTotal() int64 {
	return max(pr.done()+pr.left(), pr.done())
}

// eta is the time left at the rate of the threads worked on lately;
// false until there is a rate to go by.
func (pr *progress) eta(now time.Time) (time.Duration, bool) {
	left := pr.left()
	if left == 0 && pr.total.Load() > 0 {
		return 0, true
	}
	rate, ok := pr.rate.perSecond(now, pr.worked.Load())
	if !ok || rate <= 0 {
		return 0, false
	}
	return time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second), true
}

// etaText is the bar's ETA column.
func (pr *progress) etaText(decor.Statistics) string {
	eta, ok := pr.eta(pr.now())
	if !ok {
		return "ETA -"
	}
	return "ETA " + eta.String()
}

func (pr *progress) ReadBytes(n int64) {
	pr.bytes.Add(n)
	if pr.bytesBar != nil {
		pr.bytesBar.IncrInt64(n)
	}
}

func (pr *progress) Threads(total int) {
	pr.total.Store(int64(total))
	// The rate counts from here: reading the sources is not threads' work.
	pr.rate.restart(pr.now(), pr.worked.Load())
	if pr.p == nil {
		return
	}
	pr.bytesBar.SetTotal(-1, true)
	pr.mu.Lock()
	pr.bar = pr.p.AddBar(pr.barTotal(),
		mpb.PrependDecorators(decor.Name(pr.what+"  "), decor.CountersNoUnit("%d / %d threads")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.Any(pr.etaText)),
	)
	pr.mu.Unlock()
}

// MoreThreads adds the threads of a chunk after the first
// (pipeline.MoreProgress): an import in chunks learns its total a chunk
// at a time.
func (pr *progress) MoreThreads(n int) {
	pr.total.Add(int64(n))
	pr.mu.Lock()
	bar := pr.bar
	pr.mu.Unlock()
	if bar != nil {
		bar.SetTotal(pr.barTotal(), false)
	}
}

// ThreadDone counts a thread worked on, whatever the outcome.
func (pr *progress) ThreadDone() {
	n := pr.worked.Add(1)
	pr.rate.add(pr.now(), n)
	pr.advance()
}

// ThreadSkipped counts a thread the run had nothing to do for
// (pipeline.SkipProgress).
func (pr *progress) ThreadSkipped() {
	pr.skipped.Add(1)
	pr.advance()
}

func (pr *progress) advance() {
	pr.mu.Lock()
	bar := pr.bar
	pr.mu.Unlock()
	if bar == nil {
		return
	}
	if pr.limit > 0 {
		bar.SetTotal(pr.barTotal(), false)
	}
	bar.Increment()
}

// Tickets starts verify's second phase: total tickets to read back.
func (pr *progress) Tickets(total int) {
	pr.ticketStart.Store(pr.now().UnixNano())
	pr.tickets.Store(int64(total))
	if pr.p == nil {
		return
	}
	pr.mu.Lock()
	if pr.bar != nil {
		pr.bar.SetTotal(-1, true)
	}
	pr.ticketBar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name("read back  "), decor.CountersNoUnit("%d / %d tickets")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.AverageETA(decor.ET_STYLE_GO)),
	)
	pr.mu.Unlock()
}

// TicketDone counts a ticket read back.
func (pr *progress) TicketDone() {
	pr.ticketsDone.Add(1)
	pr.mu.Lock()
	bar := pr.ticketBar
	pr.mu.Unlock()
	if bar != nil {
		bar.Increment()
	}
}

// Close stops the display; it is safe to call once.
func (pr *progress) Close() {
	close(pr.stop)
	pr.wg.Wait()
	if pr.p != nil {
		pr.mu.Lock()
		if pr.bar != nil {
			pr.bar.Abort(false)
		}
		if pr.ticketBar != nil {
			pr.ticketBar.Abort(false)
		}
		pr.mu.Unlock()
		pr.bytesBar.Abort(false)
		pr.p.Wait()
	}
}

// rateWindow is how far back the rate looks: long enough to smooth the
// bursts of a worker pool, short enough to follow a change of pace (a
// backlog of 429s, the end of a run of big threads).
const rateWindow = 30 * time.Second

// rateMeter measures a count's rate over the last rateWindow from
// samples taken at most every rateSample.
type rateMeter struct {
	mu      sync.Mutex
	samples []rateSample // oldest first; the first one is at or before now - rateWindow once the window is full
}

type rateSample struct {
	at time.Time
	n  int64
}

const rateSampleEvery = time.Second

func (m *rateMeter) restart(at time.Time, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples = append(m.samples[:0], rateSample{at, n})
}

func (m *rateMeter) add(at time.Time, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k := len(m.samples); k > 0 && at.Sub(m.samples[k-1].at) < rateSampleEvery {
		return
	}
	m.samples = append(m.samples, rateSample{at, n})
	m.trim(at)
}

// trim drops the samples older than the window, keeping the newest of
// them as the window's start.
func (m *rateMeter) trim(now time.Time) {
	i := 0
	for i+1 < len(m.samples) && now.Sub(m.samples[i+1].at) >= rateWindow {
		i++
	}
	m.samples = append(m.samples[:0], m.samples[i:]...)
}

// perSecond is the rate from the window's first sample to (now, n);
// false when less than a second of it is known.
func (m *rateMeter) perSecond(now time.Time, n int64) (float64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trim(now)
	if len(m.samples) == 0 {
		return 0, false
	}
	first := m.samples[0]
	el := now.Sub(first.at)
	if el < time.Second {
		return 0, false
	}
	return float64(n-first.n) / el.Seconds(), true
}
