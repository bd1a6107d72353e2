package checkpoint

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damageLeaf writes 0xff over the header of one leaf page of table name,
// away from the b-tree's edges (neither its first nor its last leaf), and
// returns its page number.
func damageLeaf(t *testing.T, path, name string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	ok(t, err)
	var pages []int64
	rows, err := db.Query("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path", name)
	ok(t, err)
	for rows.Next() {
		var p int64
		ok(t, rows.Scan(&p))
		pages = append(pages, p)
	}
	ok(t, rows.Err())
	ok(t, db.Close())
	if len(pages) < 5 {
		t.Fatalf("%s has %d leaf pages, the test needs 5 or more", name, len(pages))
	}
	page := pages[len(pages)/2]
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	ok(t, err)
	_, err = f.WriteAt([]byte(strings.Repeat("\xff", 64)), (page-1)*4096)
	ok(t, err)
	ok(t, f.Close())
	return page
}

// TestReadOnlyOpenSkipsFullCheck: status and failures open the checkpoint
// read-only, and their open must not read every page (PRAGMA quick_check
// made them read the whole file: seconds at a million messages). A
// damaged leaf in the middle of the messages table, which no read of
// status touches, is therefore not seen by a read-only open; a writable
// open (import, retry, verify --adopt) still checks every page and
// refuses the file, and so does a deferred check before any write.
func TestReadOnlyOpenSkipsFullCheck(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "threadlift.db")
	{
		s := openT(t, path)
		ok(t, s.RegisterBatch(ctx, registrations(3000)))
		ok(t, s.Close())
	}
	page := damageLeaf(t, path, "messages")
	t.Logf("damaged page %d", page)

	r, err := Open(ctx, path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a file damaged away from what it reads = %v, want nil (no full check)", err)
	}
	c, err := r.Counts(ctx)
	ok(t, err)
	if c.Threads[Pending] != 3000 {
		t.Errorf("Counts: %d pending threads, want 3000", c.Threads[Pending])
	}
	ok(t, r.Close())

	if s, err := Open(ctx, path, Options{}); !errors.Is(err, ErrUnusable) {
		if err == nil {
			s.Close()
		}
		t.Errorf("writable Open = %v, want ErrUnusable (full check)", err)
	}
	s, err := Open(ctx, path, Options{DeferCheck: true})
	if err == nil {
		if err := s.Check(ctx); !errors.Is(err, ErrUnusable) {
			t.Errorf("deferred Check = %v, want ErrUnusable", err)
		}
		s.Close()
	} else if !errors.Is(err, ErrUnusable) {
		t.Errorf("Open with DeferCheck = %v, want nil or ErrUnusable", err)
	}
}

// TestReadOnlyOpenProbesEdges: the cheap check of a read-only open reads
// the root and both edges of every table, so that a file whose tables
// are damaged at their root or edge is refused as unusable at once.
func TestReadOnlyOpenProbesEdges(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"threads", "messages", "attempts"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "threadlift.db")
			{
				s := openT(t, path)
				regs := registrations(3000)
				ok(t, s.RegisterBatch(ctx, regs))
				for _, r := range regs[:1500] {
					ok(t, s.MarkInFlight(ctx, r.Thread.Key, KindImport, []string{r.Thread.Key}))
				}
				ok(t, s.Close())
			}
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
			ok(t, err)
			var last int64
			ok(t, db.QueryRow("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY path DESC LIMIT 1", name).Scan(&last))
			ok(t, db.Close())
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			ok(t, err)
			_, err = f.WriteAt([]byte(strings.Repeat("\xff", 64)), (last-1)*4096)
			ok(t, err)
			ok(t, f.Close())
			r, err := Open(ctx, path, Options{ReadOnly: true})
			if err == nil {
				r.Close()
			}
			if !errors.Is(err, ErrUnusable) || !strings.Contains(err.Error(), "verify --adopt") {
				t.Errorf("read-only Open with the last leaf of %s damaged = %v, want ErrUnusable saying what to do", name, err)
			}
		})
	}
}
