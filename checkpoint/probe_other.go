//go:build !unix

package checkpoint

import (
	"fmt"
	"os"
)

// canWriteDir cannot ask without writing where there is no access(2)
// (Windows ignores a folder's read-only attribute for files created in
// it): a folder is taken as writable, and Open reports ErrReadOnly when it
// is not.
func canWriteDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// canWriteFile opens an existing file for writing and closes it: that
// writes nothing and fails on a read-only file, like access(2). A missing
// one is an error wrapping fs.ErrNotExist.
func canWriteFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
