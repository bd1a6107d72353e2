//go:build unix

package main

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestKillDuringAppendedBackfill: an archive of 300 threads is imported,
// then grows by 300 threads and by replies to imported ones. The backfill,
// which reads only what was appended, is killed (SIGKILL) at requests
// chosen by events; each run after a kill resumes from the checkpoint's
// record of the scan, and in the end every thread and message landed
// exactly once.
func TestKillDuringAppendedBackfill(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	writeArchive(t, archive, 300)
	f := zendesktest.New(zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 3 * time.Millisecond})
	k := &killer{fake: f}
	f.SetHook(k.hook)
	hs := httptest.NewServer(k)
	t.Cleanup(hs.Close)
	cfg := crashConfig(t, hs.URL, archive, 4)
	env := []string{"TL_TEST_TOKEN=" + token}
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error"); r.code != 0 {
		t.Fatalf("first import exit %d\n%s", r.code, r.stderr)
	}

	msgs := writeArchive(t, archive, 600) // the first 300 threads' bytes, then 300 more
	msgs += appendLateReplies(t, archive, 300)

	rng := rand.New(rand.NewPCG(3, 4))
	kills := killRuns(t, k, rng, 20, 40, 5, func() *exec.Cmd {
		cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress", "--log-level", "info")
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}, func(attempt int, stderr string) {
		if !strings.Contains(stderr, "read only what was appended") {
			t.Errorf("run %d did not read only what was appended:\n%s", attempt, stderr)
		}
	})
	if kills < 3 {
		t.Errorf("only %d kills landed mid-run; want at least 3", kills)
	}
	k.arm(killPoint{})
	r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "info")
	if r.code != 0 {
		t.Fatalf("final import exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "read only what was appended") {
		t.Errorf("final run did not read only what was appended:\n%s", r.stderr)
	}
	exactlyOnce(t, f, 600, msgs)
}

// appendLateReplies appends to archive a late reply to every seventh of
// its first n threads (writeArchive's), and returns how many.
func appendLateReplies(t *testing.T, archive string, n int) int {
	t.Helper()
	fh, err := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	added := 0
	for i := 0; i < n; i += 7 {
		if _, err := fmt.Fprintf(fh, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: late@example.com\nTo: support@example.com\nSubject: Re: [#%d] thread %d\nDate: Tue, 5 Mar 2024 10:00:00 +0000\nMessage-ID: <late-%d@example.com>\nIn-Reply-To: <t%d-m0@example.com>\n\na late reply\n\n",
			1000+i%25, i, i, i); err != nil {
			t.Fatal(err)
		}
		added++
	}
	return added
}
