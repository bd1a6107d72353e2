//go:build unix

package archive

import (
	"io/fs"
	"syscall"
)

// fileID is the device and inode of a stat result: a file replaced by
// another of the same size and time still changes them.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Dev), sys.Ino
	}
	return 0, 0
}
