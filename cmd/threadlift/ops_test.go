package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestRetryWithoutCheckpointRefuses: retry, like status and failures,
// refuses a config whose checkpoint does not exist (exit 2) and creates
// nothing.
func TestRetryWithoutCheckpointRefuses(t *testing.T) {
	dir, cfg := setup(t, "http://127.0.0.1:1")
	path := filepath.Join(dir, "state", "threadlift.db")
	for _, cmd := range []string{"status", "failures", "retry"} {
		r := run(t, nil, cmd, "-c", cfg)
		if r.code != 2 || !strings.Contains(r.stderr, "no checkpoint at "+path) {
			t.Errorf("%s without a checkpoint: exit %d, stderr %q; want 2 and \"no checkpoint at %s\"", cmd, r.code, r.stderr, path)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s created %s", cmd, path)
		}
	}
}

// TestLockThroughAnotherPath: while a run holds the checkpoint, import and
// retry through a symlink, a path with "..", or a hard link to the same
// file refuse with exit 3 and the holder's pid.
func TestLockThroughAnotherPath(t *testing.T) {
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	dir, cfg := setup(t, srv.URL)
	real := filepath.Join(dir, "state", "threadlift.db")
	os.MkdirAll(filepath.Dir(real), 0o755)
	holder, err := checkpoint.Open(context.Background(), real, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	link := filepath.Join(dir, "link.db")
	hard := filepath.Join(dir, "hard.db")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(real, hard); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, filepath.Join(dir, "state", "..", "state", "threadlift.db"), hard} {
		for _, cmd := range []string{"import", "retry"} {
			r := run(t, []string{"TL_TEST_TOKEN=" + token, "THREADLIFT_CHECKPOINT=" + path}, cmd, "-c", cfg, "--no-progress")
			if r.code != 3 || !strings.Contains(r.stderr, "locked by another run") || !strings.Contains(r.stderr, "process "+strconv.Itoa(os.Getpid())) {
				t.Errorf("%s through %s while locked: exit %d, stderr %q; want 3 naming pid %d", cmd, path, r.code, r.stderr, os.Getpid())
			}
		}
	}
	if n := srv.RequestCount("total"); n != 0 {
		t.Errorf("%d requests reached Zendesk while the checkpoint was locked", n)
	}
}

// TestImportStopsEarly: answers that concern every request stop the
// binary at once with the exit status that says what to do, and the next
// run, with the account fixed, imports everything once. A workers value
// past the ceiling is a config error.
func TestImportStopsEarly(t *testing.T) {
	tests := []struct {
		name   string
		fault  zendesktest.Fault
		faults zendesktest.Faults
		code   int
		want   []string
	}{
		{"long Retry-After", zendesktest.Fault429, zendesktest.Faults{RetryAfter: 999999 * time.Second}, 75, []string{"run import again after", "max_retry_after"}},
		{"403 on write", zendesktest.Fault403, zendesktest.Faults{}, 3, []string{"403", "You do not have access", "threadlift check"}},
		{"redirect", zendesktest.Fault301, zendesktest.Faults{RedirectTo: "https://acme-new.zendesk.invalid"}, 3, []string{"https://acme-new.zendesk.invalid/api/v2/tickets/", "zendesk.url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
			srv.SetFaults(tt.faults)
			srv.SetHook(func(r *http.Request) zendesktest.Fault {
				if r.Method == http.MethodPost {
					return tt.fault
				}
				return zendesktest.FaultNone
			})
			dir, cfg := setup(t, srv.URL)
			env := []string{"TL_TEST_TOKEN=" + token}
			r := run(t, env, "import", "-c", cfg, "--no-progress", "--summary", filepath.Join(dir, "s.json"))
			if r.code != tt.code {
				t.Fatalf("import: exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if tt.code == 75 {
				var sum map[string]any
				readJSON(t, filepath.Join(dir, "s.json"), &sum)
				if sum["paused_until"] == nil || !strings.Contains(r.stdout, "paused by Zendesk until") {
					t.Errorf("summary %v / stdout %q: want paused_until and the time", sum, r.stdout)
				}
			}
			if n := srv.RequestCount("import"); n > 8 {
				t.Errorf("%d imports sent, want at most one per worker", n)
			}
			srv.SetHook(nil)
			if r := run(t, env, "import", "-c", cfg, "--no-progress"); r.code != 1 { // 1: the sample's undated message
				t.Fatalf("next import: exit %d, want 1\n%s", r.code, r.stderr)
			}
			convs := 0
			for _, id := range srv.TicketIDs() {
				convs += len(srv.SideConversations(id))
			}
			if convs != 4 {
				t.Errorf("fake holds %d side conversations, want 4", convs)
			}
		})
	}
	t.Run("workers past the ceiling", func(t *testing.T) {
		_, cfg := setup(t, "http://127.0.0.1:1")
		r := run(t, []string{"TL_TEST_TOKEN=" + token, "THREADLIFT_WORKERS=1000000000"}, "import", "-c", cfg, "--no-progress")
		if r.code != 2 || !strings.Contains(r.stderr, "THREADLIFT_WORKERS") || !strings.Contains(r.stderr, "64") {
			t.Errorf("THREADLIFT_WORKERS=1000000000: exit %d, stderr %q; want 2 naming the variable and the ceiling", r.code, r.stderr)
		}
	})
}
