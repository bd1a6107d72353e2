package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/threadlift/threadlift/sources"
	"github.com/threadlift/threadlift/sources/formats"
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
	// Format holds the options of the source's format only.
	Format sources.FormatOptions
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
		folder := formatOf(src.Type).Folder
		for _, m := range matches {
			m = filepath.Clean(m)
			check := readable
			if folder {
				check = readableFolder
			}
			if err := check(m); err != nil {
				errs = append(errs, &Error{File: c.Path, Key: key, Msg: fmt.Sprintf("%s: %v", m, err)})
				continue
			}
			if seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, SourceFile{Index: i, Type: src.Type, Path: m, Fields: src.fieldMap(),
				ThreadKeyPrefix: src.ThreadKeyPrefix, Format: src.formatOptions()})
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
	if !formatOf(s.Type).Records {
		return nil
	}
	m := make(map[string]string, len(fieldNames))
	taken := map[string]bool{} // names other fields are renamed to
	for _, f := range fieldNames {
		m[f] = f
		if v, ok := s.Fields[f]; ok && v != "" {
			m[f] = v
			taken[s.messageRelative(v)] = true
		}
	}
	if formatOf(s.Type).Paths {
		// json: a field renamed to another's default name takes it from
		// that field ({html_body: body} leaves body unread), which a
		// name no JSON key has says.
		for _, f := range fieldNames {
			if _, renamed := s.Fields[f]; !renamed && taken[f] {
				m[f] = unreadField + f
			}
		}
	}
	return m
}

// messageRelative returns a json field path as the message's own key:
// without "$.", "<messages_path>[]." or "<its last key>[].".
func (s Source) messageRelative(p string) string {
	mp := s.MessagesPath
	if mp == "" {
		mp = "messages"
	}
	last := mp[strings.LastIndexByte(mp, '.')+1:]
	for _, pre := range []string{"$.", mp + "[].", last + "[]."} {
		if rest, ok := strings.CutPrefix(p, pre); ok {
			return rest
		}
	}
	return p
}

// unreadField starts the name of a field that reads nothing: no JSON
// key holds a NUL byte in practice.
const unreadField = "\x00unread:"

// formatOptions returns the options of the source's format.
func (s Source) formatOptions() sources.FormatOptions {
	return sources.FormatOptions{Folders: s.Folders, ThreadBy: s.ThreadBy, SkipLabels: s.SkipLabels, MessagesPath: s.MessagesPath}
}

// formatOf returns the format of a source type; the zero Format for a
// type no format has (validate reports it).
func formatOf(typ string) sources.Format {
	f, _ := formats.Registry().Lookup(typ)
	return f
}

// readableFolder reports why path cannot be read as the folder (or, for
// eml, the file) of a folder format.
func readableFolder(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return errors.New(unwrapPathError(err))
	}
	if !st.IsDir() {
		return readable(path)
	}
	d, err := os.Open(path)
	if err != nil {
		return errors.New(unwrapPathError(err))
	}
	return d.Close()
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
