package pipeline

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/pipeline/report"
)

// DefaultPushJob is the job label of the metrics pushed to a Pushgateway.
const DefaultPushJob = "threadlift"

// pushTimeout bounds one push: a Pushgateway that does not answer never
// holds up the run (or its exit) for longer.
const pushTimeout = 10 * time.Second

// MetricsPublisher publishes a run's metrics where a scheduler's
// monitoring reads them: a file for node_exporter's textfile collector
// (File), and/or a Prometheus Pushgateway (PushURL), the way to get the
// outcome of a batch job that is gone before any scrape. Import gives it
// a snapshot every Options.MetricsInterval and when it ends; the process
// calls Finish with its exit code last of all. Failures to publish are
// logged, never fatal. Safe for concurrent use.
type MetricsPublisher struct {
	// File is rewritten atomically with every snapshot ("" for none).
	File string
	// PushURL is the Pushgateway's base URL (http://host:9091, "" for
	// none). Each snapshot is POSTed to PushURL/metrics/job/Job, with the
	// snapshot's labels (the shard) as the rest of the grouping key: a POST
	// replaces the families it holds and leaves the others, so a run that
	// ended before its first snapshot does not wipe the last success time
	// of the run before.
	PushURL string
	// Job is the job label of the pushed metrics; default DefaultPushJob.
	Job string
	// Version and Commit go in threadlift_build_info.
	Version, Commit string
	// Labels are added to every sample (and pushed as grouping labels)
	// when the run ended before Import took a snapshot; Import's
	// snapshots carry their own (the shard).
	Labels map[string]string
	// Started is when the process started: the run's start when Import
	// never took a snapshot.
	Started time.Time
	Client  *http.Client // default: http.DefaultClient's transport, 10s timeout
	Logger  zerolog.Logger
	Now     func() time.Time // default time.Now

	mu   sync.Mutex
	last *Metrics
}

// Publish writes m to File and pushes it to PushURL, with the build info.
func (p *MetricsPublisher) Publish(ctx context.Context, m Metrics) {
	m.Version, m.Commit = p.Version, p.Commit
	p.mu.Lock()
	defer p.mu.Unlock() // one publication at a time: files and pushes in order
	p.last = &m
	p.publish(ctx, m)
}

// Finish publishes the last snapshot once more, the run over and with
// the process's exit code: the very last thing a process does. Without a
// snapshot (the run stopped before Import: a config error, a held lock)
// it publishes the run's families only (start, end, exit code, build
// info).
func (p *MetricsPublisher) Finish(ctx context.Context, exitCode int) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var m Metrics
	if p.last != nil {
		m = *p.last
	} else {
		m = Metrics{RunOnly: true, Labels: p.Labels, RunStart: p.Started, Version: p.Version, Commit: p.Commit}
		if !p.Started.IsZero() {
			m.RunDuration = now().Sub(p.Started)
		}
	}
	if m.InProgress || m.RunEnd.IsZero() {
		m.InProgress, m.RunEnd = false, now()
	}
	m.ExitCode = &exitCode
	p.publish(ctx, m)
}

func (p *MetricsPublisher) publish(ctx context.Context, m Metrics) {
	if p.File != "" {
		if err := report.WriteAtomic(p.File, func(w io.Writer) error { return WriteMetrics(w, m) }); err != nil {
			p.Logger.Warn().Err(err).Msg("could not write the metrics file")
		}
	}
	if p.PushURL != "" {
		if err := p.push(ctx, m); err != nil {
			p.Logger.Warn().Err(err).Msg("could not push the metrics to the Pushgateway")
		}
	}
}

// PushPath is the path under a Pushgateway's URL that metrics with these
// labels are pushed to: /metrics/job/JOB, then each label as
// /NAME@base64/VALUE (base64url, which any value survives, "2/4"
// included).
func PushPath(job string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString("/metrics/job/")
	b.WriteString(url.PathEscape(job))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		enc := base64.URLEncoding.EncodeToString([]byte(v))
		if v == "" {
			enc = "=" // the Pushgateway's spelling of an empty value
		}
		fmt.Fprintf(&b, "/%s@base64/%s", k, enc)
	}
	return b.String()
}

// push POSTs m to the Pushgateway. Its labels become the grouping key,
// so the samples go without them (the Pushgateway refuses a sample whose
// labels repeat the grouping key's).
func (p *MetricsPublisher) push(ctx context.Context, m Metrics) error {
	job := p.Job
	if job == "" {
		job = DefaultPushJob
	}
	u, err := url.Parse(p.PushURL)
	if err != nil {
		return fmt.Errorf("push metrics: %w", err)
	}
	where := u.Redacted() // never log a password given in the URL
	u.Path = strings.TrimSuffix(u.Path, "/") + PushPath(job, m.Labels)
	u.RawPath = ""
	m.Labels = nil
	var body bytes.Buffer
	if err := WriteMetrics(&body, m); err != nil {
		return fmt.Errorf("push metrics to %s: %w", where, err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), &body)
	if err != nil {
		return fmt.Errorf("push metrics to %s: %w", where, err)
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: pushTimeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("push metrics to %s: %w", where, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("push metrics to %s: %s: %s", where, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
