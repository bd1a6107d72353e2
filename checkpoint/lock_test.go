package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestLockBelongsToTheFile: a second writer is refused whatever path names
// the checkpoint file (contract §6): a symlink to it, a path through "..",
// a hard link. The lock is taken on the file itself, so a bind mount (the
// same inode under another path) is covered the same way.
func TestLockBelongsToTheFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symlinks and hard links need privileges on Windows")
	}
	ctx := context.Background()
	tests := []struct {
		name  string
		other func(t *testing.T, dir, real string) string // another path to real
	}{
		{"symlink to the file", func(t *testing.T, dir, real string) string {
			p := filepath.Join(dir, "link.db")
			ok(t, os.Symlink(real, p))
			return p
		}},
		{"symlinked folder", func(t *testing.T, dir, real string) string {
			p := filepath.Join(dir, "alias")
			ok(t, os.Symlink(filepath.Dir(real), p))
			return filepath.Join(p, filepath.Base(real))
		}},
		{"dir/../dir", func(t *testing.T, dir, real string) string {
			d := filepath.Dir(real)
			return d + string(filepath.Separator) + ".." + string(filepath.Separator) + filepath.Base(d) + string(filepath.Separator) + filepath.Base(real)
		}},
		{"hard link in another folder", func(t *testing.T, dir, real string) string {
			other := filepath.Join(dir, "elsewhere")
			ok(t, os.MkdirAll(other, 0o755))
			p := filepath.Join(other, "copy.db")
			ok(t, os.Link(real, p))
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			real := filepath.Join(dir, "real", "threadlift.db")
			a := openT(t, real)
			other := tt.other(t, dir, real)
			b, err := Open(ctx, other, Options{})
			if err == nil {
				b.Close()
				t.Fatalf("Open(%s) while %s is open = nil error, want ErrLocked", other, real)
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("Open(%s) = %v, want ErrLocked", other, err)
			}
			if runtime.GOOS == "linux" && !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
				t.Errorf("ErrLocked message %q does not name the holder's pid", err)
			}
			ok(t, a.Close())
			b, err = Open(ctx, other, Options{})
			ok(t, err)
			ok(t, b.Close())
		})
	}
}

// TestMarkInFlightRefusesAnotherRunsAttempt: behind the lock, a second
// writer (the lock bypassed) cannot mark in flight a thread that the first
// has in flight, nor one left in flight by an earlier run, until it was
// looked up and resolved; a Store may re-mark its own attempt (after a 429).
func TestMarkInFlightRefusesAnotherRunsAttempt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "threadlift.db")
	a := openT(t, path)
	b, err := Open(ctx, path, Options{noLock: true})
	ok(t, err)
	defer b.Close()

	ok(t, a.Register(ctx, Thread{Key: "t", TicketID: 1}, msgs("m1", "m2")))
	ok(t, a.MarkInFlight(ctx, "t", KindImport, []string{"m1"}))
	if err := b.MarkInFlight(ctx, "t", KindImport, []string{"m1"}); !errors.Is(err, ErrTransition) {
		t.Fatalf("second writer's MarkInFlight of a thread in flight = %v, want ErrTransition", err)
	}
	// RegisterInFlight, the way a new thread is first sent, is refused too.
	reg := Registration{Thread: Thread{Key: "t", TicketID: 1}, Messages: msgs("m1", "m2")}
	if err := b.RegisterInFlight(ctx, nil, reg, KindImport, []string{"m1"}); !errors.Is(err, ErrTransition) {
		t.Fatalf("second writer's RegisterInFlight of a thread in flight = %v, want ErrTransition", err)
	}
	ok(t, a.MarkInFlight(ctx, "t", KindImport, []string{"m1"})) // its own attempt: a resend after a 429
	// A thread b registered and sent itself, then another one.
	ok(t, b.RegisterInFlight(ctx, nil, Registration{Thread: Thread{Key: "u", TicketID: 2}, Messages: msgs("n1")}, KindImport, []string{"n1"}))
	ok(t, b.MarkInFlight(ctx, "u", KindImport, []string{"n1"}))
	if err := a.MarkInFlight(ctx, "u", KindImport, []string{"n1"}); !errors.Is(err, ErrTransition) {
		t.Fatalf("first writer's MarkInFlight of the second's thread = %v, want ErrTransition", err)
	}
	ok(t, b.Close())

	// A later run finds t in flight: it must resolve it first.
	ok(t, a.Close())
	c := openT(t, path)
	if err := c.MarkInFlight(ctx, "t", KindImport, []string{"m1"}); !errors.Is(err, ErrTransition) {
		t.Fatalf("next run's MarkInFlight of a thread left in flight = %v, want ErrTransition", err)
	}
	ok(t, c.MarkNotSent(ctx, "t"))
	ok(t, c.MarkInFlight(ctx, "t", KindImport, []string{"m1"}))
}

// TestOwnedAttemptsStayBounded: the map of attempts a Store started is cut
// down to the threads still in flight.
func TestOwnedAttemptsStayBounded(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.ownedMax = 16
	for i := range 50 {
		key := "t" + strconv.Itoa(i)
		ok(t, s.RegisterInFlight(ctx, nil, Registration{Thread: Thread{Key: key, TicketID: 1}, Messages: msgs("m")}, KindImport, []string{"m"}))
		ok(t, s.MarkCreatedDone(ctx, key, "sc"+key, []string{"m"}))
	}
	if n := len(s.owned); n > 20 {
		t.Errorf("owned holds %d attempts after 50 threads done, want at most 20", n)
	}
	// The last thread in flight is still its own.
	ok(t, s.RegisterInFlight(ctx, nil, Registration{Thread: Thread{Key: "last", TicketID: 1}, Messages: msgs("m")}, KindImport, []string{"m"}))
	ok(t, s.MarkInFlight(ctx, "last", KindImport, []string{"m"}))
}
