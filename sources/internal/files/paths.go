package files

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Attachment paths of csv/json records are relative to the source file's
// folder and may not leave it (contract §3). The check runs on real
// paths, symbolic links resolved on both sides: a link inside an export's
// folder that points outside it would otherwise upload any file the
// process can read, while "../secret" was refused.

// Folder is a source file's folder: as the path names it (Dir), and with
// every symbolic link resolved.
type Folder struct {
	Dir  string
	real string
}

// FolderOf returns the folder of a source file.
func FolderOf(path string) (Folder, error) {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return Folder{}, err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir // the folder is gone: every attachment will be missing
	}
	return Folder{Dir: dir, real: real}, nil
}

// ErrOutside is returned by Resolve for a path that leaves the folder.
var ErrOutside = errors.New("outside the source file's folder")

// Resolve returns the real path of attachment p, written relative to the
// folder. It fails with ErrOutside when p leaves the folder as written or
// once links are resolved, and with the error of the file system when it
// cannot be resolved (fs.ErrNotExist for a missing file).
func (f Folder) Resolve(p string) (string, error) {
	abs := p
	if !filepath.IsAbs(p) {
		abs = filepath.Join(f.Dir, p)
	}
	abs = filepath.Clean(abs)
	if !within(f.Dir, abs) {
		return abs, ErrOutside
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return abs, err
	}
	if !within(f.real, real) {
		return real, fmt.Errorf("%w: it is a symbolic link to %s", ErrOutside, real)
	}
	return real, nil
}

// within reports whether path is dir or inside it (both clean, absolute).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// Open opens a source file, refusing a directory.
func Open(path, kind string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("open %s %s: is a directory", kind, path)
	}
	return f, st, nil
}
