package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// writeArchive writes an mbox of n threads of 1–3 messages over 25
// tickets and returns how many messages it holds.
func writeArchive(t *testing.T, path string, n int) int {
	t.Helper()
	var b bytes.Buffer
	msgs := 0
	for i := 0; i < n; i++ {
		replies := i % 3
		for j := 0; j <= replies; j++ {
			id := fmt.Sprintf("t%d-m%d@example.com", i, j)
			fmt.Fprintf(&b, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a%d@example.com\nTo: support@example.com\nSubject: [#%d] thread %d\nDate: Mon, 4 Mar 2024 %02d:%02d:%02d +0000\nMessage-ID: <%s>\n",
				i, 1000+i%25, i, j, (i/60)%60, i%60, id)
			if j > 0 {
				fmt.Fprintf(&b, "In-Reply-To: <t%d-m%d@example.com>\n", i, j-1)
			}
			if (i+j)%4 == 0 {
				// Every fourth message carries a file, so that kills also
				// land between an upload and the import that uses it.
				data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(fmt.Sprintf("file of t%d-m%d\n", i, j)), 40))
				fmt.Fprintf(&b, "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nmessage %d of thread %d\n--b\nContent-Type: text/plain; name=\"t%d-m%d.txt\"\nContent-Disposition: attachment; filename=\"t%d-m%d.txt\"\nContent-Transfer-Encoding: base64\n\n%s\n--b--\n\n", j, i, i, j, i, j, data)
			} else {
				fmt.Fprintf(&b, "\nmessage %d of thread %d\n\n", j, i)
			}
			msgs++
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func crashConfig(t *testing.T, url, archive string, workers int) string {
	t.Helper()
	dir := filepath.Dir(archive)
	cfg := filepath.Join(dir, "threadlift.yaml")
	yaml := fmt.Sprintf(`zendesk:
  url: %s
  email: agent@example.com
  token_env: TL_TEST_TOKEN
  requests_per_minute: 0
  write_requests_per_10_minutes: 0
  timeout: 2s
  settle: 2s
sources:
  - {type: mbox, path: %s}
mapping:
  ticket: {subject_regex: '\[#(\d+)\]'}
  max_events_per_request: 2
pipeline: {workers: %d, max_attempts: 20}
checkpoint: {path: state/threadlift.db}
`, url, filepath.Base(archive), workers)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// exactlyOnce asserts the fake's state: every thread once, every message
// once, and all of them there.
func exactlyOnce(t *testing.T, f *zendesktest.Fake, wantThreads, wantEvents int) {
	t.Helper()
	threads, events := map[string]int{}, map[string]int{}
	for _, id := range f.TicketIDs() {
		for _, c := range f.SideConversations(id) {
			threads[c.SideConversation.ExternalIDs[zendesk.ThreadKeyField]]++
			for _, e := range c.Events {
				key := e.Message.ExternalIDs[zendesk.MessageKeyField]
				events[key]++
				// t12-m0@example.com carries t12-m0.txt, and only that.
				var want []string
				var i, j int
				if _, err := fmt.Sscanf(key, "t%d-m%d@example.com", &i, &j); err == nil && (i+j)%4 == 0 {
					want = []string{fmt.Sprintf("t%d-m%d.txt", i, j)}
				}
				var got []string
				for _, a := range e.Message.Attachments {
					up, ok := f.Attachment(a.ID)
					if !ok || up.Size != int64(40*len(fmt.Sprintf("file of t%d-m%d\n", i, j))) {
						t.Errorf("message %s: attachment %s unknown or of the wrong size (%+v)", key, a.ID, up)
					}
					got = append(got, up.Name)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("message %s carries %v, want %v", key, got, want)
				}
			}
		}
	}
	dupT, dupE := 0, 0
	for _, n := range threads {
		dupT += n - 1
	}
	for _, n := range events {
		dupE += n - 1
	}
	t.Logf("fake: %d threads, %d events, %d duplicate threads, %d duplicate events", len(threads), len(events), dupT, dupE)
	if dupT != 0 || dupE != 0 || len(threads) != wantThreads || len(events) != wantEvents {
		t.Errorf("fake holds %d threads (%d duplicates) and %d events (%d duplicates); want %d and %d, no duplicates",
			len(threads), dupT, len(events), dupE, wantThreads, wantEvents)
	}
}

// TestKillAnywhere kills the built binary with SIGKILL at random points of
// an import of 1,000 threads, resumes each time, and checks that every
// thread and message landed exactly once.
func TestKillAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 1000)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 3 * time.Millisecond})
	// Some writes are committed and their answer lost, so that kills also
	// land during reconciliations.
	srv.SetFaults(zendesktest.Faults{PCommitThenDrop: 0.03, P500: 0.02, Seed: 7, WritesOnly: true})
	cfg := crashConfig(t, srv.URL, archive, 8)
	env := append(os.Environ(), "TL_TEST_TOKEN="+token)
	rng := rand.New(rand.NewPCG(1, 2))

	kills := 0
	for attempt := 0; attempt < 40 && kills < 12; attempt++ {
		cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress", "--log-level", "error")
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		wait := time.Duration(30+rng.IntN(350)) * time.Millisecond
		select {
		case err := <-done:
			// Finished before the kill point: the job is done.
			t.Logf("run %d finished before its kill point (%v): %v", attempt, wait, err)
			attempt = 1 << 30
			continue
		case <-time.After(wait):
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Logf("run %d ended before SIGKILL: %v %s", attempt, err, stderr.String())
			break
		}
		kills++
	}
	if kills < 10 {
		t.Errorf("only %d kills landed mid-run; want at least 10", kills)
	}
	r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress", "--log-level", "error")
	if r.code != 0 {
		t.Fatalf("final import exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%d SIGKILLs; final run: %s", kills, strings.ReplaceAll(strings.TrimSpace(r.stdout), "\n", "; "))
	exactlyOnce(t, srv.Fake, 1000, msgs)
}

// TestInterrupt: SIGINT stops cleanly with 130 and the next run finishes.
func TestInterrupt(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 200)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 20 * time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 2)
	cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress")
	cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit status 130", err)
	}
	if r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress"); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	exactlyOnce(t, srv.Fake, 200, msgs)
}
