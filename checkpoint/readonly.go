package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openError turns an error opening the checkpoint file for writing into
// ErrReadOnly when the file or its folder cannot be written.
func (s *Store) openError(err error) error {
	if !isReadOnlyErr(err) {
		return fmt.Errorf("checkpoint: open %s: %w", s.path, err)
	}
	if _, serr := os.Stat(s.path); serr != nil {
		return s.readOnlyFolder(err)
	}
	return s.readOnlyFile(s.path, err)
}

// checkWritable reports ErrReadOnly when SQLite could not have written
// the checkpoint: its folder refuses a new file (SQLite creates -wal and
// -shm there), or the file, its -wal or its -shm refuses writing. It
// returns nil when everything is writable.
func (s *Store) checkWritable() error {
	for _, p := range []string{s.path, s.path + "-wal", s.path + "-shm"} {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err == nil {
			f.Close()
			continue
		}
		if isReadOnlyErr(err) {
			return s.readOnlyFile(p, err)
		}
	}
	return s.checkFolder()
}

// checkFolder reports ErrReadOnly when the checkpoint's folder refuses a
// new file.
func (s *Store) checkFolder() error {
	f, err := os.CreateTemp(filepath.Dir(s.path), ".threadlift-write-test-*")
	if err != nil {
		if isReadOnlyErr(err) {
			return s.readOnlyFolder(err)
		}
		return nil
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

func (s *Store) readOnlyFolder(err error) error {
	return fmt.Errorf("%w: %s: the folder %s is not writable (%s): threadlift writes the checkpoint and its -wal and -shm files there; "+
		"this says nothing about the checkpoint itself, do not delete it: make the folder writable, "+
		"or set checkpoint.path (or THREADLIFT_CHECKPOINT) to a writable folder holding a copy of the checkpoint and its -wal file",
		ErrReadOnly, s.path, filepath.Dir(s.path), reason(err))
}

func (s *Store) readOnlyFile(path string, err error) error {
	return fmt.Errorf("%w: %s is not writable (%s): this says nothing about the checkpoint itself, do not delete it: "+
		"make it writable by the user running threadlift, or set checkpoint.path (or THREADLIFT_CHECKPOINT) to a writable copy",
		ErrReadOnly, path, reason(err))
}

// isReadOnlyErr reports a permission error or a read-only file system.
func isReadOnlyErr(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

func reason(err error) string {
	if errors.Is(err, syscall.EROFS) {
		return "read-only file system"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// frozen reports that no writer can be using the checkpoint and this user
// cannot write next to it: the folder refuses new files and there is no
// -wal or -shm file.
func (s *Store) frozen() bool {
	for _, p := range []string{s.path + "-wal", s.path + "-shm"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return s.checkFolder() != nil
}
