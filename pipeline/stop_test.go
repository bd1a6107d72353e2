package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// stopArchive writes 30 threads over 3 tickets (two messages each) and
// returns the options to import it.
func stopArchive(t *testing.T) Options {
	t.Helper()
	path := filepath.Join(t.TempDir(), "a.mbox")
	var msgs []string
	for i := range 30 {
		id := fmt.Sprintf("t%d", i)
		first := strings.Replace(mboxMsg(id, "", i%60, "one"), "[#5]", fmt.Sprintf("[#%d]", 5+i%3), 1)
		reply := strings.Replace(mboxMsg(id+"r", id, i%60, "two"), "[#5]", fmt.Sprintf("[#%d]", 5+i%3), 1)
		msgs = append(msgs, first, reply)
	}
	writeMbox(t, path, msgs...)
	return testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
}

// writes counts the import and events/import requests the fake received.
func writes(f *zendesktest.Fake) int {
	return f.RequestCount("import") + f.RequestCount("events_import")
}

// checkResumable asserts the checkpoint after a stopped run: nothing
// failed, nothing sent twice, and a second run with the account fixed
// imports every thread exactly once.
func checkResumable(t *testing.T, srv *zendesktest.Server, store *checkpoint.Store, opts Options) {
	t.Helper()
	ctx := context.Background()
	c, err := store.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Threads[checkpoint.Failed] != 0 {
		t.Errorf("the stopped run failed %d threads, want 0 (they are the next run's)", c.Threads[checkpoint.Failed])
	}
	srv.SetHook(nil)
	sum, err := Import(ctx, newClient(t, srv), store, opts)
	if err != nil {
		t.Fatalf("the next run: %v", err)
	}
	if sum.Failed != 0 || sum.Imported+sum.AlreadyDone != 30 {
		t.Errorf("the next run: imported %d, already done %d, failed %d; want 30 in all, 0 failed", sum.Imported, sum.AlreadyDone, sum.Failed)
	}
	assertExactlyOnce(t, srv.Fake, 60)
}

// TestImportStopsAtFirstForbiddenWrite: a 403 on a write (no permission,
// side conversations not enabled) stops the run at the first one, with
// Zendesk's error and what to check, instead of failing every thread. The
// refused thread is pending again (nothing landed), not failed.
func TestImportStopsAtFirstForbiddenWrite(t *testing.T) {
	opts := stopArchive(t)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method == http.MethodPost {
			return zendesktest.Fault403
		}
		return zendesktest.FaultNone
	})
	store := newStore(t)
	_, err := Import(context.Background(), newClient(t, srv), store, opts)
	if !errors.Is(err, ErrFatal) {
		t.Fatalf("Import with every write refused (403) = %v, want ErrFatal", err)
	}
	for _, want := range []string{"403", "You do not have access", "role", "threadlift check"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if n := writes(srv.Fake); n > opts.Workers {
		t.Errorf("%d writes sent, want at most one per worker (%d): the run goes on after the first 403", n, opts.Workers)
	}
	ctx := context.Background()
	pending := 0
	for i := range 30 {
		th, found, err := store.Thread(ctx, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if found && th.State == checkpoint.Pending && !th.Unresolved {
			pending++
		}
	}
	if pending == 0 {
		t.Errorf("no refused thread is pending again")
	}
	checkResumable(t, srv, store, opts)
}

// TestImportStopsAtRedirect: a redirect (a wrong subdomain) stops the run
// at once with its Location; it is never followed.
func TestImportStopsAtRedirect(t *testing.T) {
	for _, fault := range []zendesktest.Fault{zendesktest.Fault301, zendesktest.Fault307} {
		t.Run(fault.String(), func(t *testing.T) {
			opts := stopArchive(t)
			elsewhere := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
			srv.SetFaults(zendesktest.Faults{RedirectTo: elsewhere.URL})
			srv.SetHook(func(*http.Request) zendesktest.Fault { return fault })
			store := newStore(t)
			_, err := Import(context.Background(), newClient(t, srv), store, opts)
			if !errors.Is(err, ErrFatal) || !strings.Contains(err.Error(), elsewhere.URL+"/api/v2/tickets/") || !strings.Contains(err.Error(), "zendesk.url") {
				t.Fatalf("Import redirected = %v, want ErrFatal with the Location and zendesk.url", err)
			}
			if n := writes(srv.Fake); n > opts.Workers {
				t.Errorf("%d writes sent, want at most one per worker (%d)", n, opts.Workers)
			}
			if n := elsewhere.RequestCount("total"); n != 0 {
				t.Errorf("the redirect was followed: %d requests", n)
			}
			checkResumable(t, srv, store, opts)
		})
	}
}

// TestImportStopsOnLongRetryAfter: a Retry-After longer than the maximum
// stops the run cleanly (ErrPaused, saying when to run again) instead of
// pausing every worker for days; the next run resumes.
func TestImportStopsOnLongRetryAfter(t *testing.T) {
	opts := stopArchive(t)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetFaults(zendesktest.Faults{RetryAfter: 999999 * time.Second})
	var posts atomic.Int64
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method == http.MethodPost && posts.Add(1) == 3 {
			return zendesktest.Fault429
		}
		return zendesktest.FaultNone
	})
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if !errors.Is(err, ErrPaused) || errors.Is(err, ErrFatal) {
		t.Fatalf("Import with Retry-After: 999999 = %v, want ErrPaused", err)
	}
	var pe *zendesk.PauseError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "run import again after "+pe.Until.Local().Format("15:04")) {
		t.Errorf("error %q does not say when to run again", err)
	}
	if sum == nil || sum.PausedUntil == "" || sum.PausedUntil != pe.Until.UTC().Format(time.RFC3339) {
		t.Errorf("summary paused_until = %+v, want %s", sum, pe.Until.UTC().Format(time.RFC3339))
	}
	if n := posts.Load(); n > 3+int64(opts.Workers) {
		t.Errorf("%d writes after the pause was asked for", n-3)
	}
	checkResumable(t, srv, store, opts)
}

// TestImportHugeAnswerIsLookedUp: a 201 that streams a huge body is read
// up to its cap only; the import landed, so the thread is looked up on its
// ticket and recorded, never sent twice.
func TestImportHugeAnswerIsLookedUp(t *testing.T) {
	const huge = 32 << 20
	opts := stopArchive(t)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	srv.SetFaults(zendesktest.Faults{HugeBody: huge})
	var posts atomic.Int64
	srv.SetHook(func(r *http.Request) zendesktest.Fault {
		if r.Method == http.MethodPost && posts.Add(1) <= 2 {
			return zendesktest.FaultHugeBody
		}
		return zendesktest.FaultNone
	})
	o := srv.ClientOptions()
	o.MaxResponseBytes = 1 << 20
	store := newStore(t)
	sum, err := Import(context.Background(), newClientFrom(t, o), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 30 || sum.Failed != 0 || sum.Reconciled < 2 {
		t.Errorf("imported %d failed %d reconciled %d; want 30, 0 and the 2 huge answers looked up", sum.Imported, sum.Failed, sum.Reconciled)
	}
	if sent := srv.HugeBodySent(); sent >= 2*huge-8<<20 {
		t.Errorf("the server wrote %d MiB of padding: the client read the huge answers whole", sent>>20)
	}
	assertExactlyOnce(t, srv.Fake, 60)
}
