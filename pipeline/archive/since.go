package archive

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
)

// Reading what was appended (a scheduled backfill).
//
// ReadSince reads, of each source file that only grew since the recorded
// scan, the bytes from its last recorded record on (which must read the
// same again), and rebuilds from the record only the threads the new
// records may join, and those with work left. Threads are unions of
// messages linked through what they mention (ids, references, keys,
// groups: mentions); a thread whose messages mention nothing a new
// message mentions is built the same with or without it, so threading
// the loaded threads and the new records alone gives what threading the
// whole archive would, for those threads. The records keep the order of
// the whole archive: the loaded ones in their recorded order, the new
// ones after.
//
// The Archive it returns holds those threads only (Threads), with every
// unreadable record of the sources (Bad); Untouched counts the others,
// all done.

// Recorded is the checkpoint's scan record, as ReadSince reads it
// (*checkpoint.Store).
type Recorded interface {
	ScanState(ctx context.Context) (checkpoint.ScanState, bool, error)
	ScanOpenThreads(ctx context.Context) ([]int64, error)
	ScanThreadsMentioning(ctx context.Context, syms []uint64) ([]int64, error)
	ScanThreads(ctx context.Context, ids []int64) ([]checkpoint.ScanThread, error)
}

var _ Recorded = (*checkpoint.Store)(nil)

// since is what an Archive read by ReadSince knows of the record.
type since struct {
	prior  checkpoint.ScanState
	loaded []int64 // the recorded threads rebuilt here (replaced when recorded)
	seq    []int64 // envelope i's position in the whole archive
	added  int     // envelopes appended since the record
	// grown are the recorded last records that grew (by the line ends
	// before a separator appended after them): their new envelopes
	// replace the recorded ones.
	grown []appended
	// The recorded threads and messages left out: done, untouched.
	untouchedThreads, untouchedMessages int
	// A chunk of a read in chunks (chunks.go), partial when sources are
	// left to read, wholeRecord for the first chunk, which replaces any
	// earlier record.
	chunk, partial, wholeRecord bool
	// temporary: the chunk is recorded whatever unrecordable says, in a
	// record no import reads (batches.go).
	temporary bool
	// recorded are the recorded threads loaded (but the unreadable
	// records'), and recordedDups the duplicates among their envelopes.
	recorded     []RecordedThread
	recordedIDs  []int64 // the scan record's id of each of recorded
	recordedDups int
	// recordedIn maps each recorded envelope to its thread in recorded.
	recordedIn map[int]int32
	// loadedMessages counts the recorded envelopes taken up.
	loadedMessages int
}

// addRecorded adds envelope o of a recorded thread to the index.
func (a *Archive) addRecorded(o recordedEnvelope) error {
	s := a.since
	if s.recordedIn == nil {
		s.recordedIn = map[int]int32{}
	}
	s.recordedIn[a.idx.len()] = o.thread
	s.seq = append(s.seq, o.seq)
	return a.idx.add(o.env, o.src)
}

// FromRecord reports whether envelope i was loaded from the scan record
// (a thread of an earlier chunk or run that an appended read or a later
// chunk took up again), not read from the sources now. Such a message
// was handled before with the thread it was recorded in: its row in the
// checkpoint, on whatever ticket, is this very message's.
func (a *Archive) FromRecord(i int) bool {
	if a.since == nil {
		return false
	}
	_, ok := a.since.recordedIn[i]
	return ok
}

// RecordedThread is a thread of the scan record that a read took up
// again: its key and the KeysHash of its message keys when recorded.
type RecordedThread struct{ Key, KeysHash string }

// Recorded lists the recorded threads an appended read or a chunk took
// up again, rebuilt among its threads (nil after Read); a thread of an
// earlier chunk is among them when a later chunk's messages are linked
// to it. RecordedDuplicates counts the duplicates among their messages.
func (a *Archive) Recorded() []RecordedThread {
	if a.since == nil {
		return nil
	}
	return a.since.recorded
}

// RecordedIDs returns, for each of Threads, the scan record's id of the
// recorded thread its first member was loaded from, 0 for a thread of
// records read from the sources; nil after Read. For an Archive of
// Batches (Next, Load) every thread is a recorded one: its id loads it
// again (Batches.Load).
func (a *Archive) RecordedIDs() []int64 {
	if a.since == nil {
		return nil
	}
	out := make([]int64, len(a.Threads))
	for i, t := range a.Threads {
		if r, ok := a.since.recordedIn[t.Members[0]]; ok {
			out[i] = a.since.recordedIDs[r]
		}
	}
	return out
}

// RecordedDuplicates counts the duplicates among the messages of
// Recorded's threads (see Duplicates).
func (a *Archive) RecordedDuplicates() int {
	if a.since == nil {
		return 0
	}
	return a.since.recordedDups
}

// HoldsRecorded reports whether members (a chunk's thread's) hold a
// message of an earlier chunk: the thread is handed again.
func (a *Archive) HoldsRecorded(members []int) bool {
	if a.since == nil || !a.since.chunk {
		return false
	}
	for _, m := range members {
		if m >= a.since.added {
			return true
		}
	}
	return false
}

// Partial reports whether a is a chunk of a read in chunks with sources
// left to read after it (chunks.go).
func (a *Archive) Partial() bool { return a.since != nil && a.since.partial }

// SinceOptions configure ReadSince.
type SinceOptions struct {
	Formats  *sources.Registry
	Read     sources.Options
	Threads  thread.Options
	Progress func(bytes int64)
	// Digest is Digest of the run's sources and options.
	Digest string
	// TempDir holds the copy of each file's appended bytes while they are
	// read; default os.TempDir().
	TempDir string
}

// NotAppended says why ReadSince could not read only what was appended:
// the caller reads the whole archive instead (Read).
type NotAppended struct{ Reason string }

func (e *NotAppended) Error() string { return "a full read is needed: " + e.Reason }

// ReadSince reads what was appended to srcs since the scan rec recorded
// (see the top of this file). It returns a *NotAppended error when that
// cannot be done: no record, other options, a file missing, shorter,
// rewritten, or its last record changed.
func ReadSince(ctx context.Context, rec Recorded, srcs []Source, o SinceOptions) (*Archive, error) {
	prior, ok, err := rec.ScanState(ctx)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, &NotAppended{"no scan of the sources is recorded in the checkpoint"}
	case prior.Options != o.Digest || len(prior.Files) != len(srcs):
		return nil, &NotAppended{"the sources or the read or threading options changed since the last scan"}
	case o.Threads.SubjectThreading:
		return nil, &NotAppended{"subject_threading is on"}
	case strings.HasPrefix(prior.Options, partialPrefix):
		return nil, &NotAppended{"the last import stopped before it had read every source (it reads a big archive in chunks)"}
	}
	a := &Archive{idx: newIndex(), topts: o.Threads, since: &since{prior: prior}}
	a.idx.hotSubjects = o.Threads.SubjectThreading
	fresh, err := a.readAppended(ctx, srcs, o)
	if err != nil {
		a.Close()
		return nil, err
	}
	if err := a.rebuild(ctx, rec, srcs, fresh); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// appended is one record read from the appended bytes.
type appended struct {
	env *sources.Envelope
	src int
}

// readAppended opens every source and reads what was appended to it.
func (a *Archive) readAppended(ctx context.Context, srcs []Source, o SinceOptions) ([]appended, error) {
	var fresh []appended
	for i, src := range srcs {
		f := a.since.prior.Files[i]
		st := stat{Stat: Stat{Source: src}, stamp: stampOf(src.Path), prefix: f.Prefix, last: f.Last}
		st.Bytes = st.stamp.size
		if why := grownOnly(src, f, st.stamp, &st.Scanned); why != "" {
			return nil, &NotAppended{why}
		}
		r, err := o.Formats.Open(src.Type, src.Path, readerOptions(src, o.Read))
		if err != nil {
			return nil, fmt.Errorf("open source %s: %w", src.Path, err)
		}
		a.readers = append(a.readers, r)
		st.Messages = f.Records
		if st.Bytes > f.Size {
			got, err := a.readTail(ctx, i, &st, f, o)
			if err != nil {
				return nil, err
			}
			fresh = append(fresh, got...)
		}
		st.head, st.tail = fileDigests(src.Path, st.Bytes, &st.Scanned)
		st.changed = !st.stamp.same(stampOf(src.Path))
		a.stats = append(a.stats, st)
	}
	return fresh, nil
}

// grownOnly says why src is not file f of the record with bytes appended;
// "" when it is.
func grownOnly(src Source, f checkpoint.ScanFile, now fileStamp, scanned *int64) string {
	name := src.File()
	switch {
	case now.err != "":
		return name + " cannot be read: " + now.err
	case now.size < f.Size:
		return fmt.Sprintf("%s is shorter than at the last scan (%d bytes, was %d): truncated or rewritten", name, now.size, f.Size)
	}
	head, tail := fileDigests(src.Path, f.Size, scanned)
	switch {
	case head != f.Head:
		return name + " was rewritten: its first bytes changed since the last scan"
	case tail != f.Tail:
		return name + " was rewritten: the bytes before its old end changed since the last scan"
	}
	return ""
}

// readTail reads source i from its last recorded record on, through a
// copy of those bytes (after the csv header) in o.TempDir: the record
// must read as it was recorded, the records after it are new.
func (a *Archive) readTail(ctx context.Context, i int, st *stat, f checkpoint.ScanFile, o SinceOptions) ([]appended, error) {
	from := st.prefix
	if f.Last.Found {
		from = f.Last.Offset
	}
	tmp, err := copyTail(st.Path, st.prefix, from, st.Bytes, o.TempDir, &st.Scanned)
	if err != nil {
		return nil, fmt.Errorf("copy what was appended to %s: %w", st.File(), err)
	}
	defer os.Remove(tmp)
	r, err := o.Formats.Open(st.Type, tmp, readerOptions(st.Source, o.Read))
	if err != nil {
		return nil, fmt.Errorf("open what was appended to %s: %w", st.File(), err)
	}
	defer r.Close()
	t := tailReader{offDelta: from - st.prefix, first: f.Last.Found, want: f.Last, name: st.File()}
	var fresh []appended
	err = walk(ctx, r, st.File(), func(env *sources.Envelope, bad *sources.RecordError) error {
		env, bad, keep, grown, err := t.next(env, bad)
		if grown != nil {
			a.since.grown = append(a.since.grown, appended{env: grown, src: i})
		}
		if err != nil || !keep {
			return err
		}
		st.Messages++
		st.last = lastOf(env, bad)
		if bad != nil {
			a.Bad = append(a.Bad, Bad{Err: bad, Src: i})
			return nil
		}
		if env.Corrects != "" {
			return &NotAppended{"a failures file's corrected copy was appended to " + st.File()}
		}
		fresh = append(fresh, appended{env: env, src: i})
		if o.Progress != nil {
			o.Progress(env.Size)
		}
		return nil
	})
	if err == nil && t.first {
		err = &NotAppended{"the last record of " + st.File() + " is gone"}
	}
	if sk, ok := r.(sources.Skipper); ok {
		// What the appended bytes held that the reader left out
		// (skip_labels), reported like a full read's.
		st.Skipped = sk.Skipped()
	}
	return fresh, err
}

// tailReader places the records read from a tail's copy in the file, and
// checks the first against the recorded last record.
type tailReader struct {
	offDelta  int64
	lineDelta int
	first     bool // the next record is the recorded last one
	want      checkpoint.ScanRecord
	name      string
}

// next places a record read from the copy; keep is false for the
// recorded last record, which must be the same record (same key, or
// unreadable as it was): it may have grown by the line ends before a
// separator now after it, and is then returned as grown.
func (t *tailReader) next(env *sources.Envelope, bad *sources.RecordError) (_ *sources.Envelope, _ *sources.RecordError, keep bool, grown *sources.Envelope, err error) {
	var loc *sources.Location
	if env != nil {
		loc = &env.Loc
	} else {
		loc = &bad.Loc
	}
	if t.first {
		t.first = false
		t.lineDelta = t.want.Line - loc.Line
		loc.Offset += t.offDelta
		if loc.Line > 0 {
			loc.Line += t.lineDelta
		}
		got := lastOf(env, bad)
		switch {
		case got.Offset != t.want.Offset || got.Key != t.want.Key || (got.Size != t.want.Size && env == nil):
			return nil, nil, false, nil, &NotAppended{"the last record of " + t.name + " changed since the last scan (written to in place?)"}
		case got.Size != t.want.Size:
			return nil, nil, false, env, nil
		}
		return nil, nil, false, nil, nil
	}
	loc.Offset += t.offDelta
	if loc.Line > 0 {
		loc.Line += t.lineDelta
	}
	return env, bad, true, nil, nil
}

// copyTail copies path's bytes [0, prefix) and [from, size) to a new file
// in dir and returns its name.
func copyTail(path string, prefix, from, size int64, dir string, scanned *int64) (string, error) {
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, ".threadlift-appended-*")
	if err != nil {
		return "", err
	}
	n, err := io.Copy(out, io.MultiReader(io.NewSectionReader(in, 0, prefix), io.NewSectionReader(in, from, size-from)))
	*scanned += n
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// rebuild loads the recorded threads the new records may join and those
// with work left, and threads them with the new records.
func (a *Archive) rebuild(ctx context.Context, rec Recorded, srcs []Source, fresh []appended) error {
	open, err := rec.ScanOpenThreads(ctx)
	if err != nil {
		return err
	}
	var syms []uint64
	for _, f := range append(slices.Clip(fresh), a.since.grown...) {
		syms = mentions(syms, f.env)
	}
	ids, err := linkedIDs(ctx, rec, open, syms)
	if err != nil {
		return err
	}
	loaded, err := rec.ScanThreads(ctx, ids)
	if err != nil {
		return err
	}
	olds, err := a.decodeLoaded(loaded, srcs)
	if err != nil {
		return err
	}
	a.since.settleUntouched()
	s := a.since
	for _, o := range olds {
		if err := a.addRecorded(o); err != nil {
			return err
		}
	}
	for k, f := range fresh {
		if err := a.idx.add(f.env, f.src); err != nil {
			return err
		}
		s.seq = append(s.seq, s.prior.Envelopes+int64(k))
	}
	s.added = len(fresh)
	return a.thread(a.topts)
}

// recordedEnvelope is an envelope of a recorded thread.
type recordedEnvelope struct {
	seq    int64
	env    *sources.Envelope
	src    int
	thread int32 // its thread, in since.recorded
}

// decodeLoaded decodes the recorded threads loaded: their envelopes
// (returned in archive order; a grown last record replaced by what it
// grew to) and their unreadable records (into a.Bad, marked Recorded).
// It notes them in a.since: the threads replaced when this read is
// recorded; settleUntouched counts those left untouched once every
// thread is loaded.
func (a *Archive) decodeLoaded(loaded []checkpoint.ScanThread, srcs []Source) ([]recordedEnvelope, error) {
	file := func(src int) (string, bool) {
		if src < 0 || src >= len(srcs) {
			return "", false
		}
		return srcs[src].File(), true
	}
	var olds []recordedEnvelope
	s := a.since
	for _, t := range loaded {
		s.loaded = append(s.loaded, t.ID)
		if t.Key == "" {
			// Recorded with Seq -1, -2, ... (recordThreads), read back
			// in Seq order: the last first.
			slices.Reverse(t.Envelopes)
		}
		for _, e := range t.Envelopes {
			if t.Key == "" {
				b, err := decodeBad(e.Data, file)
				if err != nil {
					return nil, &NotAppended{"the scan record does not decode"}
				}
				b.Recorded = true
				a.Bad = append(a.Bad, b)
				continue
			}
			env, src, err := decodeEnvelope(e.Data, file)
			if err != nil {
				return nil, &NotAppended{"the scan record does not decode"}
			}
			for _, g := range s.grown {
				if g.src == src && g.env.Loc.Offset == env.Loc.Offset {
					env = g.env
				}
			}
			olds = append(olds, recordedEnvelope{e.Seq, env, src, int32(len(s.recorded))})
		}
		if t.Key != "" {
			s.untouchedThreads--
			s.recorded = append(s.recorded, RecordedThread{Key: t.Key, KeysHash: t.KeysHash})
			s.recordedIDs = append(s.recordedIDs, t.ID)
			s.recordedDups += len(t.Envelopes) - distinctKeys(olds[len(olds)-len(t.Envelopes):])
		}
	}
	slices.SortFunc(olds, func(x, y recordedEnvelope) int { return cmp.Compare(x.seq, y.seq) })
	s.loadedMessages += len(olds)
	return olds, nil
}

// settleUntouched counts the recorded threads and messages left out,
// once every recorded thread taken up was loaded (decodeLoaded).
func (s *since) settleUntouched() {
	s.untouchedThreads += s.prior.Threads - s.prior.Bad
	s.untouchedMessages = s.prior.Messages - s.prior.Bad - s.loadedMessages
}

// loadGroup bounds the recorded threads loaded at once by addLoaded.
const loadGroup = 256

// addLoaded loads the recorded threads of ids a few at a time, and adds
// their envelopes to the index as they are decoded: a chunk or a batch
// takes up to a chunk's worth, whose decoded envelopes (hundreds of
// bytes each) must not all be held at once. Index order is then not
// archive order: since.seq holds it (threadItems, sourceOrder).
func (a *Archive) addLoaded(ctx context.Context, rec threadLoader, ids []int64, srcs []Source) error {
	for group := range slices.Chunk(ids, loadGroup) {
		loaded, err := rec.ScanThreads(ctx, group)
		if err != nil {
			return err
		}
		olds, err := a.decodeLoaded(loaded, srcs)
		if err != nil {
			return err
		}
		for _, o := range olds {
			if err := a.addRecorded(o); err != nil {
				return err
			}
		}
	}
	a.since.settleUntouched()
	return nil
}

// distinctKeys counts the message keys of envs: a thread's recorded
// envelopes are its members and their duplicates, which repeat a
// member's key.
func distinctKeys(envs []recordedEnvelope) int {
	keys := make(map[string]bool, len(envs))
	for _, e := range envs {
		keys[e.env.Key()] = true
	}
	return len(keys)
}

// linkedIDs returns the recorded threads of ids, and every one linked
// through what it mentions to syms or to a thread found, until no more
// are found. The threads are read to learn what they mention, then let
// go: the caller loads them again (addLoaded), so that memory holds a
// few at a time.
func linkedIDs(ctx context.Context, rec threadLoader, ids []int64, syms []uint64) ([]int64, error) {
	asked := map[uint64]bool{}
	have := map[int64]bool{}
	var out []int64
	for {
		var ask []uint64
		for _, v := range syms {
			if !asked[v] {
				asked[v] = true
				ask = append(ask, v)
			}
		}
		more, err := rec.ScanThreadsMentioning(ctx, ask)
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
		var load []int64
		for _, id := range ids {
			if !have[id] {
				have[id] = true
				load = append(load, id)
			}
		}
		if len(load) == 0 {
			return out, nil
		}
		out = append(out, load...)
		syms, ids = syms[:0], ids[:0]
		for group := range slices.Chunk(load, loadGroup) {
			got, err := rec.ScanThreads(ctx, group)
			if err != nil {
				return nil, err
			}
			for _, t := range got {
				if t.Key == "" {
					continue
				}
				for _, e := range t.Envelopes {
					if env, _, err := decodeEnvelope(e.Data, anyFile); err == nil {
						syms = mentions(syms, env)
					}
				}
			}
		}
	}
}

// threadLoader reads recorded threads (*checkpoint.Store).
type threadLoader interface {
	ScanThreadsMentioning(ctx context.Context, syms []uint64) ([]int64, error)
	ScanThreads(ctx context.Context, ids []int64) ([]checkpoint.ScanThread, error)
}

func anyFile(int) (string, bool) { return "", true }

// Untouched counts the threads and messages of the recorded scan that a
// ReadSince left out (done, and joined by no new record); 0 after Read.
func (a *Archive) Untouched() (threads, messages int) {
	if a.since == nil {
		return 0, 0
	}
	return a.since.untouchedThreads, a.since.untouchedMessages
}

// Appended reports whether the archive was read by ReadSince.
func (a *Archive) Appended() bool { return a.since != nil && !a.since.chunk }
