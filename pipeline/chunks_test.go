package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Imports in chunks (issue 15): an archive bigger than
// Options.ReadChunk is read, threaded and imported a chunk at a time.
// Whatever the chunk size, Zendesk must end up holding what an import of
// the whole archive gives, and the summary must count the same.

// spanningArchive is an mbox in date order whose threads run across the
// whole file, as a mailbox's do: replies long after their roots, roots
// never in the archive, a late message whose References name an ancestor
// of a thread's root (the thread's key changes), replies that join two
// threads, messages delivered twice, id-less messages and their copies.
func spanningArchive(seed uint64) []string { return spanning(seed, false) }

// spanning is spanningArchive; with sameCopies a message delivered twice
// is the same bytes twice (else its Date differs: a duplicate id with
// other content, rejected).
func spanning(seed uint64, sameCopies bool) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	type msg struct {
		at   int
		text string
	}
	var msgs []msg
	dateOf := func(at int) string {
		return fmt.Sprintf("Date: Mon, 4 Mar 2024 %02d:%02d:%02d +0000\n", 8+at/3600, at/60%60, at%60)
	}
	add := func(at int, id string, refs []string, ticket int, body string) {
		s := fmt.Sprintf("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#%d] thread\n", ticket) + dateOf(at)
		if id != "" {
			s += "Message-ID: <" + id + ">\n"
		}
		if len(refs) > 0 {
			s += "References: <" + strings.Join(refs, "> <") + ">\n"
		}
		msgs = append(msgs, msg{at, s + "\n" + body + "\n"})
	}
	const span = 30000 // seconds of mail
	for i := range 40 {
		ticket := 5 + i%3 // spanningTicket
		var refs []string
		if i%5 == 0 {
			refs = []string{fmt.Sprintf("ghost%d", i)} // its root is not in the archive
		}
		at := rng.IntN(span / 2)
		n := 1 + rng.IntN(6)
		for j := range n {
			id := fmt.Sprintf("t%dm%d", i, j)
			add(at, id, slices.Clone(refs), ticket, "body of "+id)
			if rng.IntN(8) == 0 {
				again := at + 1 + rng.IntN(span/4)
				add(again, id, slices.Clone(refs), ticket, "body of "+id) // delivered twice
				if sameCopies {
					msgs[len(msgs)-1].text = strings.Replace(msgs[len(msgs)-1].text, dateOf(again), dateOf(at), 1)
				}
			}
			refs = append(refs, id)
			at += 1 + rng.IntN(span/n)
		}
		if i%5 == 0 {
			// A late message names an ancestor of the root: re-rooted.
			add(at+1, fmt.Sprintf("t%dlate", i), append([]string{fmt.Sprintf("older%d", i)}, refs...), ticket, "late")
		}
		if i%9 == 4 {
			add(at+2, fmt.Sprintf("x%d", i), []string{fmt.Sprintf("t%dm0", i-2), fmt.Sprintf("t%dm0", i)}, ticket, "joins two")
		}
	}
	for k := range 4 {
		add(rng.IntN(span), "", nil, 5, fmt.Sprintf("id-less %d", k%2)) // 0 and 2, 1 and 3 are copies
	}
	sort.SliceStable(msgs, func(i, j int) bool { return msgs[i].at < msgs[j].at })
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.text
	}
	return out
}

// spanningTicket is the ticket message key k of spanningArchive maps to
// by its own subject; 0 for the messages of no thread of its own.
func spanningTicket(k string) int64 {
	var i, j int
	if n, _ := fmt.Sscanf(k, "t%dm%d", &i, &j); n == 2 {
		return int64(5 + i%3)
	}
	return 0
}

// chunkedImport imports path into srv with store, chunk messages at a
// time (0: whole), and returns the summary and the log.
func chunkedImport(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, path string, chunk int, full bool) (*report.Summary, string) {
	t.Helper()
	var buf bytes.Buffer
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	o.ReadChunk = chunk
	o.FullRead = full
	// One ticket looked up before its first write (vouch), not all:
	// the others' rows are read only when the run knows it must.
	o.VouchProbes = 1
	o.Logger = zerolog.New(zerolog.SyncWriter(&buf)) // workers log at once
	sum, err := Import(context.Background(), newClient(t, srv), store, o)
	if err != nil {
		t.Fatalf("Import in chunks of %d: %v\n%s", chunk, err, buf.String())
	}
	return sum, buf.String()
}

// conversationsByTicket is every side conversation's message keys, by
// ticket.
func conversationsByTicket(f *zendesktest.Fake) map[int64][][]string {
	out := map[int64][][]string{}
	for _, tid := range f.TicketIDs() {
		for _, c := range f.SideConversations(tid) {
			var keys []string
			for _, e := range c.Events {
				keys = append(keys, e.Message.ExternalIDs[zendesk.MessageKeyField])
			}
			out[tid] = append(out[tid], keys)
		}
	}
	return out
}

// assertWithinWhole checks that every side conversation of got holds
// messages of one conversation of whole, on its ticket or on the ticket
// of one of its own messages (ticketOf): a reply in a later chunk that
// joins two threads already imported goes to the earlier one's side
// conversation, as a backfill's does (contract §6), where a whole read
// gives one, on its root's ticket; nothing goes to another conversation.
func assertWithinWhole(t *testing.T, got, whole map[int64][][]string, ticketOf func(key string) int64) {
	t.Helper()
	where := map[string]string{} // message key → ticket and whole conversation
	for tid, convs := range whole {
		for i, keys := range convs {
			for _, k := range keys {
				where[k] = fmt.Sprintf("%d/%d", tid, i)
			}
		}
	}
	for tid, convs := range got {
		for _, keys := range convs {
			var at []string
			for _, k := range keys {
				at = append(at, where[k])
			}
			slices.Sort(at)
			if at = slices.Compact(at); len(at) != 1 {
				t.Errorf("ticket %d: side conversation %v holds messages of whole-read conversations %v", tid, keys, at)
				continue
			}
			ok := strings.HasPrefix(at[0], fmt.Sprint(tid)+"/")
			for _, k := range keys {
				ok = ok || ticketOf(k) == tid
			}
			if !ok {
				t.Errorf("ticket %d: side conversation %v is on none of the tickets its messages map to", tid, keys)
			}
		}
	}
}

// summaryCounts is what a summary counts of threads and messages.
func summaryCounts(s *report.Summary) string {
	return fmt.Sprintf("threads %d messages %d duplicates %d imported %d already %d failed %d rejected %d skipped %d events %d",
		s.ThreadsTotal, s.Messages, s.Duplicates, s.Imported, s.AlreadyDone, s.Failed, s.Rejected, s.Skipped, s.EventsImported)
}

// TestImportInChunksAsWhole: an import in chunks of 1, 4 or 25 messages
// posts every message once, each in a conversation and on the ticket an
// import of the whole archive puts it in, and its summary counts what
// the whole import's does. Importing again (appended read, then a full read
// in chunks) sends nothing.
func TestImportInChunksAsWhole(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		msgs := spanningArchive(seed)
		path := filepath.Join(t.TempDir(), "a.mbox")
		writeMbox(t, path, msgs...)
		ref := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
		wholeSum, _ := chunkedImport(t, ref, newStore(t), path, 0, false)
		events := wholeSum.EventsImported
		assertExactlyOnce(t, ref.Fake, events)
		want := conversationsByTicket(ref.Fake)
		for _, chunk := range []int{1, 4, 25} {
			t.Run(fmt.Sprintf("seed%d/chunk%d", seed, chunk), func(t *testing.T) {
				srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
				store := newStore(t)
				sum, log := chunkedImport(t, srv, store, path, chunk, false)
				if !strings.Contains(log, "read, threaded and imported in chunks") {
					t.Errorf("the import did not say it read in chunks:\n%s", log)
				}
				assertExactlyOnce(t, srv.Fake, events)
				assertWithinWhole(t, conversationsByTicket(srv.Fake), want, spanningTicket)
				if summaryCounts(sum) != summaryCounts(wholeSum) {
					t.Errorf("summary in chunks of %d: %s\nwhole: %s", chunk, summaryCounts(sum), summaryCounts(wholeSum))
				}
				before := srv.RequestCount("total")
				again, log := chunkedImport(t, srv, store, path, chunk, false)
				if r := parseReadLog(t, log); !r.appended || srv.RequestCount("total") != before {
					t.Errorf("importing again: read %+v and sent %d requests; want an appended read and none", r, srv.RequestCount("total")-before)
				}
				full, _ := chunkedImport(t, srv, store, path, chunk, true)
				if n := srv.RequestCount("total") - before; n != 0 || full.AlreadyDone != wholeSum.ThreadsTotal-wholeSum.Rejected || again.AlreadyDone != full.AlreadyDone {
					t.Errorf("importing again in full: %d requests, %s (appended: %s); want none, every thread already done", n, summaryCounts(full), summaryCounts(again))
				}
			})
		}
	}
}

// TestValidateInBatchesAsWhole: validate reads an archive bigger than
// Options.ReadChunk in batches, and reports exactly what a whole read
// does: the report and every threads.csv row, in the same order.
func TestValidateInBatchesAsWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	writeMbox(t, path, spanningArchive(3)...)
	jsonl := writeGroupedJSONL(t, dir)
	validate := func(chunk int) (string, []string) {
		o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
		o.Sources = append(o.Sources, Source{Type: "json", Path: jsonl, Name: "b.jsonl"})
		o.ReadChunk = chunk
		var rows []string
		rep, err := ValidateReport(context.Background(), o, ReportOptions{Threads: func(r report.ThreadRow) error {
			rows = append(rows, fmt.Sprintf("%+v", r))
			return nil
		}})
		if err != nil {
			t.Fatalf("validate in chunks of %d: %v", chunk, err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		return string(b), rows
	}
	want, wantRows := validate(0)
	if len(wantRows) < 40 {
		t.Fatalf("only %d threads.csv rows", len(wantRows))
	}
	for _, chunk := range []int{1, 5, 40} {
		got, rows := validate(chunk)
		if got != want {
			t.Errorf("report in chunks of %d:\n%s\nwhole:\n%s", chunk, got, want)
		}
		if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
			t.Errorf("threads.csv in chunks of %d:\n%v\nwhole:\n%v", chunk, rows, wantRows)
		}
	}
}

// TestSampleTicketsInBatches: check's preflight samples the same
// tickets, and counts the same threads, whether the archive is read
// whole or in batches.
func TestSampleTicketsInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, spanningArchive(4)...)
	sample := func(chunk, n int) string {
		o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
		o.ReadChunk = chunk
		tickets, threads, err := SampleTickets(context.Background(), o, n)
		if err != nil {
			t.Fatalf("sample in chunks of %d: %v", chunk, err)
		}
		return fmt.Sprint(tickets, threads)
	}
	for _, n := range []int{1, 2, 3, 50} {
		want := sample(0, n)
		for _, chunk := range []int{1, 7} {
			if got := sample(chunk, n); got != want {
				t.Errorf("%d tickets sampled in chunks of %d: %s, whole: %s", n, chunk, got, want)
			}
		}
	}
}

// TestImportInChunksCopiesFailures: the failures folder of an import in
// chunks holds every record that was not imported, from every chunk,
// as an import of the whole archive writes it. (A message repeating an
// imported one's Message-ID with other content, read in a later chunk,
// is the exception, as in a backfill: its thread is complete with the
// same message keys, and it is not recorded.)
func TestImportInChunksCopiesFailures(t *testing.T) {
	msgs := spanning(5, true)
	undated := func(id, parent string) string {
		s := "From -\nFrom: b@example.com\nTo: a@example.com\nSubject: [#5] re\nMessage-ID: <" + id + ">\n"
		if parent != "" {
			s += "In-Reply-To: <" + parent + ">\n"
		}
		return s + "\nno date\n"
	}
	// Early, in the middle and at the end; two reply to early threads.
	msgs = slices.Insert(msgs, len(msgs), undated("u3", "t1m0"))
	msgs = slices.Insert(msgs, len(msgs)/2, undated("u2", ""))
	msgs = slices.Insert(msgs, 3, undated("u1", "t0m0"))
	copies := func(chunk int) (string, string) {
		path := filepath.Join(t.TempDir(), "a.mbox")
		writeMbox(t, path, msgs...)
		srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
		sum, _ := chunkedImport(t, srv, newStore(t), path, chunk, false)
		if sum.FailuresDir == "" {
			t.Fatalf("chunks of %d: no failures folder (%d rejected messages)", chunk, sum.RejectedMsgs)
		}
		b, err := os.ReadFile(filepath.Join(sum.FailuresDir, "a.mbox"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b), summaryCounts(sum) + fmt.Sprint(" rejected messages ", sum.RejectedMsgs)
	}
	want, wantSum := copies(0)
	if strings.Count(want, "no date") != 3 {
		t.Fatalf("the whole import's failures copy holds %d of the 3 undated messages:\n%s", strings.Count(want, "no date"), want)
	}
	for _, chunk := range []int{1, 6} {
		got, sum := copies(chunk)
		if got != want {
			t.Errorf("failures copy in chunks of %d:\n%s\nwhole:\n%s", chunk, got, want)
		}
		if sum != wantSum {
			t.Errorf("summary in chunks of %d: %s\nwhole: %s", chunk, sum, wantSum)
		}
	}
}

// TestValidateSmallArchiveWritesNoTempFiles: an archive that fits in one
// chunk is read whole by validate without any temporary file, so that a
// read-only TMPDIR (a container's) does not stop it; a bigger one says
// which folder it could not use.
func TestValidateSmallArchiveWritesNoTempFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, spanningArchive(6)...)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	o.ReadChunk = 100000
	if _, err := Validate(context.Background(), o); err != nil {
		t.Errorf("validate of a small archive with TMPDIR missing: %v", err)
	}
	o.ReadChunk = 5
	if _, err := Validate(context.Background(), o); err == nil || !strings.Contains(err.Error(), "TMPDIR") {
		t.Errorf("validate in chunks with TMPDIR missing: %v, want an error naming TMPDIR", err)
	}
}

// writeGroupedJSONL writes dir/b.jsonl: 12 lines of messages in three
// threads on ticket 8, lines 3 and 8 unreadable; it returns its path.
func writeGroupedJSONL(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "b.jsonl")
	var lines []string
	for k := range 12 {
		if k%5 == 2 {
			lines = append(lines, `{"thread_id": "g1", "message_id": "broken`)
			continue
		}
		lines = append(lines, fmt.Sprintf(`{"thread_id":"g%d","message_id":"j%d","ticket_id":"8","created_at":"2024-01-02T03:%02d:05Z","from":"ann@example.com","to":"bob@example.com","subject":"s","body":"b%d"}`, k%3, k, k, k))
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
