package sources

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A Format is one kind of source file a Registry can open. Each format
// package (sources/mbox, sources/csv, sources/json) describes itself with
// a Format function.
type Format struct {
	// Name is the type a config's sources entry names: "mbox", "csv".
	// Lower case; Open matches it without regard to case.
	Name string
	// Open opens one file of the format (a folder when Folder is set).
	Open func(path string, opts Options) (Reader, error)
	// Records is set for formats whose records are field records (csv,
	// json): the config's fields and thread_key_prefix apply to them.
	Records bool
	// Paths is set for formats whose field names are paths into nested
	// records (json): two fields may then read the same value.
	Paths bool
	// Folder is set for formats whose path names a folder of message
	// files (maildir; eml also takes a single file): a glob's matches
	// may be folders, and each is one source.
	Folder bool
	// Keys lists the source keys of the config that only this format
	// takes (folders, thread_by, messages_path...), so that a config
	// giving one to another format is refused with the format that takes it.
	Keys []string
}

// ErrUnsupported is returned (wrapped) by Registry.Open for a type no
// format of the registry has.
var ErrUnsupported = errors.New("sources: unsupported source type")

// Registry is the table of the formats a run can read, by name. It is
// built once, by the caller, from each format's descriptor (see
// sources/formats), and read only afterwards: it is safe for concurrent
// use.
type Registry struct {
	formats []Format // in the order given, names unique
}

// NewRegistry returns a registry of formats. It panics when a format has
// no name or no Open, or when two have the same name: a registry is built
// from a fixed list in the code, and such a list is a programming error.
func NewRegistry(formats ...Format) *Registry {
	r := &Registry{}
	for _, f := range formats {
		f.Name = strings.ToLower(f.Name)
		switch {
		case f.Name == "" || f.Open == nil:
			panic(fmt.Sprintf("sources: format %q without a name or an Open", f.Name))
		case slices.ContainsFunc(r.formats, func(g Format) bool { return g.Name == f.Name }):
			panic(fmt.Sprintf("sources: format %q registered twice", f.Name))
		}
		r.formats = append(r.formats, f)
	}
	return r
}

// Open opens a source file of the given type: the name of one of the
// registry's formats, in any case, surrounding white space ignored. Any
// other type gives an error wrapping ErrUnsupported.
func (r *Registry) Open(typ, path string, opts Options) (Reader, error) {
	name := strings.ToLower(strings.TrimSpace(typ))
	for _, f := range r.formats {
		if f.Name == name {
			return f.Open(path, opts)
		}
	}
	return nil, fmt.Errorf("open %s as %q: %w", path, typ, ErrUnsupported)
}

// Lookup returns the format of the given type (as Open matches it).
func (r *Registry) Lookup(typ string) (Format, bool) {
	name := strings.ToLower(strings.TrimSpace(typ))
	for _, f := range r.formats {
		if f.Name == name {
			return f, true
		}
	}
	return Format{}, false
}

// Names lists the registry's formats, in the order they were given.
func (r *Registry) Names() []string {
	out := make([]string, len(r.formats))
	for i, f := range r.formats {
		out[i] = f.Name
	}
	return out
}
