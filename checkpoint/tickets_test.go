package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeysHash(t *testing.T) {
	a := KeysHash([]string{"b", "a", "c", "a"})
	if a != KeysHash([]string{"a", "b", "c"}) || len(a) != 32 {
		t.Errorf("KeysHash depends on order or repeats: %s", a)
	}
	for _, other := range [][]string{{"a", "b"}, {"a", "b", "c", "d"}, {"ab", "c"}, nil} {
		if KeysHash(other) == a {
			t.Errorf("KeysHash(%q) = KeysHash(a b c)", other)
		}
	}
}

func TestNormalizeAccount(t *testing.T) {
	for in, want := range map[string]string{
		"https://ACME.zendesk.com/":             "https://acme.zendesk.com",
		"https://acme.zendesk.com:443/api/v2":   "https://acme.zendesk.com",
		"https://user:pass@acme.zendesk.com":    "https://acme.zendesk.com",
		"http://127.0.0.1:8089":                 "http://127.0.0.1:8089",
		" https://acme.zendesk.com?x=1 ":        "https://acme.zendesk.com",
		"https://[::1]:8443/":                   "https://[::1]:8443",
		"https://acme.zendesk.com/#fragment":    "https://acme.zendesk.com",
		"https://other.zendesk.com":             "https://other.zendesk.com",
		"http://acme.zendesk.com:80/anything/x": "http://acme.zendesk.com",
	} {
		if got := NormalizeAccount(in); got != want {
			t.Errorf("NormalizeAccount(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBeginRun walks a checkpoint through runs: new, clean, killed,
// another account.
func TestBeginRun(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	s := openT(t, path)
	r, err := s.BeginRun(ctx, "https://acme.zendesk.com/")
	ok(t, err)
	if !r.New || !r.Trusted || r.Unclean || r.Generation != 1 {
		t.Errorf("first run: %+v, want new, trusted, generation 1", r)
	}
	newThread(t, s, "t1")
	ok(t, s.Close())

	s = openT(t, path)
	r, err = s.BeginRun(ctx, "https://ACME.zendesk.com")
	ok(t, err)
	if r.New || !r.Trusted || r.Unclean || r.Generation != 2 {
		t.Errorf("after a clean run: %+v, want trusted, generation 2", r)
	}
	// Killed: the store is not closed. The file says "not clean".
	killed := filepath.Join(t.TempDir(), "copy.db")
	data, err := os.ReadFile(path)
	ok(t, err)
	ok(t, os.WriteFile(killed, data, 0o644)) // the main file alone, mid-run
	ok(t, s.Close())

	c := openT(t, killed)
	r, err = c.BeginRun(ctx, "https://acme.zendesk.com")
	ok(t, err)
	if r.Trusted || !r.Unclean || len(r.Vouched) != 0 {
		t.Errorf("a copy of the main file taken during a run: %+v, want not trusted, unclean", r)
	}
	if _, err := c.RecordTicket(ctx, 7, nil); err != nil {
		t.Fatal(err)
	}
	ok(t, c.Close())
	c = openT(t, killed)
	r, err = c.BeginRun(ctx, "https://acme.zendesk.com")
	ok(t, err)
	if r.Trusted || r.Unclean || !r.Vouched[7] || len(r.Vouched) != 1 {
		t.Errorf("after a clean run that looked ticket 7 up: %+v, want still not trusted, ticket 7 vouched", r)
	}
	ok(t, c.Close())

	s = openT(t, path)
	if _, err := s.BeginRun(ctx, "https://other.zendesk.com"); !errors.Is(err, ErrOtherAccount) {
		t.Errorf("BeginRun on another account = %v, want ErrOtherAccount", err)
	}
}

// TestBeginRunFoldsTheMark: right after BeginRun the main file alone says
// "not clean"; after Close it holds everything and says clean.
func TestBeginRunFoldsTheMark(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	s := openT(t, path)
	_, err := s.BeginRun(ctx, "")
	ok(t, err)
	ok(t, s.Close())
	s = openT(t, path)
	_, err = s.BeginRun(ctx, "")
	ok(t, err)
	mainOnly := func() (clean bool, threads int) {
		t.Helper()
		dir := t.TempDir()
		data, err := os.ReadFile(path)
		ok(t, err)
		ok(t, os.WriteFile(filepath.Join(dir, "x.db"), data, 0o644))
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "x.db")+"?mode=ro")
		ok(t, err)
		defer db.Close()
		ok(t, db.QueryRow("SELECT clean FROM meta").Scan(&clean))
		ok(t, db.QueryRow("SELECT count(*) FROM threads").Scan(&threads))
		return clean, threads
	}
	if clean, _ := mainOnly(); clean {
		t.Errorf("the main file alone says clean during a run")
	}
	newThread(t, s, "t1")
	ok(t, s.Close())
	if clean, n := mainOnly(); !clean || n != 1 {
		t.Errorf("after Close, the main file alone: clean %v, %d threads; want clean and the thread", clean, n)
	}
}

// TestUpgradeFromVersion2 opens a version 2 checkpoint: done threads get
// their keys' hash (a pending message leaves it empty), and the last run
// counts as clean unless the -wal held frames.
func TestUpgradeFromVersion2(t *testing.T) {
	for _, walFrames := range []bool{false, true} {
		t.Run(fmt.Sprintf("wal=%v", walFrames), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "v2.db")
			db, err := sql.Open("sqlite", "file:"+path)
			ok(t, err)
			for v := range 2 {
				_, err := db.Exec(migrations[v])
				ok(t, err)
			}
			_, err = db.Exec(fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = 2;
				INSERT INTO threads (id, key, state, created_at, updated_at) VALUES (1, 'done', 'done', 'x', 'x'), (2, 'half', 'done', 'x', 'x'), (3, 'open', 'pending', 'x', 'x');
				INSERT INTO messages (thread_id, key, state, updated_at) VALUES (1, 'b', 'imported', 'x'), (1, 'a', 'rejected', 'x'),
					(2, 'c', 'imported', 'x'), (2, 'd', 'pending', 'x'), (3, 'e', 'pending', 'x');`, applicationID))
			ok(t, err)
			ok(t, db.Close())
			if walFrames {
				ok(t, os.WriteFile(path+"-wal", []byte("frames of a run that did not end"), 0o644))
			}
			s := openT(t, path)
			r, err := s.Resume(ctx)
			ok(t, err)
			if d := cmp.Diff(map[string]string{"done": KeysHash([]string{"a", "b"}), "half": ""}, doneOf(r.Done, "done", "half", "nope")); d != "" {
				t.Errorf("Resume().Done after the upgrade (-want +got):\n%s", d)
			}
			run, err := s.BeginRun(ctx, "")
			ok(t, err)
			if run.New || run.Trusted == walFrames || run.Unclean != walFrames {
				t.Errorf("first run after the upgrade: %+v; want trusted %v", run, !walFrames)
			}
		})
	}
}

// ticketOf registers thread key on ticket with messages and imports the
// first n of them in side conversation sc (n = 0: nothing sent).
func ticketOf(t *testing.T, s *Store, ticket int64, key, sc string, n int, keys ...string) {
	t.Helper()
	ctx := context.Background()
	ok(t, s.Register(ctx, Thread{Key: key, TicketID: ticket, EventsTotal: len(keys)}, msgs(keys...)))
	if n > 0 {
		ok(t, s.MarkInFlight(ctx, key, KindImport, keys[:n]))
		ok(t, s.MarkCreated(ctx, key, sc, keys[:n]))
	}
}

func TestParts(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ticketOf(t, s, 5, "b1", "sc-b", 2, "b1", "b2")
	ticketOf(t, s, 5, "a1", "sc-a", 2, "a1", "a2")
	ticketOf(t, s, 5, "p", "", 0, "p1", "a2x")
	ticketOf(t, s, 6, "other", "sc-o", 1, "a1") // same key, other ticket
	own, parts, _, err := s.Parts(ctx, 5, "x", []string{"a1", "b2", "p1", "zz"})
	ok(t, err)
	if own != nil {
		t.Errorf("own = %+v, want nil (no thread x)", own)
	}
	var got []string
	for _, p := range parts {
		got = append(got, fmt.Sprintf("%s %s %v", p.Key, p.SideConversationID, p.Messages))
	}
	// b1's side conversation was created first, then a1's; p has none.
	want := []string{"b1 sc-b map[b2:imported]", "a1 sc-a map[a1:imported]", "p  map[p1:pending]"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Parts (-want +got):\n%s", d)
	}
	own, _, _, err = s.Parts(ctx, 5, "a1", []string{"a2"})
	ok(t, err)
	if own == nil || own.Key != "a1" || own.Messages["a2"] != MessageImported {
		t.Errorf("own = %+v, want a1 holding a2", own)
	}
}

// TestRecordTicket: what a listing shows is recorded under the rows of
// the thread keys, unknown keys are told, unresolved requests resolved.
func TestRecordTicket(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ticketOf(t, s, 5, "a", "sc-a", 1, "a1", "a2")
	// b's import left in flight; it landed.
	ticketOf(t, s, 5, "b", "", 0, "b1")
	ok(t, s.MarkInFlight(ctx, "b", KindImport, []string{"b1"}))
	// c's in flight too; it did not land.
	ticketOf(t, s, 5, "c", "", 0, "c1")
	ok(t, s.MarkInFlight(ctx, "c", KindImport, []string{"c1"}))

	rec, err := s.RecordTicket(ctx, 5, []ListedConversation{
		{ID: "sc-a", ThreadKey: "a", MessageKeys: []string{"a1"}},
		{ID: "sc-b", ThreadKey: "b", MessageKeys: []string{"b1"}},
		{ID: "sc-agent", MessageKeys: []string{"whatever"}},
	})
	ok(t, err)
	if rec.UnknownCount != 0 {
		t.Errorf("a listing the checkpoint explains: unknown %v", rec.Unknown)
	}
	if b := state(t, s, "b"); b.State != Created || b.SideConversationID != "sc-b" || b.Unresolved || b.EventsDone != 1 {
		t.Errorf("b after the listing: %+v, want created in sc-b", b)
	}
	if c := state(t, s, "c"); c.State != Pending || c.Unresolved {
		t.Errorf("c after the listing: %+v, want pending, resolved", c)
	}

	// A stale checkpoint: a2 landed in a, a new thread d exists.
	rec, err = s.RecordTicket(ctx, 5, []ListedConversation{
		{ID: "sc-a", ThreadKey: "a", MessageKeys: []string{"a1", "a2"}},
		{ID: "sc-d", ThreadKey: "d", MessageKeys: []string{"d1"}},
	})
	ok(t, err)
	if rec.UnknownCount != 3 {
		t.Errorf("unknown %d %v, want 3 (a2, d's side conversation, d1)", rec.UnknownCount, rec.Unknown)
	}
	own, parts, _, err := s.Parts(ctx, 5, "d", []string{"a2", "d1"})
	ok(t, err)
	// d, found on the ticket, sorts after a, which this checkpoint created.
	if own == nil || own.SideConversationID != "sc-d" || len(parts) != 2 || parts[0].Messages["a2"] != MessageImported {
		t.Errorf("after recording: own %+v, parts %+v", own, parts)
	}
	if v, err := s.Vouched(ctx, 5); err != nil || !v {
		t.Errorf("ticket 5 vouched = %v, %v; want true", v, err)
	}
}

// TestJoin: a joined thread's messages not imported anywhere go to the
// target; rows never sent are absorbed; counts stay honest.
func TestJoin(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ticketOf(t, s, 5, "a", "sc-a", 2, "a1", "a2")
	ticketOf(t, s, 5, "b", "sc-b", 1, "b1", "b2") // b2 never sent
	ticketOf(t, s, 5, "p", "", 0, "p1")           // never sent
	reg := Registration{Thread: Thread{Key: "b", TicketID: 5, EventsTotal: 6}, Messages: msgs("a1", "a2", "b1", "b2", "p1", "x")}
	ok(t, s.Join(ctx, 5, "a", reg))
	_, parts, _, err := s.Parts(ctx, 5, "b", []string{"a1", "a2", "b1", "b2", "p1", "x"})
	ok(t, err)
	var got []string
	for _, p := range parts {
		got = append(got, fmt.Sprintf("%s %s %v", p.Key, p.State, p.Messages))
	}
	want := []string{"a created map[a1:imported a2:imported b2:pending p1:pending x:pending]", "b done map[b1:imported]"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("after Join (-want +got):\n%s", d)
	}
	if _, found, _ := s.Thread(ctx, "p"); found {
		t.Errorf("thread p, never sent, still has a row after being absorbed")
	}
	ok(t, s.MarkInFlight(ctx, "a", KindEventsImport, []string{"b2", "p1", "x"}))
	ok(t, s.Complete(ctx, Completion{Key: "a", SideConversationID: "sc-a", MessageKeys: []string{"b2", "p1", "x"}}))
	ok(t, s.MarkJoinedDone(ctx, Thread{Key: "b", TicketID: 5, EventsTotal: 6}, "a", KeysHash([]string{"a1", "a2", "b1", "b2", "p1", "x"})))
	c, err := s.Counts(ctx)
	ok(t, err)
	if c.Threads[Done] != 2 || c.Messages.Imported != 6 || c.Messages.Pending != 0 {
		t.Errorf("counts after the join: %+v, want 2 done threads, 6 messages imported once", c)
	}
	r, err := s.Resume(ctx)
	ok(t, err)
	if h, _ := r.Done.Lookup("b"); h != KeysHash([]string{"x", "p1", "b2", "b1", "a2", "a1"}) {
		t.Errorf("Resume().Done[b] = %q, want the joined thread's keys", h)
	}
	if err := s.Join(ctx, 5, "nope", reg); !errors.Is(err, ErrTransition) {
		t.Errorf("Join into a thread without side conversation = %v, want ErrTransition", err)
	}
}

// BenchmarkParts measures the lookup an import makes for every thread it
// sends, under the ticket's lock, before its first write: on a new
// checkpoint (it finds nothing) and on one holding 100k threads of 3
// messages over 5,000 tickets (it finds the thread's own row).
func BenchmarkParts(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			s := newStore(b)
			regs := registrations(n)
			if n > 0 {
				ok(b, s.RegisterBatch(ctx, regs))
			}
			keys := make([][]string, 1000)
			for i := range keys {
				keys[i] = []string{fmt.Sprintf("<thread-%07d@lists.example.com>", i*7), fmt.Sprintf("<r1-%07d@example.com>", i*7), fmt.Sprintf("<r2-%07d@example.com>", i*7)}
			}
			b.ResetTimer()
			i := 0
			for b.Loop() {
				j := i % len(keys)
				k := keys[j]
				own, parts, _, err := s.Parts(ctx, int64((j*7)%5000+1), k[0], k)
				if err != nil {
					b.Fatal(err)
				}
				if n > 0 && (own == nil || len(parts) != 1) {
					b.Fatalf("Parts(%s) = %+v, %d parts", k[0], own, len(parts))
				}
				i++
			}
		})
	}
}

func TestTrust(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cp.db")
	s := openT(t, path)
	_, err := s.BeginRun(ctx, "")
	ok(t, err)
	newThread(t, s, "t")
	ok(t, s.Distrust(ctx))
	ok(t, s.EndRun(ctx))
	r, err := s.BeginRun(ctx, "")
	ok(t, err)
	if r.Trusted {
		t.Fatalf("after Distrust: %+v, want not trusted", r)
	}
	ok(t, s.EndRun(ctx))
	ok(t, s.Trust(ctx))
	r, err = s.BeginRun(ctx, "")
	ok(t, err)
	if !r.Trusted || r.Unclean {
		t.Errorf("after Trust: %+v, want trusted and clean", r)
	}
}
