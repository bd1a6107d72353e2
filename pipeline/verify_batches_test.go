package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Verify in batches (issue 15): an archive bigger than Options.ReadChunk
// is planned a batch at a time and each ticket's threads are loaded again
// from the temporary record. Whatever the chunk size, the report, every
// ticket's report, the progress and what --adopt records must be a whole
// read's.

// verifyCalls records what verify tells its progress.
type verifyCalls struct {
	mu                                  sync.Mutex
	read                                int64
	threads, threadDone, tickets, ticks int
}

func (p *verifyCalls) ReadBytes(n int64) { p.mu.Lock(); p.read += n; p.mu.Unlock() }
func (p *verifyCalls) Threads(n int)     { p.mu.Lock(); p.threads += n; p.mu.Unlock() }
func (p *verifyCalls) ThreadDone()       { p.mu.Lock(); p.threadDone++; p.mu.Unlock() }
func (p *verifyCalls) Tickets(n int)     { p.mu.Lock(); p.tickets += n; p.mu.Unlock() }
func (p *verifyCalls) TicketDone()       { p.mu.Lock(); p.ticks++; p.mu.Unlock() }

func (p *verifyCalls) String() string {
	return fmt.Sprintf("read %d, threads %d, threads done %d, tickets %d, tickets done %d", p.read, p.threads, p.threadDone, p.tickets, p.ticks)
}

// verifyMismatchArchive writes spanningArchive (tickets 5, 6, 7) and a
// JSON Lines file on ticket 8 with unreadable lines, imports part of it
// into a fake holding tickets 5..7 only (ticket 8 is not found), and
// returns the options of a run over both files, the import's checkpoint
// file (closed; with one pending thread marked failed) and another
// account holding what the import sent but one side conversation (lost),
// plus a duplicated side conversation, a duplicated message, a foreign
// thread and a thread of ticket 6 on ticket 5.
func verifyMismatchArchive(t *testing.T) (opts func(chunk int) Options, cp string, srv *zendesktest.Server) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	writeMbox(t, path, spanningArchive(5)...)
	jsonl := writeGroupedJSONL(t, dir)
	opts = func(chunk int) Options {
		o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
		o.Sources = append(o.Sources, Source{Type: "json", Path: jsonl, Name: "b.jsonl"})
		o.ReadChunk = chunk
		o.Now = func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		return o
	}
	sandbox := zendesktest.NewServer(t, zendesktest.Config{})
	for _, id := range []int64{5, 6, 7} {
		sandbox.AddTicket(id, "")
	}
	cp = filepath.Join(dir, "cp.db")
	store := openStore(t, cp)
	o := opts(0)
	o.Limit, o.Workers = 30, 1 // the rest is never imported: missing
	ctx := context.Background()
	if _, err := Import(ctx, newClient(t, sandbox), store, o); err != nil {
		t.Logf("import: %v", err) // ticket 8's threads fail with 404
	}
	failPending(t, store)
	store.Close()

	dump := sandbox.Dump()
	for i := range dump {
		if dump[i].ID == 7 {
			dump[i].SideConversations = dump[i].SideConversations[1:] // lost
		}
	}
	srv = zendesktest.NewServer(t, zendesktest.Config{})
	if err := srv.Load(dump); err != nil {
		t.Fatal(err)
	}
	on5, on6 := srv.SideConversations(5), srv.SideConversations(6)
	if len(on5) < 3 || len(on6) < 1 {
		t.Fatalf("import left %d side conversations on 5, %d on 6", len(on5), len(on6))
	}
	if _, ok := srv.CopySideConversation(5, on5[0].ID); !ok {
		t.Fatal("no side conversation to copy")
	}
	srv.AddEvent(5, on5[1].ID, on5[1].Events[0].Message.ExternalIDs[zendesk.MessageKeyField])
	srv.AddEvent(5, on5[2].ID, "")
	srv.Plant(5, zendesktest.Planted{ThreadKey: "foreign@elsewhere", MessageKeys: []string{"f1@elsewhere"}})
	key6 := on6[0].ExternalIDs[zendesk.ThreadKeyField]
	srv.Plant(5, zendesktest.Planted{ThreadKey: key6, MessageKeys: []string{key6}})
	return opts, cp, srv
}

// failPending records thread t19m0 of spanningArchive(5) (ticket 6,
// one message, beyond the import's limit) as failed.
func failPending(t *testing.T, store *checkpoint.Store) {
	t.Helper()
	ctx := context.Background()
	if _, found, err := store.Thread(ctx, "t19m0"); err != nil || found {
		t.Fatalf("thread t19m0 in the import's checkpoint: %v, %v; want it never sent", found, err)
	}
	if err := store.Register(ctx, checkpoint.Thread{Key: "t19m0", TicketID: 6}, []checkpoint.Message{{Key: "t19m0"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkFailed(ctx, "t19m0", checkpoint.Failure{Rule: RuleHTTP, Reason: "422", HTTPStatus: 422}); err != nil {
		t.Fatal(err)
	}
}

// requestID is the fake's request id in an error: new on every request.
var requestID = regexp.MustCompile(`\(request id [0-9a-f-]+\)`)

// verifyAs runs Verify in chunks of chunk messages and returns its
// report and every ticket's, as JSON, and the progress calls.
func verifyAs(t *testing.T, api ReadAPI, o VerifyOptions) (rep string, tickets []string, calls string) {
	t.Helper()
	p := &verifyCalls{}
	o.Progress = p
	o.OnTicket = func(tr *TicketReport) error {
		b, err := json.Marshal(tr)
		tickets = append(tickets, requestID.ReplaceAllString(string(b), "(request id …)"))
		return err
	}
	r, err := Verify(context.Background(), api, o)
	if err != nil {
		t.Fatalf("verify in chunks of %d: %v", o.ReadChunk, err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), tickets, p.String()
}

// dumpCheckpoint is every thread and message a checkpoint holds (times
// aside), in key order.
func dumpCheckpoint(t *testing.T, s *checkpoint.Store) string {
	t.Helper()
	ctx := context.Background()
	threads, err := s.Threads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(threads))
	for k := range threads {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		th := threads[k]
		th.UpdatedAt = time.Time{}
		msgs, err := s.Messages(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%+v\n  %+v\n", th, msgs)
	}
	counts, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "%+v\n", counts)
	return b.String()
}

// TestVerifyInBatchesAsWhole: verify reads an archive bigger than
// Options.ReadChunk in batches and reports exactly what a whole read
// does: the report, every ticket's report in the same order (missing
// with the checkpoint's reasons, duplicated, unexpected, on the wrong
// ticket, a ticket not found, unreadable records), and the progress.
func TestVerifyInBatchesAsWhole(t *testing.T) {
	opts, cp, srv := verifyMismatchArchive(t)
	store := openStore(t, cp)
	c := newClient(t, srv)
	want, wantTickets, wantCalls := verifyAs(t, c, VerifyOptions{Options: opts(0), Checkpoint: store})
	for _, s := range []string{`"wrong_ticket_side_conversations":1`, `"tickets_not_found":1`, `"unexpected_side_conversations":1`,
		`"lost":`, `"failed":`, `"ticket_not_found":`, `"not_imported":`} {
		if !strings.Contains(want, s) {
			t.Errorf("the whole read's report lacks %s: %s", s, want)
		}
	}
	if len(wantTickets) != 4 {
		t.Fatalf("%d tickets reported, want 4", len(wantTickets))
	}
	for _, chunk := range []int{1, 5, 40} {
		got, tickets, calls := verifyAs(t, c, VerifyOptions{Options: opts(chunk), Checkpoint: store})
		if got != want {
			t.Errorf("report in chunks of %d:\n%s\nwhole:\n%s", chunk, got, want)
		}
		if fmt.Sprint(tickets) != fmt.Sprint(wantTickets) {
			t.Errorf("tickets in chunks of %d:\n%s\nwhole:\n%s", chunk, strings.Join(tickets, "\n"), strings.Join(wantTickets, "\n"))
		}
		if calls != wantCalls {
			t.Errorf("progress in chunks of %d: %s, whole: %s", chunk, calls, wantCalls)
		}
	}
	// From a start ticket, too.
	o := VerifyOptions{Options: opts(0), Checkpoint: store, StartTicket: 6}
	want, wantTickets, _ = verifyAs(t, c, o)
	o.ReadChunk = 5
	if got, tickets, _ := verifyAs(t, c, o); got != want || fmt.Sprint(tickets) != fmt.Sprint(wantTickets) {
		t.Errorf("from ticket 6 in chunks of 5:\n%s\n%v\nwhole:\n%s\n%v", got, tickets, want, wantTickets)
	}
}

// TestVerifyAdoptInBatchesAsWhole: verify --adopt in batches records
// into the checkpoint exactly what it records after a whole read.
func TestVerifyAdoptInBatchesAsWhole(t *testing.T) {
	opts, cp, srv := verifyMismatchArchive(t)
	c := newClient(t, srv)
	// Into the import's checkpoint, and into a new one (the checkpoint
	// deleted).
	adopt := func(chunk int, fresh bool) (string, []string, string) {
		path := filepath.Join(t.TempDir(), "cp.db")
		if !fresh {
			copyFile(t, cp, path)
		}
		store := openStore(t, path)
		rep, tickets, _ := verifyAs(t, c, VerifyOptions{Options: opts(chunk), Checkpoint: store, Adopt: true})
		return rep, tickets, dumpCheckpoint(t, store)
	}
	for _, fresh := range []bool{false, true} {
		want, wantTickets, wantCP := adopt(0, fresh)
		if !strings.Contains(want, `"adopted":{"threads":`) || strings.Contains(want, `"adopted":{"threads":0,`) || len(wantCP) < 1000 {
			t.Fatalf("the whole read's adopt: %s\n%s", want, wantCP)
		}
		for _, chunk := range []int{1, 5, 40} {
			got, tickets, gotCP := adopt(chunk, fresh)
			if got != want || fmt.Sprint(tickets) != fmt.Sprint(wantTickets) {
				t.Errorf("adopt in chunks of %d:\n%s\n%v\nwhole:\n%s\n%v", chunk, got, tickets, want, wantTickets)
			}
			if gotCP != wantCP {
				t.Errorf("checkpoint adopted in chunks of %d:\n%s\nwhole:\n%s", chunk, gotCP, wantCP)
			}
		}
	}
}
