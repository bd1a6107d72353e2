package pipeline

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/internal/fixtures"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// corpus returns the path of a file under ../shared/corpora/mail, or skips
// the test when the corpora are not beside the repository.
func corpus(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join("..", "..", "shared", "corpora", "mail", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file %s not available: %v", rel, err)
	}
	return p
}

func newStore(t testing.TB) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.Open(context.Background(), filepath.Join(t.TempDir(), "cp.db"), checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Lock(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testOptions(path string, rules mapping.TicketRules) Options {
	return Options{
		Sources:     []Source{{Type: "mbox", Path: path, Name: filepath.Base(path)}},
		Mapper:      mapping.New(mapping.Options{Ticket: rules, MaxEventsPerRequest: 5, Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}),
		Workers:     4,
		MaxAttempts: 8,
		BackoffBase: time.Millisecond,
		BackoffMax:  10 * time.Millisecond,
		Logger:      zerolog.Nop(),
	}
}

func newClient(t testing.TB, srv *zendesktest.Server) *zendesk.Client {
	t.Helper()
	o := srv.ClientOptions()
	o.Timeout = 5 * time.Second
	return newClientFrom(t, o)
}

func newClientFrom(t testing.TB, o zendesk.Options) *zendesk.Client {
	t.Helper()
	c, err := zendesk.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// bubbleNow is the clock of tests in virtual time (synctest.Test): a
// bubble's clock starts in 2000, before the archives' dates, so the run's
// and the fake's clocks are set 26 years ahead of it.
func bubbleNow() time.Time { return time.Now().AddDate(26, 0, 0) }

// bubbleImport prepares a test in virtual time: a fake on bubbleNow,
// reached without a socket (zendesktest.Transport), and opts on bubbleNow.
func bubbleImport(t testing.TB, cfg zendesktest.Config, opts *Options) (*zendesktest.Fake, *zendesk.Client) {
	t.Helper()
	cfg.Now = bubbleNow
	f := zendesktest.New(cfg)
	o := f.InProcessOptions()
	o.Timeout = 5 * time.Second
	opts.Now, opts.Read.Now = bubbleNow, bubbleNow
	return f, newClientFrom(t, o)
}

// assertExactlyOnce checks the fake's state: no thread key twice on any
// ticket, every message key once, events in chronological order, and the
// total number of events as expected.
func assertExactlyOnce(t *testing.T, f *zendesktest.Fake, wantEvents int) {
	t.Helper()
	threads := map[string]int64{}
	messages := map[string]string{}
	total := 0
	for _, tid := range f.TicketIDs() {
		for _, c := range f.SideConversations(tid) {
			key := c.SideConversation.ExternalIDs[zendesk.ThreadKeyField]
			if key == "" {
				t.Errorf("ticket %d: side conversation %s has no thread key", tid, c.SideConversation.ID)
			}
			if prev, dup := threads[key]; dup {
				t.Errorf("thread key %q imported twice (tickets %d and %d)", key, prev, tid)
			}
			threads[key] = tid
			var last time.Time
			for _, e := range c.Events {
				mk := e.Message.ExternalIDs[zendesk.MessageKeyField]
				if prev, dup := messages[mk]; dup {
					t.Errorf("message key %q imported twice (threads %q and %q)", mk, prev, key)
				}
				messages[mk] = key
				if e.CreatedAt.Before(last) {
					t.Errorf("thread %q: event %q at %s is before the previous event at %s", key, mk, e.CreatedAt, last)
				}
				last = e.CreatedAt
				total++
			}
		}
	}
	if total != wantEvents {
		t.Errorf("fake holds %d events, want %d", total, wantEvents)
	}
}

// generatedArchive is the archive the guarantees are proven on in every
// clone: 300-odd messages in reply trees over ten tickets, four threads
// longer than testOptions' max_events_per_request, three with their root
// missing, attachments of every kind, every charset in every transfer
// encoding.
func generatedArchive(seed uint64) fixtures.Options {
	return fixtures.Options{Seed: seed, Threads: 110, MaxReplies: 4, LongThreads: 4, LongReplies: 11, MissingRoots: 3,
		AttachmentEvery: 6, Charsets: true}
}

// writeGenerated writes the mbox of a generated archive.
func writeGenerated(t *testing.T, o fixtures.Options) (string, *fixtures.Archive) {
	t.Helper()
	a := fixtures.Generate(o)
	return fixtures.WriteMbox(t, t.TempDir(), "generated.mbox", a), a
}

// counts are what Validate must find in an archive.
type counts struct{ messages, threads, valid, importable int }

// TestImportCorpusExactlyOnce imports a generated archive and checks that
// every message landed exactly once; a second run sends nothing. The
// corpus layer (TestCorpusLayer) does the same on a real list archive.
func TestImportCorpusExactlyOnce(t *testing.T) {
	path, a := writeGenerated(t, generatedArchive(1))
	n, m := len(a.Threads), a.Messages()
	importExactlyOnce(t, path, counts{m, n, n, m})
}

func importExactlyOnce(t *testing.T, path string, want counts) {
	opts := testOptions(path, mapping.TicketRules{DefaultTicketID: 7})

	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := (counts{rep.Messages, rep.Threads, rep.ValidThreads, rep.ImportableMsgs}); got != want {
		t.Fatalf("Validate: %d messages, %d threads (%d valid), %d importable; want %d, %d (%d), %d",
			got.messages, got.threads, got.valid, got.importable, want.messages, want.threads, want.valid, want.importable)
	}

	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "a@example.com", Token: "t0ken", AutoCreateTickets: true})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != rep.ValidThreads || sum.Failed != 0 {
		t.Errorf("Import: imported %d failed %d, want %d imported (valid threads)", sum.Imported, sum.Failed, rep.ValidThreads)
	}
	if sum.EventsImported != rep.ImportableMsgs {
		t.Errorf("Import: %d events, want %d importable messages", sum.EventsImported, rep.ImportableMsgs)
	}
	assertExactlyOnce(t, srv.Fake, rep.ImportableMsgs)

	// A second run finds everything done and sends nothing.
	before := srv.RequestCount("total")
	sum2, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Imported != 0 || sum2.AlreadyDone != rep.ValidThreads || sum2.Requests != 0 {
		t.Errorf("re-run: imported %d, already done %d, requests %d; want 0, %d, 0", sum2.Imported, sum2.AlreadyDone, sum2.Requests, rep.ValidThreads)
	}
	if got := srv.RequestCount("total"); got != before {
		t.Errorf("re-run sent %d requests, want 0", got-before)
	}
}

// TestImportReconcilesUnknownOutcomes drops the response of every third
// write after the server committed it, and makes others time out after the
// commit: the client must look the thread up instead of re-sending. On a
// generated archive; TestCorpusLayer does it on a real one too.
func TestImportReconcilesUnknownOutcomes(t *testing.T) {
	o := generatedArchive(2)
	o.Threads, o.MaxReplies = 40, 5
	path, a := writeGenerated(t, o)
	importReconciles(t, path, len(a.Threads), a.Messages())
}

func importReconciles(t *testing.T, path string, wantThreads, wantMsgs int) {
	opts := testOptions(path, mapping.TicketRules{DefaultTicketID: 9})
	opts.MaxAttempts = 20
	opts.Settle = 10 * time.Millisecond // no write lands late here
	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ValidThreads != wantThreads || rep.ImportableMsgs != wantMsgs {
		t.Fatalf("Validate: %d valid threads, %d importable messages; want %d and %d", rep.ValidThreads, rep.ImportableMsgs, wantThreads, wantMsgs)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	var writes atomic.Int64
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method != http.MethodPost {
			return zendesktest.FaultNone
		}
		switch n := writes.Add(1); {
		case n%3 == 0:
			return zendesktest.FaultCommitThenDrop
		case n%7 == 0:
			return zendesktest.Fault502
		case n%11 == 0:
			return zendesktest.FaultResetBeforeCommit
		}
		return zendesktest.FaultNone
	})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 0 {
		t.Errorf("Import: %d failed threads, want 0", sum.Failed)
	}
	if sum.Reconciled == 0 {
		t.Errorf("Import: no reconciliation happened; the faults did not bite")
	}
	assertExactlyOnce(t, srv.Fake, rep.ImportableMsgs)
}

// TestImportTicketsAndFailures maps threads to several tickets, one of
// which does not exist (404): that thread fails with the status and the
// request id, the others land, and the run still finishes.
func TestImportTicketsAndFailures(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := 1; i <= 12; i++ {
		ticket := 100 + i%4
		fmt.Fprintf(&b, "From x@example.com Mon Mar  4 09:12:00 2024\nFrom: a%d@example.com\nTo: s@example.com\nSubject: [#%d] thread %d\nDate: Mon, 4 Mar 2024 09:%02d:00 +0000\nMessage-ID: <m%d@example.com>\n\nbody %d\n\n", i, ticket, i, i, i, i)
		fmt.Fprintf(&b, "From x@example.com Mon Mar  4 10:12:00 2024\nFrom: s@example.com\nTo: a%d@example.com\nSubject: Re: [#%d] thread %d\nDate: Mon, 4 Mar 2024 10:%02d:00 +0000\nMessage-ID: <r%d@example.com>\nIn-Reply-To: <m%d@example.com>\n\nreply %d\n\n", i, ticket, i, i, i, i, i)
	}
	path := filepath.Join(dir, "t.mbox")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{})
	for _, id := range []int64{100, 101, 102} { // 103 is missing
		srv.AddTicket(id, "")
	}
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 9 || sum.Failed != 3 {
		t.Errorf("imported %d failed %d, want 9 and 3", sum.Imported, sum.Failed)
	}
	for _, id := range []int64{100, 101, 102} {
		if n := len(srv.SideConversations(id)); n != 3 {
			t.Errorf("ticket %d has %d side conversations, want 3", id, n)
		}
	}
	fs, err := store.Failures(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		if f.HTTPStatus != 404 || f.RequestID == "" || f.TicketID != 103 {
			t.Errorf("failure %+v: want HTTP 404 on ticket 103 with a request id", f)
		}
		got = append(got, f.ThreadKey)
	}
	sort.Strings(got)
	if want := "m11@example.com m3@example.com m7@example.com"; strings.Join(got, " ") != want {
		t.Errorf("failed threads %v, want %s", got, want)
	}

	// After the ticket appears, retry + import finishes the job.
	srv.AddTicket(103, "")
	if n, err := store.Retry(context.Background()); err != nil || n != 3 {
		t.Fatalf("Retry() = %d, %v; want 3", n, err)
	}
	sum, err = Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 3 || sum.AlreadyDone != 9 {
		t.Errorf("after retry: imported %d already done %d, want 3 and 9", sum.Imported, sum.AlreadyDone)
	}
	assertExactlyOnce(t, srv.Fake, 24)
}

// TestPipermailArchiveIsRejectedNotLost: a Mailman pipermail .txt archive
// obfuscates addresses ("user at host") and has no To header, and this one
// holds every message twice. Nothing of it can be posted; all of it is
// reported, with the rule that stopped it. A generated archive of that
// shape here; TestCorpusLayer reads a real one.
func TestPipermailArchiveIsRejectedNotLost(t *testing.T) {
	var b strings.Builder
	const n = 12
	for round := range 2 {
		for i := range n {
			fmt.Fprintf(&b, "From user%d at example.org  Thu Nov  1 11:%02d:12 2001\nFrom: user%d at example.org (User %d)\n", i, i, i, i)
			fmt.Fprintf(&b, "Date: Thu Nov  1 11:%02d:12 2001\nSubject: [List] topic %d\nMessage-ID: <pm%d@example.org>\n", i, i/3, i)
			if i%3 != 0 {
				fmt.Fprintf(&b, "In-Reply-To: <pm%d@example.org>\n", i-i%3)
			}
			fmt.Fprintf(&b, "\nmessage %d, copy %d\n\n\n", i, round)
		}
	}
	path := writeFile(t, filepath.Join(t.TempDir(), "2001-November.txt"), b.String())
	pipermailRejected(t, path, counts{messages: 2 * n}, n)
}

func pipermailRejected(t *testing.T, path string, want counts, dups int) {
	rep, err := Validate(context.Background(), testOptions(path, mapping.TicketRules{DefaultTicketID: 7}))
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]int{}
	for _, rc := range rep.IssuesByRule {
		rules[rc.Rule] = rc.Count
	}
	if rep.Messages != want.messages || rep.ValidThreads != 0 || rep.DuplicateMsgs != dups || rep.RejectedMsgs != dups || rules["no-recipient"] != dups {
		t.Errorf("pipermail archive: %d messages, %d valid threads, %d duplicates, %d rejected, rules %v; want %d, 0, %d, %d with %d no-recipient",
			rep.Messages, rep.ValidThreads, rep.DuplicateMsgs, rep.RejectedMsgs, rules, want.messages, dups, dups, dups)
	}
}
