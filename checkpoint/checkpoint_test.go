package checkpoint

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func openT(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t testing.TB) *Store {
	return openT(t, filepath.Join(t.TempDir(), "threadlift.db"))
}

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func msgs(keys ...string) []Message {
	var out []Message
	for i, k := range keys {
		out = append(out, Message{Key: k, Seq: i, Source: "a.mbox@" + strconv.Itoa(i*100)})
	}
	return out
}

func state(t testing.TB, s *Store, key string) Thread {
	t.Helper()
	th, found, err := s.Thread(context.Background(), key)
	if err != nil || !found {
		t.Fatalf("Thread(%q) = %v, %v", key, found, err)
	}
	return th
}

func TestOpenCreatesSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "dir", "cp.db")
	s, err := Open(ctx, path, Options{})
	ok(t, err)
	var version, appID int
	var mode string
	ok(t, s.db.QueryRow("PRAGMA user_version").Scan(&version))
	ok(t, s.db.QueryRow("PRAGMA application_id").Scan(&appID))
	ok(t, s.db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	var sync, fk int
	ok(t, s.db.QueryRow("PRAGMA synchronous").Scan(&sync))
	ok(t, s.db.QueryRow("PRAGMA foreign_keys").Scan(&fk))
	if version != schemaVersion || appID != applicationID || mode != "wal" || sync != 2 || fk != 1 {
		t.Errorf("user_version %d, application_id %#x, journal_mode %s, synchronous %d, foreign_keys %d", version, appID, mode, sync, fk)
	}
	ok(t, s.Register(ctx, Thread{Key: "t1", TicketID: 7}, msgs("m1")))
	ok(t, s.Close())
	// Reopen: no migration, data kept.
	s = openT(t, path)
	if th := state(t, s, "t1"); th.TicketID != 7 || th.State != Pending {
		t.Errorf("after reopen: %+v", th)
	}
}

// TestTransitions drives threads through sequences of calls and checks
// the state reached, or the refusal.
func TestTransitions(t *testing.T) {
	type step struct {
		name    string
		do      func(ctx context.Context, s *Store) error
		want    State // state after the step
		wantErr error
	}
	reg := func(st State) step {
		return step{"Register " + string(st), func(ctx context.Context, s *Store) error {
			return s.Register(ctx, Thread{Key: "t", TicketID: 1, State: st, EventsTotal: 3}, msgs("m1", "m2", "m3"))
		}, "", nil}
	}
	inflight := func(kind string, keys ...string) step {
		return step{"MarkInFlight " + kind, func(ctx context.Context, s *Store) error { return s.MarkInFlight(ctx, "t", kind, keys) }, InFlight, nil}
	}
	created := func(keys ...string) step {
		return step{"MarkCreated", func(ctx context.Context, s *Store) error { return s.MarkCreated(ctx, "t", "sc1", keys) }, Created, nil}
	}
	done := step{"MarkDone", func(ctx context.Context, s *Store) error { return s.MarkDone(ctx, "t") }, Done, nil}
	failed := step{"MarkFailed", func(ctx context.Context, s *Store) error {
		return s.MarkFailed(ctx, "t", Failure{Rule: "http", Reason: "500", HTTPStatus: 500})
	}, Failed, nil}
	rejected := step{"MarkRejected", func(ctx context.Context, s *Store) error {
		return s.MarkRejected(ctx, "t", Failure{Rule: "api_validation", Reason: "422", HTTPStatus: 422})
	}, Rejected, nil}
	retry := func(want State) step {
		return step{"Retry", func(ctx context.Context, s *Store) error { _, err := s.Retry(ctx); return err }, want, nil}
	}
	refused := func(st step) step { st.name += " (refused)"; st.want = ""; st.wantErr = ErrTransition; return st }
	with := func(st step, want State) step { st.want = want; return st }

	tests := []struct {
		name  string
		steps []step
	}{
		{"happy path", []step{with(reg(""), Pending), inflight(KindImport, "m1", "m2"), created("m1", "m2"),
			inflight(KindEventsImport, "m3"), created("m3"), done}},
		{"register keeps done", []step{with(reg(""), Pending), inflight(KindImport, "m1", "m2", "m3"), created("m1", "m2", "m3"), done,
			with(reg(Pending), Done), with(reg(Rejected), Done)}},
		{"register keeps created, in_flight, failed", []step{with(reg(""), Pending), inflight(KindImport, "m1"),
			with(reg(Pending), InFlight), created("m1"), with(reg(Pending), Created), failed, with(reg(Pending), Failed)}},
		{"rejected then valid", []step{with(reg(Rejected), Rejected), with(reg(Pending), Pending), with(reg(Rejected), Rejected)}},
		{"done gets new messages", []step{with(reg(""), Pending), inflight(KindImport, "m1", "m2", "m3"), created("m1", "m2", "m3"), done,
			step{"Register m4", func(ctx context.Context, s *Store) error {
				return s.Register(ctx, Thread{Key: "t", TicketID: 1, EventsTotal: 4}, msgs("m1", "m2", "m3", "m4"))
			}, Created, nil}, // not done while m4 waits: a crash now must not leave it looking complete
			inflight(KindEventsImport, "m4"), created("m4"), done}},
		{"failed before sending, retried", []step{with(reg(""), Pending), failed, retry(Pending), inflight(KindImport, "m1")}},
		{"failed after creation, retried", []step{with(reg(""), Pending), inflight(KindImport, "m1"), created("m1"),
			inflight(KindEventsImport, "m2"), failed, retry(Created), inflight(KindEventsImport, "m2")}},
		{"rejected by the API", []step{with(reg(""), Pending), inflight(KindImport, "m1"), rejected, refused(inflight(KindImport, "m1"))}},
		{"second import refused", []step{with(reg(""), Pending), inflight(KindImport, "m1"), created("m1"), refused(inflight(KindImport, "m2"))}},
		{"imported message never resent", []step{with(reg(""), Pending), inflight(KindImport, "m1"), created("m1"), refused(inflight(KindEventsImport, "m1", "m2"))}},
		{"events_import needs a side conversation", []step{with(reg(""), Pending), refused(inflight(KindEventsImport, "m1"))}},
		{"unknown message refused", []step{with(reg(""), Pending), refused(inflight(KindImport, "nope"))}},
		{"duplicate key in a request refused", []step{with(reg(""), Pending), refused(inflight(KindImport, "m1", "m1"))}},
		{"empty request refused", []step{with(reg(""), Pending), refused(inflight(KindImport))}},
		{"unknown kind refused", []step{with(reg(""), Pending), refused(inflight("delete", "m1"))}},
		{"created needs in_flight", []step{with(reg(""), Pending), refused(created("m1"))}},
		{"done needs created", []step{with(reg(""), Pending), refused(done), inflight(KindImport, "m1"), refused(done)}},
		{"done cannot fail", []step{with(reg(""), Pending), inflight(KindImport, "m1"), created("m1"), done, refused(failed), refused(rejected)}},
		{"rejected cannot be sent", []step{with(reg(Rejected), Rejected), refused(inflight(KindImport, "m1"))}},
		{"register: only pending or rejected", []step{refused(reg(Done)), refused(reg(InFlight))}},
		{"unregistered thread", []step{refused(inflight(KindImport, "m1")), refused(done), refused(failed)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			for i, st := range tt.steps {
				err := st.do(ctx, s)
				if tt := st.wantErr; tt != nil {
					if !errors.Is(err, tt) {
						t.Fatalf("step %d %s: err = %v, want %v", i, st.name, err, tt)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d %s: %v", i, st.name, err)
				}
				if st.want != "" {
					if got := state(t, s, "t").State; got != st.want {
						t.Fatalf("step %d %s: state %s, want %s", i, st.name, got, st.want)
					}
				}
			}
		})
	}
}

func TestAllowedMatchesDoc(t *testing.T) {
	for _, c := range []struct {
		from, to State
		want     bool
	}{
		{Done, Pending, false}, {Done, InFlight, true}, {Created, Pending, false}, {Failed, Pending, true},
		{Rejected, Pending, true}, {InFlight, Done, false}, {Created, Done, true}, {Done, Failed, false},
	} {
		if got := Allowed(c.from, c.to); got != c.want {
			t.Errorf("Allowed(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestRegisterNeverRegresses(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "t", TicketID: 10, Subject: "s1", Source: "a.mbox@0", EventsTotal: 2}, msgs("m1", "m2")))
	ok(t, s.MarkInFlight(ctx, "t", KindImport, []string{"m1"}))
	ok(t, s.MarkCreated(ctx, "t", "sc1", []string{"m1"}))

	// Run 2: the source says m1 is a duplicate/rejected and maps to another
	// ticket; none of that may undo what landed.
	ok(t, s.Register(ctx, Thread{Key: "t", TicketID: 99, State: Rejected, Rule: "x", Subject: "s2", Source: "b.mbox@5", EventsTotal: 3},
		[]Message{{Key: "m1", State: MessageRejected, Rule: "r"}, {Key: "m2", Seq: 1}, {Key: "m3", Seq: 2, State: MessageDuplicate}}))
	th := state(t, s, "t")
	want := Thread{Key: "t", TicketID: 10, State: Created, SideConversationID: "sc1", EventsTotal: 3, EventsDone: 1,
		Subject: "s2", Source: "b.mbox@5", Attempts: 1}
	if diff := cmp.Diff(want, th, cmpopts.IgnoreFields(Thread{}, "UpdatedAt")); diff != "" {
		t.Errorf("after re-register (-want +got):\n%s", diff)
	}
	imported, err := s.ImportedMessages(ctx, "t")
	ok(t, err)
	if diff := cmp.Diff(map[string]bool{"m1": true}, imported); diff != "" {
		t.Errorf("ImportedMessages (-want +got):\n%s", diff)
	}
	ms, err := s.Messages(ctx, "t")
	ok(t, err)
	var got []string
	for _, m := range ms {
		got = append(got, m.Key+":"+m.State)
	}
	if diff := cmp.Diff([]string{"m1:imported", "m2:pending", "m3:duplicate"}, got); diff != "" {
		t.Errorf("Messages (-want +got):\n%s", diff)
	}

	// A pending thread that was never sent follows the source's ticket.
	ok(t, s.Register(ctx, Thread{Key: "u", TicketID: 1}, msgs("x")))
	ok(t, s.Register(ctx, Thread{Key: "u", TicketID: 2}, msgs("x")))
	if th := state(t, s, "u"); th.TicketID != 2 {
		t.Errorf("pending thread ticket = %d, want 2", th.TicketID)
	}
	// Once a request may have landed, the ticket is kept.
	ok(t, s.MarkInFlight(ctx, "u", KindImport, []string{"x"}))
	ok(t, s.MarkFailed(ctx, "u", Failure{Reason: "timeout"}))
	_, err = s.Retry(ctx)
	ok(t, err)
	ok(t, s.Register(ctx, Thread{Key: "u", TicketID: 3}, msgs("x")))
	if th := state(t, s, "u"); th.TicketID != 2 || th.State != Pending || !th.Unresolved {
		t.Errorf("unresolved thread after re-register: %+v, want ticket 2 pending unresolved", th)
	}
}

func TestUnresolvedAndReconcile(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "t", TicketID: 1}, msgs("m1", "m2", "m3")))
	if _, found, err := s.LastAttempt(ctx, "t"); found || err != nil {
		t.Fatalf("LastAttempt before any = %v, %v", found, err)
	}
	ok(t, s.MarkInFlight(ctx, "t", KindImport, []string{"m1", "m2"}))
	if th := state(t, s, "t"); !th.Unresolved || th.Attempts != 1 {
		t.Fatalf("after MarkInFlight: %+v", th)
	}
	a, found, err := s.LastAttempt(ctx, "t")
	ok(t, err)
	if !found || a.Kind != KindImport || !cmp.Equal(a.MessageKeys, []string{"m1", "m2"}) || a.Outcome != OutcomeUnknown || a.StartedAt.IsZero() {
		t.Fatalf("LastAttempt = %+v", a)
	}
	// A timeout: the outcome is unknown, the thread stays unresolved.
	ok(t, s.MarkFailed(ctx, "t", Failure{Rule: "timeout", Reason: "context deadline exceeded"}))
	if th := state(t, s, "t"); !th.Unresolved || th.State != Failed {
		t.Fatalf("after timeout: %+v", th)
	}
	// Reconciliation found both messages under sc9.
	ok(t, s.MarkMessagesImported(ctx, "t", "sc9", []string{"m1", "m2"}))
	th := state(t, s, "t")
	if th.Unresolved || th.State != Created || th.SideConversationID != "sc9" || th.EventsDone != 2 || th.Reason != "" {
		t.Fatalf("after reconcile: %+v", th)
	}
	a, _, _ = s.LastAttempt(ctx, "t")
	if a.Outcome != OutcomeReconciled {
		t.Errorf("attempt outcome = %q, want reconciled", a.Outcome)
	}
	// Another side conversation for the same thread is refused.
	if err := s.MarkMessagesImported(ctx, "t", "sc10", []string{"m3"}); !errors.Is(err, ErrTransition) {
		t.Errorf("MarkMessagesImported(other sc) = %v, want ErrTransition", err)
	}
	// Events import, no answer, then nothing found on the ticket.
	ok(t, s.MarkInFlight(ctx, "t", KindEventsImport, []string{"m3"}))
	ok(t, s.MarkNotSent(ctx, "t"))
	if th := state(t, s, "t"); th.Unresolved || th.State != Created {
		t.Fatalf("after MarkNotSent: %+v", th)
	}
	// A definite refusal clears Unresolved.
	ok(t, s.MarkInFlight(ctx, "t", KindEventsImport, []string{"m3"}))
	ok(t, s.MarkFailed(ctx, "t", Failure{Rule: "http", Reason: "bad", HTTPStatus: 400, RequestID: "r1"}))
	th = state(t, s, "t")
	if th.Unresolved || th.HTTPStatus != 400 || th.RequestID != "r1" {
		t.Fatalf("after 400: %+v", th)
	}
	a, _, _ = s.LastAttempt(ctx, "t")
	if a.Outcome != OutcomeFailed || a.HTTPStatus != 400 || a.FinishedAt.IsZero() {
		t.Errorf("attempt after 400 = %+v", a)
	}
	// A new in-flight supersedes an open attempt.
	ok(t, s.Register(ctx, Thread{Key: "v", TicketID: 1}, msgs("x")))
	ok(t, s.MarkInFlight(ctx, "v", KindImport, []string{"x"}))
	ok(t, s.MarkInFlight(ctx, "v", KindImport, []string{"x"}))
	var superseded int
	ok(t, s.db.QueryRow("SELECT count(*) FROM attempts WHERE outcome = 'superseded'").Scan(&superseded))
	if superseded != 1 {
		t.Errorf("superseded attempts = %d, want 1", superseded)
	}
	ok(t, s.MarkNotSent(ctx, "v"))
	if th := state(t, s, "v"); th.State != Pending || th.Unresolved {
		t.Errorf("after MarkNotSent without side conversation: %+v", th)
	}
}

// TestCountsFailuresRetry: what status, failures and retry read from a
// checkpoint holding a done thread (with a rejected message), a failed
// one, a rejected one and two unreadable records.
func TestCountsFailuresRetry(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *Store {
		t.Helper()
		s := newStore(t)
		// Bulk register: 2 pending, 1 rejected, 2 unreadable records.
		ok(t, s.RegisterBatch(ctx, []Registration{
			{Thread: Thread{Key: "a", TicketID: 1, Source: "a.mbox@0"}, Messages: []Message{
				{Key: "a1", Source: "a.mbox@0"}, {Key: "a2", Seq: 1, State: MessageRejected, Rule: "no_date", Reason: "no usable date", Source: "a.mbox@500"}}},
			{Thread: Thread{Key: "b", TicketID: 2, Source: "a.mbox@900"}, Messages: msgs("b1", "b2")},
			{Thread: Thread{Key: "c", State: Rejected, Rule: "unmapped", Reason: "no ticket", Source: "x.csv:4"}, Messages: []Message{
				{Key: "c1", State: MessageDuplicate}}},
			{Thread: Thread{Key: "", State: Rejected, Rule: "csv", Reason: "wrong column count", Source: "x.csv:9"}},
			{Thread: Thread{Key: "", State: Rejected, Rule: "csv", Reason: "unterminated quote", Source: "x.csv:12"}},
		}))
		ok(t, s.MarkInFlight(ctx, "a", KindImport, []string{"a1"}))
		ok(t, s.MarkCreated(ctx, "a", "sc-a", []string{"a1"}))
		ok(t, s.MarkDone(ctx, "a"))
		ok(t, s.MarkInFlight(ctx, "b", KindImport, []string{"b1", "b2"}))
		ok(t, s.MarkFailed(ctx, "b", Failure{Rule: "http", Reason: "server error", HTTPStatus: 503, RequestID: "req-1", Excerpt: "oops"}))
		return s
	}

	t.Run("Counts", func(t *testing.T) {
		c, err := setup(t).Counts(ctx)
		ok(t, err)
		want := Counts{
			Threads:  map[State]int{Pending: 0, InFlight: 0, Created: 0, Done: 1, Failed: 1, Rejected: 3},
			Messages: MessageCounts{Imported: 1, Rejected: 1, Pending: 2, Duplicate: 1},
		}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})

	t.Run("Failures", func(t *testing.T) {
		fs, err := setup(t).Failures(ctx)
		ok(t, err)
		want := []FailureRecord{
			{ThreadKey: "a", MessageKey: "a2", TicketID: 1, State: Rejected, Rule: "no_date", Reason: "no usable date", Source: "a.mbox@500"},
			{ThreadKey: "b", TicketID: 2, State: Failed, Rule: "http", Reason: "server error", HTTPStatus: 503, RequestID: "req-1", Excerpt: "oops", Source: "a.mbox@900"},
			{ThreadKey: "c", State: Rejected, Rule: "unmapped", Reason: "no ticket", Source: "x.csv:4"},
			{ThreadKey: "", State: Rejected, Rule: "csv", Reason: "wrong column count", Source: "x.csv:9"},
			{ThreadKey: "", State: Rejected, Rule: "csv", Reason: "unterminated quote", Source: "x.csv:12"},
		}
		if diff := cmp.Diff(want, fs); diff != "" {
			t.Errorf("Failures (-want +got):\n%s", diff)
		}
	})

	t.Run("an unreadable record registered again adds no row", func(t *testing.T) {
		s := setup(t)
		ok(t, s.Register(ctx, Thread{Key: "", State: Rejected, Rule: "csv", Reason: "wrong column count", Source: "x.csv:9"}, nil))
		if c, _ := s.Counts(ctx); c.Threads[Rejected] != 3 {
			t.Errorf("rejected after re-register = %d, want 3", c.Threads[Rejected])
		}
		threads, err := s.Threads(ctx)
		ok(t, err)
		if _, found := threads[""]; found || len(threads) != 3 {
			t.Errorf("Threads() = %d threads (empty key present: %v), want a, b, c", len(threads), found)
		}
	})

	t.Run("Retry", func(t *testing.T) {
		s := setup(t)
		n, err := s.Retry(ctx)
		ok(t, err)
		if n != 1 {
			t.Errorf("Retry = %d, want 1", n)
		}
		b := state(t, s, "b")
		if b.State != Pending || b.Attempts != 0 || b.Reason != "" || b.HTTPStatus != 0 || !b.Unresolved {
			t.Errorf("after Retry: %+v, want pending, attempts 0, reason cleared, still unresolved (503)", b)
		}
		if n, _ := s.Retry(ctx); n != 0 {
			t.Errorf("second Retry = %d, want 0", n)
		}
	})
}

func TestLastRun(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	got, err := s.LastRun(ctx)
	if got != nil || err != nil {
		t.Fatalf("LastRun on a new store = %q, %v; want nil, nil", got, err)
	}
	ok(t, s.SaveRun(ctx, []byte(`{"threads_total":1}`)))
	ok(t, s.SaveRun(ctx, []byte(`{"threads_total":2,"imported":2}`)))
	got, err = s.LastRun(ctx)
	ok(t, err)
	if string(got) != `{"threads_total":2,"imported":2}` {
		t.Errorf("LastRun = %s", got)
	}
	if err := s.SaveRun(ctx, []byte("{not json")); err == nil {
		t.Error("SaveRun(invalid JSON) = nil error")
	}
}

func TestLockSecondOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	a, err := Open(ctx, path, Options{})
	ok(t, err)
	ok(t, a.Lock()) // idempotent
	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Errorf("ErrLocked message %q does not name the holder's pid", err)
	}
	ok(t, a.Close())
	b, err := Open(ctx, path, Options{})
	ok(t, err)
	ok(t, b.Lock())
	ok(t, b.Close())
}

func TestReadOnlyWhileLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	if _, err := Open(ctx, path, Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadOnly Open of a missing file = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadOnly Open created the file")
	}
	w := openT(t, path)
	ok(t, w.Register(ctx, Thread{Key: "t", TicketID: 1}, msgs("m")))

	r, err := Open(ctx, path, Options{ReadOnly: true})
	ok(t, err)
	defer r.Close()
	c, err := r.Counts(ctx)
	ok(t, err)
	if c.Threads[Pending] != 1 {
		t.Errorf("reader Counts = %+v", c)
	}
	// The writer goes on while the reader is open, and the reader sees it.
	ok(t, w.MarkInFlight(ctx, "t", KindImport, []string{"m"}))
	if th, _, _ := r.Thread(ctx, "t"); th.State != InFlight {
		t.Errorf("reader sees %s, want in_flight", th.State)
	}
	if err := r.MarkDone(ctx, "t"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write on a read-only store = %v", err)
	}
	if err := r.Lock(); err == nil {
		t.Error("Lock on a read-only store = nil error")
	}
	// With no writer at all (WAL folded back, -wal/-shm gone).
	ok(t, r.Close())
	ok(t, w.Close())
	r2, err := Open(ctx, path, Options{ReadOnly: true})
	ok(t, err)
	defer r2.Close()
	if th, found, err := r2.Thread(ctx, "t"); err != nil || !found || th.State != InFlight {
		t.Errorf("reader without writer: %+v, %v, %v", th, found, err)
	}
}

func TestUnusable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		ok(t, os.WriteFile(p, data, 0o644))
		return p
	}
	sqliteDB := func(name string, stmts ...string) string {
		p := filepath.Join(dir, name)
		db, err := sql.Open("sqlite", p)
		ok(t, err)
		for _, st := range stmts {
			_, err := db.Exec(st)
			ok(t, err)
		}
		ok(t, db.Close())
		return p
	}
	// A real checkpoint with enough rows to span many pages, then
	// damaged in the middle.
	damaged := filepath.Join(dir, "damaged.db")
	{
		s, err := Open(ctx, damaged, Options{})
		ok(t, err)
		var regs []Registration
		for i := range 2000 {
			regs = append(regs, Registration{Thread: Thread{Key: fmt.Sprintf("thread-%d@example.com", i), Subject: strings.Repeat("x", 100)}, Messages: msgs("m")})
		}
		ok(t, s.RegisterBatch(ctx, regs))
		ok(t, s.Close())
		data, err := os.ReadFile(damaged)
		ok(t, err)
		for i := 4096 * 3; i < len(data)-4096; i += 4096 {
			copy(data[i:i+200], []byte(strings.Repeat("\xff", 200)))
		}
		ok(t, os.WriteFile(damaged, data, 0o644))
	}

	tests := []struct {
		name string
		path string
		want string
	}{
		{"text file", write("notes.txt", []byte(strings.Repeat("this is not a database\n", 100))), ""},
		{"short garbage", write("short.db", []byte("garbage")), ""},
		{"newer schema", sqliteDB("newer.db", "PRAGMA application_id = 1414284884", "PRAGMA user_version = 99", "CREATE TABLE x (a)"), "newer threadlift"},
		{"other application", sqliteDB("other.db", "CREATE TABLE customers (id INTEGER)"), "not a threadlift checkpoint"},
		{"other application id", sqliteDB("otherid.db", "PRAGMA application_id = 42", "CREATE TABLE t (a)"), "another application"},
		{"damaged pages", damaged, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, ro := range []bool{false, true} {
				s, err := Open(ctx, tt.path, Options{ReadOnly: ro})
				if err == nil {
					s.Close()
					t.Fatalf("Open(%s, ReadOnly %v) = nil error, want ErrUnusable", tt.name, ro)
				}
				t.Logf("ReadOnly %v: %v", ro, err)
				if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Open(%s, ReadOnly %v) = %v, want ErrUnusable containing %q", tt.name, ro, err, tt.want)
				}
			}
		})
	}
	// A failed Open releases the lock.
	p := write("again.db", []byte("garbage"))
	Open(ctx, p, Options{})
	ok(t, os.Remove(p))
	s, err := Open(ctx, p, Options{})
	ok(t, err)
	s.Close()
}

// lockHelperEnv makes the test binary act as a run that holds the lock:
// see TestLockHelperProcess.
const lockHelperEnv = "THREADLIFT_CHECKPOINT_LOCK_HELPER"

// TestLockHelperProcess is not a test: re-executed by
// TestLockReleasedWhenHolderDies, it opens the checkpoint, records an
// import as created, prints "locked" and sleeps until killed.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv(lockHelperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	s, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	must := func(err error) {
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	must(s.Register(ctx, Thread{Key: "t", TicketID: 1}, msgs("m1", "m2")))
	must(s.MarkInFlight(ctx, "t", KindImport, []string{"m1"}))
	must(s.MarkCreated(ctx, "t", "sc1", []string{"m1"}))
	must(s.MarkInFlight(ctx, "t", KindEventsImport, []string{"m2"}))
	fmt.Println("locked")
	time.Sleep(time.Minute)
	os.Exit(2)
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	ok(t, err)
	ok(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper said %q, %v", line, err)
	}

	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "process "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("Open while the helper holds the lock = %v, want ErrLocked naming pid %d", err, cmd.Process.Pid)
	}
	// A reader can look while the helper holds the lock.
	r, err := Open(ctx, path, Options{ReadOnly: true})
	ok(t, err)
	if th, _, _ := r.Thread(ctx, "t"); th.State != InFlight {
		t.Errorf("reader sees %+v", th)
	}
	r.Close()

	ok(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()

	s := openT(t, path) // the kernel released the lock
	th := state(t, s, "t")
	if th.State != InFlight || th.SideConversationID != "sc1" || th.EventsDone != 1 || !th.Unresolved {
		t.Errorf("after SIGKILL: %+v, want in_flight with sc1, 1 event done, unresolved", th)
	}
	a, _, err := s.LastAttempt(ctx, "t")
	ok(t, err)
	if a.Kind != KindEventsImport || !cmp.Equal(a.MessageKeys, []string{"m2"}) || a.Outcome != OutcomeUnknown {
		t.Errorf("LastAttempt after SIGKILL = %+v", a)
	}
}

func TestPathWithSpecialCharacters(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a dir?#%", "cp&mode=ro.db")
	s := openT(t, path)
	ok(t, s.Register(ctx, Thread{Key: "t"}, msgs("m")))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("checkpoint not at %s: %v", path, err)
	}
}

func registrations(n int) []Registration {
	regs := make([]Registration, n)
	for i := range regs {
		k := fmt.Sprintf("<thread-%07d@lists.example.com>", i)
		regs[i] = Registration{
			Thread: Thread{Key: k, TicketID: int64(i%5000 + 1), Subject: "Re: [#1234] printer on fire", Source: fmt.Sprintf("archive/2019.mbox@%d", i*4096), EventsTotal: 3},
			Messages: []Message{
				{Key: k, Seq: 0, Source: fmt.Sprintf("archive/2019.mbox@%d", i*4096)},
				{Key: fmt.Sprintf("<r1-%07d@example.com>", i), Seq: 1},
				{Key: fmt.Sprintf("<r2-%07d@example.com>", i), Seq: 2},
			},
		}
	}
	return regs
}

// BenchmarkRegister100k registers 100k threads (3 messages each) in one
// RegisterBatch, then reads them back with Threads.
func BenchmarkRegister100k(b *testing.B) {
	ctx := context.Background()
	regs := registrations(100_000)
	for b.Loop() {
		b.StopTimer()
		s := openT(b, filepath.Join(b.TempDir(), "cp.db"))
		b.StartTimer()
		start := time.Now()
		ok(b, s.RegisterBatch(ctx, regs))
		reg := time.Since(start)
		start = time.Now()
		threads, err := s.Threads(ctx)
		ok(b, err)
		read := time.Since(start)
		if len(threads) != 100_000 {
			b.Fatalf("Threads() = %d", len(threads))
		}
		// Re-registering (the next run's planner) updates every row.
		start = time.Now()
		ok(b, s.RegisterBatch(ctx, regs))
		rereg := time.Since(start)
		b.ReportMetric(reg.Seconds(), "register-s")
		b.ReportMetric(read.Seconds(), "threads-read-s")
		b.ReportMetric(rereg.Seconds(), "reregister-s")
	}
}

// BenchmarkDurableWrite measures one durable single-row transaction
// (MarkInFlight + MarkCreated for one thread = 2 commits per op).
func BenchmarkDurableWrite(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	regs := registrations(b.N)
	ok(b, s.RegisterBatch(ctx, regs))
	b.ResetTimer()
	for i := range b.N {
		k := regs[i].Thread.Key
		ok(b, s.MarkInFlight(ctx, k, KindImport, []string{k}))
		ok(b, s.MarkCreated(ctx, k, "sc", []string{k}))
	}
}

// TestQueriesUseIndexes guards against full scans per thread (a partial
// index is only used when the query repeats its WHERE term).
func TestQueriesUseIndexes(t *testing.T) {
	s := newStore(t)
	queries := []string{
		"SELECT " + threadColumns + " FROM threads WHERE key = ? AND key <> ''",
		"SELECT id, state, side_conversation_id, unresolved FROM threads WHERE key = '' AND source = ?",
		`SELECT m.key FROM messages m JOIN threads t ON t.id = m.thread_id WHERE t.key = ? AND t.key <> '' AND m.state = 'imported'`,
		`SELECT a.id FROM attempts a JOIN threads t ON t.id = a.thread_id WHERE t.key = ? AND t.key <> '' ORDER BY a.id DESC LIMIT 1`,
		// Parts, once per thread of an import, and RecordTicket.
		sqlPartsOwn, sqlParts, sqlPartCreated, sqlTicketRows, sqlTicketMessages,
	}
	for _, q := range hotStatements() {
		switch q {
		case sqlBegin, sqlCommit, sqlRollback, sqlSavepoint, sqlRelease, sqlRollbackTo:
		default:
			queries = append(queries, q)
		}
	}
	for _, q := range queries {
		args := make([]any, strings.Count(q, "?"))
		for i := range args {
			args[i] = "k"
		}
		if strings.Contains(q, "json_each") {
			args[0] = `["k"]`
		}
		rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, args...)
		ok(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			ok(t, rows.Scan(&id, &parent, &notused, &detail))
			plan = append(plan, detail)
		}
		rows.Close()
		if q == sqlParts && !strings.Contains(strings.Join(plan, "; "), "INDEX messages_key") {
			t.Errorf("Parts does not find messages by key: %v", plan)
		}
		for _, p := range plan {
			if strings.HasPrefix(p, "SCAN ") && !strings.HasPrefix(p, "SCAN json_each") {
				t.Errorf("query %q scans: %v", q, plan)
			}
		}
	}
}

func TestUploads(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	ok(t, s.Register(ctx, Thread{Key: "t"}, msgs("m1", "m2")))
	ok(t, s.RecordUpload(ctx, "t", Upload{MessageKey: "m1", Index: 0, AttachmentID: "a1", Name: "x.pdf", Size: 3}))
	ok(t, s.RecordUpload(ctx, "t", Upload{MessageKey: "m1", Index: 1, AttachmentID: "a2"}))
	ok(t, s.RecordUpload(ctx, "t", Upload{MessageKey: "m1", Index: 0, AttachmentID: "a3", Name: "x.pdf", Size: 3}))
	got, err := s.Uploads(ctx, "t")
	ok(t, err)
	if len(got["m1"]) != 2 || got["m1"][0].AttachmentID != "a3" || got["m1"][1].AttachmentID != "a2" || got["m1"][0].UploadedAt.IsZero() {
		t.Errorf("Uploads = %+v, want a3 (replaced) and a2 with times", got)
	}
	if err := s.RecordUpload(ctx, "nope", Upload{MessageKey: "m"}); err == nil {
		t.Errorf("RecordUpload for an unknown thread: no error")
	}
}

// BenchmarkNewThreadWrites measures the durable writes of new
// single-request threads as an import makes them: RegisterInFlight before
// the request, carrying the previous thread's answer (MarkCreatedDone)
// with it (answer=carried), or the answer recorded on its own right
// after the request (answer=own); with 1 writer, and with 8, an import's
// default workers, whose writes the committer groups; into a new
// checkpoint, and into one that holds 100k threads already (known=100k:
// the indexes' leaves a write meets are then spread over the file, as in
// a real run). Per thread (one request), after the store is closed so
// that its last WAL checkpoint counts, on Linux: write-B/op, the bytes
// written (the WAL's frames and the copies back into the file), and
// dirty-B/op, the page-cache bytes dirtied (see diskWrites).
func BenchmarkNewThreadWrites(b *testing.B) {
	for _, bc := range []struct {
		writers int
		carried bool
		known   int
	}{{1, true, 0}, {1, false, 0}, {8, true, 0}, {8, false, 0}, {8, true, 100_000}} {
		answer := map[bool]string{true: "carried", false: "own"}[bc.carried]
		writers := bc.writers
		name := fmt.Sprintf("writers=%d/answer=%s", writers, answer)
		if bc.known > 0 {
			name += fmt.Sprintf("/known=%dk", bc.known/1000)
		}
		open := func(b *testing.B) *Store { return newStore(b) }
		if bc.known > 0 {
			open = knownStore(b, bc.known)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s := open(b)
			regs := registrations(bc.known + b.N)[bc.known:]
			for i := range regs {
				regs[i].Messages = regs[i].Messages[:1]
			}
			next := make(chan Registration, len(regs))
			for _, r := range regs {
				next <- r
			}
			close(next)
			b.ResetTimer()
			cpu0 := cpuTime()
			wchar0, dirtied0 := diskWrites()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					var prev *Completion
					for r := range next {
						k := r.Thread.Key
						if err := s.RegisterInFlight(ctx, prev, r, KindImport, []string{k}); err != nil {
							b.Error(err)
							return
						}
						prev = &Completion{Key: k, SideConversationID: "sc", MessageKeys: []string{k}}
						if !bc.carried {
							if err := s.Complete(ctx, *prev); err != nil {
								b.Error(err)
								return
							}
							prev = nil
						}
					}
					if prev != nil {
						if err := s.MarkCreatedDone(ctx, prev.Key, prev.SideConversationID, prev.MessageKeys); err != nil {
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			// fsync is system CPU time here, and the process shares the
			// machine: CPU per thread is the steadier figure.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			ok(b, s.Close())
			if wchar, dirtied := diskWrites(); wchar0 >= 0 {
				b.ReportMetric(float64(wchar-wchar0)/float64(b.N), "write-B/op")
				b.ReportMetric(float64(dirtied-dirtied0)/float64(b.N), "dirty-B/op")
			}
		})
	}
}

// knownStore writes, in a folder of parent's, a checkpoint that holds
// the first n threads of registrations(n), and returns a function that
// opens a copy of it for one benchmark.
func knownStore(parent *testing.B, n int) func(b *testing.B) *Store {
	var once sync.Once
	tmpl := filepath.Join(parent.TempDir(), "known.db")
	return func(b *testing.B) *Store {
		b.Helper()
		once.Do(func() {
			s := openT(b, tmpl)
			regs := registrations(n)
			for i := 0; i < n; i += 20_000 {
				ok(b, s.RegisterBatch(context.Background(), regs[i:min(i+20_000, n)]))
			}
			ok(b, s.Close())
		})
		data, err := os.ReadFile(tmpl)
		ok(b, err)
		path := filepath.Join(b.TempDir(), "threadlift.db")
		ok(b, os.WriteFile(path, data, 0o644))
		return openT(b, path)
	}
}

func TestUpsertMessageStatement(t *testing.T) {
	if got := messageUpsert(1); got != sqlUpsertMessage {
		t.Errorf("messageUpsert(1) = %q, want sqlUpsertMessage %q", got, sqlUpsertMessage)
	}
}
