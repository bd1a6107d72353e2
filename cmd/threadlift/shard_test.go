package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// metricLine is a sample of the Prometheus text format: name{labels} value.
var metricLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? \S+$`)

// TestShardedImport runs two shards of one import at the same time against
// one fake: every thread lands exactly once, each shard has its own
// checkpoint holding its own threads only, and each writes parseable
// metrics.
func TestShardedImport(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	const threads = 120
	msgs := writeArchive(t, archive, threads)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 4)
	data, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, bytes.Replace(data, []byte("requests_per_minute: 0\n"), []byte("requests_per_minute: 60001\n"), 1), 0o644)
	env := append(os.Environ(), "TL_TEST_TOKEN="+token, "THREADLIFT_CHECKPOINT=")

	type shardRun struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
		summary, prom  string
	}
	var runs [2]*shardRun
	for i := range runs {
		r := &shardRun{summary: filepath.Join(dir, "summary-"+strconv.Itoa(i)+".json"), prom: filepath.Join(dir, "metrics", "shard-"+strconv.Itoa(i)+".prom")}
		r.cmd = exec.Command(binary, "import", "-c", cfg, "--shard", strconv.Itoa(i)+"/2", "--no-progress", "--log-format", "json",
			"--summary", r.summary, "--metrics-file", r.prom)
		r.cmd.Env = env
		r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i] = r
	}
	imported, other := 0, 0
	for i, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("shard %d/2: %v\n%s%s", i, err, r.stdout.String(), r.stderr.String())
		}
		var sum map[string]any
		readJSON(t, r.summary, &sum)
		if sum["shard"] != strconv.Itoa(i)+"/2" || sum["threads_total"] != float64(threads) || sum["failed"] != 0.0 {
			t.Errorf("shard %d/2 summary: %v", i, sum)
		}
		n, _ := sum["imported"].(float64)
		o, _ := sum["other_shards"].(float64)
		if n == 0 || n+o != threads {
			t.Errorf("shard %d/2: imported %v + other_shards %v, want some, adding up to %d", i, n, o, threads)
		}
		imported += int(n)
		other += int(o)
		// 60001 requests/min over two shards: 30000 each, logged.
		if !strings.Contains(r.stderr.String(), `"requests_per_minute":30000`) || !strings.Contains(r.stderr.String(), `"write_requests_per_10_minutes":0`) {
			t.Errorf("shard %d/2 did not log its share of the rate limits:\n%s", i, r.stderr.String())
		}
		if !strings.Contains(r.stdout.String(), "for other shards (this is shard "+strconv.Itoa(i)+"/2)") {
			t.Errorf("shard %d/2 stdout: %s", i, r.stdout.String())
		}
		checkMetricsFile(t, r.prom, i)
	}
	if imported != threads || other != threads {
		t.Errorf("shards imported %d and left %d to each other, want %d and %d", imported, other, threads, threads)
	}
	exactlyOnce(t, srv.Fake, threads, msgs)

	// Two checkpoints, disjoint, together every thread.
	if _, err := os.Stat(filepath.Join(dir, "state", "threadlift.db")); err == nil {
		t.Errorf("the unsharded checkpoint exists")
	}
	owner := map[string]int{}
	for i := range 2 {
		path := filepath.Join(dir, "state", "threadlift.shard-"+strconv.Itoa(i)+"-of-2.db")
		s, err := checkpoint.Open(context.Background(), path, checkpoint.Options{ReadOnly: true})
		if err != nil {
			t.Fatalf("shard %d/2 checkpoint: %v", i, err)
		}
		states, err := s.Threads(context.Background())
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		for k, st := range states {
			if prev, dup := owner[k]; dup {
				t.Errorf("thread %s is in the checkpoints of shards %d and %d", k, prev, i)
			}
			owner[k] = i
			if st.State != checkpoint.Done {
				t.Errorf("shard %d/2: thread %s is %s", i, k, st.State)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "state", "failures.shard-"+strconv.Itoa(i)+"-of-2.jsonl")); err != nil {
			t.Errorf("shard %d/2 failures file: %v", i, err)
		}
	}
	if len(owner) != threads {
		t.Errorf("the checkpoints hold %d threads together, want %d", len(owner), threads)
	}

	// status, failures and retry pick a shard's checkpoint.
	r := run(t, nil, "status", "-c", cfg, "--shard", "1/2", "--json")
	var st struct {
		Threads map[string]int `json:"threads"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); r.code != 0 || err != nil {
		t.Fatalf("status --shard 1/2: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	var want1 int
	for _, i := range owner {
		want1 += i
	}
	if st.Threads["done"] != want1 {
		t.Errorf("status --shard 1/2: %d done, want %d", st.Threads["done"], want1)
	}
	if r := run(t, nil, "failures", "-c", cfg, "--shard", "0/2"); r.code != 0 || !strings.Contains(r.stdout, "no failures") {
		t.Errorf("failures --shard 0/2: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := run(t, nil, "retry", "-c", cfg, "--shard", "0/2"); r.code != 0 {
		t.Errorf("retry --shard 0/2: exit %d %s", r.code, r.stderr)
	}
	// Without --shard there is no checkpoint: the error says to pick one.
	if r := run(t, nil, "status", "-c", cfg); r.code != 2 || !strings.Contains(r.stderr, "--shard") {
		t.Errorf("status without --shard: exit %d %q, want 2 and a hint", r.code, r.stderr)
	}

	// A rerun of a shard finds its threads done; another split is refused.
	if r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--shard", "0/2", "--no-progress"); r.code != 0 || !strings.Contains(r.stdout, "0 imported") {
		t.Errorf("rerun of shard 0/2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	before := srv.RequestCount("total")
	for _, args := range [][]string{{"--shard", "0/3"}, {}} {
		r := run(t, []string{"TL_TEST_TOKEN=" + token}, append([]string{"import", "-c", cfg, "--no-progress"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "threadlift.shard-") {
			t.Errorf("import %v next to the checkpoints of 2 shards: exit %d %q, want 2 naming them", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "threadlift.shard-0-of-3.db")); err == nil {
		t.Errorf("the refused run created its checkpoint")
	}
	if n := srv.RequestCount("total"); n != before {
		t.Errorf("refused runs sent %d requests", n-before)
	}
}

func checkMetricsFile(t *testing.T, path string, shard int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("shard %d/2 metrics: %v", shard, err)
	}
	samples := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !metricLine.MatchString(line) {
			t.Errorf("shard %d/2 metrics: not name{labels} value: %q", shard, line)
		}
		if _, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err != nil {
			t.Errorf("shard %d/2 metrics: %q: %v", shard, line, err)
		}
		samples++
	}
	for _, want := range []string{
		`threadlift_threads{shard="` + strconv.Itoa(shard) + `/2",state="done"} `,
		`threadlift_requests_total{shard="` + strconv.Itoa(shard) + `/2",endpoint="import"} `,
		`threadlift_responses_total{shard="` + strconv.Itoa(shard) + `/2",status="201"} `,
		"# TYPE threadlift_rate_limited_total counter", "threadlift_retries_total{", "threadlift_source_bytes_read_total{",
		"threadlift_last_success_timestamp_seconds{", "threadlift_run_duration_seconds{", "threadlift_events_imported_total{",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("shard %d/2 metrics lack %q:\n%s", shard, want, b)
		}
	}
	if samples < 10 {
		t.Errorf("shard %d/2 metrics: %d samples", shard, samples)
	}
}

// TestShardFlag: --shard is validated before anything runs.
func TestShardFlag(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	env := []string{"TL_TEST_TOKEN=" + token}
	for _, bad := range []string{"2/2", "-1/2", "0/0", "1", "a/b"} {
		if r := run(t, env, "import", "-c", cfg, "--shard", bad); r.code != 2 || !strings.Contains(r.stderr, "--shard") {
			t.Errorf("import --shard %s: exit %d %q, want 2", bad, r.code, r.stderr)
		}
	}
	if r := run(t, env, "import", "-c", cfg, "--dry-run", "--shard", "0/2"); r.code != 2 {
		t.Errorf("import --dry-run --shard: exit %d, want 2", r.code)
	}
	if n := srv.RequestCount("total"); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); err == nil {
		t.Errorf("a checkpoint folder was created")
	}
	r := run(t, nil, "import", "--help")
	for _, want := range []string{"--shard I/N", "0-based", "FNV-1a", "--metrics-file"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("import --help lacks %q", want)
		}
	}
	for _, c := range []string{"status", "failures", "retry"} {
		if r := run(t, nil, c, "--help"); !strings.Contains(r.stdout, "--shard I/N") {
			t.Errorf("%s --help lacks --shard", c)
		}
	}

	// --shard 0/1 is the whole migration: the usual checkpoint.
	if r := run(t, env, "import", "-c", cfg, "--shard", "0/1", "--no-progress"); r.code != 1 { // 1: the sample's undated message
		t.Fatalf("import --shard 0/1: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "threadlift.db")); err != nil {
		t.Errorf("import --shard 0/1 did not use the usual checkpoint: %v", err)
	}
	// THREADLIFT_CHECKPOINT names the file: no suffix.
	named := filepath.Join(dir, "named.db")
	if r := run(t, append(env, "THREADLIFT_CHECKPOINT="+named), "import", "-c", cfg, "--shard", "1/2", "--no-progress"); r.code > 1 {
		t.Fatalf("import --shard 1/2 with THREADLIFT_CHECKPOINT: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(named); err != nil {
		t.Errorf("THREADLIFT_CHECKPOINT not used as is: %v", err)
	}
}
