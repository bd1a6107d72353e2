package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/pipeline/archive"
	"github.com/threadlift/threadlift/sources/formats"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// verifyArchive writes an mbox of n threads over the given number of
// tickets (101, 102, ...): thread i has 1 + i%3 messages, keyed
// "t<i>-m<j>@example.com"; its thread key is "t<i>-m0@example.com". It
// returns the number of messages.
func verifyArchive(t testing.TB, path string, n, tickets int) int {
	t.Helper()
	var b bytes.Buffer
	msgs := 0
	for i := range n {
		for j := 0; j <= i%3; j++ {
			fmt.Fprintf(&b, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a%d@example.com\nTo: support@example.com\nSubject: [#%d] thread %d\nDate: Mon, 4 Mar 2024 %02d:%02d:%02d +0000\nMessage-ID: <t%d-m%d@example.com>\n",
				i, 101+i%tickets, i, j, (i/60)%60, i%60, i, j)
			if j > 0 {
				fmt.Fprintf(&b, "In-Reply-To: <t%d-m%d@example.com>\n", i, j-1)
			}
			fmt.Fprintf(&b, "\nmessage %d of thread %d\n\n", j, i)
			msgs++
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return msgs
}

func verifyOptions(path string) Options {
	o := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	o.Mapper = mapping.New(mapping.Options{Ticket: mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}, MaxEventsPerRequest: 2})
	return o
}

// runVerify runs Verify and collects the ticket reports by id.
func runVerify(t *testing.T, api ReadAPI, o VerifyOptions) (*VerifyReport, map[int64]*TicketReport, error) {
	t.Helper()
	got := map[int64]*TicketReport{}
	var order []int64
	o.OnTicket = func(tr *TicketReport) error {
		got[tr.TicketID] = tr
		order = append(order, tr.TicketID)
		return nil
	}
	rep, err := Verify(context.Background(), api, o)
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] {
			t.Errorf("tickets reported out of order: %v", order)
			break
		}
	}
	return rep, got, err
}

func scWithKey(f *zendesktest.Fake, ticket int64, key string) string {
	for _, c := range f.SideConversations(ticket) {
		if c.ExternalIDs[zendesk.ThreadKeyField] == key {
			return c.ID
		}
	}
	return ""
}

// TestVerifyExactlyOnceAfterImport: after a clean import, every thread
// and message is there exactly once, with one list request per ticket.
func TestVerifyExactlyOnceAfterImport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	msgs := verifyArchive(t, path, 30, 4)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	c := newClient(t, srv)
	if _, err := Import(context.Background(), c, newStore(t), verifyOptions(path)); err != nil {
		t.Fatal(err)
	}
	before := srv.RequestCount("total")
	var plan VerifyPlan
	rep, tickets, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path), OnPlan: func(p VerifyPlan) { plan = p }})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || !rep.Complete || rep.TicketsVerified != 4 || len(tickets) != 4 {
		t.Fatalf("Verify = %+v, want OK and complete over 4 tickets", rep)
	}
	want := Counts{Planned: 30, Present: 30, MissingByReason: map[string]int{}}
	if diff := cmp.Diff(want, rep.Threads); diff != "" {
		t.Errorf("threads (-want +got):\n%s", diff)
	}
	if rep.Messages.Planned != msgs || rep.Messages.Present != msgs {
		t.Errorf("messages = %+v, want %d present", rep.Messages, msgs)
	}
	if n := srv.RequestCount("total") - before; n != 4 || rep.Requests != 4 {
		t.Errorf("%d requests (verify counted %d), want 4: one list per ticket", n, rep.Requests)
	}
	if plan.Tickets != 4 || plan.Requests != 4 || plan.Threads != 30 {
		t.Errorf("plan = %+v, want 4 tickets, 4 requests, 30 threads", plan)
	}
	if n := srv.RequestCount("import") + srv.RequestCount("events_import"); n != 30+10 {
		t.Errorf("fake saw %d writes, want only the import's 40", n) // verify writes nothing
	}
}

// TestVerifyFindsDuplicatesMissingUnexpected plants every kind of
// mismatch on an imported account and checks that verify names each one.
func TestVerifyFindsDuplicatesMissingUnexpected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 12, 3) // tickets 101, 102, 103; thread i on 101 + i%3
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	c := newClient(t, srv)
	o := verifyOptions(path)
	o.Limit = 10  // threads 10 and 11 are never imported
	o.Workers = 1 // --limit takes the first threads to reach a write: in order with one worker
	if _, err := Import(context.Background(), c, newStore(t), o); err != nil {
		t.Fatal(err)
	}
	// Thread 0 (ticket 101) sent twice.
	if _, ok := srv.CopySideConversation(101, scWithKey(srv.Fake, 101, "t0-m0@example.com")); !ok {
		t.Fatal("no side conversation for t0")
	}
	// Message t2-m1 of thread 2 (ticket 103) appended twice; an agent's
	// reply without a key.
	sc2 := scWithKey(srv.Fake, 103, "t2-m0@example.com")
	srv.AddEvent(103, sc2, "t2-m1@example.com")
	srv.AddEvent(103, sc2, "")
	// Another archive's thread, a side conversation made in the UI, and
	// thread 4 (ticket 102) also put on ticket 101.
	srv.Plant(101, zendesktest.Planted{ThreadKey: "foreign@elsewhere", MessageKeys: []string{"f1@elsewhere"}})
	srv.Plant(101, zendesktest.Planted{Subject: "made in the UI", MessageKeys: []string{""}})
	srv.Plant(101, zendesktest.Planted{ThreadKey: "t4-m0@example.com", MessageKeys: []string{"t4-m0@example.com"}})

	rep, tickets, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK {
		t.Fatalf("Verify OK, want problems: %+v", rep)
	}
	t101, t102, t103 := tickets[101], tickets[102], tickets[103]
	if diff := cmp.Diff([]DuplicatedItem{
		{ThreadKey: "t0-m0@example.com", MessageKey: "t0-m0@example.com", Count: 2, SideConversationIDs: t101.Duplicated[0].SideConversationIDs},
		{ThreadKey: "t0-m0@example.com", Count: 2, SideConversationIDs: t101.Duplicated[1].SideConversationIDs},
	}, t101.Duplicated); diff != "" {
		t.Errorf("ticket 101 duplicated (-want +got):\n%s", diff)
	}
	if len(t103.Duplicated) != 1 || t103.Duplicated[0].MessageKey != "t2-m1@example.com" || t103.Duplicated[0].Count != 2 {
		t.Errorf("ticket 103 duplicated = %+v, want t2-m1 twice", t103.Duplicated)
	}
	if t103.EventsWithoutKey != 1 || t101.WithoutKey != 1 {
		t.Errorf("events without key %d on 103, side conversations without key %d on 101; want 1, 1", t103.EventsWithoutKey, t101.WithoutKey)
	}
	// Threads 10 (ticket 102, 2 messages) and 11 (ticket 103, 3 messages)
	// were never imported.
	wantMissing := map[int64][]MissingItem{
		102: {{ThreadKey: "t10-m0@example.com", MessageKey: "t10-m0@example.com", Reason: MissingNotImported, Source: "a.mbox@4230"},
			{ThreadKey: "t10-m0@example.com", MessageKey: "t10-m1@example.com", Reason: MissingNotImported, Source: "a.mbox@4441"},
			{ThreadKey: "t10-m0@example.com", Reason: MissingNotImported, Source: "a.mbox@4230"}},
	}
	if diff := cmp.Diff(wantMissing[102], t102.Missing); diff != "" {
		t.Errorf("ticket 102 missing (-want +got):\n%s", diff)
	}
	if t103.Threads.MissingByReason[MissingNotImported] != 1 || t103.Messages.Missing != 3 {
		t.Errorf("ticket 103 = threads %+v messages %+v, want thread 11 and its 3 messages missing", t103.Threads, t103.Messages)
	}
	var unexpected, wrong []UnexpectedItem
	for _, u := range t101.Unexpected {
		if u.ExpectedTicketID != 0 {
			wrong = append(wrong, u)
		} else {
			unexpected = append(unexpected, u)
		}
	}
	if len(unexpected) != 1 || unexpected[0].ThreadKey != "foreign@elsewhere" || unexpected[0].Messages != 1 {
		t.Errorf("ticket 101 unexpected = %+v, want the foreign thread", unexpected)
	}
	if len(wrong) != 1 || wrong[0].ThreadKey != "t4-m0@example.com" || wrong[0].ExpectedTicketID != 102 {
		t.Errorf("ticket 101 wrong ticket = %+v, want t4 expected on 102", wrong)
	}
	if rep.Threads.Duplicated != 1 || rep.Messages.Duplicated != 2 || rep.Threads.Missing != 2 || rep.Messages.Missing != 5 ||
		rep.UnexpectedSideConversations != 1 || rep.WrongTicket != 1 || rep.WithoutKey != 1 || rep.EventsWithoutKey != 1 {
		t.Errorf("totals = %+v", rep)
	}
	if t102.Status != TicketProblems || t101.Status != TicketProblems {
		t.Errorf("statuses 101 %s, 102 %s; want problems", t101.Status, t102.Status)
	}
}

// TestVerifyReasonsFromCheckpoint: with the checkpoint, a missing thread
// that failed says failed, and one the checkpoint has done but the
// account lacks (a checkpoint from another account) says lost; rejected
// messages are missing without failing verify.
func TestVerifyReasonsFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	verifyArchive(t, path, 3, 1)
	data, _ := os.ReadFile(path)
	// A message without a date: rejected, never sent.
	data = append(data, []byte("From -\nFrom: x@example.com\nTo: support@example.com\nSubject: [#101] undated\nMessage-ID: <undated@example.com>\nIn-Reply-To: <t0-m0@example.com>\n\nno date\n\n")...)
	os.WriteFile(path, data, 0o644)
	sandbox := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	if _, err := Import(context.Background(), newClient(t, sandbox), store, verifyOptions(path)); err != nil {
		t.Fatal(err)
	}
	// The same checkpoint pointed at another account, which holds thread
	// 0 only.
	production := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	production.Plant(101, zendesktest.Planted{ThreadKey: "t0-m0@example.com", MessageKeys: []string{"t0-m0@example.com"}})
	rep, tickets, err := runVerify(t, newClient(t, production), VerifyOptions{Options: verifyOptions(path), Checkpoint: store})
	if err != nil {
		t.Fatal(err)
	}
	tr := tickets[101]
	got := map[string]string{}
	for _, m := range tr.Missing {
		got[m.ThreadKey+"/"+m.MessageKey] = m.Reason
	}
	want := map[string]string{
		"t0-m0@example.com/undated@example.com": MissingRejected,
		"t1-m0@example.com/t1-m0@example.com":   MissingLost,
		"t1-m0@example.com/t1-m1@example.com":   MissingLost,
		"t1-m0@example.com/":                    MissingLost,
		"t2-m0@example.com/t2-m0@example.com":   MissingLost,
		"t2-m0@example.com/t2-m1@example.com":   MissingLost,
		"t2-m0@example.com/t2-m2@example.com":   MissingLost,
		"t2-m0@example.com/":                    MissingLost,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("missing reasons (-want +got):\n%s", diff)
	}
	if rep.OK || rep.Messages.MissingByReason[MissingRejected] != 1 {
		t.Errorf("report = %+v, want not OK, one rejected message", rep)
	}
}

// TestVerifyFailedReason: a thread the checkpoint has failed is missing
// because it failed.
func TestVerifyFailedReason(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 1, 1)
	store := newStore(t)
	ctx := context.Background()
	if err := store.Register(ctx, checkpoint.Thread{Key: "t0-m0@example.com", TicketID: 101}, []checkpoint.Message{{Key: "t0-m0@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.MarkFailed(ctx, "t0-m0@example.com", checkpoint.Failure{Rule: RuleHTTP, Reason: "422", HTTPStatus: 422}); err != nil {
		t.Fatal(err)
	}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	rep, _, err := runVerify(t, newClient(t, srv), VerifyOptions{Options: verifyOptions(path), Checkpoint: store})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Threads.MissingByReason[MissingFailed] != 1 || rep.Messages.MissingByReason[MissingFailed] != 1 {
		t.Errorf("missing = threads %v messages %v, want failed", rep.Threads.MissingByReason, rep.Messages.MissingByReason)
	}
}

// TestVerifyRefusedIsFatal: 401 and 403 stop verify with ErrFatal.
func TestVerifyRefusedIsFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 6, 3)
	srv := zendesktest.NewServer(t, zendesktest.Config{Email: "a@example.com", Token: "right", AutoCreateTickets: true, NoSideConversations: true})
	_, _, err := runVerify(t, newClient(t, srv), VerifyOptions{Options: verifyOptions(path)})
	if !errors.Is(err, ErrFatal) || !zendesk.IsStatus(err, 403) {
		t.Errorf("Verify without the add-on = %v, want ErrFatal with the 403", err)
	}
	o := srv.ClientOptions()
	o.Token = "wrong"
	_, _, err = runVerify(t, newClientFrom(t, o), VerifyOptions{Options: verifyOptions(path)})
	if !errors.Is(err, ErrFatal) || !zendesk.IsStatus(err, 401) {
		t.Errorf("Verify with a wrong token = %v, want ErrFatal with the 401", err)
	}
}

// TestVerifyTicketNotFound: a ticket that does not exist makes its threads
// missing for that reason; the other tickets are verified.
func TestVerifyTicketNotFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 4, 2)
	srv := zendesktest.NewServer(t, zendesktest.Config{})
	srv.AddTicket(101, "")
	c := newClient(t, srv)
	if _, err := Import(context.Background(), c, newStore(t), verifyOptions(path)); err != nil {
		t.Logf("import: %v", err) // ticket 102's threads fail with 404
	}
	rep, tickets, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path)})
	if err != nil {
		t.Fatal(err)
	}
	if tickets[101].Status != TicketOK || tickets[102].Status != TicketNotFound || rep.TicketsNotFound != 1 {
		t.Errorf("statuses 101 %s, 102 %s", tickets[101].Status, tickets[102].Status)
	}
	if rep.Threads.MissingByReason[MissingTicketNotFound] != 2 || rep.OK {
		t.Errorf("threads = %+v, want 2 missing for ticket_not_found", rep.Threads)
	}
}

// TestVerifyInterruptedSaysWhere: cancelled after two tickets, verify
// returns ErrInterrupted and the ticket to go on from; started there, it
// reads the rest.
func TestVerifyInterruptedSaysWhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 10, 5)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	c := newClient(t, srv)
	if _, err := Import(context.Background(), c, newStore(t), verifyOptions(path)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := VerifyOptions{Options: verifyOptions(path)}
	o.Workers = 1
	seen := 0
	o.OnTicket = func(*TicketReport) error {
		if seen++; seen == 2 {
			cancel()
		}
		return nil
	}
	rep, err := Verify(ctx, c, o)
	if !errors.Is(err, ErrInterrupted) || rep == nil || rep.Complete || rep.TicketsVerified != 2 || rep.NextTicket != 103 {
		t.Fatalf("Verify = %+v, %v; want interrupted after 2 tickets, next 103", rep, err)
	}
	o.OnTicket = nil
	o.StartTicket = rep.NextTicket
	rep, err = Verify(context.Background(), c, o)
	if err != nil || rep.TicketsVerified != 3 || rep.TicketsSkipped != 2 || !rep.OK || rep.Complete {
		t.Errorf("Verify --start-ticket 103 = %+v, %v; want 3 verified, 2 skipped, OK", rep, err)
	}
}

// TestAdoptThenImportSendsOnlyTheRest: the account holds half the threads
// (one of them only in part) and the checkpoint is gone. verify --adopt
// rebuilds it from the account; the next import sends only what is
// missing: every thread and message exactly once.
func TestAdoptThenImportSendsOnlyTheRest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stale bool // a checkpoint of an earlier, smaller run instead of none
	}{{"deleted checkpoint", false}, {"stale checkpoint", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "a.mbox")
			msgs := verifyArchive(t, path, 40, 5)
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			c := newClient(t, srv)
			ctx := context.Background()

			// A first run imports 20 threads; its checkpoint is then lost
			// (deleted), or replaced by a copy taken when it had 5 (stale).
			cpPath := filepath.Join(dir, "cp.db")
			first := openStore(t, cpPath)
			o := verifyOptions(path)
			o.Limit = 5
			o.Workers = 1 // --limit takes the first threads to reach a write: in order with one worker
			if _, err := Import(ctx, c, first, o); err != nil {
				t.Fatal(err)
			}
			first.Close()
			copyFile(t, cpPath, filepath.Join(dir, "stale.db"))
			first = openStore(t, cpPath)
			o.Limit = 15
			if _, err := Import(ctx, c, first, o); err != nil {
				t.Fatal(err)
			}
			first.Close()
			os.Remove(cpPath)
			// Thread 20 (3 messages, ticket 101) landed in part: its first
			// request of 2 events did, the rest did not.
			srv.Plant(101, zendesktest.Planted{ThreadKey: "t20-m0@example.com", MessageKeys: []string{"t20-m0@example.com", "t20-m1@example.com"},
				CreatedAt: time.Date(2024, 3, 4, 0, 0, 20, 0, time.UTC)})
			store := openStore(t, cpPath)
			if tc.stale {
				store.Close()
				store = openStore(t, filepath.Join(dir, "stale.db"))
			}

			rep, _, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path), Checkpoint: store, Adopt: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Threads.Present != 21 || rep.Threads.Missing != 19 || rep.Adopted == nil {
				t.Fatalf("verify --adopt = threads %+v adopted %+v; want 21 present, 19 missing", rep.Threads, rep.Adopted)
			}
			imports, events := srv.RequestCount("import"), srv.RequestCount("events_import")
			sum, err := Import(ctx, c, store, verifyOptions(path))
			if err != nil {
				t.Fatal(err)
			}
			if sum.AlreadyDone != 20 || sum.Imported != 20 {
				t.Errorf("import after adopt: %d already done, %d imported; want 20 and 20 (19 new, 1 finished)", sum.AlreadyDone, sum.Imported)
			}
			if n := srv.RequestCount("import") - imports; n != 19 {
				t.Errorf("import after adopt created %d side conversations, want 19", n)
			}
			if n := srv.RequestCount("events_import") - events; n < 1 {
				t.Errorf("import after adopt sent %d events/import, want thread 20's last message appended", n)
			}
			assertExactlyOnce(t, srv.Fake, msgs)

			// Adopting again changes nothing, and verify is clean.
			rep, _, err = runVerify(t, c, VerifyOptions{Options: verifyOptions(path), Checkpoint: store, Adopt: true})
			if err != nil || !rep.OK || rep.Adopted.Threads != 0 || rep.Threads.Present != 40 {
				t.Errorf("second verify --adopt = %+v adopted %+v, %v; want OK, nothing changed", rep.Threads, rep.Adopted, err)
			}
		})
	}
}

func openStore(t *testing.T, path string) *checkpoint.Store {
	t.Helper()
	s, err := checkpoint.Open(context.Background(), path, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPlanRegistrationMatchesImport: adopt registers a thread exactly as
// import would.
func TestPlanRegistrationMatchesImport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	verifyArchive(t, path, 3, 1)
	o := verifyOptions(path)
	a, err := archive.Read(context.Background(), formats.Registry(), o.Sources, o.Read, o.Threading, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, th := range a.Threads {
		plan, _, err := mapThread(a, o.Mapper, th, mapLoad)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := planRegistration(plan)
		want := (&importer{}).registration(plan, th)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("thread %s: registration (-import +adopt):\n%s", th.Key, diff)
		}
	}
}

// TestAdoptVouchesForTheTicketsItRead: verify --adopt over part of the
// tickets (--start-ticket, or an interrupted run) leaves the checkpoint
// distrusted but vouching for the tickets it read: the next import looks
// up only the others before writing to them. A complete adopt restores
// trust: the next import makes no more than the probes of a trusted
// checkpoint.
func TestAdoptVouchesForTheTicketsItRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	msgs := verifyArchive(t, path, 40, 5) // tickets 101..105
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	c := newClient(t, srv)
	ctx := context.Background()

	// 20 threads imported; the checkpoint is then replaced by a clean copy
	// taken when only 5 were: a stale checkpoint that trusts itself.
	cpPath := filepath.Join(dir, "cp.db")
	first := openStore(t, cpPath)
	o := verifyOptions(path)
	o.Limit = 5
	o.Workers = 1 // --limit takes the first threads to reach a write: in order with one worker
	if _, err := Import(ctx, c, first, o); err != nil {
		t.Fatal(err)
	}
	first.Close()
	copyFile(t, cpPath, filepath.Join(dir, "stale.db"))
	first = openStore(t, cpPath)
	o.Limit = 15
	if _, err := Import(ctx, c, first, o); err != nil {
		t.Fatal(err)
	}
	first.Close()
	store := openStore(t, filepath.Join(dir, "stale.db"))

	// Adopt tickets 103..105 only.
	if _, _, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path), Checkpoint: store, Adopt: true, StartTicket: 103}); err != nil {
		t.Fatal(err)
	}
	lists := srv.RequestCount("list")
	if _, err := Import(ctx, c, store, verifyOptions(path)); err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount("list") - lists; n != 2 {
		t.Errorf("import after adopting tickets 103..105 listed %d tickets, want 2 (101 and 102, which adopt did not read)", n)
	}
	assertExactlyOnce(t, srv.Fake, msgs)

	// A complete adopt: trusted again, so the next run only probes.
	if _, _, err := runVerify(t, c, VerifyOptions{Options: verifyOptions(path), Checkpoint: store, Adopt: true}); err != nil {
		t.Fatal(err)
	}
	run, err := store.BeginRun(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !run.Trusted {
		t.Errorf("after a complete verify --adopt the checkpoint does not trust itself: %+v", run)
	}
}
