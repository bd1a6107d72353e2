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
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// threadsOverTickets writes an mbox of n one-message threads spread over
// tickets tickets.
func threadsOverTickets(t testing.TB, path string, n, tickets int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#%d] thread %d\nDate: Mon, 4 Mar 2024 %02d:%02d:%02d +0000\nMessage-ID: <t%d@example.com>\n\nbody %d\n\n",
			1000+i%tickets, i, (i/3600)%24, (i/60)%60, i%60, i, i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFirstImportLooksUpFewTickets: a first import on a fresh account
// pays at most DefaultVouchProbes list requests, not one per thread or
// ticket. THREADLIFT_VOUCH_THREADS=10000 measures a bigger run.
func TestFirstImportLooksUpFewTickets(t *testing.T) {
	n := 1500
	if v, err := strconv.Atoi(os.Getenv("THREADLIFT_VOUCH_THREADS")); err == nil && v > 0 {
		n = v
	}
	tickets := n / 2
	path := filepath.Join(t.TempDir(), "a.mbox")
	threadsOverTickets(t, path, n, tickets)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	start := time.Now()
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	lists := srv.RequestCount("list")
	t.Logf("%d threads over %d tickets on a fresh account: %d imports, %d list requests, %s", n, tickets, srv.RequestCount("import"), lists, time.Since(start).Round(time.Millisecond))
	if sum.Imported != n || lists > DefaultVouchProbes {
		t.Errorf("imported %d with %d list requests, want %d with at most %d", sum.Imported, lists, n, DefaultVouchProbes)
	}
}

// TestStaleCheckpointLooksUpEveryTicket: a checkpoint that lost a run
// (here: a new one on an account that holds the threads) finds out on its
// first tickets, then looks every ticket up before writing to it: nothing
// is sent twice, and the next run trusts the tickets it looked up.
func TestStaleCheckpointLooksUpEveryTicket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	threadsOverTickets(t, path, 200, 50)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	if _, err := Import(context.Background(), newClient(t, srv), newStore(t), opts); err != nil {
		t.Fatal(err)
	}
	writes := srv.RequestCount("import")
	store := newStore(t) // the checkpoint is lost
	lists := srv.RequestCount("list")
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount("import") - writes; n != 0 || sum.Imported+sum.AlreadyDone != 200 {
		t.Errorf("with a new checkpoint: %d imports sent, %d imported + %d already done; want 0 and 200", n, sum.Imported, sum.AlreadyDone)
	}
	if n := srv.RequestCount("list") - lists; n != 50 {
		t.Errorf("%d list requests, want 50: one per ticket", n)
	}
	assertExactlyOnce(t, srv.Fake, 200)
	c, err := store.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Threads[checkpoint.Done] != 200 || c.Messages.Imported != 200 {
		t.Errorf("the rebuilt checkpoint: %+v, want 200 done threads and messages", c)
	}
	// The archive grows by one thread per ticket; the next run looks up
	// nothing: every ticket was looked up since trust was lost.
	threadsOverTickets(t, path, 250, 50)
	lists = srv.RequestCount("list")
	if _, err := Import(context.Background(), newClient(t, srv), store, opts); err != nil {
		t.Fatal(err)
	}
	if n := srv.RequestCount("list") - lists; n != 0 {
		t.Errorf("the run after: %d list requests, want 0", n)
	}
	assertExactlyOnce(t, srv.Fake, 250)
}
