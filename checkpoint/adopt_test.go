package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func adoptReg(key string, ticket int64, keys ...string) AdoptThread {
	return AdoptThread{Registration: Registration{
		Thread:   Thread{Key: key, TicketID: ticket, EventsTotal: len(keys), Subject: "s " + key, Source: "a.mbox@0"},
		Messages: msgs(keys...),
	}}
}

func messageStates(t *testing.T, s *Store, key string) map[string]string {
	t.Helper()
	ms, err := s.Messages(context.Background(), key)
	ok(t, err)
	out := map[string]string{}
	for _, m := range ms {
		out[m.Key] = m.State
	}
	return out
}

// TestAdoptEmptyCheckpointRecordsTicket: a new checkpoint learns what the
// ticket holds: a whole thread (done), a partial one (created, the rest
// pending), one absent (pending). Adopting again changes nothing.
func TestAdoptEmptyCheckpointRecordsTicket(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	whole, part, none := adoptReg("whole", 7, "w1", "w2", "w3"), adoptReg("part", 7, "p1", "p2"), adoptReg("none", 7, "n1")
	whole.SideConversationID, part.SideConversationID = "sc-w", "sc-p"
	present := map[string]string{"w1": "sc-w", "w2": "sc-w", "w3": "sc-w", "p1": "sc-p"}
	res, err := s.Adopt(ctx, 7, []AdoptThread{whole, part, none}, present, []string{"sc-w", "sc-p"})
	ok(t, err)
	if res.Imported != 4 || res.Reset != 0 || res.Threads != 2 {
		t.Errorf("Adopt = %+v, want 4 imported, 0 reset, 2 threads changed", res)
	}
	if th := state(t, s, "whole"); th.State != Done || th.SideConversationID != "sc-w" || th.EventsDone != 3 {
		t.Errorf("whole = %+v, want done in sc-w with 3 events", th)
	}
	if th := state(t, s, "part"); th.State != Created || th.SideConversationID != "sc-p" || th.EventsDone != 1 {
		t.Errorf("part = %+v, want created in sc-p with 1 event", th)
	}
	if got := messageStates(t, s, "part"); got["p1"] != MessageImported || got["p2"] != MessagePending {
		t.Errorf("part's messages = %v, want p1 imported, p2 pending", got)
	}
	if th := state(t, s, "none"); th.State != Pending || th.SideConversationID != "" {
		t.Errorf("none = %+v, want pending", th)
	}
	// The next import may append p2 and import "none": the checkpoint
	// allows exactly that.
	ok(t, s.MarkInFlight(ctx, "part", KindEventsImport, []string{"p2"}))
	ok(t, s.MarkInFlight(ctx, "none", KindImport, []string{"n1"}))
	if err := s.MarkInFlight(ctx, "whole", KindEventsImport, []string{"w1"}); err == nil {
		t.Error("MarkInFlight of an adopted imported message was accepted")
	}

	res, err = s.Adopt(ctx, 7, []AdoptThread{whole}, present, []string{"sc-w", "sc-p"})
	ok(t, err)
	if res.Threads != 0 || res.Imported != 0 || res.Reset != 0 {
		t.Errorf("second Adopt = %+v, want nothing changed", res)
	}
}

// TestAdoptResolvesInFlightFailedRejected: the ticket settles what the
// checkpoint could not know: an in-flight request that landed, a failed
// thread that did land, a failed one that did not (stays failed).
func TestAdoptResolvesInFlightFailedRejected(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, k := range []string{"flying", "failedThere", "failedNot"} {
		ok(t, s.Register(ctx, Thread{Key: k, TicketID: 3}, msgs(k+"-1", k+"-2")))
		ok(t, s.MarkInFlight(ctx, k, KindImport, []string{k + "-1", k + "-2"}))
	}
	ok(t, s.MarkFailed(ctx, "failedThere", Failure{Rule: "http", Reason: "timeout", HTTPStatus: 0}))
	ok(t, s.MarkFailed(ctx, "failedNot", Failure{Rule: "http", Reason: "422", HTTPStatus: 422}))
	threads := []AdoptThread{adoptReg("flying", 3, "flying-1", "flying-2"), adoptReg("failedThere", 3, "failedThere-1", "failedThere-2"), adoptReg("failedNot", 3, "failedNot-1", "failedNot-2")}
	threads[0].SideConversationID, threads[1].SideConversationID = "sc-1", "sc-2"
	present := map[string]string{"flying-1": "sc-1", "flying-2": "sc-1", "failedThere-1": "sc-2"}
	_, err := s.Adopt(ctx, 3, threads, present, []string{"sc-1", "sc-2"})
	ok(t, err)
	if th := state(t, s, "flying"); th.State != Done || th.Unresolved || th.SideConversationID != "sc-1" {
		t.Errorf("flying = %+v, want done, resolved, sc-1", th)
	}
	if th := state(t, s, "failedThere"); th.State != Created || th.Unresolved || th.Reason != "" {
		t.Errorf("failedThere = %+v, want created, resolved, no failure", th)
	}
	if th := state(t, s, "failedNot"); th.State != Failed || th.Unresolved || th.HTTPStatus != 422 {
		t.Errorf("failedNot = %+v, want still failed (422), resolved", th)
	}
	for _, k := range []string{"flying", "failedThere"} {
		a, _, err := s.LastAttempt(ctx, k)
		ok(t, err)
		if a.Outcome != OutcomeReconciled {
			t.Errorf("%s: last attempt outcome %q, want reconciled", k, a.Outcome)
		}
	}
}

// TestAdoptResetsWhatTheTicketLacks: a checkpoint from another account (or
// a restored sandbox) says done; the ticket holds nothing. Adopt hands
// the thread back to import instead of leaving it lost.
func TestAdoptResetsWhatTheTicketLacks(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "stale", TicketID: 9}, msgs("s1", "s2")))
	ok(t, s.MarkInFlight(ctx, "stale", KindImport, []string{"s1", "s2"}))
	ok(t, s.MarkCreatedDone(ctx, "stale", "sc-elsewhere", []string{"s1", "s2"}))
	res, err := s.Adopt(ctx, 9, []AdoptThread{adoptReg("stale", 9, "s1", "s2")}, map[string]string{}, nil)
	ok(t, err)
	if res.Reset != 2 {
		t.Errorf("Adopt = %+v, want 2 reset", res)
	}
	if th := state(t, s, "stale"); th.State != Pending || th.SideConversationID != "" || th.EventsDone != 0 {
		t.Errorf("stale = %+v, want pending without side conversation", th)
	}
	ok(t, s.MarkInFlight(ctx, "stale", KindImport, []string{"s1", "s2"}))
}

// TestAdoptKeepsWhatItsSideConversationHolds: a message recorded in a
// side conversation that is on the ticket, but missing from the listing,
// is not handed back to import: sending it again could duplicate it.
func TestAdoptKeepsWhatItsSideConversationHolds(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "long", TicketID: 4}, msgs("l1", "l2")))
	ok(t, s.MarkInFlight(ctx, "long", KindImport, []string{"l1", "l2"}))
	ok(t, s.MarkCreatedDone(ctx, "long", "sc-l", []string{"l1", "l2"}))
	at := adoptReg("long", 4, "l1", "l2")
	at.SideConversationID = "sc-l"
	res, err := s.Adopt(ctx, 4, []AdoptThread{at}, map[string]string{"l1": "sc-l"}, []string{"sc-l"})
	ok(t, err)
	if res.Kept != 1 || res.Reset != 0 {
		t.Errorf("Adopt = %+v, want l2 kept, nothing reset", res)
	}
	if th := state(t, s, "long"); th.State != Done || th.EventsDone != 2 {
		t.Errorf("long = %+v, want done with 2 events", th)
	}
}

// TestAdoptLeavesThreadsOfOtherTickets: a thread in flight on ticket 5 is
// not judged from ticket 6, which does not hold its key.
func TestAdoptLeavesThreadsOfOtherTickets(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.Register(ctx, Thread{Key: "moved", TicketID: 5}, msgs("m1")))
	ok(t, s.MarkInFlight(ctx, "moved", KindImport, []string{"m1"}))
	res, err := s.Adopt(ctx, 6, []AdoptThread{adoptReg("moved", 6, "m1")}, map[string]string{}, nil)
	ok(t, err)
	if len(res.Elsewhere) != 1 || res.Elsewhere[0] != "moved" {
		t.Errorf("Adopt = %+v, want moved left alone", res)
	}
	if th := state(t, s, "moved"); th.State != InFlight || !th.Unresolved || th.TicketID != 5 {
		t.Errorf("moved = %+v, want untouched", th)
	}
}

func TestProbePath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "threadlift.db")
	p, err := ProbePath(path)
	if err != nil || p.Exists || p.Dir != dir {
		t.Errorf("ProbePath(missing folder) = %+v, %v; want the parent %s, no error", p, err, dir)
	}
	s := openT(t, path)
	_, err = ProbePath(path)
	if err == nil || !strings.Contains(err.Error(), "process ") {
		t.Errorf("ProbePath while locked = %v, want ErrLocked naming the process", err)
	}
	s.Close()
	if p, err := ProbePath(path); err != nil || !p.Exists {
		t.Errorf("ProbePath after Close = %+v, %v", p, err)
	}
	// Not a checkpoint: refused from its header, without opening it.
	other := filepath.Join(dir, "notes.db")
	os.WriteFile(other, []byte("these are my notes, not a database at all, but long enough to hold a header of a hundred bytes......"), 0o644)
	if _, err := ProbePath(other); !errors.Is(err, ErrUnusable) {
		t.Errorf("ProbePath(a text file) = %v, want ErrUnusable", err)
	}
	if _, err := os.Stat(other + "-wal"); err == nil {
		t.Errorf("ProbePath created %s-wal", other)
	}
	// A file where the folder should be.
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if _, err := ProbePath(filepath.Join(dir, "file", "x.db")); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("ProbePath under a file = %v, want 'not a folder'", err)
	}
}
