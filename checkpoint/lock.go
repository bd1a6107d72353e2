package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// errWouldBlock is what lockFile returns when another open file holds the
// lock.
var errWouldBlock = errors.New("lock held elsewhere")

// Lock takes the exclusive run lock. The lock belongs to the checkpoint
// file itself, not to the path that names it (contract §6): it is taken
// on a descriptor of the database file (flock(2) on Unix; LockFileEx on a
// byte range SQLite never uses on Windows), so a symlink, a path through
// "..", a hard link or a bind mount all meet the same lock. The kernel
// releases it when the process ends, however it ends (SIGKILL included),
// so a stale lock cannot outlive a crash. It returns an error wrapping
// ErrLocked, naming the holder's pid where the system tells it (Linux),
// when another Store (in this or another process) holds it. Open takes
// the lock already; calling Lock again is a no-op.
//
// The descriptor stays open until Close, after the database: on Unix,
// closing any descriptor of a file drops the POSIX locks SQLite holds on
// it in this process. For the same reason a process must not try to lock
// a checkpoint it already has open through another Store (a refused
// attempt closes its descriptor); threadlift opens one writable Store per
// process.
func (s *Store) Lock() error {
	if s.readOnly {
		return fmt.Errorf("checkpoint: lock %s: opened read-only", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return nil
	}
	// The file is created here when missing: the lock needs it, and SQLite
	// takes an empty file for a new database.
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return s.openError(err)
	}
	if err := lockFile(f); err != nil {
		holder := "another process"
		if errors.Is(err, errWouldBlock) {
			if pid := lockHolder(f); pid > 0 {
				holder = fmt.Sprintf("process %d", pid)
			}
		}
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return fmt.Errorf("%w: %s is held by %s", ErrLocked, s.describePath(), holder)
		}
		return fmt.Errorf("checkpoint: lock %s: %w", s.path, err)
	}
	s.lock = f
	return nil
}

// describePath is the checkpoint's path for messages, with the file it
// resolves to when a symlink leads elsewhere.
func (s *Store) describePath() string {
	if real, err := filepath.EvalSymlinks(s.path); err == nil && real != s.path {
		return fmt.Sprintf("%s (the file %s)", s.path, real)
	}
	return s.path
}

// unlock releases the lock if held. Call it only once the database is
// closed (see Lock).
func (s *Store) unlock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return
	}
	unlockFile(s.lock)
	s.lock.Close()
	s.lock = nil
}
