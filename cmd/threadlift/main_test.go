package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// binary is the threadlift binary built once for these subprocess tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "threadlift-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "threadlift")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build threadlift:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

const token = "s3cret-t0ken-value-1234567890"

// setup writes a config next to a copy of the demo archive, pointing at an
// in-process fake Zendesk, and returns the config path.
func setup(t *testing.T, url string) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo", "sample.mbox"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "archive.mbox"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "threadlift.yaml")
	yaml := fmt.Sprintf(`zendesk:
  url: %s
  email: agent@example.com
  token_env: TL_TEST_TOKEN
  requests_per_minute: 0
  write_requests_per_10_minutes: 0
  settle: 1s
sources:
  - type: mbox
    path: archive.mbox
mapping:
  ticket:
    header: X-Zendesk-Ticket-Id
    subject_regex: '\[#(\d+)\]'
    default_ticket_id: 1
checkpoint:
  path: state/threadlift.db
`, url)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

func TestValidateImportRerunStatus(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	env := []string{"TL_TEST_TOKEN=" + token}

	r := run(t, env, "validate", "-c", cfg, "--report", filepath.Join(dir, "out"), "--no-progress")
	if r.code != 1 {
		t.Fatalf("validate exit %d, want 1 (one message has no date)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var rep map[string]any
	readJSON(t, filepath.Join(dir, "out", "report.json"), &rep)
	for k, want := range map[string]float64{"threads": 5, "messages": 10, "valid_threads": 4, "invalid_threads": 1, "requests_planned": 4} {
		if rep[k] != want {
			t.Errorf("report.json %s = %v, want %v", k, rep[k], want)
		}
	}
	issues, _ := rep["issues"].([]any)
	found := false
	for _, i := range issues {
		m := i.(map[string]any)
		if m["rule"] == "no-date" && m["severity"] == "error" && m["source"] == "archive.mbox@3551" && m["thread_key"] == "undated@customer.example" {
			found = true
		}
	}
	if !found {
		t.Errorf("report.json issues lack the no-date error at archive.mbox@3551: %v", issues)
	}
	if n := srv.RequestCount("total"); n != 0 {
		t.Errorf("validate sent %d requests, want none", n)
	}

	sumPath := filepath.Join(dir, "summary.json")
	r = run(t, env, "import", "-c", cfg, "--summary", sumPath, "--no-progress")
	if r.code != 1 {
		t.Fatalf("import exit %d, want 1 (a rejected message)\n%s%s", r.code, r.stdout, r.stderr)
	}
	var sum map[string]any
	readJSON(t, sumPath, &sum)
	// 9 requests: 5 writes, and a look at each of the 4 tickets before
	// the first write to it (a new checkpoint checks that the account
	// holds no threads it does not know of).
	for k, want := range map[string]float64{"threads_total": 5, "imported": 4, "already_done": 0, "failed": 0, "rejected": 1, "requests": 9, "retries": 0, "rate_limited": 0} {
		if sum[k] != want {
			t.Errorf("summary %s = %v, want %v", k, sum[k], want)
		}
	}
	if _, ok := sum["elapsed_seconds"]; !ok {
		t.Errorf("summary lacks elapsed_seconds")
	}
	convs := 0
	for _, id := range srv.TicketIDs() {
		convs += len(srv.SideConversations(id))
	}
	if convs != 4 {
		t.Errorf("fake holds %d side conversations, want 4", convs)
	}

	// Re-run: nothing new.
	r = run(t, env, "import", "-c", cfg, "--summary", sumPath, "--no-progress")
	readJSON(t, sumPath, &sum)
	if sum["imported"] != 0.0 || sum["already_done"] != 4.0 || sum["requests"] != 0.0 {
		t.Errorf("re-run summary imported=%v already_done=%v requests=%v, want 0, 4, 0", sum["imported"], sum["already_done"], sum["requests"])
	}

	r = run(t, nil, "status", "-c", cfg, "--json")
	if r.code != 0 {
		t.Fatalf("status exit %d: %s", r.code, r.stderr)
	}
	var st struct {
		Threads  map[string]int `json:"threads"`
		Messages map[string]int `json:"messages"`
		LastRun  map[string]any `json:"last_run"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if st.Threads["done"] != 4 || st.Threads["rejected"] != 1 || st.Messages["imported"] != 8 || st.LastRun == nil {
		t.Errorf("status --json = %+v", st)
	}
	for _, k := range []string{"pending", "in_flight", "created", "done", "failed", "rejected"} {
		if _, ok := st.Threads[k]; !ok {
			t.Errorf("status --json threads lacks %q", k)
		}
	}

	r = run(t, nil, "failures", "-c", cfg, "--json")
	var fs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fs); err != nil {
		t.Fatalf("failures --json: %v\n%s", err, r.stdout)
	}
	if len(fs) == 0 || fs[0]["thread_key"] != "undated@customer.example" || fs[0]["source"] != "archive.mbox@3551" || fs[0]["ticket_id"] != 104.0 {
		t.Errorf("failures --json = %v", fs)
	}
}

func TestExitCodes(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)

	t.Run("unknown key is a config error naming key and line", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("zendesk:\n  url: http://127.0.0.1:1\n  wokers: 3\n"), 0o644)
		r := run(t, nil, "validate", "-c", bad)
		if r.code != 2 || !strings.Contains(r.stderr, "wokers") || !strings.Contains(r.stderr, "line 3") {
			t.Errorf("exit %d stderr %q, want 2 naming zendesk.wokers at line 3", r.code, r.stderr)
		}
	})
	t.Run("bad flag is a usage error", func(t *testing.T) {
		if r := run(t, nil, "import", "--no-such-flag"); r.code != 2 {
			t.Errorf("exit %d, want 2", r.code)
		}
	})
	// The key, never its value: a token pasted into token_env would be
	// echoed (issue 11).
	t.Run("missing token names the key", func(t *testing.T) {
		r := run(t, []string{"TL_TEST_TOKEN="}, "import", "-c", cfg)
		if r.code != 2 || !strings.Contains(r.stderr, "the variable named in zendesk.token_env is not set") || strings.Contains(r.stderr, "TL_TEST_TOKEN") {
			t.Errorf("exit %d stderr %q, want 2 naming zendesk.token_env, not its value", r.code, r.stderr)
		}
	})
	t.Run("refused credentials are fatal and never logged", func(t *testing.T) {
		wrong := "wr0ng-t0ken-value-abcdefghijkl"
		r := run(t, []string{"TL_TEST_TOKEN=" + wrong}, "import", "-c", cfg, "--log-level", "debug", "--summary", filepath.Join(dir, "s.json"))
		if r.code != 3 {
			t.Errorf("exit %d, want 3\n%s", r.code, r.stderr)
		}
		for _, secret := range []string{wrong, "Authorization"} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("output contains %q:\n%s", secret, r.stderr)
			}
		}
		db, _ := os.ReadFile(filepath.Join(dir, "state", "threadlift.db"))
		if bytes.Contains(db, []byte(wrong)) {
			t.Errorf("checkpoint contains the token")
		}
	})
	t.Run("second run on a locked checkpoint", func(t *testing.T) {
		os.MkdirAll(filepath.Join(dir, "state"), 0o755)
		s, err := checkpoint.Open(context.Background(), filepath.Join(dir, "state", "threadlift.db"), checkpoint.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg)
		if r.code != 3 || !strings.Contains(r.stderr, "locked") {
			t.Errorf("exit %d stderr %q, want 3 and a lock message", r.code, r.stderr)
		}
		// status still works while the lock is held.
		if r := run(t, nil, "status", "-c", cfg); r.code != 0 {
			t.Errorf("status while locked: exit %d %s", r.code, r.stderr)
		}
	})
	t.Run("version", func(t *testing.T) {
		r := run(t, nil, "version")
		if r.code != 0 || !strings.Contains(r.stdout, "go1.") {
			t.Errorf("version: exit %d %q", r.code, r.stdout)
		}
	})
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestOAuthRefresh: the access token has expired; the binary refreshes it
// once with the configured refresh token and imports everything, and no
// token or secret shows up in its output.
func TestOAuthRefresh(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{
		OAuthToken: "access-token-aaaaaaaaaaaa", OAuthRefreshToken: "refresh-token-bbbbbbbbbbbb",
		OAuthClientID: "threadlift", OAuthClientSecret: "client-secret-cccccccccccc", AutoCreateTickets: true,
	})
	srv.ExpireOAuthToken()
	dir, cfg := setup(t, srv.URL)
	data, _ := os.ReadFile(cfg)
	data = bytes.Replace(data, []byte("  token_env: TL_TEST_TOKEN\n"), []byte(
		"  oauth_token_env: TL_ACCESS\n  oauth_refresh_token_env: TL_REFRESH\n  oauth_client_id: threadlift\n  oauth_client_secret_env: TL_SECRET\n"), 1)
	os.WriteFile(cfg, data, 0o644)
	env := []string{"TL_ACCESS=access-token-aaaaaaaaaaaa", "TL_REFRESH=refresh-token-bbbbbbbbbbbb", "TL_SECRET=client-secret-cccccccccccc"}
	r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "debug", "--summary", filepath.Join(dir, "s.json"))
	if r.code != 1 { // 1: the sample's undated message is rejected
		t.Fatalf("import exit %d, want 1\n%s", r.code, r.stderr)
	}
	if n := srv.OAuthRefreshes(); n != 1 {
		t.Errorf("%d token refreshes, want 1", n)
	}
	access, refresh := srv.OAuthTokens()
	for _, secret := range []string{"access-token-aaaaaaaaaaaa", "refresh-token-bbbbbbbbbbbb", "client-secret-cccccccccccc", access, refresh} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output contains a secret %q", secret)
		}
	}
	if !strings.Contains(r.stderr, "zendesk.oauth_refresh_token_env") {
		t.Errorf("no warning that the refresh token in the variable of zendesk.oauth_refresh_token_env was used up:\n%s", r.stderr)
	}
	convs := 0
	for _, id := range srv.TicketIDs() {
		convs += len(srv.SideConversations(id))
	}
	if convs != 4 {
		t.Errorf("fake holds %d side conversations, want 4", convs)
	}
}

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		live, other uint64
		want        int64
	}{
		{0, 0, 8 * mib},                        // the headroom alone
		{8 * mib, 4 * mib, 20 * mib},           // small heaps: 8 MiB of headroom
		{100 * mib, 10 * mib, 135 * mib},       // big heaps: a quarter of the live heap
		{math.MaxUint64 - 1, 1, math.MaxInt64}, // never overflows
	}
	for _, tt := range tests {
		if got := memoryLimit(tt.live, tt.other); got != tt.want {
			t.Errorf("memoryLimit(%d, %d) = %d, want %d", tt.live, tt.other, got, tt.want)
		}
	}
}
