package pipeline

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestImportUnderMixedFaults imports a generated mailbox (every charset,
// attachments, long threads, missing roots), csv and json lines while the
// fake answers a fifth of the imports with a fault of every kind, and
// spreads the threads over ten tickets so that workers run concurrently.
// Every message must land exactly once, with its attachments intact.
// TestCorpusLayer runs it on a real 1,500-message archive too.
func TestImportUnderMixedFaults(t *testing.T) {
	dir := t.TempDir()
	a := fixtures.Generate(generatedArchive(3))
	csvA := fixtures.Generate(fixtures.Options{Seed: 4, Prefix: "csv", Threads: 30, MaxReplies: 3, LongThreads: 1, LongReplies: 9})
	jsonA := fixtures.Generate(fixtures.Options{Seed: 5, Prefix: "json", Threads: 30, MaxReplies: 3, LongThreads: 1, LongReplies: 9})
	opts := testOptions("", mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Sources = []Source{
		{Type: "mbox", Path: fixtures.WriteMbox(t, dir, "generated.mbox", a), Name: "generated.mbox"},
		{Type: "csv", Path: fixtures.WriteCSV(t, dir, "generated.csv", csvA), Name: "generated.csv"},
		{Type: "json", Path: fixtures.WriteJSONL(t, dir, "generated.jsonl", jsonA), Name: "generated.jsonl"},
	}
	want := map[string][]string{} // message key → "name size sha256" of its files
	for _, th := range a.Threads {
		for _, m := range th.Messages {
			for _, at := range m.Attachments {
				want[m.ID] = append(want[m.ID], fmt.Sprintf("%s %d %x", at.Name, len(at.Data), sha256.Sum256(at.Data)))
			}
		}
	}
	threads := len(a.Threads) + len(csvA.Threads) + len(jsonA.Threads)
	msgs := a.Messages() + csvA.Messages() + jsonA.Messages()
	srv := importUnderMixedFaults(t, opts, threads, msgs)
	if diff := cmp.Diff(sortedValues(want), sortedValues(landed(t, srv.Fake))); diff != "" {
		t.Errorf("attachments per message (-generated +in Zendesk):\n%s", diff)
	}
}

// importUnderMixedFaults imports opts' sources while the fake answers a
// fifth of the imports and events/imports with a fault: in every block
// of 100 such writes, 5 get a 500, 3 a 502, 1 a 503 with Retry-After, 4 a
// reset before the commit, 6 a commit whose answer is lost and 1 a commit
// answered after the client's timeout. Uploads fail too, less often.
// Counting writes instead of drawing faults keeps the share of faults
// the same on every run.
func importUnderMixedFaults(t *testing.T, opts Options, wantThreads, wantMsgs int) *zendesktest.Server {
	t.Helper()
	opts.MaxAttempts = 30
	opts.Settle = 3 * time.Second // a timed-out write (the fake may apply it late on a loaded machine) gets this long to land before its ticket is looked up
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ValidThreads != wantThreads || rep.ImportableMsgs != wantMsgs {
		t.Fatalf("Validate: %d valid threads, %d importable messages; want %d and %d", rep.ValidThreads, rep.ImportableMsgs, wantThreads, wantMsgs)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	// 429s are left out: the client halves its own rate on each, which the
	// zendesk tests cover; here they would only slow the test. Each 503
	// pauses every worker for its Retry-After (1 s) and each slow answer
	// costs a client timeout.
	srv.SetFaults(zendesktest.Faults{RetryAfter: time.Second, Slow: 4 * time.Second})
	var imports, uploads atomic.Int64
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method != http.MethodPost {
			return zendesktest.FaultNone
		}
		if !strings.HasSuffix(r.URL.Path, "/import") {
			switch n := uploads.Add(1); {
			case n%9 == 0:
				return zendesktest.Fault500
			case n%13 == 0:
				return zendesktest.FaultResetBeforeCommit
			}
			return zendesktest.FaultNone
		}
		// 37 is prime to 100: v takes each value 0..99 once in every 100
		// writes.
		switch v := imports.Add(1) * 37 % 100; {
		case v < 5:
			return zendesktest.Fault500
		case v < 8:
			return zendesktest.Fault502
		case v < 9:
			return zendesktest.Fault503RetryAfter
		case v < 13:
			return zendesktest.FaultResetBeforeCommit
		case v < 19:
			return zendesktest.FaultCommitThenDrop
		case v < 20:
			return zendesktest.FaultSlowAfterCommit
		}
		return zendesktest.FaultNone
	})
	c := srv.ClientOptions()
	// Shorter than Slow, so that slow-after-commit becomes a timeout, and
	// long enough that a ticket listing on a loaded machine (-race, two
	// cores) does not time out 30 times in a row and fail its thread.
	c.Timeout = 2 * time.Second
	client := newClientFrom(t, c)
	store := newStore(t)
	sum, err := Import(context.Background(), client, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	faults, writes := 0, 0
	for _, r := range srv.Requests() {
		if r.Kind == "import" || r.Kind == "events_import" {
			writes++
			if r.Fault != zendesktest.FaultNone {
				faults++
			}
		}
	}
	t.Logf("threads %d, events %d, writes %d, faults %d (%.0f%%), retries %d, 429s %d, reconciliations %d",
		sum.Imported, sum.EventsImported, writes, faults, 100*float64(faults)/float64(writes), sum.Retries, sum.RateLimited, sum.Reconciled)
	if writes == 0 {
		t.Fatalf("no writes: the archive did not import at all")
	}
	if float64(faults) < 0.15*float64(writes) {
		t.Errorf("only %d of %d writes faulted; the test wants at least 15%%", faults, writes)
	}
	if sum.Failed != 0 || sum.Imported != rep.ValidThreads {
		t.Errorf("imported %d failed %d, want %d and 0", sum.Imported, sum.Failed, rep.ValidThreads)
		recs, _ := store.Failures(context.Background())
		for _, f := range recs {
			t.Logf("failed: %+v", f)
		}
	}
	assertExactlyOnce(t, srv.Fake, rep.ImportableMsgs)
	return srv
}

func writeMbox(t *testing.T, path string, msgs ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(msgs, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mboxMsg(id, parent string, minute int, body string) string {
	s := fmt.Sprintf("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#5] about %s\nDate: Mon, 4 Mar 2024 10:%02d:00 +0000\nMessage-ID: <%s>\n", id, minute, id)
	if parent != "" {
		s += "In-Reply-To: <" + parent + ">\n"
	}
	return s + "\n" + body + "\n"
}

// TestBackfill imports an archive, then the same archive grown by replies
// to an imported thread and by a new thread: only the new messages are
// posted, the replies with events/import onto the existing conversation.
// Then the archive moves and is renamed: nothing is posted at all.
func TestBackfill(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "2024-03.mbox")
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t1r", "t1", 2, "one reply"), mboxMsg("t2", "", 3, "two"))
	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	if _, err := Import(context.Background(), newClient(t, srv), store, testOptions(path, rules)); err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount("import"); n != 2 {
		t.Fatalf("first run: %d import requests, want 2", n)
	}

	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t1r", "t1", 2, "one reply"), mboxMsg("t2", "", 3, "two"),
		mboxMsg("t1r2", "t1r", 4, "late reply"), mboxMsg("t1r3", "t1", 5, "later reply"), mboxMsg("t3", "", 6, "three"))
	sum, err := Import(context.Background(), newClient(t, srv), store, testOptions(path, rules))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := [3]int{srv.RequestCount("import"), srv.RequestCount("events_import"), sum.EventsImported}, [3]int{3, 1, 3}; got != want {
		t.Errorf("backfill: imports %d (total), events/imports %d, events %d; want %v", got[0], got[1], got[2], want)
	}
	if sum.AlreadyDone != 1 || sum.Imported != 2 {
		t.Errorf("backfill: already done %d imported %d, want 1 (t2) and 2 (t1 grown, t3 new)", sum.AlreadyDone, sum.Imported)
	}
	convs := srv.SideConversations(5)
	if len(convs) != 3 {
		t.Fatalf("ticket 5 has %d side conversations, want 3", len(convs))
	}
	for _, c := range convs {
		if c.SideConversation.ExternalIDs["threadlift_thread_key"] == "t1" && len(c.Events) != 4 {
			t.Errorf("thread t1 has %d events, want 4", len(c.Events))
		}
	}
	assertExactlyOnce(t, srv.Fake, 6)

	// Moved and renamed: keys come from content, so nothing is new.
	moved := filepath.Join(t.TempDir(), "archive-renamed.mbox")
	data, _ := os.ReadFile(path)
	os.WriteFile(moved, data, 0o644)
	before := srv.RequestCount("total")
	sum, err = Import(context.Background(), newClient(t, srv), store, testOptions(moved, rules))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount("total") - before; n != 0 || sum.AlreadyDone != 3 {
		t.Errorf("after moving the archive: %d requests, %d already done; want 0 and 3", n, sum.AlreadyDone)
	}
}

// TestMaxDuration stops taking threads when the window ends; the next run
// finishes the job. Time is virtual: the 150 ms window holds a few 30 ms
// answers however slow the machine.
func TestMaxDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "a.mbox")
		var msgs []string
		for i := 0; i < 40; i++ {
			msgs = append(msgs, mboxMsg(fmt.Sprintf("m%d", i), "", i%60, "x"))
		}
		writeMbox(t, path, msgs...)
		store := newStore(t)
		opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
		f, client := bubbleImport(t, zendesktest.Config{AutoCreateTickets: true, Latency: 30 * time.Millisecond}, &opts)
		opts.MaxDuration = 150 * time.Millisecond
		sum, err := Import(context.Background(), client, store, opts)
		if err != nil {
			t.Fatalf("Import with MaxDuration: %v (want a clean stop)", err)
		}
		if !sum.StoppedByMaxDuration || sum.Imported == 0 || sum.Imported >= 40 {
			t.Errorf("stopped=%v imported=%d, want a partial run stopped by the window", sum.StoppedByMaxDuration, sum.Imported)
		}
		opts.MaxDuration = 0
		sum2, err := Import(context.Background(), client, store, opts)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Imported+sum2.Imported != 40 {
			t.Errorf("imported %d + %d, want 40 in all", sum.Imported, sum2.Imported)
		}
		assertExactlyOnce(t, f, 40)
	})
}

// A thread that panics before it is registered fails alone, with rule
// "panic", and is listed for retry; the run goes on with the others. (It
// used to be failed before it was registered, which the checkpoint
// refused, and that stopped the whole run as fatal.)
func TestPanickingThreadFailsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t2", "", 2, "two"), mboxMsg("t3", "", 3, "three"), mboxMsg("t4", "", 4, "four"))
	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, rules)
	// The mapper reads the clock once per dated message, before the
	// thread is registered: every second reading panics.
	var calls atomic.Int64
	opts.Mapper = mapping.New(mapping.Options{Ticket: rules, Now: func() time.Time {
		if calls.Add(1)%2 == 0 {
			panic("clock exploded")
		}
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}})
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatalf("Import: %v (a panicking thread must not stop the run)", err)
	}
	if sum.Imported != 2 || sum.Failed != 2 {
		t.Errorf("imported %d failed %d, want 2 and 2", sum.Imported, sum.Failed)
	}
	failed := 0
	for _, key := range []string{"t1", "t2", "t3", "t4"} {
		th, found, err := store.Thread(context.Background(), key)
		if err != nil || !found {
			t.Fatalf("thread %s: found %v, %v", key, found, err)
		}
		if th.State == checkpoint.Failed {
			failed++
			if th.Rule != RulePanic || th.Source == "" || !strings.Contains(th.Reason, "clock exploded") {
				t.Errorf("thread %s: %+v; want rule %q, its source and the panic", key, th, RulePanic)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d threads failed in the checkpoint, want 2", failed)
	}
	assertExactlyOnce(t, srv.Fake, 2)
}
