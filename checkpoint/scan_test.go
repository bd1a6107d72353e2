package checkpoint

import (
	"context"
	"slices"
	"testing"
)

// TestScanOpenThreads: the recorded threads an import looks at again are
// every one but those done with exactly their recorded keys and without a
// rejected message; unreadable records (key "") always are.
func TestScanOpenThreads(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	threads := []struct {
		key, state, hash string
		rejected         bool
	}{
		{"<done@x>", "done", "h1", false},
		{"<done-other-keys@x>", "done", "h2", false},
		{"<done-rejected@x>", "done", "h3", false},
		{"<done-rejected@x>", "", "", true}, // its rejected message
		{"<pending@x>", "pending", "h4", false},
		{"<failed@x>", "failed", "h5", false},
		{"<done-no-hash@x>", "done", "", false},
	}
	for i, th := range threads {
		if th.rejected {
			_, err := s.db.ExecContext(ctx, `INSERT INTO messages (thread_id, key, state, updated_at)
				SELECT id, '<r@x>', 'rejected', 'now' FROM threads WHERE key = ?`, th.key)
			ok(t, err)
			continue
		}
		_, err := s.db.ExecContext(ctx, `INSERT INTO threads (id, key, state, keys_hash, created_at, updated_at) VALUES (?, ?, ?, ?, 'now', 'now')`,
			i+1, th.key, th.state, th.hash)
		ok(t, err)
		_, err = s.db.ExecContext(ctx, `INSERT INTO messages (thread_id, key, state, updated_at) VALUES (?, ?, 'imported', 'now')`, i+1, th.key)
		ok(t, err)
	}
	recorded := []struct{ key, hash string }{
		{"<done@x>", "h1"},                // closed
		{"<done-other-keys@x>", "h2-new"}, // grew: open
		{"<done-rejected@x>", "h3"},       // open: the failures files copy it
		{"<pending@x>", "h4"},             // open
		{"<failed@x>", "h5"},              // open
		{"<done-no-hash@x>", ""},          // open
		{"<never-registered@x>", "h6"},    // open
		{"", ""},                          // unreadable: open
		{"", ""},                          // unreadable: open
	}
	for _, r := range recorded {
		_, err := s.db.ExecContext(ctx, `INSERT INTO scan_threads (key, keys_hash) VALUES (?, ?)`, r.key, r.hash)
		ok(t, err)
	}
	ids, err := s.ScanOpenThreads(ctx)
	ok(t, err)
	slices.Sort(ids)
	if want := []int64{2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(ids, want) {
		t.Errorf("ScanOpenThreads = %v, want %v", ids, want)
	}
}
