package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// failuresRun imports opts into srv with store and returns the summary.
func failuresRun(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, opts Options) *report.Summary {
	t.Helper()
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// editFile replaces old by new in path, once.
func editFile(t *testing.T, path, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q:\n%s", path, old, b)
	}
	out := strings.Replace(string(b), old, new, 1)
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// eventsOf returns the message keys of each side conversation of ticket
// id, by thread key.
func eventsOf(srv *zendesktest.Server, id int64) map[string][]string {
	out := map[string][]string{}
	for _, c := range srv.SideConversations(id) {
		k := c.SideConversation.ExternalIDs[zendesk.ThreadKeyField]
		for _, e := range c.Events {
			out[k] = append(out[k], e.Message.ExternalIDs[zendesk.MessageKeyField])
		}
	}
	return out
}

// TestFixedFailureImportsOnceIntoItsThread is the workflow `import
// --help` documents, end to end: a reply without a date is rejected and
// copied into a failures folder; the user fixes the copy in place and adds
// it as a source; the next import posts it once, into its thread's side
// conversation. Another import posts nothing and leaves the edited file
// as it is. Before, the fixed copy was a duplicate of the broken original
// (same Message-ID, read first), the thread counted as done, nothing was
// posted (exit 0), and the next run overwrote the user's failures.mbox
// with the broken original.
func TestFixedFailureImportsOnceIntoItsThread(t *testing.T) {
	for _, chunk := range []int{0, 1} {
		t.Run(fmt.Sprintf("chunk%d", chunk), func(t *testing.T) { fixedFailureFlow(t, chunk) })
	}
}

// fixedFailureFlow is TestFixedFailureImportsOnceIntoItsThread, reading
// in chunks of chunk messages (0: whole): the fixed copy, in the last
// chunk, replaces its original from the first.
func fixedFailureFlow(t *testing.T, chunk int) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	undated := "From -\nFrom: b@example.com\nTo: a@example.com\nSubject: [#5] re\nMessage-ID: <t1r>\nIn-Reply-To: <t1>\n\n>From the reply\n"
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), undated, mboxMsg("t2", "", 3, "two"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	opts := testOptions(path, rules)
	opts.ReadChunk = chunk

	sum := failuresRun(t, srv, store, opts)
	if sum.RejectedMsgs != 1 || sum.FailuresDir == "" {
		t.Fatalf("first run: %d rejected messages, failures folder %q; want 1 and a folder", sum.RejectedMsgs, sum.FailuresDir)
	}
	if rel, _ := filepath.Rel(filepath.Dir(store.Path()), sum.FailuresDir); !strings.HasPrefix(rel, FailuresDir+string(filepath.Separator)) {
		t.Errorf("failures folder %s is not under %s next to the checkpoint", sum.FailuresDir, FailuresDir)
	}
	copyPath := filepath.Join(sum.FailuresDir, "a.mbox")
	got, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "From -\n" + sources.MarkSourceHeader + ": a.mbox@" + offsetOf(t, path, "From -\n") + "\n" + strings.TrimPrefix(undated, "From -\n") + "\n"
	if string(got) != want {
		t.Errorf("the copy is\n%q\nwant the record as it was, with its mark after the From line:\n%q", got, want)
	}

	// The user fixes the copy in place and adds it as a source.
	fixed := editFile(t, copyPath, "Subject: [#5] re\n", "Subject: [#5] re\nDate: Mon, 4 Mar 2024 10:02:00 +0000\n")
	opts.Sources = append(opts.Sources, Source{Type: "mbox", Path: copyPath, Name: "fixed.mbox"})

	rep, err := Validate(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.RejectedMsgs != 0 || rep.ImportableMsgs != 3 {
		t.Errorf("validate with the fix: %d rejected, %d importable; want 0 and 3", rep.RejectedMsgs, rep.ImportableMsgs)
	}

	sum = failuresRun(t, srv, store, opts)
	// In chunks of one message, the original is read (and rejected again)
	// in its chunk before its copy, in a later chunk, replaces it.
	if wantRejected := min(chunk, 1); sum.EventsImported != 1 || sum.RejectedMsgs != wantRejected || sum.Failed != 0 {
		t.Errorf("second run: %d events, %d rejected, %d failed; want 1, %d, 0", sum.EventsImported, sum.RejectedMsgs, sum.Failed, wantRejected)
	}
	if got := eventsOf(srv, 5)["t1"]; strings.Join(got, " ") != "t1 t1r" {
		t.Errorf("thread t1 holds %v, want [t1 t1r]", got)
	}
	assertExactlyOnce(t, srv.Fake, 3)
	fs, err := store.Failures(context.Background())
	if err != nil || len(fs) != 0 {
		t.Errorf("failures after the fix: %+v, %v; want none", fs, err)
	}

	before := srv.RequestCount("total")
	sum = failuresRun(t, srv, store, opts)
	if n := srv.RequestCount("total") - before; n != 0 || sum.AlreadyDone != 2 || sum.FailuresDir != "" {
		t.Errorf("third run: %d requests, %d already done, failures folder %q; want 0, 2, none", n, sum.AlreadyDone, sum.FailuresDir)
	}
	if b, _ := os.ReadFile(copyPath); string(b) != fixed {
		t.Errorf("the edited file was changed:\n%s", b)
	}
	assertExactlyOnce(t, srv.Fake, 3)
}

// offsetOf returns the byte offset of the first s in the file.
func offsetOf(t *testing.T, path, s string) string {
	b, _ := os.ReadFile(path)
	i := strings.Index(string(b), s)
	if i < 0 {
		t.Fatalf("%q not in %s", s, path)
	}
	return strconv.Itoa(i)
}

// TestFailuresFolderNeverOverwritten: a run whose failures are those of
// the latest folder writes no new one; a run with other failures writes a
// new folder and leaves the old one, edits and all, as it was.
func TestFailuresFolderNeverOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	unmapped := func(id string) string {
		return "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: no ticket " + id +
			"\nDate: Mon, 4 Mar 2024 10:00:00 +0000\nMessage-ID: <" + id + ">\n\nbody\n"
	}
	writeMbox(t, path, unmapped("u1"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	first := failuresRun(t, srv, store, opts).FailuresDir
	if first == "" {
		t.Fatal("no failures folder")
	}
	edited := editFile(t, filepath.Join(first, "a.mbox"), "body", "body, being fixed")
	second := failuresRun(t, srv, store, opts).FailuresDir
	if second == first {
		t.Errorf("the run wrote into %s, whose file the user is editing", first)
	}
	third := failuresRun(t, srv, store, opts).FailuresDir
	if third != second {
		t.Errorf("the same failures again wrote a new folder %s (latest %s)", third, second)
	}
	writeMbox(t, path, unmapped("u1"), unmapped("u2"))
	fourth := failuresRun(t, srv, store, opts).FailuresDir
	if fourth == second || fourth == "" {
		t.Errorf("new failures: folder %q, want a new one", fourth)
	}
	if b, _ := os.ReadFile(filepath.Join(first, "a.mbox")); string(b) != edited {
		t.Errorf("the edited copy changed:\n%s", b)
	}
	entries, _ := os.ReadDir(filepath.Join(filepath.Dir(store.Path()), FailuresDir))
	if len(entries) != 3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("failures holds %v, want 3 run folders", names)
	}
}

// TestFixedUnmappedThreadWithoutMessageID: a thread rejected whole (no
// ticket) whose one message has no Message-ID. Its copy carries its
// content key as Message-ID, so that the key survives the fix (a header
// added to map it changes the header block the key hashes); the fixed
// copy replaces the original and is posted under the original's key.
func TestFixedUnmappedThreadWithoutMessageID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	writeMbox(t, path, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: lost\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\nno id\n")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{Header: "X-Ticket"})
	rep, err := Validate(context.Background(), opts)
	if err != nil || len(rep.Issues) == 0 {
		t.Fatal(err)
	}
	key := ""
	for _, is := range rep.Issues {
		if is.Rule == mapping.RuleUnmapped {
			key = is.ThreadKey
		}
	}
	sum := failuresRun(t, srv, store, opts)
	if sum.Rejected != 1 || sum.FailuresDir == "" || key == "" {
		t.Fatalf("rejected %d, folder %q, thread key %q", sum.Rejected, sum.FailuresDir, key)
	}
	copyPath := filepath.Join(sum.FailuresDir, "a.mbox")
	editFile(t, copyPath, "Subject: lost\n", "Subject: lost\nX-Ticket: 9\n")
	opts.Sources = append(opts.Sources, Source{Type: "mbox", Path: copyPath, Name: "fixed.mbox"})
	sum = failuresRun(t, srv, store, opts)
	if sum.Imported != 1 || sum.Rejected != 0 {
		t.Errorf("after the fix: imported %d rejected %d, want 1 and 0", sum.Imported, sum.Rejected)
	}
	if got := eventsOf(srv, 9); len(got[key]) != 1 || got[key][0] != key {
		t.Errorf("ticket 9 holds %v, want thread %s with its message under the original key", got, key)
	}
	failuresRun(t, srv, store, opts)
	assertExactlyOnce(t, srv.Fake, 1)
	if fs, _ := store.Failures(context.Background()); len(fs) != 0 {
		t.Errorf("failures after the fix: %+v", fs)
	}
}

// TestFixedCSVAndJSONRejects: csv and json records that were rejected or
// could not be read at all are written back in their own format (not
// wrapped as mail, which then failed as "no-header"): the csv with its
// header row, the json one object per line. Fixed and added as sources,
// each lands once in its thread; the unreadable originals leave the
// failures list.
func TestFixedCSVAndJSONRejects(t *testing.T) {
	dir := t.TempDir()
	csvPath := writeFile(t, filepath.Join(dir, "m.csv"), csvHeader+
		"c1,c1a,7,2024-01-01 10:00:00,a@example.com,b@example.com,csv thread,first\n"+
		"c1,c1b,7,2024-01-01 11:00:00,,a@example.com,,no sender\n"+
		"c2,c2a,7,2024-01-01 12:00:00,a@example.com,b@example.com,broken,\"never closed\" quote\n"+
		"c1,,7,2024-01-01 13:00:00,a@example.com,b@example.com,,no id and bad date 2024-13-45\n")
	// The last row has no message_id and a good date; make its date bad.
	editFile(t, csvPath, "c1,,7,2024-01-01 13:00:00", "c1,,7,2024-13-45 13:00:00")
	jsonPath := writeFile(t, filepath.Join(dir, "t.jsonl"),
		`{"thread_id":"j1","ticket_id":8,"subject":"json thread","messages":[`+
			`{"message_id":"j1a","created_at":"2024-02-01 10:00:00","from":"a@example.com","to":"b@example.com","body":"first"},`+
			`{"message_id":"j1b","created_at":"2024-02-01 11:00:00","from":"a@example.com","body":"no recipient"}]}`+"\n"+
			`{"thread_id":"j2","ticket_id":8,"messages":[{"message_id":"j2a","created_at":"2024-02-01 12:00:00" "from":"a@example.com","to":"b@example.com","body":"x"}]}`+"\n")
	srcs := []Source{{Type: "csv", Path: csvPath, Name: "m.csv", ThreadKeyPrefix: "crm:"}, {Type: "json", Path: jsonPath, Name: "t.jsonl"}}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := csvOptions(mapping.TicketRules{}, srcs...)
	sum := failuresRun(t, srv, store, opts)
	if sum.FailuresDir == "" {
		t.Fatal("no failures folder")
	}
	csvCopy, jsonCopy := filepath.Join(sum.FailuresDir, "m.csv"), filepath.Join(sum.FailuresDir, "t.jsonl")
	b, err := os.ReadFile(csvCopy)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), sources.MarkSourceField+","+sources.MarkKeyField+","+csvHeader) || strings.Count(string(b), "\n") != 4 {
		t.Errorf("csv copy:\n%s\nwant the header with the marks, then the 3 records", b)
	}
	if jb, err := os.ReadFile(jsonCopy); err != nil || strings.Count(string(jb), "\n") != 2 || strings.Contains(string(jb), "From ") {
		t.Errorf("json copy (%v):\n%s\nwant 2 lines of JSON", err, jb)
	}

	// Fix every record in the copies.
	editFile(t, csvCopy, ",,a@example.com,,no sender", ",b@example.com,a@example.com,,no sender")
	editFile(t, csvCopy, `"never closed" quote`, `"never closed quote"`)
	editFile(t, csvCopy, "2024-13-45 13:00:00", "2024-01-01 13:00:00")
	editFile(t, jsonCopy, `"from":"a@example.com","body":"no recipient"`, `"from":"a@example.com","to":"b@example.com","body":"no recipient"`)
	editFile(t, jsonCopy, `"2024-02-01 12:00:00" "from"`, `"2024-02-01 12:00:00","from"`)
	opts.Sources = append(opts.Sources,
		Source{Type: "csv", Path: csvCopy, Name: "fixed.csv", ThreadKeyPrefix: "crm:"},
		Source{Type: "json", Path: jsonCopy, Name: "fixed.jsonl"})
	sum = failuresRun(t, srv, store, opts)
	if sum.RejectedMsgs != 0 || sum.Rejected != 0 || sum.Failed != 0 || sum.FailuresDir != "" {
		t.Errorf("after the fix: rejected %d messages and %d threads, failed %d, folder %q; want none", sum.RejectedMsgs, sum.Rejected, sum.Failed, sum.FailuresDir)
	}
	if fs, _ := store.Failures(context.Background()); len(fs) != 0 {
		t.Errorf("failures after the fix: %+v", fs)
	}
	got7, got8 := eventsOf(srv, 7), eventsOf(srv, 8)
	if len(got7["crm:c1"]) != 3 || len(got7["crm:c2"]) != 1 || len(got8["j1"]) != 2 || len(got8["j2"]) != 1 {
		t.Errorf("ticket 7 %v, ticket 8 %v; want crm:c1 ×3, crm:c2 ×1, j1 ×2, j2 ×1", got7, got8)
	}
	failuresRun(t, srv, store, opts)
	assertExactlyOnce(t, srv.Fake, 7)
}

// TestBackfillRecordsRejectedReply: a backfill whose only new message is
// rejected (no date), a reply to an imported thread, records it: failures
// lists it and copies it into a failures folder, and the next run says so
// again. Before, the thread was marked complete with the reply's key, the
// summary counted it once, and nothing else ever showed it.
func TestBackfillRecordsRejectedReply(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t1r", "t1", 2, "one reply"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	failuresRun(t, srv, store, opts)
	appendFile(t, path, "From -\nFrom: b@example.com\nTo: a@example.com\nSubject: [#5] re\nMessage-ID: <u1>\nIn-Reply-To: <t1>\n\nno date\n")
	for run := range 2 {
		sum := failuresRun(t, srv, store, opts)
		fails, err := store.Failures(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(fails) != 1 || fails[0].MessageKey != "u1" || sum.FailuresDir == "" {
			t.Fatalf("run %d: failures %+v, folder %q; want u1 and a folder", run, fails, sum.FailuresDir)
		}
		if b, err := os.ReadFile(filepath.Join(sum.FailuresDir, "a.mbox")); err != nil || !strings.Contains(string(b), "<u1>") {
			t.Errorf("run %d: the failures copy does not hold u1: %v\n%s", run, err, b)
		}
	}
	assertExactlyOnce(t, srv.Fake, 2)
}
