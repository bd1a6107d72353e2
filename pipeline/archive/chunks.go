package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/sources"
)

// Reading in chunks (issue 15): memory bounded whatever the archive's
// size.
//
// Threading needs every message that a thread's messages mention, and a
// reply at the end of an archive can join a thread from its start, so a
// whole read holds every envelope: about 200 bytes a message, 1 GB at 5
// million. A read in chunks holds a budget of envelopes at a time
// instead. The caller works on each chunk, then records it in the
// checkpoint's scan record (ScanRecord, checkpoint.RecordScan); the next
// chunk is threaded with the recorded threads its envelopes are linked
// to, exactly as an appended read threads what was appended (since.go).
// A thread is then threaded as a whole read would thread it once its
// last chunk is read; a thread that a later chunk joins is handed again
// with its earlier messages, as a backfill hands a thread that new
// messages join, and the checkpoint's joins keep each message imported
// once (contract §6).
//
// What a chunk holds is the chunk's envelopes and the recorded threads
// they are linked to: on an archive in rough date order (mail as it
// arrived) that is the chunk and the threads that span its start. The
// first chunk replaces any earlier record; every chunk but the last is
// recorded as unfinished (partialPrefix), which no appended read takes
// as its base: an import stopped between two chunks reads every source
// again, and the checkpoint's threads table decides what is sent.

// partialPrefix marks the digest of a record of a read in chunks that
// has not read every source yet.
const partialPrefix = "partial:"

// ChunkRecord is the scan record as a read in chunks reads it
// (*checkpoint.Store).
type ChunkRecord interface {
	ScanState(ctx context.Context) (checkpoint.ScanState, bool, error)
	ScanBadThreads(ctx context.Context) ([]int64, error)
	threadLoader
}

var _ ChunkRecord = (*checkpoint.Store)(nil)

// Chunks is a read in chunks (see the top of this file).
type Chunks struct {
	rec   ChunkRecord
	cur   *cursor
	topts thread.Options
	limit int
	// handed counts the chunks handed; want is what the record of the
	// last one holds (its state's Envelopes and Threads): not the chunk
	// itself, whose memory is the caller's to release.
	handed int
	want   checkpoint.ScanState
	// temporary: the record is a temporary one (batches.go).
	temporary bool
}

// ChunkOptions configure ReadChunks.
type ChunkOptions struct {
	Formats  *sources.Registry
	Read     sources.Options
	Threads  thread.Options
	Progress func(bytes int64)
	// Limit is how many envelopes a chunk reads at most; ≤ 0 reads the
	// whole archive as one chunk.
	Limit int
}

// Chunkable says why srcs cannot be read in chunks under topts; "" when
// they can. What cannot be read in chunks is what an appended read
// cannot take up either: subject threading (it joins threads across the
// whole archive by subject), folders of message files, JSON that is not
// JSON Lines of messages.
func Chunkable(formats *sources.Registry, srcs []Source, topts thread.Options) string {
	if topts.SubjectThreading {
		return "subject_threading is on"
	}
	for _, src := range srcs {
		if f, ok := formats.Lookup(src.Type); ok && f.Folder {
			return src.File() + " is a folder of message files"
		}
		if src.Type == "json" {
			if why := jsonAppendable(src.Path, src.Fields); why != "" {
				return src.File() + ": " + why
			}
		}
	}
	return ""
}

// ReadChunks starts a read of srcs in chunks, recorded in rec by the
// caller. Nothing is read before Next.
func ReadChunks(rec ChunkRecord, srcs []Source, o ChunkOptions) (*Chunks, error) {
	if len(srcs) > maxSources {
		return nil, fmt.Errorf("%d sources: at most %d can be read in one run", len(srcs), maxSources)
	}
	return &Chunks{rec: rec, cur: newCursor(o.Formats, srcs, o.Read, o.Progress), topts: o.Threads, limit: o.Limit}, nil
}

// Next reads and threads the next chunk; io.EOF when every source was
// read. Every chunk but the last must have been recorded (ScanRecord,
// checkpoint.RecordScan) before Next is called again: the next one is
// threaded with that record. A chunk is closed by the caller; its
// readers are the Chunks' until Close.
//
// When the whole archive fits in one chunk, that chunk is what Read
// returns.
func (ch *Chunks) Next(ctx context.Context) (*Archive, error) {
	if ch.handed > 0 && ch.cur.done() {
		return nil, io.EOF
	}
	idx := newIndex()
	idx.hotSubjects = ch.topts.SubjectThreading
	a := &Archive{idx: idx, topts: ch.topts, borrowed: true}
	done, err := ch.cur.fill(ctx, idx, &a.Bad, ch.limit)
	a.readers, a.stats = slices.Clip(ch.cur.readers), ch.cur.snapshot()
	if err != nil {
		a.Close()
		return nil, err
	}
	first := ch.handed == 0
	if !(first && done) {
		if err := ch.join(ctx, a, done); err != nil {
			a.Close()
			return nil, err
		}
	}
	if err := a.thread(a.topts); err != nil {
		a.Close()
		return nil, err
	}
	ch.handed++
	ch.want, _, _, _ = a.ScanRecord("")
	return a, nil
}

// join makes a, holding the envelopes of a chunk, a chunk of the read:
// numbered after the chunks before it, with the recorded threads its
// envelopes are linked to.
func (ch *Chunks) join(ctx context.Context, a *Archive, last bool) error {
	s := &since{chunk: true, partial: !last, temporary: ch.temporary}
	a.since = s
	fresh := a.idx.len()
	if ch.handed == 0 {
		s.wholeRecord = true
		s.seq = make([]int64, fresh)
		for i := range s.seq {
			s.seq[i] = int64(i)
		}
		s.added = fresh
		return nil
	}
	prior, err := ch.recorded(ctx)
	if err != nil {
		return err
	}
	s.prior = prior
	fresh0 := a.Bad
	a.Bad = nil
	ids, err := ch.linked(ctx, a)
	if err != nil {
		return err
	}
	s.seq = make([]int64, fresh)
	for i := range s.seq {
		s.seq[i] = prior.Envelopes + int64(i)
	}
	s.added = fresh
	if err := a.addLoaded(ctx, ch.rec, ids, ch.cur.srcs); err != nil {
		return err
	}
	a.Bad = append(a.Bad, fresh0...)
	return nil
}

// recorded is the record the chunk before was recorded as: it must be
// there, or the new chunk would not be threaded with it.
func (ch *Chunks) recorded(ctx context.Context) (checkpoint.ScanState, error) {
	want := ch.want
	prior, ok, err := ch.rec.ScanState(ctx)
	switch {
	case err != nil:
		return prior, err
	case !ok || !strings.HasPrefix(prior.Options, partialPrefix) || prior.Envelopes != want.Envelopes || prior.Threads != want.Threads:
		return prior, errors.New("read in chunks: the chunk before this one is not the one recorded in the checkpoint")
	}
	return prior, nil
}

// linkBatch bounds the envelopes whose mentions are looked up at once.
const linkBatch = 4096

// linked finds the recorded threads the envelopes of a (a chunk's, all
// new) are linked to, and the recorded unreadable records: their
// mentions are looked up a batch at a time, so that no set of a whole
// chunk's mentions is held.
func (ch *Chunks) linked(ctx context.Context, a *Archive) ([]int64, error) {
	ids, err := ch.rec.ScanBadThreads(ctx)
	if err != nil {
		return nil, err
	}
	var syms []uint64
	for from := 0; from < a.idx.len(); from += linkBatch {
		syms = syms[:0]
		for i := from; i < min(from+linkBatch, a.idx.len()); i++ {
			env, err := a.idx.envelope(i)
			if err != nil {
				return nil, err
			}
			syms = mentions(syms, env)
		}
		slices.Sort(syms)
		more, err := ch.rec.ScanThreadsMentioning(ctx, slices.Compact(syms))
		if err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	slices.Sort(ids)
	return linkedIDs(ctx, ch.rec, slices.Compact(ids), nil)
}

// Close closes the readers of every chunk.
func (ch *Chunks) Close() error {
	var errs []error
	for _, r := range ch.cur.readers {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}
