package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

// killPoint is where in a run TestKillAnywhere lands a kill: at the n-th
// request the fake receives in that run.
type killPoint struct {
	n    int
	when killWhen
}

type killWhen int

const (
	// killHeldBeforeCommit: the fake holds request n, the test kills the
	// child, then the fake drops the request uncommitted.
	killHeldBeforeCommit killWhen = iota
	// killHeldThenCommit: as above, but the fake then commits the request
	// of the dead child: a write whose answer nobody read.
	killHeldThenCommit
	// killAfterAnswer: the fake answers request n, then the test kills the
	// child, while it records the answer or goes on with other threads.
	killAfterAnswer
)

func (w killWhen) String() string {
	return [...]string{"held before commit", "held, then committed", "after the answer"}[w]
}

// killer is the fake's front for TestKillAnywhere: it counts the requests
// of the current run and tells the test when the run reached its kill
// point. It also injects faults by counting writes (every 33rd commits
// and loses its answer, every 50th gets a 500), so that kills also land
// during reconciliations.
type killer struct {
	fake *zendesktest.Fake

	mu       sync.Mutex
	point    killPoint
	requests int           // of the current run
	writes   int           // of every run
	reached  chan struct{} // closed at the kill point
	killed   chan struct{} // closed by the test once the child is dead
}

// arm sets the kill point of the next run; n = 0 kills nothing.
func (k *killer) arm(p killPoint) (reached chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.point, k.requests = p, 0
	k.reached, k.killed = make(chan struct{}), make(chan struct{})
	return k.reached
}

// dead releases a request held at the kill point.
func (k *killer) dead() {
	k.mu.Lock()
	defer k.mu.Unlock()
	close(k.killed)
}

// hook is the fake's fault chooser.
func (k *killer) hook(r *http.Request) zendesktest.Fault {
	k.mu.Lock()
	k.requests++
	at := k.point.n > 0 && k.requests == k.point.n
	when, reached, killed := k.point.when, k.reached, k.killed
	fault := zendesktest.FaultNone
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		k.writes++
		switch {
		case k.writes%33 == 0:
			fault = zendesktest.FaultCommitThenDrop
		case k.writes%50 == 0:
			fault = zendesktest.Fault500
		}
	}
	k.mu.Unlock()
	if !at || when == killAfterAnswer {
		return fault
	}
	close(reached)
	<-killed
	switch when {
	case killHeldBeforeCommit:
		return zendesktest.FaultResetBeforeCommit
	case killHeldThenCommit:
		return fault // committed, unless the count says otherwise
	}
	return fault
}

// ServeHTTP serves the fake, and signals a killAfterAnswer point once
// the answer to its request is written.
func (k *killer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.fake.ServeHTTP(w, r)
	k.mu.Lock()
	at := k.point.n > 0 && k.requests >= k.point.n && k.point.when == killAfterAnswer
	reached := k.reached
	if at {
		k.point.n = 0 // once
	}
	k.mu.Unlock()
	if at {
		flush(w)
		close(reached)
	}
}

// flush sends what w holds to the client. The fake hijacks the
// connection for the faults that drop it, and net/http's Flush panics on
// a hijacked connection: there is nothing to send then.
func flush(w http.ResponseWriter) {
	defer func() { _ = recover() }()
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// TestKillAnywhere kills the built binary with SIGKILL at points of an
// import of 1,000 threads chosen by events, not by time: at the n-th
// request of the run (n drawn from 1–80, so that twelve runs with their
// other workers' requests stay short of the whole job), either while the fake holds
// that request (and then drops it, or commits it for the dead child) or
// just after the fake answered it. It resumes after each kill and checks
// that every thread and message landed exactly once.
func TestKillAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess crash test")
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 1000)
	f := zendesktest.New(zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 3 * time.Millisecond})
	k := &killer{fake: f}
	f.SetHook(k.hook)
	hs := httptest.NewServer(k)
	t.Cleanup(hs.Close)
	cfg := crashConfig(t, hs.URL, archive, 8)
	env := append(os.Environ(), "TL_TEST_TOKEN="+token)
	rng := rand.New(rand.NewPCG(1, 2))

	kills := killRuns(t, k, rng, 40, 80, 12, func() *exec.Cmd {
		cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress", "--log-level", "error")
		cmd.Env = env
		return cmd
	}, nil)
	if kills < 10 {
		t.Errorf("only %d kills landed mid-run; want at least 10", kills)
	}
	k.arm(killPoint{})
	r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress", "--log-level", "error")
	if r.code != 0 {
		t.Fatalf("final import exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%d SIGKILLs; final run: %s", kills, strings.ReplaceAll(strings.TrimSpace(r.stdout), "\n", "; "))
	exactlyOnce(t, f, 1000, msgs)
}

// afterImports returns a channel closed when the fake has received n
// side-conversation imports: the readiness signal of tests that stop a
// run in its middle. It installs srv's hook.
func afterImports(srv *zendesktest.Server, n int) <-chan struct{} {
	var mu sync.Mutex
	seen := 0
	reached := make(chan struct{})
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if strings.HasSuffix(r.URL.Path, "/side_conversations/import") {
			mu.Lock()
			if seen++; seen == n {
				close(reached)
			}
			mu.Unlock()
		}
		return zendesktest.FaultNone
	})
	return reached
}

// TestInterrupt: SIGINT stops cleanly with 130 and the next run finishes.
// The signal is sent once the run has imported 20 threads.
func TestInterrupt(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive.mbox")
	msgs := writeArchive(t, archive, 200)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "agent@example.com", Token: token, AutoCreateTickets: true, Latency: 20 * time.Millisecond})
	cfg := crashConfig(t, srv.URL, archive, 2)
	reached := afterImports(srv, 20)
	cmd := exec.Command(binary, "import", "-c", cfg, "--no-progress")
	cmd.Env = append(os.Environ(), "TL_TEST_TOKEN="+token)
	stderr, done := startBinary(t, cmd)
	select {
	case <-reached:
	case err := <-done:
		t.Fatalf("import ended before 20 imports: %v\n%s", err, stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := <-done
	srv.SetHook(nil)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT: %v, want exit status 130\n%s", err, stderr.String())
	}
	if r := run(t, []string{"TL_TEST_TOKEN=" + token}, "import", "-c", cfg, "--no-progress"); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	exactlyOnce(t, srv.Fake, 200, msgs)
}

// startBinary starts cmd with its stderr captured, and returns that and
// a channel that gets Wait's result; read stderr only once it has.
func startBinary(t *testing.T, cmd *exec.Cmd) (*bytes.Buffer, <-chan error) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return &stderr, done
}

// killRuns starts runs of the binary (start builds each command) and
// SIGKILLs each at a random request, at most attempts times, until kills
// runs were killed mid-run or one finished before its kill point (the
// job is done). A kill point is the n-th request, n in 1..maxN, before,
// during or after the fake handles it. each, when not nil, looks at a
// killed run's stderr. It returns how many kills landed.
func killRuns(t *testing.T, k *killer, rng *rand.Rand, attempts, maxN, kills int, start func() *exec.Cmd, each func(attempt int, stderr string)) int {
	t.Helper()
	landed := 0
	for attempt := 0; attempt < attempts && landed < kills; attempt++ {
		p := killPoint{n: 1 + rng.IntN(maxN), when: killWhen(attempt % 3)}
		reached := k.arm(p)
		cmd := start()
		stderr, done := startBinary(t, cmd)
		select {
		case err := <-done:
			// Finished before its kill point: the job is done.
			t.Logf("run %d finished before request %d: %v", attempt, p.n, err)
			k.dead()
			return landed
		case <-reached:
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		k.dead()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Logf("run %d ended before SIGKILL: %v %s", attempt, err, stderr.String())
			return landed
		}
		if each != nil {
			each(attempt, stderr.String())
		}
		t.Logf("run %d killed at request %d, %s", attempt, p.n, p.when)
		landed++
	}
	return landed
}
