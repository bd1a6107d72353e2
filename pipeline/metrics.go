package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
)

// DefaultMetricsInterval is how often Import rewrites Options.MetricsFile
// while it runs.
const DefaultMetricsInterval = 30 * time.Second

// Metrics is a snapshot of an import run, written by WriteMetrics in the
// Prometheus text exposition format (version 0.0.4), e.g. for
// node_exporter's textfile collector or a Pushgateway.
//
// The Zendesk client counts requests by endpoint and responses by status
// separately, so they are two families: threadlift_requests_total
// {endpoint} and threadlift_responses_total{status}. Both sum to the
// requests sent; status "0" counts requests that got no response (a
// timeout, a reset).
//
// A scheduled run is told by its threadlift_run_* gauges: when it started
// and ended, whether it is still going, and the process's exit code (set
// once the process knows it: the last write of a run).
type Metrics struct {
	// Labels are added to every sample, e.g. {"shard": "2/4"}.
	Labels map[string]string
	// Threads by checkpoint state (checkpoint.Counts): the whole
	// checkpoint, not only this run.
	Threads map[string]int
	// Messages by checkpoint state (imported, rejected, pending): the
	// whole checkpoint too.
	Messages map[string]int
	// Requests sent by endpoint kind (zendesk.Kind*), responses by HTTP
	// status; this run only, like the counters below.
	Requests  map[string]int64
	Responses map[int]int64
	// RateLimited counts 429 responses; Retries, requests sent again.
	RateLimited, Retries int64
	// Paused is how long every request waited because Zendesk asked to
	// pause (Retry-After).
	Paused time.Duration
	// SourceBytes is what the scan of the sources read.
	SourceBytes    int64
	EventsImported int64
	// LastSuccess is when a thread was last marked done, in this run or
	// an earlier one (zero: never).
	LastSuccess time.Time
	RunDuration time.Duration

	// RunStart is when the run started; RunEnd when it ended (zero while
	// it goes on: InProgress). ExitCode is the process's exit status, nil
	// until the process knows it.
	RunStart, RunEnd time.Time
	InProgress       bool
	ExitCode         *int
	// Version and Commit of threadlift: threadlift_build_info.
	Version, Commit string
	// RunOnly writes the run_* families and build_info alone: the run
	// ended before there was anything else to say (MetricsPublisher.Finish).
	RunOnly bool
}

// WriteMetrics writes m in the Prometheus text format: HELP and TYPE for
// every family, samples sorted by label value.
func WriteMetrics(w io.Writer, m Metrics) error {
	var b strings.Builder
	base := labelPairs(m.Labels)
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
	}
	sample := func(name string, value string, labels ...[2]string) {
		b.WriteString(name)
		all := append(slices.Clone(base), labels...)
		if len(all) > 0 {
			b.WriteByte('{')
			for i, l := range all {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=\"%s\"", l[0], escapeLabel(l[1]))
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	f64 := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	unix := unixSeconds

	if !m.RunOnly {
		writeRunCounts(family, sample, m)
	}
	family("threadlift_run_duration_seconds", "gauge", "Seconds since this run started (at its end: how long it took).")
	sample("threadlift_run_duration_seconds", f64(m.RunDuration.Round(time.Millisecond).Seconds()))
	family("threadlift_run_start_timestamp_seconds", "gauge", "Unix time this run started.")
	sample("threadlift_run_start_timestamp_seconds", unix(m.RunStart))
	family("threadlift_run_end_timestamp_seconds", "gauge", "Unix time this run ended (0: it goes on).")
	sample("threadlift_run_end_timestamp_seconds", unix(m.RunEnd))
	family("threadlift_run_in_progress", "gauge", "1 while the run goes on, 0 once it ended.")
	inProgress := "0"
	if m.InProgress {
		inProgress = "1"
	}
	sample("threadlift_run_in_progress", inProgress)
	if m.ExitCode != nil {
		family("threadlift_run_exit_code", "gauge", "Exit status of the run's process: 0 all imported, 1 some threads or messages failed or were rejected, 2 usage or config error, 3 fatal, 75 paused by Zendesk, 130 interrupted.")
		sample("threadlift_run_exit_code", strconv.Itoa(*m.ExitCode))
	}
	family("threadlift_build_info", "gauge", "Always 1: the version and commit of threadlift.")
	version := m.Version
	if version == "" {
		version = "unknown"
	}
	sample("threadlift_build_info", "1", [2]string{"commit", m.Commit}, [2]string{"version", version})

	_, err := io.WriteString(w, b.String())
	return err
}

// writeRunCounts writes the families that count what the run did and
// what the checkpoint holds.
func writeRunCounts(family func(name, typ, help string), sample func(name, value string, labels ...[2]string), m Metrics) {
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	f64 := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	family("threadlift_threads", "gauge", "Threads in the checkpoint, by state.")
	for _, st := range slices.Sorted(maps.Keys(m.Threads)) {
		sample("threadlift_threads", i64(int64(m.Threads[st])), [2]string{"state", st})
	}
	family("threadlift_messages", "gauge", "Messages in the checkpoint, by state.")
	for _, st := range slices.Sorted(maps.Keys(m.Messages)) {
		sample("threadlift_messages", i64(int64(m.Messages[st])), [2]string{"state", st})
	}
	family("threadlift_requests_total", "counter", "Requests sent to Zendesk in this run, by endpoint.")
	for _, ep := range slices.Sorted(maps.Keys(m.Requests)) {
		sample("threadlift_requests_total", i64(m.Requests[ep]), [2]string{"endpoint", ep})
	}
	family("threadlift_responses_total", "counter", `Responses from Zendesk in this run, by HTTP status ("0": no response).`)
	for _, st := range slices.Sorted(maps.Keys(m.Responses)) {
		sample("threadlift_responses_total", i64(m.Responses[st]), [2]string{"status", strconv.Itoa(st)})
	}
	family("threadlift_rate_limited_total", "counter", "429 responses received in this run.")
	sample("threadlift_rate_limited_total", i64(m.RateLimited))
	family("threadlift_retries_total", "counter", "Requests sent again after a retryable failure in this run.")
	sample("threadlift_retries_total", i64(m.Retries))
	family("threadlift_paused_seconds_total", "counter", "Seconds every request waited in this run because Zendesk asked to pause (Retry-After on a 429 or 503).")
	sample("threadlift_paused_seconds_total", f64(m.Paused.Round(time.Millisecond).Seconds()))
	family("threadlift_source_bytes_read_total", "counter", "Bytes of the sources read by this run's scan.")
	sample("threadlift_source_bytes_read_total", i64(m.SourceBytes))
	family("threadlift_events_imported_total", "counter", "Messages (side-conversation events) imported in this run.")
	sample("threadlift_events_imported_total", i64(m.EventsImported))
	family("threadlift_last_success_timestamp_seconds", "gauge", "Unix time a thread was last marked done, in this run or an earlier one on this checkpoint (0: never).")
	sample("threadlift_last_success_timestamp_seconds", unixSeconds(m.LastSuccess))
}

// unixSeconds is t as Unix seconds with milliseconds; "0" for no time.
func unixSeconds(t time.Time) string {
	if t.IsZero() {
		return "0"
	}
	return strconv.FormatFloat(float64(t.UnixMilli())/1e3, 'f', -1, 64)
}

func labelPairs(m map[string]string) [][2]string {
	var out [][2]string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, [2]string{k, m[k]})
	}
	return out
}

// escapeLabel escapes a label value: backslash, double quote, line feed.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// countingProgress counts the bytes the scan reads for the metrics.
type countingProgress struct {
	Progress
	bytes *atomic.Int64
}

func (p countingProgress) ReadBytes(n int64) {
	p.bytes.Add(n)
	p.Progress.ReadBytes(n)
}

func (p countingProgress) ThreadSkipped() { threadSkipped(p.Progress) }

func (p countingProgress) MoreThreads(n int) {
	if mp, ok := p.Progress.(MoreProgress); ok {
		mp.MoreThreads(n)
	}
}

// statsAPI is what *zendesk.Client offers besides API: the metrics read
// its request and response counts when the API has them.
type statsAPI interface{ Stats() zendesk.Stats }

// metrics takes a snapshot of the run.
func (im *importer) metrics(ctx context.Context, start time.Time) Metrics {
	m := Metrics{
		Retries:        im.c.retries.Load(),
		SourceBytes:    im.c.bytesRead.Load(),
		EventsImported: im.c.events.Load(),
		RunDuration:    im.opts.Now().Sub(start),
		RunStart:       start,
		InProgress:     true,
	}
	if s := im.opts.Shard.String(); s != "" {
		m.Labels = map[string]string{"shard": s}
	}
	if ns := im.c.lastDone.Load(); ns != 0 {
		m.LastSuccess = time.Unix(0, ns)
	}
	if c, err := im.store.Counts(ctx); err == nil {
		m.Threads = make(map[string]int, len(c.Threads))
		for st, n := range c.Threads {
			m.Threads[string(st)] = n
		}
		m.Messages = map[string]int{
			checkpoint.MessageImported: c.Messages.Imported, checkpoint.MessageRejected: c.Messages.Rejected,
			checkpoint.MessagePending: c.Messages.Pending,
		}
	} else {
		im.opts.Logger.Debug().Err(err).Msg("metrics: could not count the checkpoint's threads")
	}
	if s, ok := im.api.(statsAPI); ok {
		st := s.Stats()
		m.Requests = make(map[string]int64, len(st.Requests))
		for k, n := range st.Requests {
			if k != "total" {
				m.Requests[k] = n
			}
		}
		m.Responses = st.Responses
		m.RateLimited = st.RateLimited
		m.Paused = st.Paused
	} else {
		// Without the client's counts: what the pipeline counted itself.
		m.Requests = map[string]int64{
			zendesk.KindImport: im.c.importReqs.Load(), zendesk.KindEventsImport: im.c.eventsReqs.Load(),
			zendesk.KindUpload: im.c.uploads.Load(),
		}
		m.RateLimited = im.c.rateLimited.Load()
	}
	return m
}

// writeMetrics publishes a snapshot; final is the one taken when Import
// ends (the run is over, its exit code not known yet).
func (im *importer) writeMetrics(ctx context.Context, start time.Time, final bool) {
	m := im.metrics(ctx, start)
	if final {
		m.InProgress, m.RunEnd = false, im.opts.Now()
	}
	if im.opts.MetricsFile != "" {
		if err := report.WriteAtomic(im.opts.MetricsFile, func(w io.Writer) error { return WriteMetrics(w, m) }); err != nil {
			im.opts.Logger.Warn().Err(err).Msg("could not write the metrics file")
		}
	}
	if im.opts.Metrics != nil {
		im.opts.Metrics.Publish(ctx, m)
	}
}

// startMetrics rewrites Options.MetricsFile, and gives Options.Metrics a
// snapshot, every MetricsInterval until the returned function is called;
// that one stops the loop, waits for it and publishes a last time.
func (im *importer) startMetrics(ctx context.Context, start time.Time) (finish func()) {
	if im.opts.MetricsFile == "" && im.opts.Metrics == nil {
		return func() {}
	}
	ctx = context.WithoutCancel(ctx) // an interrupted run still reports
	if im.opts.MetricsFile == "" {
		// Import reads the earlier runs' last success time only for a
		// metrics file.
		if last, err := im.store.LastDone(ctx); err == nil && !last.IsZero() {
			im.noteDone(last)
		}
	}
	im.writeMetrics(ctx, start, false) // the run is on, from its start
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(im.opts.MetricsInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				im.writeMetrics(ctx, start, false)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		im.writeMetrics(ctx, start, true)
	}
}

// noteDone moves the last-success time forward to t.
func (im *importer) noteDone(t time.Time) {
	ns := t.UnixNano()
	for {
		old := im.c.lastDone.Load()
		if ns <= old || im.c.lastDone.CompareAndSwap(old, ns) {
			return
		}
	}
}
