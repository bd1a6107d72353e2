package archive

import (
	"context"
	"errors"
	"io"

	"github.com/threadlift/threadlift/checkpoint"
)

// A whole read in batches (issue 15), for the commands that report on
// the whole archive without writing anything: validate and verify.
//
// A read in chunks (chunks.go) hands a thread again when a later chunk
// joins it, which an import absorbs (the checkpoint's joins) but a
// report would count twice. Batches read in two passes instead: the
// first reads and threads every chunk into a scan record in a store of
// the caller's (a temporary file), without handing anything; once the
// last chunk is recorded, the record holds exactly a whole read's
// threads (TestChunkedReadThreadsAsWholeRead). The second pass hands
// them in batches of about the chunk's size, in a whole read's order,
// each batch an Archive of complete threads with their bodies' readers.
// An archive that fits in one chunk is handed whole, and nothing is
// recorded.

// BatchRecord is the store a read in batches records its first pass in
// (*checkpoint.Store, a temporary one).
type BatchRecord interface {
	ChunkRecord
	RecordScan(ctx context.Context, st checkpoint.ScanState, replace []int64, next func(yield func(checkpoint.ScanThread) error) error) error
	ScanThreadOrder(ctx context.Context) ([]checkpoint.ScanThreadSize, error)
}

var _ BatchRecord = (*checkpoint.Store)(nil)

// NeedsWhole says why an archive cannot be read in batches: the caller
// reads it whole (Read).
type NeedsWhole struct{ Reason string }

func (e *NeedsWhole) Error() string { return "the archive is read whole: " + e.Reason }

// Batches is a whole read in batches (see the top of this file).
type Batches struct {
	open  func(context.Context) (BatchRecord, error)
	rec   BatchRecord // opened with the first chunk recorded
	ch    *Chunks
	limit int
	whole *Archive // the archive, when it fits in one chunk, until handed
	stats []stat   // every source, as the first pass read it
	order []checkpoint.ScanThreadSize
	next  int  // the next thread of order to hand
	bad   bool // the unreadable records were handed
	total int
}

// ReadBatches reads srcs in chunks of o.Limit envelopes into the record
// open returns (the first pass). open is called once the first chunk
// turns out not to be the whole archive: an archive that fits in one
// chunk writes nothing (a read-only TMPDIR does not stop it). It returns
// a *NeedsWhole error when that cannot be done: see Chunkable, and a
// failures file's corrected copy, which may replace a record of any
// chunk.
func ReadBatches(ctx context.Context, open func(context.Context) (BatchRecord, error), srcs []Source, o ChunkOptions) (*Batches, error) {
	ch, err := ReadChunks(nil, srcs, o)
	if err != nil {
		return nil, err
	}
	ch.temporary = true
	b := &Batches{ch: ch, limit: o.Limit, open: open}
	if err := b.firstPass(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// firstPass reads and records every chunk.
func (b *Batches) firstPass(ctx context.Context) error {
	for {
		a, err := b.ch.Next(ctx)
		switch {
		case err == io.EOF:
			order, err := b.rec.ScanThreadOrder(ctx)
			b.order, b.total = order, len(order)
			return err
		case err != nil:
			return err
		case !a.Partial() && a.since == nil:
			b.whole, b.total = a, len(a.Threads) // it fits in one chunk
			return nil
		case len(a.idx.corrects) > 0:
			a.Close()
			return &NeedsWhole{"a failures file's corrected copy is among the sources"}
		}
		b.stats = a.stats
		if b.rec == nil {
			if b.rec, err = b.open(ctx); err != nil {
				a.Close()
				return err
			}
			b.ch.rec = b.rec
		}
		st, replace, next, _ := a.ScanRecord("")
		err = b.rec.RecordScan(ctx, st, replace, next)
		a.Close()
		if err != nil {
			return err
		}
	}
}

// Threads is how many threads the batches hand in all (unreadable
// records aside).
func (b *Batches) Threads() int { return b.total }

// Next hands the next batch: complete threads in a whole read's order,
// about Limit envelopes of them (at least one thread), the first batch
// with every unreadable record (Bad); io.EOF after the last. A batch is
// closed by the caller; every batch has the sources' Stats of a whole
// read.
func (b *Batches) Next(ctx context.Context) (*Archive, error) {
	if b.whole != nil {
		a := b.whole
		b.whole, b.bad = nil, true
		return a, nil
	}
	if b.bad && b.next >= len(b.order) {
		b.order = nil // every thread handed: Load needs no order
		return nil, io.EOF
	}
	var ids []int64
	if !b.bad {
		bad, err := b.rec.ScanBadThreads(ctx)
		if err != nil {
			return nil, err
		}
		ids, b.bad = bad, true
	}
	for n := 0; b.next < len(b.order) && (n == 0 || n+b.order[b.next].Envelopes <= b.limit); b.next++ {
		n += b.order[b.next].Envelopes
		ids = append(ids, b.order[b.next].ID)
	}
	return b.batch(ctx, ids)
}

// Load loads the recorded threads ids (ids of Archive.RecordedIDs of
// the batches handed) again, as an Archive of those threads alone, for a
// caller that comes back to some threads after a pass over the batches
// (verify reads each ticket's threads back). The caller closes it. Not
// for an archive handed whole, which has no record.
func (b *Batches) Load(ctx context.Context, ids []int64) (*Archive, error) {
	if b.stats == nil { // set by every chunk recorded
		return nil, errors.New("archive: load recorded threads: the archive was read whole, not recorded")
	}
	return b.batch(ctx, ids)
}

// batch makes an Archive of the recorded threads of ids.
func (b *Batches) batch(ctx context.Context, ids []int64) (*Archive, error) {
	a := &Archive{idx: newIndex(), topts: b.ch.topts, borrowed: true, readers: b.ch.cur.readers, stats: b.stats,
		since: &since{chunk: true}}
	err := a.addLoaded(ctx, b.rec, ids, b.ch.cur.srcs)
	if err == nil {
		err = a.thread(a.topts)
	}
	if err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the sources' readers (the batches' are closed by the
// caller).
func (b *Batches) Close() error {
	var errs []error
	if b.whole != nil {
		errs = append(errs, b.whole.Close())
	}
	return errors.Join(append(errs, b.ch.Close())...)
}
