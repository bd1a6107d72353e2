package pipeline

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestWriteLandingAfterTimeoutIsNotSentAgain: a write the client gave up
// on (its timeout) is carried out by Zendesk a little later. Its ticket is
// looked up only once Options.Settle has passed since the write was given
// up, so the lookup sees it and nothing is sent twice. (Looked up at once,
// the ticket held nothing yet and the thread was sent again.)
func TestWriteLandingAfterTimeoutIsNotSentAgain(t *testing.T) {
	for kind, suffix := range map[string]string{"import": "/side_conversations/import", "events_import": "/events/import"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a.mbox")
			// Two events per request: the 3-message thread sends an import
			// and an events/import.
			writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t2", "t1", 2, "two"), mboxMsg("t3", "t2", 3, "three"))
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			srv.SetFaults(zendesktest.Faults{Late: 50 * time.Millisecond})
			var faulted atomic.Bool
			srv.SetHook(func(r *http.Request) zendesktest.Fault {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, suffix) && faulted.CompareAndSwap(false, true) {
					return zendesktest.FaultLateCommit
				}
				return zendesktest.FaultNone
			})
			c := srv.ClientOptions()
			c.Timeout = 200 * time.Millisecond
			opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
			opts.Mapper = mapping.New(mapping.Options{Ticket: mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}, MaxEventsPerRequest: 2,
				Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }})
			opts.Settle = time.Second
			sum, err := Import(context.Background(), newClientFrom(t, c), newStore(t), opts)
			if err != nil {
				t.Fatal(err)
			}
			// The late write has landed by now, or lands now: then look.
			wait, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := srv.AwaitLateCommits(wait, 1); err != nil {
				t.Fatalf("the late write never landed (%v): the test did not test anything", err)
			}
			if sum.Imported != 1 || sum.Reconciled == 0 {
				t.Errorf("imported %d threads after %d lookups, want 1 after at least one", sum.Imported, sum.Reconciled)
			}
			assertExactlyOnce(t, srv.Fake, 3)
		})
	}
}

// TestResumeWaitsForAWriteLeftInFlight: a run stops (here: interrupted,
// its in-flight request abandoned after StopTimeout) while Zendesk still
// holds its write, which lands a moment later. The next run finds the
// thread in flight and looks its ticket up only Settle after that write
// was sent: it sees the write and sends nothing twice.
func TestResumeWaitsForAWriteLeftInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	writeMbox(t, path, mboxMsg("t1", "", 1, "one"), mboxMsg("t2", "t1", 2, "two"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetFaults(zendesktest.Faults{Late: 200 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var faulted atomic.Bool
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method == http.MethodPost && faulted.CompareAndSwap(false, true) {
			stop() // the run is told to stop while its first write is in flight
			return zendesktest.FaultLateCommit
		}
		return zendesktest.FaultNone
	})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.StopTimeout = 50 * time.Millisecond
	opts.Settle = 2 * time.Second
	if _, err := Import(ctx, newClient(t, srv), store, opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first run: %v, want interrupted", err)
	}
	th, found, err := store.Thread(context.Background(), "t1")
	if err != nil || !found || !th.Unresolved {
		t.Fatalf("after the first run thread t1 = %+v (found %v, %v), want in flight, unresolved", th, found, err)
	}
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.AwaitLateCommits(wait, 1); err != nil {
		t.Fatalf("the late write never landed (%v): the test did not test anything", err)
	}
	if th, _, err := store.Thread(context.Background(), "t1"); err != nil || th.State != checkpoint.Done || sum.Failed != 0 {
		t.Errorf("after the second run thread t1 = %+v (%v), %d failed; want done, none failed", th, err, sum.Failed)
	}
	assertExactlyOnce(t, srv.Fake, 2)
}
