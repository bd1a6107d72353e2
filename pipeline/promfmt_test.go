package pipeline

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// parseMetrics parses text as Prometheus does (expfmt, the parser
// promtool and node_exporter's textfile collector use) and lints it the
// way `promtool check metrics` does: every family has HELP, counters
// and only counters end in _total, names are snake_case with base units,
// an _info family is a gauge of 1.
func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("expfmt: %v\n%s", err, text)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
		if !snake.MatchString(name) || !strings.HasPrefix(name, "threadlift_") {
			t.Errorf("%s: not a snake_case threadlift_ name", name)
		}
		counter := f.GetType() == dto.MetricType_COUNTER
		if counter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: type %s, but counters and only counters end in _total", name, f.GetType())
		}
		for _, bad := range []string{"milliseconds", "minutes", "hours", "_ms", "bytes_total_bytes"} {
			if strings.Contains(name, bad) {
				t.Errorf("%s: not in base units", name)
			}
		}
		if strings.HasSuffix(name, "_info") {
			for _, m := range f.GetMetric() {
				if f.GetType() != dto.MetricType_GAUGE || m.GetGauge().GetValue() != 1 {
					t.Errorf("%s: an info family is a gauge of 1", name)
				}
			}
		}
		if len(f.GetMetric()) == 0 {
			t.Errorf("%s: a family without samples", name)
		}
	}
	return fams
}

// value is the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Errorf("no family %s", name)
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if labels[want[i]] != want[i+1] {
				continue next
			}
		}
		if f.GetType() == dto.MetricType_COUNTER {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Errorf("%s%v: no such sample", name, want)
	return -1
}

// TestMetricsParseWithExpfmt: the golden file and what a real import
// writes parse with Prometheus' own parser and pass promtool's lint rules;
// the run's families say what happened.
func TestMetricsParseWithExpfmt(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "metrics.golden.prom"))
	if err != nil {
		t.Fatal(err)
	}
	fams := parseMetrics(t, string(golden))
	for name, want := range map[string]float64{
		"threadlift_run_exit_code": 75, "threadlift_run_in_progress": 0, "threadlift_paused_seconds_total": 61.5,
		"threadlift_run_start_timestamp_seconds": 1772600677, "threadlift_build_info": 1,
	} {
		if got := value(t, fams, name, "shard", "2/4"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := value(t, fams, "threadlift_build_info", "version", "v1.2.3", "commit", "0123456789abcdef"); got != 1 {
		t.Errorf("build info = %v", got)
	}

	// A real import, through the fake.
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	valid, _ := shardArchive(t, path)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.MetricsFile = filepath.Join(dir, "threadlift.prom")
	before := time.Now()
	if _, err := Import(context.Background(), newClient(t, srv), newStore(t), opts); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(opts.MetricsFile)
	fams = parseMetrics(t, string(b))
	if got := value(t, fams, "threadlift_messages", "state", "imported"); got != float64(valid) {
		t.Errorf("imported messages = %v, want %d", got, valid)
	}
	startTS, endTS := value(t, fams, "threadlift_run_start_timestamp_seconds"), value(t, fams, "threadlift_run_end_timestamp_seconds")
	if startTS < float64(before.Unix()) || endTS < startTS || value(t, fams, "threadlift_run_in_progress") != 0 {
		t.Errorf("run from %v to %v (in progress %v), want after %d, ended", startTS, endTS, value(t, fams, "threadlift_run_in_progress"), before.Unix())
	}
	if _, ok := fams["threadlift_run_exit_code"]; ok {
		t.Errorf("Import wrote an exit code: only the process knows it")
	}
}

// pushgateway is a stand-in Pushgateway that keeps what was pushed.
type pushgateway struct {
	*httptest.Server
	mu     sync.Mutex
	pushes []push
}

type push struct {
	method, path, contentType, body string
}

func newPushgateway(t *testing.T) *pushgateway {
	pg := &pushgateway{}
	pg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		pg.mu.Lock()
		pg.pushes = append(pg.pushes, push{r.Method, r.URL.EscapedPath(), r.Header.Get("Content-Type"), string(b)})
		pg.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(pg.Close)
	return pg
}

func (pg *pushgateway) all() []push {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	return append([]push(nil), pg.pushes...)
}

// TestMetricsPushedToPushgateway: with a Pushgateway, every snapshot of a
// sharded run is POSTed under job/threadlift/shard/I-of-N (base64, as
// "2/4" holds a slash), the samples without the grouping key's label; the
// process's Finish adds the exit code last, and the file says the same.
func TestMetricsPushedToPushgateway(t *testing.T) {
	pg := newPushgateway(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	shardArchive(t, path)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	sh, _ := ParseShard("1/2")
	opts.Shard = sh
	pub := &MetricsPublisher{File: filepath.Join(dir, "m.prom"), PushURL: pg.URL + "/", Version: "v9", Commit: "abc"}
	opts.Metrics = pub
	if _, err := Import(context.Background(), newClient(t, srv), newStore(t), opts); err != nil {
		t.Fatal(err)
	}
	pub.Finish(context.Background(), 1)

	pushes := pg.all()
	if len(pushes) < 3 { // at the start, at Import's end, at the process's end
		t.Fatalf("%d pushes, want at least 3", len(pushes))
	}
	wantPath := "/metrics/job/threadlift/shard@base64/" + base64.URLEncoding.EncodeToString([]byte("1/2"))
	for _, p := range pushes {
		if p.method != http.MethodPost || p.path != wantPath || !strings.HasPrefix(p.contentType, "text/plain; version=0.0.4") {
			t.Errorf("push %s %s (%s), want POST %s text/plain; version=0.0.4", p.method, p.path, p.contentType, wantPath)
		}
		if strings.Contains(p.body, `shard="`) {
			t.Errorf("a pushed sample repeats the grouping key's shard label")
		}
	}
	first := parseMetrics(t, pushes[0].body)
	if value(t, first, "threadlift_run_in_progress") != 1 {
		t.Errorf("the first push does not say the run is in progress")
	}
	last := parseMetrics(t, pushes[len(pushes)-1].body)
	if value(t, last, "threadlift_run_exit_code") != 1 || value(t, last, "threadlift_run_in_progress") != 0 ||
		value(t, last, "threadlift_build_info", "version", "v9", "commit", "abc") != 1 {
		t.Errorf("the last push:\n%s", pushes[len(pushes)-1].body)
	}
	file, _ := os.ReadFile(pub.File)
	if fams := parseMetrics(t, string(file)); value(t, fams, "threadlift_run_exit_code", "shard", "1/2") != 1 {
		t.Errorf("the file's exit code:\n%s", file)
	}
}

// TestMetricsFinishWithoutRun: a process that stopped before the run (a
// config error, a held lock) still says so: the run's families with its
// exit code, nothing else (a POST leaves the Pushgateway's other families
// of the group, such as the last success time, as they were).
func TestMetricsFinishWithoutRun(t *testing.T) {
	pg := newPushgateway(t)
	file := filepath.Join(t.TempDir(), "m.prom")
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pub := &MetricsPublisher{File: file, PushURL: pg.URL, Started: started, Labels: map[string]string{"shard": "0/4"},
		Now: func() time.Time { return started.Add(2 * time.Second) }}
	pub.Finish(context.Background(), 3)
	b, _ := os.ReadFile(file)
	fams := parseMetrics(t, string(b))
	if value(t, fams, "threadlift_run_exit_code", "shard", "0/4") != 3 || value(t, fams, "threadlift_run_end_timestamp_seconds") != float64(started.Unix()+2) {
		t.Errorf("metrics of a run that never started:\n%s", b)
	}
	if _, ok := fams["threadlift_last_success_timestamp_seconds"]; ok {
		t.Errorf("a run that never started wrote a last success time")
	}
	if p := pg.all(); len(p) != 1 || !strings.HasSuffix(p[0].path, "/shard@base64/MC80") {
		t.Errorf("pushes: %+v", p)
	}
}
