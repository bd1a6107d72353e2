//go:build !unix

package archive

import "io/fs"

// fileID is 0, 0 where os.Stat tells no inode (Windows): size and
// modification time alone then say whether a source changed.
func fileID(fs.FileInfo) (dev, ino uint64) { return 0, 0 }
