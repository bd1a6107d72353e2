package eml

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/internal/msgfile"
)

// Extensions lists the file extensions a folder walk reads (any case).
var extensions = []string{".eml", ".msg"}

// Format describes the eml format for a sources.Registry.
func Format() sources.Format {
	return sources.Format{Name: "eml", Open: Open, Folder: true}
}

// Open returns the reader of a folder of message files, walked
// recursively (files ending .eml or .msg, any case; hidden files and
// folders skipped; links to folders not followed), or of one message
// file. Files are read in sorted order of their path inside the folder,
// so keys, threads and plans are the same on every run.
func Open(path string, opts sources.Options) (sources.Reader, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open eml %s: %w", path, err)
	}
	if !st.IsDir() {
		return msgfile.New(filepath.Dir(path), []string{filepath.Base(path)}, true, opts), nil
	}
	var names []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !slices.Contains(extensions, strings.ToLower(filepath.Ext(p))) {
			return nil
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open eml %s: %w", path, err)
	}
	slices.Sort(names)
	return msgfile.New(path, names, false, opts), nil
}
