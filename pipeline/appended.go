package pipeline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/threadlift/threadlift/pipeline/archive"
)

// A scheduled backfill at the cost of the new data (issue 15): an import
// records in the checkpoint what its read of the sources found
// (archive.ScanRecord), and the next one reads only what was appended
// since, when the files only grew (archive.ReadSince); anything else is
// a full read, with one log line saying why.

// readArchive reads the sources: only what was appended since the
// recorded scan when it can, else all of them.
func (im *importer) readArchive(ctx context.Context) (*archive.Archive, error) {
	o := im.opts
	if !o.FullRead {
		a, err := archive.ReadSince(ctx, im.store, o.Sources, archive.SinceOptions{
			Formats: o.Formats, Read: o.Read, Threads: o.Threading, Progress: o.Progress.ReadBytes,
			Digest: im.digest(), TempDir: filepath.Dir(im.store.Path()),
		})
		var na *archive.NotAppended
		switch {
		case err == nil:
			im.logAppended(a)
			return a, nil
		case !errors.As(err, &na):
			return nil, err
		}
		o.Logger.Info().Str("reason", na.Reason).Msg("reading every source in full")
	}
	if o.ReadChunk > 0 {
		why := archive.Chunkable(o.Formats, o.Sources, o.Threading)
		if why == "" {
			return im.firstChunk(ctx)
		}
		o.Logger.Debug().Str("reason", why).Msg("the archive is read whole, not in chunks")
	}
	return archive.Read(ctx, o.Formats, o.Sources, o.Read, o.Threading, o.Progress.ReadBytes)
}

func (im *importer) digest() string {
	return archive.Digest(im.opts.Sources, im.opts.Read, im.opts.Threading)
}

func (im *importer) logAppended(a *archive.Archive) {
	var scanned int64
	for _, st := range a.Stats() {
		scanned += st.Scanned
	}
	untouched, _ := a.Untouched()
	im.opts.Logger.Info().Int64("bytes_read", scanned).Int("threads", len(a.Threads)).Int("threads_untouched", untouched).
		Msg("read only what was appended to the sources since the last scan")
}

// recordScanAfter records the scan once the work is over. Not before it:
// the record is thousands of random b-tree inserts (scan_syms is keyed by
// hash), 0.75 s that held a backfill's first request back at 400,000
// messages, and a first import's for far longer. Nothing depends on the
// record during the run. A run that ends before it (interrupted, killed)
// leaves the last record: the next import reads the same bytes again,
// and the threads table, not the record, decides what is sent, so
// nothing is sent twice (TestKillDuringAppendedBackfill). An interrupted
// run does not record: its stop must stay within the timeout, and a full
// record of a big archive takes longer.
func (im *importer) recordScanAfter(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := im.recordScan(ctx); err != nil {
		im.fatal.set(fmt.Errorf("%w: %w", ErrFatal, err))
	}
}

// recordScan records what this read found, for the next import; or,
// when it cannot be the base of an appended read, forgets any earlier
// record, so that the next import reads every source.
func (im *importer) recordScan(ctx context.Context) error {
	st, replace, next, why := im.a.ScanRecord(im.digest())
	var err error
	if why != "" {
		im.opts.Logger.Info().Str("reason", why).Msg("the next import reads every source in full")
		err = im.store.ForgetScan(ctx)
	} else {
		err = im.store.RecordScan(ctx, st, replace, next)
	}
	if err != nil {
		return fmt.Errorf("record the scan of the sources: %w", err)
	}
	return nil
}
