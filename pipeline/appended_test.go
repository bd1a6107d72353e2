package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Backfills that read only what was appended (issue 15): an import
// records its read of the sources in the checkpoint, and the next one
// reads only the bytes appended since when the files only grew. The
// result must be what a full read gives.

// appendFile appends msgs to path, each after a blank line, as a mail
// system appends to an mbox.
func appendFile(t *testing.T, path string, msgs ...string) int {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := "\n" + strings.Join(msgs, "\n")
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	return len(s)
}

// readLog is what an import logged about how it read the sources.
type readLog struct {
	appended  bool
	bytesRead int64
	reason    string
}

func parseReadLog(t *testing.T, log string) readLog {
	t.Helper()
	var out readLog
	for _, line := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch m["message"] {
		case "read only what was appended to the sources since the last scan":
			out.appended = true
			out.bytesRead = int64(m["bytes_read"].(float64))
		case "reading every source in full":
			out.reason, _ = m["reason"].(string)
		}
	}
	return out
}

// importLogged imports path into srv with store and returns how it read.
func importLogged(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, path string, full bool) readLog {
	t.Helper()
	var buf bytes.Buffer
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	o.Workers = 1
	o.FullRead = full
	o.Logger = zerolog.New(&buf)
	if _, err := Import(context.Background(), newClient(t, srv), store, o); err != nil {
		t.Fatalf("Import: %v", err)
	}
	return parseReadLog(t, buf.String())
}

// bigArchive is n threads of three messages on ticket 5, with bodies
// long enough that the file is far larger than what is appended.
func bigArchive(n int) []string {
	var msgs []string
	pad := strings.Repeat("a line of an old message body\n", 60)
	for i := range n {
		id := fmt.Sprintf("old%d", i)
		msgs = append(msgs, mail(id, nil, i%60, "[#5] thread "+id)+pad,
			mail(id+"r1", []string{id}, i%60, "Re: [#5] thread "+id)+pad,
			mail(id+"r2", []string{id, id + "r1"}, i%60, "Re: [#5] thread "+id)+pad)
	}
	return msgs
}

// sameAsFullRead imports base then base+grown into a fresh fake with
// full reads, and checks that ticket 5 then holds what got holds.
func sameAsFullRead(t *testing.T, got map[string][]string, base, grown []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ref.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	writeMbox(t, path, base...)
	importLogged(t, srv, store, path, true)
	appendFile(t, path, grown...)
	importLogged(t, srv, store, path, true)
	want, _ := conversations(t, srv.Fake)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the appended read ticket 5 holds\n%v\nafter full reads\n%v", got, want)
	}
}

// TestAppendedBackfillReadsOnlyNewBytes: a backfill of an archive that
// only grew reads the appended bytes (and the digests' few KiB), not the
// archive, and posts what a full read posts.
func TestAppendedBackfillReadsOnlyNewBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	base := bigArchive(200)
	writeMbox(t, path, base...)
	if r := importLogged(t, srv, store, path, false); r.appended || r.reason == "" {
		t.Fatalf("first import: %+v, want a full read with its reason", r)
	}
	grown := []string{
		mail("old7r3", []string{"old7", "old7r2"}, 59, "Re: [#5] thread old7"),
		mail("new1", nil, 59, "[#5] a new thread"),
		mail("new1r1", []string{"new1"}, 59, "Re: [#5] a new thread"),
		mail("old199r3", []string{"old199"}, 59, "Re: [#5] thread old199"),
	}
	added := appendFile(t, path, grown...)
	st, _ := os.Stat(path)
	r := importLogged(t, srv, store, path, false)
	// The digests read at most headBytes+tailBytes twice; the last
	// recorded message is read again.
	limit := int64(added) + 2*(64<<10+4<<10) + int64(len(base[len(base)-1])) + 2
	if !r.appended || r.bytesRead > limit {
		t.Fatalf("backfill read %+v of a %d-byte file with %d bytes appended; want an appended read of at most %d bytes", r, st.Size(), added, limit)
	}
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 604)
	assertIn(t, got, "old7", "old7", "old7r1", "old7r2", "old7r3")
	assertIn(t, got, "new1", "new1", "new1r1")
	sameAsFullRead(t, got, base, grown)
}

// TestAppendedBackfillFallsBack: anything but bytes appended reads every
// source in full, with one log line saying why, and still imports each
// message once.
func TestAppendedBackfillFallsBack(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, path string)
		reason string
	}{
		{"head rewritten", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, bytes.Replace(b, []byte("body of old0\n"), []byte("body of OLD0\n"), 1), 0o644)
		}, "its first bytes changed"},
		{"end rewritten", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, bytes.Replace(b, []byte("body of old39r2\n"), []byte("body of OLD39r2\n"), 1), 0o644)
			appendFile(t, path, mail("x", []string{"old1"}, 9, "Re: [#5] thread old1"))
		}, "the bytes before its old end changed"},
		{"truncated", func(t *testing.T, path string) {
			writeMbox(t, path, bigArchive(10)...)
		}, "shorter than at the last scan"},
		{"missing", func(t *testing.T, path string) {
			os.Remove(path)
		}, "cannot be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.mbox")
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			store := newStore(t)
			writeMbox(t, path, bigArchive(40)...)
			importLogged(t, srv, store, path, false)
			c.change(t, path)
			var buf bytes.Buffer
			o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
			o.Logger = zerolog.New(&buf)
			Import(context.Background(), newClient(t, srv), store, o)
			r := parseReadLog(t, buf.String())
			if r.appended || !strings.Contains(r.reason, c.reason) {
				t.Errorf("read %+v, want a full read because %q", r, c.reason)
			}
			if strings.Count(buf.String(), "reading every source in full") != 1 {
				t.Errorf("want one log line saying why: %s", buf.String())
			}
		})
	}
}

// TestAppendedBackfillJoins: the joins of contract §6 on the appended
// path: new messages linking imported threads go to the earliest part,
// imported messages stay, as with a full read.
func TestAppendedBackfillJoins(t *testing.T) {
	cases := []struct {
		name        string
		base, grown []string
		events      int
	}{
		{"reply references both", cat(partA, partB), []string{mail("x", []string{"b1", "a1"}, 30, "Re: [#5] beta")}, 5},
		{"absent root arrives", cat([]string{mail("a1", []string{"r"}, 1, "Re: [#5] alpha"), mail("a2", []string{"r", "a1"}, 2, "Re: [#5] alpha")}, partB),
			[]string{mail("r", []string{"b1", "b2"}, 30, "Re: [#5] beta")}, 5},
		{"three parts", cat(partA, partB, partC), []string{mail("y", []string{"c1", "b1", "a1"}, 40, "Re: [#5] gamma")}, 7},
		{"missing parent becomes the root", cat(partA), []string{mail("z", []string{"older", "a1"}, 50, "Re: [#5] alpha")}, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.mbox")
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			store := newStore(t)
			writeMbox(t, path, c.base...)
			importLogged(t, srv, store, path, false)
			appendFile(t, path, c.grown...)
			if r := importLogged(t, srv, store, path, false); !r.appended {
				t.Fatalf("backfill read %+v, want an appended read", r)
			}
			got, _ := conversations(t, srv.Fake)
			assertExactlyOnce(t, srv.Fake, c.events)
			sameAsFullRead(t, got, c.base, c.grown)
			before := srv.RequestCount("total")
			if r := importLogged(t, srv, store, path, false); !r.appended || srv.RequestCount("total") != before {
				t.Errorf("importing again: read %+v and sent %d requests; want an appended read and none", r, srv.RequestCount("total")-before)
			}
		})
	}
}

// TestAppendedBackfillResumes: a backfill stopped after one thread
// (--limit) leaves its other new threads to the next run, which reads
// only what was appended and finishes them.
func TestAppendedBackfillResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	writeMbox(t, path, cat(partA, partB)...)
	importLogged(t, srv, store, path, false)
	appendFile(t, path, cat(partC, []string{mail("a3", []string{"a1", "a2"}, 20, "Re: [#5] alpha")})...)
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	o.Workers, o.Limit = 1, 1
	if _, err := Import(context.Background(), newClient(t, srv), store, o); err != nil {
		t.Fatal(err)
	}
	if r := importLogged(t, srv, store, path, false); !r.appended {
		t.Errorf("resumed backfill read %+v, want an appended read", r)
	}
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 7)
	assertIn(t, got, "a1", "a1", "a2", "a3")
	assertIn(t, got, "c1", "c1", "c2")
}

// TestAppendedBackfillCSV: rows appended to a csv file are read alone
// (after the header), and land once, in their threads.
func TestAppendedBackfillCSV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.csv")
	row := func(th, id string, min int) string {
		return fmt.Sprintf("%s,%s,5,2024-03-04 10:%02d:00,a@example.com,b@example.com,subject %s,body of %s\n", th, id, min, th, id)
	}
	var b strings.Builder
	b.WriteString("thread_id,message_id,ticket_id,created_at,from,to,subject,body\n")
	for i := range 50 {
		b.WriteString(row(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d-1", i), i%60))
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := func(buf *bytes.Buffer) Options {
		o := testOptions(path, mapping.TicketRules{})
		o.Sources = []Source{{Type: "csv", Path: path, Name: "m.csv"}}
		o.Logger = zerolog.New(buf)
		return o
	}
	var buf bytes.Buffer
	if _, err := Import(context.Background(), newClient(t, srv), store, opts(&buf)); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(row("c3", "c3-2", 59) + row("new", "new-1", 59))
	f.Close()
	buf.Reset()
	if _, err := Import(context.Background(), newClient(t, srv), store, opts(&buf)); err != nil {
		t.Fatal(err)
	}
	if r := parseReadLog(t, buf.String()); !r.appended || r.bytesRead > 2*(64<<10+4<<10)+1000 {
		t.Errorf("csv backfill read %+v, want an appended read", r)
	}
	assertExactlyOnce(t, srv.Fake, 52)
	got, _ := conversations(t, srv.Fake)
	assertIn(t, got, "c3", "c3-1", "c3-2")
	assertIn(t, got, "new", "new-1")
	// Appended rows are located in the file, not in the copy read.
	msgs, err := store.Messages(context.Background(), "new")
	if err != nil || len(msgs) != 1 || msgs[0].Source != "m.csv:53" {
		t.Errorf("the new row's message: %+v %v, want source m.csv:53", msgs, err)
	}
}

// scanAtFirstImport is an API that notes, at its first Import, how many
// envelopes the checkpoint's scan record holds then.
type scanAtFirstImport struct {
	API
	store *checkpoint.Store
	once  sync.Once
	seen  int64
}

func (a *scanAtFirstImport) Import(ctx context.Context, ticketID int64, req *zendesk.ImportRequest) (*zendesk.ImportResponse, error) {
	a.once.Do(func() {
		st, _, err := a.store.ScanState(ctx)
		if err == nil {
			a.seen = st.Envelopes
		}
	})
	return a.API.Import(ctx, ticketID, req)
}

// TestBackfillRecordsScanAfterItsRequests: the scan record (thousands of
// random b-tree inserts: 0.75 s at 400,000 messages) is written once the
// run's work is over, not before its first request; the run after it
// still reads only what was appended.
func TestBackfillRecordsScanAfterItsRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	writeMbox(t, path, cat(partA, partB)...)
	importLogged(t, srv, store, path, false)
	before, _, err := store.ScanState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, partC...)
	api := &scanAtFirstImport{API: newClient(t, srv), store: store, seen: -1}
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	if _, err := Import(context.Background(), api, store, o); err != nil {
		t.Fatal(err)
	}
	after, _, err := store.ScanState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if api.seen != before.Envelopes || after.Envelopes <= before.Envelopes {
		t.Errorf("scan record at the first request held %d envelopes, after the run %d; want the earlier run's %d, then more",
			api.seen, after.Envelopes, before.Envelopes)
	}
	appendFile(t, path, mail("a9", []string{"a1"}, 30, "Re: [#5] alpha"))
	if r := importLogged(t, srv, store, path, false); !r.appended {
		t.Errorf("the run after read %+v, want an appended read", r)
	}
	assertExactlyOnce(t, srv.Fake, 7)
}
