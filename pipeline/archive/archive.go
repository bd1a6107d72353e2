package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"time"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
)

// Source is one input file.
type Source struct {
	Type string // a format of the registry Read is given: mbox | csv | json
	Path string
	// Name is what locations show for this file; default Path.
	Name string
	// Fields renames csv/json fields (contract §3).
	Fields map[string]string
	// ThreadKeyPrefix goes before csv/json thread and message ids
	// (sources.Options.ThreadKeyPrefix).
	ThreadKeyPrefix string
	// Format holds the options of the source's format only
	// (sources.Options.Format).
	Format sources.FormatOptions
}

// File is what locations show for the source: Name, or Path when Name is
// empty.
func (s Source) File() string {
	if s.Name == "" {
		return s.Path
	}
	return s.Name
}

// Bad is a record that could not be read at all: it counts as one
// rejected thread with an empty key (contract §10).
type Bad struct {
	Err *sources.RecordError
	Src int // the source it is in, an index of Stats
	// Recorded is true for a record of the scan record's, not read from
	// the sources this time (ReadSince, a later chunk).
	Recorded bool
}

// Archive is the light, whole-archive view: every envelope, the readers to
// load bodies from, and the threads built from the envelopes. Envelope i
// (0 ≤ i < Len) is the i-th record read, sources in order; Seq of
// envelope i is i, and thread members are such indices.
type Archive struct {
	// Threads are the threads of every envelope but those a failures
	// file's copy replaced, in the order thread.BuildItems gives them.
	Threads []thread.Thread
	// Bad holds the records that could not be read, but those a copy
	// replaced.
	Bad []Bad

	readers []sources.Reader
	// borrowed readers are closed by their owner (Chunks), not by Close.
	borrowed bool
	closed   bool
	topts    thread.Options
	since    *since // set by ReadSince
	stats    []stat
	idx      *index        // every envelope; Seq of envelope i is i
	dupOf    map[int][]int // thread member index → its duplicates' indices
	isDup    map[int]bool

	// A failures file's copies and what they replace (corrections.go).
	superseded []Supersession
	copies     map[int]bool // envelopes that are copies and take part in threading
	replaced   map[int]bool // envelopes a copy replaced: in no thread
}

// Stat is what the scan found of one source.
type Stat struct {
	Source
	Bytes    int64 // the file's size when the scan began
	Messages int   // records read, unreadable ones included
	// Scanned counts the bytes of the file the scan read: the whole file,
	// or what was appended since the recorded scan (ReadSince).
	Scanned int64
	// Skipped counts the records the reader left out on purpose, by
	// reason (sources.Skipper: mbox skip_labels); nil when none.
	Skipped map[string]int
}

type stat struct {
	Stat
	// stamp is the file as the scan found it; changed is true when it
	// changed during the scan itself.
	stamp   fileStamp
	changed bool
	// What the scan record keeps of the file (record.go): digests of its
	// head and of the bytes before its end, its last record, and the bytes
	// before its first record (csv: the header).
	head, tail string
	last       checkpoint.ScanRecord
	prefix     int64
	// folder is set for a format whose source is a folder of message
	// files (maildir, eml): it is read whole on every run.
	folder bool
}

// ErrSourceChanged marks a source file that changed between the scan and
// a load: what its records read as now is not what was scanned.
var ErrSourceChanged = errors.New("the source changed while importing; run import again")

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

// Close closes every reader and removes what the index spilled to disk.
// It also lets the index's memory go (a chunk is closed before the next
// one is read, chunks.go): after Close, Len, Threads, Bad and the counts
// stay, and nothing reads an envelope (Closed).
func (a *Archive) Close() error {
	if a.closed {
		return nil
	}
	var errs []error
	if !a.borrowed {
		for _, r := range a.readers {
			errs = append(errs, r.Close())
		}
	}
	errs = append(errs, a.idx.close())
	a.closed = true
	a.idx = &index{n: a.idx.n}
	return errors.Join(errs...)
}

// Closed reports whether Close was called: no envelope can be read.
func (a *Archive) Closed() bool { return a.closed }

// maxSources is how many sources the index can tell apart (entry.src).
const maxSources = math.MaxUint16 + 1

// Read walks every source once, keeping envelopes only, and threads
// them. Each source is opened by formats, by its Type. progress, when
// set, is told the bytes of each envelope read.
func Read(ctx context.Context, formats *sources.Registry, srcs []Source, opts sources.Options, topts thread.Options, progress func(bytes int64)) (*Archive, error) {
	if len(srcs) > maxSources {
		return nil, fmt.Errorf("%d sources: at most %d can be read in one run", len(srcs), maxSources)
	}
	return read(ctx, newIndex(), formats, srcs, opts, topts, progress)
}

// read is Read into idx.
func read(ctx context.Context, idx *index, formats *sources.Registry, srcs []Source, opts sources.Options, topts thread.Options, progress func(bytes int64)) (*Archive, error) {
	a := &Archive{idx: idx, topts: topts}
	idx.hotSubjects = topts.SubjectThreading
	c := newCursor(formats, srcs, opts, progress)
	_, err := c.fill(ctx, idx, &a.Bad, 0)
	a.readers, a.stats = c.readers, c.stats
	if err != nil {
		a.Close()
		return nil, err
	}
	if err := a.thread(topts); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// readerOptions are opts for source src.
func readerOptions(src Source, opts sources.Options) sources.Options {
	o := opts
	o.Name = src.File()
	o.Fields = src.Fields
	o.ThreadKeyPrefix = src.ThreadKeyPrefix
	o.Format = src.Format
	return o
}

// walk calls fn with every record r (of source name) returns, until io.EOF: an envelope,
// or an unreadable record (bad).
func walk(ctx context.Context, r sources.Reader, name string, fn func(env *sources.Envelope, bad *sources.RecordError) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		env, err := r.Next()
		if err == io.EOF {
			return nil
		}
		var re *sources.RecordError
		switch {
		case errors.As(err, &re):
			err = fn(nil, re)
		case err != nil:
			return fmt.Errorf("read %s: %w", name, err)
		default:
			err = fn(env, nil)
		}
		if err != nil {
			return err
		}
	}
}

// thread threads the index (but the envelopes a failures file's copy
// replaced) into a.Threads.
func (a *Archive) thread(topts thread.Options) error {
	a.idx.seal()
	skip, err := a.supersede()
	if err != nil {
		return err
	}
	a.replaced = skip
	items := threadItems{x: a.idx, skip: skip}
	if a.since != nil {
		items.seq = a.since.seq
	}
	res := thread.BuildItems(items, topts)
	a.Threads = res.Threads
	if len(skip) > 0 {
		// A replaced envelope stands alone in its own thread: drop it.
		kept := a.Threads[:0]
		for _, t := range a.Threads {
			if len(t.Members) != 1 || !skip[t.Members[0]] {
				kept = append(kept, t)
			}
		}
		a.Threads = kept
	}
	a.dupOf = make(map[int][]int)
	a.isDup = make(map[int]bool)
	for _, d := range res.Duplicates {
		a.dupOf[d.Of] = append(a.dupOf[d.Of], d.Index)
		a.isDup[d.Index] = true
	}
	return nil
}

// Len is the number of envelopes: every record read but the unreadable
// ones.
func (a *Archive) Len() int { return a.idx.len() }

// Envelope rebuilds envelope i as its reader returned it, with Seq = i.
// It fails only when the part of the index spilled to disk cannot be
// read back.
func (a *Archive) Envelope(i int) (*sources.Envelope, error) { return a.idx.envelope(i) }

// Key is the message key of envelope i (sources.Envelope.Key).
func (a *Archive) Key(i int) string { return a.idx.key(i) }

// Date is the date of envelope i; zero when it has none.
func (a *Archive) Date(i int) time.Time { return a.idx.date(i) }

// Src is the source envelope i was read from, an index of Stats.
func (a *Archive) Src(i int) int { return a.idx.src(i) }

// Reader is the reader of source src, for what the caller does beyond
// loading (attachments, failures files): check for the interfaces of
// package sources.
func (a *Archive) Reader(src int) sources.Reader { return a.readers[src] }

// Stats are the sources, in order, with what the scan found of each.
func (a *Archive) Stats() []Stat {
	out := make([]Stat, len(a.stats))
	for i, st := range a.stats {
		out[i] = st.Stat
	}
	return out
}

// Changed reports whether source src is no longer the file the scan
// read: it changed during the scan or since.
func (a *Archive) Changed(src int) bool {
	st := a.stats[src]
	return st.changed || !st.stamp.same(stampOf(st.Path))
}

// Unchanged returns an error wrapping ErrSourceChanged when a source of
// t's messages is no longer the file the scan read. Called after t's
// messages were loaded, it says that what was loaded is what was scanned
// (a file rewritten during the load has changed by then).
func (a *Archive) Unchanged(t thread.Thread) error {
	var checked []int
	for _, m := range t.Members {
		src := a.idx.src(m)
		if slices.Contains(checked, src) {
			continue
		}
		checked = append(checked, src)
		if a.Changed(src) {
			return fmt.Errorf("%s: %w", a.stats[src].File(), ErrSourceChanged)
		}
	}
	return nil
}

// duplicates returns the duplicates of a thread's members.
func (a *Archive) duplicates(t thread.Thread) []int {
	var out []int
	for _, m := range t.Members {
		out = append(out, a.dupOf[m]...)
	}
	return out
}

// MessageKeys returns the keys of every message of a thread, duplicates
// included.
func (a *Archive) MessageKeys(t thread.Thread) []string {
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
func (a *Archive) load(i int, lo sources.LoadOptions) (*sources.Message, error) {
	env, err := a.idx.envelope(i)
	if err != nil {
		return nil, err
	}
	if env.Rejected() {
		return &sources.Message{Envelope: env, Issues: env.Issues}, nil
	}
	msg, err := sources.LoadWith(a.readers[a.idx.src(i)], env, lo)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", env.Loc, err)
	}
	return msg, nil
}

// LoadThread decodes a thread's members (chronological) and duplicates,
// leaving out what lo says. A member rejected while scanning is not
// decoded (it may be far too large): it keeps its envelope's issues.
// Duplicates are reported, never posted: they are not decoded either.
func (a *Archive) LoadThread(t thread.Thread, lo sources.LoadOptions) (msgs, dups []*sources.Message, err error) {
	for _, m := range t.Members {
		msg, err := a.load(m, lo)
		if err != nil {
			return nil, nil, err
		}
		msgs = append(msgs, msg)
	}
	for _, d := range a.duplicates(t) {
		// Duplicates are reported, never posted: their envelope is enough.
		env, err := a.idx.envelope(d)
		if err != nil {
			return nil, nil, err
		}
		dups = append(dups, &sources.Message{Envelope: env, Issues: env.Issues})
	}
	return msgs, dups, nil
}

// Dates is the span of a thread's message dates, duplicates included;
// zero when none has a date.
func (a *Archive) Dates(t thread.Thread) (first, last time.Time) {
	see := func(i int) {
		d := a.idx.date(i)
		if d.IsZero() {
			return
		}
		if first.IsZero() || d.Before(first) {
			first = d
		}
		if last.IsZero() || d.After(last) {
			last = d
		}
	}
	for _, m := range t.Members {
		see(m)
		for _, d := range a.dupOf[m] {
			see(d)
		}
	}
	return first, last
}

// Duplicates counts the messages whose Message-ID an earlier message of
// the archive has: reported, never posted.
func (a *Archive) Duplicates() int { return len(a.isDup) }

// DuplicatesOf counts the duplicates of thread member m.
func (a *Archive) DuplicatesOf(m int) int { return len(a.dupOf[m]) }
