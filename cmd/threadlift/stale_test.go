package main

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// A checkpoint that cannot vouch for what Zendesk holds never causes a
// duplicate (contract §6): a copy taken without its -wal after a kill, a
// -wal with random bytes, an empty file in front of an account that
// holds threads already. A checkpoint of another account is refused.

// killAfterImports starts an import of cfg and SIGKILLs it once the fake
// has received n import requests.
func killAfterImports(t *testing.T, srv *zendesktest.Server, cfg string, n int) {
	t.Helper()
	reached := afterImports(srv, n)
	defer srv.SetHook(nil)
	cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress", "--log-level", "error")
	cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token)
	stderr, done := startBinary(t, cmd)
	select {
	case <-reached:
		cmd.Process.Signal(syscall.SIGKILL)
	case err := <-done:
		t.Fatalf("import ended before %d imports: %v\n%s", n, err, stderr.String())
	}
	err := <-done
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("import was not killed: %v\n%s", err, stderr.String())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestResumeFromCopyWithoutWAL: after a kill, threadlift.db is copied
// without its -wal (as cp or a volume snapshot of one file does) and the
// import resumes from the copy: nothing lands twice.
func TestResumeFromCopyWithoutWAL(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 400)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 2 * time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 4)
	killAfterImports(t, srv, cfg, 150)

	backup := filepath.Join(dir, "backup", "threadlift.db")
	copyFile(t, filepath.Join(dir, "state", "threadlift.db"), backup)
	before := srv.RequestCount("list")
	writes := srv.RequestCount("import") + srv.RequestCount("events_import")
	r := run(t, []string{"TL_TEST_TOKEN=" + token, "THREADLIFT_CHECKPOINT=" + backup}, "import", "-c", cfg, "--no-progress", "--log-level", "error")
	if r.code == 3 && strings.Contains(r.stderr, "unusable") {
		// Killed while folding the WAL into the .db: the copy is torn. It
		// is refused before anything is sent, saying what to do.
		if !strings.Contains(r.stderr, "verify --adopt") {
			t.Errorf("a torn copy is refused without saying what to do:\n%s", r.stderr)
		}
		if n := srv.RequestCount("import") + srv.RequestCount("events_import") - writes; n != 0 {
			t.Errorf("%d writes sent from a torn copy", n)
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("resume from the copy: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("resume from the lone copy: %d list requests (25 tickets)", srv.RequestCount("list")-before)
	exactlyOnce(t, srv.Fake, 400, msgs)
}

// TestResumeWithRandomBytesInWAL: after a kill, the second half of the
// -wal is overwritten with random bytes, which rolls the checkpoint back
// silently; the resume still duplicates nothing.
func TestResumeWithRandomBytesInWAL(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 400)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 2 * time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 4)
	killAfterImports(t, srv, cfg, 150)

	wal := filepath.Join(dir, "state", "threadlift.db-wal")
	data, err := os.ReadFile(wal)
	if err != nil || len(data) < 4096 {
		t.Fatalf("the killed run left a -wal of %d bytes (%v); the test needs one", len(data), err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := len(data) / 2; i < len(data); i++ {
		data[i] = byte(rng.UintN(256))
	}
	if err := os.WriteFile(wal, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress", "--log-level", "error")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	exactlyOnce(t, srv.Fake, 400, msgs)
}

// TestEmptyCheckpointOnAccountWithThreads: the checkpoint file is emptied
// (0 bytes) after a full import; import --limit 20 must not post the
// first 20 threads again, and a full import afterwards adds nothing.
func TestEmptyCheckpointOnAccountWithThreads(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 200)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	cfg := crashConfig(t, srv.URL, archive, 4)
	env := []string{"TL_TEST_TOKEN=" + token}
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error"); r.code != 0 {
		t.Fatalf("first import: exit %d\n%s", r.code, r.stderr)
	}
	db := filepath.Join(dir, "state", "threadlift.db")
	for _, p := range []string{db + "-wal", db + "-shm"} {
		os.Remove(p)
	}
	if err := os.Truncate(db, 0); err != nil {
		t.Fatal(err)
	}
	writes := srv.RequestCount("import") + srv.RequestCount("events_import")
	r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error", "--limit", "20")
	if r.code != 0 {
		t.Fatalf("import --limit 20 on the emptied checkpoint: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := srv.RequestCount("import") + srv.RequestCount("events_import") - writes; n != 0 {
		t.Errorf("import --limit 20 on the emptied checkpoint sent %d writes, want 0", n)
	}
	exactlyOnce(t, srv.Fake, 200, msgs)
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error"); r.code != 0 {
		t.Fatalf("full import on the emptied checkpoint: exit %d\n%s", r.code, r.stderr)
	}
	exactlyOnce(t, srv.Fake, 200, msgs)
}

// TestCheckpointOfAnotherAccount: a checkpoint used with one Zendesk
// account is refused (exit 3) for another: skipping the threads it has
// done would lose them there.
func TestCheckpointOfAnotherAccount(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	writeArchive(t, archive, 20)
	one := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	other := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true})
	env := []string{"TL_TEST_TOKEN=" + token}
	cfg := crashConfig(t, one.URL, archive, 2)
	if r := run(t, env, "import", "-c", cfg, "--no-progress"); r.code != 0 {
		t.Fatalf("first import: exit %d\n%s", r.code, r.stderr)
	}
	cfg = crashConfig(t, other.URL, archive, 2)
	r := run(t, env, "import", "-c", cfg, "--no-progress")
	if r.code != 3 || !strings.Contains(r.stderr, one.URL) || !strings.Contains(r.stderr, other.URL) {
		t.Errorf("import on another account: exit %d, stderr %q; want 3 naming both accounts", r.code, r.stderr)
	}
	if n := other.RequestCount("total"); n != 0 {
		t.Errorf("%d requests sent to the other account, want 0", n)
	}
}

// TestResumeAfterKillLooksUpEachTicketOnce: after a kill the checkpoint
// cannot know whether it is the latest one, so the resume looks each
// ticket it writes to up once (25 tickets here), and a clean run after
// that looks nothing up.
func TestResumeAfterKillLooksUpEachTicketOnce(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 400)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 2 * time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 4)
	killAfterImports(t, srv, cfg, 150)
	env := []string{"TL_TEST_TOKEN=" + token}
	lists := srv.RequestCount("list")
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error"); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	n := srv.RequestCount("list") - lists
	t.Logf("resume after kill -9: %d list requests for 25 tickets", n)
	if n > 25 {
		t.Errorf("resume after kill -9: %d list requests, want at most one per ticket (25)", n)
	}
	exactlyOnce(t, srv.Fake, 400, msgs)

	writeArchive(t, archive, 450)
	lists = srv.RequestCount("list")
	if r := run(t, env, "import", "-c", cfg, "--no-progress", "--log-level", "error"); r.code != 0 {
		t.Fatalf("backfill: exit %d\n%s", r.code, r.stderr)
	}
	if n := srv.RequestCount("list") - lists; n != 0 {
		t.Errorf("the clean run after the resume: %d list requests, want 0 (every ticket was looked up since the kill)", n)
	}
}
