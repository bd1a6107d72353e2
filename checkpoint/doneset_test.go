package checkpoint

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// doneOf is d as a map, asked about keys (those d holds must all be
// among them: d.Len() is checked against what was found).
func doneOf(d *DoneSet, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		if h, ok := d.Lookup(k); ok {
			out[k] = h
		}
	}
	if len(out) != d.Len() {
		out["(DoneSet.Len)"] = fmt.Sprint(d.Len())
	}
	return out
}

// TestDoneSetLookup: the compact done set answers as the map it replaced:
// every done key with its KeysHash ("" and odd values kept as they are),
// no other key.
func TestDoneSetLookup(t *testing.T) {
	want := map[string]string{"": "", "upgraded": "", "odd": "ABCDEF"}
	for i := range 5000 {
		k := fmt.Sprintf("<%d.thread@example.com>", i)
		want[k] = KeysHash([]string{k, fmt.Sprint(i)})
	}
	d := newDoneSet(len(want))
	for k, h := range want {
		d.add(k, h)
	}
	d.seal()
	if d.Len() != len(want) {
		t.Errorf("Len = %d, want %d", d.Len(), len(want))
	}
	for k, h := range want {
		if got, ok := d.Lookup(k); !ok || got != h {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", k, got, ok, h)
		}
	}
	for _, k := range []string{"<5000.thread@example.com>", "nope", "Odd", "<1.thread@example.com> "} {
		if got, ok := d.Lookup(k); ok {
			t.Errorf("Lookup(%q) = %q, true; want not done", k, got)
		}
	}
}

// TestResumeFor: a backfill's Resume holds the done threads among its
// keys, as Resume would give them, every open thread, and says whether
// the checkpoint was empty (an unreadable record does not count).
func TestResumeFor(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ok(t, s.RegisterBatch(ctx, []Registration{{Thread: Thread{Source: "a.mbox:3", State: Rejected, Rule: "r"}}}))
	r, err := s.ResumeFor(ctx, []string{"done1"})
	ok(t, err)
	if !r.Empty || r.Done.Len() != 0 || len(r.Open) != 0 {
		t.Errorf("ResumeFor on a checkpoint without threads: empty %v, %d done, %d open; want empty", r.Empty, r.Done.Len(), len(r.Open))
	}
	ok(t, s.Register(ctx, Thread{Key: "done1", EventsTotal: 3}, msgs("a", "b", "c")))
	ok(t, s.MarkInFlight(ctx, "done1", KindImport, []string{"a", "b", "c"}))
	ok(t, s.Complete(ctx, Completion{Key: "done1", SideConversationID: "sc", MessageKeys: []string{"a", "b", "c"}, KeysHash: KeysHash([]string{"a", "b", "c"})}))
	ok(t, s.Register(ctx, Thread{Key: "done2", EventsTotal: 1}, msgs("x")))
	ok(t, s.MarkInFlight(ctx, "done2", KindImport, []string{"x"}))
	ok(t, s.MarkCreatedDone(ctx, "done2", "sc2", []string{"x"}))
	ok(t, s.Register(ctx, Thread{Key: "open"}, msgs("m")))
	full, err := s.Resume(ctx)
	ok(t, err)
	keys := []string{"done1", "open", "nope"}
	for i := range 1200 { // more keys than one query binds
		keys = append(keys, fmt.Sprintf("other%d", i))
	}
	r, err = s.ResumeFor(ctx, keys)
	ok(t, err)
	want := doneOf(full.Done, "done1")
	delete(want, "(DoneSet.Len)")
	if d := cmp.Diff(want, doneOf(r.Done, keys...)); d != "" {
		t.Errorf("ResumeFor().Done (-want +got):\n%s", d)
	}
	if r.Empty || full.Empty || len(r.Open) != 1 || r.Open["open"].Key != "open" {
		t.Errorf("ResumeFor: empty %v (Resume: %v), open %v; want not empty, the open thread", r.Empty, full.Empty, r.Open)
	}
}
