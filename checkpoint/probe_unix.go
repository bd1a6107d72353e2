//go:build unix

package checkpoint

import "golang.org/x/sys/unix"

// canWriteDir asks the kernel (access(2)) whether this process may create
// files in dir, without writing: it honours read-only mounts, and root may
// write into any folder of a writable one.
func canWriteDir(dir string) error { return unix.Access(dir, unix.W_OK|unix.X_OK) }

// canWriteFile asks the same of an existing file; a missing one is an
// error wrapping fs.ErrNotExist.
func canWriteFile(path string) error { return unix.Access(path, unix.W_OK) }
