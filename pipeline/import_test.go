package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping"
	"github.com/threadlift/threadlift/zendesk/zendesktest"
)

// TestImportRecordsEveryAnswer: the answer to a thread's last request is
// recorded with its worker's next write-ahead record, or when the worker
// stops; after Import, none is left behind.
func TestImportRecordsEveryAnswer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mbox")
	var msgs []string
	for i := range 40 {
		msgs = append(msgs, mboxMsg(fmt.Sprintf("t%d@x", i), "", i%60, "body"))
	}
	writeMbox(t, path, msgs...)
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	store := newStore(t)
	opts := testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)})
	opts.Workers = 3
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	// 40 imports, and one look at ticket 5 before the first write to it:
	// a new checkpoint checks that the account holds no threads of its.
	if sum.Imported != 40 || sum.RequestsByKind.Import != 40 || sum.Requests != 41 {
		t.Errorf("summary: %d imported, %d import requests, %d requests; want 40, 40 and 41", sum.Imported, sum.RequestsByKind.Import, sum.Requests)
	}
	c, err := store.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Threads[checkpoint.Done] != 40 || c.Threads[checkpoint.InFlight] != 0 || c.Messages.Imported != 40 {
		t.Errorf("checkpoint after Import: %+v, want 40 done threads, 40 imported messages", c)
	}
	assertExactlyOnce(t, srv.Fake, 40)
}

// TestImportRefusesCorruptCheckpoint: with the integrity check deferred
// (as import opens the checkpoint), a corrupt file still stops the run
// with checkpoint.ErrUnusable before anything is sent.
func TestImportRefusesCorruptCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cp := filepath.Join(dir, "cp.db")
	{
		s, err := checkpoint.Open(ctx, cp, checkpoint.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var regs []checkpoint.Registration
		for i := range 2000 {
			regs = append(regs, checkpoint.Registration{Thread: checkpoint.Thread{Key: fmt.Sprintf("thread-%d@example.com", i), Subject: strings.Repeat("x", 100)}})
		}
		if err := s.RegisterBatch(ctx, regs); err != nil {
			t.Fatal(err)
		}
		s.Close()
		data, err := os.ReadFile(cp)
		if err != nil {
			t.Fatal(err)
		}
		for i := 4096 * 3; i < len(data)-4096; i += 4096 {
			copy(data[i:i+200], strings.Repeat("\xff", 200))
		}
		if err := os.WriteFile(cp, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store, err := checkpoint.Open(ctx, cp, checkpoint.Options{DeferCheck: true})
	if err != nil {
		if !errors.Is(err, checkpoint.ErrUnusable) {
			t.Fatalf("Open = %v, want nil or ErrUnusable", err)
		}
		t.Skipf("Open refused the file already: %v", err)
	}
	defer store.Close()
	path := filepath.Join(dir, "a.mbox")
	writeMbox(t, path, mboxMsg("t1@x", "", 1, "one"))
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	_, err = Import(ctx, newClient(t, srv), store, testOptions(path, mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}))
	if !errors.Is(err, checkpoint.ErrUnusable) {
		t.Errorf("Import over a corrupt checkpoint = %v, want ErrUnusable", err)
	}
	if n := srv.RequestCount("total"); n != 0 {
		t.Errorf("%d requests sent over a corrupt checkpoint, want 0", n)
	}
}
