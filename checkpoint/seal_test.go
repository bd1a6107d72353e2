package checkpoint

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// sealedCheckpoint returns a checkpoint of 3000 threads closed cleanly.
func sealedCheckpoint(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "threadlift.db")
	s := openT(t, path)
	ok(t, s.RegisterBatch(context.Background(), registrations(3000)))
	ok(t, s.Close())
	return path
}

// openChecked opens path for writing with the check deferred, as import
// does, waits for the check and returns how it passed.
func openChecked(t *testing.T, path string) (string, error) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, path, Options{DeferCheck: true})
	if err != nil {
		return "", err
	}
	defer s.Close()
	if err := s.Check(ctx); err != nil {
		return "", err
	}
	return s.checkedBy, nil
}

// TestCleanCloseSealsTheFile: a writable open of a checkpoint that a clean
// Close left untouched takes the seal as its check instead of reading
// every page with quick_check (2 s before a nightly backfill's first
// request at 400,000 messages), both deferred (import) and in Open
// (retry, verify --adopt).
func TestCleanCloseSealsTheFile(t *testing.T) {
	path := sealedCheckpoint(t)
	if _, err := os.Stat(path + sealSuffix); err != nil {
		t.Fatalf("no seal after a clean Close: %v", err)
	}
	by, err := openChecked(t, path)
	ok(t, err)
	if by != checkedBySeal {
		t.Errorf("deferred check of an untouched sealed file passed by %q, want %q", by, checkedBySeal)
	}
	s, err := Open(context.Background(), path, Options{})
	ok(t, err)
	if s.checkedBy != checkedBySeal {
		t.Errorf("Open's check of an untouched sealed file passed by %q, want %q", s.checkedBy, checkedBySeal)
	}
	ok(t, s.Close())
}

// TestSealRefusedRunsFullCheck: whatever makes the file differ from its
// seal, or the seal unreadable, makes the open run quick_check, which
// refuses a damaged file as before.
func TestSealRefusedRunsFullCheck(t *testing.T) {
	cases := []struct {
		name   string
		change func(t *testing.T, path string)
	}{
		{"no seal", func(t *testing.T, path string) { ok(t, os.Remove(path+sealSuffix)) }},
		{"garbled seal", func(t *testing.T, path string) {
			ok(t, os.WriteFile(path+sealSuffix, []byte("threadlift checkpoint seal v1 crc32c\nsize 12\ncrc32c 00\n"), 0o644))
		}},
		{"seal of another checkpoint", func(t *testing.T, path string) {
			other := sealedCheckpoint(t)
			s, err := Open(context.Background(), other, Options{})
			ok(t, err)
			ok(t, s.RegisterBatch(context.Background(), registrations(3001)[3000:]))
			ok(t, s.Close())
			b, err := os.ReadFile(other + sealSuffix)
			ok(t, err)
			ok(t, os.WriteFile(path+sealSuffix, b, 0o644))
		}},
		{"stale seal beside a killed run's files", func(t *testing.T, path string) {
			// The run writes, is "killed" (its files copied as they are
			// mid-run), and the seal from before it is put back: the .db
			// (BeginRun's fold) or the WAL give it away.
			stale, err := os.ReadFile(path + sealSuffix)
			ok(t, err)
			ctx := context.Background()
			s, err := Open(ctx, path, Options{})
			ok(t, err)
			_, err = s.BeginRun(ctx, "https://example.zendesk.com")
			ok(t, err)
			ok(t, s.RegisterBatch(ctx, registrations(3001)[3000:]))
			mid := map[string][]byte{}
			for _, suffix := range []string{"", "-wal"} {
				if b, err := os.ReadFile(path + suffix); err == nil {
					mid[suffix] = b
				}
			}
			ok(t, s.Close())
			for suffix, b := range mid {
				ok(t, os.WriteFile(path+suffix, b, 0o644))
			}
			ok(t, os.WriteFile(path+sealSuffix, stale, 0o644))
		}},
		{"WAL frames found at open", func(t *testing.T, path string) {
			// Not a valid WAL: SQLite ignores it, but the seal does not
			// vouch for a file that had one.
			ok(t, os.WriteFile(path+"-wal", make([]byte, 4096), 0o644))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := sealedCheckpoint(t)
			c.change(t, path)
			by, err := openChecked(t, path)
			ok(t, err)
			if by != checkedByQuickCheck {
				t.Errorf("check passed by %q, want %q", by, checkedByQuickCheck)
			}
		})
	}
}

// TestSealedFileDamagedIsRefused: a page damaged after the clean Close
// that sealed the file (a disk fault, a torn copy over it) changes its
// bytes: the seal no longer matches, quick_check runs and refuses the
// file before any write, and Close leaves no seal for it.
func TestSealedFileDamagedIsRefused(t *testing.T) {
	ctx := context.Background()
	path := sealedCheckpoint(t)
	damageLeaf(t, path, "messages")
	s, err := Open(ctx, path, Options{DeferCheck: true})
	if err == nil {
		err = s.Check(ctx)
		if werr := s.RegisterBatch(ctx, registrations(3001)[3000:]); !errors.Is(werr, ErrUnusable) {
			t.Errorf("write after a failed check = %v, want ErrUnusable", werr)
		}
		s.Close()
	}
	if !errors.Is(err, ErrUnusable) {
		t.Fatalf("check of a damaged sealed file = %v, want ErrUnusable", err)
	}
	if _, err := os.Stat(path + sealSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	} else if err == nil {
		by, err := openChecked(t, path)
		if !errors.Is(err, ErrUnusable) {
			t.Errorf("second open of the damaged file: passed by %q, err %v; want ErrUnusable", by, err)
		}
	}
	if _, err := Open(ctx, path, Options{}); !errors.Is(err, ErrUnusable) {
		t.Errorf("Open of a damaged sealed file = %v, want ErrUnusable", err)
	}
}

// TestFirstWriteBreaksTheSeal: from a run's first write until its clean
// Close the file is not the one sealed, so the seal is removed: after a
// killed run the next open does not read the whole file for a CRC that
// cannot match (a seal left behind would not be trusted either: see
// "stale seal beside a killed run's files" above).
func TestFirstWriteBreaksTheSeal(t *testing.T) {
	ctx := context.Background()
	path := sealedCheckpoint(t)
	s, err := Open(ctx, path, Options{DeferCheck: true})
	ok(t, err)
	defer s.Close()
	ok(t, s.Check(ctx))
	if _, err := os.Stat(path + sealSuffix); err != nil {
		t.Fatalf("the seal is gone before any write: %v", err)
	}
	if _, err := s.BeginRun(ctx, "https://example.zendesk.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + sealSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("seal after the run's first write: %v, want it removed", err)
	}
	ok(t, s.RegisterBatch(ctx, registrations(3001)[3000:]))
	ok(t, s.Close())
	by, err := openChecked(t, path)
	ok(t, err)
	if by != checkedBySeal {
		t.Errorf("after a clean Close the check passed by %q, want %q", by, checkedBySeal)
	}
}
