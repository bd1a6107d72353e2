package pipeline

import (
	"context"
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

func TestParseShard(t *testing.T) {
	tests := []struct {
		in      string
		want    Shard
		wantErr string
	}{
		{in: "2/4", want: Shard{2, 4}},
		{in: "0/1", want: Shard{0, 1}},
		{in: " 3/4 ", want: Shard{3, 4}},
		{in: "4/4", wantErr: "0 ≤ I < N"},
		{in: "-1/4", wantErr: "0 ≤ I < N"},
		{in: "0/0", wantErr: "N must be 1 or more"},
		{in: "1/-2", wantErr: "N must be 1 or more"},
		{in: "2", wantErr: "want I/N"},
		{in: "a/b", wantErr: "whole numbers"},
		{in: "1/2/3", wantErr: "whole numbers"},
		{in: "", wantErr: "want I/N"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseShard(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseShard(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseShard(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestShardOfIsFNV1a pins the split: changing it would move threads
// between the shards of a migration under way.
func TestShardOfIsFNV1a(t *testing.T) {
	tests := []struct {
		ticket int64
		key    string
		n      int
		want   int
	}{
		// FNV-1a 64 of "1" is 0xaf63ac4c86019afc.
		{ticket: 1, n: 3, want: int(0xaf63ac4c86019afc % 3)},
		{ticket: 12345, key: "ignored when there is a ticket", n: 7, want: int(0xe575e8883c0f89f8 % 7)},
		// No ticket: the thread key. FNV-1a 64 of "" is the offset basis.
		{ticket: 0, key: "", n: 4, want: int(0xcbf29ce484222325 % 4)},
		{ticket: 0, key: "undated@customer.example", n: 4, want: int(0xc5dbf44c3ed83702 % 4)},
		{ticket: 99, n: 1, want: 0},
	}
	for _, tt := range tests {
		if got := ShardOf(tt.ticket, tt.key, tt.n); got != tt.want {
			t.Errorf("ShardOf(%d, %q, %d) = %d, want %d", tt.ticket, tt.key, tt.n, got, tt.want)
		}
	}
	// Spread: 10,000 consecutive ticket ids over 4 shards, each 20–30%.
	var per [4]int
	for id := int64(1); id <= 10000; id++ {
		per[ShardOf(id, "", 4)]++
	}
	for i, n := range per {
		if n < 2000 || n > 3000 {
			t.Errorf("shard %d of 4 owns %d of 10000 tickets: %v", i, n, per)
		}
	}
}

func TestShardPathAndRate(t *testing.T) {
	s := Shard{2, 4}
	for in, want := range map[string]string{
		"state/threadlift.db":     "state/threadlift.shard-2-of-4.db",
		"/var/lib/tl/cp.sqlite":   "/var/lib/tl/cp.shard-2-of-4.sqlite",
		"cp":                      "cp.shard-2-of-4",
		"a.d/cp":                  "a.d/cp.shard-2-of-4",
		".db":                     ".db.shard-2-of-4",
		"failures.jsonl":          "failures.shard-2-of-4.jsonl",
		"x/threadlift.backup.db":  "x/threadlift.backup.shard-2-of-4.db",
		"relative/../dir/file.db": "relative/../dir/file.shard-2-of-4.db",
	} {
		if got := s.Path(in); got != want {
			t.Errorf("Shard{2,4}.Path(%q) = %q, want %q", in, got, want)
		}
	}
	for _, whole := range []Shard{{}, {0, 1}} {
		if got := whole.Path("state/threadlift.db"); got != "state/threadlift.db" {
			t.Errorf("%#v.Path = %q, want the path unchanged", whole, got)
		}
		if got := whole.Rate(200); got != 200 {
			t.Errorf("%#v.Rate(200) = %d, want 200", whole, got)
		}
		if !whole.Owns(5, "k") || whole.String() != "" {
			t.Errorf("%#v owns nothing or has a name", whole)
		}
	}
	for limit, want := range map[int]int{200: 50, 700: 175, 301: 75, 3: 1, 1: 1, 0: 0} {
		if got := s.Rate(limit); got != want {
			t.Errorf("Shard{2,4}.Rate(%d) = %d, want %d", limit, got, want)
		}
	}
}

// shardArchive writes 40 threads over 13 tickets, one of them of two
// messages, and one thread that maps to no ticket.
func shardArchive(t *testing.T, path string) (valid int, keys []string) {
	t.Helper()
	var b strings.Builder
	for i := range 40 {
		fmt.Fprintf(&b, "From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: [#%d] thread %d\nDate: Mon, 4 Mar 2024 10:%02d:00 +0000\nMessage-ID: <s%d@example.com>\n\nbody %d\n\n", 200+i%13, i, i, i, i)
		keys = append(keys, fmt.Sprintf("s%d@example.com", i))
	}
	b.WriteString("From a@example.com Mon Mar  4 09:00:00 2024\nFrom: a@example.com\nTo: b@example.com\nSubject: no ticket here\nDate: Mon, 4 Mar 2024 11:00:00 +0000\nMessage-ID: <orphan@example.com>\n\nbody\n")
	keys = append(keys, "orphan@example.com")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return 40, keys
}

// TestImportShards runs three shards against one fake: every thread is
// imported or rejected by exactly one of them, each ticket is written by
// one shard only, and each shard counts the rest as other_shards.
func TestImportShards(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	valid, keys := shardArchive(t, path)
	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})

	const n = 3
	owner := map[string]int{} // thread key → shard that registered it
	imported, rejected := 0, 0
	for i := range n {
		opts := testOptions(path, rules)
		opts.Shard = Shard{i, n}
		store := newStore(t)
		sum, err := Import(context.Background(), newClient(t, srv), store, opts)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if sum.Shard != fmt.Sprintf("%d/%d", i, n) {
			t.Errorf("shard %d: summary shard %q", i, sum.Shard)
		}
		if got := sum.Imported + sum.Rejected + sum.OtherShards; got != sum.ThreadsTotal || sum.ThreadsTotal != len(keys) {
			t.Errorf("shard %d: imported %d + rejected %d + other shards %d = %d, want threads_total %d = %d",
				i, sum.Imported, sum.Rejected, sum.OtherShards, got, sum.ThreadsTotal, len(keys))
		}
		imported += sum.Imported
		rejected += sum.Rejected
		states, err := store.Threads(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for k, st := range states {
			if prev, dup := owner[k]; dup {
				t.Errorf("thread %q is in the checkpoints of shards %d and %d", k, prev, i)
			}
			owner[k] = i
			if !(Shard{i, n}).Owns(st.TicketID, k) {
				t.Errorf("shard %d registered thread %q of ticket %d, which is not its own", i, k, st.TicketID)
			}
		}
	}
	if imported != valid || rejected != 1 || len(owner) != len(keys) {
		t.Errorf("shards imported %d, rejected %d, registered %d threads; want %d, 1, %d", imported, rejected, len(owner), valid, len(keys))
	}
	if want := ShardOf(0, "orphan@example.com", n); owner["orphan@example.com"] != want {
		t.Errorf("the unmapped thread went to shard %d, want %d (hash of its key)", owner["orphan@example.com"], want)
	}
	assertExactlyOnce(t, srv.Fake, valid)

	// Every ticket's writes came from the shard of its id.
	for _, tid := range srv.TicketIDs() {
		for _, c := range srv.SideConversations(tid) {
			k := c.SideConversation.ExternalIDs["threadlift_thread_key"]
			if owner[k] != ShardOf(tid, "", n) {
				t.Errorf("thread %q on ticket %d imported by shard %d, want %d", k, tid, owner[k], ShardOf(tid, "", n))
			}
		}
	}
}

// TestImportShardLimit: --limit counts the shard's own threads posted only.
func TestImportShardLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.mbox")
	shardArchive(t, path)
	rules := mapping.TicketRules{SubjectRegex: regexp.MustCompile(`\[#(\d+)\]`)}
	srv := zendesktest.NewServer(t, zendesktest.Config{AutoCreateTickets: true})
	opts := testOptions(path, rules)
	opts.Shard = Shard{1, 2}
	opts.Limit = 3
	store := newStore(t)
	sum, err := Import(context.Background(), newClient(t, srv), store, opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Imported != 3 || sum.OtherShards == 0 || sum.Skipped == 0 {
		t.Errorf("limit 3 on shard 1/2: imported %d rejected %d other shards %d skipped %d; want 3 of its own posted, some of each other",
			sum.Imported, sum.Rejected, sum.OtherShards, sum.Skipped)
	}
	states, _ := store.Threads(context.Background())
	for k, st := range states {
		if st.State != checkpoint.Done && st.State != checkpoint.Rejected || !opts.Shard.Owns(st.TicketID, k) {
			t.Errorf("thread %q: %s on ticket %d", k, st.State, st.TicketID)
		}
	}
}
