package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// SourceFile is one file to read, from expanding sources[Index].path.
type SourceFile struct {
	Index int    // position in sources:
	Type  string // mbox | csv | json
	Path  string // absolute, clean
	// Fields maps every default field name of contract §3 to the name used
	// in the file (renames applied); nil for mbox.
	Fields map[string]string
	// ThreadKeyPrefix is the source's thread_key_prefix ("" for none).
	ThreadKeyPrefix string
}

// SourceFiles expands the sources in config order: the matches of each
// glob are sorted, and a file already listed by an earlier entry is not
// listed again (it would otherwise be read twice). A pattern that matches
// nothing, or a file that cannot be opened, is an error (wrapping
// ErrConfig) that names sources[i].path and the path; every such problem
// is reported at once.
func (c *Config) SourceFiles() ([]SourceFile, error) {
	if len(c.Sources) == 0 {
		return nil, &Error{File: c.Path, Key: "sources", Msg: "no source configured: add at least one {type, path}"}
	}
	var (
		out  []SourceFile
		errs []*Error
		seen = map[string]bool{}
	)
	for i, src := range c.Sources {
		key := fmt.Sprintf("sources[%d].path", i)
		matches, err := globMatch(src.Path)
		if err != nil {
			errs = append(errs, &Error{File: c.Path, Key: key, Msg: fmt.Sprintf("bad glob pattern %q", src.Path)})
			continue
		}
		if len(matches) == 0 {
			what := "no such file"
			if hasMeta(src.Path) {
				what = "matches no file"
			}
			errs = append(errs, &Error{File: c.Path, Key: key, Msg: fmt.Sprintf("%s: %s", src.Path, what)})
			continue
		}
		for _, m := range matches {
			m = filepath.Clean(m)
			if err := readable(m); err != nil {
				errs = append(errs, &Error{File: c.Path, Key: key, Msg: fmt.Sprintf("%s: %v", m, err)})
				continue
			}
			if seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, SourceFile{Index: i, Type: src.Type, Path: m, Fields: src.fieldMap(), ThreadKeyPrefix: src.ThreadKeyPrefix})
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return out, nil
}

// fieldMap returns every default field name mapped to its name in the
// file, nil for mbox.
func (s Source) fieldMap() map[string]string {
	if s.Type == "mbox" {
		return nil
	}
	m := make(map[string]string, len(fieldNames))
	for _, f := range fieldNames {
		m[f] = f
		if v, ok := s.Fields[f]; ok && v != "" {
			m[f] = v
		}
	}
	return m
}

// globMatch returns the sorted files matching pattern. A pattern without
// glob characters is returned as is unless it does not exist (other
// problems, such as permissions, are left for readable to report).
func globMatch(pattern string) ([]string, error) {
	if !hasMeta(pattern) {
		if _, err := os.Stat(pattern); errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return []string{pattern}, nil
	}
	return filepath.Glob(pattern) // sorted; fails only on a bad pattern
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }
