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
type progress struct {
	log      zerolog.Logger
	what     string
	bytes    atomic.Int64
	total    atomic.Int64
	done     atomic.Int64
	start    time.Time
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

func newProgress(g *globalOptions, log zerolog.Logger, what string) *progress {
	pr := &progress{log: log, what: what, start: time.Now(), stop: make(chan struct{})}
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

func (pr *progress) logLine() {
	if t := pr.tickets.Load(); t > 0 {
		d := pr.ticketsDone.Load()
		ev := pr.log.Info().Str("phase", pr.what).Int64("tickets_done", d).Int64("tickets_total", t)
		if el := time.Since(time.Unix(0, pr.ticketStart.Load())).Seconds(); d > 0 && el > 0 {
			rate := float64(d) / el
			ev = ev.Float64("tickets_per_second", rate).Str("eta", time.Duration(float64(t-d)/rate*float64(time.Second)).Round(time.Second).String())
		}
		ev.Msg("progress")
		return
	}
	el := time.Since(pr.start).Seconds()
	ev := pr.log.Info().Str("phase", pr.what).Int64("bytes_read", pr.bytes.Load()).
		Int64("threads_done", pr.done.Load()).Int64("threads_total", pr.total.Load())
	if d, t := pr.done.Load(), pr.total.Load(); d > 0 && t > 0 && el > 0 {
		rate := float64(d) / el
		ev = ev.Float64("threads_per_second", rate).Str("eta", time.Duration(float64(t-d)/rate*float64(time.Second)).Round(time.Second).String())
	}
	ev.Msg("progress")
}

func (pr *progress) ReadBytes(n int64) {
	pr.bytes.Add(n)
	if pr.bytesBar != nil {
		pr.bytesBar.IncrInt64(n)
	}
}

func (pr *progress) Threads(total int) {
	pr.total.Store(int64(total))
	if pr.p == nil {
		return
	}
	pr.bytesBar.SetTotal(-1, true)
	pr.mu.Lock()
	pr.bar = pr.p.AddBar(int64(total),
		mpb.PrependDecorators(decor.Name(pr.what+"  "), decor.CountersNoUnit("%d / %d threads")),
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
	)
	pr.mu.Unlock()
}

func (pr *progress) ThreadDone() {
	pr.done.Add(1)
	pr.mu.Lock()
	bar := pr.bar
	pr.mu.Unlock()
	if bar != nil {
		bar.EwmaIncrement(time.Second)
	}
}

// Tickets starts verify's second phase: total tickets to read back.
func (pr *progress) Tickets(total int) {
	pr.ticketStart.Store(time.Now().UnixNano())
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
		mpb.AppendDecorators(decor.Percentage(), decor.Name(" "), decor.EwmaETA(decor.ET_STYLE_GO, 30)),
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
		bar.EwmaIncrement(time.Second)
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
