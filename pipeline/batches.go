package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/threadlift/threadlift/checkpoint"
	"github.com/threadlift/threadlift/pipeline/archive"
)

// reportRead is how the commands that report on the whole archive
// (validate, verify) read it: whole when it fits in Options.ReadChunk
// messages, or cannot be read in chunks; else in batches of complete
// threads (archive.ReadBatches), through a temporary scan record in
// TMPDIR that Close removes. Either way the threads come in a whole
// read's order, with a whole read's keys.
type reportRead struct {
	whole   *archive.Archive // until handed
	batches *archive.Batches
	store   *checkpoint.Store
	dir     string
	total   int
}

// readForReport reads the sources as reportRead says; progress is told
// the bytes read.
func readForReport(ctx context.Context, opts Options, progress func(int64)) (*reportRead, error) {
	why := "pipeline.read_chunk_messages is 0"
	if opts.ReadChunk > 0 {
		why = archive.Chunkable(opts.Formats, opts.Sources, opts.Threading)
	}
	if why == "" {
		r, err := readBatches(ctx, opts, progress)
		var nw *archive.NeedsWhole
		if !errors.As(err, &nw) {
			return r, err
		}
		why = nw.Reason
		opts.Logger.Info().Str("reason", why).Msg("the archive is read whole, not in chunks")
	}
	a, err := archive.Read(ctx, opts.Formats, opts.Sources, opts.Read, opts.Threading, progress)
	if err != nil {
		return nil, err
	}
	return &reportRead{whole: a, total: len(a.Threads)}, nil
}

// readBatches reads the sources in batches through a temporary store,
// made once the archive turns out bigger than one chunk.
func readBatches(ctx context.Context, opts Options, progress func(int64)) (*reportRead, error) {
	r := &reportRead{}
	b, err := archive.ReadBatches(ctx, r.openStore, opts.Sources, archive.ChunkOptions{
		Formats: opts.Formats, Read: opts.Read, Threads: opts.Threading, Progress: progress, Limit: opts.ReadChunk,
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	r.batches, r.total = b, b.Threads()
	return r, nil
}

// openStore makes the temporary store of the batches, in a folder of
// its own in TMPDIR that Close removes.
func (r *reportRead) openStore(ctx context.Context) (archive.BatchRecord, error) {
	dir, err := os.MkdirTemp("", "threadlift-threads-*")
	if err != nil {
		return nil, fmt.Errorf("create a temporary folder for the threads of the archive (TMPDIR): %w", err)
	}
	r.dir = dir
	if r.store, err = checkpoint.Open(ctx, filepath.Join(dir, "threads.db"), checkpoint.Options{}); err != nil {
		return nil, fmt.Errorf("open a temporary store for the threads of the archive in %s: %w", dir, err)
	}
	if err = r.store.Lock(); err != nil {
		return nil, fmt.Errorf("open a temporary store for the threads of the archive in %s: %w", dir, err)
	}
	return r.store, nil
}

// Threads is how many threads the batches hold in all (unreadable
// records aside).
func (r *reportRead) Threads() int { return r.total }

// Next returns the next batch of threads (the first one with every
// unreadable record), or io.EOF. The caller closes it.
func (r *reportRead) Next(ctx context.Context) (*archive.Archive, error) {
	if r.batches != nil {
		return r.batches.Next(ctx)
	}
	if r.whole == nil {
		return nil, io.EOF
	}
	a := r.whole
	r.whole = nil
	return a, nil
}

// Load loads recorded threads again (ids of the RecordedIDs of batches
// Next handed) as one Archive, which the caller closes: only when the
// archive is read in batches through the temporary store.
func (r *reportRead) Load(ctx context.Context, ids []int64) (*archive.Archive, error) {
	if r.batches == nil {
		return nil, errors.New("load recorded threads: the archive was read whole")
	}
	return r.batches.Load(ctx, ids)
}

// Close closes the sources and removes the temporary store.
func (r *reportRead) Close() error {
	var errs []error
	if r.whole != nil {
		errs = append(errs, r.whole.Close())
	}
	if r.batches != nil {
		errs = append(errs, r.batches.Close())
	}
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	if r.dir != "" {
		errs = append(errs, os.RemoveAll(r.dir))
	}
	return errors.Join(errs...)
}
