package maildir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/msgfile"
)

// Folder names of the folders option (sources.FormatOptions.Folders).
const (
	// Inbox is the maildir root's own cur/ and new/.
	Inbox = "INBOX"
	// All reads the root and every Maildir++ subfolder.
	All = "all"
)

// Format describes the maildir format for a sources.Registry.
func Format() sources.Format {
	return sources.Format{Name: "maildir", Open: Open, Folder: true, Keys: []string{"folders"}}
}

// ErrNotMaildir is returned (wrapped) by Open for a folder that has
// neither cur/ nor new/.
var ErrNotMaildir = errors.New("not a maildir: no cur/ or new/ folder")

// Open lists the message files of the maildir at root and returns their
// reader. Files are in a stable order: folder by folder as listed
// (INBOX first for "all", then subfolders sorted), in each cur/ then
// new/, names sorted; so keys, threads and plans are the same on every
// run. A file's location is the root as the run names it (opts.Name),
// then its path inside the root: "Maildir/.Sent/cur/1700000000.M1P2.host:2,S".
func Open(root string, opts sources.Options) (sources.Reader, error) {
	folders, err := folders(root, opts.Format.Folders)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range folders {
		for _, sub := range []string{"cur", "new"} {
			dir := path.Join(f, sub)
			got, err := list(root, dir)
			if err != nil {
				return nil, fmt.Errorf("open maildir %s: %w", root, err)
			}
			names = append(names, got...)
		}
	}
	return msgfile.New(root, names, false, opts), nil
}

// folders returns the folders to read, relative to root ("." for INBOX).
func folders(root string, asked []string) ([]string, error) {
	if len(asked) == 0 {
		asked = []string{Inbox}
	}
	if !isMaildir(root) {
		return nil, fmt.Errorf("open maildir %s: %w", root, ErrNotMaildir)
	}
	if len(asked) == 1 && strings.EqualFold(asked[0], All) {
		subs, err := subfolders(root)
		if err != nil {
			return nil, fmt.Errorf("open maildir %s: %w", root, err)
		}
		return append([]string{"."}, subs...), nil
	}
	var out []string
	for _, a := range asked {
		f, err := folderPath(a)
		if err != nil {
			return nil, fmt.Errorf("open maildir %s: folders: %w", root, err)
		}
		if !isMaildir(filepath.Join(root, f)) {
			return nil, fmt.Errorf("open maildir %s: folder %q: %w", root, a, ErrNotMaildir)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// folderPath turns a folder name of the config into a path under the
// root: INBOX is the root, ".Sent" (or "Sent") the Maildir++ folder .Sent.
func folderPath(name string) (string, error) {
	if strings.EqualFold(name, Inbox) || name == "." {
		return ".", nil
	}
	if !strings.HasPrefix(name, ".") {
		name = "." + name
	}
	if strings.ContainsAny(name, `/\`) || name == ".." {
		return "", fmt.Errorf("%q is not a Maildir++ folder name (.Name, dots between levels: .Archive.2020)", name)
	}
	return name, nil
}

// isMaildir reports whether dir has cur/ or new/.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// subfolders lists the Maildir++ subfolders of root, sorted.
func subfolders(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, ".") || n == "." || n == ".." || !isDir(root, e) {
			continue
		}
		if isMaildir(filepath.Join(root, n)) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// isDir reports whether entry e of dir is a folder, following a link.
func isDir(dir string, e fs.DirEntry) bool {
	if e.IsDir() {
		return true
	}
	st, err := os.Stat(filepath.Join(dir, e.Name()))
	return err == nil && st.IsDir()
}

// list returns the message files of root/dir (cur or new), relative to
// root, sorted. A missing folder holds none. Dot files (".DS_Store",
// Dovecot's dovecot-uidlist is outside cur/new) and subfolders are not
// messages.
func list(root, dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		out = append(out, path.Join(dir, e.Name()))
	}
	slices.Sort(out)
	return out, nil
}
