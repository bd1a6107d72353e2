package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/mapping/thread"
	"github.com/threadlift/threadlift/pipeline/archive"
)

// An import of a big archive in chunks (issue 15, archive.ReadChunks):
// the first chunk is read, threaded and worked on like a whole archive;
// then each next one, once the one before it is done and recorded in the
// checkpoint's scan record. A thread of an earlier chunk that a later
// chunk's messages join is handed again with them, as a backfill hands a
// thread that appended messages join: its done messages are not sent
// again, its new ones go to its side conversation (post.go).
//
// The run's summary counts each thread once: a thread handed again is
// taken off the count of what it was counted as the first time
// (uncount), and counted by what it is now; found complete, it counts as
// imported when this run imported it (countComplete). A rejected message
// is counted in the chunk that reads it (registration).

// firstChunk starts the read in chunks and returns its first chunk: the
// whole archive when it holds no more than Options.ReadChunk messages.
func (im *importer) firstChunk(ctx context.Context) (*archive.Archive, error) {
	o := im.opts
	ch, err := archive.ReadChunks(im.store, o.Sources, archive.ChunkOptions{
		Formats: o.Formats, Read: o.Read, Threads: o.Threading, Progress: o.Progress.ReadBytes, Limit: o.ReadChunk,
	})
	if err != nil {
		return nil, err
	}
	a, err := ch.Next(ctx)
	if err != nil {
		ch.Close()
		return nil, err
	}
	im.chunks = ch
	if a.Partial() {
		o.Logger.Info().Int("messages_per_chunk", o.ReadChunk).
			Msg("the archive holds more messages than pipeline.read_chunk_messages: it is read, threaded and imported in chunks")
	}
	return a, nil
}

// moreChunks works on the chunks after the first, one at a time, until
// the last is done or the run stops; err is the first chunk's work's.
func (im *importer) moreChunks(ctx context.Context, rc *runContexts, err error) error {
	for im.chunks != nil && err == nil && !im.stopped() && rc.take.Err() == nil {
		// The chunk done goes before the next is read: memory holds one.
		// Its counts stay for the summary, its records not imported are
		// kept for the failures folder.
		if err := im.keepCopies(ctx); err != nil {
			im.fatal.set(fmt.Errorf("%w: %w", ErrFatal, err))
			return nil
		}
		dups := im.a.Duplicates()
		im.a.Close()
		a, nerr := im.chunks.Next(ctx)
		switch {
		case nerr == io.EOF:
			return nil
		case nerr != nil && ctx.Err() != nil:
			return nil // interrupted: finish says so
		case nerr != nil:
			im.fatal.set(fmt.Errorf("%w: read sources: %w", ErrFatal, nerr))
			return nil
		}
		im.chunkDups += dups
		im.a = a
		resume, rerr := im.resumeOf(ctx, a)
		if rerr != nil {
			if ctx.Err() == nil {
				im.fatal.set(fmt.Errorf("%w: read checkpoint: %w", ErrFatal, rerr))
			}
			return nil
		}
		// Rows of this run's earlier chunks may hold this chunk's message
		// keys: every thread reads its ticket's rows (posting.rows).
		im.fresh = false
		if err := im.prepareChunk(ctx, resume); err != nil {
			im.fatal.set(err)
			return nil
		}
		err = im.work(ctx, rc, resume)
		im.recordScanAfter(ctx)
	}
	return err
}

// prepareChunk is prepare for a chunk after the first.
func (im *importer) prepareChunk(ctx context.Context, resume *checkpoint.Resume) error {
	if err := im.uncount(ctx); err != nil {
		return fmt.Errorf("%w: read checkpoint: %w", ErrFatal, err)
	}
	if err := im.prepareSources(ctx); err != nil {
		return err
	}
	if p, ok := im.opts.Progress.(MoreProgress); ok {
		p.MoreThreads(len(im.a.Threads) - len(im.a.Recorded()))
	}
	return nil
}

// MoreProgress is a Progress told of threads found after Threads was
// called: an import in chunks finds each chunk's.
type MoreProgress interface {
	Progress
	MoreThreads(n int)
}

// uncount takes the threads of earlier chunks that this chunk hands
// again off the counts they were counted in: done (imported, or already
// done before the run), failed, rejected, left to another shard, or
// skipped (--limit). Their row in the checkpoint says which.
func (im *importer) uncount(ctx context.Context) error {
	again := im.a.Recorded()
	if len(again) == 0 {
		return nil
	}
	keys := make([]string, len(again))
	for i, t := range again {
		keys[i] = t.Key
	}
	r, err := im.store.ResumeFor(ctx, keys)
	if err != nil {
		return err
	}
	for _, t := range again {
		im.uncountOne(t, r)
	}
	im.chunkDups -= im.a.RecordedDuplicates()
	return nil
}

func (im *importer) uncountOne(t archive.RecordedThread, r *checkpoint.Resume) {
	c := &im.c
	if _, done := r.Done.Lookup(t.Key); done {
		if _, was := im.doneAtStart.Lookup(t.Key); was {
			c.alreadyDone.Add(-1)
		} else {
			c.imported.Add(-1)
		}
		return
	}
	st, ok := r.Open[t.Key]
	switch {
	case ok && st.State == checkpoint.Failed:
		c.failed.Add(-1)
	case ok && st.State == checkpoint.Rejected:
		c.rejected.Add(-1)
	case ok:
	case im.opts.Shard.Sharded():
		// No row: another shard's (shard.go writes none).
		c.otherShards.Add(-1)
	case im.opts.Limit > 0:
		c.skipped.Add(-1) // no row: left for the next run (--limit)
	}
}

// closeArchive closes the archive (the last chunk read) and the read in
// chunks.
func (im *importer) closeArchive() error {
	var errs []error
	if im.a != nil {
		errs = append(errs, im.a.Close())
	}
	if im.chunks != nil {
		errs = append(errs, im.chunks.Close())
	}
	return errors.Join(errs...)
}

// countComplete counts thread t (key), found complete with nothing left
// to send: already done, unless it was handed in an earlier chunk of
// this run and was not done when the run began: this run imported it.
func (im *importer) countComplete(t thread.Thread, key string) {
	if im.chunks != nil && im.a.HoldsRecorded(t.Members) {
		if _, was := im.doneAtStart.Lookup(key); !was {
			im.c.imported.Add(1)
			return
		}
	}
	im.c.alreadyDone.Add(1)
}
