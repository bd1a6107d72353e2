package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// Backfills that join threads imported separately (contract §6): no
// message key is ever posted twice to a ticket, messages already imported
// stay where they are, new ones go to the side conversation of the
// earliest imported part, and the join is a warning.

// mail is one mbox message on ticket 5 (through its subject) with the
// given References, oldest first.
func mail(id string, refs []string, minute int, subject string) string {
	s := fmt.Sprintf("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: %s\nDate: Mon, 4 Mar 2024 10:%02d:00 +0000\nMessage-ID: <%s>\n", subject, minute, id)
	if len(refs) > 0 {
		s += "References: <" + strings.Join(refs, "> <") + ">\n"
		s += "In-Reply-To: <" + refs[len(refs)-1] + ">\n"
	}
	return s + "\nbody of " + id + "\n"
}

// joinRun imports the archive made of msgs into srv with store, one
// worker so that the order of the side conversations is known.
func joinRun(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, path string, subjectThreading bool, msgs ...string) (sumJSON string) {
	t.Helper()
	writeMbox(t, path, msgs...)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Workers = 1
	opts.Threading = thread.Options{SubjectThreading: subjectThreading}
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	b, _ := json.Marshal(sum)
	return string(b)
}

// conversations returns ticket 5's side conversations as thread key →
// message keys, and the thread keys in creation order.
func conversations(t *testing.T, f *zendesktest.Fake) (map[string][]string, []string) {
	t.Helper()
	out := map[string][]string{}
	var order []string
	for _, c := range f.SideConversations(5) {
		k := c.SideConversation.ExternalIDs[zendesk.ThreadKeyField]
		order = append(order, k)
		for _, e := range c.Events {
			out[k] = append(out[k], e.Message.ExternalIDs[zendesk.MessageKeyField])
		}
	}
	return out, order
}

// assertIn checks that the side conversation of thread key holds exactly
// the message keys want, in this order.
func assertIn(t *testing.T, got map[string][]string, key string, want ...string) {
	t.Helper()
	if fmt.Sprint(got[key]) != fmt.Sprint(want) {
		t.Errorf("side conversation %q holds %v, want %v (all: %v)", key, got[key], want, got)
	}
}

// assertHonestCounts checks that status shows nothing pending or in
// flight forever and counts each message once.
func assertHonestCounts(t *testing.T, store *checkpoint.Store, imported int) {
	t.Helper()
	c, err := store.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Threads[checkpoint.Pending] != 0 || c.Threads[checkpoint.InFlight] != 0 || c.Threads[checkpoint.Created] != 0 ||
		c.Threads[checkpoint.Failed] != 0 || c.Messages.Pending != 0 || c.Messages.Imported != imported {
		t.Errorf("status after the join: threads %v, messages %+v; want nothing pending, in flight, created or failed and %d imported messages",
			c.Threads, c.Messages, imported)
	}
}

// assertQuiet imports the same archive again: nothing is sent.
func assertQuiet(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, path string, subjectThreading bool, msgs ...string) {
	t.Helper()
	before := srv.RequestCount("total")
	joinRun(t, srv, store, path, subjectThreading, msgs...)
	if n := srv.RequestCount("total") - before; n != 0 {
		t.Errorf("importing the joined archive again sent %d requests, want 0", n)
	}
}

func assertJoinWarning(t *testing.T, sum string, keys ...string) {
	t.Helper()
	if !strings.Contains(sum, `"thread-joined"`) {
		t.Errorf("summary has no thread-joined warning: %s", sum)
		return
	}
	for _, k := range keys {
		if !strings.Contains(sum, k) {
			t.Errorf("the join warning does not name part %q: %s", k, sum)
		}
	}
}

var (
	partA = []string{mail("a1", nil, 1, "[#5] alpha"), mail("a2", []string{"a1"}, 2, "Re: [#5] alpha")}
	partB = []string{mail("b1", nil, 3, "[#5] beta"), mail("b2", []string{"b1"}, 4, "Re: [#5] beta")}
	partC = []string{mail("c1", nil, 5, "[#5] gamma"), mail("c2", []string{"c1"}, 6, "Re: [#5] gamma")}
)

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestJoinBackfillReplyReferencesBoth: a reply whose References name a
// root of each of two imported threads joins them.
func TestJoinBackfillReplyReferencesBoth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	joinRun(t, srv, store, path, false, cat(partA, partB)...)

	grown := cat(partA, partB, []string{mail("x", []string{"a1", "b1"}, 30, "Re: [#5] alpha")})
	sum := joinRun(t, srv, store, path, false, grown...)
	got, order := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 5)
	assertIn(t, got, "a1", "a1", "a2", "x") // the earliest part
	assertIn(t, got, "b1", "b1", "b2")
	if fmt.Sprint(order) != "[a1 b1]" {
		t.Errorf("side conversations %v, want [a1 b1]", order)
	}
	assertJoinWarning(t, sum, "a1", "b1")
	assertHonestCounts(t, store, 5)
	assertQuiet(t, srv, store, path, false, grown...)
}

// TestJoinBackfillAbsentRootArrives: thread A's root r was missing (A is
// keyed r); r arrives as a reply to thread B, which joins A and B under
// B's key. r goes to A, the part imported first.
func TestJoinBackfillAbsentRootArrives(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	a := []string{mail("a1", []string{"r"}, 1, "Re: [#5] alpha"), mail("a2", []string{"r", "a1"}, 2, "Re: [#5] alpha")}
	joinRun(t, srv, store, path, false, cat(a, partB)...)
	if _, order := conversations(t, srv.Fake); fmt.Sprint(order) != "[r b1]" {
		t.Fatalf("first run: side conversations %v, want [r b1]", order)
	}

	grown := cat(a, partB, []string{mail("r", []string{"b1", "b2"}, 30, "Re: [#5] beta")})
	sum := joinRun(t, srv, store, path, false, grown...)
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 5)
	assertIn(t, got, "r", "a1", "a2", "r")
	assertIn(t, got, "b1", "b1", "b2")
	assertJoinWarning(t, sum, "r", "b1")
	assertHonestCounts(t, store, 5)
	assertQuiet(t, srv, store, path, false, grown...)
}

// TestJoinBackfillSubjectThreadingSwitchedOn: two threads with the same
// subject, imported apart, are joined once subject_threading is on; a new
// reply to the second goes to the first.
func TestJoinBackfillSubjectThreadingSwitchedOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	a := []string{mail("a1", nil, 1, "[#5] printer on fire"), mail("a2", []string{"a1"}, 2, "Re: [#5] printer on fire")}
	b := []string{mail("b1", nil, 3, "Re: [#5] printer on fire"), mail("b2", []string{"b1"}, 4, "Re: [#5] printer on fire")}
	joinRun(t, srv, store, path, false, cat(a, b)...)

	grown := cat(a, b, []string{mail("b3", []string{"b1", "b2"}, 30, "Re: [#5] printer on fire")})
	sum := joinRun(t, srv, store, path, true, grown...)
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 5)
	assertIn(t, got, "a1", "a1", "a2", "b3")
	assertIn(t, got, "b1", "b1", "b2")
	assertJoinWarning(t, sum, "a1", "b1")
	assertHonestCounts(t, store, 5)
	assertQuiet(t, srv, store, path, true, grown...)
}

// TestJoinBackfillThreeParts: one reply links three imported threads; the
// joined thread is keyed by the third one's root (the top of the new
// tree), and the new message still goes to the part imported first.
func TestJoinBackfillThreeParts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	joinRun(t, srv, store, path, false, cat(partA, partB, partC)...)

	grown := cat(partA, partB, partC, []string{mail("x", []string{"c1", "b1", "a1"}, 30, "Re: [#5] alpha")})
	sum := joinRun(t, srv, store, path, false, grown...)
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 7)
	assertIn(t, got, "a1", "a1", "a2", "x")
	assertIn(t, got, "b1", "b1", "b2")
	assertIn(t, got, "c1", "c1", "c2")
	assertJoinWarning(t, sum, "a1", "b1", "c1")
	assertHonestCounts(t, store, 7)
	assertQuiet(t, srv, store, path, false, grown...)
}

// TestJoinBackfillSplitAfterSubjectThreadingOff: a thread imported as one
// by subject splits in two once subject_threading is off; the split-off
// part's messages stay where they are and its new reply joins them there.
func TestJoinBackfillSplitAfterSubjectThreadingOff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	a := []string{mail("a1", nil, 1, "[#5] printer on fire"), mail("a2", []string{"a1"}, 2, "Re: [#5] printer on fire")}
	b := []string{mail("b1", nil, 3, "Re: [#5] printer on fire"), mail("b2", []string{"b1"}, 4, "Re: [#5] printer on fire")}
	joinRun(t, srv, store, path, true, cat(a, b)...)
	if got, _ := conversations(t, srv.Fake); len(got) != 1 {
		t.Fatalf("first run with subject threading: %v, want one side conversation", got)
	}

	grown := cat(a, b, []string{mail("b3", []string{"b1", "b2"}, 30, "Re: [#5] printer on fire")})
	sum := joinRun(t, srv, store, path, false, grown...)
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 5)
	assertIn(t, got, "a1", "a1", "a2", "b1", "b2", "b3")
	if !strings.Contains(sum, `"thread-joined"`) {
		t.Errorf("summary has no thread-joined warning for the split-off part: %s", sum)
	}
	assertHonestCounts(t, store, 5)
	assertQuiet(t, srv, store, path, false, grown...)
}

// TestJoinBackfillPartInFlight: the second part was left in flight by a
// crash (its import recorded as about to be sent, no answer); the join
// looks on the ticket first. Whether that import landed or not, every
// message is there once and the new one is in the earliest part.
func TestJoinBackfillPartInFlight(t *testing.T) {
	for _, landed := range []bool{true, false} {
		t.Run(fmt.Sprintf("landed=%v", landed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.mbox")
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			store := newStore(t)
			ctx := context.Background()
			joinRun(t, srv, store, path, false, partA...)

			// The crashed run: B's import recorded as about to be sent,
			// then (perhaps) sent, and no answer recorded.
			reg := checkpoint.Registration{
				Thread:   checkpoint.Thread{Key: "b1", TicketID: 5, EventsTotal: 2, Subject: "[#5] beta"},
				Messages: []checkpoint.Message{{Key: "b1", Seq: 0}, {Key: "b2", Seq: 1}},
			}
			if err := store.RegisterInFlight(ctx, nil, reg, checkpoint.KindImport, []string{"b1", "b2"}); err != nil {
				t.Fatal(err)
			}
			if landed {
				req := &zendesk.ImportRequest{SideConversation: zendesk.ImportSideConversation{
					Subject: "[#5] beta", ExternalIDs: map[string]string{zendesk.ThreadKeyField: "b1"}}}
				for i, k := range []string{"b1", "b2"} {
					req.Events = append(req.Events, zendesk.ImportEvent{CreatedAt: mustTime(t, fmt.Sprintf("2024-03-04T10:%02d:00Z", 3+i)),
						Message: zendesk.Message{Subject: "[#5] beta", Body: "body of " + k, From: &zendesk.Participant{Email: "a@example.com"},
							To: []zendesk.Participant{{Email: "b@example.com"}}, ExternalIDs: map[string]string{zendesk.MessageKeyField: k}}})
				}
				if _, err := newClient(t, srv).Import(ctx, 5, req); err != nil {
					t.Fatal(err)
				}
			}

			grown := cat(partA, partB, []string{mail("x", []string{"a1", "b1"}, 30, "Re: [#5] alpha")})
			joinRun(t, srv, store, path, false, grown...)
			got, _ := conversations(t, srv.Fake)
			assertExactlyOnce(t, srv.Fake, 5)
			if landed {
				assertIn(t, got, "a1", "a1", "a2", "x")
				assertIn(t, got, "b1", "b1", "b2")
			} else {
				assertIn(t, got, "a1", "a1", "a2", "b1", "b2", "x")
			}
			assertHonestCounts(t, store, 5)
			assertQuiet(t, srv, store, path, false, grown...)
		})
	}
}

// TestJoinLookupIsPerTicket: two exports that both number their messages
// 1..N, on different tickets, are not taken for one another.
func TestJoinLookupIsPerTicket(t *testing.T) {
	dir := t.TempDir()
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	for i, ticket := range []int{5, 6} {
		path := filepath.Join(dir, fmt.Sprintf("export%d.jsonl", i))
		var b strings.Builder
		for m := 1; m <= 2; m++ {
			fmt.Fprintf(&b, `{"thread_id":"conv-%d","message_id":"%d","ticket_id":"%d","created_at":"2024-03-04T10:0%d:00Z","from":"a@example.com","to":"b@example.com","subject":"s","body":"export %d message %d"}`+"\n",
				ticket, m, ticket, m, i, m)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		opts := testOptions(path, mapping.TicketRules{})
		opts.Sources = []Source{{Type: "json", Path: path, Name: filepath.Base(path)}}
		if _, err := Import(context.Background(), newClient(t, srv), store, opts); err != nil {
			t.Fatal(err)
		}
	}
	for _, ticket := range []int64{5, 6} {
		convs := srv.SideConversations(ticket)
		if len(convs) != 1 || len(convs[0].Events) != 2 {
			t.Errorf("ticket %d: %d side conversations (%+v), want one with messages 1 and 2", ticket, len(convs), convs)
		}
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestJoinIntoFailedPart: the earliest part failed since (it waits for
// `threadlift retry`): the joined thread fails too, without stopping the
// run, and lands once the part is retried.
func TestJoinIntoFailedPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	ctx := context.Background()
	joinRun(t, srv, store, path, false, cat(partA, partB)...)
	// A got a message whose append the API refused.
	if err := store.Register(ctx, checkpoint.Thread{Key: "a1", TicketID: 5, EventsTotal: 3}, []checkpoint.Message{{Key: "a1"}, {Key: "a2", Seq: 1}, {Key: "a3", Seq: 2}}); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkFailed(ctx, "a1", checkpoint.Failure{Rule: RuleHTTP, Reason: "422", HTTPStatus: 422}); err != nil {
		t.Fatal(err)
	}
	// x joins B (the root, so the thread's key) and A (imported first).
	grown := cat(partA, partB, []string{mail("x", []string{"b1", "a1"}, 30, "Re: [#5] beta")})
	before := srv.RequestCount("events_import")
	sum := joinRun(t, srv, store, path, false, grown...)
	if n := srv.RequestCount("events_import") - before; n != 0 {
		t.Errorf("%d events/import sent while the part they go to is failed, want 0", n)
	}
	// b1 itself stays done (what it imported is complete); the thread is
	// counted failed and looked at again by the next run.
	if !strings.Contains(sum, `"failed":1`) {
		t.Errorf("summary %s: want the joined thread failed", sum)
	}
	if _, err := store.Retry(ctx); err != nil {
		t.Fatal(err)
	}
	joinRun(t, srv, store, path, false, grown...)
	got, _ := conversations(t, srv.Fake)
	assertExactlyOnce(t, srv.Fake, 5)
	assertIn(t, got, "a1", "a1", "a2", "x")
}

// TestJoinBackfillAcrossTickets: a reply that references two imported
// threads on different tickets joins them. The joined thread maps to one
// ticket (its root's); the messages the other part imported stay on the
// other ticket and are not posted again, nor on this one; the reply goes
// to the part on the ticket the thread maps to.
func TestJoinBackfillAcrossTickets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	partD := []string{mail("d1", nil, 7, "[#6] delta"), mail("d2", []string{"d1"}, 8, "Re: [#6] delta")}
	joinRun(t, srv, store, path, false, cat(partA, partD)...)

	grown := cat(partA, partD, []string{mail("x", []string{"d1", "a1"}, 30, "Re: [#6] delta")})
	sum := joinRun(t, srv, store, path, false, grown...)
	assertExactlyOnce(t, srv.Fake, 5)
	got := conversationsOf(srv.Fake, 5)
	assertIn(t, got, "a1", "a1", "a2")
	got6 := conversationsOf(srv.Fake, 6)
	assertIn(t, got6, "d1", "d1", "d2", "x")
	assertJoinWarning(t, sum, "a1")
	assertHonestCounts(t, store, 5)
	assertQuiet(t, srv, store, path, false, grown...)
}
