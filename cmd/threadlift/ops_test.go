package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

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
