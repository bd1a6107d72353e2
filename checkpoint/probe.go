package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Probe is what ProbePath found about a checkpoint path, without writing
// anything (for threadlift check).
type Probe struct {
	// Exists is true when the checkpoint file exists.
	Exists bool
	// Dir is the folder that will hold it, or the nearest existing
	// ancestor when the folder does not exist yet (Open creates it).
	Dir string
	// Locked is true when another process holds the run lock; Holder then
	// says who ("process 1234"), when the lock file tells.
	Locked bool
	Holder string
}

// ProbePath checks, writing nothing, that a run could use the checkpoint
// at path: its folder (or the nearest existing ancestor, which Open would
// create it in) is a writable folder, an existing file and its -wal and
// -shm are writable and its header is a threadlift checkpoint's (the
// database is not opened: even a read-only open may create -wal and
// -shm), and the run lock is free. The lock is tested by
// taking it and releasing it at once; an error says what is wrong, and
// Probe is filled as far as it got.
func ProbePath(path string) (Probe, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Probe{}, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	var p Probe
	dir := filepath.Dir(abs)
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return p, fmt.Errorf("checkpoint: %s is not a folder", dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return p, fmt.Errorf("checkpoint: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p, fmt.Errorf("checkpoint: no existing folder above %s", abs)
		}
		dir = parent
	}
	p.Dir = dir
	if err := canWriteDir(dir); err != nil {
		return p, fmt.Errorf("checkpoint: folder %s is not writable: %w", dir, err)
	}
	switch st, err := os.Stat(abs); {
	case err == nil && st.IsDir():
		return p, fmt.Errorf("%w: %s is a folder", ErrUnusable, abs)
	case err == nil:
		p.Exists = true
		for _, f := range []string{abs, abs + "-wal", abs + "-shm"} {
			if err := canWriteFile(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return p, fmt.Errorf("checkpoint: %s is not writable: %w", f, err)
			}
		}
		if err := probeHeader(abs); err != nil {
			return p, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return p, fmt.Errorf("checkpoint: %w", err)
	}
	held, holder, err := probeLock(abs)
	p.Locked, p.Holder = held, holder
	if err != nil {
		return p, err
	}
	if held {
		return p, fmt.Errorf("%w: %s is held by %s", ErrLocked, abs, holder)
	}
	return p, nil
}

// probeHeader reads the SQLite header of an existing file (opening the
// database, even read-only, may create its -wal and -shm files): a
// threadlift checkpoint, or an empty file, is fine; anything else is
// ErrUnusable, as Open would say.
func probeHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	var h [100]byte
	n, err := io.ReadFull(f, h[:])
	switch {
	case n == 0:
		return nil // empty: Open makes it a checkpoint
	case err != nil || string(h[:16]) != "SQLite format 3\x00":
		return fmt.Errorf("%w: %s is not a SQLite database", ErrUnusable, path)
	}
	appID := binary.BigEndian.Uint32(h[68:72])
	version := binary.BigEndian.Uint32(h[60:64])
	switch {
	case appID != 0 && appID != applicationID:
		return fmt.Errorf("%w: %s is another application's SQLite database (application_id %#x)", ErrUnusable, path, appID)
	case version > schemaVersion:
		return fmt.Errorf("%w: %s has schema version %d, written by a newer threadlift (this one knows up to %d)", ErrUnusable, path, version, schemaVersion)
	}
	return nil
}

// probeLock reports whether another process holds the run lock of the
// checkpoint file at path (see Lock: the lock is on the file itself), by
// taking and releasing it at once. It opens the file read-only and never
// opens the database: in a process that had the database open, closing
// this descriptor would drop SQLite's own locks (see Lock).
func probeLock(path string) (held bool, holder string, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("checkpoint: lock %s: %w", path, err)
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		if !errors.Is(err, errWouldBlock) {
			return false, "", fmt.Errorf("checkpoint: lock %s: %w", path, err)
		}
		holder = "another process"
		if pid := lockHolder(f); pid > 0 {
			holder = "process " + strconv.Itoa(pid)
		}
		return true, holder, nil
	}
	unlockFile(f)
	return false, "", nil
}
