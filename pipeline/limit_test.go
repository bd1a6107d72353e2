package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestLimitCountsThreadsPosted: --limit counts threads that sent a
// request. On an archive whose first threads are all invalid, --limit 10
// still imports 10 threads (it used to import none, forever).
func TestLimitCountsThreadsPosted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	var msgs []string
	for i := range 15 { // no [#N] in the subject: unmapped, rejected
		msgs = append(msgs, mail(fmt.Sprintf("bad%d", i), nil, i, "no ticket here"))
	}
	for i := range 20 {
		msgs = append(msgs, mail(fmt.Sprintf("good%d", i), nil, 20+i, fmt.Sprintf("[#%d] fine", 100+i)))
	}
	writeMbox(t, path, msgs...)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Limit = 10
	for run, want := range []int{10, 10, 0} {
		sum, err := Import(context.Background(), newClient(t, srv), store, opts)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Imported != want {
			t.Errorf("run %d with --limit 10: imported %d (rejected %d, left for later %d), want %d", run, sum.Imported, sum.Rejected, sum.Skipped, want)
		}
	}
	if n := srv.RequestCount("import"); n != 20 {
		t.Errorf("%d import requests in all, want 20", n)
	}
	assertExactlyOnce(t, srv.Fake, 20)
}
