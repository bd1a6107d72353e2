package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestWriteMetricsGolden pins the text format: HELP and TYPE for every
// family, sorted samples, escaped label values.
func TestWriteMetricsGolden(t *testing.T) {
	m := Metrics{
		Labels:         map[string]string{"shard": "2/4", "z_note": "a \"quoted\" \\ value\non two lines"},
		Threads:        map[string]int{"pending": 3, "in_flight": 0, "created": 1, "done": 40, "failed": 2, "rejected": 1},
		Requests:       map[string]int64{"import": 44, "events_import": 5, "list": 2, "upload": 0},
		Responses:      map[int]int64{201: 47, 0: 1, 429: 2, 500: 1},
		RateLimited:    2,
		Retries:        4,
		SourceBytes:    123456,
		EventsImported: 97,
		LastSuccess:    time.Date(2026, 3, 4, 5, 6, 7, 250e6, time.UTC),
		RunDuration:    90*time.Second + 1500*time.Microsecond,
		Messages:       map[string]int{"imported": 97, "rejected": 3, "pending": 12},
		Paused:         61*time.Second + 500*time.Millisecond,
		RunStart:       time.Date(2026, 3, 4, 5, 4, 37, 0, time.UTC),
		RunEnd:         time.Date(2026, 3, 4, 5, 6, 7, 2e6, time.UTC),
		ExitCode:       new(int),
		Version:        "v1.2.3",
		Commit:         "0123456789abcdef",
	}
	*m.ExitCode = 75
	var b bytes.Buffer
	if err := WriteMetrics(&b, m); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "metrics.golden.prom")
	if *update {
		if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), b.String()); diff != "" {
		t.Errorf("WriteMetrics differs from %s (-want +got; go test -update to refresh):\n%s", golden, diff)
	}
	checkExposition(t, b.String())

	// No labels, nothing known yet: every family is still there.
	b.Reset()
	if err := WriteMetrics(&b, Metrics{}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"threadlift_rate_limited_total 0", "threadlift_last_success_timestamp_seconds 0",
		"threadlift_run_duration_seconds 0", "# TYPE threadlift_threads gauge",
		"threadlift_run_in_progress 0", `threadlift_build_info{commit="",version="unknown"} 1`,
	} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("WriteMetrics(zero) lacks %q:\n%s", line, b.String())
		}
	}
	checkExposition(t, b.String())
	if strings.Contains(b.String(), "threadlift_run_exit_code") {
		t.Errorf("WriteMetrics(zero) has an exit code before the process knows it:\n%s", b.String())
	}
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (\S+)$`)
	helpLine   = regexp.MustCompile(`^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$`)
)

// checkExposition checks text against the Prometheus text format 0.0.4:
// every sample `name{labels} value` with a float value, each family
// introduced by HELP then TYPE before its samples.
func checkExposition(t *testing.T, text string) {
	t.Helper()
	typed := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if m := helpLine.FindStringSubmatch(line); m != nil {
			if m[1] == "TYPE" {
				if m[3] != "counter" && m[3] != "gauge" {
					t.Errorf("%q: unknown type", line)
				}
				typed[m[2]] = m[3]
			}
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("not a sample line: %q", line)
			continue
		}
		if _, err := strconv.ParseFloat(m[4], 64); err != nil {
			t.Errorf("%q: value: %v", line, err)
		}
		if typ := typed[m[1]]; typ == "" {
			t.Errorf("%q: no TYPE before the sample", line)
		} else if typ == "counter" && !strings.HasSuffix(m[1], "_total") {
			t.Errorf("%q: counter without _total", line)
		}
	}
}

// TestImportWritesMetrics: a run with a metrics file leaves one behind
// with what it did; the periodic writes happen while it runs. Time is
// virtual: by the 30th write (5 ms answers, 2 workers) several 10 ms
// periods have passed, however slow the machine.
func TestImportWritesMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.mbox")
		valid, _ := shardArchive(t, path)
		opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
		srv, client := bubbleImport(t, zendesktest.Config{AutoCreateTickets: true, Latency: 5 * time.Millisecond}, &opts)
		opts.MetricsFile = filepath.Join(dir, "out", "threadlift.prom")
		opts.MetricsInterval = 10 * time.Millisecond
		opts.Workers = 2
		var writes atomic.Int64
		var midRun atomic.Bool
		srv.SetHook(func(r *http.Request) zendesktest.Fault {
			if r.Method == http.MethodPost && writes.Add(1) == 30 {
				_, err := os.Stat(opts.MetricsFile)
				midRun.Store(err == nil)
			}
			return zendesktest.FaultNone
		})
		before := opts.Now()
		if _, err := Import(context.Background(), client, newStore(t), opts); err != nil {
			t.Fatal(err)
		}
		after := opts.Now()
		b, err := os.ReadFile(opts.MetricsFile)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		checkExposition(t, text)
		for _, line := range []string{
			`threadlift_run_in_progress 0`,
			`threadlift_messages{state="imported"} ` + strconv.Itoa(valid),
			`threadlift_paused_seconds_total 0`,
			`threadlift_threads{state="done"} ` + strconv.Itoa(valid),
			`threadlift_threads{state="rejected"} 1`,
			`threadlift_requests_total{endpoint="import"} ` + strconv.Itoa(valid),
			`threadlift_responses_total{status="201"} ` + strconv.Itoa(valid),
			`threadlift_events_imported_total ` + strconv.Itoa(valid),
			`threadlift_rate_limited_total 0`,
			`threadlift_source_bytes_read_total `,
		} {
			if !strings.Contains(text, line) {
				t.Errorf("metrics lack %q:\n%s", line, text)
			}
		}
		m := regexp.MustCompile(`(?m)^threadlift_last_success_timestamp_seconds (\S+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("no last success time:\n%s", text)
		}
		if ts, _ := strconv.ParseFloat(m[1], 64); ts < float64(before.UnixMilli())/1e3 || ts > float64(after.UnixMilli())/1e3 {
			t.Errorf("last success %s, want during the run (%d..%d)", m[1], before.Unix(), after.Unix())
		}
		if !midRun.Load() {
			t.Errorf("no metrics file while the run went on (at the 30th write)")
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "out", ".threadlift.prom.tmp-*")); len(left) != 0 {
			t.Errorf("temp files left behind: %v", left)
		}
	})
}
