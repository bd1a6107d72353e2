package archive

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/threadlift/threadlift/sources"
)

// cursor reads the sources in order, record by record. It can stop
// between two records and go on later from there: Read reads everything
// at once, a read in chunks (chunks.go) a budget of envelopes at a time.
type cursor struct {
	formats  *sources.Registry
	srcs     []Source
	opts     sources.Options
	progress func(bytes int64)

	readers []sources.Reader // the sources opened so far, in order
	stats   []stat           // the sources read to their end
	cur     *stat            // the source being read; nil between two
	first   bool             // cur's next record is its first
}

func newCursor(formats *sources.Registry, srcs []Source, opts sources.Options, progress func(int64)) *cursor {
	return &cursor{formats: formats, srcs: srcs, opts: opts, progress: progress}
}

// done reports whether every source was read to its end.
func (c *cursor) done() bool { return c.cur == nil && len(c.stats) == len(c.srcs) }

// fill reads records, envelopes into idx and unreadable ones into bad,
// until idx holds limit envelopes (limit ≤ 0: no limit) or every source
// is read. It stops between two records only: what it read of a record
// is in idx or bad.
func (c *cursor) fill(ctx context.Context, idx *index, bad *[]Bad, limit int) (done bool, err error) {
	for !c.done() {
		if c.cur == nil {
			if err := c.open(); err != nil {
				return false, err
			}
		}
		src := len(c.stats)
		r := c.readers[src]
		for limit <= 0 || idx.len() < limit {
			if err := ctx.Err(); err != nil {
				return false, err
			}
			env, err := r.Next()
			if err == io.EOF {
				c.end(r)
				break
			}
			if err := c.record(idx, bad, src, env, err); err != nil {
				return false, err
			}
		}
		if limit > 0 && idx.len() >= limit {
			return c.done(), nil
		}
	}
	return true, nil
}

// open opens the next source.
func (c *cursor) open() error {
	i := len(c.stats)
	src := c.srcs[i]
	st := &stat{Stat: Stat{Source: src}, stamp: stampOf(src.Path)}
	st.Bytes = st.stamp.size
	st.head, st.tail = fileDigests(src.Path, st.Bytes, &st.Scanned)
	r, err := c.formats.Open(src.Type, src.Path, readerOptions(src, c.opts))
	if err != nil {
		return fmt.Errorf("open source %s: %w", src.Path, err)
	}
	c.readers = append(c.readers, r)
	c.cur, c.first = st, true
	return nil
}

// record takes what the reader of source src returned: an envelope, an
// unreadable record, or an error that stops the read.
func (c *cursor) record(idx *index, bad *[]Bad, src int, env *sources.Envelope, err error) error {
	st := c.cur
	var re *sources.RecordError
	switch {
	case errors.As(err, &re):
	case err != nil:
		return fmt.Errorf("read %s: %w", st.File(), err)
	}
	st.Messages++
	st.last = lastOf(env, re)
	if c.first && st.Type == "csv" {
		st.prefix = st.last.Offset
	}
	c.first = false
	if re != nil {
		*bad = append(*bad, Bad{Err: re, Src: src})
		return nil
	}
	if err := idx.add(env, src); err != nil {
		return err
	}
	if c.progress != nil {
		c.progress(env.Size)
	}
	return nil
}

// end finishes the source being read, whose reader r returned io.EOF.
func (c *cursor) end(r sources.Reader) {
	st := c.cur
	if sk, ok := r.(sources.Skipper); ok {
		st.Skipped = sk.Skipped()
	}
	if f, ok := c.formats.Lookup(st.Type); ok {
		st.folder = f.Folder
	}
	if c.first && st.Type == "csv" {
		st.prefix = st.Bytes
	}
	st.Scanned += st.Bytes
	st.changed = !st.stamp.same(stampOf(st.Path))
	c.stats = append(c.stats, *st)
	c.cur = nil
}

// snapshot is the stats of the sources read so far, the one being read
// included: an archive of what was read so far needs one per source its
// envelopes come from.
func (c *cursor) snapshot() []stat {
	out := append([]stat(nil), c.stats...)
	if c.cur != nil {
		out = append(out, *c.cur)
	}
	return out
}
