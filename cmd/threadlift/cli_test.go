package main

import (
	"encoding/csv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestVersionFlag: --version prints what the version command prints.
func TestVersionFlag(t *testing.T) {
	a, b := run(t, nil, "--version"), run(t, nil, "version")
	if a.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "threadlift ") || !strings.Contains(a.stdout, "commit: ") {
		t.Errorf("--version: exit %d %q; version: %q", a.code, a.stdout, b.stdout)
	}
}

// TestQuietAndVerbose: -q logs warnings only (no info line, no progress),
// -v logs debug lines; together, or with --log-level, they are a usage
// error.
func TestQuietAndVerbose(t *testing.T) {
	dir, cfg := setup(t, "http://127.0.0.1:1")
	out := filepath.Join(dir, "out")
	plain := run(t, nil, "validate", "-c", cfg, "--log-format", "json", "--report", out)
	quiet := run(t, nil, "validate", "-c", cfg, "--log-format", "json", "--report", out, "-q")
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	_, icfg := setup(t, srv.URL)
	verbose := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", icfg, "--log-format", "json", "--verbose")
	if !strings.Contains(plain.stderr, `"level":"info"`) {
		t.Fatalf("plain validate logs no info line:\n%s", plain.stderr)
	}
	if strings.Contains(quiet.stderr, `"level":"info"`) || strings.Contains(quiet.stderr, "progress") || quiet.stdout != plain.stdout {
		t.Errorf("-q: stderr\n%s\nstdout %q (want the same data as without -q: %q)", quiet.stderr, quiet.stdout, plain.stdout)
	}
	if !strings.Contains(verbose.stderr, `"level":"debug"`) {
		t.Errorf("-v logs no debug line:\n%s", verbose.stderr)
	}
	for _, args := range [][]string{{"-q", "-v"}, {"-q", "--log-level", "info"}, {"-v", "--log-level", "warn"}} {
		if r := run(t, nil, append([]string{"validate", "-c", cfg}, args...)...); r.code != 2 {
			t.Errorf("validate %v: exit %d, want 2\n%s", args, r.code, r.stderr)
		}
	}
}

// TestConfigFromEnvironment: THREADLIFT_CONFIG names the config when -c
// is not given; -c wins over it.
func TestConfigFromEnvironment(t *testing.T) {
	_, cfg := setup(t, "http://127.0.0.1:1")
	if r := run(t, []string{"THREADLIFT_CONFIG=" + cfg}, "validate", "-q"); r.code != 1 || !strings.Contains(r.stdout, "threads:   5") {
		t.Errorf("THREADLIFT_CONFIG: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := run(t, []string{"THREADLIFT_CONFIG=" + cfg}, "validate", "-q", "-c", filepath.Join(t.TempDir(), "none.yaml"))
	if r.code != 2 || !strings.Contains(r.stderr, "none.yaml") {
		t.Errorf("-c over THREADLIFT_CONFIG: exit %d\n%s", r.code, r.stderr)
	}
	if r := run(t, []string{"THREADLIFT_CONFIG=/etc/x/threadlift.yaml"}, "--help"); !strings.Contains(r.stdout, `(default "/etc/x/threadlift.yaml")`) {
		t.Errorf("--help does not show THREADLIFT_CONFIG as -c's default")
	}
}

// TestCompletionOfValues: the flags with a fixed set of values complete
// them in a shell.
func TestCompletionOfValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"validate", "--log-format", ""}, []string{"console", "json"}},
		{[]string{"status", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"validate", "--fail-on", ""}, []string{"error", "warning"}},
		{[]string{"import", "--fail-on", ""}, []string{"rejected", "failed", "paused", "none"}},
	} {
		r := run(t, nil, append([]string{"__complete"}, tc.args...)...)
		got := strings.Fields(strings.Split(r.stdout, ":")[0])
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("complete %v = %q, want %q", tc.args, got, tc.want)
		}
	}
	if r := run(t, nil, "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "threadlift") {
		t.Errorf("completion bash: exit %d", r.code)
	}
}

// TestHelpListsEnvironmentAndExamples: --help lists every THREADLIFT_*
// variable and NO_COLOR; status, failures and retry have examples.
func TestHelpListsEnvironmentAndExamples(t *testing.T) {
	help := run(t, nil, "--help").stdout
	for _, v := range []string{envConfig, configs.EnvZendeskURL, configs.EnvZendeskEmail, configs.EnvWorkers, configs.EnvRequestsPerMinute, configs.EnvCheckpoint, "NO_COLOR", "-q, --quiet", "-v, --verbose", "--version"} {
		if !strings.Contains(help, v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
	for _, c := range []string{"status", "failures", "retry"} {
		if h := run(t, nil, c, "--help").stdout; !strings.Contains(h, "Examples:\n  threadlift ") {
			t.Errorf("%s --help has no examples:\n%s", c, h)
		}
	}
}

func TestColourHonoursNoColor(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	if !colour(true, env("")) || colour(true, env("1")) || colour(false, env("")) {
		t.Errorf("colour: want colours on a terminal only, and never with NO_COLOR set")
	}
}

// promValue returns the value of the first sample of name in a metrics
// file, "" when none.
func promValue(t *testing.T, path, name string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			return l[strings.LastIndex(l, " ")+1:]
		}
	}
	return ""
}

// TestImportFailOnAndExitCodeMetric: the metrics file's exit code is the
// process's; --fail-on failed makes rejections exit 0 (a backfill that
// pages only for what needs a person), --fail-on paused-less makes a
// pause exit 0; a config error is in the metrics too.
func TestImportFailOnAndExitCodeMetric(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	env := []string{"TL_TEST_TOKEN=" + token}
	prom := filepath.Join(dir, "m", "threadlift.prom")

	r := run(t, env, "import", "-c", cfg, "-q", "--metrics-file", prom, "--report", filepath.Join(dir, "run"))
	if r.code != 1 || promValue(t, prom, "threadlift_run_exit_code") != "1" || promValue(t, prom, "threadlift_run_in_progress") != "0" {
		t.Fatalf("import with a rejected message: exit %d, metrics exit code %q\n%s", r.code, promValue(t, prom, "threadlift_run_exit_code"), r.stderr)
	}
	if !strings.Contains(r.stdout, ", 1 duplicate\n") {
		t.Errorf("the summary line does not count duplicates:\n%s", r.stdout)
	}
	var sum map[string]any
	readJSON(t, filepath.Join(dir, "run", "summary.json"), &sum)
	prov, _ := sum["provenance"].(map[string]any)
	if _, ok := sum["duplicates"]; !ok || prov["config"] != cfg || !strings.Contains(prov["sources"].(string), "1 file (mbox)") {
		t.Errorf("summary.json: duplicates %v, provenance %v", sum["duplicates"], prov)
	}
	f, err := os.Open(filepath.Join(dir, "run", "threads.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != 6 || rows[0][0] != "thread_key" { // the header and the sample's 5 threads
		t.Errorf("threads.csv: %d rows, %v", len(rows), err)
	}

	r = run(t, env, "import", "-c", cfg, "-q", "--metrics-file", prom, "--fail-on", "failed")
	if r.code != 0 || promValue(t, prom, "threadlift_run_exit_code") != "0" || !strings.Contains(r.stderr, "--fail-on") {
		t.Errorf("--fail-on failed with only a rejected message: exit %d, metrics %q\n%s", r.code, promValue(t, prom, "threadlift_run_exit_code"), r.stderr)
	}
	if r := run(t, env, "import", "-c", cfg, "--fail-on", "bogus"); r.code != 2 {
		t.Errorf("--fail-on bogus: exit %d, want 2", r.code)
	}

	srv.SetFaults(zendesktest.Faults{RetryAfter: 999999 * time.Second})
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method == http.MethodPost {
			return zendesktest.Fault429
		}
		return zendesktest.FaultNone
	})
	os.WriteFile(filepath.Join(dir, "archive.mbox"), append(must(os.ReadFile(filepath.Join(dir, "archive.mbox"))),
		[]byte("\nFrom a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#9] new\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <new-one@x>\n\nnew\n")...), 0o644)
	r = run(t, env, "import", "-c", cfg, "-q", "--metrics-file", prom, "--fail-on", "failed")
	if r.code != 0 || promValue(t, prom, "threadlift_run_exit_code") != "0" {
		t.Errorf("paused with --fail-on failed: exit %d, want 0\n%s", r.code, r.stderr)
	}
	r = run(t, env, "import", "-c", cfg, "-q", "--metrics-file", prom)
	if r.code != 75 || promValue(t, prom, "threadlift_run_exit_code") != "75" {
		t.Errorf("paused: exit %d, metrics %q; want 75", r.code, promValue(t, prom, "threadlift_run_exit_code"))
	}

	r = run(t, env, "import", "-c", filepath.Join(dir, "missing.yaml"), "--metrics-file", prom, "--shard", "1/3")
	if r.code != 2 || promValue(t, prom, "threadlift_run_exit_code") != "2" || !strings.Contains(string(must(os.ReadFile(prom))), `shard="1/3"`) {
		t.Errorf("config error: exit %d, metrics:\n%s", r.code, must(os.ReadFile(prom)))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestValidateReportProvenanceAndThreads: validate --report writes
// threads.csv, and report.json says where it comes from.
func TestValidateReportProvenanceAndThreads(t *testing.T) {
	dir, cfg := setup(t, "http://127.0.0.1:1")
	out := filepath.Join(dir, "out")
	if r := run(t, nil, "validate", "-c", cfg, "-q", "--report", out); r.code != 1 {
		t.Fatalf("validate: exit %d\n%s", r.code, r.stderr)
	}
	var rep map[string]any
	readJSON(t, filepath.Join(out, "report.json"), &rep)
	prov, _ := rep["provenance"].(map[string]any)
	if prov["config"] != cfg || prov["version"] == "" || prov["generated_at"] == "" {
		t.Errorf("provenance = %v", prov)
	}
	b, _ := os.ReadFile(filepath.Join(out, "threads.csv"))
	rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(rows) != 6 {
		t.Fatalf("threads.csv: %d rows, %v\n%s", len(rows), err, b)
	}
	invalid := 0
	for _, r := range rows[1:] {
		if r[5] == "invalid" {
			invalid++
			if !strings.HasPrefix(r[6], "no-date: ") {
				t.Errorf("the invalid thread's first issue is %q, want no-date", r[6])
			}
		}
	}
	if invalid != 1 {
		t.Errorf("threads.csv has %d invalid threads, want 1:\n%s", invalid, b)
	}
}
