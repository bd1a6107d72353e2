package checkpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newThread registers a pending thread with one message of the same key.
func newThread(t testing.TB, s *Store, key string) {
	t.Helper()
	ok(t, s.Register(context.Background(), Thread{Key: key, TicketID: 1}, msgs(key)))
}

// manualBatch stops s's committer, so that the test can hand it batches
// itself (s.commit) and know which writes share a transaction.
func manualBatch(t testing.TB, s *Store) func(...*write) []error {
	t.Helper()
	s.stopCommitter()
	return func(ws ...*write) []error {
		s.commit(ws)
		errs := make([]error, len(ws))
		for i, w := range ws {
			errs[i] = <-w.done
		}
		return errs
	}
}

// writeOf is the write a method would queue: fn within a transaction.
func writeOf(ctx context.Context, op string, fn func(context.Context, *wtx) error) *write {
	return &write{ctx: ctx, op: op, fn: fn, done: make(chan error, 1)}
}

func TestGroupCommitOneFailureDoesNotFailTheBatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"a", "b", "c"} {
		newThread(t, s, k)
	}
	commit := manualBatch(t, s)
	inFlight := func(key string, msgKeys ...string) *write {
		return writeOf(ctx, "mark "+key+" in flight", func(ctx context.Context, tx *wtx) error {
			return s.markInFlight(ctx, tx, key, KindImport, msgKeys)
		})
	}
	errs := commit(
		inFlight("a", "a"),
		inFlight("b", "no-such-message"), // refused after the thread was read
		inFlight("nope", "x"),            // refused: not registered
		inFlight("c", "c"),
		writeOf(ctx, "fail halfway", func(ctx context.Context, tx *wtx) error {
			// A write that changed a row before failing: the change goes.
			if _, err := tx.ExecContext(ctx, "UPDATE threads SET subject = 'changed' WHERE key = 'b'"); err != nil {
				return err
			}
			return errors.New("something went wrong")
		}),
	)
	if errs[0] != nil || errs[3] != nil {
		t.Errorf("the valid writes failed: %v, %v", errs[0], errs[3])
	}
	for _, i := range []int{1, 2} {
		if !errors.Is(errs[i], ErrTransition) {
			t.Errorf("write %d = %v, want ErrTransition", i, errs[i])
		}
	}
	if errs[4] == nil || errors.Is(errs[4], ErrTransition) || !strings.Contains(errs[4].Error(), "fail halfway") {
		t.Errorf("failing write = %v, want its own error naming its operation", errs[4])
	}
	r, err := Open(ctx, s.Path(), Options{ReadOnly: true})
	ok(t, err)
	defer r.Close()
	for key, want := range map[string]State{"a": InFlight, "b": Pending, "c": InFlight} {
		th, _, err := r.Thread(ctx, key)
		ok(t, err)
		if th.State != want || th.Subject == "changed" {
			t.Errorf("thread %s after the batch: %s, subject %q; want %s, subject unchanged", key, th.State, th.Subject, want)
		}
	}
}

func TestGroupCommitCancelledBeforeItsTurn(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	newThread(t, s, "a")
	newThread(t, s, "b")
	commit := manualBatch(t, s)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	errs := commit(
		writeOf(ctx, "a", func(ctx context.Context, tx *wtx) error {
			return s.markInFlight(ctx, tx, "a", KindImport, []string{"a"})
		}),
		writeOf(cctx, "b", func(ctx context.Context, tx *wtx) error {
			return s.markInFlight(ctx, tx, "b", KindImport, []string{"b"})
		}),
	)
	if errs[0] != nil || !errors.Is(errs[1], context.Canceled) {
		t.Fatalf("batch answers %v, want nil and context.Canceled", errs)
	}
	if st := state(t, s, "a").State; st != InFlight {
		t.Errorf("a is %s, want in_flight", st)
	}
	if st := state(t, s, "b").State; st != Pending {
		t.Errorf("b is %s after a cancelled write, want pending", st)
	}
}

// blockCommitter queues a write that holds the committer until the
// returned release is called; the write's answer then comes on the
// returned channel.
func blockCommitter(t testing.TB, s *Store) (release func(), answer <-chan error) {
	t.Helper()
	running, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.tx(context.Background(), "block", func(context.Context, *wtx) error {
			close(running)
			<-proceed
			return nil
		})
	}()
	<-running
	var once sync.Once
	return func() { once.Do(func() { close(proceed) }) }, done
}

func TestGroupCommitCancelWhileQueued(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	newThread(t, s, "a")
	release, blocked := blockCommitter(t, s)
	defer release()
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.MarkInFlight(cctx, "a", KindImport, []string{"a"}) }()
	cancel() // the committer is busy: the write cannot have been taken
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("MarkInFlight cancelled while queued = %v, want context.Canceled", err)
	}
	release()
	ok(t, <-blocked)
	if st := state(t, s, "a").State; st != Pending {
		t.Errorf("a is %s after a write cancelled while queued, want pending", st)
	}
	ok(t, s.MarkInFlight(ctx, "a", KindImport, []string{"a"})) // the committer goes on
}

func TestCloseWithWritesQueued(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	newThread(t, s, "a")
	release, blocked := blockCommitter(t, s)
	errc := make(chan error, 1)
	go func() { errc <- s.MarkInFlight(ctx, "a", KindImport, []string{"a"}) }()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	ok(t, <-blocked) // the batch being committed is answered
	ok(t, <-closed)
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "closed") {
		// Taken before Close stopped the committer, it may also have
		// been written; then it succeeded.
		if err != nil {
			t.Fatalf("queued write at Close = %v, want nil or a closed store", err)
		}
	}
	if err := s.MarkDone(ctx, "a"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("write after Close = %v, want a closed store", err)
	}
}

// concurrentImports runs n threads through RegisterInFlight and
// MarkCreatedDone on 8 goroutines, each answer riding with the goroutine's
// next write-ahead record as an import does it, and returns the keys
// whose writes returned nil.
func concurrentImports(t testing.TB, s *Store, n int, onDone func(key string)) []string {
	ctx := context.Background()
	keys := make(chan string, n)
	for i := range n {
		keys <- fmt.Sprintf("<t%04d@example.com>", i)
	}
	close(keys)
	var mu sync.Mutex
	var done []string
	// record notes a key whose write has returned, at once.
	record := func(k string) {
		mu.Lock()
		defer mu.Unlock()
		done = append(done, k)
		if onDone != nil {
			onDone(k)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var prev *Completion
			flush := func() {
				if prev != nil {
					if err := s.MarkCreatedDone(ctx, prev.Key, prev.SideConversationID, prev.MessageKeys); err != nil {
						t.Error(err)
						return
					}
					record(prev.Key)
				}
			}
			for k := range keys {
				r := Registration{Thread: Thread{Key: k, TicketID: 7}, Messages: msgs(k, k+"-reply")}
				if err := s.RegisterInFlight(ctx, prev, r, KindImport, []string{k, k + "-reply"}); err != nil {
					t.Error(err)
					return
				}
				if prev != nil {
					record(prev.Key)
				}
				prev = &Completion{Key: k, SideConversationID: "sc-" + k, MessageKeys: []string{k, k + "-reply"}}
			}
			flush()
		})
	}
	wg.Wait()
	return done
}

func TestGroupCommitConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	done := concurrentImports(t, s, 300, nil)
	if len(done) != 300 {
		t.Fatalf("%d threads recorded done, want 300", len(done))
	}
	// Durable and visible to another connection, before any Close.
	r, err := Open(ctx, s.Path(), Options{ReadOnly: true})
	ok(t, err)
	defer r.Close()
	c, err := r.Counts(ctx)
	ok(t, err)
	if c.Threads[Done] != 300 || c.Messages.Imported != 600 {
		t.Errorf("Counts = %+v, want 300 done threads, 600 imported messages", c)
	}
	for _, k := range done[:10] {
		th, _, err := r.Thread(ctx, k)
		ok(t, err)
		if th.State != Done || th.SideConversationID != "sc-"+k || th.EventsDone != 2 || th.Unresolved || th.Attempts != 1 {
			t.Errorf("thread %s = %+v", k, th)
		}
		a, _, err := r.LastAttempt(ctx, k)
		ok(t, err)
		if a.Outcome != OutcomeOK || !cmp.Equal(a.MessageKeys, []string{k, k + "-reply"}) {
			t.Errorf("LastAttempt(%s) = %+v", k, a)
		}
	}
}

// groupHelperEnv makes the test binary write concurrently, print every
// key as soon as its write returns and stay until killed: see
// TestGroupCommitDurableWhenKilled.
const groupHelperEnv = "THREADLIFT_CHECKPOINT_GROUP_HELPER"

// TestGroupCommitHelperProcess is not a test: re-executed by
// TestGroupCommitDurableWhenKilled.
func TestGroupCommitHelperProcess(t *testing.T) {
	path := os.Getenv(groupHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	// Each key is printed as soon as its write returns, while the other
	// writers go on: the kill lands in the middle of the commits.
	concurrentImports(t, s, 5000, func(k string) { fmt.Println("done", k) })
	fmt.Println("end")
	select {} // until killed
}

func TestGroupCommitDurableWhenKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestGroupCommitHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), groupHelperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	ok(t, err)
	ok(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var done []string
	sc := bufio.NewScanner(out)
	for len(done) < 100 && sc.Scan() && sc.Text() != "end" {
		k, found := strings.CutPrefix(sc.Text(), "done ")
		if !found {
			t.Fatalf("helper said %q", sc.Text())
		}
		done = append(done, k)
	}
	// Killed after 100 answers, with the other writes still going.
	ok(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	if len(done) != 100 {
		t.Fatalf("helper recorded %d threads, want 100", len(done))
	}
	s := openT(t, path)
	for _, k := range done {
		if th := state(t, s, k); th.State != Done || th.EventsDone != 2 {
			t.Errorf("after SIGKILL, thread %s = %+v, want done with 2 events", k, th)
		}
	}
}

// TestRegisterInFlight: registering a thread and marking its first
// request in flight in one write is what the two writes would leave, a
// known thread takes the long way, a refusal writes nothing, and the
// previous thread's answer is recorded with it or not at all.
func TestRegisterInFlight(t *testing.T) {
	ctx := context.Background()
	reg := func(key string, keys ...string) Registration {
		return Registration{Thread: Thread{Key: key, TicketID: 9, Subject: "s", Source: "a.mbox@0", EventsTotal: len(keys)}, Messages: msgs(keys...)}
	}
	// grown is a store holding thread "new": m1 and m2 imported into sc1,
	// then grown by m3, which RegisterInFlight put in flight.
	grown := func(t *testing.T) *Store {
		t.Helper()
		s := newStore(t)
		ok(t, s.RegisterInFlight(ctx, nil, reg("new", "m1", "m2"), KindImport, []string{"m1"}))
		ok(t, s.MarkCreated(ctx, "new", "sc1", []string{"m1"}))
		ok(t, s.MarkInFlight(ctx, "new", KindEventsImport, []string{"m2"}))
		ok(t, s.MarkCreatedDone(ctx, "new", "sc1", []string{"m2"}))
		ok(t, s.RegisterInFlight(ctx, nil, reg("new", "m1", "m2", "m3"), KindEventsImport, []string{"m3"}))
		return s
	}

	t.Run("new thread as Register then MarkInFlight", func(t *testing.T) {
		s := newStore(t)
		ok(t, s.RegisterInFlight(ctx, nil, reg("new", "m1", "m2"), KindImport, []string{"m1"}))
		ok(t, s.Register(ctx, reg("ref", "m1", "m2").Thread, msgs("m1", "m2")))
		ok(t, s.MarkInFlight(ctx, "ref", KindImport, []string{"m1"}))
		got, want := state(t, s, "new"), state(t, s, "ref")
		got.Key, want.Key, want.UpdatedAt = "", "", got.UpdatedAt
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("RegisterInFlight of a new thread differs from Register+MarkInFlight (-want +got):\n%s", d)
		}
		gm, err := s.Messages(ctx, "new")
		ok(t, err)
		wm, err := s.Messages(ctx, "ref")
		ok(t, err)
		for i := range gm {
			gm[i].ThreadKey = ""
			wm[i].ThreadKey = ""
		}
		if d := cmp.Diff(wm, gm); d != "" {
			t.Errorf("messages (-want +got):\n%s", d)
		}
		if a, _, _ := s.LastAttempt(ctx, "new"); a.Kind != KindImport || !cmp.Equal(a.MessageKeys, []string{"m1"}) || a.Outcome != OutcomeUnknown {
			t.Errorf("LastAttempt = %+v", a)
		}
	})

	// A known thread takes the long way: a message added since is sent.
	t.Run("known thread grows", func(t *testing.T) {
		s := grown(t)
		if th := state(t, s, "new"); th.State != InFlight || th.SideConversationID != "sc1" || th.EventsDone != 2 {
			t.Errorf("grown thread after RegisterInFlight = %+v", th)
		}
	})

	// Refusals write nothing, the registration included.
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			r    Registration
			kind string
			keys []string
		}{
			{"second import of a thread with a side conversation", reg("new", "m1", "m2", "m3", "m4"), KindImport, []string{"m4"}},
			{"message not in the registration", reg("other", "m1"), KindImport, []string{"zz"}},
			{"message twice", reg("other2", "m1"), KindImport, []string{"m1", "m1"}},
			{"rejected message", Registration{Thread: Thread{Key: "other3"}, Messages: []Message{{Key: "m1", State: MessageRejected}}}, KindImport, []string{"m1"}},
			{"events import without side conversation", reg("other4", "m1"), KindEventsImport, []string{"m1"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := grown(t)
				err := s.RegisterInFlight(ctx, nil, tc.r, tc.kind, tc.keys)
				if !errors.Is(err, ErrTransition) {
					t.Errorf("RegisterInFlight = %v, want ErrTransition", err)
				}
				if tc.r.Thread.Key != "new" {
					if _, found, _ := s.Thread(ctx, tc.r.Thread.Key); found {
						t.Errorf("the refused thread was registered")
					}
				} else if ms, _ := s.Messages(ctx, "new"); len(ms) != 3 {
					t.Errorf("the refused registration added messages: %+v", ms)
				}
			})
		}
	})

	// With the previous thread's answer: both are written or neither.
	t.Run("with the previous answer", func(t *testing.T) {
		s := grown(t)
		prev := &Completion{Key: "new", SideConversationID: "sc1", MessageKeys: []string{"m3"}}
		err := s.RegisterInFlight(ctx, prev, reg("x", "m1"), KindImport, []string{"nope"})
		if !errors.Is(err, ErrTransition) || state(t, s, "new").State != InFlight {
			t.Fatalf("refused RegisterInFlight with prev = %v, prev thread %s; want ErrTransition, in_flight", err, state(t, s, "new").State)
		}
		ok(t, s.RegisterInFlight(ctx, prev, reg("x", "m1"), KindImport, []string{"m1"}))
		if th := state(t, s, "new"); th.State != Done || th.EventsDone != 3 || th.Unresolved {
			t.Errorf("previous thread = %+v, want done, 3 events", th)
		}
		if th := state(t, s, "x"); th.State != InFlight || !th.Unresolved {
			t.Errorf("next thread = %+v, want in_flight, unresolved", th)
		}
	})
}

func TestMarkCreatedDone(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "t"}, msgs("m1", "m2")))
	if err := s.MarkCreatedDone(ctx, "t", "sc", []string{"m1"}); !errors.Is(err, ErrTransition) {
		t.Errorf("MarkCreatedDone of a pending thread = %v, want ErrTransition", err)
	}
	ok(t, s.MarkInFlight(ctx, "t", KindImport, []string{"m1", "m2"}))
	ok(t, s.MarkCreatedDone(ctx, "t", "sc", []string{"m1", "m2"}))
	th := state(t, s, "t")
	if th.State != Done || th.SideConversationID != "sc" || th.EventsDone != 2 || th.Unresolved {
		t.Errorf("after MarkCreatedDone: %+v", th)
	}
	if a, _, _ := s.LastAttempt(ctx, "t"); a.Outcome != OutcomeOK {
		t.Errorf("attempt outcome %q, want ok", a.Outcome)
	}
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "done1", EventsTotal: 3}, msgs("a", "b", "c")))
	ok(t, s.MarkInFlight(ctx, "done1", KindImport, []string{"a", "b", "c"}))
	ok(t, s.Complete(ctx, Completion{Key: "done1", SideConversationID: "sc", MessageKeys: []string{"a", "b", "c"}, KeysHash: KeysHash([]string{"c", "a", "b", "a"})}))
	ok(t, s.Register(ctx, Thread{Key: "done2", EventsTotal: 1}, []Message{{Key: "x"}, {Key: "y", State: MessageRejected, Rule: "r"}}))
	ok(t, s.MarkInFlight(ctx, "done2", KindImport, []string{"x"}))
	ok(t, s.MarkCreatedDone(ctx, "done2", "sc2", []string{"x"}))
	ok(t, s.Register(ctx, Thread{Key: "open"}, msgs("m")))
	ok(t, s.RegisterBatch(ctx, []Registration{{Thread: Thread{Source: "a.mbox:3", State: Rejected, Rule: "r"}}}))
	r, err := s.Resume(ctx)
	ok(t, err)
	// done2 was completed without its keys' hash: it is looked at again.
	if d := cmp.Diff(map[string]string{"done1": KeysHash([]string{"a", "b", "c"}), "done2": ""}, doneOf(r.Done, "done1", "done2", "open", "")); d != "" {
		t.Errorf("Resume().Done (-want +got):\n%s", d)
	}
	if len(r.Open) != 1 || r.Open["open"].State != Pending {
		t.Errorf("Resume().Open = %+v, want the pending thread only", r.Open)
	}
	totals, err := s.MessageTotals(ctx)
	ok(t, err)
	for _, k := range []string{"done1", "done2", "open", "unknown"} {
		n, err := s.MessageCount(ctx, k)
		ok(t, err)
		if n != totals[k] {
			t.Errorf("MessageCount(%s) = %d, MessageTotals says %d", k, n, totals[k])
		}
	}
	last, err := s.LastDone(ctx)
	ok(t, err)
	if want := state(t, s, "done2").UpdatedAt; !last.Equal(want) {
		t.Errorf("LastDone = %v, want %v", last, want)
	}
}

func TestDeferCheck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	{
		s := openT(t, good)
		newThread(t, s, "a")
		ok(t, s.Close())
	}
	s, err := Open(ctx, good, Options{DeferCheck: true})
	ok(t, err)
	ok(t, s.Check(ctx))
	ok(t, s.MarkInFlight(ctx, "a", KindImport, []string{"a"}))
	ok(t, s.Close())

	// A checkpoint damaged in the middle: Open may succeed, but Check and
	// every write fail with ErrUnusable, and the file is left as it was.
	damaged := filepath.Join(dir, "damaged.db")
	{
		s := openT(t, damaged)
		ok(t, s.RegisterBatch(ctx, registrations(2000)))
		ok(t, s.Close())
		data, err := os.ReadFile(damaged)
		ok(t, err)
		for i := 4096 * 3; i < len(data)-4096; i += 4096 {
			copy(data[i:i+200], strings.Repeat("\xff", 200))
		}
		ok(t, os.WriteFile(damaged, data, 0o644))
	}
	before, err := os.ReadFile(damaged)
	ok(t, err)
	s, err = Open(ctx, damaged, Options{DeferCheck: true})
	if err != nil {
		if !errors.Is(err, ErrUnusable) {
			t.Fatalf("Open = %v, want nil or ErrUnusable", err)
		}
		t.Logf("Open refused the file already: %v", err)
		return
	}
	if err := s.Check(ctx); !errors.Is(err, ErrUnusable) {
		t.Errorf("Check = %v, want ErrUnusable", err)
	}
	k := registrations(1)[0].Thread.Key
	if err := s.MarkInFlight(ctx, k, KindImport, []string{k}); !errors.Is(err, ErrUnusable) {
		t.Errorf("write on a checkpoint that failed its check = %v, want ErrUnusable", err)
	}
	ok(t, s.Close())
	after, err := os.ReadFile(damaged)
	ok(t, err)
	if string(before) != string(after) {
		t.Errorf("the damaged checkpoint was written to")
	}
}

// A write whose function panics fails with an error, as does every write
// of its batch (the transaction's state is unknown: nothing of it is
// kept), and the committer goes on serving the next writes.
func TestGroupCommitSurvivesAPanickingWrite(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	newThread(t, s, "a")
	newThread(t, s, "b")
	commit := manualBatch(t, s)
	markA := writeOf(ctx, "mark a in flight", func(ctx context.Context, tx *wtx) error {
		return s.markInFlight(ctx, tx, "a", KindImport, []string{"a"})
	})
	errs := commit(markA, writeOf(ctx, "panic", func(context.Context, *wtx) error { panic("boom") }))
	if errs[1] == nil || !errors.Is(errs[1], errWritePanicked) || !strings.Contains(errs[1].Error(), "boom") {
		t.Errorf("panicking write = %v, want errWritePanicked with the panic", errs[1])
	}
	if errs[0] == nil {
		t.Error("the other write of the batch succeeded, but its transaction was abandoned")
	}
	th, _, err := s.Thread(ctx, "a")
	ok(t, err)
	if th.State != Pending {
		t.Errorf("thread a is %s after the abandoned batch, want pending", th.State)
	}
	errs = commit(writeOf(ctx, "mark b in flight", func(ctx context.Context, tx *wtx) error {
		return s.markInFlight(ctx, tx, "b", KindImport, []string{"b"})
	}))
	if errs[0] != nil {
		t.Errorf("the next batch: %v", errs[0])
	}
}
