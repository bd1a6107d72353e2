package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/configs"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// checkLine finds the line of one check: "STATUS  what  detail".
func checkLine(out, what string) string {
	re := regexp.MustCompile(`(?m)^(ok|FAIL|warn) +` + regexp.QuoteMeta(what) + ` +.*$`)
	return re.FindString(out)
}

func setRate(t *testing.T, cfg string, perMinute string) {
	t.Helper()
	data, _ := os.ReadFile(cfg)
	data = bytes.Replace(data, []byte("requests_per_minute: 0"), []byte("requests_per_minute: "+perMinute), 1)
	os.WriteFile(cfg, data, 0o644)
}

// TestCheckPassesAgainstFake: against the bundled fake every check passes,
// and check writes nothing: no checkpoint, no write request.
func TestCheckPassesAgainstFake(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	setRate(t, cfg, "200")
	r := run(t, []string{"TL_TEST_TOKEN=" + token}, "check", "-c", cfg)
	if r.code != 0 {
		t.Fatalf("check exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, what := range []string{"config", "sources", "credentials", "authentication", "rate limit", "tickets", "side conversations", "checkpoint"} {
		if l := checkLine(r.stdout, what); !strings.HasPrefix(l, "ok ") {
			t.Errorf("check line %q = %q, want ok\n%s", what, l, r.stdout)
		}
	}
	if strings.Contains(r.stdout+r.stderr, token) {
		t.Errorf("check printed the token")
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("check created the checkpoint folder: %v", err)
	}
	for _, req := range srv.Requests() {
		if req.Method != "GET" {
			t.Errorf("check sent %s %s, want GET only", req.Method, req.Path)
		}
	}

	// After an import: check finds the checkpoint and leaves its folder
	// as it was.
	run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress")
	list := func() string {
		var names []string
		entries, _ := os.ReadDir(filepath.Join(dir, "state"))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	before := list()
	r = run(t, []string{"TL_TEST_TOKEN=" + token}, "check", "-c", cfg)
	if l := checkLine(r.stdout, "checkpoint"); r.code != 0 || !strings.Contains(l, "a threadlift checkpoint") {
		t.Errorf("check after import: exit %d, checkpoint line %q", r.code, l)
	}
	if after := list(); after != before {
		t.Errorf("check changed the checkpoint's folder: %q, was %q", after, before)
	}
}

// TestCheckFailPaths: each way an account or a setup is not ready gives
// its FAIL (or warn) line, a fix, and exit 3, through real HTTP.
func TestCheckFailPaths(t *testing.T) {
	tests := []struct {
		name     string
		fake     zendesktest.Config
		tickets  []int64 // without AutoCreateTickets: the tickets that exist
		env      []string
		rate     string
		prepare  func(t *testing.T, dir string) func()
		what     string
		status   string
		detail   string
		wantCode int
	}{
		{name: "wrong token", env: []string{"TL_TEST_TOKEN=wr0ng-t0ken-value"}, what: "authentication", status: "FAIL", detail: "401", wantCode: 3},
		{name: "token variable unset", env: []string{"TL_TEST_TOKEN="}, what: "credentials", status: "FAIL", detail: "the variable named in zendesk.token_env", wantCode: 3},
		{name: "end-user role", fake: zendesktest.Config{Role: "end-user"}, what: "authentication", status: "FAIL", detail: `role "end-user"`, wantCode: 3},
		{name: "no side conversations add-on", fake: zendesktest.Config{NoSideConversations: true}, what: "side conversations", status: "FAIL", detail: "403", wantCode: 3},
		{name: "missing ticket", tickets: []int64{1, 101, 102, 103}, what: "tickets", status: "FAIL", detail: "104", wantCode: 3},
		{name: "rate above the account's", fake: zendesktest.Config{RateLimitHeader: 200}, rate: "400", what: "rate limit", status: "warn", detail: "looks like Suite Team", wantCode: 0},
		{name: "no client-side rate", fake: zendesktest.Config{RateLimitHeader: 2500}, rate: "0", what: "rate limit", status: "warn", detail: "Enterprise Plus / High Volume", wantCode: 0},
		{name: "checkpoint locked", prepare: func(t *testing.T, dir string) func() {
			os.MkdirAll(filepath.Join(dir, "state"), 0o755)
			s, err := checkpoint.Open(context.Background(), filepath.Join(dir, "state", "threadlift.db"), checkpoint.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return func() { s.Close() }
		}, what: "checkpoint", status: "FAIL", detail: "locked by process", wantCode: 3},
		{name: "checkpoint folder is a file", prepare: func(t *testing.T, dir string) func() {
			os.WriteFile(filepath.Join(dir, "state"), []byte("x"), 0o644)
			return func() {}
		}, what: "checkpoint", status: "FAIL", detail: "not a folder", wantCode: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := tt.fake
			fc.Email, fc.Token = "agent@example.com", token
			fc.AutoCreateTickets = tt.tickets == nil
			srv := zendesktest.NewServer(t, fc)
			for _, id := range tt.tickets {
				srv.AddTicket(id, "")
			}
			dir, cfg := setup(t, srv.URL)
			if tt.rate != "" {
				setRate(t, cfg, tt.rate)
			} else {
				setRate(t, cfg, "200")
			}
			if tt.prepare != nil {
				defer tt.prepare(t, dir)()
			}
			env := append([]string{"TL_TEST_TOKEN=" + token}, tt.env...)
			r := run(t, env, "check", "-c", cfg)
			if r.code != tt.wantCode {
				t.Errorf("check exit %d, want %d\n%s%s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			l := checkLine(r.stdout, tt.what)
			if !strings.HasPrefix(l, tt.status+" ") || !strings.Contains(l, tt.detail) {
				t.Errorf("check line %q = %q, want %s mentioning %q\n%s", tt.what, l, tt.status, tt.detail, r.stdout)
			}
			if tt.status == "FAIL" && !strings.Contains(r.stdout, "fix: ") {
				t.Errorf("no fix hint after the FAIL line:\n%s", r.stdout)
			}
			if strings.Contains(r.stdout+r.stderr, token) {
				t.Errorf("check printed the token")
			}
		})
	}
}

type verifyDoc struct {
	Tickets []struct {
		TicketID   int64  `json:"ticket_id"`
		Status     string `json:"status"`
		Duplicated []struct {
			ThreadKey  string `json:"thread_key"`
			MessageKey string `json:"message_key"`
		} `json:"duplicated"`
	} `json:"tickets"`
	OK       bool `json:"ok"`
	Complete bool `json:"complete"`
	Threads  struct {
		Planned, Present, Missing, Duplicated int
	} `json:"threads"`
	Requests int `json:"requests"`
}

// TestVerifyBinary: verify's exit status and JSON through the binary:
// exactly once after an import (0), a planted duplicate (1), refusals (3).
func TestVerifyBinary(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	_, cfg := setup(t, srv.URL)
	env := []string{"TL_TEST_TOKEN=" + token}
	if r := run(t, env, "import", "-c", cfg, "--no-progress"); r.code != 1 {
		t.Fatalf("import exit %d, want 1 (a rejected message)\n%s", r.code, r.stderr)
	}
	r := run(t, env, "verify", "-c", cfg, "--no-progress")
	if r.code != 0 || !strings.Contains(r.stdout, "exactly once") || !strings.Contains(r.stdout, "about 5 requests") {
		t.Fatalf("verify exit %d, want 0 and 'exactly once' and the prediction\n%s%s", r.code, r.stdout, r.stderr)
	}
	var doc verifyDoc
	r = run(t, env, "verify", "-c", cfg, "--no-progress", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if !doc.OK || !doc.Complete || len(doc.Tickets) != 5 || doc.Threads.Planned != 5 || doc.Threads.Present != 4 || doc.Requests != 5 {
		t.Errorf("verify --json = %+v", doc)
	}

	var scID string
	for _, c := range srv.SideConversations(101) {
		scID = c.ID
	}
	srv.CopySideConversation(101, scID)
	r = run(t, env, "verify", "-c", cfg, "--no-progress", "--json")
	doc = verifyDoc{}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("verify --json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || doc.OK || doc.Threads.Duplicated != 1 {
		t.Errorf("verify with a duplicate: exit %d, %+v; want 1 and the duplicate", r.code, doc)
	}
	r = run(t, env, "verify", "-c", cfg, "--no-progress")
	if r.code != 1 || !strings.Contains(r.stdout, "ticket 101: problems") || !strings.Contains(r.stdout, "duplicated  thread") {
		t.Errorf("verify console with a duplicate: exit %d\n%s", r.code, r.stdout)
	}

	srv.SetSideConversations(false)
	if r := run(t, env, "verify", "-c", cfg, "--no-progress"); r.code != 3 || !strings.Contains(r.stderr, "403") {
		t.Errorf("verify without the add-on: exit %d, want 3 naming the 403\n%s", r.code, r.stderr)
	}
	if r := run(t, []string{"TL_TEST_TOKEN=wr0ng-t0ken-value"}, "verify", "-c", cfg, "--no-progress"); r.code != 3 {
		t.Errorf("verify with a wrong token: exit %d, want 3\n%s", r.code, r.stderr)
	}
}

// TestVerifyAdoptThenImportBinary: the account holds the first half of an
// archive, the checkpoint was deleted. verify --adopt, then import sends
// only the other half; verify then finds every thread exactly once.
func TestVerifyAdoptThenImportBinary(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 60)
	cfg := crashConfig(t, srv.URL, archive, 4)
	env := []string{"TL_TEST_TOKEN=" + token}
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--limit", "30"); r.code != 0 {
		t.Fatalf("first import: exit %d\n%s", r.code, r.stderr)
	}
	os.RemoveAll(filepath.Join(dir, "state"))

	r := run(t, env, "verify", "-c", cfg, "--no-progress", "--adopt")
	if r.code != 1 || !strings.Contains(r.stdout, "30 missing (30 not_imported)") || !strings.Contains(r.stdout, "adopted:   30 threads") {
		t.Fatalf("verify --adopt: exit %d, want 1 with 30 missing and 30 adopted\n%s%s", r.code, r.stdout, r.stderr)
	}
	imports := srv.RequestCount("import")
	sum := filepath.Join(dir, "sum.json")
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--summary", sum); r.code != 0 {
		t.Fatalf("import after adopt: exit %d\n%s", r.code, r.stderr)
	}
	var s map[string]any
	readJSON(t, sum, &s)
	if s["already_done"] != 30.0 || s["imported"] != 30.0 {
		t.Errorf("import after adopt: already_done %v imported %v, want 30 and 30", s["already_done"], s["imported"])
	}
	if n := srv.RequestCount("import") - imports; n != 30 {
		t.Errorf("import after adopt created %d side conversations, want 30", n)
	}
	exactlyOnce(t, srv.Fake, 60, msgs)
	if r := run(t, env, "verify", "-c", cfg, "--no-progress"); r.code != 0 || !strings.Contains(r.stdout, "60 planned: 60 exactly once") {
		t.Errorf("verify after: exit %d\n%s", r.code, r.stdout)
	}

	// --adopt takes the run lock as import does.
	holder, err := checkpoint.Open(context.Background(), filepath.Join(dir, "state", "threadlift.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if r := run(t, env, "verify", "-c", cfg, "--no-progress", "--adopt"); r.code != 3 || !strings.Contains(r.stderr, "locked") {
		t.Errorf("verify --adopt while an import holds the lock: exit %d, want 3\n%s", r.code, r.stderr)
	}
	if r := run(t, env, "verify", "-c", cfg, "--no-progress"); r.code != 0 {
		t.Errorf("verify (read only) while the lock is held: exit %d, want 0\n%s", r.code, r.stderr)
	}
}

func TestInit(t *testing.T) {
	r := run(t, nil, "init")
	if r.code != 0 || r.stdout != string(configs.Example) {
		t.Fatalf("init: exit %d, stdout is not the example config", r.code)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "threadlift.yaml")
	cmd := exec.Command(binary, "init", "--write")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init --write: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, configs.Example) {
		t.Errorf("threadlift.yaml is not the example config")
	}
	if _, err := configs.Load(path, nil); err != nil {
		t.Errorf("the written config does not load: %v", err)
	}
	os.WriteFile(path, []byte("mine\n"), 0o644)
	r = run(t, nil, "init", "--write", "-c", path)
	if r.code != 2 || !strings.Contains(r.stderr, "not overwritten") {
		t.Errorf("init --write over a file: exit %d %q, want 2, not overwritten", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != "mine\n" {
		t.Errorf("init --write overwrote the file")
	}
}
