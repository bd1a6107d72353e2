package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/report"
	"github.com/threadlift/threadlift/sources"
)

// Source is one input file.
type Source struct {
	Type string // mbox | csv | json
	Path string
	// Name is what locations show for this file; default Path.
	Name string
	// Fields renames csv/json fields (contract §3).
	Fields map[string]string
	// ThreadKeyPrefix goes before csv/json thread and message ids
	// (sources.Options.ThreadKeyPrefix).
	ThreadKeyPrefix string
}

// badRecord is a record that could not be read at all: it counts as one
// rejected thread with an empty key (contract §10).
type badRecord struct {
	err *sources.RecordError
	src int // the reader, in archive.readers
}

// archive is the light, whole-archive view: every envelope, the readers to
// load bodies from, and the threads built from the envelopes.
type archive struct {
	readers []sources.Reader
	stats   []sourceStat
	idx     *index // every envelope; Seq of envelope i is i
	bad     []badRecord
	threads []thread.Thread
	dupOf   map[int][]int // thread member index → its duplicates' indices
	isDup   map[int]bool

	// A failures file's copies and what they replace (corrections.go).
	superseded []supersession
	copies     map[int]bool // envelopes that are copies and take part in threading
	replaced   map[int]bool // envelopes a copy replaced: in no thread
}

type sourceStat struct {
	Source
	bytes    int64
	messages int
	// stamp is the file as the scan found it; changed is true when it
	// changed during the scan itself.
	stamp   fileStamp
	changed bool
}

// errSourceChanged marks a source file that changed between the scan and
// a load: what its records read as now is not what was scanned.
var errSourceChanged = errors.New("the source changed while importing; run import again")

// fileStamp identifies a file's content as cheaply as stat(2) can: its
// size, modification time and inode. An archive rewritten, truncated or
// replaced changes it.
type fileStamp struct {
	size     int64
	mod      time.Time
	dev, ino uint64
	err      string
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: err.Error()}
	}
	st := fileStamp{size: fi.Size(), mod: fi.ModTime()}
	st.dev, st.ino = fileID(fi)
	return st
}

func (a fileStamp) same(b fileStamp) bool {
	return a.size == b.size && a.mod.Equal(b.mod) && a.dev == b.dev && a.ino == b.ino && a.err == b.err
}

func (a *archive) Close() error {
	var errs []error
	for _, r := range a.readers {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// maxSources is how many sources the index can tell apart (entry.src).
const maxSources = math.MaxUint16 + 1

// readArchive walks every source once, keeping envelopes only, and threads
// them. progress, when set, is told the bytes of each envelope read.
func readArchive(ctx context.Context, srcs []Source, opts sources.Options, topts thread.Options, progress func(bytes int64)) (*archive, error) {
	if len(srcs) > maxSources {
		return nil, fmt.Errorf("%d sources: at most %d can be read in one run", len(srcs), maxSources)
	}
	a := &archive{idx: newIndex()}
	for i, src := range srcs {
		o := opts
		o.Name = src.Name
		if o.Name == "" {
			o.Name = src.Path
		}
		o.Fields = src.Fields
		st := sourceStat{Source: src, stamp: stampOf(src.Path)}
		o.ThreadKeyPrefix = src.ThreadKeyPrefix
		r, err := sources.Open(src.Type, src.Path, o)
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("open source %s: %w", src.Path, err)
		}
		a.readers = append(a.readers, r)
		st.bytes = st.stamp.size
		for {
			if err := ctx.Err(); err != nil {
				a.Close()
				return nil, err
			}
			env, err := r.Next()
			if err == io.EOF {
				break
			}
			var re *sources.RecordError
			if errors.As(err, &re) {
				a.bad = append(a.bad, badRecord{err: re, src: i})
				st.messages++
				continue
			}
			if err != nil {
				a.Close()
				return nil, fmt.Errorf("read %s: %w", o.Name, err)
			}
			st.messages++
			a.idx.add(env, i)
			if progress != nil {
				progress(env.Size)
			}
		}
		st.changed = !st.stamp.same(stampOf(src.Path))
		a.stats = append(a.stats, st)
	}

	a.idx.seal()
	skip := a.supersede()
	a.replaced = skip
	res := thread.BuildItems(threadItems{x: a.idx, skip: skip}, topts)
	a.threads = res.Threads
	if len(skip) > 0 {
		// A replaced envelope stands alone in its own thread: drop it.
		kept := a.threads[:0]
		for _, t := range a.threads {
			if len(t.Members) != 1 || !skip[t.Members[0]] {
				kept = append(kept, t)
			}
		}
		a.threads = kept
	}
	a.dupOf = make(map[int][]int)
	a.isDup = make(map[int]bool)
	for _, d := range res.Duplicates {
		a.dupOf[d.Of] = append(a.dupOf[d.Of], d.Index)
		a.isDup[d.Index] = true
	}
	return a, nil
}

// sourceChanged reports whether source i is no longer the file the scan
// read: it changed during the scan or since.
func (a *archive) sourceChanged(i int) bool {
	st := a.stats[i]
	return st.changed || !st.stamp.same(stampOf(st.Path))
}

// unchanged returns an error wrapping errSourceChanged when a source of
// t's messages is no longer the file the scan read. Called after t's
// messages were loaded, it says that what was loaded is what was scanned
// (a file rewritten during the load has changed by then).
func (a *archive) unchanged(t thread.Thread) error {
	var checked []int
	for _, m := range t.Members {
		src := a.idx.src(m)
		if slices.Contains(checked, src) {
			continue
		}
		checked = append(checked, src)
		if a.sourceChanged(src) {
			name := a.stats[src].Name
			if name == "" {
				name = a.stats[src].Path
			}
			return fmt.Errorf("%s: %w", name, errSourceChanged)
		}
	}
	return nil
}

// emptySources returns an issue per source that held no record at all
// (sources.RuleEmptySource): a warning, never fatal, for every format.
func (a *archive) emptySources() []report.Issue {
	var out []report.Issue
	for _, st := range a.stats {
		if st.messages > 0 {
			continue
		}
		name := st.Name
		if name == "" {
			name = st.Path
		}
		out = append(out, report.Issue{
			Severity: string(sources.SeverityWarning), Rule: sources.RuleEmptySource,
			Source:  sources.Location{File: name}.String(),
			Message: fmt.Sprintf("the %s source %s holds no message (%d bytes): is it the file you meant, and of that type?", st.Type, name, st.bytes),
		})
	}
	return out
}

// duplicates returns the duplicates of a thread's members.
func (a *archive) duplicates(t thread.Thread) []int {
	var out []int
	for _, m := range t.Members {
		out = append(out, a.dupOf[m]...)
	}
	return out
}

// messageKeys returns the keys of every message of a thread, duplicates
// included.
func (a *archive) messageKeys(t thread.Thread) []string {
	var keys []string
	for _, m := range t.Members {
		keys = append(keys, a.idx.key(m))
	}
	for _, d := range a.duplicates(t) {
		keys = append(keys, a.idx.key(d))
	}
	return keys
}

// load decodes one envelope. A record already rejected while scanning is
// not decoded (it may be far too large): it keeps its envelope issues.
func (a *archive) load(i int, lo sources.LoadOptions) (*sources.Message, error) {
	env := a.idx.envelope(i)
	if env.Rejected() {
		return &sources.Message{Envelope: env, Issues: env.Issues}, nil
	}
	msg, err := sources.LoadWith(a.readers[a.idx.src(i)], env, lo)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	return msg, nil
}

// loadThread decodes a thread's members (chronological) and duplicates,
// leaving out what lo says.
func (a *archive) loadThread(t thread.Thread, lo sources.LoadOptions) (msgs, dups []*sources.Message, err error) {
	for _, m := range t.Members {
		msg, err := a.load(m, lo)
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, msg)
	}
	for _, d := range a.duplicates(t) {
		// Duplicates are reported, never posted: their envelope is enough.
		env := a.idx.envelope(d)
		dups = append(dups, &sources.Message{Envelope: env, Issues: env.Issues})
	}
	return msgs, dups, nil
}
