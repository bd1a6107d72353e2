//go:build unix

package main

import (
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestKillDuringImportInChunks: a first import of an archive of 300
// threads, read in chunks of 60 messages (pipeline.read_chunk_messages),
// whose threads span chunks (late replies at the end of the file), is
// killed (SIGKILL) at requests chosen by events. Each run after a kill
// reads in chunks again (the last one's record is unfinished); in the
// end every thread and message landed exactly once, and importing again
// reads only what was appended: nothing.
func TestKillDuringImportInChunks(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	archive := dir + "/archive.mbox"
	msgs := writeArchive(t, archive, 300)
	msgs += appendLateReplies(t, archive, 300)
	f := zendesktest.New(zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 3 * time.Millisecond})
	k := &killer{fake: f}
	f.SetHook(k.hook)
	hs := httptest.NewServer(k)
	t.Cleanup(hs.Close)
	cfg := crashConfig(t, hs.URL, archive, 4)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	chunked := strings.Replace(string(b), "pipeline: {", "pipeline: {read_chunk_messages: 60, ", 1)
	if err := os.WriteFile(cfg, []byte(chunked), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"TL_TEST_TOKEN=" + token}

	rng := rand.New(rand.NewPCG(5, 6))
	kills := killRuns(t, k, rng, 20, 300, 5, func() *exec.Cmd {
		cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress", "--log-level", "info")
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}, func(attempt int, stderr string) {
		if !strings.Contains(stderr, "imported in chunks") {
			t.Errorf("run %d did not read in chunks:\n%s", attempt, stderr)
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
	exactlyOnce(t, f, 300, msgs)
	r = run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "info")
	if r.code != 0 || !strings.Contains(r.stderr, "read only what was appended") {
		t.Errorf("import after the end: exit %d, want 0 and an appended read\n%s", r.code, r.stderr)
	}
	exactlyOnce(t, f, 300, msgs)
}
