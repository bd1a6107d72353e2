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

	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
)

// DefaultMetricsInterval is how often Import rewrites Options.MetricsFile
// while it runs.
const DefaultMetricsInterval = 30 * time.Second

// Metrics is a snapshot of an import run, written by WriteMetrics in the
// Prometheus text exposition format (version 0.0.4), e.g. for
// node_exporter's textfile collector.
//
// The Zendesk client counts requests by endpoint and responses by status
// separately, so they are two families: threadlift_requests_total
// {endpoint} and threadlift_responses_total{status}. Both sum to the
// requests sent; status "0" counts requests that got no response (a
// timeout, a reset).
type Metrics struct {
	// Labels are added to every sample, e.g. {"shard": "2/4"}.
	Labels map[string]string
	// Threads by checkpoint state (checkpoint.Counts): the whole
	// checkpoint, not only this run.
	Threads map[string]int
	// Requests sent by endpoint kind (zendesk.Kind*), responses by HTTP
	// status; this run only, like the counters below.
	Requests  map[string]int64
	Responses map[int]int64
	// RateLimited counts 429 responses; Retries, requests sent again.
	RateLimited, Retries int64
	// SourceBytes is what the scan of the sources read.
	SourceBytes    int64
	EventsImported int64
	// LastSuccess is when a thread was last marked done, in this run or
	// an earlier one (zero: never).
	LastSuccess time.Time
	RunDuration time.Duration
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
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	f64 := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

	family("threadlift_threads", "gauge", "Threads in the checkpoint, by state.")
	for _, st := range slices.Sorted(maps.Keys(m.Threads)) {
		sample("threadlift_threads", i64(int64(m.Threads[st])), [2]string{"state", st})
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
	family("threadlift_source_bytes_read_total", "counter", "Bytes of the sources read by this run's scan.")
	sample("threadlift_source_bytes_read_total", i64(m.SourceBytes))
	family("threadlift_events_imported_total", "counter", "Messages (side-conversation events) imported in this run.")
	sample("threadlift_events_imported_total", i64(m.EventsImported))
	family("threadlift_last_success_timestamp_seconds", "gauge", "Unix time the last thread was marked done (0: never).")
	last := 0.0
	if !m.LastSuccess.IsZero() {
		last = float64(m.LastSuccess.UnixMilli()) / 1e3
	}
	sample("threadlift_last_success_timestamp_seconds", f64(last))
	family("threadlift_run_duration_seconds", "gauge", "Seconds since this run started.")
	sample("threadlift_run_duration_seconds", f64(m.RunDuration.Round(time.Millisecond).Seconds()))

	_, err := io.WriteString(w, b.String())
	return err
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

func (im *importer) writeMetrics(ctx context.Context, start time.Time) {
	m := im.metrics(ctx, start)
	if err := report.WriteAtomic(im.opts.MetricsFile, func(w io.Writer) error { return WriteMetrics(w, m) }); err != nil {
		im.opts.Logger.Warn().Err(err).Msg("could not write the metrics file")
	}
}

// startMetrics rewrites Options.MetricsFile every MetricsInterval until
// the returned function is called; that one stops the loop, waits for it
// and writes the file a last time.
func (im *importer) startMetrics(ctx context.Context, start time.Time) (finish func()) {
	if im.opts.MetricsFile == "" {
		return func() {}
	}
	ctx = context.WithoutCancel(ctx) // an interrupted run still reports
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
				im.writeMetrics(ctx, start)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		im.writeMetrics(ctx, start)
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
