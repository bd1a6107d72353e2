package checkpoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock takes the exclusive run lock: an advisory flock(2) on the file
// path+".lock", which holds the holder's pid for the error message. The
// kernel releases it when the process ends, however it ends (SIGKILL
// included), so a stale lock cannot outlive a crash. It returns an error
// wrapping ErrLocked when another Store (in this or another process)
// holds it. Open takes the lock already; calling Lock again is a no-op.
func (s *Store) Lock() error {
	if s.readOnly {
		return fmt.Errorf("checkpoint: lock %s: opened read-only", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock != nil {
		return nil
	}
	lockPath := s.path + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint: lock %s: %w", lockPath, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := io.ReadAll(io.LimitReader(f, 32)); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					holder = "process " + strconv.Itoa(pid)
				}
			}
			return fmt.Errorf("%w: %s is held by %s", ErrLocked, lockPath, holder)
		}
		return fmt.Errorf("checkpoint: lock %s: %w", lockPath, err)
	}
	// Ours: record our pid for whoever finds it locked.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	s.lock = f
	return nil
}

// unlock releases the lock if held. The lock file stays: removing it
// would let two runs lock two different files.
func (s *Store) unlock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return
	}
	s.lock.Truncate(0)
	unix.Flock(int(s.lock.Fd()), unix.LOCK_UN)
	s.lock.Close()
	s.lock = nil
}
